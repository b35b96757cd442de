"""Per-case voxelwise segmentation metrics.

Every metric has the same contract::

    fn(pred, ref, *, spacing=None, empty="nan", batch=None, **params) -> float | numpy.ndarray

``pred`` and ``ref`` are binary masks (bool, or integers / floats holding only 0 and 1;
numpy arrays or anything with ``.detach().cpu().numpy()`` such as torch tensors) of one
case (2D or 3D spatial dims) or of a batch ``(B, *spatial)``. How the layout is told apart
(see :func:`shiftattr.metrics.resolve_layout`):

* ``batch=None`` (default): ``ndim == 2`` is one 2D case, ``ndim == 3`` is one 3D case,
  ``ndim == 4`` is a batch of 3D cases.
* ``batch=True``: the first axis is the batch axis (``ndim == 3`` is a batch of 2D cases,
  ``ndim == 4`` a batch of 3D cases).
* ``batch=False``: one case, ``ndim`` must be 2 or 3.

One case returns a Python ``float``; a batch returns a float64 array of shape ``(B,)``.

Metrics are looked up by name with :func:`get_metric`; :data:`METRICS` maps names to
functions and :func:`available_metrics` lists the names. :data:`HIGHER_IS_BETTER` gives
each metric's direction (and that of common metric names such as ``"accuracy"`` or
``"loss"``), which :func:`shiftattr.attribute` uses to word and colour its results.

Empty masks
-----------
Every metric takes an ``empty`` policy (:class:`EmptyPolicy`, or a shortcut string / float)
that fixes the value of the cases where the metric is undefined or degenerate: reference and
prediction both empty, reference empty only, prediction empty only. The default
``empty="nan"`` returns NaN when both are empty and otherwise the value of the formula
(Dice 0 when exactly one mask is empty). That is nnU-Net's convention (Dice is NaN when
``tp + fp + fn == 0`` and nnU-Net leaves such cases out of its mean).
``empty="ignore"`` gives NaN whenever the reference is empty, like MONAI's
``DiceMetric(ignore_empty=True)`` (its default); ``empty="one"`` (or ``"best"`` for Dice)
gives 1 when both are empty and 0 when only the prediction is non-empty, like MONAI's
``ignore_empty=False``. NaN values must not silently enter an average:
:func:`check_finite_metric` raises an error naming the offending cases.

Examples
--------
>>> import numpy as np
>>> from shiftattr.metrics import get_metric, available_metrics
>>> available_metrics()
['dice', 'hausdorff95', 'lesion_f1', 'lesion_ppv', 'lesion_sensitivity', 'volume_difference']
>>> ref = np.zeros((4, 4), dtype=bool); ref[:2, :2] = True
>>> pred = np.zeros((4, 4), dtype=bool); pred[:2, :1] = True
>>> round(get_metric("dice")(pred, ref), 4)
0.6667
>>> from shiftattr.metrics import HIGHER_IS_BETTER
>>> HIGHER_IS_BETTER["dice"], HIGHER_IS_BETTER["hausdorff95"], HIGHER_IS_BETTER["loss"]
(True, False, False)
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import numpy as np

from shiftattr.metrics._masks import as_binary_masks, resolve_layout
from shiftattr.metrics.distance import hausdorff95
from shiftattr.metrics.empty import (
    EmptyPolicy,
    NonFiniteMetricError,
    check_finite_metric,
    resolve_empty_policy,
)
from shiftattr.metrics.lesionwise import (
    LesionCounts,
    lesion_counts,
    lesion_f1,
    lesion_ppv,
    lesion_sensitivity,
)
from shiftattr.metrics.overlap import dice, volume_difference

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "EmptyPolicy",
    "LesionCounts",
    "MetricFunction",
    "NonFiniteMetricError",
    "as_binary_masks",
    "available_metrics",
    "check_finite_metric",
    "dice",
    "get_metric",
    "hausdorff95",
    "lesion_counts",
    "lesion_f1",
    "lesion_ppv",
    "lesion_sensitivity",
    "metric_direction",
    "resolve_direction",
    "resolve_empty_policy",
    "resolve_layout",
    "volume_difference",
]

MetricFunction = Callable[..., Any]
"""Type of a registered metric.

Signature: ``fn(pred, ref, *, spacing=None, empty="nan", batch=None, **params)``.
"""

METRICS: MappingProxyType[str, MetricFunction] = MappingProxyType(
    {
        "dice": dice,
        "hausdorff95": hausdorff95,
        "lesion_f1": lesion_f1,
        "lesion_ppv": lesion_ppv,
        "lesion_sensitivity": lesion_sensitivity,
        "volume_difference": volume_difference,
    }
)
"""Read-only mapping from metric name to metric function."""

HIGHER_IS_BETTER: dict[str, bool] = {
    # the registry (volume_difference in its default, unsigned form |V_pred - V_ref| / V_ref)
    "dice": True,
    "hausdorff95": False,
    "lesion_f1": True,
    "lesion_ppv": True,
    "lesion_sensitivity": True,
    "volume_difference": False,
    # common names of per-case scores a user may pass as metric_name
    "accuracy": True,
    "auc": True,
    "balanced_accuracy": True,
    "f1": True,
    "hit": True,
    "hit_rate": True,
    "iou": True,
    "jaccard": True,
    "precision": True,
    "recall": True,
    "sensitivity": True,
    "specificity": True,
    "absolute_error": False,
    "brier": False,
    "cross_entropy": False,
    "error": False,
    "error_rate": False,
    "log_loss": False,
    "loss": False,
    "mae": False,
    "mse": False,
    "rmse": False,
    "squared_error": False,
}
"""Direction of a metric: ``True`` where a higher value is better, ``False`` where lower is.

