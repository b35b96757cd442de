"""Attribution results: values, intervals, diagnostics, tables, JSON and plots."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from shiftattr.metric_range import describe_metric_range

__all__ = ["Attribution", "ShiftAttrWarning", "dominant_mechanism", "dominant_separated"]

SIGN_NOTE = "positive = performance drop: source metric minus the metric with the mechanism shifted"
"""The sign note of a metric where higher is better (see :func:`wording`)."""

_WORSE, _BETTER, _NEUTRAL = "#c0392b", "#2874a6", "#7f8c8d"


class Wording(NamedTuple):
    """How results describe a value, given the metric's direction (see :func:`wording`).

    Attributes
    ----------
    sign_note : str
        What a positive value means, for the summaries, the report and the JSON.
    total : str
        Name of ``source_metric - estimated_target_metric`` ("total drop" or "total change").
    axis_label : str
        Y-axis label of :meth:`Attribution.plot`.
    delta_label : str
        Colour-bar label of :meth:`shiftattr.PairwiseAttribution.plot`.
    positive_color, negative_color : str
        Bar colours of positive and negative values: red where the metric got worse on
        the target, blue where it got better, grey for both when the direction is unknown.
    cmap : str
        Diverging colour map of the pairwise heatmaps, red at "worse" (or a neutral one).
    """

    sign_note: str
    total: str
    axis_label: str
    delta_label: str
    positive_color: str
    negative_color: str
    cmap: str


def wording(higher_is_better: bool | None, metric_name: str = "metric") -> Wording:
    """The words and colours that describe values of a metric with this direction.

    The one place where the sign convention (positive = ``M(source) - M(target)``) is put
    into words: :class:`Attribution`, :func:`shiftattr.report.write_report` and
    :class:`shiftattr.PairwiseAttribution` all use it.

    Parameters
    ----------
    higher_is_better : bool or None
        ``True``: positive values are drops in performance (Dice, accuracy). ``False``:
        positive values are falls of a metric where lower is better (a loss, a distance),
        so improvements. ``None``: the direction is unknown; neutral words and colours.
    metric_name : str, default "metric"

    Returns
    -------
    Wording

    Examples
    --------
    >>> wording(True, "dice").total, wording(False, "loss").total
    ('total drop', 'total change')
    >>> print(wording(False, "loss").sign_note)
    positive = the metric fell (better: lower is better for loss): source metric minus the metric with the mechanism shifted
    >>> wording(None).axis_label
    'fall in metric\\n(+ = lower on target)'
    """
    how = "source metric minus the metric with the mechanism shifted"
    if higher_is_better is None:
        return Wording(
            f"positive = the metric fell from source to target: {how}",
            "total change",
            f"fall in {metric_name}\n(+ = lower on target)",
            f"Δ{metric_name} (+ = fell)",
            _NEUTRAL,
            _NEUTRAL,
            "PuOr_r",
        )
    if higher_is_better:
        return Wording(
            SIGN_NOTE,
            "total drop",
            f"drop in {metric_name}\n(+ = worse on target)",
            f"Δ{metric_name} (+ = drop)",
            _WORSE,
            _BETTER,
            "RdBu_r",
        )
    return Wording(
        f"positive = the metric fell (better: lower is better for {metric_name}): {how}",
        "total change",
        f"fall in {metric_name}\n(+ = better on target)",
        f"Δ{metric_name} (+ = fell: better)",
        _BETTER,
        _WORSE,
        "RdBu",
    )


def _oriented(
    values: Mapping[str, float],
    ci: Mapping[str, Sequence],
    higher_is_better: bool | None,
    opposite: bool = False,
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Values and intervals turned so that the dominant mechanism is the largest value.

    ``None`` (direction unknown): absolute values, each interval mapped to the range of
    ``|value|`` it allows. Otherwise the values are turned towards the total change:
    negated where they sum to a rise of the metric (the most negative value moved it
    most), kept where they sum to a fall, whichever way the metric points; ``opposite``
    turns them the other way. Missing bounds become NaN.
    """

    bounds = {k: (_num_or_nan(ci[k][0]), _num_or_nan(ci[k][1])) for k in values if k in ci}
    if higher_is_better is None:
        out = {}
        for k, (lo, hi) in bounds.items():
            inside = lo <= 0 <= hi
            out[k] = (0.0 if inside else min(abs(lo), abs(hi)), max(abs(lo), abs(hi)))
            if math.isnan(lo) or math.isnan(hi):
                out[k] = (float("nan"), float("nan"))
        return {k: abs(v) for k, v in values.items()}, out
    # the metric's direction decides only the words: the mechanism that moved the metric
    # most the way it changed dominates (positive values: it fell)
    flip = bool(np.nansum(list(values.values())) < 0) != opposite
    if not flip:
        return dict(values), bounds
    return {k: -v for k, v in values.items()}, {k: (-hi, -lo) for k, (lo, hi) in bounds.items()}


def _separated(vals: Mapping[str, float], bounds: Mapping[str, tuple[float, float]]) -> bool:
    """Whether the largest value's lower bound lies above every other upper bound."""
    top = max(vals, key=vals.get)
    low = np.asarray(bounds[top][0], dtype=float)
    others = np.asarray([bounds[k][1] for k in vals if k != top], dtype=float)
    return bool(np.isfinite(low) and np.all(low > others))  # NaN compares False


def dominant_mechanism(values: Mapping[str, float], higher_is_better: bool | None = True) -> str:
    """The mechanism whose shift moved the metric most in the direction it changed overall.

    The rule of :attr:`Attribution.dominant`: where the metric got worse (the values'
    sum), the mechanism that worsened it most; where it got better, the one that
    improved it most (naming the largest "drop" among improvements would name the
    mechanism that did least). Among equal values the first in order is named (all
    values 0, nothing shifted, names the first mechanism: check for ties where that
    matters).

    Parameters
    ----------
    values : mapping of str to float
        Shapley values (positive = the metric fell from source to target).
    higher_is_better : bool or None, default True
        ``True``: the largest value (the largest drop), or the smallest if the values sum
        to a rise. ``False``: the smallest, most negative value (the largest rise of a
        metric where lower is better), or the largest if they sum to a fall. ``None``:
        the largest absolute value.

    Returns
    -------
    str

    Examples
    --------
    >>> v = {"X": 0.3, "Y": -0.1}
    >>> dominant_mechanism(v), dominant_mechanism(v, False), dominant_mechanism(v, None)
    ('X', 'X', 'X')
    >>> dominant_mechanism({"X": -0.2, "Y": -0.01})  # both improved the Dice: X most
    'X'
    >>> dominant_mechanism({"A": float("nan"), "B": 0.3, "C": -0.1})  # NaN ranks last
    'B'
    >>> dominant_mechanism({"X": 0.0, "Y": 0.0})  # a tie goes to the first in order
    'X'
    """
    oriented, _ = _oriented(values, {}, higher_is_better)
    # NaN compares False both ways, so max() would depend on the order: rank it last
    return max(oriented, key=lambda k: -math.inf if math.isnan(oriented[k]) else oriented[k])


