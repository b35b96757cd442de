"""Time per case and peak memory of each stage of a run, at real scan sizes.

The tests and the other benchmarks run at 16³–32³, where work repeated per case costs
milliseconds; at 128×128×96 or 256×256×180 the same defect costs hours, and three such
scaling defects went unseen for that reason. This script runs every stage a real run
goes through on volumes of each given shape, each stage in a fresh process (peak RSS is
a process-wide maximum), and reports the wall time per case and the peak resident memory
above the process's baseline (taken after the imports and the data, which the caller
holds anyway). On Linux the high-water mark is reset to the resident memory at the
baseline, so the peak is the stage's own even where building its inputs went higher
(``peak_method``); elsewhere it is the process's maximum:

- ``sample``: :meth:`shiftattr.datasets.SyntheticMS.sample` of ``n`` cases (centre
  "01", annotator "1"); its peak includes the volumes it returns (``volumes_gb``). Its
  images and masks are saved and are the data of the other stages;
- ``predict``: an untrained :class:`~shiftattr.segmentation.UNet3D` (channels 8, 16, 32,
  the demo's) scored with Dice through
  :class:`~shiftattr.segmentation.SegmentationAdapter` on whole volumes, as
  ``shiftattr.pipeline.run`` does by default;
- ``predict_window``: the same with sliding-window inference (``patch_size`` 64 per axis,
  capped at the volume; ``model.patch_size`` of a run's configuration);
- ``image_statistics``: :func:`shiftattr.ratios.image_statistics` of the images
  (extended statistics);
- ``cnn_epoch``: one training epoch of
  :class:`~shiftattr.ratios.CNNDiscriminator` (``epochs=1, tta=False``, its default
  ``downsample="auto"``) on ``--cnn-n`` source images (the ``n`` repeated) against as
  many target images (the same in reverse order, times 1.2); the time per case is the
  whole fit's time (held-out pass and calibration included) over the ``2 × cnn_n``
  cases;
- ``cnn_epoch_unpooled``: the same with ``downsample=1``, on shapes of at most
  ``--unpooled-max-side`` voxels per axis (64 by default; 128 adds 128×128×96: 5 s per
  case and 12 GB; 256×256×180 would need about 90 GB), where ``"auto"`` pooled (on
  smaller grids ``cnn_epoch`` is the unpooled epoch).

Each row also has the user and system CPU seconds of the stage (system time is mostly
page faults on fresh memory: large temporary arrays allocated again and again). It
prints a table as it goes, and the growth exponent of each stage's time per case
between successive shapes (1: proportional to the voxel count). Writes
``benchmarks/results/volume_scaling.json``.

Usage: ``python benchmarks/bench_volume_scaling.py [--shapes 32,32,32 64,64,64 128,128,96]
[--n 8] [--cnn-n 16] [--unpooled-max-side 64] [--out benchmarks/results]`` (about 2 minutes on
one core at the defaults, 3 GB at most; ``--n`` takes several values to see what grows
with the number of cases; 256,256,180 with ``--n 2`` takes 4 minutes and 4.5 GB;
``--unpooled-max-side 128`` adds about 3 minutes and 12 GB at 128×128×96).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import RESULTS_DIR, machine_info, now_utc, write_json

DEFAULT_SHAPES = ((32, 32, 32), (64, 64, 64), (128, 128, 96))

#: Feature channels of the U-Net (``shiftattr demo``'s model).
UNET_CHANNELS = (8, 16, 32)

#: Sliding-window patch of ``predict_window`` per axis (capped at the volume's side).
WINDOW = 64

#: Cases per environment of the cnn stages. The discriminator trains on balanced batches
#: of 16 (8 per class) and an epoch has at least one: on fewer training cases it still
#: computes a whole batch (and its one step is a gradient-penalty step), so the time per
#: case of a smaller sample is inflated. 16 per environment (13 training cases each after
#: the held-out fifth) give two steps, one with the penalty.
CNN_N = 16

#: Largest side on which ``cnn_epoch_unpooled`` runs by default (``--unpooled-max-side``).
UNPOOLED_MAX_SIDE = 64

#: Runs in a child process: prints one JSON line with its measurements.
_CHILD = """
import json, resource, sys, time
cfg = json.loads(sys.argv[1])
stage, shape, n, data = cfg["stage"], tuple(cfg["shape"]), cfg["n"], cfg["data"]
import numpy as np

def status_gb(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key)) / 2**20

# resident memory now, the high-water mark reset to it (Linux 4.0+: "5" to clear_refs),
# so that the peak read after the stage is the stage's own; elsewhere the process-wide
# maximum, which data copies made before the stage may have set higher
def baseline():
    global PEAK
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        PEAK = "reset high-water mark"
        return status_gb("VmRSS")
    except OSError:
        PEAK = "process maximum"
        return maxrss_gb()

def peak_gb():
    return status_gb("VmHWM") if PEAK == "reset high-water mark" else maxrss_gb()

