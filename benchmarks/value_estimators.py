"""Value estimators on the tabular SCMs: importance weighting vs regression vs MR vs DoWhy.

For every SCM of :mod:`benchmarks.scms`, sample size ``N`` (cases per environment) and
seed, every method sees the same source and target samples (drawn exactly as in
:mod:`benchmarks.accuracy_tabular`):

- ``iw``, ``mis``, ``regression``, ``mr``: :func:`shiftattr.attribute` with ``method=...``, the
  measured target loss as ``target_metric``, ``n_bootstrap=100``, ``bootstrap="fixed"``,
  5-fold cross-fitting (intervals are scored: coverage of the truth per mechanism);
- ``mr_biasaware``: ``mr`` again with ``interval="bias_aware"`` (same values; the
  interval also covers a bias up to the distance to importance weighting);
- ``regression_biasaware``, ``mis_biasaware``: ``regression`` and ``mis`` again with
  ``interval="bias_aware"``;
- ``mr_pooled``: ``mr`` with ``pooled_regressions=True`` (each nested regression fitted
  on both environments' cases, the other one's weighted by the level's ratio);
- ``mr_linear``: ``mr`` with the learner class of DoWhy's defaults: every density ratio
  from a standardised logistic regression (``ClassifierRatio``, no calibration), every
  nested regression a standardised ridge regression, both in the library's closed forms
  (:func:`linear_learners`); it
  separates what the algorithm costs (fit once per mechanism and environment) from what
  the learners cost;
- ``mr_both``: ``mr`` with ``both_samples=True`` (every term over both environments'
  cases, balance-heuristic weights) and its default reporting, ``interval="bias_aware"``;
  ``mr_both_oracle``: the same given every node's true log-ratio;
- ``iw_oracle``, ``mis_oracle``, ``mr_oracle``: ``iw``, ``mis`` and ``mr`` given every node's true conditional
  log-ratio (``attribute(known_ratios=...)`` with the SCM's ``true_log_ratio``) instead
  of estimated ratios: the error left with perfect ratio estimators;
- ``mr_point``: ``mr`` again with ``n_bootstrap=0`` (same values; the time of the point
  estimate alone, as DoWhy computes no intervals), on the seeds of
  ``config["method_seeds"]``; ``mr_linear_point``: the same for ``mr_linear``;
- ``dowhy_mr_default``: :func:`dowhy.gcm.distribution_change_robust` (``method="MR"``)
  with its default learners (linear / logistic regression);
- ``dowhy_mr_gb``: the same with histogram gradient boosting (about a minute per run:
  full mode only, on the seeds of ``config["method_seeds"]``).

Scored against the ground truth of :mod:`benchmarks.accuracy_tabular` (reused from
``results/accuracy_tabular.json`` when it holds the SCM's truth, else simulated):
per-mechanism absolute error, MAE over the mechanisms, whether the dominant mechanism is
the estimate's largest, CI coverage (shiftattr only; DoWhy gives no intervals), warning
codes and wall time. DoWhy's value for the ``loss`` node (truth 0) is recorded as
``loss_node`` and is *not* part of ``mae`` (``mae_with_loss_node`` includes it), so that
the MAEs of all methods are over the same mechanisms. BLAS limited to one thread,
``n_jobs=1`` everywhere.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np

from benchmarks._common import (
    GIT_AT_START,
    blas_threads,
    now_utc,
    peer_available,
    read_json,
    skipped,
    write_json,
)
from benchmarks.accuracy_tabular import attempt, bench_samples, log_run, score, truth_record
from benchmarks.dowhy_attribution import dowhy_attribute
from benchmarks.scms import all_scms
from shiftattr import attribute
from shiftattr.ratios import ClassifierRatio, StandardisedLogisticRegression
from shiftattr.value import default_regressors

NAME = "value_estimators"
SHIFTATTR = ("iw", "mis", "regression", "mr")
METHODS = (
    *SHIFTATTR,
    "mr_biasaware",
    "regression_biasaware",
    "mis_biasaware",
    "mr_pooled",
    "mr_linear",
    "iw_oracle",
    "mis_oracle",
    "mr_oracle",
    "mr_both",
    "mr_both_oracle",
    "mr_point",
    "mr_linear_point",
    "dowhy_mr_default",
    "dowhy_mr_gb",
)
REFERENCE = "dowhy_mr_default"  # time ratios are to this one


def config_for(quick: bool) -> dict[str, Any]:
    """SCMs, sample sizes, seeds and truth size of the quick and the full run."""
    if quick:
        return {
            "scms": list(all_scms()),
            "sizes": [100, 300],
            "seeds": [0],
            "n_truth": 200_000,
            "n_bootstrap": 100,
            "method_seeds": {"mr_point": [0], "mr_linear_point": [0], "dowhy_mr_gb": []},
        }
    return {
        "scms": list(all_scms()),
        "sizes": [100, 300, 1000],
        "seeds": [0, 1, 2],
        "n_truth": 1_000_000,
        "n_bootstrap": 100,
        "method_seeds": {"mr_point": [0], "mr_linear_point": [0], "dowhy_mr_gb": [0]},
    }


def _truth(name: str, scm: Any, n_truth: int) -> dict[str, Any]:
    """The SCM's truth: from ``accuracy_tabular.json`` when there, else simulated."""
    cached = (read_json("accuracy_tabular") or {}).get("truth", {}).get(name)
    if cached and list(cached["mechanisms"]) == list(scm.mechanisms):
        return {**cached, "from": "results/accuracy_tabular.json"}
    return {**truth_record(scm, n_truth), "from": "simulated here"}


