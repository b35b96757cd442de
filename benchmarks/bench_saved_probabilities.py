"""Saved predictions attributed with and without the probabilities saved beside them.

A pipeline that saves its masks only (``nnUNetv2_predict`` without
``--save_probabilities``) gives :class:`~shiftattr.segmentation.SavedPredictions` no
probability: the confidence and entropy summaries in the image ratio's output features
are constants, and only the masks' volumes and components tell cases apart. This script
measures what the probabilities change in the attribution.

Per seed, a U-Net trained on centre 01 / annotator 1 of :class:`SyntheticMS`, followed
by post-processing (components under 3 voxels removed), is the pipeline; its
post-processed masks are node ``P`` and its probabilities node ``P_proba``. Three
shifts (a scanner change, an annotator change, both) are attributed from the saved
masks with the probabilities (``probability_node="P_proba"``) and without them
(``probability_node=None``), with the same ratio estimator (image statistics plus the
output features), importance weighting and refit bootstrap intervals, against the
simulator's truth for the same pipeline.

It also measures the check of the probabilities against the masks
(:data:`~shiftattr.segmentation.MIN_PROBABILITY_CONTRAST`): each case's mean
probability inside its saved mask less that outside it, on the pipeline's own files,
and what the scorer does with each environment's probabilities mixed up (axes
transposed, one axis flipped, the background channel, each case given the next case's
file): refused, or accepted with how many cases named in its warning.

Writes ``benchmarks/results/saved_probabilities.json``.

Usage: ``python benchmarks/bench_saved_probabilities.py [--seeds 5]`` (about 25 s per
seed and shift on one core at the defaults).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import write_json

#: The shifts attributed: name -> (source, target) keyword arguments of ``sample``.
SHIFTS = {
    "scanner 01 -> 03": ({"center": "01", "annotator": "1"}, {"center": "03", "annotator": "1"}),
    "annotator 1 -> 3": ({"center": "01", "annotator": "1"}, {"center": "01", "annotator": "3"}),
    "both": ({"center": "01", "annotator": "1"}, {"center": "03", "annotator": "3"}),
}

#: The variants compared: name -> ``SavedPredictions(probability_node=...)``.
VARIANTS = {"with probabilities": "P_proba", "masks only": None}

#: Mix-ups of saved probabilities, by name: ``probabilities (N, *spatial) -> mixed up``.
MIXUPS = {
    "none (the model's own)": lambda p: p,
    "axes transposed": lambda p: p.transpose(0, *range(p.ndim - 1, 0, -1)),
    "one axis flipped": lambda p: p[:, ::-1],
    "background channel": lambda p: 1.0 - p,
    "the next case's file": lambda p: np.roll(p, 1, axis=0),
}

#: Components smaller than this many voxels are removed by the pipeline's post-processing.
MIN_COMPONENT = 3


def _post_process(masks: np.ndarray) -> np.ndarray:
    """Each case's mask without its components under :data:`MIN_COMPONENT` voxels."""
    from scipy import ndimage

    out = np.zeros_like(masks)
    for i, mask in enumerate(masks):  # one labelling per case
        labels, k = ndimage.label(mask)
        sizes = np.bincount(labels.ravel(), minlength=k + 1)
        keep = sizes >= MIN_COMPONENT
        keep[0] = False
        out[i] = keep[labels]
    return out


def contrasts(masks: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Each judged case's mean probability inside its mask less that outside it (cases
    whose mask is empty or full are left out): the scorer's own computation."""
    import torch

    from shiftattr.segmentation.saved_predictions import _contrast

    mask = torch.from_numpy(np.asarray(masks) != 0)
    d, judged = _contrast(mask, torch.from_numpy(np.asarray(proba, dtype=np.float32)))
    return d[judged].numpy()


