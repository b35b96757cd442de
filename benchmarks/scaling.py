"""How attribution time and memory grow with the number of cases and of mechanisms.

- **Cases, game only.** Precomputed log-ratios (``n = 8`` mechanisms, normal, sd 0.3)
  and a metric for ``N`` = 1e3 .. 1e6 cases: :class:`~shiftattr.shapley.ExactShapley`
  on :func:`shiftattr.attribution.iw_game` (the blocked split-product kernel), median
  of repeats; peak traced memory
  (``tracemalloc``, numpy allocations included) of one extra run.
- **Cases, full attribute().** :func:`shiftattr.attribute` with its defaults
  (ClassifierRatio, 5-fold cross-fitting, ExactShapley, ``n_bootstrap=0``) on
  ``LinearGaussianSCM.example()`` (3 mechanisms) with ``N`` cases per environment. Every
  run is a fresh subprocess, which reports its wall time and its peak resident memory
  above the baseline after loading the data (``/proc/self/statm`` polled every 5 ms).
- **Fixed bootstrap.** The replicates of ``attribute(bootstrap="fixed")`` (100 by
  default) as the library computes them with the exact solver (every coalition's value
  on a chunk of resamples at once, all replicates' Shapley values from one table) against
  one game per replicate (what any other solver gets), on the same fitted values:
  ``"iw"`` on the game data above (8 mechanisms, ``N`` = 1e3 .. 1e5) and ``"mr"`` fitted
  with linear learners on ``LinearGaussianSCM.example()`` (3 mechanisms, ``N`` = 1e3,
  1e4). Both routes' replicates are checked to agree.
- **Mechanisms.** ``n`` = 2 .. 16 mechanisms at ``N = 10,000`` cases: ExactShapley
  (``2**n`` evaluations) and PermutationShapley with a fixed 64 permutations
  (``~64 n`` evaluations) on the library's value function.

Growth rates are least-squares slopes of ``log time`` against ``log N`` (or ``log n``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks._common import REPO_DIR, blas_threads, loglog_slope, median_times, write_json
from shiftattr.attribution import iw_game
from shiftattr.shapley import ExactShapley, PermutationShapley

NAME = "scaling"


def _game_data(n: int, N: int, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    L = rng.normal(0.0, 0.3, size=(n, N))
    m = np.clip(0.8 - 0.1 * np.tanh(L.sum(axis=0)) + 0.05 * rng.normal(size=N), 0, 1)
    return [f"M{i}" for i in range(n)], L, m


def _peak_traced(fn) -> float:
    """Peak traced memory (MB) of one call of ``fn``."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1e6


def samples_game(sizes: Sequence[int], n: int = 8, repeats: int = 3) -> dict[str, Any]:
    """ExactShapley on the importance-weighting game vs the number of cases."""
    rows = []
    for N in sizes:
        players, L, m = _game_data(n, N)
        fns = {
            "exact": lambda p=players, L=L, m=m: ExactShapley().solve(iw_game(p, L, m)),
        }
        t = median_times(fns, repeats, warmup=False)
        rows.append(
            {
                "n_samples": N,
                "seconds": {k: v["seconds"] for k, v in t.items()},
                "peak_mb": {k: _peak_traced(f) for k, f in fns.items()},
            }
        )
    xs = [r["n_samples"] for r in rows]
    return {
        "n_mechanisms": n,
        "repeats": repeats,
        "rows": rows,
        "slope_time": {"exact": loglog_slope(xs, [r["seconds"]["exact"] for r in rows])},
        "slope_memory": {"exact": loglog_slope(xs, [r["peak_mb"]["exact"] for r in rows])},
    }


def _rss_mb() -> float:
    """Current resident memory of this process (MB), from ``/proc/self/statm``."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


class _PeakRSS:
    """Poll the resident memory every few milliseconds in a thread; keep the maximum."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss_mb())

    def __enter__(self) -> _PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def _attribute_worker(n_samples: int, seed: int) -> dict[str, Any]:
    """One attribute() run in this process: wall time and peak RSS above the baseline."""
    import warnings

    import shiftattr as sa

    scm = sa.datasets.LinearGaussianSCM.example(metric="squared_error")
    source = scm.sample(n_samples, "source", random_state=seed)
    target = scm.sample(n_samples, "target", random_state=seed + 1)
    metric = scm.metric(source)
    base = _rss_mb()
    with blas_threads(1), warnings.catch_warnings(), _PeakRSS() as rss:
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        sa.attribute(
            scm.graph,
            source,
            target,
            metric=metric,
            n_bootstrap=0,
            progress=False,
            random_state=seed,
        )
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_rss_increase_mb": rss.peak - base}