def linear_learners(nodes: Sequence[str]) -> dict[str, Any]:
    """``attribute`` keywords giving every node set a logistic-regression ratio and every
    nested regression the library's standardised ridge regression: the learner class of
    DoWhy MR's defaults (logistic and linear regression), both in the library's closed
    forms (:class:`~shiftattr.ratios.StandardisedLogisticRegression`, ``C = 1`` as
    scikit-learn's default, and :class:`~shiftattr.value.StandardisedRidgeCV`)."""
    logistic = StandardisedLogisticRegression()
    return {
        "estimators": {
            node: ClassifierRatio(classifier=logistic, calibration="none") for node in nodes
        },
        "regressor": default_regressors()["ridge"],
    }


def _shiftattr(
    method: str,
    scm: Any,
    source,
    target,
    seed: int,
    n_boot: int,
    interval: str = "bootstrap",
    pooled: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    res = attribute(
        scm.graph,
        source,
        target,
        metric=scm.metric(source),
        target_metric=scm.metric(target),
        method=method,
        n_bootstrap=n_boot,
        bootstrap="fixed",
        interval=interval,
        **({"pooled_regressions": True} if pooled else {}),
        **(extra or {}),
        n_folds=5,
        progress=False,
        random_state=seed,
    )
    return {
        "values": dict(res.values),
        "ci": {m: list(res.ci[m]) for m in res.mechanisms} if n_boot else {},
        "closure_error": res.closure_error,
        "warnings": sorted({w["code"] for w in res.warnings}),
    }


def _known_ratios(scm: Any) -> dict[str, Any]:
    """``known_ratios`` for ``attribute``: every node's true conditional log-ratio."""
    return {node: partial(scm.true_log_ratio, mechanism=node) for node in scm.graph.nodes}


def _run_method(method: str, scm: Any, source, target, seed: int, cfg: dict) -> dict[str, Any]:
    if method in SHIFTATTR:
        return _shiftattr(method, scm, source, target, seed, cfg["n_bootstrap"])
    if method == "mr_pooled":
        return _shiftattr("mr", scm, source, target, seed, cfg["n_bootstrap"], pooled=True)
    if method.endswith("_biasaware"):
        base = method.removesuffix("_biasaware")
        return _shiftattr(base, scm, source, target, seed, cfg["n_bootstrap"], "bias_aware")
    if method == "mr_linear":
        learners = linear_learners(scm.graph.nodes)
        return _shiftattr("mr", scm, source, target, seed, cfg["n_bootstrap"], extra=learners)
    if method in ("mr_both", "mr_both_oracle"):
        extra: dict[str, Any] = {"both_samples": True}
        if method.endswith("_oracle"):
            extra["known_ratios"] = _known_ratios(scm)
        return _shiftattr(
            "mr", scm, source, target, seed, cfg["n_bootstrap"], "bias_aware", extra=extra
        )
    if method in ("iw_oracle", "mis_oracle", "mr_oracle"):
        return _shiftattr(
            method.removesuffix("_oracle"),
            scm,
            source,
            target,
            seed,
            cfg["n_bootstrap"],
            extra={"known_ratios": _known_ratios(scm)},
        )
    if method == "mr_point":
        return _shiftattr("mr", scm, source, target, seed, 0)
    if method == "mr_linear_point":
        learners = linear_learners(scm.graph.nodes)
        return _shiftattr("mr", scm, source, target, seed, 0, extra=learners)
    return dowhy_attribute(method, scm, source, target, seed)


def _summarise(runs: list[dict[str, Any]], truths: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    keys = sorted(
        {(r["scm"], r["n"]) for r in runs}, key=lambda k: (list(truths).index(k[0]), k[1])
    )
    for scm, n in keys:
        here = [r for r in runs if r["scm"] == scm and r["n"] == n and r["ok"]]
        ref = [r["seconds"] for r in here if r["method"] == REFERENCE]
        ref_t = float(np.median(ref)) if ref else None
        for method in METHODS:
            sel = [r for r in runs if r["scm"] == scm and r["n"] == n and r["method"] == method]
            if not sel:
                continue
            ok = [r for r in sel if r["ok"]]
            row: dict[str, Any] = {"scm": scm, "n": n, "method": method, "n_runs": len(ok)}
            if len(ok) < len(sel):
                row["n_failed"] = len(sel) - len(ok)
            if ok:
                t = float(np.median([r["seconds"] for r in ok]))
                row.update(
                    mae_mean=float(np.mean([r["mae"] for r in ok])),
                    mae_sd=float(np.std([r["mae"] for r in ok])),
                    dominant_rate=float(np.mean([r["dominant_found"] for r in ok])),
                    seconds_median=t,
                    time_ratio_to_dowhy_mr=(t / ref_t) if ref_t else None,
                )
                cov = [c for r in ok for c in r.get("covered", {}).values()]
                row["coverage"] = float(np.mean(cov)) if cov else None
                codes = sorted({c for r in ok for c in r.get("warnings", [])})
                row["warnings"] = codes
                if any("loss_node" in r for r in ok):
                    row["mae_with_loss_node_mean"] = float(
                        np.mean([r["mae_with_loss_node"] for r in ok])
                    )
            rows.append(row)
    return rows


def _targets(summary: list[dict[str, Any]]) -> dict[str, Any]:
    """MR vs IW MAE ratio, and MR vs DoWhy MR (MAE and time) per (SCM, N)."""
    by = {(r["scm"], r["n"], r["method"]): r for r in summary if "mae_mean" in r}
    cells = []
    for scm, n in dict.fromkeys((s, n) for s, n, _ in by):  # summary order
        mr, iw, dw = (by.get((scm, n, m)) for m in ("mr", "iw", REFERENCE))
        if not mr:
            continue
        cell: dict[str, Any] = {"scm": scm, "n": n}
        if iw:
            cell["mr_over_iw_mae"] = mr["mae_mean"] / iw["mae_mean"] if iw["mae_mean"] else None
        point = by.get((scm, n, "mr_point"))
        if dw:
            cell["mr_over_dowhy_mae"] = mr["mae_mean"] / dw["mae_mean"] if dw["mae_mean"] else None
            cell["mr_over_dowhy_time"] = mr["time_ratio_to_dowhy_mr"]
            cell["mae_met"] = mr["mae_mean"] <= dw["mae_mean"]
            cell["time_met"] = mr["time_ratio_to_dowhy_mr"] <= 0.1
            if point:  # the point estimate alone (DoWhy computes no intervals)
                cell["mr_point_over_dowhy_time"] = point["time_ratio_to_dowhy_mr"]
        lin = by.get((scm, n, "mr_linear"))
        if lin and dw:
            cell["linear_over_dowhy_mae"] = (
                lin["mae_mean"] / dw["mae_mean"] if dw["mae_mean"] else None
            )
            cell["linear_over_dowhy_time"] = lin["time_ratio_to_dowhy_mr"]
            lin_point = by.get((scm, n, "mr_linear_point"))
            if lin_point:  # the point estimate alone (DoWhy computes no intervals)
                cell["linear_point_over_dowhy_time"] = lin_point["time_ratio_to_dowhy_mr"]
        gb = by.get((scm, n, "dowhy_mr_gb"))
        if gb:
            cell["mr_over_dowhy_gb_mae"] = (
                mr["mae_mean"] / gb["mae_mean"] if gb["mae_mean"] else None
            )
            cell["mr_over_dowhy_gb_time"] = mr["seconds_median"] / gb["seconds_median"]
            if point:
                cell["mr_point_over_dowhy_gb_time"] = point["seconds_median"] / gb["seconds_median"]
        cells.append(cell)
    both = [c for c in cells if "mae_met" in c]
    ratios = [c["mr_over_iw_mae"] for c in cells if c.get("mr_over_iw_mae")]
    gb_cells = [c for c in cells if c.get("mr_over_dowhy_gb_mae") is not None]
    lin_cells = [c for c in cells if c.get("linear_over_dowhy_mae") is not None]
    return {
        "per_cell": cells,
        "mr_vs_iw": {
            "geomean_mae_ratio": float(np.exp(np.mean(np.log(ratios)))) if ratios else None,
            "cells_2x_lower": sum(r <= 0.5 for r in ratios),
            "cells": len(ratios),
        },
        "mr_vs_dowhy_mr": {
            "cells_mae_met": sum(c["mae_met"] for c in both),
            "cells_time_met": sum(c["time_met"] for c in both),
            "cells_both_met": sum(c["mae_met"] and c["time_met"] for c in both),
            "cells": len(both),
            "met": bool(both) and all(c["mae_met"] and c["time_met"] for c in both),
            "cells_time_met_point_estimate": sum(
                c.get("mr_point_over_dowhy_time", np.inf) <= 0.1 for c in both
            ),
            "cells_with_point_estimate": sum("mr_point_over_dowhy_time" in c for c in both),
        },
        "mr_linear_vs_dowhy_mr": {
            "cells_mae_met": sum(c["linear_over_dowhy_mae"] <= 1 for c in lin_cells),
            "cells_time_met": sum(c["linear_over_dowhy_time"] <= 0.1 for c in lin_cells),
            "cells_faster": sum(c["linear_over_dowhy_time"] < 1 for c in lin_cells),
            "cells_time_met_point_estimate": sum(
                c.get("linear_point_over_dowhy_time", np.inf) <= 0.1 for c in lin_cells
            ),
            "cells_with_point_estimate": sum(
                "linear_point_over_dowhy_time" in c for c in lin_cells
            ),
            "median_time_ratio": (
                float(np.median([c["linear_over_dowhy_time"] for c in lin_cells]))
                if lin_cells
                else None
            ),
            "cells": len(lin_cells),
        },
        "mr_vs_dowhy_mr_gb": {
            "cells_mae_met": sum(c["mr_over_dowhy_gb_mae"] <= 1 for c in gb_cells),
            "cells_time_met": sum(c["mr_over_dowhy_gb_time"] <= 0.1 for c in gb_cells),
            "cells_both_met": sum(
                c["mr_over_dowhy_gb_mae"] <= 1 and c["mr_over_dowhy_gb_time"] <= 0.1
                for c in gb_cells
            ),
            "cells": len(gb_cells),
        },
    }


def _payload(quick: bool, cfg: dict, dowhy: str | None, truths: dict, runs: list) -> dict[str, Any]:
    summary = _summarise(runs, truths)
    seeds_of = {m: sorted({r["seed"] for r in runs if r["method"] == m}) for m in cfg["methods"]}
    cfg = {**cfg, "seeds_run": seeds_of}  # the seeds each method actually ran on
    return {
        "mode": "quick" if quick else "full",
        "config": cfg,
        "peers": {"dowhy": dowhy or skipped("dowhy")},
        "setup": {
            "sign": "values are M(source) - M(P_I) with M the mean loss; DoWhy's values "
            "are negated",
            "mae": "over the SCM's mechanisms for every method; DoWhy's value for its extra "
            "'loss' node (truth 0) is in mae_with_loss_node only",
            "shiftattr": "attribute(method=..., target_metric=measured target loss, "
            f"n_bootstrap={cfg['n_bootstrap']}, bootstrap='fixed', n_folds=5, random_state=seed)",
            "coverage": "fraction of (run, mechanism) whose 95 % CI holds the true value",
            "time_ratio": f"median seconds / median seconds of {REFERENCE} at the same (SCM, N)",
            "threads": "BLAS limited to 1 thread; n_jobs=1 everywhere",
        },
        "truth": truths,
        "runs": runs,
        "summary": summary,
        "targets": _targets(summary),
    }


def _superseded(merge: dict[str, Any], redo: set[tuple]) -> bool:
    """Whether every (SCM, N, seed, method) a listed merge names is in ``redo``, the runs
    a new merge replaces: its record then goes. A run it names but never made (a seed
    that ``method_seeds`` left out) keeps the record, which errs on keeping it."""
    return all(
        (s, n, seed, m) in redo
        for s in merge["scms"]
        for n in merge["sizes"]
        for seed in merge["seeds"]
        for m in merge["methods"]
    )


def run(
    quick: bool = False,
    scms: Sequence[str] | None = None,
    sizes: Sequence[int] | None = None,
    seeds: Sequence[int] | None = None,
    methods: Sequence[str] | None = None,
    write: bool = True,
    merge: bool = False,
    log: bool = True,
) -> dict[str, Any]:
    """Run the value-estimator benchmark and write ``results/value_estimators.json``.

    Parameters
    ----------
    quick : bool
        The quick configuration (:func:`config_for`).
    scms, sizes, seeds : sequence, optional
        Override the configuration.
    methods : sequence of str, optional
        Subset of :data:`METHODS` (default all).
    write : bool, default True
        Write the JSON file (also after every (SCM, N) as a checkpoint, marked partial).
    merge : bool, default False
        Add these runs to those of the existing ``results/value_estimators.json`` (a run
        of the same SCM, N, seed and method is replaced), e.g. DoWhy MR with gradient
        boosting run afterwards with ``methods=["dowhy_mr_gb"]``. The file keeps the
        first run's date and machine and lists every merge under ``merged`` (date,
        commit, methods, SCMs, sizes, seeds).
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
    cfg["methods"] = list(methods or METHODS)
    registry = all_scms()
    dowhy = peer_available("dowhy")
    truths: dict[str, Any] = {}
    runs: list[dict[str, Any]] = []
    # a peer that is not installed is not run, so it is neither redone nor listed as merged
    methods = [m for m in cfg["methods"] if dowhy or not m.startswith("dowhy")]
    todo = {k: cfg[k] for k in ("scms", "sizes", "seeds", "method_seeds")}
    todo["methods"] = methods

    def runs_here(seed: int, method: str) -> bool:
        allowed = todo["method_seeds"].get(method)
        return allowed is None or seed in allowed

    redo = {
        (s, n, seed, m)
        for s in todo["scms"]
        for n in todo["sizes"]
        for seed in todo["seeds"]
        for m in methods
        if runs_here(seed, m)
    }
    prior = read_json(NAME) if merge else None
    if prior:  # keep the earlier runs this call does not redo; describe what the file holds
        runs = [r for r in prior["runs"] if (r["scm"], r["n"], r["seed"], r["method"]) not in redo]
        truths = dict(prior["truth"])
        old = prior["config"]
        for k in ("scms", "sizes", "seeds", "methods"):
            cfg[k] = list(dict.fromkeys([*old[k], *todo[k]]))
        quick = prior["mode"] == "quick"
    merged_at = now_utc()

    def with_history(done: list[dict[str, Any]]) -> dict[str, Any]:
        """The payload of ``done``; a merge keeps the first run's date and machine and
        lists every merge whose runs the file still holds, this one last."""
        payload = _payload(quick, cfg, dowhy, truths, done)
        if prior:
            payload["date"], payload["machine"] = prior["date"], prior["machine"]
            payload["merged"] = [
                *(g for g in prior.get("merged", []) if not _superseded(g, redo)),
                {
                    "date": merged_at,
                    "commit": GIT_AT_START["commit"],
                    **{k: todo[k] for k in ("methods", "scms", "sizes", "seeds")},
                },
            ]
        return payload

    with blas_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in todo["scms"]:
            scm = registry[name]
            truths.setdefault(name, _truth(name, scm, cfg["n_truth"]))
            truth = truths[name]["values"]
            for n in todo["sizes"]:
                for seed in todo["seeds"]:
                    source, target = bench_samples(list(registry).index(name), scm, n, seed)
                    for method in methods:
                        if not runs_here(seed, method):
                            continue
                        rec: dict[str, Any] = {"scm": name, "n": n, "seed": seed, "method": method}
                        out = attempt(rec, _run_method, method, scm, source, target, seed, cfg)
                        if out is not None:
                            rec.update(out)
                            rec.update(score(out["values"], truth))
                            if "loss_node" in out:
                                rec["mae_with_loss_node"] = score(
                                    out["values"], truth, out["loss_node"]
                                )["mae"]
                            if out.get("ci"):
                                rec["covered"] = {
                                    m: bool(lo <= truth[m] <= hi)
                                    for m, (lo, hi) in out["ci"].items()
                                }
                        runs.append(rec)
                        if log:
                            log_run("value_estimators", rec)
                if write:  # checkpoint: what is done survives a crash or a time limit
                    write_json(NAME, {**with_history(runs), "partial": True})
    payload = with_history(runs)
    if write:
        write_json(NAME, payload)
    return payload
