"""What the acquisition ratio's features see of a scanner shift, against the simulator's
hidden parameters.

In the synthetic-MS benchmark (``bench_synthetic_ms.py``) every estimator with estimated
ratios underestimates the acquisition mechanism's share in the scanner scenarios, and
the simulator's true ratio of ``X`` alone removes that bias (the ``+oracle-X`` variant).
This script measures what the ratio sees, on the segmenters the repository holds and on
the samples the synthetic-MS benchmark draws for the same scenario, ``N`` and seed (the
data do not depend on the segmenter; at N = 1000 section 5's runs drew them, on other
weights of the same recipe):

- **per acquisition parameter** (lesion contrast, noise, blur... each drawn per case by
  :class:`~shiftattr.datasets.SyntheticMS`): how much of it the ratio's features recover
  (cross-validated R² of a ridge regression of the log parameter on the features: over
  source and target cases pooled, which also credits the features for telling the two
  environments apart, and within each environment, averaged), how strongly it goes with
  the model's Dice in the source (correlation), and how far the scanner shift moves it
  (difference of the means of the log parameter over the root mean of the two
  environments' variances);
- **per set of weights**: the source's Dice weighted by ``exp(log ratio)`` minus the
  target's mean Dice (the *transport gap*: what importance weighting with these weights
  misses of the change, 0 for exact ratios up to sampling noise), the correlation and
  slope of the log-ratio against the simulator's true one, and the Kish ESS fraction.
  The weights: out-of-fold ratios from the features (the classifier
  :class:`~shiftattr.ratios.ImageStatsRatio` uses on them), the same with the balancing
  exponent below, the same classifier on the hidden log parameters themselves (what
  perfect measurement of the parameters would give), and the simulator's true ratio;
- **the balancing exponent** of the features' log-ratio: the ``a`` with which
  ``exp(a * log ratio)`` makes the weighted source's mean log-ratio that of the target.
  A log-ratio shrunk by a factor ``c`` needs ``a = 1 / c > 1``; out-of-fold noise in the
  log-ratio pushes ``a`` below 1. It tests one moment along the ratio's own direction,
  so ``a`` near 1 rules out a plain shrinkage, not a missing direction.

The features are those of the ``+ext+outputs`` variants and of the command line's
default: the extended image statistics and the model's output summaries
(``ImageStatsRatio(statistics="extended", extra_features={"X":
adapter.output_features})``). Writes ``benchmarks/results/ratio_information.json``;
``benchmarks/report.py`` puts it in ``RESULTS.md`` (section 5e).

Usage: ``python benchmarks/bench_ratio_information.py [--n 1000] [--seeds 0 1 2]
[--scenarios acq_01_to_03 ...] [--out DIR]`` (about a minute per scenario and seed at
N = 1000 on two cores, most of it the image statistics and the model's outputs).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import brentq

if __package__ in (None, ""):  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import GIT_AT_START, RESULTS_DIR, now_utc, write_json

NAME = "ratio_information"
#: The scanner-only scenarios of ``bench_synthetic_ms.py`` (only ``X`` shifts).
SCENARIOS = ("acq_01_to_03", "acq_08_to_03", "acq_01_to_07_mild")
#: The weights compared: out-of-fold ratios from the ratio's features, the same raised to
#: the balancing exponent, from the hidden log parameters, and the simulator's true ratio.
WEIGHTS = ("features", "balanced", "latent", "true")
N_FOLDS = 5


def transport(log_ratio: np.ndarray, metric: np.ndarray) -> tuple[float, float]:
    """The source's metric weighted by ``exp(log_ratio)`` (self-normalised) and the
    weights' Kish ESS fraction.

    Parameters
    ----------
    log_ratio : ndarray of shape (N,)
        Log density ratio (target over source) at the source's cases.
    metric : ndarray of shape (N,)
        The per-case metric of the source's cases.

    Returns
    -------
    tuple of float
        ``(weighted mean, ESS / N)``.

    Examples
    --------
    >>> mean, ess = transport(np.log(np.array([1.0, 3.0])), np.array([0.0, 1.0]))
    >>> round(mean, 2), round(ess, 2)
    (0.75, 0.8)
    """
    from shiftattr.weighting import kish_ess

    w = np.exp(log_ratio - log_ratio.max())
    w /= w.sum()
    return float(w @ metric), float(kish_ess(w)) / len(w)


def balancing_exponent(log_ratio_source: np.ndarray, log_ratio_target: np.ndarray) -> float:
    """The ``a`` with which ``exp(a * log_ratio)`` weights the source's log-ratios to the
    target's mean (``nan`` for a constant log-ratio or if no ``a`` in ``[0, 10]`` does).

    The weighted mean of ``log_ratio`` grows with ``a`` (its derivative is the weighted
    variance). A log-ratio shrunk by a factor ``c`` needs ``a = 1 / c``; noise in it
    lowers ``a``.

    Parameters
    ----------
    log_ratio_source, log_ratio_target : ndarray
        Out-of-fold log-ratios at the source's and at the target's cases.

    Returns
    -------
    float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s, t = rng.normal(0, 1, 4000), rng.normal(1, 1, 4000)
    >>> a = balancing_exponent(s - 0.5, t - 0.5)        # the true N(1,1)/N(0,1) ratio
    >>> bool(abs(a - 1) < 0.1)
    True
    >>> round(balancing_exponent(0.5 * (s - 0.5), 0.5 * (t - 0.5)) / a, 6)   # shrunk by half
    2.0
    >>> balancing_exponent(np.zeros(5), np.ones(5))
    nan
    """
    if np.ptp(log_ratio_source) == 0:
        return float("nan")

    def excess(a: float) -> float:
        return transport(a * log_ratio_source, log_ratio_source)[0] - log_ratio_target.mean()

    try:
        return float(brentq(excess, 0.0, 10.0))
    except ValueError:
        return float("nan")


def cv_r2(features: np.ndarray, target: np.ndarray, seed: int) -> float:
    """Cross-validated R² of a ridge regression (penalty chosen inside) of ``target`` on
    ``features``, over shuffled folds.

    Parameters
    ----------
    features : ndarray of shape (N, d)
    target : ndarray of shape (N,)
    seed : int
        Seed of the folds.

    Returns
    -------
    float
        ``sklearn.metrics.r2_score`` of the out-of-fold predictions.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 2))
    >>> round(cv_r2(x, x[:, 0] + 0.1 * rng.normal(size=200), seed=0), 2)
    0.99
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    folds = KFold(N_FOLDS, shuffle=True, random_state=seed)
    return float(r2_score(target, cross_val_predict(model, features, target, cv=folds)))


