"""The demo's configuration across data seeds: basic vs extended image statistics, and
the model's output summaries in the image ratios.

``shiftattr demo`` is one draw of the synthetic experiment B (24³ volumes, 100 cases per
environment). One draw says little about an estimator: this script reruns the demo's
configuration through :func:`shiftattr.pipeline.run` for several simulator seeds
(``data.random_state``), with each value estimator and each setting of
``attribution.image_statistics`` (``"extended+outputs"``: the extended statistics with
``attribution.ratio_outputs = true``), and compares every estimate with the simulator's
ground truth. Per data seed the U-Net is trained once (by the first configuration) and reloaded
from its weights-only checkpoint by the others; the ground truth is computed once, with
that model.

Writes ``benchmarks/results/demo_seeds.json`` (one record per run: estimates, intervals,
truth, error, warnings, seconds) and prints a table. ``benchmarks/report.py`` puts it in
``RESULTS.md``.

Usage: ``python benchmarks/bench_demo_seeds.py [--seeds 0 1 ... 11] [--methods iw mis]
[--statistics basic extended extended+outputs] [--bootstrap fixed refit] [--out DIR]
[--merge]`` (default seeds 0-5; the committed
results hold 0-11; a run takes 5-15 s on two cores after the U-Net's training, about
20 s once per seed).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import GIT_AT_START, RESULTS_DIR, now_utc, read_json, write_json
from shiftattr.results import dominant_mechanism

NAME = "demo_seeds"
METHODS = ("iw", "mis")
#: Image-ratio feature settings: ``attribution.image_statistics``, or ``"extended+outputs"``
#: (extended statistics and ``attribution.ratio_outputs = true``).
STATISTICS = ("basic", "extended", "extended+outputs")
OUTPUTS_SUFFIX = "+outputs"
#: Bootstrap settings and their replicates: ``"fixed"`` with 200 (the demo's until
#: 2026-11-30, every run before that date), ``"refit"`` with 50 (the demo's since).
BOOTSTRAPS = {"fixed": 200, "refit": 50}


def bootstrap_of(run: dict) -> str:
    """A run's bootstrap (runs recorded before the field existed used the fixed one)."""
    return run.get("bootstrap", "fixed")


def setting(run: dict) -> tuple[str, str, str]:
    """A run's ``(method, statistics, bootstrap)``: what a summary row groups."""
    return run["method"], run["statistics"], bootstrap_of(run)


def demo_unet():
    """The demo's untrained U-Net (the factory that reloads its checkpoint)."""
    from shiftattr.pipeline import demo_config
    from shiftattr.segmentation import UNet3D

    channels = tuple(demo_config().model.channels)
    return UNet3D(in_channels=1, out_channels=1, channels=channels, spatial_dims=3)


def demo_settings() -> dict[str, Any]:
    """What the demo's configuration simulates, for the report."""
    from shiftattr.pipeline import demo_config

    cfg = demo_config()
    return {
        "shape": list(cfg.data.shape),
        "n_source": cfg.data.source.n,
        "n_target": cfg.data.target.n,
        "train_n": cfg.data.train_n,
        "truth_n": cfg.data.truth_n,
    }


def configuration(
    folder: Path,
    seed: int,
    method: str,
    statistics: str,
    checkpoint: Path | None,
    bootstrap: str = "fixed",
) -> Any:
    """The demo's configuration with one data seed, estimator and statistics setting.

    Parameters
    ----------
    folder : Path
        Report folder of the run.
    seed : int
        The simulator's ``data.random_state``.
    method : str
        ``attribution.method``.
    statistics : str
        ``attribution.image_statistics``, always set explicitly; with the suffix
        ``"+outputs"`` also ``attribution.ratio_outputs = true``.
    checkpoint : Path or None
        Reload this U-Net instead of training one (and skip the ground truth).
    bootstrap : {"fixed", "refit"}, default "fixed"
        Set explicitly, with the replicates of ``BOOTSTRAPS``. ``attribution.interval``
        is always ``"bootstrap"``.

    Returns
    -------
    RunConfig
    """
    from shiftattr.config import RunConfig
    from shiftattr.pipeline import demo_config

    raw = demo_config(folder).model_dump()
    raw["data"]["random_state"] = seed
    outputs = statistics.endswith(OUTPUTS_SUFFIX)
    raw["attribution"].update(
        method=method,
        image_statistics=statistics.removesuffix(OUTPUTS_SUFFIX),
        ratio_outputs=outputs,
        # explicit: the first runs were made with the demo's fixed bootstrap of 200
        # replicates, before the demo moved to 50 refit replicates (2026-11-30)
        bootstrap=bootstrap,
        n_bootstrap=BOOTSTRAPS[bootstrap],
        # explicit, so that ``covered`` is always the bootstrap interval's; the bias-aware
        # interval (computed by every non-iw run) is recorded beside it
        interval="bootstrap",
        # one process, as every stored run: the demo uses two since 2026-11-30 (the same
        # numbers), and two invocations run side by side would start four on two cores
        n_jobs=1,
    )
    if checkpoint is not None:
        raw["model"].update(
            kind="checkpoint",
            factory="benchmarks.bench_demo_seeds:demo_unet",
            checkpoint=str(checkpoint),
        )
        raw["data"]["truth_n"] = 0
    return RunConfig.model_validate(raw)


