"""Benchmark per-case segmentation metrics on this machine's CPU.

Data: ``--n`` (100) pairs of random lesion-like binary volumes of ``--size``^3 (128^3):
thresholded Gaussian-smoothed noise (sigma 4 voxels) for the reference (about 1.5 % foreground,
about 130 blobs per volume) and a correlated, perturbed field for the prediction.

Measured (medians of ``--repeats`` runs, throughput in cases per second):

* ``dice``: :func:`shiftattr.metrics.dice` on the whole ``(B, D, H, W)`` bool batch, and per case.
* ``monai``: ``monai.metrics.compute_dice(y_pred, y, include_background=True)`` on the same
  data as float32 torch tensors ``(B, 1, D, H, W)`` (MONAI's usual input; timed in chunks of
  10 cases, tensors built before timing), if MONAI is importable; ``dice_vs_monai`` is
  shiftattr's throughput over MONAI's (> 1: shiftattr faster). shiftattr's Dice on those same
  float tensors (conversion and binary check included) is reported too.
* ``lesion_f1``: :func:`shiftattr.metrics.lesion_f1` (default MSSEG-2016 parameters).
  A plain vectorised torch Dice (``2 (p r).sum / (p.sum + r.sum)`` on the same tensors) is
  timed as a second reference.
* ``labelling``: :func:`scipy.ndimage.label` of both masks of every case (6-connectivity),
  the unavoidable part of lesion-wise detection; ``lesion_f1_over_labelling`` is the ratio
  of times (target: at most 2).

Results are printed and written to ``benchmarks/results/metrics.json``.

Usage: ``python benchmarks/bench_metrics.py [--n 100] [--size 128] [--repeats 5]``.
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
from scipy import ndimage

from shiftattr.metrics import dice, lesion_f1

RESULTS = Path(__file__).resolve().parent / "results" / "metrics.json"


def lesion_masks(n: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Reference and prediction masks ``(n, size, size, size)`` of lesion-like blobs."""
    shape = (size,) * 3
    ref = np.empty((n, *shape), dtype=bool)
    pred = np.empty((n, *shape), dtype=bool)
    for k in range(n):
        field = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), 4.0)
        noise = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), 2.0)
        t = np.quantile(field[::4, ::4, ::4], 0.985)
        ref[k] = field > t
        pred[k] = field + 0.6 * field.std() / noise.std() * noise > t
    return pred, ref


def median_times(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median wall time of each function over ``repeats`` runs (after one warm-up run each).

    The functions are run round-robin, so that compared timings see the same machine load.
    """
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark shiftattr.metrics on CPU.")
    parser.add_argument("--n", type=int, default=100, help="number of cases (default 100)")
    parser.add_argument("--size", type=int, default=128, help="volume edge (default 128)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    pred, ref = lesion_masks(args.n, args.size, rng)
    n = args.n
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "n_cases": n,
        "shape": [args.size] * 3,
        "repeats": args.repeats,
        "foreground_fraction_ref": float(ref.mean()),
        "statistic": "median wall time, compared functions run round-robin; "
        "throughput = cases / median time",
        "load_average_1min_at_start": os.getloadavg()[0],
    }

    dice_fns: dict[str, Callable[[], Any]] = {
        "batch": lambda: dice(pred, ref),
        "per_case": lambda: [dice(p, r) for p, r in zip(pred, ref)],
    }
    try:
        import torch
        from monai.metrics import compute_dice
    except ImportError:
        results["monai"] = "monai not installed: skipped"
        chunks = []
    else:
        import monai

        chunks = [
            (
                torch.from_numpy(pred[i : i + 10, None]).float(),
                torch.from_numpy(ref[i : i + 10, None]).float(),
            )
            for i in range(0, n, 10)
        ]
        dice_fns["monai"] = lambda: [compute_dice(p, r, include_background=True) for p, r in chunks]
        dice_fns["on_tensors"] = lambda: [dice(p[:, 0], r[:, 0]) for p, r in chunks]
        dims = (1, 2, 3, 4)
        dice_fns["torch_sum"] = lambda: [
            2 * (p * r).sum(dims) / (p.sum(dims) + r.sum(dims)) for p, r in chunks
        ]
    t = median_times(dice_fns, args.repeats)
    values = dice(pred, ref)
    results["dice_batch_cases_per_s"] = n / t["batch"]
    results["dice_per_case_cases_per_s"] = n / t["per_case"]
    results["dice_mean"] = float(values.mean())
    if chunks:
        monai_values = torch.cat([compute_dice(p, r) for p, r in chunks]).numpy().ravel()
        results["monai"] = {
            "version": monai.__version__,
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "compute_dice_cases_per_s": n / t["monai"],
            "max_abs_difference_vs_shiftattr": float(np.max(np.abs(monai_values - values))),
            "shiftattr_dice_on_same_float_tensors_cases_per_s": n / t["on_tensors"],
            "plain_torch_sum_dice_cases_per_s": n / t["torch_sum"],
        }
        results["dice_vs_monai"] = t["monai"] / t["batch"]
        results["dice_on_tensors_vs_monai"] = t["monai"] / t["on_tensors"]

    structure = ndimage.generate_binary_structure(3, 1)

    def label_all() -> None:
        for p, r in zip(pred, ref):
            ndimage.label(p, structure)
            ndimage.label(r, structure)

    lesion_repeats = max(1, min(args.repeats, 3))
    t = median_times(
        {"labelling": label_all, "lesion_f1": lambda: lesion_f1(pred, ref)}, lesion_repeats
    )
    t_label, t_f1 = t["labelling"], t["lesion_f1"]
    f1 = lesion_f1(pred, ref)
    n_lesions = [int(ndimage.label(r, structure)[1]) for r in ref[:10]]
    results["labelling_both_masks_cases_per_s"] = n / t_label
    results["lesion_f1_cases_per_s"] = n / t_f1
    results["lesion_f1_over_labelling"] = t_f1 / t_label
    results["lesion_f1_mean"] = float(np.nanmean(f1))
    results["ref_components_per_case_first10"] = n_lesions

    results["load_average_1min_at_end"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
