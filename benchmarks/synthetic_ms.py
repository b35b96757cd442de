"""Synthetic MS validation: runs ``benchmarks/bench_synthetic_ms.py`` in a subprocess.

The script writes ``results/synthetic_ms.json`` and ``results/synthetic_ms.png``. It gets
``--quick`` in quick mode and always ``--reuse-truth``: a scenario's ground truth is taken
from the previous results when its key (every spec, the model weights' hash and the truth
settings) matches, so only changed scenarios are simulated again. Without the script
nothing is run and the report says the section is not yet measured.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from benchmarks._common import BENCH_DIR, REPO_DIR, read_json

NAME = "synthetic_ms"
SCRIPT = BENCH_DIR / "bench_synthetic_ms.py"


def command(quick: bool = False) -> list[str]:
    """The command line run for this section."""
    args = [sys.executable, str(SCRIPT), "--reuse-truth"]
    if quick:
        args.append("--quick")
    return args


def run(quick: bool = False) -> dict[str, Any]:
    """Run the script if present; return its JSON results or a status.

    Raises
    ------
    subprocess.CalledProcessError
        When the script fails, or when any of its attribution runs failed (it then
        still writes its results, failed runs included).
    """
    if not SCRIPT.exists():
        return {"status": "not yet measured", "reason": f"{SCRIPT.name} does not exist yet"}
    subprocess.run(command(quick), cwd=REPO_DIR, check=True)
    data = read_json(NAME)
    if data is None:
        return {"status": "ran, but wrote no results/synthetic_ms.json"}
    return data
