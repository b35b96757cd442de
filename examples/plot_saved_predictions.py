"""
Saved predictions: attributing the Dice your pipeline reports, from its files
=============================================================================

Segmentation pipelines rarely stop at the network: ``nnUNetv2_predict`` resamples,
mirrors, slides windows and post-processes before it writes a mask per case. A network
loaded into :class:`~shiftattr.segmentation.SegmentationAdapter` repeats none of that,
so the Dice it attributes is not the Dice the pipeline reports. When the predictions
are on disk, score them instead: :func:`~shiftattr.segmentation.load_folder` reads them
as node ``P`` (``prediction_column=``; :func:`~shiftattr.segmentation.load_nnunet_raw`
takes ``predictions=``, the folder ``nnUNetv2_predict -o`` writes), and
:class:`~shiftattr.segmentation.SavedPredictions` is the adapter reading that node.

Here the "pipeline" is a small U-Net followed by a post-processing step (connected
components under 3 voxels removed), run on a synthetic scanner change (centre 01 to
centre 03). Its predictions are written as NIfTI files beside the images and masks,
with its probabilities as ``nnUNetv2_predict --save_probabilities`` writes them (an
``.npz`` per case), read back lazily, and attributed; the simulator's ground truth,
computed with the same pipeline, sits beside the estimate.

Runs in about 40 seconds with small defaults; ``--full`` uses 32³ volumes and larger
samples.
"""

# %%
import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
from scipy import ndimage

import shiftattr as sa
from shiftattr.pipeline import segmentation_graph, truth_table
from shiftattr.ratios import ImageStatsRatio
from shiftattr.segmentation import (
    SavedPredictions,
    SegmentationAdapter,
    UNet3D,
    load_folder,
    train_segmentation_model,
)

parser = argparse.ArgumentParser(description="saved predictions")
parser.add_argument("--full", action="store_true", help="32^3 volumes, larger samples")
parser.add_argument("--out", default="examples/output", help="folder for the figure")
args, _ = parser.parse_known_args(sys.argv[1:] if __name__ == "__main__" else [])

if args.full:
    shape, n, n_train, epochs, truth_n = (32, 32, 32), 150, 80, 15, 300
else:
    shape, n, n_train, epochs, truth_n = (16, 16, 16), 100, 40, 12, 120

# %%
# The pipeline: a U-Net trained on centre 01, then post-processing that removes
# predicted components smaller than 3 voxels. Only its masks leave it.
sim = sa.datasets.SyntheticMS(shape=shape, random_state=0)
src_kw = {"center": "01", "annotator": "1"}
tgt_kw = {"center": "03", "annotator": "1"}
net = UNet3D(in_channels=1, out_channels=1, channels=(8, 16, 32), spatial_dims=3, random_state=0)
train_segmentation_model(
    net,
    sim.sample(n_train, **src_kw, random_state=1),
    epochs=epochs,
    random_state=0,
    progress=False,
)
network = SegmentationAdapter(net, progress=False)


def pipeline(environment):
    """The pipeline's masks: the network's, without components under 3 voxels."""
    masks = np.asarray(network.predict(environment))
    out = np.zeros_like(masks)
    for i, mask in enumerate(masks):
        labels, k = ndimage.label(mask)
        sizes = ndimage.sum(mask, labels, range(1, k + 1))
        out[i] = np.isin(labels, 1 + np.flatnonzero(sizes >= 3))
    return out


# %%
# Each site as it would reach you: images, masks and the pipeline's saved predictions
# as NIfTI files, and its probabilities as nnU-Net saves them: an ``.npz`` holding
# ``probabilities`` of shape (classes, z, y, x), the axes in the reverse of nibabel's
# order, in float16. All listed in a manifest.
folder = Path(tempfile.mkdtemp(prefix="shiftattr-saved-"))


def write_site(name, environment):
    site = folder / name
    site.mkdir()
    rows = ["case_id,image,label,prediction,probability"]
    lesion = np.asarray(network.predict_proba(environment))
    for i, pred in enumerate(pipeline(environment)):
        for stem, data in (
            (f"{i:03d}_flair", environment["X"][i]),
            (f"{i:03d}_seg", environment["Y"][i].astype(np.uint8)),
            (f"{i:03d}_pred", pred),
        ):
            nib.save(nib.Nifti1Image(data, np.eye(4)), str(site / f"{stem}.nii.gz"))
        classes = np.stack([1.0 - lesion[i], lesion[i]]).transpose(0, 3, 2, 1)
        np.savez_compressed(site / f"{i:03d}.npz", probabilities=classes.astype(np.float16))
        rows.append(
            f"{i:03d},{i:03d}_flair.nii.gz,{i:03d}_seg.nii.gz,{i:03d}_pred.nii.gz,{i:03d}.npz"
        )
    (site / "manifest.csv").write_text("\n".join(rows) + "\n")
    return site


write_site("centre-01", sim.sample(n, **src_kw, random_state=2))
write_site("centre-03", sim.sample(n, **tgt_kw, random_state=3))

# %%
# Read the sites back (lazily: a case is read when needed) and score the saved
# predictions. The probabilities become node ``P_proba``, which the scorer reads for
# the confidence and entropy summaries; the masks scored stay the saved ones. The
# network is not used from here on.
saved = {"prediction_column": "prediction", "probability_column": "probability"}
source = load_folder(folder / "centre-01", name="centre 01", **saved)
target = load_folder(folder / "centre-03", name="centre 03", **saved)
print(source, target, sep="\n")
scorer = SavedPredictions(
    "dice", metric_params={"empty": "one"}, probability_node="P_proba", progress=False
)
dice_source, dice_target = scorer.score(source), scorer.score(target)
print(f"Dice on source {dice_source.mean():.3f}, on target {dice_target.mean():.3f}")

# %%
# Attribute. The graph is ``X -> Y`` (the files carry no covariates); the image ratio
# reads the predictions' own summaries (volume, components, confidence, entropy) beside
# the image statistics, as ``shiftattr run`` does by default.


def attribute(scorer):
    images = ImageStatsRatio(extra_features={"X": scorer.output_features}, random_state=0)
    return sa.attribute(
        segmentation_graph(with_covariates=False),
        source,
        target,
        metric=dice_source,
        target_metric=dice_target,
        estimators={"X": images, "Y": images},
        n_folds=3,
        n_bootstrap=30,
        metric_name="Dice",
        progress=False,
        random_state=0,
    )


result = attribute(scorer)
print(result.summary())

# %%
# The same from the masks alone (``probability_node=None``): the summaries then hold
# no confidence or entropy, only volumes and components.
masks_only = attribute(SavedPredictions("dice", probability_node=None, progress=False))

# %%
# The truth: every coalition simulated directly and scored by the same pipeline (the
# network and the post-processing), against each case's mask.


def pipeline_dice(environment):
    return sa.metrics.dice(pipeline(environment), environment["Y"], empty=1.0)


truth = sim.true_attribution(
    pipeline_dice, src_kw, tgt_kw, n=truth_n, random_state=4, mechanisms=["X", "Y"], progress=False
)
print(truth_table(result, truth.to_dict()))
print("from the masks alone:")
print(truth_table(masks_only, truth.to_dict()))

# %%
ax = result.plot(title="Saved predictions: centre 01 → 03", truth=truth.values)
plt.tight_layout()
if __name__ == "__main__":
    Path(args.out).mkdir(parents=True, exist_ok=True)
    plt.savefig(Path(args.out) / "saved_predictions.png", dpi=120)
    print(f"figure written to {Path(args.out) / 'saved_predictions.png'}")
shutil.rmtree(folder)  # the sites' files, read lazily until here
