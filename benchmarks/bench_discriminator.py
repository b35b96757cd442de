"""Benchmark the CNN discriminator on this machine's CPU.

Measures the seconds per training epoch for 100 volumes of 32^3 (50 source, 50
target; median over epochs, validation pass included) and the prediction throughput
(volumes per second) with and without test-time augmentation, prints them and writes
``benchmarks/results/discriminator.json``.

Usage: ``python benchmarks/bench_discriminator.py [--epochs 6] [--threads 1 2] [--size 32]``
(the 1-minute load average is recorded: other processes on the CPU skew the numbers).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from shiftattr.ratios.cnn import CNNDiscriminator

RESULTS = Path(__file__).resolve().parent / "results" / "discriminator.json"


def volumes(n: int, shape: tuple[int, ...], rng: np.random.Generator, scale: float = 1.0):
    """Smooth random blobs plus noise (float32), times an intensity scale."""
    x = gaussian_filter(rng.normal(size=(n, *shape)), sigma=(0,) + (2,) * len(shape))
    x /= x.std(axis=tuple(range(1, x.ndim)), keepdims=True)
    return (scale * (x + 0.3 * rng.normal(size=x.shape))).astype(np.float32)


def throughput(est: CNNDiscriminator, features: dict, repeats: int = 3) -> float:
    """Volumes per second of ``log_ratio`` (best of ``repeats``)."""
    n = len(next(iter(features.values())))
    best = min(_timed(est.log_ratio, features) for _ in range(repeats))
    return n / best


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def run(threads: int, size: int, epochs: int) -> dict:
    """Fit on 50 + 50 volumes of ``size**3`` with ``threads`` torch threads and time it."""
    rng = np.random.default_rng(0)
    shape = (size,) * 3
    source = {"x": volumes(50, shape, rng)}
    target = {"x": volumes(50, shape, rng, scale=1.3)}
    pooled = {"x": np.concatenate([source["x"], target["x"]])}

    est = CNNDiscriminator(
        spatial_dims=3, epochs=epochs, patience=epochs, random_state=0, num_threads=threads
    )
    t0, c0 = time.perf_counter(), time.process_time()
    est.fit(source, target)
    fit_seconds, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    # same fitted network predicting with a single view
    plain = copy.copy(est).set_params(tta=False)
    return {
        "threads": threads,
        "epochs_run": est.n_epochs_,
        "seconds_per_epoch_median": statistics.median(est.history_["seconds"]),
        "seconds_per_epoch": est.history_["seconds"],
        "fit_seconds_total": fit_seconds,
        # process CPU time: with 1 thread, close to the wall time on an idle machine
        "fit_cpu_seconds_total": fit_cpu,
        "fit_cpu_seconds_per_epoch": fit_cpu / est.n_epochs_,
        "val_auc": est.val_auc_,
        "tta_views": len(est._views()),
        "predict_volumes_per_second_tta": throughput(est, pooled),
        "predict_volumes_per_second_no_tta": throughput(plain, pooled),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark CNNDiscriminator on CPU.")
    parser.add_argument("--epochs", type=int, default=6, help="epochs to time (default 6)")
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[torch.get_num_threads()],
        help="torch thread counts to benchmark (default: torch's default)",
    )
    parser.add_argument("--size", type=int, default=32, help="volume edge length")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    defaults = CNNDiscriminator()
    load_before = os.getloadavg()
    runs = [run(t, args.size, args.epochs) for t in args.threads]
    result = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average_1min_before_after": [load_before[0], os.getloadavg()[0]],
        "volume_shape": [args.size] * 3,
        "n_source": 50,
        "n_target": 50,
        "settings": {
            k: defaults.get_params()[k]
            for k in ("channels", "batch_size", "gradient_penalty", "penalty_interval", "tta")
        },
        "runs": runs,
    }
    for r in runs:
        print(
            f"threads={r['threads']}: {r['seconds_per_epoch_median']:.2f} s/epoch (median of "
            f"{r['epochs_run']}; CPU {r['fit_cpu_seconds_per_epoch']:.2f} s/epoch), predict {r['predict_volumes_per_second_tta']:.1f} vol/s with "
            f"TTA ({r['tta_views']} views), {r['predict_volumes_per_second_no_tta']:.1f} vol/s "
            "without"
        )
    print(f"1-min load average before/after: {result['load_average_1min_before_after']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
