"""Where the refit bootstrap's replicates sit against the point estimate, and what that
does to the intervals' coverage.

With ``bootstrap="refit"`` (what ``"auto"`` runs for ``"iw"`` and ``"mis"`` on tabular data) every replicate
resamples the source and the target cases with replacement and refits the density-ratio
classifiers. A resample holds about 63 % distinct cases, so its classifiers may be
flatter than those fitted on the sample itself, and the replicates' values smaller in
magnitude than the point estimate: the percentile interval, ``np.quantile`` of the
replicates (what :func:`shiftattr.attribute` reports for ``method="iw"``), would then sit
off-centre towards zero and cover the truth less often than its nominal 95 %. This
script measures it.

For every tabular SCM of :mod:`benchmarks.scms` (truth as in
:mod:`benchmarks.value_estimators`: from ``results/accuracy_tabular.json`` when it holds
it, else simulated), sample size ``N`` (cases per environment, drawn as in
:func:`benchmarks.accuracy_tabular.bench_samples`), seed and method (``"iw"``, and
``"mis"`` given the measured target loss), :func:`shiftattr.attribute` runs with
``bootstrap="refit"``, ``n_bootstrap=B``, ``n_folds=5``, ``n_jobs=1`` and
``random_state=seed``. Its replicates are the result's documented
``Attribution.bootstrap_values`` (one row per replicate, one column per mechanism). Per
(SCM, N, seed, method, mechanism) the script records the truth, the point estimate
``θ̂``, the replicates' mean, median and standard deviation, and five 95 % intervals
(:func:`intervals`):

- ``percentile``: ``(q2.5, q97.5)`` of the replicates (the library's ``"bootstrap"``
  interval; the script checks that it reproduces it);
- ``basic`` (reverse percentile): ``(2θ̂ − q97.5, 2θ̂ − q2.5)``;
- ``normal``: ``θ̂ ± z·sd``;
- ``normal_bc`` (bias-corrected normal): ``2θ̂ − mean ± z·sd``;
- ``reported``: the interval the result reports when it is not the percentile one
  (``"mis"``: the bias-aware interval, centred on ``θ̂``);

with whether each holds the truth and its width. Summaries (:func:`summarise`) per
(SCM, N, method), per method and overall: the standardised shift ``(mean − θ̂) / sd``
(also oriented so that negative means towards zero, and its standard error over runs),
the share of mechanisms whose replicate mean (median) is nearer zero than ``θ̂``, the
point's error along the truth's sign (negative: nearer zero than the truth), and every
interval's coverage and mean width.

Writes ``benchmarks/results/refit_centering.json`` (checkpointed, marked partial, after
every (SCM, N, seed)). BLAS limited to one thread.

Usage: ``python benchmarks/bench_refit_centering.py [--n 300 1000] [--seeds 0 1 ...]
[--methods iw mis] [--scms ...] [--n-bootstrap 100] [--quick] [--quiet] [--out DIR]``.
The defaults make 160 attributions of 101 classifier fits each: about 11 hours in one
process on a 2-core machine busy with two other benchmarks (``--quick``: 8 attributions
of 21 fits, 4-5 minutes there; a check that the script runs, not evidence).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import GIT_AT_START, RESULTS_DIR, blas_threads, now_utc, write_json

NAME = "refit_centering"
METHODS = ("iw", "mis")
#: The interval types every row scores (``reported`` only where the result's own
#: interval is not the percentile one).
INTERVALS = ("percentile", "basic", "normal", "normal_bc", "reported")
N_FOLDS = 5
CONFIDENCE = 0.95


def config_for(quick: bool) -> dict[str, Any]:
    """SCMs, sample sizes, seeds, methods, replicates and truth size of a run."""
    from benchmarks.scms import all_scms

    if quick:
        return {
            "scms": ["linear_gaussian", "threshold_chain"],
            "sizes": [200],
            "seeds": [0, 1],
            "methods": list(METHODS),
            "n_bootstrap": 20,
            "n_truth": 200_000,
        }
    return {
        "scms": list(all_scms()),
        "sizes": [300, 1000],
        "seeds": list(range(10)),
        "methods": list(METHODS),
        "n_bootstrap": 100,
        "n_truth": 1_000_000,
    }


# -- the pure part: intervals, one row, summaries ---------------------------------------


def intervals(
    point: float,
    replicates: np.ndarray,
    confidence: float = CONFIDENCE,
    reported: Sequence[float] | None = None,
) -> dict[str, tuple[float, float]]:
    """The bootstrap intervals of one value from its point estimate and replicates.

    Parameters
    ----------
    point : float
        The point estimate ``θ̂``.
    replicates : ndarray of shape (B,)
        The bootstrap replicates.
    confidence : float, default 0.95
    reported : (low, high), optional
        The interval the result reports, when it is not the percentile one; added as
        ``"reported"``.

    Returns
    -------
    dict
        ``percentile`` ``(q_a, q_{1-a})`` (``np.quantile``, as the library), ``basic``
        ``(2θ̂ − q_{1-a}, 2θ̂ − q_a)``, ``normal`` ``θ̂ ± z sd`` and ``normal_bc``
        ``2θ̂ − mean ± z sd`` (``sd`` with ``ddof=1``, as the library's ``stderr``).

    Examples
    --------
    >>> iv = intervals(0.0, np.linspace(-1, 1, 101) + 0.5)
    >>> [round(x, 2) for x in iv["percentile"]], [round(x, 2) for x in iv["basic"]]
    ([-0.45, 1.45], [-1.45, 0.45])
    """
    reps = np.asarray(replicates, dtype=float)
    alpha = (1 - confidence) / 2
    lo, hi = (float(q) for q in np.quantile(reps, [alpha, 1 - alpha]))
    z = NormalDist().inv_cdf(1 - alpha)
    sd = float(reps.std(ddof=1))
    centre = 2 * point - float(reps.mean())
    out = {
        "percentile": (lo, hi),
        "basic": (2 * point - hi, 2 * point - lo),
        "normal": (point - z * sd, point + z * sd),
        "normal_bc": (centre - z * sd, centre + z * sd),
    }
    if reported is not None:
        out["reported"] = (float(reported[0]), float(reported[1]))
    return out


def covers(interval: Sequence[float], truth: float) -> bool:
    """Whether the closed interval holds ``truth``.

    Examples
    --------
    >>> covers((0.0, 1.0), 1.0), covers((0.0, 1.0), 1.5)
    (True, False)
    """
    return bool(interval[0] <= truth <= interval[1])


def _sign(x: float) -> float:
    return float(np.sign(x))


def mechanism_row(
    point: float,
    replicates: np.ndarray,
    truth: float,
    confidence: float = CONFIDENCE,
    reported: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Everything recorded about one mechanism of one run.

    Parameters
    ----------
    point : float
        The point estimate ``θ̂``.
    replicates : ndarray of shape (B,)
        Its bootstrap replicates.
    truth : float
        The true value.
    confidence : float, default 0.95
    reported : (low, high), optional
        The result's own interval when it is not the percentile one.

    Returns
    -------
    dict
        ``truth``, ``point``, ``rep_mean``, ``rep_median``, ``rep_sd``, ``shift`` =
        ``(rep_mean − θ̂) / rep_sd``, ``shift_toward_zero`` (the same times
        ``−sign(θ̂)``: positive when the replicates sit nearer zero), ``shrunk`` /
        ``shrunk_median`` (``|rep_mean|`` / ``|rep_median|`` below ``|θ̂|``), ``error``
        ``θ̂ − truth``, ``error_along_truth`` (``sign(truth)·(θ̂ − truth)``: negative when
        ``θ̂`` is nearer zero than the truth; ``None`` for a truth of 0),
        ``rep_mean_error_along_truth`` (the same for the replicates' mean), and per
        interval type ``intervals``, ``covered`` and ``width``.

    Examples
    --------
    >>> row = mechanism_row(-1.0, np.array([-0.9, -0.7, -0.8]), truth=-1.2)
    >>> row["shrunk"], round(row["shift_toward_zero"], 6), round(row["error_along_truth"], 6)
    (True, 2.0, -0.2)
    """
    reps = np.asarray(replicates, dtype=float)
    mean, median, sd = float(reps.mean()), float(np.median(reps)), float(reps.std(ddof=1))
    shift = (mean - point) / sd if sd > 0 else float("nan")
    ivs = intervals(point, reps, confidence, reported)
    along = None if truth == 0 else _sign(truth) * (point - truth)
    return {
        "truth": float(truth),
        "point": float(point),
        "rep_mean": mean,
        "rep_median": median,
        "rep_sd": sd,
        "shift": shift,
        "shift_toward_zero": -_sign(point) * shift,
        "shrunk": bool(abs(mean) < abs(point)),
        "shrunk_median": bool(abs(median) < abs(point)),
        "error": float(point - truth),
        "error_along_truth": along,
        "rep_mean_error_along_truth": None if truth == 0 else _sign(truth) * (mean - truth),
        "intervals": {k: list(v) for k, v in ivs.items()},
        "covered": {k: covers(v, truth) for k, v in ivs.items()},
        "width": {k: float(v[1] - v[0]) for k, v in ivs.items()},
    }


def _mean(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None and np.isfinite(x)]
    return float(np.mean(vals)) if vals else None


def _run_se(rows: Sequence[Mapping[str, Any]], key: str) -> float | None:
    """Standard error of ``key``'s mean treating runs (not mechanisms) as independent:
    the standard deviation of the per-run means over the square root of the runs."""
    per_run: dict[tuple, list[float]] = {}
    for r in rows:
        x = r[key]
        if x is not None and np.isfinite(x):
            per_run.setdefault((r["scm"], r["n"], r["seed"], r["method"]), []).append(x)
    means = [np.mean(v) for v in per_run.values()]
    return float(np.std(means, ddof=1) / np.sqrt(len(means))) if len(means) > 1 else None


def summary_of(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The summary of a group of mechanism rows (:func:`mechanism_row` plus ``scm``,
    ``n``, ``seed``, ``method``, ``mechanism``).

    Returns
    -------
    dict
        ``n_rows``, ``n_runs``; ``shift_mean``, ``shift_toward_zero_mean`` and its
        run-clustered ``shift_toward_zero_se``; ``shrunk_share`` and
        ``shrunk_median_share``; ``error_along_truth_mean`` and
        ``rep_mean_error_along_truth_mean`` (rows with a non-zero truth);
        ``abs_error_mean``; per interval type (rows that have it) ``coverage``,
        ``coverage_se`` (binomial), ``width_mean`` and ``n_scored``.

    Examples
    --------
    >>> base = {"scm": "s", "n": 1, "method": "iw", "mechanism": "X"}
    >>> rows = [{**base, "seed": s, **mechanism_row(-1.0, np.array([-0.9, -0.7, -0.8]), -1.2)}
    ...         for s in (0, 1)]
    >>> out = summary_of(rows)
    >>> out["n_runs"], out["shrunk_share"], out["coverage"]["percentile"]
    (2, 1.0, 0.0)
    """
    runs = {(r["scm"], r["n"], r["seed"], r["method"]) for r in rows}
    out: dict[str, Any] = {
        "n_rows": len(rows),
        "n_runs": len(runs),
        "shift_mean": _mean([r["shift"] for r in rows]),
        "shift_toward_zero_mean": _mean([r["shift_toward_zero"] for r in rows]),
        "shift_toward_zero_se": _run_se(rows, "shift_toward_zero"),
        "shrunk_share": _mean([float(r["shrunk"]) for r in rows]),
        "shrunk_median_share": _mean([float(r["shrunk_median"]) for r in rows]),
        "error_along_truth_mean": _mean([r["error_along_truth"] for r in rows]),
        "rep_mean_error_along_truth_mean": _mean([r["rep_mean_error_along_truth"] for r in rows]),
        "abs_error_mean": _mean([abs(r["error"]) for r in rows]),
        "misses_warned": _misses_warned(rows),
        "coverage": {},
        "coverage_se": {},
        "width_mean": {},
        "n_scored": {},
    }
    for kind in INTERVALS:
        scored = [r for r in rows if kind in r["covered"]]
        if not scored:
            continue
        p = float(np.mean([r["covered"][kind] for r in scored]))
        out["coverage"][kind] = p
        out["coverage_se"][kind] = float(np.sqrt(p * (1 - p) / len(scored)))
        out["width_mean"][kind] = float(np.mean([r["width"][kind] for r in scored]))
        out["n_scored"][kind] = len(scored)
    return out


def _misses_warned(rows: Sequence[Mapping[str, Any]]) -> dict[str, int] | None:
    """Of the values whose reported interval (the percentile one where the result
    reports no other) misses the truth, how many came from a run with a warning:
    ``{"misses": k, "warned": j}``; ``None`` for rows that do not record warnings."""
    if not rows or any("warned" not in r for r in rows):
        return None
    kind = [("reported" if "reported" in r["covered"] else "percentile") for r in rows]
    missed = [r for r, k in zip(rows, kind) if not r["covered"][k]]
    return {"misses": len(missed), "warned": sum(bool(r["warned"]) for r in missed)}


def _spread_vs_error(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Over the seeds of one (SCM, N, method, mechanism): the root mean square of the
    replicates' sd against the point's root-mean-square error and its sd over seeds
    (too narrow an interval from scale, not from centring, shows as a ratio below 1)."""
    sd_rms = float(np.sqrt(np.mean([r["rep_sd"] ** 2 for r in rows])))
    rmse = float(np.sqrt(np.mean([r["error"] ** 2 for r in rows])))
    points = [r["point"] for r in rows]
    sd_points = float(np.std(points, ddof=1)) if len(points) > 1 else float("nan")
    return {
        "rep_sd_rms": sd_rms,
        "rmse": rmse,
        "sd_of_points": sd_points,
        "rep_sd_over_rmse": sd_rms / rmse if rmse > 0 else None,
        "rep_sd_over_sd_of_points": sd_rms / sd_points if sd_points > 0 else None,
    }


def summarise(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Summaries per (SCM, N, method), per (SCM, N, method, mechanism), per (N, method),
    per method and over every row (:func:`summary_of`), in the rows' order."""

    def groups(keys: Sequence[str]) -> dict[tuple, list[Mapping[str, Any]]]:
        out: dict[tuple, list[Mapping[str, Any]]] = {}
        for r in rows:
            out.setdefault(tuple(r[k] for k in keys), []).append(r)
        return out

    def labelled(keys: Sequence[str], extra: Any = None) -> list[dict[str, Any]]:
        return [
            {
                **dict(zip(keys, key)),
                **summary_of(sel),
                **(extra(sel) if extra else {}),
            }
            for key, sel in groups(keys).items()
        ]

    return {
        "by_scm_n_method": labelled(("scm", "n", "method")),
        "by_mechanism": labelled(("scm", "n", "method", "mechanism"), _spread_vs_error),
        "by_n_method": labelled(("n", "method")),
        "by_method": labelled(("method",)),
        "overall": summary_of(rows) if rows else {},
    }


# -- running ----------------------------------------------------------------------------


def attribute_refit(
    scm: Any, source: Any, target: Any, method: str, n_bootstrap: int, seed: int
) -> Any:
    """:func:`shiftattr.attribute` with the refit bootstrap, called as
    :mod:`benchmarks.accuracy_tabular` calls it (the measured target loss for ``"mis"``).
    ``"iw+check"`` is ``"iw"`` with every check it has: the measured target loss
    (``closure_error``) and ``cross_check=True`` (``methods_disagree``)."""
    from shiftattr import attribute

    checked = method == "iw+check"
    return attribute(
        scm.graph,
        source,
        target,
        metric=scm.metric(source),
        target_metric=None if method == "iw" else scm.metric(target),
        method="iw" if checked else method,
        cross_check=checked,
        n_bootstrap=n_bootstrap,
        bootstrap="refit",
        n_folds=N_FOLDS,
        n_jobs=1,
        progress=False,
        random_state=seed,
    )


def _round(x: float) -> float:
    return float(f"{x:.7g}")


def run_one(
    scm: Any, source: Any, target: Any, method: str, n_bootstrap: int, seed: int, truth: Mapping
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One attribution: its run record and one row per mechanism.

    The run record holds the replicates (rounded to 7 significant digits), the warning
    codes, the interval the result reports, and ``percentile_matches_library``: whether
    :func:`intervals`' percentile interval is the library's bootstrap interval
    (``ci`` for ``"iw"``, ``diagnostics["estimator"]["bootstrap_ci"]`` otherwise).
    """
    res = attribute_refit(scm, source, target, method, n_bootstrap, seed)
    if res.settings["bootstrap"] != "refit":
        raise RuntimeError(f"asked for the refit bootstrap, got {res.settings['bootstrap']!r}")
    boot = np.asarray(res.bootstrap_values, dtype=float)
    mechs = list(res.mechanisms)
    if boot.shape != (n_bootstrap, len(mechs)):
        raise RuntimeError(
            f"bootstrap_values has shape {boot.shape}, expected {(n_bootstrap, len(mechs))}"
        )
    interval = res.settings["interval"]
    library_pct = (
        res.ci if interval == "bootstrap" else res.diagnostics["estimator"]["bootstrap_ci"]
    )
    rows, matches = [], True
    for j, m in enumerate(mechs):
        reported = None if interval == "bootstrap" else res.ci[m]
        row = mechanism_row(res.values[m], boot[:, j], truth[m], CONFIDENCE, reported)
        matches &= bool(np.allclose(row["intervals"]["percentile"], library_pct[m], atol=1e-12))
        rows.append({"mechanism": m, **row, "warned": bool(res.warnings)})
    run = {
        "interval": interval,
        "percentile_matches_library": matches,
        "warnings": sorted({w["code"] for w in res.warnings}),
        "replicates": {m: [_round(x) for x in boot[:, j]] for j, m in enumerate(mechs)},
    }
    return run, rows


def _payload(
    quick: bool, cfg: dict, command: str, truths: dict, runs: list, rows: list, t_start: float
) -> dict[str, Any]:
    return {
        "mode": "quick" if quick else "full",
        "command": command,
        "git": GIT_AT_START,
        "finished": now_utc(),
        "seconds": time.perf_counter() - t_start,
        "config": cfg,
        "setup": {
            "attribute": "attribute(scm.graph, source, target, metric=per-case source loss, "
            "target_metric=per-case target loss for 'mis' (None for 'iw'), method=..., "
            f"n_bootstrap={cfg['n_bootstrap']}, bootstrap='refit', n_folds={N_FOLDS}, "
            "n_jobs=1, random_state=seed); other settings at their defaults",
            "samples": "benchmarks.accuracy_tabular.bench_samples (the same cells as the "
            "accuracy and value-estimator sections)",
            "replicates": "Attribution.bootstrap_values",
            "intervals": {
                "percentile": "(q2.5, q97.5) of the replicates (np.quantile, linear)",
                "basic": "(2*point - q97.5, 2*point - q2.5)",
                "normal": "point +- z * sd (sd of the replicates, ddof=1)",
                "normal_bc": "2*point - mean(replicates) +- z * sd",
                "reported": "the result's ci where it is not the percentile interval "
                "('mis': bias-aware, centred on the point)",
            },
            "shift": "(mean of replicates - point) / sd; shift_toward_zero = -sign(point) "
            "* shift (positive: replicates nearer zero than the point)",
            "error_along_truth": "sign(truth) * (point - truth): negative = the point is "
            "nearer zero than the truth (rows with a zero truth left out)",
            "threads": "BLAS limited to 1 thread; n_jobs=1",
        },
        "truth": truths,
        "runs": runs,
        "rows": rows,
        "summary": summarise(rows),
    }


def _fmt(x: float | None, spec: str = "+.2f") -> str:
    return "   -" if x is None else format(x, spec)


def print_summary(summary: Mapping[str, Any]) -> None:
    """A readable table: one line per (SCM, N, method), then per method and overall."""
    kinds = [k for k in INTERVALS if k != "reported"] + ["reported"]
    head = (
        f"{'scm':<21}{'N':>5} {'method':<6}{'rows':>5} {'shift0':>7} {'±se':>5} "
        f"{'shrunk':>6} {'err·sgn':>8} | "
        + " ".join(f"{k[:9]:>9}" for k in kinds)
        + f" | {'w pct':>7} {'w basic':>7} {'w rep':>7}"
    )

    def line(label: str, s: Mapping[str, Any]) -> str:
        cov = s["coverage"]
        wid = s["width_mean"]
        return (
            f"{label} {s['n_rows']:>5} {_fmt(s['shift_toward_zero_mean']):>7} "
            f"{_fmt(s['shift_toward_zero_se'], '.2f'):>5} {_fmt(s['shrunk_share'], '.2f'):>6} "
            f"{_fmt(s['error_along_truth_mean'], '+.4f'):>8} | "
            + " ".join(f"{_fmt(cov.get(k), '.3f'):>9}" for k in kinds)
            + f" | {_fmt(wid.get('percentile'), '.4f'):>7} {_fmt(wid.get('basic'), '.4f'):>7}"
            f" {_fmt(wid.get('reported'), '.4f'):>7}"
        )

    print(
        "shift0: mean (replicate mean - point)/sd oriented so that + = replicates nearer 0;\n"
        "shrunk: share with |replicate mean| < |point|; err·sgn: mean sign(truth)*(point - "
        "truth);\ncoverage of the 95 % intervals (reported: 'mis' bias-aware); w: mean width"
    )
    print(head)
    print("-" * len(head))
    for s in summary["by_scm_n_method"]:
        print(line(f"{s['scm']:<21}{s['n']:>5} {s['method']:<6}", s))
    print("-" * len(head))
    for s in summary["by_n_method"]:
        print(line(f"{'all':<21}{s['n']:>5} {s['method']:<6}", s))
    for s in summary["by_method"]:
        print(line(f"{'all':<21}{'all':>5} {s['method']:<6}", s))
    if summary["overall"]:
        print(line(f"{'all':<21}{'all':>5} {'all':<6}", summary["overall"]))


def run(
    quick: bool = False,
    scms: Sequence[str] | None = None,
    sizes: Sequence[int] | None = None,
    seeds: Sequence[int] | None = None,
    methods: Sequence[str] | None = None,
    n_bootstrap: int | None = None,
    out: Path = RESULTS_DIR,
    quiet: bool = False,
    command: str = "",
) -> dict[str, Any]:
    """Run the benchmark, write ``out/refit_centering.json`` and return its payload.

    Parameters
    ----------
    quick : bool
        The quick configuration (:func:`config_for`): not evidence, a check that it runs.
    scms, sizes, seeds, methods, n_bootstrap : optional
        Override the configuration.
    out : Path
        Folder of the results file.
    quiet : bool
        No progress bar and no per-run lines.
    command : str
        The command line, recorded.
    """
    from tqdm.auto import tqdm

    from benchmarks.accuracy_tabular import bench_samples
    from benchmarks.scms import all_scms
    from benchmarks.value_estimators import _truth

    t_start = time.perf_counter()
    cfg = config_for(quick)
    cfg["scms"] = list(scms or cfg["scms"])
    cfg["sizes"] = list(sizes or cfg["sizes"])
    cfg["seeds"] = list(seeds if seeds is not None else cfg["seeds"])
    cfg["methods"] = list(methods or cfg["methods"])
    cfg["n_bootstrap"] = int(n_bootstrap or cfg["n_bootstrap"])
    cfg["confidence"] = CONFIDENCE
    cfg["n_folds"] = N_FOLDS
    registry = all_scms()
    unknown = [s for s in cfg["scms"] if s not in registry]
    if unknown:
        raise ValueError(f"unknown SCMs {unknown}; known: {list(registry)}")
    truths: dict[str, Any] = {}
    runs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    total = len(cfg["scms"]) * len(cfg["sizes"]) * len(cfg["seeds"]) * len(cfg["methods"])
    bar = tqdm(total=total, desc="refit centering", disable=quiet)
    with blas_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in cfg["scms"]:
            scm = registry[name]
            truths[name] = _truth(name, scm, cfg["n_truth"])
            truth = truths[name]["values"]
            for n in cfg["sizes"]:
                for seed in cfg["seeds"]:
                    source, target = bench_samples(list(registry).index(name), scm, n, seed)
                    for method in cfg["methods"]:
                        key = {"scm": name, "n": n, "seed": seed, "method": method}
                        t0 = time.perf_counter()
                        try:
                            rec, mech_rows = run_one(
                                scm, source, target, method, cfg["n_bootstrap"], seed, truth
                            )
                        except Exception as err:  # a failing run is a result, not a crash
                            rec = {"ok": False, "error": f"{type(err).__name__}: {err}"}
                            mech_rows = []
                        else:
                            rec["ok"] = True
                        rec = {**key, **rec, "seconds": time.perf_counter() - t0}
                        runs.append(rec)
                        rows.extend({**key, **r} for r in mech_rows)
                        bar.update()
                        if not quiet:
                            status = "ok" if rec["ok"] else rec["error"][:80]
                            if not rec.get("percentile_matches_library", True):
                                status += " (percentile differs from the library's!)"
                            bar.write(
                                f"  {name} N={n} seed={seed} {method:<4} "
                                f"{rec['seconds']:6.1f}s {status}"
                            )
                    # checkpoint: what is done survives a crash or a time limit
                    payload = _payload(quick, cfg, command, truths, runs, rows, t_start)
                    write_json(NAME, {**payload, "partial": True}, out)
    bar.close()
    payload = _payload(quick, cfg, command, truths, runs, rows, t_start)
    write_json(NAME, payload, out)
    return payload


def combine(payloads: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One payload from runs made in separate processes (e.g. one per N, side by side on
    the two cores): runs and rows concatenated, summaries recomputed, the configurations'
    lists joined; each part's command, commit, date and seconds kept under ``parts``.

    Raises ``ValueError`` when the parts differ in a setting that changes the numbers
    (replicates, folds, confidence, truth size), or hold the same run twice.
    """
    fixed = ("n_bootstrap", "n_folds", "confidence", "n_truth")
    first = payloads[0]["config"]
    for p in payloads[1:]:
        bad = {
            k: (first.get(k), p["config"].get(k))
            for k in fixed
            if p["config"].get(k) != first.get(k)
        }
        if bad:
            raise ValueError(f"parts differ in settings that change the numbers: {bad}")
    seen: dict[tuple, int] = {}
    for i, p in enumerate(payloads):
        for r in p["runs"]:
            key = (r["scm"], r["n"], r["seed"], r["method"])
            if seen.setdefault(key, i) != i:
                raise ValueError(f"run {key} is in two parts ({seen[key]} and {i}): each once")
    cfg = dict(first)
    for key in ("scms", "sizes", "seeds", "methods"):
        cfg[key] = list(dict.fromkeys(v for p in payloads for v in p["config"][key]))
    warned = {  # rows written before they recorded it: from their run's warnings
        (r["scm"], r["n"], r["seed"], r["method"]): bool(r.get("warnings"))
        for p in payloads
        for r in p["runs"]
    }
    rows = [
        r if "warned" in r else {**r, "warned": warned[(r["scm"], r["n"], r["seed"], r["method"])]}
        for p in payloads
        for r in p["rows"]
    ]
    out = dict(payloads[0])
    out.update(
        command=" + ".join(p["command"] for p in payloads),
        config=cfg,
        truth={k: v for p in payloads for k, v in p["truth"].items()},
        runs=[r for p in payloads for r in p["runs"]],
        rows=rows,
        summary=summarise(rows),
        seconds=sum(p["seconds"] for p in payloads),
        parts=[
            {k: p.get(k) for k in ("command", "git", "date", "finished", "seconds")}
            for p in payloads
        ],
    )
    out.pop("partial", None)
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run, print the summary and write the results."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=None, help="cases per environment")
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument(
        "--methods", nargs="+", default=None, choices=["iw", "iw+check", "mis", "mr", "regression"]
    )
    p.add_argument("--scms", nargs="+", default=None, help="default: every tabular SCM")
    p.add_argument("--n-bootstrap", type=int, default=None, help="refit replicates per run")
    p.add_argument("--quick", action="store_true", help="tiny setting (a check, not evidence)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no per-run lines")
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder of the results file")
    p.add_argument(
        "--combine",
        type=Path,
        nargs="+",
        default=None,
        metavar="DIR",
        help="run nothing: write into --out one result of the finished runs in these folders",
    )
    args = p.parse_args(argv)
    if args.combine:
        from benchmarks._common import read_json

        parts = [read_json(NAME, d) for d in args.combine]
        missing = [str(d) for d, part in zip(args.combine, parts) if not part]
        partial = [str(d) for d, part in zip(args.combine, parts) if part and part.get("partial")]
        if missing or partial:
            p.error(f"no finished {NAME}.json in {missing + partial}")
        payload = combine(parts)
        write_json(NAME, payload, args.out)
        print_summary(payload["summary"])
        print(f"wrote {Path(args.out) / (NAME + '.json')}")
        return 0
    if args.n_bootstrap is not None and args.n_bootstrap < 2:
        p.error("--n-bootstrap must be at least 2")
    command = " ".join(
        ["python benchmarks/bench_refit_centering.py", *(sys.argv[1:] if argv is None else argv)]
    )
    payload = run(
        quick=args.quick,
        scms=args.scms,
        sizes=args.n,
        seeds=args.seeds,
        methods=args.methods,
        n_bootstrap=args.n_bootstrap,
        out=args.out,
        quiet=args.quiet,
        command=command,
    )
    print_summary(payload["summary"])
    failed = [r for r in payload["runs"] if not r["ok"]]
    mismatched = [r for r in payload["runs"] if not r.get("percentile_matches_library", True)]
    if failed:
        print(f"{len(failed)} run(s) failed; see 'runs' in the results file")
    if mismatched:
        print(f"{len(mismatched)} run(s) whose percentile interval is not the library's")
    print(f"{payload['seconds']:.0f} s; wrote {Path(args.out) / (NAME + '.json')}")
    return 0 if not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
