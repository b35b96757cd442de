"""Benchmark the Shapley solvers on the importance-weighting attribution game.

The game is the one :func:`shiftattr.attribute` solves: ``n`` mechanisms, ``N`` source
cases with precomputed log density ratios ``L`` (normal, sd 0.3) and a per-case metric
``m``, and ``v(I) = mean(m) - M_hat_I`` where ``M_hat_I`` is the self-normalised
importance-weighted mean of ``m`` under the weights ``exp(sum_{i in I} L_i)``
(:func:`shiftattr.weighting.coalition_means`, as in ``iw_game``).

Measured:

- :class:`~shiftattr.shapley.ExactShapley` end to end (median of ``--repeats`` runs,
  each on a fresh game, so every run pays all ``2**n`` value evaluations), the value
  function alone on the ``2**n`` coalitions, and the solver alone (the same game
  replayed from its table of values);
- DoWhy's exact Shapley estimator (``dowhy.gcm.shapley.estimate_shapley_values`` with
  ``ShapleyApproximationMethods.EXACT``) on the same set function, if DoWhy is
  installed. Its set function takes one binary vector at a time; it runs with
  ``n_jobs=1`` so that both sides use one process (the BLAS threads are the same);
- the RMSE of :class:`~shiftattr.shapley.PermutationShapley` against the exact values
  at fixed evaluation budgets, with and without antithetic pairs.

Results are printed and written to ``benchmarks/results/shapley.json``::

    python benchmarks/bench_shapley.py [--players 10] [--samples 100000] [--repeats 5]
                                       [--blas-threads 1]

``benchmarks/run.py`` (section ``solvers``) reuses these functions and adds the
comparison with shapiq and DoWhy's sampling solvers at equal evaluation budgets.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shiftattr.shapley import ExactShapley, Game, PermutationShapley
from shiftattr.weighting import coalition_means

RESULTS = Path(__file__).resolve().parent / "results" / "shapley.json"


def make_game_data(
    n_players: int, n_samples: int, sd: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic log density ratios ``(n_players, n_samples)`` and a per-case metric.

    The log-ratios are normal with standard deviation ``sd``; the metric is Dice-like,
    in ``[0, 1]``, and depends on the shifted mechanisms with an interaction, so that
    the game is not additive.
    """
    rng = np.random.default_rng(seed)
    log_ratios = rng.normal(0.0, sd, size=(n_players, n_samples))
    beta = rng.normal(0.0, 1.0, size=n_players)
    signal = beta @ log_ratios + 0.5 * log_ratios[0] * log_ratios[1]
    metric = np.clip(0.8 - 0.1 * np.tanh(signal) + 0.05 * rng.normal(size=n_samples), 0, 1)
    return log_ratios, metric


def make_value_fn(
    n_players: int, n_samples: int, sd: float = 0.3, seed: int = 0
) -> Callable[[np.ndarray], np.ndarray]:
    """The attribution value function ``v(I) = mean(m) - M_hat_I`` on synthetic data.

    Parameters
    ----------
    n_players : int
        Number of mechanisms.
    n_samples : int
        Number of source cases.
    sd : float, default 0.3
        Standard deviation of the log density ratios.
    seed : int, default 0
        Seed of the data (see :func:`make_game_data`).

    Returns
    -------
    callable
        Batched value function ``bool (k, n) -> float (k,)``.
    """
    log_ratios, metric = make_game_data(n_players, n_samples, sd, seed)
    base = float(metric.mean())

    def value_fn(coalitions: np.ndarray) -> np.ndarray:
        # the library's value function (as in shiftattr.attribution.iw_game): batched
        # calls use the split-product kernel, single coalitions the direct one
        return base - coalition_means(coalitions, log_ratios, metric)

    return value_fn


def all_coalitions(n: int) -> np.ndarray:
    """Boolean rows of the ``2**n`` coalitions in bitmask order."""
    codes = np.arange(2**n, dtype=np.int64)
    return ((codes[:, None] >> np.arange(n)) & 1).astype(bool)


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, float, list[float], Any]:
    """Time ``fn()`` over ``repeats`` runs.

    Returns the median wall time, the median process CPU time (less sensitive to other
    load on the machine; it adds up the BLAS threads), all wall times and the last
    result.
    """
    times, cpu = [], []
    out = None
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(times), statistics.median(cpu), times, out


def bench_exact(
    value_fn: Callable[[np.ndarray], np.ndarray], players: list[str], repeats: int
) -> dict[str, Any]:
    """Time ExactShapley end to end, the value function alone, and the solver alone.

    The solver's own cost (enumeration, deduplication, cache, combination) is timed on
    the same game replayed from its table of values, whose lookup costs nothing.
    """
    coalitions = all_coalitions(len(players))
    t_value, cpu_value, _, table = median_time(lambda: value_fn(coalitions), repeats)
    t_exact, cpu_exact, times, sv = median_time(
        lambda: ExactShapley().solve(Game(players, value_fn)), repeats
    )
    t_solver, _, _, _ = median_time(
        lambda: ExactShapley().solve(Game.from_table(table, players=players)), 10 * repeats
    )
    return {
        "seconds_median": t_exact,
        "cpu_seconds_median": cpu_exact,
        "seconds_all": times,
        "value_fn_seconds_median": t_value,
        "value_fn_cpu_seconds_median": cpu_value,
        "solver_overhead_seconds_median": t_solver,
        "n_evaluations": sv.n_evaluations,
        "values": sv.values.tolist(),
        "total": sv.total,
        "_sv": sv,
        "_table": table,
    }


