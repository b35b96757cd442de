"""What ``shiftattr run`` costs with paired annotations, at its default settings.

Since 2026-11-30 a configuration with ``attribution.paired = ["Y"]`` runs ``"mr"`` over
both samples (``method = "auto"``, ``both_samples = "auto"``) with the refit bootstrap
(``bootstrap = "auto"``), which refits the ratio estimators *and* the nested regressions
in each of the 200 replicates. This script times one such run through
:func:`shiftattr.pipeline.run`: the synthetic world at 24³, 100 cases per side, center
01 / annotator 1 against center 03 / annotator 5 (every case also read by the other
side's annotator), the U-Net trained on the way, no ground truth (``truth_n = 0``: the
error of this setting is measured by ``bench_synthetic_ms.py``), ``n_jobs = 2``.

Writes ``benchmarks/results/paired_run.json`` (wall time per stage, the largest resident
set of the process and of its worker processes, the resolved settings and the values)
and prints them.

Usage: ``python benchmarks/bench_paired_run.py [--n 100] [--out DIR]`` (about two
minutes on two cores).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import GIT_AT_START, RESULTS_DIR, write_json

NAME = "paired_run"


def config(n: int, folder: Path) -> dict[str, Any]:
    """The ``shiftattr run`` configuration timed here: the defaults but for the data."""
    return {
        "data": {
            "kind": "synthetic",
            "shape": [24, 24, 24],
            "source": {"center": "01", "annotator": "1", "n": n},
            "target": {"center": "03", "annotator": "5", "n": n},
            "truth_n": 0,
        },
        "attribution": {"paired": ["Y"], "n_jobs": 2},
        "output": {"folder": str(folder)},
    }


def _peak_rss_gb() -> dict[str, float]:
    """Largest resident set so far of this process and of its reaped children, in GB
    (Linux reports ``ru_maxrss`` in kB)."""
    to_gb = 1024**-2
    return {
        "self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * to_gb,
        "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * to_gb,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100, help="cases per side (default 100)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder")
    args = p.parse_args(argv)

    from joblib.externals.loky import get_reusable_executor

    from shiftattr.config import load_config
    from shiftattr.pipeline import run

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(config(args.n, Path(tmp)))
        t0 = time.perf_counter()
        outcome = run(cfg, progress=False)
        seconds = time.perf_counter() - t0
    get_reusable_executor().shutdown(wait=True)  # reap the workers: their peak counts too
    settings = outcome.result.settings
    payload = {
        "command": "python benchmarks/bench_paired_run.py " + " ".join(argv or sys.argv[1:]),
        "git": GIT_AT_START,
        "config": config(args.n, Path("<temporary>")),
        "seconds": seconds,
        "stage_seconds": outcome.seconds,
        "peak_rss_gb": _peak_rss_gb(),
        "settings": {
            k: settings[k]
            for k in ("method", "both_samples", "bootstrap", "n_bootstrap", "interval")
        },
        "values": dict(outcome.result.values),
        "ci": {m: list(ci) for m, ci in outcome.result.ci.items()},
        "warnings": sorted({w["code"] for w in outcome.result.warnings}),
    }
    path = write_json(NAME, payload, args.out)
    s = payload["settings"]
    print(
        f"{s['method']} over both samples on {s['both_samples']}, {s['n_bootstrap']} "
        f"{s['bootstrap']} replicates, {s['interval']} interval\n"
        f"wall {seconds:.0f} s ("
        + ", ".join(f"{k} {v:.0f} s" for k, v in outcome.seconds.items())
        + f"); largest resident set {payload['peak_rss_gb']['self']:.2f} GB (main), "
        f"{payload['peak_rss_gb']['children']:.2f} GB (workers)\nwrote {path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