def dominant_separated(
    values: Mapping[str, float], ci: Mapping[str, Sequence], higher_is_better: bool | None = True
) -> bool:
    """Whether the interval of the dominant mechanism lies clear of every other one's.

    The rule of :attr:`Attribution.dominant_settled`; missing bounds (``None`` or NaN)
    separate nothing. The dominant mechanism is :func:`dominant_mechanism`'s: where the
    values sum to a fall of the metric, its lower bound must lie above every other upper
    bound; where they sum to a rise, its upper bound below every other lower bound.
    Where the intervals' sums allow the total change either sign and would settle the
    opposite answer as well (the largest rise *and* the largest fall each clear of the
    rest), it is False. ``higher_is_better=None``: the smallest absolute
    value its interval allows exceeds the largest any other interval allows.

    Parameters
    ----------
    values : mapping of str to float
    ci : mapping of str to (low, high)
    higher_is_better : bool or None, default True

    Returns
    -------
    bool

    Examples
    --------
    >>> dominant_separated({"X": 0.1, "Y": 0.0}, {"X": (0.05, 0.15), "Y": (-0.02, 0.02)})
    True
    >>> dominant_separated({"X": 0.1, "Y": 0.0}, {"X": (None, None), "Y": (-0.02, 0.02)})
    False
    >>> dominant_separated({"X": -0.1, "Y": 0.0}, {"X": (-0.15, -0.05), "Y": (-0.02, 0.02)},
    ...                    higher_is_better=False)
    True

    X's fall and Y's rise are both clear of the rest: which one dominates depends on
    where in the intervals the values lie.

    >>> dominant_separated({"X": 0.10, "Y": -0.11, "Z": 0.0},
    ...                    {"X": (0.08, 0.12), "Y": (-0.13, -0.09), "Z": (-0.01, 0.01)})
    False
    """
    if not _separated(*_oriented(values, ci, higher_is_better)):
        return False
    if higher_is_better is None or len(values) < 2:
        return True
    # the intervals' sums bound the total change; where they allow either sign, the
    # opposite answer must not be settled as well
    lows = sum(_num_or_nan(ci[k][0]) for k in values)
    highs = sum(_num_or_nan(ci[k][1]) for k in values)
    if lows > 0 or highs < 0:
        return True
    return not _separated(*_oriented(values, ci, higher_is_better, opposite=True))


class ShiftAttrWarning(UserWarning):
    """A diagnostic warning about an attribution (low ESS, separability, closure error).

    Every such warning is also recorded in :attr:`Attribution.warnings` and counted in
    ``Attribution.diagnostics["overall"]["warning_counts"]``. Filter it with the
    :mod:`warnings` machinery like any other warning.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("ESS of mechanism X is 3% of the source", ShiftAttrWarning)
    >>> caught[0].category.__name__
    'ShiftAttrWarning'
    >>> issubclass(ShiftAttrWarning, UserWarning)
    True
    """


_METHOD_NAMES = {
    "iw": "importance weighting",
    "mis": "importance weighting of both environments' cases (balance heuristic)",
    "regression": "nested regressions",
    "mr": "multiply robust (regressions corrected by the ratios)",
}


def _estimator_line(settings: dict[str, Any], details: dict[str, Any]) -> str:
    """One line naming the value estimator and its own diagnostics."""
    method = settings.get("method", "iw")
    parts = [f"value estimator: {_METHOD_NAMES.get(method, method)}"]
    reason = str(settings.get("method_reason") or "")
    if reason.startswith("auto: ") and ", " in reason:  # say why "auto" chose it
        parts.append(f"chosen by method='auto': {reason.split(', ', 1)[1]}")
    if details.get("paired"):
        parts.append(f"substituted: {', '.join(details['paired'])}")
    if details.get("min_r2") is not None:
        parts.append(f"lowest regression R² {details['min_r2']:.2f}")
    if "max_abs_correction" in details:
        parts.append(f"largest correction {details['max_abs_correction']:.4f}")
    if details.get("max_correction_truncated_fraction"):
        parts.append(
            f"correction weights capped: up to {100 * details['max_correction_truncated_fraction']:.1f}%"
        )
    if "iw_values" in details:
        iw = ", ".join(f"{k} {v:+.4f}" for k, v in details["iw_values"].items())
        parts.append(f"iw from the same ratios: {iw}")
    if "check_values" in details:
        check = ", ".join(f"{k} {v:+.4f}" for k, v in details["check_values"].items())
        r2 = details.get("check", {}).get("min_r2")
        fit = "" if r2 is None else f" (lowest R² {r2:.2f})"
        parts.append(f"regression cross-check{fit}: {check}")
    return "; ".join(parts)


def _literal(text: Any) -> str:
    """``text`` for a matplotlib label, drawn as written: a ``$`` would start a formula
    ("from $5 to $10" was drawn as "from 5to10")."""
    return str(text).replace("$", r"\$")


def _long_labels(labels: Sequence[str]) -> bool:
    """Tick labels that would overlap side by side: many, or long ones."""
    return len(labels) > 5 or max((len(str(x)) for x in labels), default=0) > 10


def _name_ticks(ax: Any, names: Sequence[str]) -> None:
    """Label the x positions ``0..n-1`` with ``names`` drawn as written, tilted where
    they would overlap."""
    labels = [_literal(m) for m in names]
    tilt = {"rotation": 30, "ha": "right"} if _long_labels(labels) else {}
    ax.set_xticks(range(len(labels)), labels, **tilt)


def _missing(x: Any) -> bool:
    """None or NaN: a number that was not computed (NaN in memory, null in JSON)."""
    return x is None or (isinstance(x, (float, np.floating)) and math.isnan(x))


def _fmt(x: float | None, digits: int = 4) -> str:
    if _missing(x):
        return "—"
    return f"{x:+.{digits}f}"