def record(
    outcome: Any,
    truth: dict[str, Any],
    seed: int,
    method: str,
    statistics: str,
    bootstrap: str = "fixed",
) -> dict:
    """One run's estimates beside the truth."""
    res = outcome.result
    tv, se = truth["values"], truth["stderr"]
    err = {m: res.values[m] - tv[m] for m in res.mechanisms}
    covered = _covers(res.ci, tv)
    # every non-iw run with a bootstrap also computes the bias-aware interval (distance to
    # importance weighting as the bias bound), whichever interval it reports as ``ci``
    est = res.diagnostics.get("estimator", {})
    bias_aware = est.get("bias_aware_ci")
    return {
        "seed": seed,
        "method": method,
        "statistics": statistics,
        "bootstrap": bootstrap,
        "values": dict(res.values),
        "ci": {m: list(res.ci[m]) for m in res.mechanisms},
        "truth": dict(tv),
        "truth_stderr": dict(se),
        "error": err,
        "mae": float(np.mean(np.abs(list(err.values())))),
        "max_error": float(np.max(np.abs(list(err.values())))),
        "covered": covered,
        "interval": res.settings.get("interval"),
        "bias_bound": est.get("bias_bound"),
        "bias_aware_ci": {m: list(v) for m, v in bias_aware.items()} if bias_aware else None,
        "covered_bias_aware": _covers(bias_aware, tv) if bias_aware else None,
        "dominant": res.dominant,
        "true_dominant": dominant_mechanism(tv, True),  # the rule res.dominant follows
        "sign_wrong": sorted(
            m for m in res.mechanisms if abs(tv[m]) > 2 * se[m] + 0.02 and res.values[m] * tv[m] < 0
        ),
        "warnings": sorted({w["code"] for w in res.warnings}),
        "auc_joint": {
            m: d.get("auc_joint") for m, d in res.diagnostics.get("mechanisms", {}).items()
        },
        "auc_parents": {
            m: d.get("auc_parents") for m, d in res.diagnostics.get("mechanisms", {}).items()
        },
        "source_metric": res.source_metric,
        "target_metric": res.measured_target_metric,
        "seconds_attribution": outcome.seconds.get("attribution"),
    }


def _covers(ci: dict[str, Any], truth: dict[str, float]) -> dict[str, bool | None]:
    """Per mechanism, whether its interval holds the truth (``None``: no interval)."""
    return {
        m: bool(lo <= truth[m] <= hi) if np.isfinite(lo) else None for m, (lo, hi) in ci.items()
    }


def _coverage(rs: list[dict], key: str) -> float | None:
    """Share of the (run, mechanism) intervals under ``key`` that hold the truth."""
    cov = [c for r in rs for c in (r.get(key) or {}).values() if c is not None]
    return float(np.mean(cov)) if cov else None


def summarise(runs: list[dict]) -> list[dict]:
    """Per (method, statistics, bootstrap): MAE over seeds, dominant, coverage, flagged,
    sign errors."""
    rows = []
    for method, statistics, bootstrap in sorted({setting(r) for r in runs}):
        rs = [r for r in runs if setting(r) == (method, statistics, bootstrap)]
        erring = [r for r in rs if r["max_error"] > 0.02]
        rows.append(
            {
                "method": method,
                "statistics": statistics,
                "bootstrap": bootstrap,
                "n_runs": len(rs),
                "mae_by_seed": {str(r["seed"]): r["mae"] for r in rs},
                "mae_mean": float(np.mean([r["mae"] for r in rs])),
                "mae_median": float(np.median([r["mae"] for r in rs])),
                "dominant_rate": float(np.mean([r["dominant"] == r["true_dominant"] for r in rs])),
                "coverage": _coverage(rs, "covered"),
                # None where no run recorded it (iw; runs before 2026-11-30 evening)
                "coverage_bias_aware": _coverage(rs, "covered_bias_aware"),
                "n_sign_wrong": sum(bool(r["sign_wrong"]) for r in rs),
                "flagged_when_error_above": (
                    float(np.mean([bool(r["warnings"]) for r in erring])) if erring else None
                ),
                "n_error_above": len(erring),
            }
        )
    return rows


