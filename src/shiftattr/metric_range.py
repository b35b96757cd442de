"""Where the target's per-case metric reaches beyond every source case.

Importance weighting (``method="iw"``) estimates every coalition's metric as a weighted
mean of the *source* cases' metric values, which produces no value beyond their range:
a target whose cases score beyond every source case (a failure the source never shows,
such as a distant false positive that sends a Hausdorff distance far above anything seen
before; or a heavy-tailed loss whose tail grew) holds a part of its mean that the
weighted source can match only by leaning on its own extreme cases, which density ratios
(weighing cases by how they look, not by their metric) have no reason to do. That part
is then missed, or put on another mechanism, and the target mean itself is noisy there,
so the closure check may not see it.

The check needs no model: if both environments' metrics came from one distribution,
the ``k`` most extreme of the pooled ``N_s + N_t`` values would all be target values with
probability ``C(N_t, k) / C(N_s + N_t, k)`` (exchangeability; ties, as in a bounded
metric's zeros, only make it conservative, since a case must lie strictly beyond).
:func:`metric_range` measures both tails; :func:`metric_beyond_source` turns them into
the ``metric_beyond_source`` warning of :func:`~shiftattr.attribute`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "METRIC_RANGE_ALPHA",
    "METRIC_RANGE_MIN_SHARE",
    "describe_metric_range",
    "exceedance_pvalue",
    "metric_beyond_source",
    "metric_range",
    "values_beyond_span",
]

#: Level of the two-sided exceedance test (each tail at half of it).
METRIC_RANGE_ALPHA = 0.01
#: The part of the target's mean beyond the source's range, as a fraction of the
#: measured change, from which it counts.
METRIC_RANGE_MIN_SHARE = 0.05


def exceedance_pvalue(k: int, n_source: int, n_target: int) -> float:
    """Chance that the ``k`` most extreme of the pooled cases all come from the target.

    Under exchangeability (both samples from one distribution, no ties) this is the
    probability that at least ``k`` target values lie beyond every source value on one
    side: ``prod_{i<k} (N_t - i) / (N_s + N_t - i)``.

    Parameters
    ----------
    k : int
        Target values beyond the source's extreme.
    n_source, n_target : int
        The two samples' sizes.

    Returns
    -------
    float
        The one-sided p-value (1 for ``k = 0``).

    Examples
    --------
    >>> exceedance_pvalue(0, 100, 100)
    1.0
    >>> round(exceedance_pvalue(1, 100, 100), 4)     # 100 / 200
    0.5
    >>> round(exceedance_pvalue(3, 500, 80), 5)      # 80 * 79 * 78 / (580 * 579 * 578)
    0.00254
    """
    if k <= 0:
        return 1.0
    if k > n_target:
        return 0.0
    i = np.arange(k)
    return float(np.exp(np.sum(np.log(n_target - i) - np.log(n_source + n_target - i))))


def _tail(distance: np.ndarray, n_source: int) -> dict[str, Any]:
    """One tail's record from each target case's distance beyond the source's extreme."""
    k = int(np.count_nonzero(distance > 0))
    return {
        "n_beyond": k,
        "share": k / len(distance),
        "excess": float(distance.mean()),
        "p_value": exceedance_pvalue(k, n_source, len(distance)),
    }