def _plain(x: float | None, spec: str) -> str:
    """``x`` formatted with ``spec``; "—" for None and NaN alike."""
    return "—" if _missing(x) else format(x, spec)


def _closure_text(result: Attribution) -> str:
    """``closure error +0.0100, CI [-0.0200, +0.0400]`` (no CI part without one), or a
    note that it is zero by construction (``method="mr"`` with every node attributed).
    A passed check whose interval is wider than the measured change of the metric is
    said to be weak: it would pass estimates that miss much of the change (a small
    target sample, a noisy metric)."""
    if result.diagnostics.get("overall", {}).get("closure_by_construction"):
        return "closure error 0 by construction for mr with every node attributed: not a check"
    closure_ci = result.closure_ci
    if closure_ci is None:
        return f"closure error {_fmt(result.closure_error)}"
    lo, hi = _num_or_nan(closure_ci[0]), _num_or_nan(closure_ci[1])
    change = result.source_metric - _num_or_nan(result.measured_target_metric)
    weak = lo <= 0 <= hi and hi - lo > abs(change)
    return f"closure error {_fmt(result.closure_error)}, CI [{_fmt(lo)}, {_fmt(hi)}]" + (
        "; wider than the measured change: a weak check" if weak else ""
    )


def _ess_all_text(overall: Mapping[str, Any]) -> str | None:
    """``265 of 1000 (26.5%)``: the ESS with all mechanisms shifted, or None if absent."""
    if "ess_all" not in overall:
        return None
    n = overall.get("n_weighted", overall.get("n_source"))
    return (
        f"{_plain(overall['ess_all'], '.0f')} of {n} "
        f"({_plain(100 * _num_or_nan(overall.get('ess_all_fraction')), '.1f')}%)"
    )


def _num_or_nan(x: Any) -> float:
    """A number read back from JSON, which writes NaN as ``null``."""
    return float("nan") if x is None else float(x)


def ci_label(settings: Mapping[str, Any]) -> str:
    """Column header of the intervals: their confidence level and, for bias-aware
    intervals, their kind, from the settings.

    Parameters
    ----------
    settings : mapping
        An :class:`Attribution`'s ``settings`` (``"confidence"``, default 0.95;
        ``"interval"``).

    Returns
    -------
    str

    Examples
    --------
    >>> ci_label({}), ci_label({"confidence": 0.9, "interval": "bias_aware"})
    ('95% CI', '90% CI (bias-aware)')
    """
    kind = " (bias-aware)" if settings.get("interval") == "bias_aware" else ""
    return f"{100 * float(settings.get('confidence', 0.95)):g}% CI{kind}"


def interval_note(settings: Mapping[str, Any]) -> str | None:
    """What the reader must know about intervals from a fixed bootstrap, or None.

    A ``"fixed"`` bootstrap resamples the cases but keeps the fitted ratio estimators
    (and regressions), so its intervals leave out their error: too narrow, whatever the
    diagnostics say (see ``bootstrap`` in :func:`shiftattr.attribute`). ``"mr"`` with its
    bias-aware interval (the default's resolution on tabular data) gets a milder note:
    its estimate depends on the two models' errors only through their product, and its
    interval also spans the distance to importance weighting. It is not a warning, which
    would fire on every such run; the summary and the report print it.

    Parameters
    ----------
    settings : mapping
        An :class:`Attribution`'s ``settings``.

    Returns
    -------
    str or None

    Examples
    --------
    >>> interval_note({"bootstrap": "fixed", "n_bootstrap": 100})[:40]
    'fixed bootstrap: the fitted ratios (and '
    >>> interval_note({"bootstrap": "refit", "n_bootstrap": 100}) is None
    True
    >>> interval_note({"bootstrap": "fixed", "n_bootstrap": 100, "method": "mr",
    ...                "interval": "bias_aware"})[:60]
    'fixed bootstrap: the fitted ratios and regressions are held '
    """
    if settings.get("bootstrap") != "fixed" or int(settings.get("n_bootstrap") or 0) < 2:
        return None
    if settings.get("method") == "mr" and settings.get("interval") == "bias_aware":
        return (
            "fixed bootstrap: the fitted ratios and regressions are held fixed; 'mr' is "
            "insensitive to their errors to first order and its bias-aware interval also "
            "spans the distance to importance weighting, but bootstrap='refit' includes "
            "their estimation error"
        )
    return (
        "fixed bootstrap: the fitted ratios (and regressions) are held fixed, so the "
        "intervals leave out their estimation error and are too narrow; "
        "bootstrap='refit' includes it"
    )


