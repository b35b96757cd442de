"""Peak memory and time of the image statistics on realistic volume sizes.

:func:`shiftattr.ratios.image_statistics` summarises scans a batch at a time, and its
statistics take several float64 copies of a batch. With a batch of ``batch_size`` cases
whatever their size, 32 scans of 256×256×180 needed about 15 GB; batches are now bounded
at :data:`~shiftattr.ratios.image_stats.BATCH_BYTES` of float64 voxels. This script
measures both on in-memory float32 volumes of noise, each configuration in a fresh
process (peak RSS is a process-wide maximum):

- ``bounded``: the library as shipped;
- ``one batch``: ``BATCH_BYTES`` raised so that every case goes in one batch (what
  ``batch_size`` alone gave before the bound, for up to ``batch_size`` cases).

It reports, per shape and number of cases, the peak resident memory above the process's
baseline (the volumes included, which the caller holds anyway), the wall time and the
cases per batch, and checks that both give the same numbers. Writes
``benchmarks/results/image_statistics_memory.json``.

Usage: ``python benchmarks/bench_image_statistics_memory.py [--shape 256 256 180]
[--n 4]`` (about 2 minutes on one core at the defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import machine_info, now_utc, write_json

#: Runs in a child process: prints one JSON line with its measurements.
_CHILD = """
import json, resource, sys, time
import numpy as np
import shiftattr.ratios.image_stats as m
shape, n, bounded = tuple(json.loads(sys.argv[1])), int(sys.argv[2]), sys.argv[3] == "1"
if not bounded:
    m.BATCH_BYTES = 2**62
x = np.random.default_rng(0).normal(size=(n, *shape)).astype(np.float32)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
step = min(n, m._cases_per_batch(int(np.prod(shape)), 32))
t = time.perf_counter()
stats = m.image_statistics({"X": x})
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_above_baseline_gb": (peak - base) / 2**20, "seconds": seconds,
                  "cases_per_batch": step, "volumes_gb": x.nbytes / 2**30,
                  "checksum": float(np.nansum(stats))}))
"""


def measure(shape: tuple[int, ...], n: int, bounded: bool) -> dict[str, Any]:
    """One configuration in a fresh interpreter (its peak RSS is its own)."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(list(shape)), str(n), "1" if bounded else "0"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Measure both configurations, print a table and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs="+", default=[256, 256, 180])
    parser.add_argument("--n", type=int, default=4, help="cases")
    args = parser.parse_args(argv)
    shape = tuple(args.shape)
    rows = []
    for bounded in (True, False):
        r = measure(shape, args.n, bounded)
        rows.append({"configuration": "bounded" if bounded else "one batch", **r})
    same = rows[0]["checksum"] == rows[1]["checksum"]
    print(f"image_statistics on {args.n} volumes of {'x'.join(map(str, shape))} (float32):")
    print(f"{'configuration':<14}{'cases/batch':>12}{'peak above baseline':>22}{'time':>9}")
    for r in rows:
        print(
            f"{r['configuration']:<14}{r['cases_per_batch']:>12}"
            f"{r['peak_above_baseline_gb']:>19.2f} GB{r['seconds']:>8.0f}s"
        )
    print(f"same statistics: {same}")
    path = write_json(
        "image_statistics_memory",
        {
            "benchmark": "image_statistics_memory",
            "date": now_utc(),
            "machine": machine_info(),
            "shape": list(shape),
            "n": args.n,
            "rows": rows,
            "same_statistics": same,
        },
    )
    print(f"written: {path}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