def metric_range(source_metric: np.ndarray, target_metric: np.ndarray) -> dict[str, Any]:
    """How far the target's per-case metric reaches beyond the source's range, per tail.

    Parameters
    ----------
    source_metric, target_metric : array-like of shape (N_s,) and (N_t,)
        Finite per-case metric values in each environment.

    Returns
    -------
    dict
        ``n_source``, ``n_target``, ``source_min``, ``source_max``; ``low`` and ``high``, each with ``n_beyond`` (target
        cases strictly beyond the source's extreme), ``share`` (of the target's cases),
        ``excess`` (their mean distance beyond it, averaged over *all* target cases: the
        part of the target's mean carried by values no source case holds; a measure of
        the support the source lacks, not a bound on an estimator's error, since weights
        can still match the mean by leaning on the source's extremes) and
        ``p_value`` (:func:`exceedance_pvalue`); ``excess`` (both tails') and ``change``
        (target mean minus source mean).

    Raises
    ------
    ValueError
        If either sample is empty or holds NaN or infinite values.

    Examples
    --------
    >>> r = metric_range(np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0, 7.0]))
    >>> r["high"]["n_beyond"], r["high"]["excess"], r["low"]["n_beyond"], r["change"]
    (2, 1.5, 0, 2.25)
    """
    ms = np.asarray(source_metric, dtype=float).ravel()
    mt = np.asarray(target_metric, dtype=float).ravel()
    for name, values in (("source_metric", ms), ("target_metric", mt)):
        if not values.size or not np.isfinite(values).all():
            raise ValueError(
                f"metric_range needs finite per-case values in {name}, got "
                f"{values.size} value(s){'' if not values.size else ' with NaN or inf'}; "
                "drop or fill the cases without a value (see the empty-mask policies)."
            )
    lo, hi = float(ms.min()), float(ms.max())
    low = _tail(np.clip(lo - mt, 0.0, None), len(ms))
    high = _tail(np.clip(mt - hi, 0.0, None), len(ms))
    return {
        "n_source": len(ms),
        "n_target": len(mt),
        "source_min": lo,
        "source_max": hi,
        "low": low,
        "high": high,
        "excess": low["excess"] + high["excess"],
        "change": float(mt.mean() - ms.mean()),
    }


def metric_beyond_source(
    rng: dict[str, Any],
    metric_name: str = "metric",
    alpha: float = METRIC_RANGE_ALPHA,
    min_share: float = METRIC_RANGE_MIN_SHARE,
) -> list[dict[str, Any]]:
    """The ``metric_beyond_source`` warning, if the target's metric clearly leaves the
    source's range and what lies beyond matters for the measured change.

    It fires for a tail that holds more target cases beyond every source case than
    chance allows (:func:`exceedance_pvalue` below ``alpha / 2``) and whose part of the
    target's mean beyond the source's extreme (the tail's ``excess``) is at least
    ``min_share`` of the measured change.

    Parameters
    ----------
    rng : dict
        :func:`metric_range`'s record.
    metric_name : str, default "metric"
        For the message.
    alpha : float, default METRIC_RANGE_ALPHA
        Level of the test over both tails.
    min_share : float, default METRIC_RANGE_MIN_SHARE
        Fraction of ``|rng["change"]|``.

    Returns
    -------
    list of dict
        No warning, or one (``code``, ``mechanism`` None, ``message``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> src, tgt = rng.chisquare(1, 500), 4 * rng.chisquare(1, 80)   # the tail grew
    >>> [w["code"] for w in metric_beyond_source(metric_range(src, tgt), "squared error")]
    ['metric_beyond_source']
    >>> metric_beyond_source(metric_range(src, rng.chisquare(1, 80)))  # alike
    []
    """
    change = abs(rng["change"])
    parts = []
    for side in ("low", "high"):
        t = rng[side]
        if not (t["p_value"] < alpha / 2 and t["excess"] > 0 and t["excess"] >= min_share * change):
            continue
        bound = rng["source_min"] if side == "low" else rng["source_max"]
        word = "below the source's smallest" if side == "low" else "above the source's largest"
        share = f", {t['excess'] / change:.0%} of the measured change" if change > 0 else ""
        parts.append(
            f"{t['n_beyond']} target case(s) ({t['share']:.0%}) lie {word} {metric_name} "
            f"({bound:.4g}; p = {t['p_value']:.1e} if both environments' values were "
            f"alike), {t['excess']:.4g} of the target's mean beyond it{share}"
        )
    if not parts:
        return []
    return [
        {
            "code": "metric_beyond_source",
            "mechanism": None,
            "message": (
                "; ".join(parts) + ". No weighting of source cases produces such values: "
                "method='iw' can match the target's mean only by leaning on the source's "
                "extreme cases, which density ratios (weighing cases by how they look, not "
                "by their metric) have no reason to do, so it likely misses that part of "
                "the change or puts it on another mechanism. The target shows failures the "
                "source never does, or the metric is heavy-tailed: look at those cases, and "
                "prefer method='mis' or 'mr', which also use the target's cases."
            ),
        }
    ]


