"""Whether the nested regressions are pooled over both environments (``pooled_regressions``).

A nested regression follows one environment's mechanism. Fitted on that environment's
cases only, it is predicted at the other environment's cases, which under a scanner
shift lie where it has seen no image; pooled, it is fitted on both environments' cases,
the other one's weighted by its level's density ratio (:mod:`shiftattr.value.nested`).

``"auto"`` (the default of :func:`shiftattr.attribute`) pools for ``method="mr"`` when
a regression that can be pooled (its level has a ratio and is not paired) sees an image
through summaries (:func:`~shiftattr.value.features.is_summarised`) or a featurized
node, and every candidate regressor takes ``sample_weight``; it does not otherwise. The
evidence (synthetic MS benchmark, 11 scenarios, the same samples, folds and ratios):
pooled, ``"mr"``'s mean absolute error fell from 0.032 / 0.024 / 0.015 to 0.024 /
0.018 / 0.013 Dice at N = 100 / 300 / 1000; on the four tabular SCMs it did not help
(0.033 / 0.022 / 0.011 against 0.040 / 0.020 / 0.013), where regressions of a few
scalars extrapolate little and the other environment's weighted cases add the ratios'
noise. ``"regression"`` was not measured pooled on images, so ``"auto"`` leaves it
unpooled.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from shiftattr.environment import Environment
from shiftattr.value.features import is_summarised
from shiftattr.value.regressors import candidate_regressors, takes_sample_weight

__all__ = ["check_pooled", "resolve_pooled"]


def check_pooled(requested: bool | str, method: str) -> None:
    """Refuse a ``pooled_regressions`` argument that is unknown or that ``method`` cannot use.

    Parameters
    ----------
    requested : bool or "auto"
        NumPy booleans count as booleans.
    method : str
        The value estimator.

    Raises
    ------
    ValueError

    Examples
    --------
    >>> check_pooled("auto", "iw")
    >>> check_pooled(True, "iw")
    Traceback (most recent call last):
    ...
    ValueError: pooled_regressions=True changes how the nested regressions are fitted, but method='iw' fits none (the cross_check of 'iw' fits them unpooled, by design): use method='mr' or 'regression', or drop pooled_regressions.
    """
    if not isinstance(requested, (bool, np.bool_)) and not (
        isinstance(requested, str) and requested == "auto"
    ):
        raise ValueError(f"pooled_regressions must be True, False or 'auto', got {requested!r}.")
    if not (isinstance(requested, (bool, np.bool_)) and requested):
        return
    if method not in ("mr", "regression"):
        raise ValueError(
            "pooled_regressions=True changes how the nested regressions are fitted, but "
            f"method={method!r} fits none (the cross_check of 'iw' fits them unpooled, by "
            "design): use method='mr' or 'regression', or drop pooled_regressions."
        )


def resolve_pooled(
    requested: bool | str,
    method: str,
    levels: Sequence[str],
    environments: Sequence[Environment],
    *,
    ratio_nodes: Collection[str],
    n_paired: int = 0,
    regressors: Any = None,
    featurizers: Mapping[str, Any] | None = None,
) -> tuple[bool, str]:
    """Whether to pool the nested regressions, and why.

    A regression is pooled when its level has a fitted ratio and is not paired; it sees
    the levels before its own. ``"auto"`` pools when one such regression sees an image.

    Parameters
    ----------
    requested : bool or "auto"
        The ``pooled_regressions`` argument.
    method : str
        The value estimator.
    levels : sequence of str
        The value levels in their order (:func:`~shiftattr.value.build.value_levels`:
        the paired ones last).
    environments : sequence of Environment
        Source and target.
    ratio_nodes : collection of str
        The nodes with a fitted ratio (:func:`~shiftattr.value.build.ratio_nodes`).
    n_paired : int, default 0
        How many of the last levels are paired (their regressions are never pooled).
    regressors : optional
        The ``regressor=`` argument (:func:`~shiftattr.value.candidate_regressors`).
    featurizers : mapping, optional
        The ``features=`` argument: a node with a featurizer is seen through its
        summaries, like an image.

    Returns
    -------
    (bool, str)
        The decision and a sentence saying why (recorded in the result's settings).

    Raises
    ------
    ValueError
        As :func:`check_pooled`.

    Examples
    --------
    >>> import numpy as np
    >>> env = Environment({"D": np.zeros(4), "X": np.zeros((4, 8, 8, 8)), "Y": np.zeros(4)})
    >>> resolve_pooled("auto", "mr", ["D", "X", "Y"], [env], ratio_nodes=["D", "X", "Y"])
    (True, "auto: pooled, the regressions of ['Y'] see images or featurized nodes ['X']")
    >>> resolve_pooled("auto", "mr", ["D", "X"], [env], ratio_nodes=["D", "X"])[0]
    False
    """
    check_pooled(requested, method)
    if isinstance(requested, (bool, np.bool_)):
        return bool(requested), "requested"
    if method != "mr":
        return False, f"auto: not pooled, method={method!r} (pooling is for 'mr')"

    def summarised(node: str) -> bool:
        return bool(featurizers and node in featurizers) or any(
            node in env and is_summarised(env, node) for env in environments
        )

    seen = [i for i, node in enumerate(levels) if summarised(node)]
    pooled = [
        node
        for k, node in enumerate(levels[: len(levels) - n_paired])
        if node in ratio_nodes and seen and seen[0] < k
    ]
    if not pooled:
        return False, (
            "auto: not pooled, no regression that could be pooled (a level with a ratio, "
            "not paired) sees an image or a featurized node"
        )
    images = [levels[i] for i in seen if i < levels.index(pooled[-1])]
    unweighted = [
        name
        for name, reg in candidate_regressors(regressors, 0).items()
        if not takes_sample_weight(reg)
    ]
    if unweighted:
        return False, (
            f"auto: not pooled although the regressions of {pooled} see {images}: "
            f"regressor(s) {unweighted} take no sample_weight"
        )
    return (
        True,
        f"auto: pooled, the regressions of {pooled} see images or featurized nodes {images}",
    )