def bench_dowhy(
    value_fn: Callable[[np.ndarray], np.ndarray], n_players: int, repeats: int
) -> dict[str, Any] | None:
    """Time DoWhy's exact Shapley estimator on the same set function, if installed."""
    try:
        import dowhy
        from dowhy.gcm import config as dowhy_config
        from dowhy.gcm.shapley import (
            ShapleyApproximationMethods,
            ShapleyConfig,
            estimate_shapley_values,
        )
    except ImportError:
        return None
    dowhy_config.disable_progress_bars()

    def set_func(subset: np.ndarray) -> float:
        return float(value_fn(np.asarray(subset, dtype=bool)[None, :])[0])

    config = ShapleyConfig(approximation_method=ShapleyApproximationMethods.EXACT, n_jobs=1)
    t, cpu, times, values = median_time(
        lambda: estimate_shapley_values(set_func, n_players, config), repeats
    )
    return {
        "version": dowhy.__version__,
        "seconds_median": t,
        "cpu_seconds_median": cpu,
        "seconds_all": times,
        "n_jobs": 1,
        "values": np.asarray(values, dtype=float).tolist(),
    }


def bench_permutation_rmse(
    table: np.ndarray,
    exact: np.ndarray,
    players: list[str],
    budgets: list[int],
    n_seeds: int,
) -> list[dict[str, Any]]:
    """RMSE of PermutationShapley vs exact at fixed evaluation budgets.

    The game is replayed from its table of ``2**n`` values (identical values, no
    re-evaluation); each run gets a fresh cache so that the budget counts.
    """
    rows = []
    for budget in budgets:
        row: dict[str, Any] = {"max_evaluations": budget}
        for antithetic in (True, False):
            errors, ses, perms = [], [], []
            for seed in range(n_seeds):
                solver = PermutationShapley(
                    antithetic=antithetic,
                    max_evaluations=budget,
                    batch_permutations=2,
                    random_state=seed,
                )
                sv = solver.solve(Game.from_table(table, players=players))
                errors.append(np.mean((sv.values - exact) ** 2))
                ses.append(np.sqrt(np.nanmean(sv.stderr**2)))
                perms.append(sv.n_permutations)
            key = "antithetic" if antithetic else "plain"
            row[key] = {
                "rmse": float(np.sqrt(np.mean(errors))),
                "mean_reported_stderr": float(np.mean(ses)),
                "mean_permutations": float(np.mean(perms)),
            }
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print a summary and write ``benchmarks/results/shapley.json``.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    dict
        The figures written to the JSON file.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=10)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=20, help="seeds per RMSE figure")
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="BLAS threads for both sides (default 1; 0 = the libraries' defaults). On a "
        "loaded machine multi-threaded BLAS calls wait for each other and the timings "
        "measure contention, not the code.",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.blas_threads or None):
        return _run(args)


def _run(args: argparse.Namespace) -> dict[str, Any]:

    n, N = args.players, args.samples
    players = [f"M{i}" for i in range(n)]
    value_fn = make_value_fn(n, N)
    print(f"attribution game: n = {n} mechanisms, N = {N:,} samples, {2**n} coalitions")

    exact = bench_exact(value_fn, players, args.repeats)
    sv, table = exact.pop("_sv"), exact.pop("_table")
    print(
        f"ExactShapley          median {exact['seconds_median']:.3f} s over {args.repeats} runs "
        f"(CPU {exact['cpu_seconds_median']:.3f} s) "
        f"(value function alone {exact['value_fn_seconds_median']:.3f} s, "
        f"solver alone {exact['solver_overhead_seconds_median'] * 1e3:.2f} ms)"
    )

    dowhy = bench_dowhy(value_fn, n, args.repeats)
    if dowhy is None:
        print("dowhy not installed: skipped")
    else:
        dowhy["speedup_exact_vs_dowhy"] = dowhy["seconds_median"] / exact["seconds_median"]
        dowhy["max_abs_difference"] = float(np.max(np.abs(np.array(dowhy["values"]) - sv.values)))
        print(
            f"dowhy {dowhy['version']} EXACT     median {dowhy['seconds_median']:.3f} s "
            f"(CPU {dowhy['cpu_seconds_median']:.3f} s) "
            f"(n_jobs=1) -> ExactShapley is {dowhy['speedup_exact_vs_dowhy']:.1f}x faster; "
            f"max |difference| {dowhy['max_abs_difference']:.1e}"
        )

    budgets = [b for b in (64, 128, 256, 512) if b < 2**n]
    rmse = bench_permutation_rmse(table, sv.values, players, budgets, args.seeds)
    scale = float(np.sqrt(np.mean(sv.values**2)))
    print(f"PermutationShapley RMSE vs exact ({args.seeds} seeds; RMS of the values {scale:.2e}):")
    for row in rmse:
        a, p = row["antithetic"], row["plain"]
        print(
            f"  budget {row['max_evaluations']:>4} evaluations: antithetic {a['rmse']:.2e} "
            f"({a['mean_permutations']:.0f} perms), plain {p['rmse']:.2e} "
            f"({p['mean_permutations']:.0f} perms)"
        )

    results = {
        "benchmark": "shapley",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            # timings are wall times: a loaded machine inflates them
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        },
        "game": {
            "n_players": n,
            "n_samples": N,
            "log_ratio_sd": 0.3,
            "repeats": args.repeats,
            "blas_threads": args.blas_threads or "library default",
        },
        "exact": exact,
        "dowhy": dowhy if dowhy is not None else "dowhy not installed: skipped",
        "permutation_rmse": {"n_seeds": args.seeds, "values_rms": scale, "budgets": rmse},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
