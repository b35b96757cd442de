"""Which value estimator ``method="auto"`` runs, and why.

:func:`shiftattr.attribute` estimates every coalition's metric with one of the value
estimators of :mod:`shiftattr.value`. Its default, ``method="auto"``, runs ``"mr"``
(multiply robust: nested regressions of the metric corrected by the density ratios, with
bias-aware intervals and ``bootstrap="auto"`` resolved to ``"fixed"``, see
:func:`~shiftattr.bootstrap.resolve_bootstrap`) where the data allow it and our
benchmarks measured it, and ``"iw"`` (importance weighting of the source cases, the
paper's estimator) otherwise:

- ``"iw"`` with an option only it takes (``truncate``, ``cross_check``);
- ``"mr"`` when the data allow it and it was measured on such data: the metric at the
  target cases is known (``target_metric``, or a callable metric, which is then also
  run on the target), every graph node is in both environments and attributed (the
  default ``mechanisms``), at most :data:`MANY_REGRESSION_MECHANISMS`
  mechanisms are weighted (``"mr"``'s regressions double with every one), and if
  nodes are seen through summaries (images, masks, more than 64 values per case),
  ``features`` gives one of them a featurizer (regressions on
  intensity statistics extrapolate across a scanner shift; the synthetic MS figures
  below were measured with the model's output summaries,
  ``features={"X": adapter.output_features}``);
- ``"iw"`` otherwise. Wherever ``"iw"`` runs, an option only ``"mr"`` takes (``both_samples``,
  ``pooled_regressions=True``, a ``correction_cap`` other than the default,
  ``regressor``, ``features``, ``interval="bias_aware"``) is then refused with the reason
  ``"iw"`` runs, rather than ignored.

Measured in ``benchmarks/RESULTS.md``:

- on the tabular SCMs (section 6; 4 SCMs, N = 100, 300, 1000, 3 seeds) ``"mr"``'s error
  was below ``"iw"``'s in each of the 12 (SCM, N) cells (MAE 0.022 against 0.054 on
  average; ``"regression"`` or ``"mis"`` was lower still in a few cells) and its
  bias-aware intervals held the truth for 83-100 % of the 9-12 values per cell (97 %
  on average), where ``"iw"``'s held it for 42-83 % with the fixed bootstrap and 50-95 %
  with the refit one (section 1c, 5 seeds, where 31 of its 37 misses came with no
  warning);
- on the synthetic MS benchmark (11 scenarios, 16³, image-statistics ratios, the
  model's output summaries as the regressions' features of the image) its MAE was
  0.024 / 0.018 / 0.013 at N = 100 / 300 / 1000 against 0.051 / 0.042 / 0.040 for
  ``"iw"``, and its bias-aware intervals held the truth for 98 / 97 / 98 % of the
  values (``"iw"``'s fixed-bootstrap intervals: 67 / 68 / 68 %).

The choice and its reason are recorded in ``result.settings`` (``method``,
``method_reason``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shiftattr.environment import Environment
from shiftattr.graph import CausalGraph
from shiftattr.value.features import is_summarised

__all__ = ["MANY_REGRESSION_MECHANISMS", "names_levels", "resolve_method"]

#: ``correction_cap``'s default in :func:`shiftattr.attribute`.
_DEFAULT_CAP = "sqrt"

#: Above this many weighted mechanisms ``"mr"``'s nested regressions (up to
#: ``2 ** (n + 1) - 2``, cross-fitted per candidate regressor) cost minutes to hours:
#: ``"auto"`` runs ``"iw"`` and an explicit ``"mr"`` gets a ``costly_regressions`` warning.
MANY_REGRESSION_MECHANISMS = 8


def resolve_method(
    method: str,
    graph: CausalGraph,
    environments: Sequence[Environment],
    *,
    target_metric_known: bool,
    mechanisms: Sequence[str] | None = None,
    paired: Any = None,
    truncate: float | None = None,
    cross_check: bool = False,
    both_samples: Any = False,
    pooled_regressions: Any = "auto",
    correction_cap: Any = _DEFAULT_CAP,
    regressor: Any = None,
    features: Mapping[str, Any] | None = None,
    interval: str = "auto",
) -> tuple[str, str]:
    """The value estimator :func:`shiftattr.attribute` runs, and a sentence saying why.

    Parameters
    ----------
    method : str
        The ``method`` argument; anything but ``"auto"`` is returned as it is.
    graph : CausalGraph
    environments : sequence of Environment
        Source and target.
    target_metric_known : bool
        Whether the metric at the target cases is available (``target_metric`` given,
        or a callable metric).
    mechanisms : sequence of str, optional
        The attributed mechanisms; default every graph node.
    paired, truncate, cross_check, both_samples, pooled_regressions, correction_cap, regressor, features, interval
        The arguments of the same names of :func:`shiftattr.attribute`.

    Returns
    -------
    (str, str)
        The method and the reason (recorded as ``settings["method_reason"]``).

    Raises
    ------
    ValueError
        If ``"auto"`` runs ``"iw"`` but an option only ``"mr"`` takes was given (it
        would be ignored or refused with a message about a method nobody chose): the
        message says why ``"iw"`` runs and what to change.

    Examples
    --------
    >>> import numpy as np
    >>> graph = CausalGraph({"D": [], "X": ["D"]})
    >>> tab = Environment({"D": np.zeros(4), "X": np.zeros(4)})
    >>> img = Environment({"D": np.zeros(4), "X": np.zeros((4, 8, 8, 8))})
    >>> resolve_method("auto", graph, [tab, tab], target_metric_known=True)[0]
    'mr'
    >>> resolve_method("auto", graph, [img, img], target_metric_known=True)[0]
    'iw'
    >>> resolve_method("auto", graph, [img, img], target_metric_known=True,
    ...                features={"X": lambda env: np.zeros((len(env), 3))})[0]
    'mr'
    >>> resolve_method("auto", graph, [tab, tab], target_metric_known=False)[1]
    "auto: 'iw', the metric at the target cases is unknown (pass target_metric, or a callable metric, for 'mr')"
    >>> resolve_method("mr", graph, [tab, tab], target_metric_known=False)
    ('mr', 'requested')
    """
    if method != "auto":
        return method, "requested"
    mr_only = [
        name
        for name, given in (
            ("both_samples", names_levels(both_samples)),
            ("pooled_regressions=True", _is_true(pooled_regressions)),
            ("correction_cap", not _is_default_cap(correction_cap)),
            # cross_check's own regressions use these two
            ("regressor", regressor is not None and not cross_check),
            ("features", bool(features) and not cross_check),
            ("interval='bias_aware'", interval == "bias_aware"),
        )
        if given
    ]
    if truncate is not None or cross_check:
        what = "truncate" if truncate is not None else "cross_check=True"
        method, why = "iw", f"the one method that takes {what}"
        remedy = f"choose between {what} and them"
    else:
        method, why, required = _allowed_by_data(
            graph, environments, target_metric_known, mechanisms, paired, features
        )
        # an unknown target metric or a missing node stops "mr" itself; the rest are
        # what "auto" was measured on, and method="mr" overrides them
        remedy = (
            "provide what 'mr' needs" if required else "pass method='mr' to run it all the same"
        )
    if method == "iw" and mr_only:
        raise ValueError(
            f"method='auto' runs 'iw' here ({why}), which takes no {', '.join(mr_only)}: "
            f"{remedy}, or leave {', '.join(mr_only)} out."
        )
    return method, f"auto: {method!r}, {why}"


def _allowed_by_data(
    graph: CausalGraph,
    environments: Sequence[Environment],
    target_metric_known: bool,
    mechanisms: Sequence[str] | None,
    paired: Any,
    features: Mapping[str, Any] | None,
) -> tuple[str, str, bool]:
    """``"mr"`` where the data allow it and it was measured, else ``"iw"``; why; and
    whether what stops ``"mr"`` is a requirement of ``"mr"`` itself (not only of
    ``"auto"``'s measurements)."""
    if not target_metric_known:
        why = "the metric at the target cases is unknown (pass target_metric, or a callable metric, for 'mr')"
        return "iw", why, True
    missing = [(n, e.name) for e in environments for n in graph.nodes if n not in e]
    if missing:
        return (
            "iw",
            f"{missing} (node, environment) are missing and 'mr' regresses along every node",
            True,
        )
    attributed = set(graph.nodes if mechanisms is None else mechanisms)
    left_out = [n for n in graph.nodes if n not in attributed]
    if left_out:
        why = (
            f"mechanisms= leaves {left_out} out: 'mr' regresses along every node, and was "
            "measured with every node attributed"
        )
        return "iw", why, False
    substituted = {paired} if isinstance(paired, str) else set(paired or ())
    weighted = len([n for n in graph.nodes if n not in substituted])
    if weighted > MANY_REGRESSION_MECHANISMS:
        why = (
            f"{weighted} weighted mechanisms: 'mr' would fit up to {2 ** (weighted + 1) - 2} "
            "nested regressions (method='mr' to pay for them)"
        )
        return "iw", why, False
    # every node is in every environment here
    summarised = [n for n in graph.nodes if any(is_summarised(e, n) for e in environments)]
    if summarised and not set(summarised) & set(features or {}):
        why = (
            f"nodes {summarised} are seen through summaries (images, masks, or more than 64 "
            "values per case) and features= gives none of them a featurizer: 'mr' would "
            "regress on their generic statistics, which for an image extrapolate across a "
            "scanner shift (pass e.g. features={'X': adapter.output_features} for 'mr')"
        )
        return "iw", why, False
    return "mr", "the metric is known at the target cases and every node in both", False


def names_levels(both_samples: Any) -> bool:
    """Whether a ``both_samples`` argument asks for any level: ``True``, or a non-empty
    sequence of node names.

    Parameters
    ----------
    both_samples : bool, sequence of str or None
        :func:`shiftattr.attribute`'s argument of that name (a numpy array of names too).

    Returns
    -------
    bool

    Examples
    --------
    >>> names_levels(False), names_levels(True), names_levels([]), names_levels(["X"])
    (False, True, False, True)
    """
    if both_samples is None or isinstance(both_samples, (bool, np.bool_)):
        return bool(both_samples)
    try:
        return len(list(both_samples)) > 0
    except TypeError:  # not a sequence: asked for something, which attribute() refuses
        return True


def _is_true(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_)) and bool(value)


def _is_default_cap(cap: Any) -> bool:
    return isinstance(cap, str) and cap == _DEFAULT_CAP
