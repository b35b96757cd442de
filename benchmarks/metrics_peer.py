"""Metric throughput vs MONAI: runs ``benchmarks/bench_metrics.py`` and reads its results.

The full run uses ``bench_metrics.py``'s defaults (100 cases of 128^3, 5 repeats); the
quick run 20 cases of 64^3 and 3 repeats. Without MONAI the script records it as
skipped. Results: ``results/metrics.json`` (written by the script itself).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from benchmarks._common import BENCH_DIR, REPO_DIR, RESULTS_DIR, read_json

NAME = "metrics"
SCRIPT = BENCH_DIR / "bench_metrics.py"


def config_for(quick: bool) -> list[str]:
    """Command-line arguments of ``bench_metrics.py`` for the quick and the full run."""
    return ["--n", "20", "--size", "64", "--repeats", "3"] if quick else []


def run(quick: bool = False) -> dict[str, Any]:
    """Run ``bench_metrics.py`` in a subprocess; return its JSON results."""
    out = RESULTS_DIR / "metrics.json"
    subprocess.run(
        [sys.executable, str(SCRIPT), *config_for(quick), "--out", str(out)],
        cwd=REPO_DIR,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    data = read_json(NAME) or {}
    data["mode"] = "quick" if quick else "full"
    return data
