"""Attribution results: values, intervals, diagnostics, tables, JSON and plots."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Attribution", "ShiftAttrWarning", "dominant_separated"]

SIGN_NOTE = "positive = performance drop: source metric minus the metric with the mechanism shifted"


def dominant_separated(values: Mapping[str, float], ci: Mapping[str, Sequence]) -> bool:
    """Whether the interval of the largest value lies above every other one's.

    The rule of :attr:`Attribution.dominant_settled`; missing bounds (``None`` or NaN)
    separate nothing.

    Parameters
    ----------
    values : mapping of str to float
    ci : mapping of str to (low, high)

    Returns
    -------
    bool

    Examples
    --------
    >>> dominant_separated({"X": 0.1, "Y": 0.0}, {"X": (0.05, 0.15), "Y": (-0.02, 0.02)})
    True
    >>> dominant_separated({"X": 0.1, "Y": 0.0}, {"X": (None, None), "Y": (-0.02, 0.02)})
    False
    """
    top = max(values, key=values.get)
    low = np.asarray(ci[top][0] if ci[top][0] is not None else np.nan, dtype=float)
    others = np.asarray([np.nan if ci[k][1] is None else ci[k][1] for k in values if k != top])
    return bool(np.isfinite(low) and np.all(low > others))  # NaN compares False


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


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:+.{digits}f}"


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


@dataclass
class Attribution:
    """The result of :func:`shiftattr.attribute`.

    Sign convention: a value is the part of the *drop* ``M(source) - M(target)``
    due to a mechanism; positive means the mechanism's shift lowered the metric.
    Values sum to ``source_metric - estimated_target_metric``.

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
        Monte-Carlo error of a sampling Shapley solver (None for exact).
    source_metric : float
        Mean metric on the source cases.
    estimated_target_metric : float
        The value estimator's estimate of the mean metric with all mechanisms shifted
        (importance-weighted for ``method="iw"``).
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
        plus ``"estimator"`` (value-estimator details) and, with ``n_repeats > 1``,
        ``"repeats"`` (each repeat's values, their s.d. and the interval factor).
    warnings : list of dict
        ``{"code", "mechanism", "message"}`` per warning.
    settings : dict
        How the result was computed (environments, estimators, solver, folds, seed...).
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

    # -- derived -----------------------------------------------------------------------
    @property
    def total(self) -> float:
        """Estimated total drop, ``source_metric - estimated_target_metric``.

        It equals the sum of :attr:`values` (Shapley efficiency).

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
    def dominant(self) -> str:
        """The mechanism with the largest attributed drop.

        Examples
        --------
        >>> res = Attribution(mechanisms=("X", "Y"), values={"X": 0.1, "Y": -0.02},
        ...                   ci={"X": (0.05, 0.15), "Y": (-0.04, 0.0)},
        ...                   stderr={"X": 0.02, "Y": 0.01}, source_metric=0.8,
        ...                   estimated_target_metric=0.72)
        >>> res.dominant
        'X'
        """
        return max(self.mechanisms, key=lambda k: self.values[k])

    @property
    def dominant_settled(self) -> bool:
        """Whether the intervals separate :attr:`dominant` from every other mechanism.

        True when its interval's lower end lies above every other mechanism's upper end
        (and no interval is NaN): the ranking does not depend on where in the intervals
        the values lie. On the synthetic MS benchmark, with ``method="mr"``, the largest
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
        return dominant_separated(self.values, self.ci)

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
        """
        name = self.metric_name
        s = self.settings
        lines = [
            f"Attribution of the change in {name}: {s.get('source', 'source')} -> "
            f"{s.get('target', 'target')}",
            f"  ({SIGN_NOTE})",
            "",
            f"{'mechanism':<14}{'value':>10}{ci_label(s):>22}{'AUC':>7}{'ESS':>9}{'max w':>8}",
        ]
        for r in self.to_records():
            ci = f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
            auc = "—" if r["auc_joint"] is None else f"{r['auc_joint']:.3f}"
            ess = "—" if r["ess"] is None else f"{r['ess']:.0f}"
            mw = "—" if r["max_weight"] is None else f"{r['max_weight']:.1f}"
            lines.append(
                f"{r['mechanism']:<14}{_fmt(r['value']):>10}{ci:>22}{auc:>7}{ess:>9}{mw:>8}"
            )
        lines += [
            "",
            f"{name} on source:               {self.source_metric:.4f}",
            f"{name} on target, estimated:    {self.estimated_target_metric:.4f}"
            f"   (total drop {_fmt(self.total)})",
        ]
        if self.measured_target_metric is not None:
            ci = (
                ""
                if self.closure_ci is None
                else f", CI [{_fmt(self.closure_ci[0])}, {_fmt(self.closure_ci[1])}]"
            )
            lines.append(
                f"{name} on target, measured:     {self.measured_target_metric:.4f}"
                f"   (closure error {_fmt(self.closure_error)}{ci})"
            )
        ov = self.diagnostics.get("overall", {})
        if "ess_all" in ov:
            lines.append(
                f"ESS, all mechanisms shifted:    {ov['ess_all']:.0f} of "
                f"{ov.get('n_weighted', ov['n_source'])} "
                f"({100 * ov['ess_all_fraction']:.1f}%)"
            )
        lines.append(_estimator_line(s, self.diagnostics.get("estimator", {})))
        lines.append(
            f"bootstrap: {s.get('n_bootstrap', 0)} replicates ({s.get('bootstrap', '—')}); "
            f"solver: {s.get('solver', '—')}; folds: {s.get('n_folds', '—')}"
            + (f" x {s['n_repeats']} repeats" if s.get("n_repeats", 1) > 1 else "")
            + ("; intervals: bias-aware" if s.get("interval") == "bias_aware" else "")
        )
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
            convention under ``"sign_convention"``.

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
            "settings": self.settings,
            "bootstrap_values": np.asarray(self.bootstrap_values).tolist(),
            "sign_convention": SIGN_NOTE,
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
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Attribution:
        """Rebuild a result from :meth:`to_dict` output.

        Parameters
        ----------
        d : dict
            As returned by :meth:`to_dict` (or parsed from :meth:`to_json`); ``null``
            numbers become NaN.

        Returns
        -------
        Attribution

        Examples
        --------
        >>> res = Attribution(mechanisms=("X",), values={"X": 0.1}, ci={"X": (0.05, 0.15)},
        ...                   stderr={"X": 0.02}, source_metric=0.8,
        ...                   estimated_target_metric=0.7)
        >>> again = Attribution.from_dict(res.to_dict())
        >>> again.values, again.ci
        ({'X': 0.1}, {'X': (0.05, 0.15)})
        """
        nan = float("nan")

        def num(x):
            return nan if x is None else float(x)

        mechs = tuple(d["mechanisms"])
        boot = np.asarray(d.get("bootstrap_values") or np.empty((0, len(mechs))), dtype=float)
        return cls(
            mechanisms=mechs,
            values={k: num(v) for k, v in d["values"].items()},
            ci={k: (num(v[0]), num(v[1])) for k, v in d["ci"].items()},
            stderr={k: num(v) for k, v in d["stderr"].items()},
            solver_stderr=d.get("solver_stderr"),
            source_metric=num(d["source_metric"]),
            estimated_target_metric=num(d["estimated_target_metric"]),
            measured_target_metric=d.get("measured_target_metric"),
            closure_error=d.get("closure_error"),
            closure_ci=None if d.get("closure_ci") is None else tuple(d["closure_ci"]),
            diagnostics=d.get("diagnostics", {}),
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
            text = Path(text_or_path).read_text()
        else:
            text = str(text_or_path)
        return cls.from_dict(json.loads(text))

    # -- plotting ----------------------------------------------------------------------
    def plot(self, ax=None, title: str | None = None):
        """Bar chart of the values with their confidence intervals (matplotlib extra).

        Red bars are drops (positive values), blue bars gains; the black whiskers are
        the bootstrap intervals (drawn when they are finite).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; default a new figure sized to the number of mechanisms.
        title : str, optional
            Default ``"source → target"`` from the settings.

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
        >>> ax = res.plot(title="drop per mechanism")
        >>> len(ax.patches), ax.get_title()
        (2, 'drop per mechanism')
        >>> plt.close(ax.figure)
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError('plot() needs matplotlib: pip install "shiftattr[plot]"') from exc
        if ax is None:
            _, ax = plt.subplots(figsize=(1.2 + 1.1 * len(self.mechanisms), 3.2))
        vals = np.array([self.values[k] for k in self.mechanisms])
        lo = np.array([self.ci[k][0] for k in self.mechanisms])
        hi = np.array([self.ci[k][1] for k in self.mechanisms])
        x = np.arange(len(vals))
        colors = ["#c0392b" if v > 0 else "#2874a6" for v in vals]
        ax.bar(x, vals, color=colors, alpha=0.85)
        if np.all(np.isfinite(lo)):
            # percentile intervals need not contain the point estimate: draw [lo, hi]
            ax.vlines(x, lo, hi, color="k", lw=1.2)
            ax.hlines(np.r_[lo, hi], np.r_[x, x] - 0.08, np.r_[x, x] + 0.08, color="k", lw=1.2)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(x, self.mechanisms)
        ax.set_ylabel(f"drop in {self.metric_name}\n(+ = worse on target)")
        ax.set_title(
            title
            or f"{self.settings.get('source', 'source')} → {self.settings.get('target', 'target')}"
        )
        return ax


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
