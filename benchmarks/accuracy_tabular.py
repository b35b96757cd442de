"""Attribution accuracy against the truth on tabular SCMs, shiftattr vs DoWhy.

For every SCM of :mod:`benchmarks.scms`, sample size ``N`` (cases per environment) and
seed, every method sees the same source and target samples:

- ``shiftattr``: :func:`shiftattr.attribute` with ``method="iw"`` and no target metric
  (importance weighting, the default until 2026-12-02; ClassifierRatio, 5-fold
  cross-fitting, ExactShapley), ``n_bootstrap=0`` (intervals are not scored);
- ``shiftattr_oracle``: the same game with the *true* conditional log-ratios (the
  ceiling of importance weighting at this ``N``: what is left is its variance);
- ``shiftattr_mis``: :func:`shiftattr.attribute` with ``method="mis"`` (the same ratios
  weighting the source and the target cases together, balance-heuristic weights), given
  the measured target loss;
- ``shiftattr_mis_oracle``: that game with the true log-ratios of every node;
- ``shiftattr_mr``: :func:`shiftattr.attribute` with ``method="mr"`` (multiply-robust:
  nested regressions of the loss corrected by the same ratios), given the measured
  target loss it regresses on;
- ``shiftattr_gen``: :func:`shiftattr.attribute` with ``method="generative"`` (every
  mechanism fitted as a sampler in each environment, every coalition simulated and the
  SCM's loss scored on it; the metric is the SCM's callable);
- ``dowhy_mr_gb``, ``dowhy_mr_default``, ``dowhy_graphs``: see
  :mod:`benchmarks.dowhy_attribution`.

Scored against the ground truth (closed form or simulated with common random numbers):
per-mechanism absolute error, MAE over mechanisms, whether the dominant mechanism
(largest ``|true value|``) is the estimate's largest, and wall time. All BLAS pools are
limited to one thread and every method runs with ``n_jobs=1``.
"""

from __future__ import annotations

import time
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks._common import blas_threads, peer_available, skipped, write_json
from benchmarks.dowhy_attribution import dowhy_attribute
from benchmarks.scms import all_scms
from shiftattr import attribute
from shiftattr.attribution import iw_game
from shiftattr.shapley import ExactShapley
from shiftattr.value import BalancedValue

NAME = "accuracy_tabular"
METHODS = (
    "shiftattr",
    "shiftattr_oracle",
    "shiftattr_mis",
    "shiftattr_mis_oracle",
    "shiftattr_mr",
    "shiftattr_gen",
    "dowhy_mr_gb",
    "dowhy_mr_default",
    "dowhy_graphs",
)


def _shiftattr(scm: Any, source, target, seed: int, method: str = "iw") -> dict[str, Any]:
    res = attribute(
        scm.graph,
        source,
        target,
        metric=scm.metric if method == "generative" else scm.metric(source),
        target_metric=None if method == "iw" else scm.metric(target),
        method=method,
        n_bootstrap=0,
        n_folds=5,
        progress=False,
        random_state=seed,
    )
    per = res.diagnostics["mechanisms"]
    return {
        "values": dict(res.values),
        "diagnostics": {
            "auc_joint": {k: v["auc_joint"] for k, v in per.items()},
            "auc_parents": {k: v["auc_parents"] for k, v in per.items()},
            "ess_fraction": {k: v["ess_fraction"] for k, v in per.items()},
            "ess_all_fraction": res.diagnostics["overall"]["ess_all_fraction"],
            "warnings": [w["code"] for w in res.warnings],
        },
    }


def _oracle(scm: Any, source, target, seed: int) -> dict[str, Any]:
    L = np.array([scm.true_log_ratio(source, m) for m in scm.mechanisms])
    sv = ExactShapley().solve(iw_game(scm.mechanisms, L, scm.metric(source)))
    return {"values": dict(zip(scm.mechanisms, map(float, sv.values)))}


def _oracle_mis(scm: Any, source, target, seed: int) -> dict[str, Any]:
    nodes = list(scm.graph.nodes)
    Ls = np.array([scm.true_log_ratio(source, v) for v in nodes])
    Lt = np.array([scm.true_log_ratio(target, v) for v in nodes])
    bal = BalancedValue(scm.mechanisms, nodes, Ls, Lt, scm.metric(source), scm.metric(target))
    sv = ExactShapley().solve(bal.game())
    return {"values": dict(zip(scm.mechanisms, map(float, sv.values)))}


#: Seed of the truth simulations (every section that reuses a truth must use the same).
TRUTH_SEED = 2024