def describe_metric_range(
    rng: dict[str, Any] | None, metric_name: str = "metric", alpha: float = METRIC_RANGE_ALPHA
) -> str | None:
    """One line on the target cases beyond the source's range, for the summary and the
    report: every tail whose exceedance is beyond chance, whatever the method (the
    warning is for ``"iw"``; with ``"mis"`` or ``"mr"`` such cases are still a finding:
    failures the target shows and the source never does).

    Parameters
    ----------
    rng : dict or None
        :func:`metric_range`'s record (``Attribution.diagnostics["metric_range"]``).
    metric_name : str, default "metric"
    alpha : float, default METRIC_RANGE_ALPHA
        Level of the test over both tails.

    Returns
    -------
    str or None
        None when no tail passes the test (or there is no record).

    Examples
    --------
    >>> rng = metric_range(np.arange(20.0), np.r_[np.arange(5.0), np.full(5, 30.0)])
    >>> print(describe_metric_range(rng, "HD95"))
    5 of 10 target cases above the source's largest HD95 (19; p = 1.8e-03 if alike; 5.5 of the target's mean beyond it)
    >>> describe_metric_range(metric_range(np.arange(10.0), np.arange(10.0))) is None
    True
    """
    if not rng:
        return None
    parts = []
    for side, word, bound in (
        ("low", "below the source's smallest", rng["source_min"]),
        ("high", "above the source's largest", rng["source_max"]),
    ):
        t = rng[side]
        if t["p_value"] < alpha / 2:
            parts.append(
                f"{t['n_beyond']} of {rng['n_target']} target cases {word} {metric_name} "
                f"({bound:.4g}; p = {t['p_value']:.1e} if alike; {t['excess']:.4g} of "
                "the target's mean beyond it)"
            )
    return "; ".join(parts) or None


def values_beyond_span(
    values: Mapping[str, float], metrics: Sequence[np.ndarray | None], metric_name: str = "metric"
) -> list[dict[str, Any]]:
    """A ``value_beyond_span`` warning for each mechanism whose value is larger in magnitude
    than the metric's whole span over the cases (largest minus smallest per-case value).

    Every coalition's metric is a mean of per-case values, a difference of two such means
    lies within the span of the values they average, and a Shapley value is a weighted
    mean of such differences: an estimate built from these cases goes beyond the span
    only by extrapolating (a regression beyond the cases it was fitted on, corrections
    where the environments do not overlap). Importance weighting, a weighted mean of the
    source's values, never does; ``"mr"`` can, for instance where a node left out of the
    mechanisms separates the environments. For a bounded metric observed over its whole
    range (Dice, a hit) such a value is impossible; for an unbounded one (a loss) it is
    at least not something these cases show.

    Parameters
    ----------
    values : mapping of str to float
        The mechanisms' values.
    metrics : sequence of array-like or None
        The per-case metric of each environment (``None`` where not known).
    metric_name : str, default "metric"

    Returns
    -------
    list of dict
        Warnings (``code``, ``mechanism``, ``message``), empty when every value is within
        the span.

    Examples
    --------
    >>> m = np.array([0.0, 1.0, 1.0, 0.0])
    >>> [w["mechanism"] for w in values_beyond_span({"X": 0.3, "Y": -8.3}, [m, None])]
    ['Y']
    """
    pooled = np.concatenate(
        [np.ravel(np.asarray(a, dtype=float)) for a in metrics if a is not None] or [[]]
    )
    pooled = pooled[np.isfinite(pooled)]
    if pooled.size == 0:
        return []
    span = float(pooled.max() - pooled.min())
    tol = 1e-9 * max(1.0, span)
    return [
        {
            "code": "value_beyond_span",
            "mechanism": k,
            "message": (
                f"{k}: the value {v:+.4g} is larger than the {metric_name}'s whole span over "
                f"the cases ({span:.4g}); a mean of these per-case values moves by at most "
                "that, so the estimate extrapolated: read it as failed, whatever its "
                "interval (see the warnings beside it)."
            ),
        }
        for k, v in values.items()
        if np.isfinite(v) and abs(v) > span + tol
    ]