Keys are the names of :data:`METRICS` and common names of per-case scores (``"accuracy"``,
``"auc"``, ``"f1"``, ``"hit_rate"``...; ``"loss"``, ``"squared_error"``, ``"mse"``,
``"mae"``, ``"log_loss"``, ``"brier"``, ``"error"``...). ``volume_difference`` is the
registry's default, unsigned ``|V_pred - V_ref| / V_ref`` (0 is perfect); its signed form
has no better direction.

:func:`shiftattr.attribute` looks its ``metric_name`` up here when ``higher_is_better`` is
not given: case-insensitively, with ``-`` and spaces read as ``_`` (``"Squared error"``
finds ``"squared_error"``). A name that is not a key leaves the direction unknown
(``None``): results are then worded neutrally (positive = the metric fell). See
:func:`metric_direction`; the example is in the module docstring.
"""


def _normalise_name(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def metric_direction(name: str | None) -> bool | None:
    """The direction of the metric called ``name`` in :data:`HIGHER_IS_BETTER`, or None.

    Parameters
    ----------
    name : str or None
        A metric name, matched case-insensitively with ``-`` and spaces read as ``_``.

    Returns
    -------
    bool or None
        ``True`` (higher is better), ``False`` (lower is better) or ``None`` (unknown).

    Examples
    --------
    >>> from shiftattr.metrics import metric_direction
    >>> metric_direction("Dice"), metric_direction("Squared error"), metric_direction("hit")
    (True, False, True)
    >>> metric_direction("metric") is None
    True
    """
    if not isinstance(name, str):
        return None
    table = {_normalise_name(k): bool(v) for k, v in HIGHER_IS_BETTER.items()}
    return table.get(_normalise_name(name))


def resolve_direction(higher_is_better: Any, metric_name: str | None) -> bool | None:
    """The direction given (checked), or else the one :func:`metric_direction` knows.

    Parameters
    ----------
    higher_is_better : bool or None
        ``True``/``False`` as given; ``None`` looks ``metric_name`` up.
    metric_name : str or None

    Returns
    -------
    bool or None

    Raises
    ------
    TypeError
        If ``higher_is_better`` is neither a bool nor None.

    Examples
    --------
    >>> from shiftattr.metrics import resolve_direction
    >>> resolve_direction(None, "Dice"), resolve_direction(False, "Dice")
    (True, False)
    """
    if higher_is_better is None:
        return metric_direction(metric_name)
    if isinstance(higher_is_better, (bool, np.bool_)):
        return bool(higher_is_better)
    raise TypeError(f"higher_is_better must be True, False or None; got {higher_is_better!r}")


def available_metrics() -> list[str]:
    """Return the names accepted by :func:`get_metric`.

    Returns
    -------
    list of str
        Sorted metric names.

    Examples
    --------
    >>> from shiftattr.metrics import available_metrics
    >>> "dice" in available_metrics()
    True
    """
    return sorted(METRICS)


def get_metric(name: str) -> MetricFunction:
    """Return the metric function registered under ``name``.

    Parameters
    ----------
    name : str
        One of :func:`available_metrics` (case-insensitive, ``-`` and ``_`` are equivalent).

    Returns
    -------
    callable
        ``fn(pred, ref, *, spacing=None, empty="nan", batch=None, **params)`` returning a
        float for one case or a float64 array ``(B,)`` for a batch.

    Raises
    ------
    TypeError
        If ``name`` is not a str (a metric callable needs no look-up: use it directly).
    ValueError
        If ``name`` is not a registered metric; the message lists the available names.

    Examples
    --------
    >>> from shiftattr.metrics import get_metric
    >>> get_metric("lesion_f1").__name__
    'lesion_f1'
    >>> get_metric("jaccard")
    Traceback (most recent call last):
    ...
    ValueError: unknown metric 'jaccard'; available metrics: dice, hausdorff95, lesion_f1, lesion_ppv, lesion_sensitivity, volume_difference
    """
    if not isinstance(name, str):
        raise TypeError(
            f"metric name must be a str, one of {', '.join(available_metrics())}; got "
            f"{type(name).__name__} {name!r}"
        )
    key = name.strip().lower().replace("-", "_")
    try:
        return METRICS[key]
    except KeyError:
        raise ValueError(
            f"unknown metric {name!r}; available metrics: {', '.join(available_metrics())}"
        ) from None