@dataclass
class Attribution:
    """The result of :func:`shiftattr.attribute`.

    Sign convention: a value is the part of ``M(source) - M(target)`` due to a
    mechanism; positive means the mechanism's shift lowered the metric. Values sum to
    ``source_metric - estimated_target_metric``. Whether lowering the metric is a drop
    in performance depends on the metric: :attr:`higher_is_better`
    (``settings["higher_is_better"]``) says, and the summary, the plot, the report and
    :attr:`dominant` follow it.

    Attributes
    ----------
    mechanisms : tuple of str
    values : dict
        Mechanism -> Shapley value.
    ci : dict
        Mechanism -> (low, high): the bootstrap percentile interval (widened by the
        repeats' spread with ``n_repeats > 1``), or the bias-aware interval with
        ``settings["interval"] == "bias_aware"``; NaN without bootstrap.
    stderr : dict
        Mechanism -> bootstrap standard deviation.
    solver_stderr : dict or None
        Monte-Carlo error of a sampling Shapley solver (None for exact). Below ten
        cyclic rounds of :class:`~shiftattr.shapley.PermutationShapley` it treats the
        permutations as independent, and it understated the spread of the values by
        up to 1.5 times (9 players, 16 permutations; with 2 permutations it can be 0
        while the error is not): give the solver at least ten rounds (``n_permutations
        >= 10 * n_players``) or ``tol`` before relying on it.
    source_metric : float
        Mean metric on the source cases.
    estimated_target_metric : float
        The value estimator's estimate of the mean metric with all mechanisms shifted
        (importance-weighted for ``method="iw"``). Where the estimator's value of the
        empty coalition is not the source mean exactly (``"mis"``, ``"regression"``,
        ``"mr"`` over both samples) it is anchored at the source: ``source_metric``
        minus the estimated change ``M(∅) - M(all)``, so that ``source_metric -
        estimated_target_metric`` is the sum of the values.
    measured_target_metric : float or None
        Mean of ``target_metric`` when given.
    closure_error : float or None
        ``estimated_target_metric - measured_target_metric``.
    closure_ci : tuple or None
        Bootstrap interval of the closure error.
    diagnostics : dict
        ``{"mechanisms": {m: {auc_joint, auc_parents, ess, ess_fraction, max_weight,
        frac_truncated, known_ratio, ...}}, "overall": {ess_all, ..., n_warnings,
        warning_counts}}`` (``known_ratio``: the ratio was given through
        ``known_ratios``, and ``auc_joint`` is the AUC of that log-ratio),
        plus ``"estimator"`` (value-estimator details), with ``n_repeats > 1``
        ``"repeats"`` (each repeat's values, their s.d. and the interval factor), and
        where a ratio estimator reports on its training (a CNN: epochs, the epoch kept,
        held-out AUC, temperature, the grid it saw) ``"ratio_fits"``: node set -> one
        report per fold.
        The overall entry also counts ``shared_cases``.
    warnings : list of dict
        ``{"code", "mechanism", "message"}`` per warning.
    settings : dict
        How the result was computed (environments, estimators, solver, folds, seed,
        ``higher_is_better``...).
    bootstrap_values : ndarray of shape (n_bootstrap, n_mechanisms)
        The bootstrap replicates of the values. With ``n_repeats > 1`` and the fixed
        bootstrap, replicates of the mean over the repeats before the interval is
        widened (so ``ci`` is wider than their percentiles).

    Examples
    --------
    >>> res = Attribution(mechanisms=("X",), values={"X": 0.1}, ci={"X": (0.05, 0.15)},
    ...                   stderr={"X": 0.02}, source_metric=0.8,
    ...                   estimated_target_metric=0.7)
    >>> Attribution.from_json(res.to_json()).values
    {'X': 0.1}
    """

    mechanisms: tuple[str, ...]
    values: dict[str, float]
    ci: dict[str, tuple[float, float]]
    stderr: dict[str, float]
    source_metric: float
    estimated_target_metric: float
    solver_stderr: dict[str, float] | None = None
    measured_target_metric: float | None = None
    closure_error: float | None = None
    closure_ci: tuple[float, float] | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    bootstrap_values: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))

    def __post_init__(self) -> None:
        # a mechanism without an interval or standard error has unknown ones (NaN), as
        # without bootstrap: every reader can then look each mechanism up
        nan = float("nan")
        self.ci = {**{m: (nan, nan) for m in self.mechanisms}, **self.ci}
        self.stderr = {**{m: nan for m in self.mechanisms}, **self.stderr}

    # -- derived -----------------------------------------------------------------------
    @property
    def total(self) -> float:
        """Estimated total change, ``source_metric - estimated_target_metric``.

        It equals the sum of :attr:`values` (Shapley efficiency); positive when the
        metric fell (a drop in performance when :attr:`higher_is_better`).

        Examples
        --------
        >>> res = Attribution(mechanisms=("X", "Y"), values={"X": 0.1, "Y": -0.02},
        ...                   ci={"X": (0.05, 0.15), "Y": (-0.04, 0.0)},
        ...                   stderr={"X": 0.02, "Y": 0.01}, source_metric=0.8,
        ...                   estimated_target_metric=0.72)
        >>> round(res.total, 4), round(sum(res.values.values()), 4)
        (0.08, 0.08)
        """
        return self.source_metric - self.estimated_target_metric

    @property
    def higher_is_better(self) -> bool | None:
        """The metric's direction, ``settings["higher_is_better"]``.

        ``True``: a higher metric is better (Dice, accuracy), so positive values are
        drops in performance. ``False``: lower is better (a loss, a distance), so positive
        values are improvements. ``None``: unknown (a ``metric_name`` that
        :func:`shiftattr.metrics.metric_direction` does not know); results are worded
        neutrally. When the settings do not say (files written before the key existed),
        the direction of ``settings["metric_name"]`` if
        :func:`~shiftattr.metrics.metric_direction` knows it, else ``True`` (those files
        were Dice runs).

        Examples
        --------
        >>> res = Attribution(mechanisms=("X",), values={"X": 0.1}, ci={"X": (0.05, 0.15)},
        ...                   stderr={"X": 0.02}, source_metric=0.8,
        ...                   estimated_target_metric=0.7)
        >>> res.higher_is_better
        True
        >>> res.settings["higher_is_better"] = False
        >>> res.higher_is_better
        False
        """
        if "higher_is_better" not in self.settings:
            return _unstored_direction(self.settings.get("metric_name"))
        value = self.settings["higher_is_better"]
        return None if value is None else bool(value)

    @property
    def dominant(self) -> str:
        """The mechanism that moved the metric most in the direction it changed overall.

        Where the metric got worse (see :attr:`higher_is_better`), the one that worsened
        it most; where it got better, the one that improved it most. ``higher_is_better``
        True: the largest value (the largest drop). False: the smallest, most negative
        value (the largest rise of a loss). None (direction unknown): the largest
        absolute value. The rule is :func:`~shiftattr.results.dominant_mechanism`'s.

        Examples
        --------
        >>> res = Attribution(mechanisms=("X", "Y"), values={"X": 0.02, "Y": -0.1},
        ...                   ci={"X": (0.0, 0.04), "Y": (-0.15, -0.05)},
        ...                   stderr={"X": 0.01, "Y": 0.02}, source_metric=0.8,
        ...                   estimated_target_metric=0.88, settings={"metric_name": "dice"})
        >>> res.dominant  # the Dice rose: Y raised it most
        'Y'
        >>> res.settings["higher_is_better"] = False  # a loss that rose: Y raised it most
        >>> res.dominant
        'Y'
        """
        return dominant_mechanism(
            {k: self.values[k] for k in self.mechanisms}, self.higher_is_better
        )

    @property
    def dominant_settled(self) -> bool:
        """Whether the intervals separate :attr:`dominant` from every other mechanism.

        True when its interval's lower end lies above every other mechanism's upper end
        (and no interval is NaN): the ranking does not depend on where in the intervals
        the values lie. Where the values sum to a rise of the metric, its upper end must
        lie below every other lower end, and where the intervals would settle the
        opposite answer too it is False; with the direction unknown, the smallest
        ``|value|`` its interval allows must exceed the largest any other allows
        (:func:`dominant_separated`). On the synthetic MS benchmark, with ``method="mr"``, the largest
        drop was the truth's in every run where its interval separated it (see
        :doc:`/estimators`). With a single mechanism it is True when its interval is
        known. Always False when the result carries a ``narrow_interval`` warning: with
        ``method="regression"`` and the fixed bootstrap the same rule declared 111 of 132
        benchmark runs settled and was wrong in 32.

        Examples
        --------
        >>> res = Attribution(mechanisms=("X", "Y"), values={"X": 0.1, "Y": -0.02},
        ...                   ci={"X": (0.05, 0.15), "Y": (-0.04, 0.0)},
        ...                   stderr={"X": 0.02, "Y": 0.01}, source_metric=0.8,
        ...                   estimated_target_metric=0.72)
        >>> res.dominant_settled
        True
        """
        if any(w.get("code") == "narrow_interval" for w in self.warnings):
            return False
        return dominant_separated(
            {k: self.values[k] for k in self.mechanisms}, self.ci, self.higher_is_better
        )

    @property
    def metric_name(self) -> str:
        """Name of the metric (from settings); ``"metric"`` when not recorded.

        Examples
        --------
        >>> res = Attribution(mechanisms=("X", "Y"), values={"X": 0.1, "Y": -0.02},
        ...                   ci={"X": (0.05, 0.15), "Y": (-0.04, 0.0)},
        ...                   stderr={"X": 0.02, "Y": 0.01}, source_metric=0.8,
        ...                   estimated_target_metric=0.72,
        ...                   settings={"metric_name": "dice"})
        >>> res.metric_name
        'dice'
        """
        return str(self.settings.get("metric_name", "metric"))

    # -- tables ------------------------------------------------------------------------
    def to_records(self) -> list[dict[str, Any]]:
        """One row per mechanism: value, CI, stderr and the main diagnostics.

        Returns
        -------
        list of dict
            Keys ``mechanism, value, ci_low, ci_high, stderr, auc_joint, auc_parents,
            ess, ess_fraction, max_weight, pareto_k, frac_truncated`` (None for a
            diagnostic that was not computed).

        Examples
        --------
        >>> res = Attribution(mechanisms=("X", "Y"), values={"X": 0.1, "Y": -0.02},
        ...                   ci={"X": (0.05, 0.15), "Y": (-0.04, 0.0)},
        ...                   stderr={"X": 0.02, "Y": 0.01}, source_metric=0.8,
        ...                   estimated_target_metric=0.72)
        >>> [(r["mechanism"], r["value"], r["ci_low"]) for r in res.to_records()]
        [('X', 0.1, 0.05), ('Y', -0.02, -0.04)]
        """
        rows = []
        per = self.diagnostics.get("mechanisms", {})
        for mech in self.mechanisms:
            d = per.get(mech, {})
            lo, hi = self.ci.get(mech, (float("nan"), float("nan")))
            rows.append(
                {
                    "mechanism": mech,
                    "value": self.values[mech],
                    "ci_low": lo,
                    "ci_high": hi,
                    "stderr": self.stderr.get(mech, float("nan")),
                    "auc_joint": d.get("auc_joint"),
                    "auc_parents": d.get("auc_parents"),
                    "ess": d.get("ess"),
                    "ess_fraction": d.get("ess_fraction"),
                    "max_weight": d.get("max_weight"),
                    "pareto_k": d.get("pareto_k"),
                    "frac_truncated": d.get("frac_truncated"),
                }
            )
        return rows

    def to_frame(self):
        """The per-mechanism table as a :class:`pandas.DataFrame` (needs pandas).

        Returns
        -------
        pandas.DataFrame
            Indexed by mechanism; the columns of :meth:`to_records`.

        Examples
        --------
        >>> res = Attribution(mechanisms=("X", "Y"), values={"X": 0.1, "Y": -0.02},
        ...                   ci={"X": (0.05, 0.15), "Y": (-0.04, 0.0)},
        ...                   stderr={"X": 0.02, "Y": 0.01}, source_metric=0.8,
        ...                   estimated_target_metric=0.72)
        >>> frame = res.to_frame()
        >>> frame.index.tolist(), float(frame.loc["Y", "ci_low"])
        (['X', 'Y'], -0.04)
        """
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "to_frame() needs pandas: pip install pandas (or use to_records())."
            ) from exc
        return pd.DataFrame(self.to_records()).set_index("mechanism")

    def summary(self) -> str:
        """A plain-text report: the table, the metrics, the closure check, the warnings.

        Its sign note and the name of the total follow :attr:`higher_is_better` (see
        :func:`~shiftattr.results.wording`). Diagnostics that were not computed show as
        "—", whether they are NaN (in memory) or None (read back from JSON).

        Returns
        -------
        str
            Also what ``str(result)`` and ``print(result)`` show.

        Examples
        --------
        >>> res = Attribution(mechanisms=("X", "Y"), values={"X": 0.1, "Y": -0.02},
        ...                   ci={"X": (0.05, 0.15), "Y": (-0.04, 0.0)},
        ...                   stderr={"X": 0.02, "Y": 0.01}, source_metric=0.8,
        ...                   estimated_target_metric=0.72,
        ...                   settings={"metric_name": "dice"})
        >>> print(res.summary())
        Attribution of the change in dice: source -> target
          (positive = performance drop: source metric minus the metric with the mechanism shifted)
        <BLANKLINE>
        mechanism          value                95% CI    AUC      ESS   max w
        X                +0.1000    [+0.0500, +0.1500]      —        —       —
        Y                -0.0200    [-0.0400, +0.0000]      —        —       —
        <BLANKLINE>
        dice on source:               0.8000
        dice on target, estimated:    0.7200   (total drop +0.0800)
        value estimator: importance weighting
        bootstrap: 0 replicates (—); solver: —; folds: —
        <BLANKLINE>
        no warnings
        >>> res.settings.update(metric_name="loss", higher_is_better=False)
        >>> print("\\n".join(res.summary().splitlines()[1:2] + res.summary().splitlines()[7:9]))
          (positive = the metric fell (better: lower is better for loss): source metric minus the metric with the mechanism shifted)
        loss on source:               0.8000
        loss on target, estimated:    0.7200   (total change +0.0800)
        """
        name = self.metric_name
        s = self.settings
        words = wording(self.higher_is_better, name)
        w = max([14, *(len(str(m)) + 2 for m in self.mechanisms)])  # the name column
        lines = [
            f"Attribution of the change in {name}: {s.get('source', 'source')} -> "
            f"{s.get('target', 'target')}",
            f"  ({words.sign_note})",
            "",
            f"{'mechanism':<{w}}{'value':>10}{ci_label(s):>22}{'AUC':>7}{'ESS':>9}{'max w':>8}",
        ]
        for r in self.to_records():
            ci = f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
            auc = _plain(r["auc_joint"], ".3f")
            ess = _plain(r["ess"], ".0f")
            mw = _plain(r["max_weight"], ".1f")
            lines.append(
                f"{r['mechanism']:<{w}}{_fmt(r['value']):>10}{ci:>22}{auc:>7}{ess:>9}{mw:>8}"
            )
        lines += [
            "",
            f"{name} on source:               {self.source_metric:.4f}",
            f"{name} on target, estimated:    {self.estimated_target_metric:.4f}"
            f"   ({words.total} {_fmt(self.total)})",
        ]
        if self.measured_target_metric is not None:
            lines.append(
                f"{name} on target, measured:     {self.measured_target_metric:.4f}"
                f"   ({_closure_text(self)})"
            )
        beyond = describe_metric_range(self.diagnostics.get("metric_range"), name)
        if beyond is not None:
            lines.append(f"beyond the source's range:      {beyond}")
        ess_all = _ess_all_text(self.diagnostics.get("overall", {}))
        if ess_all is not None:
            lines.append(f"ESS, all mechanisms shifted:    {ess_all}")
        lines.append(_estimator_line(s, self.diagnostics.get("estimator", {})))
        lines.append(
            f"bootstrap: {s.get('n_bootstrap', 0)} replicates ({s.get('bootstrap', '—')}); "
            f"solver: {s.get('solver', '—')}; folds: {s.get('n_folds', '—')}"
            + (f" x {s['n_repeats']} repeats" if s.get("n_repeats", 1) > 1 else "")
            + ("; intervals: bias-aware" if s.get("interval") == "bias_aware" else "")
        )
        note = interval_note(s)
        if note:
            lines.append(f"note: {note}")
        if self.warnings:
            lines += ["", f"{len(self.warnings)} warning(s):"]
            lines += [f"  [{w['code']}] {w['message']}" for w in self.warnings]
        else:
            lines += ["", "no warnings"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (NaN stored as null).

        Returns
        -------
        dict
            Plain Python types only (lists, dicts, floats, None), plus the sign
            convention in words under ``"sign_convention"``. A ``random_state`` that is
            not a seed (a :class:`numpy.random.Generator`, whose state is not saved) is
            stored as ``None``, with ``settings["random_state_note"]`` saying what it was.

        Examples
        --------
        >>> res = Attribution(mechanisms=("X",), values={"X": 0.1},
        ...                   ci={"X": (float("nan"), float("nan"))}, stderr={"X": 0.02},
        ...                   source_metric=0.8, estimated_target_metric=0.7)
        >>> d = res.to_dict()
        >>> d["values"], d["ci"]
        ({'X': 0.1}, {'X': [None, None]})
        """
        d = {
            "mechanisms": list(self.mechanisms),
            "values": self.values,
            "ci": {k: list(v) for k, v in self.ci.items()},
            "stderr": self.stderr,
            "solver_stderr": self.solver_stderr,
            "source_metric": self.source_metric,
            "estimated_target_metric": self.estimated_target_metric,
            "measured_target_metric": self.measured_target_metric,
            "closure_error": self.closure_error,
            "closure_ci": None if self.closure_ci is None else list(self.closure_ci),
            "diagnostics": self.diagnostics,
            "warnings": self.warnings,
            "settings": _json_safe_settings(self.settings),
            "bootstrap_values": np.asarray(self.bootstrap_values).tolist(),
            "sign_convention": wording(self.higher_is_better, self.metric_name).sign_note,
        }
        return _nan_to_none(d)

    def to_json(self, path: str | Path | None = None, indent: int = 2) -> str:
        """Serialise to JSON, and write it to ``path`` when given.

        Parameters
        ----------
        path : str or Path, optional
            File to write the JSON to (replaced if it exists).
        indent : int, default 2
            Indentation of the JSON text.

        Returns
        -------
        str
            The JSON text (NaN stored as ``null``).

        Examples
        --------
        >>> res = Attribution(mechanisms=("X",), values={"X": 0.1}, ci={"X": (0.05, 0.15)},
        ...                   stderr={"X": 0.02}, source_metric=0.8,
        ...                   estimated_target_metric=0.7)
        >>> text = res.to_json(indent=None)
        >>> text[:40]
        '{"mechanisms": ["X"], "values": {"X": 0.'
        """
        text = json.dumps(self.to_dict(), indent=indent, default=_json_default)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Attribution:
        """Rebuild a result from :meth:`to_dict` output.

        Parameters
        ----------
        d : dict
            As returned by :meth:`to_dict` (or parsed from :meth:`to_json`); ``null``
            numbers become NaN (values, intervals, metrics and the numeric weight
            diagnostics, such as the ``auc_joint`` of a paired mechanism), and the
            intervals in ``diagnostics["estimator"]`` become tuples again. Without
            ``settings["higher_is_better"]`` (files written before it existed) the
            direction of ``settings["metric_name"]`` is used, and higher-is-better for
            a name :func:`~shiftattr.metrics.metric_direction` does not know.

        Returns
        -------
        Attribution

        Raises
        ------
        ValueError
            If ``d`` lacks a key the result needs or holds a value of the wrong kind
            (a hand-edited file, or not a saved attribution), naming the key.

        Examples
        --------
        >>> res = Attribution(mechanisms=("X",), values={"X": 0.1}, ci={"X": (0.05, 0.15)},
        ...                   stderr={"X": 0.02}, source_metric=0.8,
        ...                   estimated_target_metric=0.7)
        >>> again = Attribution.from_dict(res.to_dict())
        >>> again.values, again.ci
        ({'X': 0.1}, {'X': (0.05, 0.15)})
        """
        _check_saved(d)
        num = _num_or_nan  # JSON writes NaN as null
        mechs = tuple(d["mechanisms"])
        boot = np.asarray(d.get("bootstrap_values") or np.empty((0, len(mechs))), dtype=float)
        return cls(
            mechanisms=mechs,
            values={k: num(v) for k, v in d["values"].items()},
            ci={k: (num(v[0]), num(v[1])) for k, v in d["ci"].items()},
            stderr={k: num(v) for k, v in d["stderr"].items()},
            solver_stderr=(
                None
                if d.get("solver_stderr") is None
                else {k: num(v) for k, v in d["solver_stderr"].items()}
            ),
            source_metric=num(d["source_metric"]),
            estimated_target_metric=num(d["estimated_target_metric"]),
            measured_target_metric=d.get("measured_target_metric"),
            closure_error=d.get("closure_error"),
            closure_ci=None if d.get("closure_ci") is None else tuple(map(num, d["closure_ci"])),
            diagnostics=_restore_diagnostics(d.get("diagnostics", {})),
            warnings=d.get("warnings", []),
            settings=d.get("settings", {}),
            bootstrap_values=boot,
        )

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> Attribution:
        """Read a result written by :meth:`to_json` (a JSON string or a file path).

        Parameters
        ----------
        text_or_path : str or Path
            The JSON text itself (a string starting with ``{``) or the path of a file
            holding it.

        Returns
        -------
        Attribution

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> res = Attribution(mechanisms=("X",), values={"X": 0.1}, ci={"X": (0.05, 0.15)},
        ...                   stderr={"X": 0.02}, source_metric=0.8,
        ...                   estimated_target_metric=0.7)
        >>> path = Path(tempfile.mkdtemp()) / "attribution.json"
        >>> _ = res.to_json(path)
        >>> Attribution.from_json(path).values
        {'X': 0.1}
        >>> Attribution.from_json(res.to_json()).source_metric
        0.8
        """
        if isinstance(text_or_path, Path) or not str(text_or_path).lstrip().startswith("{"):
            text = Path(text_or_path).read_text(encoding="utf-8")
        else:
            text = str(text_or_path)
        return cls.from_dict(json.loads(text))

    # -- plotting ----------------------------------------------------------------------
    def plot(self, ax=None, title: str | None = None, truth: Mapping[str, float] | None = None):
        """Bar chart of the values with their confidence intervals (matplotlib extra).

        Red bars are mechanisms that made the metric worse on the target, blue bars
        those that made it better: for a metric where higher is better, red bars are the
        positive values (drops), for one where lower is better the negative ones (see
        :attr:`higher_is_better`); grey bars when the direction is unknown. The y-axis
        label says which way is worse. The black whiskers are the intervals (drawn when
        they are finite).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; default a new figure sized to the number of mechanisms.
        title : str, optional
            Default ``"source → target"`` from the settings.
        truth : mapping of str to float, optional
            Known true values (a simulator's, e.g. ``TrueAttribution.values``), drawn as
            black diamonds with a legend; a mechanism it lacks gets none.

        Returns
        -------
        matplotlib.axes.Axes

        Examples
        --------
        >>> import matplotlib.pyplot as plt
        >>> res = Attribution(mechanisms=("X", "Y"), values={"X": 0.1, "Y": -0.02},
        ...                   ci={"X": (0.05, 0.15), "Y": (-0.04, 0.0)},
        ...                   stderr={"X": 0.02, "Y": 0.01}, source_metric=0.8,
        ...                   estimated_target_metric=0.72)
        >>> ax = res.plot(title="drop per mechanism", truth={"X": 0.09, "Y": 0.0})
        >>> len(ax.patches), ax.get_title(), ax.get_legend().get_texts()[0].get_text()
        (2, 'drop per mechanism', 'ground truth')
        >>> plt.close(ax.figure)
        >>> res.settings.update(metric_name="loss", higher_is_better=False)
        >>> ax = res.plot()
        >>> ax.get_ylabel()
        'fall in loss\\n(+ = better on target)'
        >>> plt.close(ax.figure)
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError('plot() needs matplotlib: pip install "shiftattr[plot]"') from exc
        if ax is None:
            _, ax = plt.subplots(figsize=(1.2 + 1.1 * len(self.mechanisms), 3.2))
        vals = np.array([self.values[k] for k in self.mechanisms])
        lo = np.array([_num_or_nan(self.ci[k][0]) for k in self.mechanisms])
        hi = np.array([_num_or_nan(self.ci[k][1]) for k in self.mechanisms])
        x = np.arange(len(vals))
        words = wording(self.higher_is_better, self.metric_name)
        colors = [words.positive_color if v > 0 else words.negative_color for v in vals]
        ax.bar(x, vals, color=colors, alpha=0.85)
        if np.all(np.isfinite(lo)):
            # percentile intervals need not contain the point estimate: draw [lo, hi]
            ax.vlines(x, lo, hi, color="k", lw=1.2)
            ax.hlines(np.r_[lo, hi], np.r_[x, x] - 0.08, np.r_[x, x] + 0.08, color="k", lw=1.2)
        ax.axhline(0, color="k", lw=0.8)
        if truth:
            ax.scatter(
                x,
                [_num_or_nan(truth.get(m)) for m in self.mechanisms],
                marker="D",
                color="k",
                zorder=3,
                label="ground truth",
            )
            ax.legend(fontsize=8)
        _name_ticks(ax, self.mechanisms)
        ax.set_ylabel(_literal(words.axis_label))
        text = (
            title
            or f"{self.settings.get('source', 'source')} → {self.settings.get('target', 'target')}"
        )
        ax.set_title(_literal(_wrap_to_axes(ax, text)))
        return ax


def _wrap_to_axes(ax: Any, text: str) -> str:
    """``text`` broken into lines as wide as the axes (a title wider than the figure is
    clipped when saved: two environments' names often are)."""
    import textwrap

    from matplotlib import rcParams
    from matplotlib.font_manager import FontProperties

    size = FontProperties(size=rcParams["axes.titlesize"]).get_size_in_points()
    inches = ax.figure.get_figwidth() * ax.get_position().width
    width = max(12, int(inches * 72 / (0.6 * size)))  # a character is about 0.6 em wide
    return (
        "\n".join(textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False))
        or text
    )


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"cannot serialise {type(o).__name__}")


def _nan_to_none(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _nan_to_none(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_nan_to_none(v) for v in o]
    if isinstance(o, (float, np.floating)):
        return None if not math.isfinite(float(o)) else float(o)
    if isinstance(o, np.integer):
        return int(o)
    return o


#: Weight diagnostics that are numbers whenever present: NaN where not computed (a
#: paired mechanism has no discriminator), which JSON stores as null. ``auc_parents``
#: is not among them: it is None for a mechanism without parents.
_NUMERIC_MECHANISM_DIAGNOSTICS = (
    "auc_joint",
    "ess",
    "ess_fraction",
    "max_weight",
    "frac_truncated",
    "log_ratio_sd",
    "pareto_k",
)
_NUMERIC_OVERALL_DIAGNOSTICS = (
    "ess_all",
    "ess_all_fraction",
    "pareto_k_all",
    "max_weight_all",
    "frac_truncated_all",
)
#: Intervals in ``diagnostics["estimator"]``: mechanism -> (low, high) tuples.
_ESTIMATOR_INTERVALS = ("difference_ci", "bootstrap_ci", "bias_aware_ci")


def _unstored_direction(metric_name: Any) -> bool:
    """The direction of a result saved before it was stored: its metric name's, if
    known; higher-is-better otherwise (those files were Dice runs)."""
    from shiftattr.metrics import metric_direction

    known = metric_direction(metric_name)
    return True if known is None else known


def _check_saved(d: Any) -> None:
    """Refuse a saved result lacking what reading it needs, naming the key: a hand-edited
    file, or JSON that is no attribution, would otherwise fail later, deep in a summary."""

    def fail(key: str, what: str) -> None:
        raise ValueError(f"saved attribution: {key} {what}")

    def number(x: Any) -> bool:
        return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))

    def interval(x: Any) -> bool:
        return isinstance(x, list) and len(x) == 2 and all(number(b) for b in x)

    if not isinstance(d, Mapping):
        fail("the top level", f"must be an object, got {type(d).__name__}")
    for key in ("mechanisms", "values", "ci", "stderr", "source_metric", "estimated_target_metric"):
        if key not in d:
            fail(key, "is missing")
    mechs = d["mechanisms"]
    if not isinstance(mechs, list) or not all(isinstance(m, str) for m in mechs):
        fail("mechanisms", f"must be a list of names, got {mechs!r}")
    for key, check, what in (
        ("values", number, "a number or null"),
        ("stderr", number, "a number or null"),
        ("solver_stderr", number, "a number or null"),
        ("ci", interval, "[low, high], numbers or null"),
    ):
        entries = d.get(key)
        if entries is None and key == "solver_stderr":
            continue
        if not isinstance(entries, Mapping):
            fail(key, f"must be an object {{mechanism: ...}}, got {entries!r}")
        missing = [m for m in mechs if m not in entries]
        if missing and key == "values":  # an interval or error left out is unknown
            fail(key, f"has no entry for {missing}")
        for m, v in entries.items():
            if not check(v):
                fail(f"{key}.{m}", f"must be {what}, got {v!r}")
    for key in ("source_metric", "estimated_target_metric", "measured_target_metric"):
        if not number(d.get(key)):
            fail(key, f"must be a number or null, got {d[key]!r}")
    if not number(d.get("closure_error")):
        fail("closure_error", f"must be a number or null, got {d['closure_error']!r}")
    if d.get("closure_ci") is not None and not interval(d["closure_ci"]):
        fail("closure_ci", f"must be [low, high] or null, got {d['closure_ci']!r}")
    warns = d.get("warnings", [])
    if not isinstance(warns, list) or not all(
        isinstance(w, Mapping) and isinstance(w.get("code"), str) and "message" in w for w in warns
    ):
        fail("warnings", "must be a list of objects with a code and a message")
    settings = d.get("settings", {})
    if not isinstance(settings, Mapping):
        fail("settings", f"must be an object, got {settings!r}")
    if settings.get("higher_is_better", None) not in (True, False, None):
        fail(
            "settings.higher_is_better",
            f"must be true, false or null, got {settings['higher_is_better']!r}",
        )
    confidence = settings.get("confidence", 0.95)
    if not (number(confidence) and confidence is not None and 0 < confidence < 1):
        fail("settings.confidence", f"must be a number between 0 and 1, got {confidence!r}")
    boot = d.get("bootstrap_values")
    if boot:
        try:
            shape = np.asarray(boot, dtype=float).shape
        except (TypeError, ValueError):
            shape = None
        if shape is None or len(shape) != 2 or shape[1] != len(mechs):
            fail("bootstrap_values", f"must be rows of {len(mechs)} numbers (one per mechanism)")
    if not isinstance(d.get("diagnostics", {}), Mapping):
        fail("diagnostics", "must be an object")