def check_mixups(environment: Any, judged: int) -> list[dict[str, Any]]:
    """What the scorer does with the environment's probabilities mixed up; ``judged`` is
    the number of its cases whose mask is neither empty nor full."""
    from shiftattr.segmentation import SavedPredictions

    proba = np.asarray(environment["P_proba"])
    out = []
    for name, mix in MIXUPS.items():
        scorer = SavedPredictions(
            "dice", metric_params={"empty": "one"}, probability_node="P_proba", progress=False
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                scorer.score(environment.with_nodes(P_proba=np.ascontiguousarray(mix(proba))))
                outcome = "accepted"
            except ValueError:
                outcome = "refused"
        out.append(
            {
                "mixup": name,
                "outcome": outcome,
                "warned_cases": len(scorer.low_contrast_cases_),
                "judged_cases": judged,
            }
        )
    return out


def one_seed(
    seed: int,
    shape: tuple[int, ...],
    n: int,
    n_train: int,
    epochs: int,
    truth_n: int,
    replicates: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[float]]:
    """Rows of one seed (per shift and variant, the estimate beside the truth), the
    scorer's verdicts on mixed-up probabilities, and the pipeline's own contrasts."""
    import shiftattr as sa
    from shiftattr.pipeline import segmentation_graph
    from shiftattr.ratios import ImageStatsRatio
    from shiftattr.segmentation import (
        SavedPredictions,
        SegmentationAdapter,
        UNet3D,
        train_segmentation_model,
    )

    sim = sa.datasets.SyntheticMS(shape=shape, random_state=seed)
    net = UNet3D(in_channels=1, out_channels=1, channels=(8, 16, 32), random_state=seed)
    train = sim.sample(n_train, center="01", annotator="1", random_state=seed + 1)
    train_segmentation_model(net, train, epochs=epochs, random_state=seed, progress=False)
    network = SegmentationAdapter(net, progress=False)

    def saved(environment: Any) -> Any:
        masks = _post_process(np.asarray(network.predict(environment)))
        return environment.with_nodes(P=masks, P_proba=network.predict_proba(environment))

    def pipeline_dice(environment: Any) -> np.ndarray:
        masks = _post_process(np.asarray(network.predict(environment)))
        return sa.metrics.dice(masks, environment["Y"], empty=1.0)

    rows, checks, own = [], [], []
    for k, (shift, (src_kw, tgt_kw)) in enumerate(SHIFTS.items()):
        source = saved(sim.sample(n, **src_kw, random_state=100 * seed + 2 * k + 10))
        target = saved(sim.sample(n, **tgt_kw, random_state=100 * seed + 2 * k + 11))
        for side, environment in (("source", source), ("target", target)):
            mine = contrasts(environment["P"], environment["P_proba"]).tolist()
            own += mine
            checks += [
                {"seed": seed, "shift": shift, "side": side, **c}
                for c in check_mixups(environment, len(mine))
            ]
        truth = sim.true_attribution(
            pipeline_dice,
            src_kw,
            tgt_kw,
            n=truth_n,
            random_state=100 * seed + k + 50,
            mechanisms=["X", "Y"],
            progress=False,
        )
        for variant, node in VARIANTS.items():
            scorer = SavedPredictions(
                "dice", metric_params={"empty": "one"}, probability_node=node, progress=False
            )
            ratio = ImageStatsRatio(extra_features={"X": scorer.output_features}, random_state=0)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = sa.attribute(
                    segmentation_graph(with_covariates=False),
                    source,
                    target,
                    metric=scorer.score(source),
                    target_metric=scorer.score(target),
                    estimators={"X": ratio, "Y": ratio},
                    method="iw",  # as recorded (the default until 2026-12-02)
                    n_folds=3,
                    n_bootstrap=replicates,
                    bootstrap="refit",
                    metric_name="Dice",
                    progress=False,
                    random_state=seed,
                )
            seconds = time.perf_counter() - start
            rows.append(
                {
                    "seed": seed,
                    "shift": shift,
                    "variant": variant,
                    "values": dict(res.values),
                    "ci": {m: list(res.ci[m]) for m in res.mechanisms},
                    "truth": dict(truth.values),
                    "truth_stderr": dict(truth.stderr),
                    "warnings": sorted(res.diagnostics["overall"]["warning_counts"]),
                    "seconds": seconds,
                }
            )
    return rows, checks, own


def summarise_checks(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per mix-up: environments refused, and cases named in the accepted ones' warnings."""
    out = []
    for name in MIXUPS:
        sel = [c for c in checks if c["mixup"] == name]
        accepted = [c for c in sel if c["outcome"] == "accepted"]
        out.append(
            {
                "mixup": name,
                "environments": len(sel),
                "refused": len(sel) - len(accepted),
                "warned_cases": sum(c["warned_cases"] for c in accepted),
                "judged_cases_accepted": sum(c["judged_cases"] for c in accepted),
            }
        )
    return out


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per shift and variant: MAE, coverage of the truth, dominant mechanism right."""
    out = []
    for shift in SHIFTS:
        for variant in VARIANTS:
            sel = [r for r in rows if r["shift"] == shift and r["variant"] == variant]
            if not sel:
                continue
            errors = [abs(r["values"][m] - r["truth"][m]) for r in sel for m in r["values"]]
            covered = [
                r["ci"][m][0] <= r["truth"][m] <= r["ci"][m][1] for r in sel for m in r["values"]
            ]
            dominant = [
                max(r["values"], key=lambda m: abs(r["values"][m]))
                == max(r["truth"], key=lambda m: abs(r["truth"][m]))
                for r in sel
            ]
            out.append(
                {
                    "shift": shift,
                    "variant": variant,
                    "runs": len(sel),
                    "mae": float(np.mean(errors)),
                    "coverage": float(np.mean(covered)),
                    "dominant_right": float(np.mean(dominant)),
                    "warned_runs": sum(bool(r["warnings"]) for r in sel),
                    "seconds": float(np.median([r["seconds"] for r in sel])),
                }
            )
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and write ``saved_probabilities.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="U-Nets trained, one per seed")
    parser.add_argument("--n", type=int, default=100, help="cases per environment")
    parser.add_argument("--size", type=int, default=16, help="volumes of size^3 voxels")
    parser.add_argument("--epochs", type=int, default=12, help="U-Net training epochs")
    parser.add_argument("--truth-n", type=int, default=120, help="cases per truth coalition")
    parser.add_argument("--replicates", type=int, default=20, help="refit bootstrap replicates")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    args = parser.parse_args(argv)
    shape = (args.size,) * 3
    rows, checks, own = [], [], []
    for seed in range(args.seeds):
        r, c, o = one_seed(seed, shape, args.n, 40, args.epochs, args.truth_n, args.replicates)
        rows, checks, own = rows + r, checks + c, own + o
        print(f"seed {seed}: done", flush=True)
    summary = summarise(rows)
    for s in summary:
        print(
            f"{s['shift']:<18} {s['variant']:<19} MAE {s['mae']:.4f}  coverage "
            f"{100 * s['coverage']:.0f} %  dominant {100 * s['dominant_right']:.0f} %"
        )
    payload = {
        "seeds": args.seeds,
        "n": args.n,
        "shape": list(shape),
        "epochs": args.epochs,
        "truth_n": args.truth_n,
        "replicates": args.replicates,
        "rows": rows,
        "checks": summarise_checks(checks),
        "own_contrast": {
            "cases": len(own),
            "min": float(np.min(own)) if own else None,
            "p01": float(np.percentile(own, 1)) if own else None,
            "median": float(np.median(own)) if own else None,
        },
        "summary": summary,
    }
    path = write_json("saved_probabilities", payload, *([args.out] if args.out else []))
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