def samples_attribute(sizes: Sequence[int], repeats: dict[int, int]) -> dict[str, Any]:
    """Full attribute() vs the number of cases, one subprocess per run."""
    rows = []
    for N in sizes:
        runs = []
        for r in range(repeats.get(N, 1)):
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.scaling", "--attribute-worker", str(N), str(r)],
                cwd=REPO_DIR,
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        rows.append(
            {
                "n_samples": N,
                "runs": len(runs),
                "seconds": float(np.median([x["seconds"] for x in runs])),
                "seconds_all": [x["seconds"] for x in runs],
                "peak_rss_increase_mb": float(max(x["peak_rss_increase_mb"] for x in runs)),
            }
        )
    xs = [r["n_samples"] for r in rows]
    return {
        "scm": "LinearGaussianSCM.example (3 mechanisms), N cases per environment",
        "settings": "attribute() defaults: ClassifierRatio, n_folds=5, ExactShapley; "
        "n_bootstrap=0; BLAS 1 thread; n_jobs=1",
        "rows": rows,
        "slope_time": loglog_slope(xs, [r["seconds"] for r in rows]),
        "slope_memory": loglog_slope(xs, [r["peak_rss_increase_mb"] for r in rows]),
    }


class _OneGamePerReplicate(ExactShapley):
    """ExactShapley under another type: the fixed bootstrap then solves one game per
    replicate, the route of every solver but the exact one."""


def _fitted_mr(N: int, seed: int = 0) -> Any:
    """``"mr"`` fitted with linear learners on the linear-Gaussian SCM (3 mechanisms)."""
    from shiftattr.datasets import LinearGaussianSCM
    from shiftattr.ratios import ClassifierRatio, StandardisedLogisticRegression
    from shiftattr.value import StandardisedRidgeCV, level_features
    from shiftattr.value.build import fit_value, value_levels

    scm = LinearGaussianSCM.example(metric="squared_error")
    src = scm.sample(N, "source", random_state=seed)
    tgt = scm.sample(N, "target", random_state=seed + 1)
    ratio = ClassifierRatio(StandardisedLogisticRegression(), calibration="none")
    levels = value_levels(scm.graph, ())
    feats = [level_features(env, levels) for env in (src, tgt)]
    return fit_value(
        "mr",
        scm.graph,
        src,
        tgt,
        scm.graph.nodes,
        scm.metric(src),
        scm.metric(tgt),
        estimators=dict.fromkeys(scm.graph.nodes, ratio),
        regressors=StandardisedRidgeCV(),
        n_folds=5,
        progress=False,
        random_state=seed,
        features_source=feats[0],
        features_target=feats[1],
    )


def bootstrap(
    iw_sizes: Sequence[int], mr_sizes: Sequence[int], n_boot: int = 100, repeats: int = 3
) -> dict[str, Any]:
    """Fixed-bootstrap time: all replicates batched (exact solver) vs one game each."""
    from shiftattr.bootstrap import fixed_bootstrap
    from shiftattr.value.build import FittedValue

    rows = []
    cases = [("iw", N) for N in iw_sizes] + [("mr", N) for N in mr_sizes]
    for method, N in cases:
        if method == "iw":
            players, L, m = _game_data(8, N)
            fitted = FittedValue("iw", tuple(players), m, L)
        else:
            fitted = _fitted_mr(N)
        fitted.game()  # regressions are fitted lazily: not part of the bootstrap's time
        ExactShapley().solve(fitted.game())
        rng = np.random.default_rng(0)
        idx_s = rng.integers(0, N, size=(n_boot, N))
        idx_t = rng.integers(0, N, size=(n_boot, N))
        fns = {
            route: lambda s=solver, f=fitted, i=idx_s, j=idx_t: fixed_bootstrap([f], s, i, j, False)
            for route, solver in (
                ("batched", ExactShapley()),
                ("per_replicate", _OneGamePerReplicate()),
            )
        }
        t = median_times(fns, repeats, warmup=False)
        batched, looped = t["batched"]["result"][0], t["per_replicate"]["result"][0]
        rows.append(
            {
                "method": method,
                "n_mechanisms": len(fitted.mechanisms),
                "n_samples": N,
                "seconds": {k: v["seconds"] for k, v in t.items()},
                "speedup": t["per_replicate"]["seconds"] / t["batched"]["seconds"],
                "max_abs_difference": float(np.max(np.abs(batched - looped))),
            }
        )
    return {"n_bootstrap": n_boot, "repeats": repeats, "rows": rows}