def maxrss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime

extra = {}
if stage == "sample":
    from shiftattr.datasets import SyntheticMS
    sim = SyntheticMS(shape=shape, random_state=0)
    base, cpu0 = baseline(), cpu()
    t = time.perf_counter()
    env = sim.sample(n, center="01", annotator="1", random_state=0)
    seconds = time.perf_counter() - t
    peak = peak_gb()
    extra["volumes_gb"] = (env["X"].nbytes + env["Y"].nbytes) / 2**30
    np.save(data + "/X.npy", env["X"])
    np.save(data + "/Y.npy", env["Y"])
elif stage in ("predict", "predict_window"):
    import torch
    torch.manual_seed(0)
    from shiftattr import Environment
    from shiftattr.segmentation import SegmentationAdapter, UNet3D
    env = Environment({"X": np.load(data + "/X.npy"), "Y": np.load(data + "/Y.npy")})
    net = UNet3D(channels=tuple(cfg["channels"]), random_state=0)
    patch = [min(s, cfg["window"]) for s in shape] if stage == "predict_window" else None
    adapter = SegmentationAdapter(
        net, metric="dice", metric_params={"empty": "best"}, patch_size=patch, progress=False
    )
    base, cpu0 = baseline(), cpu()
    t = time.perf_counter()
    scores = adapter.score(env)
    seconds = time.perf_counter() - t
    peak = peak_gb()
    extra = {"patch_size": patch, "model_calls": adapter.n_model_calls_,
             "cache_gb": adapter.cache_bytes_ / 2**30, "checksum": float(scores.sum())}
elif stage == "image_statistics":
    from shiftattr.ratios import image_statistics
    x = np.load(data + "/X.npy")
    base, cpu0 = baseline(), cpu()
    t = time.perf_counter()
    stats = image_statistics({"X": x}, spatial_dims=3)
    seconds = time.perf_counter() - t
    peak = peak_gb()
    extra = {"columns": int(stats.shape[1]), "checksum": float(np.nansum(stats))}
else:  # cnn_epoch, cnn_epoch_unpooled
    import torch
    torch.manual_seed(0)
    from shiftattr.ratios import CNNDiscriminator
    x = np.load(data + "/X.npy")
    tile = np.arange(cfg["cnn_n"]) % n  # the n cases repeated to cnn_n
    source, target = {"X": x[tile]}, {"X": np.float32(1.2) * x[tile[::-1]]}
    del x
    est = CNNDiscriminator(epochs=1, tta=False, random_state=0, downsample=cfg["downsample"])
    base, cpu0 = baseline(), cpu()
    t = time.perf_counter()
    est.fit(source, target)
    seconds = time.perf_counter() - t
    peak = peak_gb()
    extra = {"downsample": list(est.downsample_), "input_shape": list(est.input_shape_),
             "cases": 2 * cfg["cnn_n"], "epoch_seconds": float(est.history_["seconds"][0])}
user, system = cpu()
print(json.dumps({"seconds": seconds, "baseline_gb": base,
                  "peak_above_baseline_gb": peak - base, "peak_method": PEAK,
                  "cpu_user_s": user - cpu0[0], "cpu_system_s": system - cpu0[1], **extra}))
"""


def stages(shape: tuple[int, ...], unpooled_max_side: int = UNPOOLED_MAX_SIDE) -> list[str]:
    """The stages measured on ``shape``, in run order (``sample`` makes the data;
    ``cnn_epoch_unpooled`` is skipped at run time where ``cnn_epoch`` did not pool)."""
    out = ["sample", "predict", "predict_window", "image_statistics", "cnn_epoch"]
    if max(shape) <= unpooled_max_side:
        out.append("cnn_epoch_unpooled")
    return out


def measure(stage: str, shape: tuple[int, ...], n: int, data: str, cnn_n: int) -> dict[str, Any]:
    """One stage in a fresh interpreter (its peak RSS is its own)."""
    cfg = {
        "stage": stage,
        "shape": list(shape),
        "n": n,
        "cnn_n": cnn_n,
        "data": data,
        "channels": list(UNET_CHANNELS),
        "window": WINDOW,
        "downsample": 1 if stage == "cnn_epoch_unpooled" else "auto",
    }
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(cfg)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    )
    if out.returncode != 0:
        raise RuntimeError(f"stage {stage} on {shape} failed:\n{out.stderr[-3000:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return {"seconds_per_case": r["seconds"] / r.pop("cases", n), **r}


def _exponent(a: dict[str, Any], b: dict[str, Any], key: str, floor: float = 0.0) -> float | None:
    """Log-log slope of ``key`` from row ``a`` to row ``b`` against the voxel count."""
    if a[key] <= floor or b[key] <= floor:
        return None
    return math.log(b[key] / a[key]) / math.log(b["voxels"] / a["voxels"])


def growth(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Log-log slopes of time per case (and of peak memory) against the voxel count
    between successive shapes of each stage and ``n``; 1 is proportional."""
    out = []
    keys = sorted({(r["stage"], r["n"]) for r in rows}, key=lambda k: (k[1], k[0]))
    for stage, n in keys:
        rs = sorted(
            (r for r in rows if r["stage"] == stage and r["n"] == n), key=lambda r: r["voxels"]
        )
        for a, b in itertools.pairwise(rs):
            if b["voxels"] == a["voxels"]:
                continue
            out.append(
                {
                    "stage": stage,
                    "n": n,
                    "from": a["shape"],
                    "to": b["shape"],
                    "time_exponent": _exponent(a, b, "seconds_per_case"),
                    # memory below 10 MB is allocator noise
                    "memory_exponent": _exponent(a, b, "peak_above_baseline_gb", 0.01),
                }
            )
    return out


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a shape is like 64,64,64, got {text!r}") from None
    if len(shape) != 3 or min(shape) < 8:
        raise argparse.ArgumentTypeError(f"a shape has three sides >= 8, got {text!r}")
    return shape


