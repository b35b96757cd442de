"""The ``metric_beyond_source`` warning: its false alarms, and the case it was made for.

:func:`shiftattr.metric_range.metric_beyond_source` warns (for ``method="iw"``) when the
target's per-case metric lies beyond every source case's more often than chance
allows, and those values carry at least 5 % of the measured change. This script
measures:

- ``false_alarms``: how often the rule fires when both environments' metrics come
  from one distribution (normal, χ², lognormal and an infinite-mean Pareto sample, at
  three pairs of sample sizes; ``--reps`` pairs each);
- ``noise_doubles``: a linear-Gaussian graph ``Z -> X -> Y`` whose outcome noise
  doubles at the target (squared error of a fixed model; the truth of ``Y`` is −3.0),
  500 source and 80 target cases, ``--seeds`` seeds. Per method, the RMS error of
  ``Y``'s value with the default ratio estimators (``"iw"``, ``"mis"``, ``"mr"``), and
  with a linear classifier for ``Y``'s ratio (blind to a change of spread) under
  ``"iw"``: the error, how often ``metric_beyond_source`` fires, how often any other
  warning does, and how often it fires with no other warning.

Writes ``benchmarks/results/metric_range.json``.

Usage: ``python benchmarks/bench_metric_range.py [--reps 3000] [--seeds 8]`` (about a
minute on one core at the defaults).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import write_json

#: Samples of one metric distribution, by name: ``rng, n -> values``.
DISTRIBUTIONS = {
    "normal": lambda rng, n: rng.normal(0.0, 1.0, n),
    "chi-squared (1)": lambda rng, n: rng.chisquare(1, n),
    "lognormal (0, 1.5)": lambda rng, n: rng.lognormal(0.0, 1.5, n),
    "Pareto (1), infinite mean": lambda rng, n: rng.pareto(1.0, n),
}

#: (source, target) sample sizes of the false-alarm runs.
SIZES = ((300, 80), (500, 500), (100, 300))


def false_alarms(reps: int, seed: int = 5) -> list[dict[str, Any]]:
    """The warning's firing rate when nothing shifted, per distribution and sizes."""
    from shiftattr.metric_range import metric_beyond_source, metric_range

    rng = np.random.default_rng(seed)
    rows = []
    for name, draw in DISTRIBUTIONS.items():
        for n_s, n_t in SIZES:
            fired = sum(
                bool(metric_beyond_source(metric_range(draw(rng, n_s), draw(rng, n_t))))
                for _ in range(reps)
            )
            rows.append(
                {"distribution": name, "n_source": n_s, "n_target": n_t, "rate": fired / reps}
            )
    return rows


def noise_doubles(seeds: int, n_source: int = 500, n_target: int = 80) -> dict[str, Any]:
    """Errors and warnings on the graph whose outcome noise doubles."""
    from sklearn.linear_model import LogisticRegression

    from shiftattr import attribute
    from shiftattr.datasets import LinearGaussianSCM
    from shiftattr.datasets.linear_gaussian import LinearMechanism as Lin
    from shiftattr.ratios import ClassifierRatio

    graph = {"Z": [], "X": ["Z"], "Y": ["X"]}
    src = {"Z": Lin(0, {}, 1), "X": Lin(0, {"Z": 0.8}, 1), "Y": Lin(0, {"X": 1.0}, 1)}
    scm = LinearGaussianSCM(
        graph, src, dict(src, Y=Lin(0, {"X": 1.0}, 2.0)), outcome="Y", model_coefs={"X": 1.0}
    )
    truth = scm.true_attribution().values["Y"]
    variants = {
        "iw": {"method": "iw"},
        "mis": {"method": "mis"},
        "mr": {"method": "mr"},
        "iw, linear classifier for Y": {
            "method": "iw",
            "estimators": {"Y": ClassifierRatio(LogisticRegression())},
        },
    }
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in variants}
    for seed in range(seeds):
        source = scm.sample(n_source, random_state=seed)
        target = scm.sample(n_target, "target", random_state=100 + seed)
        for name, kw in variants.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = attribute(
                    scm.graph,
                    source,
                    target,
                    metric=scm.metric(source),
                    target_metric=scm.metric(target),
                    n_bootstrap=0,
                    progress=False,
                    random_state=seed,
                    **kw,
                )
            codes = {w["code"] for w in res.warnings}
            runs[name].append(
                {
                    "error": res.values["Y"] - truth,
                    "beyond": "metric_beyond_source" in codes,
                    "other_warning": bool(codes - {"metric_beyond_source"}),
                }
            )
    rows = [
        {
            "variant": name,
            "rms_error": float(np.sqrt(np.mean([r["error"] ** 2 for r in rs]))),
            "mean_error": float(np.mean([r["error"] for r in rs])),
            "beyond_rate": float(np.mean([r["beyond"] for r in rs])),
            "other_warning_rate": float(np.mean([r["other_warning"] for r in rs])),
            "beyond_alone_rate": float(
                np.mean([r["beyond"] and not r["other_warning"] for r in rs])
            ),
        }
        for name, rs in runs.items()
    ]
    return {
        "truth": truth,
        "n_source": n_source,
        "n_target": n_target,
        "seeds": seeds,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    """Run both parts, print them and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3000, help="pairs per false-alarm cell")
    parser.add_argument("--seeds", type=int, default=8, help="seeds of the noise graph")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    args = parser.parse_args(argv)
    alarms = false_alarms(args.reps)
    print("false alarms (alike environments):")
    for r in alarms:
        print(f"  {r['distribution']:<28}{r['n_source']:>5}{r['n_target']:>5}  {r['rate']:.4f}")
    noise = noise_doubles(args.seeds)
    print(f"outcome noise doubles (truth of Y {noise['truth']:+.2f}):")
    for r in noise["rows"]:
        print(
            f"  {r['variant']:<30} RMS {r['rms_error']:.3f}  mean {r['mean_error']:+.3f}  "
            f"fires {r['beyond_rate']:.2f} (alone {r['beyond_alone_rate']:.2f})  "
            f"other warnings {r['other_warning_rate']:.2f}"
        )
    payload = {"reps": args.reps, "false_alarms": alarms, "noise_doubles": noise}
    path = write_json("metric_range", payload, *([args.out] if args.out else []))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