def truth_record(scm: Any, n_truth: int) -> dict[str, Any]:
    """Simulate an SCM's ground truth and describe it as stored in the results JSON."""
    t0 = time.perf_counter()
    truth = scm.truth(n_truth, TRUTH_SEED)
    return {
        "description": scm.description,
        "mechanisms": list(scm.mechanisms),
        "shifted": list(scm.shifted),
        "loss": scm.loss_kind,
        "values": truth.values,
        "stderr": truth.stderr,
        "total": truth.total,
        "source_metric": truth.source_metric,
        "target_metric": truth.target_metric,
        "n_simulated": truth.n,
        "dominant": max(truth.values, key=lambda m: abs(truth.values[m])),
        "seconds": time.perf_counter() - t0,
    }


def _run_method(
    method: str, scm: Any, source, target, seed: int, num_samples: int
) -> dict[str, Any]:
    if method == "shiftattr":
        return _shiftattr(scm, source, target, seed)
    if method == "shiftattr_oracle":
        return _oracle(scm, source, target, seed)
    if method == "shiftattr_mis":
        return _shiftattr(scm, source, target, seed, method="mis")
    if method == "shiftattr_mis_oracle":
        return _oracle_mis(scm, source, target, seed)
    if method == "shiftattr_mr":
        return _shiftattr(scm, source, target, seed, method="mr")
    if method == "shiftattr_gen":
        return _shiftattr(scm, source, target, seed, method="generative")
    return dowhy_attribute(method, scm, source, target, seed, num_samples=num_samples)


def mae_with_extra(abs_errors: dict[str, float], extra_error: float | None = None) -> float:
    """Sum of the mechanisms' absolute errors plus ``|extra_error|``, over the mechanisms."""
    extra = abs(extra_error) if extra_error is not None else 0.0
    return float((sum(abs_errors.values()) + extra) / len(abs_errors))


def score(values: dict[str, float], truth: dict[str, float], extra_error: float | None = None):
    """Per-mechanism absolute errors, MAE and whether the dominant mechanism is found.

    ``extra_error`` (DoWhy's value for the loss node, whose truth is 0) is added to the
    sum of the absolute errors, which is divided by the number of mechanisms: a value
    given to the loss node counts fully as an error without the (near-zero) extra term
    diluting the mean of the others.
    """
    mechs = list(truth)
    err = {m: abs(values[m] - truth[m]) for m in mechs}
    dominant = max(mechs, key=lambda m: abs(truth[m]))
    found = max(mechs, key=lambda m: abs(values[m])) == dominant
    return {
        "abs_errors": err,
        "mae": mae_with_extra(err, extra_error),
        "dominant_found": bool(found),
    }


def bench_samples(scm_index: int, scm: Any, n: int, seed: int) -> tuple[Any, Any]:
    """The source and target samples of one (SCM, N, seed) cell.

    Every tabular section draws them this way, so the same cell holds the same cases in
    section 1 and in the value-estimator section.
    """
    ss = np.random.SeedSequence([scm_index, n, seed])
    s_seed, t_seed = (int(x) for x in ss.generate_state(2))
    return scm.sample(n, "source", s_seed), scm.sample(n, "target", t_seed)


def attempt(rec: dict[str, Any], fn: Any, *args: Any) -> dict[str, Any] | None:
    """Run ``fn(*args)`` and time it into ``rec``; a failure is recorded, not raised.

    Returns ``fn``'s output, or ``None`` after setting ``ok=False``, the error and its
    traceback in ``rec`` (a failing method is a result, not a crash).
    """
    t1 = time.perf_counter()
    try:
        out = fn(*args)
    except Exception as err:
        rec.update(
            ok=False, error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc(limit=3)
        )
        out = None
    else:
        rec["ok"] = True
    rec["seconds"] = time.perf_counter() - t1
    return out


def log_run(section: str, rec: dict[str, Any]) -> None:
    """One progress line per run: section, cell, method, time and MAE or error."""
    status = f"MAE {rec['mae']:.4f}" if rec["ok"] else rec["error"][:80]
    print(
        f"  {section} {rec['scm']} N={rec['n']} seed={rec['seed']} {rec['method']:<18} "
        f"{rec['seconds']:6.1f}s {status}",
        flush=True,
    )


def config_for(quick: bool) -> dict[str, Any]:
    """SCMs, sample sizes, seeds and truth size of the quick and the full run."""
    if quick:
        return {
            "scms": ["linear_gaussian", "threshold_chain", "hetero_mixture"],
            "sizes": [500],
            "seeds": [0],
            "n_truth": 200_000,
            "method_seeds": {"dowhy_mr_gb": []},  # ~2-3 min per run: full mode only
            "graphs_num_samples": 5_000,
        }
    return {
        "scms": list(all_scms()),
        "sizes": [500, 2000],
        "seeds": [0, 1, 2],
        "n_truth": 1_000_000,
        "method_seeds": {"dowhy_mr_gb": [0, 1]},
        "graphs_num_samples": 20_000,
    }