def build_payload(runs: list[dict], commands: list[dict]) -> dict[str, Any]:
    """``demo_seeds.json``: the runs sorted by their key, the configuration they span and
    their summary (also what a merge of runs made in separate folders rebuilds)."""
    key = ("seed", "method", "statistics", "bootstrap")
    runs.sort(
        key=lambda r: (
            r["seed"],
            r["method"],
            STATISTICS.index(r["statistics"]),
            list(BOOTSTRAPS).index(bootstrap_of(r)),
        )
    )
    return {
        "commands": commands,
        "config": {
            "seeds": sorted({r["seed"] for r in runs}),
            "methods": sorted({r["method"] for r in runs}),
            "statistics": [s for s in STATISTICS if any(r["statistics"] == s for r in runs)],
            "bootstrap": {
                b: n for b, n in BOOTSTRAPS.items() if any(bootstrap_of(r) == b for r in runs)
            },
            "demo": "shiftattr.pipeline.demo_config() with data.random_state = seed and the "
            "bootstrap set explicitly (fixed: 200 replicates, refit: 50)",
            "demo_settings": demo_settings(),
            "run_key": key,
        },
        "runs": runs,
        "summary": summarise(runs),
    }


def main(argv: list[str] | None = None) -> int:
    """Run every (seed, method, statistics) and write the results."""
    from shiftattr.pipeline import run

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=["iw", "mis", "mr"])
    p.add_argument("--statistics", nargs="+", default=list(STATISTICS), choices=STATISTICS)
    p.add_argument("--bootstrap", default="fixed", choices=list(BOOTSTRAPS))
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder of demo_seeds.json")
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the runs already in OUT/demo_seeds.json that this invocation does not redo",
    )
    args = p.parse_args(argv)
    t_start = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory(prefix="shiftattr-demo-seeds-") as tmp:
        for seed in args.seeds:
            checkpoint, truth = None, None
            for method, statistics in itertools.product(args.methods, args.statistics):
                folder = Path(tmp) / f"seed{seed}-{method}-{statistics}"
                cfg = configuration(folder, seed, method, statistics, checkpoint, args.bootstrap)
                outcome = run(cfg, progress=False)
                if checkpoint is None:
                    checkpoint, truth = folder / "model.pt", outcome.truth
                rec = record(outcome, truth, seed, method, statistics, args.bootstrap)
                runs.append(rec)
                print(
                    f"seed {seed} {method:<4}{statistics:<17}{args.bootstrap:<6} "
                    f"MAE {rec['mae']:.4f}  "
                    + "  ".join(
                        f"{m} {rec['values'][m]:+.3f} ({rec['truth'][m]:+.3f})"
                        for m in rec["values"]
                    )
                    + f"  warnings: {', '.join(rec['warnings']) or 'none'}",
                    flush=True,
                )
    command = "python benchmarks/bench_demo_seeds.py " + " ".join(argv or sys.argv[1:])
    seconds = time.perf_counter() - t_start
    commands = [
        {
            "command": command,
            "seconds": seconds,
            "n_runs": len(runs),
            "date": now_utc(),
            "git": GIT_AT_START,
        }
    ]
    old = read_json(NAME, args.out) if args.merge else None
    if old:
        redone = {(r["seed"], *setting(r)) for r in runs}
        kept = [r for r in old["runs"] if (r["seed"], *setting(r)) not in redone]
        runs = kept + runs
        commands = old["commands"] + commands
    payload = build_payload(runs, commands)
    path = write_json(NAME, payload, args.out)
    for row in payload["summary"]:
        coverage = "n/a" if row["coverage"] is None else f"{row['coverage']:.0%}"
        if row["coverage_bias_aware"] is not None:
            coverage += f" (bias-aware {row['coverage_bias_aware']:.0%})"
        print(
            f"{row['method']:<4}{row['statistics']:<17}{row['bootstrap']:<6} "
            f"MAE mean {row['mae_mean']:.4f} "
            f"median {row['mae_median']:.4f}; dominant {row['dominant_rate']:.0%}; "
            f"coverage {coverage}; wrong sign in {row['n_sign_wrong']} of {row['n_runs']}"
        )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