def _note(r: dict[str, Any]) -> str:
    if "input_shape" in r:
        return "network input " + "x".join(map(str, r["input_shape"]))
    if r.get("patch_size"):
        return f"patch {'x'.join(map(str, r['patch_size']))}, {r['model_calls']} model calls"
    if "volumes_gb" in r:
        return f"returns {r['volumes_gb']:.3f} GB of volumes"
    return ""


def main(argv: list[str] | None = None) -> int:
    """Measure every stage on every shape, print a table and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shapes",
        type=_shape,
        nargs="+",
        default=list(DEFAULT_SHAPES),
        metavar="D,H,W",
        help="volume shapes (default 32,32,32 64,64,64 128,128,96)",
    )
    parser.add_argument("--n", type=int, nargs="+", default=[8], help="cases (default 8)")
    parser.add_argument(
        "--cnn-n",
        type=int,
        default=CNN_N,
        help=f"cases per environment of the cnn stages, the n cases repeated (default {CNN_N})",
    )
    parser.add_argument(
        "--unpooled-max-side",
        type=int,
        default=UNPOOLED_MAX_SIDE,
        help="run cnn_epoch_unpooled on shapes of at most this many voxels per axis (default "
        f"{UNPOOLED_MAX_SIDE}; its memory grows with the voxels: 12 GB at 128x128x96)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder of the results")
    args = parser.parse_args(argv)
    if min(args.n) < 1 or args.cnn_n < 2:
        parser.error("--n must be positive, --cnn-n at least 2 (the discriminator holds out cases)")
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    print(f"{'shape':<12}{'n':>3}  {'stage':<20}{'s/case':>9}{'peak GB':>9}  note", flush=True)
    for shape in args.shapes:
        for n in args.n:
            with tempfile.TemporaryDirectory(prefix="volume_scaling_") as data:
                for stage in stages(shape, args.unpooled_max_side):
                    if stage == "cnn_epoch_unpooled" and rows[-1]["downsample"] == [1, 1, 1]:
                        continue  # "auto" did not pool: cnn_epoch was the unpooled epoch
                    r = {
                        "shape": list(shape),
                        "voxels": math.prod(shape),
                        "n": n,
                        "stage": stage,
                        **measure(stage, shape, n, data, args.cnn_n),
                    }
                    rows.append(r)
                    print(
                        f"{'x'.join(map(str, shape)):<12}{n:>3}  {stage:<20}"
                        f"{r['seconds_per_case']:>9.3f}{r['peak_above_baseline_gb']:>9.3f}"
                        f"  {_note(r)}",
                        flush=True,
                    )
    slopes = growth(rows)
    if slopes:
        print("growth exponent of s/case (peak memory) vs voxels, 1 = proportional:")
        for g in slopes:
            mem = "—" if g["memory_exponent"] is None else f"{g['memory_exponent']:.2f}"
            time_exp = "—" if g["time_exponent"] is None else f"{g['time_exponent']:.2f}"
            print(
                f"  {g['stage']:<20} n={g['n']} {'x'.join(map(str, g['from']))} -> "
                f"{'x'.join(map(str, g['to']))}: {time_exp} ({mem})"
            )
    path = write_json(
        "volume_scaling",
        {
            "benchmark": "volume_scaling",
            "date": now_utc(),
            "machine": machine_info(),
            "command": " ".join(
                [
                    "python benchmarks/bench_volume_scaling.py",
                    *(sys.argv[1:] if argv is None else argv),
                ]
            ),
            "config": {
                "shapes": [list(s) for s in args.shapes],
                "n": args.n,
                "cnn_n": args.cnn_n,
                "unpooled_max_side": args.unpooled_max_side,
                "unet_channels": list(UNET_CHANNELS),
                "window": WINDOW,
                "omp_num_threads": 1,
            },
            "seconds": time.perf_counter() - t0,
            "rows": rows,
            "growth": slopes,
        },
        Path(args.out),
    )
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