def _summarise(runs: list[dict[str, Any]], truths: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    keys = sorted(
        {(r["scm"], r["n"]) for r in runs}, key=lambda k: (list(truths).index(k[0]), k[1])
    )
    for scm, n in keys:
        base = [
            r["seconds"]
            for r in runs
            if r["scm"] == scm and r["n"] == n and r["method"] == "shiftattr" and r["ok"]
        ]
        base_t = float(np.median(base)) if base else None
        for method in METHODS:
            sel = [r for r in runs if r["scm"] == scm and r["n"] == n and r["method"] == method]
            ok = [r for r in sel if r["ok"]]
            if not sel:
                continue
            row: dict[str, Any] = {"scm": scm, "n": n, "method": method, "n_runs": len(ok)}
            if len(ok) < len(sel):
                row["n_failed"] = len(sel) - len(ok)
            if ok:
                mechs = truths[scm]["mechanisms"]
                t = float(np.median([r["seconds"] for r in ok]))
                row.update(
                    {
                        "mae_mean": float(np.mean([r["mae"] for r in ok])),
                        "mae_sd": float(np.std([r["mae"] for r in ok])),
                        "abs_error_mean": {
                            m: float(np.mean([r["abs_errors"][m] for r in ok])) for m in mechs
                        },
                        "value_mean": {
                            m: float(np.mean([r["values"][m] for r in ok])) for m in mechs
                        },
                        "dominant_rate": float(np.mean([r["dominant_found"] for r in ok])),
                        "seconds_median": t,
                        "time_ratio_to_shiftattr": (t / base_t) if base_t else None,
                    }
                )
                if any("loss_node" in r for r in ok):
                    row["loss_node_mean_abs"] = float(
                        np.mean([abs(r.get("loss_node", 0.0)) for r in ok])
                    )
            rows.append(row)
    return rows


def _payload(quick: bool, cfg: dict, dowhy: str | None, truths: dict, runs: list) -> dict[str, Any]:
    return {
        "mode": "quick" if quick else "full",
        "config": cfg,
        "peers": {"dowhy": dowhy or skipped("dowhy")},
        "setup": {
            "sign": "values are M(source) - M(P_I) with M the mean loss (a rising loss is "
            "negative); DoWhy's mean_new - mean_old values are negated",
            "loss_node": "DoWhy attributes a node's change: the loss is an extra node "
            "'loss' with parents = model inputs + outcome; its own (unshifted) mechanism's "
            "value counts as an error in DoWhy's MAE (added to the sum of the mechanisms' "
            "absolute errors, divided by the number of mechanisms)",
            "threads": "BLAS limited to 1 thread; n_jobs=1 everywhere",
            "dowhy_graphs_num_samples": cfg["graphs_num_samples"],
        },
        "truth": truths,
        "runs": runs,
        "summary": _summarise(runs, truths),
    }


def run(
    quick: bool = False,
    scms: Sequence[str] | None = None,
    sizes: Sequence[int] | None = None,
    seeds: Sequence[int] | None = None,
    write: bool = True,
    log: bool = True,
) -> dict[str, Any]:
    """Run the accuracy benchmark and write ``results/accuracy_tabular.json``.

    Parameters
    ----------
    quick : bool
        The quick configuration (:func:`config_for`).
    scms, sizes, seeds : sequence, optional
        Override the configuration.
    write : bool, default True
        Write the JSON file.
    log : bool, default True
        Print one line per run.

    Returns
    -------
    dict
    """
    cfg = config_for(quick)
    cfg["scms"] = list(scms or cfg["scms"])
    cfg["sizes"] = list(sizes or cfg["sizes"])
    cfg["seeds"] = list(seeds if seeds is not None else cfg["seeds"])
    registry = all_scms()
    dowhy = peer_available("dowhy")
    truths: dict[str, Any] = {}
    runs: list[dict[str, Any]] = []
    with blas_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in cfg["scms"]:
            scm = registry[name]
            truths[name] = truth_record(scm, cfg["n_truth"])
            if write and runs:  # checkpoint: what is done survives a crash later on
                write_json(NAME, {**_payload(quick, cfg, dowhy, truths, runs), "partial": True})
            for n in cfg["sizes"]:
                for seed in cfg["seeds"]:
                    source, target = bench_samples(list(registry).index(name), scm, n, seed)
                    for method in METHODS:
                        if method.startswith("dowhy") and not dowhy:
                            continue
                        allowed = cfg["method_seeds"].get(method)
                        if allowed is not None and seed not in allowed:
                            continue
                        rec: dict[str, Any] = {"scm": name, "n": n, "seed": seed, "method": method}
                        out = attempt(
                            rec,
                            _run_method,
                            method,
                            scm,
                            source,
                            target,
                            seed,
                            cfg["graphs_num_samples"],
                        )
                        if out is not None:
                            rec.update(out)
                            rec.update(
                                score(out["values"], truths[name]["values"], out.get("loss_node"))
                            )
                        runs.append(rec)
                        if log:
                            log_run("accuracy", rec)
    payload = _payload(quick, cfg, dowhy, truths, runs)
    if write:
        write_json(NAME, payload)
    return payload