def mechanisms(
    counts: Sequence[int], n_samples: int = 10_000, max_exact: int = 16, repeats: int = 3
) -> dict[str, Any]:
    """Exact vs permutation solver time vs the number of mechanisms.

    The exact solver runs up to ``max_exact`` mechanisms.
    """
    rows = []
    for n in counts:
        players, L, m = _game_data(n, n_samples, seed=n)
        fns = {
            "permutation_64": lambda p=players, L=L, m=m: PermutationShapley(
                n_permutations=64, random_state=0
            ).solve(iw_game(p, L, m)),
        }
        if n <= max_exact:
            fns["exact"] = lambda p=players, L=L, m=m: ExactShapley().solve(iw_game(p, L, m))
        t = median_times(fns, repeats, warmup=False)
        rows.append(
            {
                "n_mechanisms": n,
                "seconds": {k: v["seconds"] for k, v in t.items()},
                "evaluations": {k: int(v["result"].n_evaluations) for k, v in t.items()},
            }
        )
    slopes = {}
    for key in ("exact", "permutation_64"):
        pts = [(r["n_mechanisms"], r["seconds"][key]) for r in rows if key in r["seconds"]]
        if len(pts) >= 2:
            ns, ts = zip(*pts)
            slopes[key] = {
                "loglog_slope": loglog_slope(ns, ts),
                # exponential growth: time factor per added mechanism
                "factor_per_mechanism": float(np.exp(np.polyfit(ns, np.log(ts), 1)[0])),
            }
    return {"n_samples": n_samples, "repeats": repeats, "rows": rows, "growth": slopes}


def config_for(quick: bool) -> dict[str, Any]:
    """Sizes and repeats of the quick and the full run."""
    if quick:
        return {
            "game_sizes": [1_000, 10_000, 100_000, 1_000_000],
            "game_repeats": 3,
            "attribute_sizes": [1_000, 4_000],
            "attribute_repeats": {},
            "mechanism_counts": [2, 4, 6, 8, 10, 12, 14, 16],
            "max_exact": 16,
            "mechanism_repeats": 3,
            "bootstrap_iw_sizes": [1_000, 10_000],
            "bootstrap_mr_sizes": [1_000],
            "bootstrap_repeats": 1,
        }
    return {
        "game_sizes": [1_000, 10_000, 100_000, 1_000_000],
        "game_repeats": 5,
        "attribute_sizes": [1_000, 10_000, 100_000, 1_000_000],
        "attribute_repeats": {1_000: 3, 10_000: 3, 100_000: 1, 1_000_000: 1},
        "mechanism_counts": [2, 4, 6, 8, 10, 12, 14, 16],
        "max_exact": 16,
        "mechanism_repeats": 3,
        "bootstrap_iw_sizes": [1_000, 10_000, 100_000],
        "bootstrap_mr_sizes": [1_000, 10_000],
        "bootstrap_repeats": 3,
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Run the four scaling studies and write ``results/scaling.json``."""
    cfg = config_for(quick)
    with blas_threads(1):
        game = samples_game(cfg["game_sizes"], repeats=cfg["game_repeats"])
        mech = mechanisms(
            cfg["mechanism_counts"], max_exact=cfg["max_exact"], repeats=cfg["mechanism_repeats"]
        )
        boot = bootstrap(
            cfg["bootstrap_iw_sizes"], cfg["bootstrap_mr_sizes"], repeats=cfg["bootstrap_repeats"]
        )
    attr = samples_attribute(cfg["attribute_sizes"], cfg["attribute_repeats"])
    payload = {
        "mode": "quick" if quick else "full",
        "config": cfg,
        "samples_game": game,
        "samples_attribute": attr,
        "mechanisms": mech,
        "bootstrap": boot,
    }
    write_json(NAME, payload)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="scaling worker (used by run())")
    parser.add_argument("--attribute-worker", nargs=2, type=int, metavar=("N", "SEED"))
    args = parser.parse_args()
    if args.attribute_worker:
        print(json.dumps(_attribute_worker(*args.attribute_worker)))