def _restore_diagnostics(diagnostics: Mapping[str, Any]) -> dict[str, Any]:
    """Undo what JSON did to :attr:`Attribution.diagnostics`: NaN and tuples back."""
    out = dict(diagnostics)

    def restore(d: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
        return {k: (float("nan") if v is None and k in keys else v) for k, v in d.items()}

    if isinstance(out.get("mechanisms"), Mapping):
        out["mechanisms"] = {
            m: restore(d, _NUMERIC_MECHANISM_DIAGNOSTICS) if isinstance(d, Mapping) else d
            for m, d in out["mechanisms"].items()
        }
    if isinstance(out.get("overall"), Mapping):
        out["overall"] = restore(out["overall"], _NUMERIC_OVERALL_DIAGNOSTICS)
    if isinstance(out.get("estimator"), Mapping):
        est = dict(out["estimator"])
        for key in _ESTIMATOR_INTERVALS:
            if isinstance(est.get(key), Mapping):
                est[key] = {
                    m: tuple(_num_or_nan(x) for x in v) if isinstance(v, list) else v
                    for m, v in est[key].items()
                }
        out["estimator"] = est
    return out


def _json_safe_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings with a ``random_state`` that JSON cannot hold replaced by None.

    A seed (an int, or a sequence of ints) is kept. A :class:`numpy.random.Generator`
    (or ``RandomState``, ``SeedSequence``...) carries a state that is not saved: it
    becomes ``None``, and ``random_state_note`` says what was passed.
    """
    out = dict(settings)
    rs = out.get("random_state")
    if rs is None or isinstance(rs, (bool, int, np.integer)):
        return out
    if isinstance(rs, (list, tuple, np.ndarray)) and all(
        isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in np.ravel(rs)
    ):
        out["random_state"] = [int(x) for x in np.ravel(rs)]
        return out
    module = type(rs).__module__
    module = "numpy.random" if module.startswith("numpy.random") else module
    out["random_state"] = None
    out["random_state_note"] = (
        f"a {module}.{type(rs).__name__} was passed as random_state; its state is not "
        "saved, so the run cannot be repeated from this file"
    )
    return out