def measure(
    log_params_s: dict[str, np.ndarray],
    log_params_t: dict[str, np.ndarray],
    features_s: np.ndarray,
    features_t: np.ndarray,
    metric_s: np.ndarray,
    metric_t: np.ndarray,
    true_log_ratio_s: np.ndarray,
    seed: int,
) -> dict[str, Any]:
    """Everything one (scenario, seed) record holds, from arrays (see the module text).

    Parameters
    ----------
    log_params_s, log_params_t : dict of str to ndarray
        Log of each hidden acquisition parameter per case, source and target.
    features_s, features_t : ndarray of shape (N, d)
        The ratio's features per case.
    metric_s, metric_t : ndarray of shape (N,)
        The model's per-case metric.
    true_log_ratio_s : ndarray of shape (N,)
        The simulator's log-ratio (target over source) of ``X`` at the source's cases.
    seed : int
        Folds and classifier seed.

    Returns
    -------
    dict
        ``parameters`` (per parameter: ``r2`` pooled, ``r2_within`` the mean of the two
        environments', ``corr_metric``, ``shift``), ``weights`` (per set of
        :data:`WEIGHTS`: ``weighted``, ``gap``, ``corr_true``, ``slope_true``, ``ess``),
        ``alpha_balance`` (the balanced weights use 1 where it is ``nan``), the two
        means and ``n``.
    """
    from shiftattr.ratios.classifier import ClassifierRatio, default_candidates

    n_s, n_t = len(metric_s), len(metric_t)
    keys = sorted(log_params_s)
    latent_s = np.column_stack([log_params_s[k] for k in keys])
    latent_t = np.column_stack([log_params_t[k] for k in keys])
    pooled_f = np.vstack([features_s, features_t])
    params = {}
    for j, k in enumerate(keys):
        ps, pt = latent_s[:, j], latent_t[:, j]
        spread = np.sqrt((ps.var() + pt.var()) / 2)
        if spread == 0:  # fixed alike in both environments: nothing to recover
            params[k] = {"r2": None, "r2_within": None, "corr_metric": None, "shift": 0.0}
            continue
        within = [cv_r2(f, p, seed) for f, p in ((features_s, ps), (features_t, pt)) if p.std() > 0]
        params[k] = {
            "r2": cv_r2(pooled_f, np.concatenate([ps, pt]), seed),
            "r2_within": float(np.mean(within)) if within else None,
            "corr_metric": float(np.corrcoef(ps, metric_s)[0, 1])
            if ps.std() > 0 and metric_s.std() > 0
            else None,
            "shift": float((pt.mean() - ps.mean()) / spread),
        }
    folds_s, folds_t = np.arange(n_s) % N_FOLDS, np.arange(n_t) % N_FOLDS
    log_ratios = {}
    for name, (a, b) in {
        "features": (features_s, features_t),
        "latent": (latent_s, latent_t),
    }.items():
        clf = ClassifierRatio(default_candidates(seed, linear=True), random_state=seed)
        log_ratios[name] = clf.crossfit_log_ratio({"v": a}, {"v": b}, folds_s, folds_t)
    alpha = balancing_exponent(*log_ratios["features"])
    source_log_ratio = {
        "features": log_ratios["features"][0],
        "balanced": (alpha if np.isfinite(alpha) else 1.0) * log_ratios["features"][0],
        "latent": log_ratios["latent"][0],
        "true": true_log_ratio_s,
    }
    target_mean = float(metric_t.mean())
    weights = {}
    for name in WEIGHTS:
        lr = source_log_ratio[name]
        weighted, ess = transport(lr, metric_s)
        weights[name] = {
            "weighted": weighted,
            "gap": weighted - target_mean,
            "corr_true": float(np.corrcoef(lr, true_log_ratio_s)[0, 1]),
            "slope_true": float(np.polyfit(true_log_ratio_s, lr, 1)[0]),
            "ess": ess,
        }
    return {
        "n": n_s,
        "source_metric": float(metric_s.mean()),
        "target_metric": target_mean,
        "parameters": params,
        "weights": weights,
        "alpha_balance": alpha,
    }


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per scenario: the means over seeds of every number of :func:`measure`, and the
    standard error of the mean gap of each set of weights.

    Parameters
    ----------
    records : list of dict
        :func:`run_one`'s records (a ``scenario`` and a ``seed`` beside :func:`measure`'s
        keys).

    Returns
    -------
    list of dict
        One per scenario, in the order they first appear.

    Examples
    --------
    >>> rec = {"scenario": "s", "seed": 0, "n": 10, "source_metric": 0.7,
    ...        "target_metric": 0.6, "alpha_balance": 1.0,
    ...        "parameters": {"p": {"r2": 0.5, "corr_metric": 0.2, "shift": -0.4}},
    ...        "weights": {w: {"weighted": 0.6, "gap": g, "corr_true": 1.0,
    ...                        "slope_true": 1.0, "ess": 0.5}
    ...                    for w, g in (("features", 0.02), ("balanced", 0.02),
    ...                                 ("latent", 0.0), ("true", 0.0))}}
    >>> row = summarise([rec, {**rec, "seed": 1}])[0]
    >>> row["n_seeds"], row["weights"]["features"]["gap"], row["weights"]["features"]["gap_se"]
    (2, 0.02, 0.0)
    """
    from benchmarks.bench_synthetic_ms import _mean as mean

    out = []
    for scen in dict.fromkeys(r["scenario"] for r in records):
        rs = [r for r in records if r["scenario"] == scen]
        params = {
            k: {f: mean([r["parameters"][k][f] for r in rs]) for f in rs[0]["parameters"][k]}
            for k in rs[0]["parameters"]
        }
        weights = {}
        for w in WEIGHTS:
            row = {f: mean([r["weights"][w][f] for r in rs]) for f in rs[0]["weights"][w]}
            gaps = [r["weights"][w]["gap"] for r in rs]
            row["gap_se"] = (
                float(np.std(gaps, ddof=1) / np.sqrt(len(gaps))) if len(rs) > 1 else None
            )
            weights[w] = row
        out.append(
            {
                "scenario": scen,
                "n": rs[0]["n"],
                "n_seeds": len(rs),
                "source_metric": mean([r["source_metric"] for r in rs]),
                "target_metric": mean([r["target_metric"] for r in rs]),
                "alpha_balance": mean([r["alpha_balance"] for r in rs]),
                "parameters": params,
                "weights": weights,
            }
        )
    return out


def run_one(sim, scen, adapter, n: int, seed: int) -> dict[str, Any]:
    """Sample the scenario as ``bench_synthetic_ms.py`` does for ``(N, seed)`` and
    :func:`measure` it.

    Parameters
    ----------
    sim : SyntheticMS
        ``bench_synthetic_ms.make_simulator``'s simulator.
    scen : Scenario
        One of ``bench_synthetic_ms.SCENARIOS``.
    adapter : SegmentationAdapter
        Scores the cases and gives the model's output summaries; its cache is cleared
        afterwards (the next samples are other cases).
    n : int
        Cases per environment.
    seed : int

    Returns
    -------
    dict
        ``scenario``, ``seed`` and :func:`measure`'s record.
    """
    from benchmarks.bench_synthetic_ms import _seed
    from shiftattr.ratios import ImageStatsRatio

    envs = {
        side: sim.sample(n, random_state=_seed(scen.name, side, n, seed), **scen.env(side))
        for side in ("source", "target")
    }
    src, tgt = envs["source"], envs["target"]
    est = ImageStatsRatio(
        statistics="extended", extra_features={"X": adapter.output_features}, random_state=seed
    )
    feats = {side: est.ratio_features(env.features(["X"])) for side, env in envs.items()}
    params = {
        side: {
            k: np.log(np.asarray(v, float)) for k, v in env.metadata["acquisition_params"].items()
        }
        for side, env in envs.items()
    }
    rec = measure(
        params["source"],
        params["target"],
        feats["source"],
        feats["target"],
        np.asarray(adapter.score(src)),
        np.asarray(adapter.score(tgt)),
        sim.true_log_ratio(src, "X", scen.env("source"), scen.env("target")),
        seed,
    )
    if hasattr(adapter, "clear_cache"):
        adapter.clear_cache()
    return {"scenario": scen.name, "seed": seed, **rec}


def main(argv: list[str] | None = None) -> int:
    """Measure every (scenario, seed) and write the results."""
    from benchmarks import bench_synthetic_ms as ms

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="cases per environment")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder of the results file")
    args = p.parse_args(argv)
    if args.n < 2 * N_FOLDS:
        p.error(f"--n must be at least {2 * N_FOLDS} (two cases per fold), got {args.n}")
    t_start = time.perf_counter()
    shape = (16, 16, 16)
    sim = ms.make_simulator(shape)
    settings = ms.ModelSettings(shape)
    scenarios = {s.name: s for s in ms.SCENARIOS}
    log: list[str] = []
    models: dict[str, Any] = {}
    records = []
    for name in args.scenarios:
        scen = scenarios[name]
        center = scen.env("source")["center"]
        if center not in models:
            net, models[center] = ms.get_model(sim, center, settings, log)
            models[center]["adapter"] = ms.make_adapter(net)
        for seed in args.seeds:
            t0 = time.perf_counter()
            rec = run_one(sim, scen, models[center]["adapter"], args.n, seed)
            rec["seconds"] = time.perf_counter() - t0
            records.append(rec)
            gaps = "  ".join(f"{w} {rec['weights'][w]['gap']:+.4f}" for w in WEIGHTS)
            print(
                f"{name} seed {seed}: gap {gaps}; lesion_contrast R² "
                f"{rec['parameters']['lesion_contrast']['r2']:.2f}; a {rec['alpha_balance']:.2f} "
                f"({rec['seconds']:.0f} s)",
                flush=True,
            )
    payload = {
        "command": " ".join(
            [
                "python benchmarks/bench_ratio_information.py",
                *(sys.argv[1:] if argv is None else argv),
            ]
        ),
        "git": GIT_AT_START,
        "finished": now_utc(),
        "seconds": time.perf_counter() - t_start,
        "config": {
            "n": args.n,
            "seeds": args.seeds,
            "scenarios": args.scenarios,
            "shape": list(shape),
            "n_folds": N_FOLDS,
            "features": 'ImageStatsRatio(statistics="extended", extra_features={"X": '
            "adapter.output_features}).ratio_features",
        },
        "model": {c: {k: v for k, v in m.items() if k != "adapter"} for c, m in models.items()},
        "records": records,
        "summary": summarise(records),
    }
    print(f"wrote {write_json(NAME, payload, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
