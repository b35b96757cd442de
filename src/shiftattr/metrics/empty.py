"""The empty-mask policy shared by every metric, and the finiteness check.

Segmentation metrics are ratios, and they degenerate when a mask is empty: Dice is 0/0 when
reference and prediction are both empty, a relative volume difference divides by zero when
the reference is empty, a surface distance has no surface to measure from, lesion-wise
sensitivity has no reference lesion to detect. Every metric of :mod:`shiftattr.metrics`
therefore takes an ``empty`` argument, resolved by :func:`resolve_empty_policy` into an
:class:`EmptyPolicy` with three fields:

``both``
    Value when reference and prediction are both empty (default NaN).
``reference``
    Value when the reference is empty and the prediction is not (default ``None``: the
    metric's own value, e.g. Dice 0, volume difference inf, lesion sensitivity NaN).
``prediction``
    Value when the prediction is empty and the reference is not (default ``None``: the
    metric's own value, e.g. Dice 0, Hausdorff inf, lesion PPV NaN).

Shortcut strings:

================  =================================================================
``"nan"``         ``EmptyPolicy()`` -- NaN when both are empty, formula otherwise.
                  **Default.** Same as nnU-Net (its ``compute_metrics`` gives
                  ``Dice = nan`` when ``tp + fp + fn == 0`` and averages with
                  ``np.nanmean``, i.e. it leaves such cases out of the mean).
``"ignore"``      ``EmptyPolicy(both=nan, reference=nan)`` -- NaN whenever the
                  reference is empty, like MONAI ``DiceMetric(ignore_empty=True)``
                  (MONAI's default).
``"one"``         ``EmptyPolicy(both=1.0)`` -- for Dice this is MONAI
                  ``ignore_empty=False``: 1 when both are empty, 0 when only the
                  prediction is non-empty. Refused by metrics whose best value is
                  not 1 (distances, volume difference): use ``"best"``.
``"zero"``        ``EmptyPolicy(both=0.0)``.
``"best"``        both empty counts as perfect: 1 for Dice / lesion metrics, 0 for
                  volume difference and Hausdorff distance.
a float           ``EmptyPolicy(both=value)``.
a mapping         ``EmptyPolicy(**mapping)``.
================  =================================================================

NaN is the honest default -- a case without anything to segment says nothing about
segmentation quality -- but a NaN must not silently enter an average.
:func:`check_finite_metric` raises an error that names the cases and tells the user which
``empty=`` policy to choose; the attribution engine calls it on every per-case metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = [
    "EMPTY_PRESETS",
    "EmptyPolicy",
    "EmptySpec",
    "NonFiniteMetricError",
    "apply_empty_policy",
    "check_finite_metric",
    "resolve_empty_policy",
]

EMPTY_PRESETS: tuple[str, ...] = ("nan", "ignore", "one", "zero", "best")
"""Names accepted as string shortcuts for ``empty=``."""


@dataclass(frozen=True)
class EmptyPolicy:
    """Values a metric takes when the reference and/or the prediction is empty.

    Parameters
    ----------
    both : float, default nan
        Value when reference and prediction are both empty (for lesion-wise metrics:
        neither has a lesion after small components are removed).
    reference : float or None, default None
        Value when the reference is empty but the prediction is not. ``None`` keeps the
        metric's own value (Dice 0, volume difference inf, Hausdorff inf, lesion
        sensitivity NaN, lesion PPV and F1 0).
    prediction : float or None, default None
        Value when the prediction is empty but the reference is not. ``None`` keeps the
        metric's own value (Dice 0, volume difference 1, Hausdorff inf, lesion
        sensitivity and F1 0, lesion PPV NaN).

    Examples
    --------
    >>> from shiftattr.metrics import EmptyPolicy
    >>> EmptyPolicy(both=1.0)
    EmptyPolicy(both=1.0, reference=None, prediction=None)
    """

    both: float = math.nan
    reference: float | None = None
    prediction: float | None = None

    def __post_init__(self) -> None:
        for field in ("both", "reference", "prediction"):
            value = getattr(self, field)
            if value is None and field != "both":
                continue
            if isinstance(value, bool) or not isinstance(
                value, (int, float, np.floating, np.integer)
            ):
                raise TypeError(
                    f"EmptyPolicy.{field} must be a float"
                    f"{'' if field == 'both' else ' or None'}, got {value!r}"
                )
            object.__setattr__(self, field, float(value))


EmptySpec = (
    EmptyPolicy | Literal["nan", "ignore", "one", "zero", "best"] | float | Mapping[str, Any]
)
"""What ``empty=`` accepts: an :class:`EmptyPolicy`, a preset name, a float or a mapping."""


def resolve_empty_policy(empty: EmptySpec, *, best: float = 1.0) -> EmptyPolicy:
    """Turn an ``empty=`` argument into an :class:`EmptyPolicy`.

    Parameters
    ----------
    empty : EmptyPolicy, str, float or mapping
        ``"nan"`` (default of every metric; nnU-Net convention), ``"ignore"`` (MONAI
        ``ignore_empty=True``), ``"one"`` (MONAI ``ignore_empty=False`` for Dice),
        ``"zero"``, ``"best"``; a float (value when both are empty); a mapping of
        :class:`EmptyPolicy` fields; or an :class:`EmptyPolicy`. ``"one"`` needs
        ``best == 1``: for a metric where lower is better it would score a correctly
        empty case as an error.
    best : float, default 1.0
        The metric's best value, used by ``"best"``.

    Returns
    -------
    EmptyPolicy
        The resolved policy.

    Raises
    ------
    ValueError
        If ``empty`` is an unknown string, or ``"one"`` for a metric whose best value
        is not 1.
    TypeError
        If ``empty`` has an unsupported type.

    Examples
    --------
    >>> from shiftattr.metrics import resolve_empty_policy
    >>> resolve_empty_policy("ignore")
    EmptyPolicy(both=nan, reference=nan, prediction=None)
    >>> resolve_empty_policy("best", best=0.0).both
    0.0
    """
    if isinstance(empty, EmptyPolicy):
        return empty
    if isinstance(empty, str):
        key = empty.strip().lower()
        if key == "nan":
            return EmptyPolicy()
        if key == "ignore":
            return EmptyPolicy(both=math.nan, reference=math.nan)
        if key == "one":
            if best != 1.0:
                raise ValueError(
                    f"empty='one' scores a case whose reference and prediction are both "
                    f"empty (a correctly empty case) as 1.0, but this metric's best value "
                    f"is {best:g} (lower is better): that would count a right answer as an "
                    f"error. Use empty='best' (both empty = {best:g}), or a float for "
                    "another value."
                )
            return EmptyPolicy(both=1.0)
        if key == "zero":
            return EmptyPolicy(both=0.0)
        if key == "best":
            return EmptyPolicy(both=best)
        raise ValueError(
            f"unknown empty policy {empty!r}; use one of {', '.join(map(repr, EMPTY_PRESETS))}, "
            "a float, or shiftattr.metrics.EmptyPolicy(both=..., reference=..., prediction=...)"
        )
    if isinstance(empty, Mapping):
        return EmptyPolicy(**empty)
    if isinstance(empty, (int, float, np.floating, np.integer)) and not isinstance(empty, bool):
        return EmptyPolicy(both=float(empty))
    raise TypeError(
        f"empty must be an EmptyPolicy, one of {EMPTY_PRESETS}, a float or a mapping, "
        f"got {type(empty).__name__}"
    )


def apply_empty_policy(
    values: np.ndarray, ref_empty: np.ndarray, pred_empty: np.ndarray, policy: EmptyPolicy
) -> np.ndarray:
    """Overwrite the values of empty cases according to ``policy`` (in place).

    Parameters
    ----------
    values : numpy.ndarray
        Formula values, float64 of shape ``(B,)``; modified in place.
    ref_empty, pred_empty : numpy.ndarray
        Boolean ``(B,)``: which references / predictions are empty.
    policy : EmptyPolicy
        The policy.

    Returns
    -------
    numpy.ndarray
        ``values``.

    Examples
    --------
    >>> import numpy as np
    >>> from shiftattr.metrics.empty import EmptyPolicy, apply_empty_policy
    >>> v = np.array([0.5, np.nan, 0.0])
    >>> apply_empty_policy(v, np.array([False, True, True]), np.array([False, True, False]),
    ...                    EmptyPolicy(both=1.0, reference=-1.0)).tolist()
    [0.5, 1.0, -1.0]
    """
    ref_empty = np.asarray(ref_empty, dtype=bool)
    pred_empty = np.asarray(pred_empty, dtype=bool)
    values[ref_empty & pred_empty] = policy.both
    if policy.reference is not None:
        values[ref_empty & ~pred_empty] = policy.reference
    if policy.prediction is not None:
        values[pred_empty & ~ref_empty] = policy.prediction
    return values


class NonFiniteMetricError(ValueError):
    """A per-case metric is NaN or infinite (usually an empty mask under a distance).

    Raised by :func:`check_finite_metric`; a :class:`ValueError`, so existing handlers
    still catch it.

    Examples
    --------
    >>> issubclass(NonFiniteMetricError, ValueError)
    True
    """


def check_finite_metric(
    values: Any,
    case_ids: Sequence[Any] | None = None,
    metric_name: str = "metric",
    *,
    max_listed: int = 20,
) -> np.ndarray:
    """Raise an error naming the cases whose metric is NaN or infinite.

    Parameters
    ----------
    values : array_like
        Per-case metric values, shape ``(N,)`` (a scalar counts as one case).
    case_ids : sequence, optional
        Identifier of each case (same length as ``values``); positions are used if omitted.
    metric_name : str, default "metric"
        Name used in the message.
    max_listed : int, default 20
        At most this many offending cases are listed; the rest are counted.

    Returns
    -------
    numpy.ndarray
        ``values`` as a float64 array ``(N,)`` when all are finite.

    Raises
    ------
    NonFiniteMetricError
        If any value is NaN or infinite (the message names those cases and says how to
        choose an ``empty=`` policy).
    ValueError
        If ``case_ids`` has the wrong length.

    Examples
    --------
    >>> import numpy as np
    >>> from shiftattr.metrics import check_finite_metric
    >>> check_finite_metric([0.8, 0.7]).tolist()
    [0.8, 0.7]
    >>> check_finite_metric([0.8, np.nan], case_ids=["sub-01", "sub-02"],
    ...                     metric_name="dice")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    shiftattr.metrics.empty.NonFiniteMetricError: metric 'dice' is not finite for 1 of 2 cases: 'sub-02' (nan). ...
    """
    v = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if v.ndim != 1:
        raise ValueError(f"{metric_name} values must be one per case (1-D), got shape {v.shape}")
    if case_ids is not None and len(case_ids) != v.shape[0]:
        raise ValueError(
            f"case_ids has {len(case_ids)} entries but there are {v.shape[0]} {metric_name} values"
        )
    bad = np.flatnonzero(~np.isfinite(v))
    if bad.size == 0:
        return v
    ids = list(case_ids) if case_ids is not None else None
    listed = ", ".join(
        f"{(ids[i] if ids is not None else int(i))!r} ({v[i]})" for i in bad[:max_listed]
    )
    more = f" and {bad.size - max_listed} more" if bad.size > max_listed else ""
    label = "" if ids is not None else ("case index " if bad.size == 1 else "case indices ")
    raise NonFiniteMetricError(
        f"metric {metric_name!r} is not finite for {bad.size} of {v.shape[0]} cases: "
        f"{label}{listed}{more}. NaN/inf usually means an empty reference and/or prediction "
        f"(nothing to segment, or no lesion left after removing small components). Choose "
        f"how such cases count with the metric's empty= policy, e.g. empty='best' "
        f"(both empty counts as perfect: 1 for Dice, 0 for a distance), empty=0.0, or "
        f"shiftattr.metrics.EmptyPolicy(both=..., reference=..., prediction=...), "
        f"or remove those cases explicitly."
    )
