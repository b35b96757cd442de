"""Synthetic MS validation: runs ``benchmarks/bench_synthetic_ms.py`` when it exists.

The script (written separately) is expected to write ``results/synthetic_ms.json``. It
gets ``--quick`` in quick mode if its ``--help`` lists that option. Without the script
nothing is run and the report says the section is not yet measured.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from benchmarks._common import BENCH_DIR, REPO_DIR, read_json

NAME = "synthetic_ms"
SCRIPT = BENCH_DIR / "bench_synthetic_ms.py"


def run(quick: bool = False) -> dict[str, Any]:
    """Run the script if present; return its JSON results or a status."""
    if not SCRIPT.exists():
        return {"status": "not yet measured", "reason": f"{SCRIPT.name} does not exist yet"}
    args = []
    if quick:
        usage = subprocess.run(
            [sys.executable, str(SCRIPT), "--help"], cwd=REPO_DIR, capture_output=True, text=True
        )
        if "--quick" in usage.stdout:
            args.append("--quick")
    subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO_DIR, check=True)
    data = read_json(NAME)
    if data is None:
        return {"status": "ran, but wrote no results/synthetic_ms.json"}
    return data
