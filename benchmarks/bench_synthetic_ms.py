"""Synthetic MS validation: estimated vs true Shapley attributions of a fixed segmenter.

``python benchmarks/bench_synthetic_ms.py [--quick]
[--estimators iw,regression,mr,iw+paired,mr+paired] [--n 100,300] [--seeds 0,1,2]
[--scenarios NAME,...] [--reuse-truth] [--merge] [--merge-from DIR ...] [--rescore]``

The world is :class:`shiftattr.datasets.SyntheticMS` (presets plus three custom specs:
a far-away scanner, a strongly under-segmenting annotator, an older low-lesion-load
population) and the graph ``D -> X -> Y`` with ``Y <- {X, D}``
(:func:`shiftattr.pipeline.segmentation_graph`): mechanisms ``D`` (population), ``X``
(acquisition), ``Y`` (annotation).

**Model.** One small :class:`~shiftattr.segmentation.UNet3D` per source center, trained
once with :func:`~shiftattr.segmentation.train_segmentation_model` on annotator 1 and
the default population, its weights cached in ``benchmarks/results/cache/`` under a name
that encodes every training setting. The 16³ U-Nets' weights are in the repository since
2026-12-01: trained again on another CPU generation (other floating-point kernels), the
same seeds give other weights, and the runs of ``results/synthetic_ms.json`` were made on
weights that were not kept. New 16³ variants are measured on the kept weights, into
``results/synthetic_ms_shipped.json`` (section 5d of ``RESULTS.md``). It is scored by
:class:`~shiftattr.segmentation.SegmentationAdapter` (Dice, empty/empty = 1).

**Truth.** :meth:`SyntheticMS.true_attribution` (all eight coalitions simulated with
common random numbers, scored by the same model), in independent batches until the
largest Monte-Carlo standard error falls below ``--truth-se`` or ``--truth-max`` cases
are used. It is stored per scenario in ``results/synthetic_ms.json`` with a key of every
setting it depends on (including a hash of the model weights); ``--reuse-truth`` takes
it from there when the key matches.

**Estimation.** Per scenario, seed, ``N`` (cases per environment) and estimator:
fresh source and target samples, the model's Dice on both, then
``shiftattr.attribute(graph, source, target, metric=..., target_metric=...,
estimators={"X": ImageStatsRatio(statistics="basic"), "Y": ...}, bootstrap="fixed", ...)``
(the basic statistics, pinned: the library's default has been ``"extended"`` since
2026-11-30; those runs are the ``+ext`` variants below).
``--estimators`` picks the value estimator, passed as ``method=`` (``"iw"``,
``"regression"``, ``"mr"``; the issue called the keyword ``estimator=``, also accepted);
``regression`` and ``mr`` get ``features={"X": adapter.output_features}`` (the model's own
output summarised per case). Without such a keyword only ``iw`` runs and the others are
recorded as *skipped*, not failed.

**Paired variants.** ``iw+paired`` and ``mr+paired`` are ``iw`` and ``mr`` with paired
counterfactual substitution of the annotation mechanism, as the pipeline does it
(:func:`shiftattr.pipeline.run`): the source is sampled with
``annotate_all=[<target annotator>]``, the target with ``annotate_all=[<source
annotator>]`` (the same images also read by the other side's annotator, stored as
``env.counterfactual("annotator-<name>", "Y")``), and ``attribute`` gets
``paired={"Y": ("annotator-<target>", "annotator-<source>")}`` and the callable
``metric=adapter.score``. Everything else is as in the unpaired runs, on the same samples
(``annotate_all`` adds the counterfactual readings and leaves ``D``, ``X``, ``Y`` as they
are). They run only for scenarios whose source and target annotators differ; for the others
they are recorded under ``not_applicable``, not as failures.

**Both-samples weighting** (``mis``, ``mis+outputs``; ``mis+oracle`` opt-in):
``attribute(method="mis")``, the ratios of D, X and Y weighting the source and the target
cases together with balance-heuristic weights (:class:`shiftattr.value.BalancedValue`);
the same samples and folds as ``iw``, bootstrap interval.

**Offset variants** (``iw+offset``, ``mis+offset``, ``mr+pooled+offset``):
``attribute(..., conditional_ratios="offset")``, each conditional ratio fitted as one
penalised logistic model on the joint set's features starting from the parents'
log-ratio (:mod:`shiftattr.ratios.offset`) instead of the difference of two classifiers.

**Extended-statistics variants** (``iw+ext``, ``mis+ext``, ``mr+pooled+ext``,
``iw+ext+outputs``, ``mis+ext+outputs``, ``mr+pooled+ext+outputs``): both image ratio estimators are
``ImageStatsRatio(statistics="extended")``, the basic statistics plus image-quality
measures (:mod:`shiftattr.ratios.image_quality`) with linear-logistic candidates;
``+outputs`` as below; ``+ext+mic``: also ``mask_image_contrast=True`` (the image's
contrast inside, at and around the mask in the annotation ratio); ``+ext+offset``: also
``conditional_ratios="offset"``; ``iw+ext+refit``, ``mis+ext+refit``,
``mis+ext+outputs+refit``, ``iw+ext+outputs+refit`` (opt-in): the refit bootstrap on top
(the last is what the command line runs by default since 2026-11-30). Same samples and folds as
the others.

**Prognostic-feature variants** (opt-in, ``<method>+ext+outputs`` plus): ``+metric``, the
annotation ratio's joint set ``(D, X, Y)`` also sees the per-case Dice itself
(``extra_features={"Y": adapter.score}``), a fixed function of the node set's values
through the model; ``+selfdice``, the image's features also hold the model's Dice against
its own probabilities (``2 sum(mask * p) / (sum(mask) + sum(p))``), a label-free guess of
the Dice; ``+selfdice+metric``, both. The question they answer: do the weights
under-correct because the classifier does not see the direction the metric varies in?
``mis+ext+outputs+contrast`` (opt-in): the image's features also hold
:func:`lesion_contrast`, the contrast of the model's predicted lesions against the tissue
around them and their edges' sharpness per axis: the lesion contrast and slice blur the
other statistics recover least.

**Outputs variants** (``iw+outputs``, ``mr+outputs``): the image ratio estimators also
see the model's output summaries wherever the image is in their node set,
``ImageStatsRatio(extra_features={"X": adapter.output_features})`` for ``X`` and ``Y``: the
acquisition ratio then balances what the Dice depends on (the features ``mr``'s
regressions see), and the annotation ratio is conditioned on them as well.

**Repeats variants** (``iw+repeats``, ``mr+repeats``; opt-in through ``--estimators``):
``attribute(..., n_repeats=5)``, cross-fitting on five fold assignments, the first of
them the plain run's: the values are the mean over the repeats and the fixed-bootstrap
interval is widened by their spread (:mod:`shiftattr.repeats`).

**Bias-aware variants** (``mr+biasaware``, ``regression+biasaware``; opt-in through
``--estimators``): the method with
``attribute(..., interval="bias_aware")``. The samples, folds and point estimates are
those of ``mr`` / ``regression``; the interval is ``value ± se * cv(b / se)`` with ``b`` the distance to
importance weighting with the same ratios (:mod:`shiftattr.bias_aware`). Every
``regression``/``mr`` run records that distance as ``bias_bound``. Every other variant
passes ``interval="bootstrap"``: since this benchmark, the library's default for ``mr``
is the bias-aware interval, so ``mr+biasaware`` is what ``attribute(method="mr")``
reports and ``mr`` keeps the bootstrap interval it was first measured with.
``mis+ext+outputs+refit+biasaware`` (opt-in): ``mis+ext+outputs+refit`` with the
bias-aware interval, its ``se`` from the refit bootstrap (``mis`` runs record their
``bias_bound`` too).

**Pooled variant** (``mr+pooled``; run by default, as the library's ``mr`` on images): ``mr`` with
``attribute(..., pooled_regressions=True)``: every nested regression is fitted on both
environments' cases, the other environment's weighted by the conditional density ratio
of the regression's level (:mod:`shiftattr.value.nested`). Same samples, folds and ratios
as ``mr``; bootstrap interval. Every other variant passes ``pooled_regressions=False``:
on these measurements the library's default became ``"auto"``, which pools ``mr`` on
images, so ``mr+pooled`` (with the bias-aware interval) is what ``attribute(method="mr")``
does here and ``mr`` keeps the unpooled regressions it was first measured with.

**CNN-regression variant** (``mr+pooled+cnn``; opt-in): ``mr+pooled`` whose nested
regressions read the image's voxels with :class:`shiftattr.value.CNNRegressor`
(``features={"X": raw_features("X")}``) instead of the model's output summaries; the
same samples, folds and ratios, pooled regressions, bootstrap interval.

**CNN-discriminator variants** (``iw+cnnratio``, ``mis+cnnratio``; opt-in): the image
ratios of ``X`` and ``Y`` come from :class:`shiftattr.ratios.CNNDiscriminator` with the
settings ``shiftattr run`` uses for ``image_estimator = "cnn"`` (the defaults of
:class:`shiftattr.config.DiscriminatorConfig`) instead of the image statistics; the
population ratio is the default classifier's as everywhere. Fixed bootstrap (a refit
would train ``n_bootstrap`` more CNNs per node set and fold).

**Both-samples MR variants** (``mr+pooled+ext+both``, ``mr+pooled+ext+outputs+both``,
``mr+both+oracle``, ``mr+pooled+ext+outputs+both+paired``; opt-in): ``mr+pooled+ext``,
``mr+pooled+ext+outputs``, ``mr+oracle`` and ``mr+pooled+ext+outputs+paired`` (opt-in,
the paired runs' like-for-like baseline) with ``attribute(..., both_samples=True)``
(``D`` and ``X`` then, ``Y`` being substituted in the paired one): every term of the
multiply-robust sum is taken over the source and the target cases together with
balance-heuristic weights (:mod:`shiftattr.value.robust`). Same samples, folds, ratios
and regressions as the runs they extend; bootstrap interval; every run records its
``bias_bound``, the larger distance to ``iw`` and to ``mr`` over each environment's own
cases. ``mr+pooled+ext+outputs+bothDX`` (opt-in) takes only the terms of ``D`` and ``X``
over both samples (``both_samples=["D", "X"]``) and the annotation's over its own
environment's cases, which needs no annotation ratio in that term.

**The paired default as it runs** (``mr+pooled+ext+outputs+both+refit+biasaware+paired``;
opt-in): ``mr+pooled+ext+outputs+both+paired`` with the refit bootstrap and the
bias-aware interval, what ``shiftattr run`` reports with ``paired = ["Y"]`` (with the
benchmark's folds and ``n_bootstrap`` replicates instead of the command line's 5 and
200). The marks ``+refit``, ``+biasaware`` and ``+paired`` are recognised wherever they
stand in a name.

**Oracle variants** (``iw+oracle``, ``mr+oracle``; opt-in): no ratio is estimated;
``attribute(..., known_ratios=...)`` gets every mechanism's true log-ratio between the
scenario's source and target from :meth:`SyntheticMS.true_log_ratio` (the densities of
the hidden per-case draws). Same samples, folds and regressions as ``iw`` / ``mr``. What
error remains with perfect ratio estimators: the gap to ``iw`` / ``mr`` is the ratio
estimators' share of the error. ``mis+ext+outputs+oracle-D``, ``-X``, ``-Y`` (opt-in)
give the true ratio of one mechanism only and estimate the others as
``mis+ext+outputs`` does: which estimated ratio costs how much.

**Cross-checked variant** (``iw+check``; opt-in): ``iw`` with
``attribute(..., cross_check=True)``: the plain regression estimate (the features of
``regression``) is fitted beside it and ``methods_disagree`` raised where the two differ
beyond the bootstrap interval of their difference. Same samples, folds, ratios and
values as ``iw``; only the warnings (and the time) differ.

**Merging.** ``--merge`` reads the existing ``results/synthetic_ms.json`` and replaces only
the runs this invocation produced (same scenario, estimator, ``N`` and seed), keeping every
other run, scenario and truth; summaries, targets and the figure are recomputed from the
merged runs. The settings that change the numbers (shape, bootstraps, folds, truth
settings, mode) must match the file's. To run variants side by side on the two cores,
copy the results file into one folder per process, run each with ``--merge --out
FOLDER``, then ``--merge-from FOLDER ...`` (no attribution) brings every new merge entry
back into ``--out`` with its own runs, command and seconds (:func:`absorb`). New 16³
variants go into ``results/synthetic_ms_shipped.json``, whose segmenters the repository
holds: copy it as ``synthetic_ms.json`` into the scratch folders, run there with
``--reuse-truth --merge`` and the truth settings it records, bring the folders together
with ``--merge-from`` and copy the result back (``results/synthetic_ms.json`` refuses
runs on these weights, :func:`check_same_models`).

**Re-scoring.** ``--rescore`` runs no attribution: it recomputes each stored scenario's
truth with the ``--truth-*`` settings (for the same cached model weights) and re-scores
every stored run against it. Estimates, intervals and warnings do not depend on the
truth, so a quick run can be judged against full-precision truths at the cost of the
truth simulation alone; later ``--merge`` runs must then pass the same truth settings.

**Scored.** Per run: estimated and true values, absolute errors, whether each 95 % CI
covers the truth, whether the dominant mechanism (largest ``|value|``) is right (only
when the truth has a clear one), Kish ESS fractions, out-of-fold AUCs, warning codes
(a run is *flagged* when ``attribute`` raised any diagnostic warning), wall time.
Results: ``benchmarks/results/synthetic_ms.json`` and ``synthetic_ms.png``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy / torch load their pools
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import hashlib
import inspect
import json
import statistics
import sys
import time
import traceback
import warnings
import zlib
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

import shiftattr
from benchmarks._common import RESULTS_DIR, blas_threads, now_utc, read_json, write_json
from shiftattr.attribution import imprecise_mechanisms
from shiftattr.datasets import SyntheticMS
from shiftattr.datasets.synthetic_ms import (
    ANNOTATOR_PRESETS,
    CENTER_PRESETS,
    POPULATION_PRESETS,
    SIMULATOR_VERSION,
    AnnotatorSpec,
    CenterSpec,
    PopulationSpec,
)
from shiftattr.pipeline import segmentation_graph
from shiftattr.ratios import ImageStatsRatio
from shiftattr.results import ShiftAttrWarning
from shiftattr.segmentation import (
    SegmentationAdapter,
    UNet3D,
    train_segmentation_model,
)

torch.set_num_threads(1)

NAME = "synthetic_ms"
CACHE_DIR = RESULTS_DIR / "cache"
MECHANISMS = ("D", "X", "Y")
ESTIMATORS = (
    "iw",
    "regression",
    "mr",
    "iw+paired",
    "mr+paired",
    "iw+refit",
    "mr+refit",
    "iw+outputs",
    "mr+outputs",
    "iw+repeats",
    "mr+repeats",
    "mr+biasaware",
    "mr+pooled",
    "iw+oracle",
    "mr+oracle",
    "regression+biasaware",
    "iw+check",
    "mr+pooled+cnn",
    "mis",
    "mis+outputs",
    "mis+oracle",
    "iw+offset",
    "mis+offset",
    "mr+pooled+offset",
    "iw+ext",
    "mis+ext",
    "mr+pooled+ext",
    "iw+ext+outputs",
    "mis+ext+outputs",
    "mr+pooled+ext+outputs",
    "iw+ext+mic",
    "mis+ext+mic",
    "iw+ext+offset",
    "mis+ext+offset",
    "iw+ext+refit",
    "mis+ext+refit",
    "mis+ext+outputs+refit",
    "iw+ext+outputs+refit",
    "iw+ext+outputs+metric",
    "mis+ext+outputs+metric",
    "iw+ext+outputs+selfdice",
    "mis+ext+outputs+selfdice",
    "iw+ext+outputs+selfdice+metric",
    "mis+ext+outputs+selfdice+metric",
    "mis+ext+outputs+oracle-D",
    "mis+ext+outputs+oracle-X",
    "mis+ext+outputs+oracle-Y",
    "mis+ext+outputs+refit+biasaware",
    "iw+cnnratio",
    "mis+cnnratio",
    "mr+pooled+ext+both",
    "mr+pooled+ext+outputs+both",
    "mr+both+oracle",
    "mr+pooled+ext+outputs+paired",
    "mr+pooled+ext+outputs+both+paired",
    "iw+ext+outputs+paired",
    "mr+pooled+ext+outputs+both+refit+biasaware+paired",
    "mr+pooled+ext+outputs+bothDX",
    "mis+ext+outputs+vsm",
    "mis+ext+outputs+offset",
    "mis+ext+outputs+vsm+offset",
    "mis+ext+outputs+ychild+offset",
    "mis+ext+outputs+yown+offset",
    "mis+ext+outputs+refit+biasaware+ychild+offset",
    "mis+ext+outputs+offsetchild",
    "mis+ext+outputs+refit+biasaware+offsetchild",
    "mis+ext+outputs+contrast",
)
#: Estimator names with paired counterfactual substitution of ``Y``: ``<method>+paired``.
PAIRED_SUFFIX = "+paired"
#: Estimator names whose intervals come from the refit bootstrap (every replicate refits
#: the ratio estimators and regressions): ``<method>+refit``. Every other run uses the
#: fixed bootstrap. Opt-in (``--estimators``): each run costs ``n_bootstrap`` fits.
REFIT_SUFFIX = "+refit"
#: Estimator names whose image ratio estimators also see the model's output summaries
#: (``ImageStatsRatio(extra_features={"X": adapter.output_features})`` for ``X`` and
#: ``Y``): ``<method>+outputs``, or ``+outputs`` before ``+refit``.
OUTPUTS_SUFFIX = "+outputs"
#: Estimator names with repeated cross-fitting (``attribute(n_repeats=N_REPEATS)``):
#: ``<method>+repeats``. Opt-in (``--estimators``): each run costs ``N_REPEATS`` fits.
REPEATS_SUFFIX = "+repeats"
N_REPEATS = 5
#: Estimator names whose ``ci`` is the bias-aware interval (``attribute(interval=
#: "bias_aware")``): ``<method>+biasaware``. Opt-in (``--estimators``): the same point
#: estimates as ``<method>``, only the interval differs.
BIASAWARE_SUFFIX = "+biasaware"
#: Estimator names whose nested regressions are pooled over both environments
#: (``attribute(pooled_regressions=True)``): ``<method>+pooled``. Run by default since
#: ``mr+pooled`` is what ``attribute(method="mr")`` does on images.
POOLED_SUFFIX = "+pooled"
#: Estimator names given the simulator's true density ratios of every mechanism
#: (``attribute(known_ratios=...)`` with :meth:`SyntheticMS.true_log_ratio`) instead of
#: estimating them: ``<method>+oracle``, the error left with perfect ratio estimators.
#: Opt-in.
ORACLE_SUFFIX = "+oracle"
#: Estimator names given the true ratio of one mechanism only, the others estimated as in
#: ``<method>``: ``<method>+oracle-<node>``, e.g. ``mis+ext+outputs+oracle-Y``. Beside
#: ``<method>`` and ``<method>+oracle`` they split the ratio estimators' share of the error
#: by mechanism. Opt-in.
ORACLE_NODE_MARK = "+oracle-"
#: Estimator names cross-checked by the plain regression estimate
#: (``attribute(cross_check=True)``): ``iw+check``. Opt-in.
CHECK_SUFFIX = "+check"
#: Estimator names whose nested regressions read the image's voxels with a small CNN
#: (``features={"X": raw_features("X")}``, ``regressor=CNNRegressor(...)``) instead of
#: the model's output summaries: ``mr+pooled+cnn`` (pooled, as ``mr`` is by default on
#: images, so that it differs from ``mr+pooled`` only in the regressions). Opt-in.
CNN_SUFFIX = "+cnn"
#: Estimator names whose image ratios (``X`` and ``Y``) come from a CNN discriminator
#: (:class:`~shiftattr.ratios.CNNDiscriminator`, the command line's ``image_estimator =
#: "cnn"`` settings) instead of the image statistics: ``<method>+cnnratio``. Opt-in.
CNN_RATIO_SUFFIX = "+cnnratio"
#: Estimator names whose conditional ratios are fitted with the parents' log-ratio as an
#: offset (``attribute(conditional_ratios="offset")``): ``<method>+offset``.
OFFSET_SUFFIX = "+offset"
#: Estimator names whose image ratio estimators use the extended image statistics
#: (``ImageStatsRatio(statistics="extended")``, with linear-logistic candidates):
#: ``<method>+ext`` (``+ext+outputs``: also the model's output summaries).
EXTENDED_MARK = "+ext"
#: Estimator names whose mask statistics also hold the image contrast inside, at and
#: around the mask (``ImageStatsRatio(mask_image_contrast=True)``): ``<method>+ext+mic``.
MIC_MARK = "+mic"
#: Estimator names whose annotation ratio also sees the per-case metric itself (the
#: model's Dice against the node set's reference mask, ``extra_features={"Y":
#: adapter.score}``) next to the model's outputs for ``X``: ``<method>+ext+outputs+metric``.
#: Opt-in.
METRIC_MARK = "+metric"
#: Estimator names whose image features also hold the model's Dice against its own
#: probabilities (:func:`_with_self_dice`): ``<method>+ext+outputs+selfdice``. Opt-in.
SELFDICE_MARK = "+selfdice"
#: Estimator names whose image features also hold the image's contrast and edge
#: sharpness at the model's predicted lesions (:func:`_with_contrast`):
#: ``<method>+ext+outputs+contrast``. Opt-in.
CONTRAST_MARK = "+contrast"
#: Estimator names whose annotation ratio also sees how the mask agrees with the model's
#: prediction (``extra_features={"Y": adapter.agreement_features}``) next to the model's
#: outputs for ``X``: ``<method>+ext+outputs+vsm`` (``+vsm+offset``: with the offset
#: conditional ratios). Opt-in.
VSM_MARK = "+vsm"
#: Estimator names whose annotation ratio's offset model reads ``Y``'s own features only
#: (its mask statistics and the agreement, :class:`_AnnotationOnly`), not the image's:
#: ``<method>+ext+outputs+ychild+offset``. The offset model's learnt term then cannot
#: take up what the parents' (image's) ratio missed. The acquisition's offset model keeps
#: the joint set's features (``+offsetchild`` is the library's version). Opt-in.
YCHILD_MARK = "+ychild"
#: As ``+ychild``, without the agreement: the annotation's offset model reads ``Y``'s
#: mask statistics alone: ``<method>+ext+outputs+yown+offset``. Opt-in.
YOWN_MARK = "+yown"
#: Estimator names with ``attribute(conditional_ratios="offset_child")`` and the
#: annotation's agreement with the prediction among ``Y``'s features, as the command line
#: builds them: ``<method>+ext+outputs+offsetchild``. Opt-in.
OFFSET_CHILD_MARK = "+offsetchild"
#: Estimator names whose ``mr`` takes every term over both environments' cases
#: (``attribute(both_samples=True)``): ``mr+...+both``. Opt-in.
BOTH_MARK = "+both"
#: Estimator names whose ``mr`` takes the terms of ``D`` and ``X`` over both
#: environments' cases and the annotation's over its own environment's
#: (``attribute(both_samples=["D", "X"])``): ``mr+...+bothDX``. Opt-in.
BOTH_DX_MARK = "+bothDX"
#: Variants without an opt-in mark that still only run when named (measured once, no gain).
OPT_IN = (
    "mr+pooled+ext+outputs",
    "mr+pooled+ext+outputs+paired",
    "iw+ext+outputs+paired",
    "mis+ext+outputs+offset",
)


def _marked(estimator: str, mark: str) -> bool:
    """Whether ``mark`` (``"+paired"``, ``"+refit"``, ...) is one of the name's parts,
    wherever it stands (``mr+...+refit+biasaware+paired`` has all three)."""
    return mark.removeprefix("+") in estimator.split("+")[1:]


#: What runs when ``--estimators`` is not given.
DEFAULT_ESTIMATORS = tuple(
    e
    for e in ESTIMATORS
    if not _marked(e, REFIT_SUFFIX)
    and not _marked(e, BIASAWARE_SUFFIX)
    and not e.endswith(
        (
            REPEATS_SUFFIX,
            ORACLE_SUFFIX,
            *(ORACLE_NODE_MARK + node for node in MECHANISMS),
            CHECK_SUFFIX,
            CNN_SUFFIX,
            CNN_RATIO_SUFFIX,
            METRIC_MARK,
            SELFDICE_MARK,
        )
    )
    and e not in OPT_IN
    and BOTH_MARK not in e
    and not _marked(e, VSM_MARK)
    and not _marked(e, YCHILD_MARK)
    and not _marked(e, YOWN_MARK)
    and not _marked(e, OFFSET_CHILD_MARK)
    and not _marked(e, CONTRAST_MARK)
)
NOT_APPLICABLE_REASON = (
    "source and target annotators are the same: no counterfactual annotation to pair"
)
ERROR_FLAG_THRESHOLD = 0.02  # a run whose largest absolute error exceeds this must be flagged
#: The flagging target again, counting the `imprecise` warnings of attribute(tolerance=0.02).
TOLERANCE_TARGET = "every run with error > 0.02 flagged, with attribute(tolerance=0.02)"

#: The targets of issue 4.
TARGETS = {
    "mae": 0.01,  # mean absolute error <= 0.01 Dice
    "dominant": 0.95,  # dominant mechanism right in >= 95 % of runs
    "coverage": 0.90,  # 95 % CIs cover the truth in >= 90 %
    "flagged": 1.0,  # every run with error > 0.02 flagged
}

# -- the simulated world -----------------------------------------------------------------
#: Custom specs (the presets are in :mod:`shiftattr.datasets.synthetic_ms`).
FAR_CENTER = CenterSpec(
    name="far",  # fainter lesions, twice the noise, much more blur: little overlap with 01
    lesion_contrast=(0.45, 0.3),
    noise_sd=(0.11, 0.3),
    bias_strength=(0.2, 0.4),
    blur_sigma=(0.9, 0.3),
    slice_blur=(0.7, 0.4),
)
STRONG_ANNOTATOR = AnnotatorSpec(
    name="strong-under",  # erodes outlines by ~0.8 voxel and misses faint / small lesions
    boundary=(-0.8, 0.3),
    detection_threshold=(3.5, 0.3),
    min_lesion_volume=(4.0, 0.5),
)
OLD_LOW_LOAD = PopulationSpec(
    name="older-low-load",  # older patients with fewer, smaller lesions (AUC of D ~0.93)
    age=(0.75, 0.9),
    lesion_load=(-1.5, 0.8),
)


@dataclass(frozen=True)
class Scenario:
    """A source and a target environment of :class:`SyntheticMS` (``sample`` kwargs)."""

    name: str
    kind: str
    description: str
    source: dict[str, Any]
    target: dict[str, Any] = field(default_factory=dict)

    def env(self, side: str) -> dict[str, Any]:
        """Full kwargs of one side (defaults filled in)."""
        out = {"center": "01", "annotator": "1", "population": "default"}
        out.update(self.source if side == "source" else {**self.source, **self.target})
        return out

    @property
    def annotation_shifted(self) -> bool:
        """Whether source and target annotators differ (paired ``Y`` applies)."""
        return self.env("source")["annotator"] != self.env("target")["annotator"]

    def paired_keys(self) -> dict[str, tuple[str, str]]:
        """``paired=`` for ``attribute``: the counterfactual readings of ``Y`` by the other
        side's annotator (as :func:`shiftattr.pipeline.run` builds it)."""
        src, tgt = self.env("source")["annotator"], self.env("target")["annotator"]
        return {"Y": (f"annotator-{tgt}", f"annotator-{src}")}

    @property
    def shifted(self) -> list[str]:
        """The mechanisms whose spec differs between source and target."""
        s, t = self.env("source"), self.env("target")
        keys = {"D": "population", "X": "center", "Y": "annotator"}
        return [m for m in MECHANISMS if s[keys[m]] != t[keys[m]]]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "acq_01_to_03", "acquisition", "scanner change, center 01 -> 03", {}, {"center": "03"}
    ),
    Scenario(
        "acq_08_to_03",
        "acquisition",
        "scanner change, center 08 -> 03 (model trained on 08)",
        {"center": "08"},
        {"center": "03"},
    ),
    Scenario(
        "acq_01_to_07_mild",
        "acquisition",
        "mild scanner change, center 01 -> 07",
        {},
        {"center": "07"},
    ),
    Scenario(
        "ann_1_to_2",
        "annotation",
        "annotator 1 -> 2 (under-segments, misses faint lesions)",
        {},
        {"annotator": "2"},
    ),
    Scenario(
        "ann_4_to_3",
        "annotation",
        "annotator 4 -> 3 (over-segments; Dice rises a little)",
        {"annotator": "4"},
        {"annotator": "3"},
    ),
    Scenario(
        "ann_strong",
        "annotation (strong)",
        "annotator 1 -> custom strong-under (erodes ~0.8 voxel, misses faint/small lesions)",
        {},
        {"annotator": "strong-under"},
    ),
    Scenario(
        "pop_older_low_load",
        "population",
        "population default -> custom older-low-load (age +0.75 sd, lesion load -1.5 sd)",
        {},
        {"population": "older-low-load"},
    ),
    Scenario(
        "mixed_acq_ann",
        "mixed",
        "center 01 -> 03 and annotator 1 -> 6 (opposite signs: X costs Dice, Y adds a little)",
        {},
        {"center": "03", "annotator": "6"},
    ),
    Scenario(
        "all_three",
        "mixed (all three)",
        "center 01 -> 03, annotator 1 -> 5, population default -> older-low-load",
        {},
        {"center": "03", "annotator": "5", "population": "older-low-load"},
    ),
    Scenario(
        "little_overlap",
        "little overlap",
        "center 01 -> custom far (faint lesions, 2x noise, heavy blur)",
        {},
        {"center": "far"},
    ),
    Scenario("null", "null", "nothing shifts (01/1/default on both sides)", {}, {}),
)


def make_simulator(shape: tuple[int, ...]) -> SyntheticMS:
    """The simulator with the presets and the custom specs."""
    return SyntheticMS(
        shape=shape,
        centers={**CENTER_PRESETS, FAR_CENTER.name: FAR_CENTER},
        annotators={**ANNOTATOR_PRESETS, STRONG_ANNOTATOR.name: STRONG_ANNOTATOR},
        populations={**POPULATION_PRESETS, OLD_LOW_LOAD.name: OLD_LOW_LOAD},
        random_state=0,
    )


def spec_dump(sim: SyntheticMS, env: dict[str, Any]) -> dict[str, Any]:
    """The full parameter sets behind an environment (for the truth key and the JSON)."""
    return {
        "center": sim.centers[env["center"]].model_dump(),
        "annotator": sim.annotators[env["annotator"]].model_dump(),
        "population": sim.populations[env["population"]].model_dump(),
    }


def _seed(*parts: Any) -> int:
    """A stable seed from names and numbers (independent data per scenario/seed/N)."""
    return zlib.crc32(json.dumps(parts).encode()) % (2**31 - 1)


# -- the model ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSettings:
    """How the per-center U-Net is trained (every field is part of its cache name)."""

    shape: tuple[int, ...]
    n_train: int = 200
    epochs: int = 30
    channels: tuple[int, ...] = (8, 16, 32)
    seed: int = 0
    train_data_seed: int = 101

    def key(self, center: str) -> str:
        shape = "x".join(map(str, self.shape))
        ch = "-".join(map(str, self.channels))
        return (
            f"unet3d_center{center}_shape{shape}_n{self.n_train}_ep{self.epochs}_ch{ch}"
            f"_seed{self.seed}_data{self.train_data_seed}_ann1_popdefault"
        )


def get_model(
    sim: SyntheticMS, center: str, settings: ModelSettings, log: list[str]
) -> tuple[UNet3D, dict[str, Any]]:
    """Load the cached U-Net of ``center`` or train and cache it."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    key = settings.key(center)
    path = CACHE_DIR / f"{key}.pt"
    meta = CACHE_DIR / f"{key}.json"  # training time, for the report
    net = UNet3D(
        in_channels=1,
        out_channels=1,
        channels=settings.channels,
        spatial_dims=len(sim.shape),
        random_state=settings.seed,
    )
    t0 = time.perf_counter()
    if path.exists():
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        net.eval()
        how = "loaded from cache"
    else:
        train = sim.sample(
            settings.n_train,
            center=center,
            annotator="1",
            population="default",
            random_state=settings.train_data_seed,
        )
        train_segmentation_model(
            net, train, epochs=settings.epochs, random_state=settings.seed, progress=False
        )
        torch.save(net.state_dict(), path)
        how = "trained"
        meta.write_text(json.dumps({"train_seconds": time.perf_counter() - t0}))
    seconds = time.perf_counter() - t0
    train_seconds = json.loads(meta.read_text())["train_seconds"] if meta.exists() else None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    log.append(f"model for center {center}: {how} in {seconds:.1f} s ({path.name})")
    print(log[-1], flush=True)
    return net, {
        "center": center,
        "cache_file": str(path.relative_to(RESULTS_DIR.parent.parent)),
        "weights_sha256_16": digest,
        "how": how,
        "seconds": seconds,
        "train_seconds": train_seconds,
    }


def make_adapter(net: UNet3D) -> SegmentationAdapter:
    return SegmentationAdapter(
        net, metric="dice", metric_params={"empty": "one"}, batch_size=16, progress=False
    )


# -- truth -------------------------------------------------------------------------------
def compute_truth(
    sim: SyntheticMS,
    scen: Scenario,
    adapter: SegmentationAdapter,
    n_first: int,
    n_max: int,
    se_target: float,
) -> dict[str, Any]:
    """Truth by independent batches of ``true_attribution`` until the MC s.e. is small.

    Batches are pooled by their sizes: value = weighted mean, s.e. = sqrt(sum n_i^2
    se_i^2) / sum n_i (independent batches).
    """
    t0 = time.perf_counter()
    batches: list[tuple[int, Any]] = []
    total = 0
    n_next = min(n_first, n_max)
    while n_next > 0:
        tr = sim.true_attribution(
            adapter.score,
            scen.env("source"),
            scen.env("target"),
            n=n_next,
            random_state=_seed("truth", scen.name, len(batches)),
            chunk_size=200,
            progress=False,
        )
        adapter.clear_cache()
        batches.append((n_next, tr))
        total += n_next
        se = _pool_se(batches)
        worst = max(se.values())
        if worst <= se_target or total >= n_max:
            break
        need = int(np.ceil(total * (worst / se_target) ** 2)) - total
        n_next = int(min(max(need, n_first // 2), n_max - total))
    values = {m: float(sum(n * tr.values[m] for n, tr in batches) / total) for m in MECHANISMS}
    se = _pool_se(batches)
    src = float(sum(n * tr.source_metric for n, tr in batches) / total)
    tgt = float(sum(n * tr.target_metric for n, tr in batches) / total)
    return {
        "values": values,
        "stderr": se,
        "total": float(sum(values.values())),
        "source_metric": src,
        "target_metric": tgt,
        "n": total,
        "n_batches": len(batches),
        "seconds": time.perf_counter() - t0,
        **dominance(values, se),
    }


def scenario_truth(
    sim: SyntheticMS,
    scen: Scenario,
    adapter: SegmentationAdapter,
    model_info: dict[str, Any],
    args: argparse.Namespace,
    old_truth: dict[str, Any],
) -> tuple[dict[str, Any], str, str]:
    """The scenario's truth: reused from ``old_truth`` when its key matches, else computed.

    Returns the truth, its key and how it was obtained (``"reused"`` or ``"computed"``).
    """
    key = truth_key(sim, scen, model_info, args.truth_n, args.truth_max, args.truth_se)
    cached = old_truth.get(scen.name, {}).get("truth")
    if cached and old_truth[scen.name].get("truth_key") == key:
        truth, how = cached, "reused"
    else:
        truth = compute_truth(sim, scen, adapter, args.truth_n, args.truth_max, args.truth_se)
        how = "computed"
    print(
        f"[{scen.name}] truth ({how}, n={truth['n']}, {truth['seconds']:.0f} s): "
        + ", ".join(f"{m} {truth['values'][m]:+.4f}±{truth['stderr'][m]:.4f}" for m in MECHANISMS)
        + f"; dominant {truth['dominant']}",
        flush=True,
    )
    return truth, key, how


def _pool_se(batches: list[tuple[int, Any]]) -> dict[str, float]:
    total = sum(n for n, _ in batches)
    return {
        m: float(np.sqrt(sum((n * tr.stderr[m]) ** 2 for n, tr in batches)) / total)
        for m in MECHANISMS
    }


def dominance(values: dict[str, float], se: dict[str, float]) -> dict[str, Any]:
    """The truth's dominant mechanism (largest |value|) and whether it is clear.

    Clear: the largest ``|value|`` exceeds the second by more than twice the MC s.e.
    of the difference, and is at least 0.005 Dice.
    """
    order = sorted(MECHANISMS, key=lambda m: -abs(values[m]))
    top, second = order[0], order[1]
    gap = abs(values[top]) - abs(values[second])
    clear = gap > 2 * float(np.hypot(se[top], se[second])) and abs(values[top]) >= 0.005
    return {"dominant": top if clear else None, "dominant_clear": bool(clear)}


def truth_key(
    sim: SyntheticMS,
    scen: Scenario,
    model_info: dict[str, Any],
    n_first: int,
    n_max: int,
    se_target: float,
) -> str:
    payload = {
        "shape": sim.shape,
        "sim_seed": sim.random_state,
        "source": spec_dump(sim, scen.env("source")),
        "target": spec_dump(sim, scen.env("target")),
        "model": model_info["weights_sha256_16"],
        "metric": "dice/empty=one",
        "n_first": n_first,
        "n_max": n_max,
        "se_target": se_target,
        # the simulator's world: its code is not hashed, its version is (pinned by a test)
        "version": SIMULATOR_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


# -- estimation --------------------------------------------------------------------------
def _method_keyword() -> str | None:
    """The keyword of ``attribute`` that selects the value estimator, if any.

    The issue called it ``estimator=``; the library named it ``method=``.
    """
    params = inspect.signature(shiftattr.attribute).parameters
    return next((k for k in ("method", "estimator") if k in params), None)


def is_paired(estimator: str) -> bool:
    """Whether ``estimator`` is a paired variant (``<method>+...+paired``)."""
    return _marked(estimator, PAIRED_SUFFIX)


def bootstrap_mode(estimator: str) -> str:
    """``"refit"`` for ``<method>+...+refit``, else ``"fixed"``."""
    return "refit" if _marked(estimator, REFIT_SUFFIX) else "fixed"


def is_bias_aware(estimator: str) -> bool:
    """Whether ``estimator`` reports the bias-aware interval (``<method>+...+biasaware``)."""
    return _marked(estimator, BIASAWARE_SUFFIX)


def base_method(estimator: str) -> str:
    """The value estimator behind a name: ``"mr+paired"``, ``"mr+refit"`` -> ``"mr"``."""
    return estimator.split("+", 1)[0]


def available_estimators() -> tuple[list[str], dict[str, str]]:
    """Estimators ``attribute`` supports here, and the reason for each one it does not."""
    params = inspect.signature(shiftattr.attribute).parameters
    has_method = _method_keyword() is not None
    available, skipped = [], {}
    for e in ESTIMATORS:
        if base_method(e) != "iw" and not has_method:
            skipped[e] = (
                "shiftattr.attribute has no method= / estimator= keyword in this checkout "
                "(only importance weighting exists)"
            )
        elif base_method(e) == "mis" and "mis" not in getattr(shiftattr.value, "ESTIMATORS", ()):
            skipped[e] = "shiftattr.attribute has no method='mis' in this checkout"
        elif is_paired(e) and "paired" not in params:
            skipped[e] = "shiftattr.attribute has no paired= keyword in this checkout"
        elif e.endswith(REPEATS_SUFFIX) and "n_repeats" not in params:
            skipped[e] = "shiftattr.attribute has no n_repeats= keyword in this checkout"
        elif is_bias_aware(e) and "interval" not in params:
            skipped[e] = "shiftattr.attribute has no interval= keyword in this checkout"
        elif oracle_nodes(e) and "known_ratios" not in params:
            skipped[e] = "shiftattr.attribute has no known_ratios= keyword in this checkout"
        elif e.endswith(POOLED_SUFFIX) and "pooled_regressions" not in params:
            skipped[e] = "shiftattr.attribute has no pooled_regressions= keyword in this checkout"
        elif e.endswith(CNN_RATIO_SUFFIX) and not hasattr(shiftattr.ratios, "CNNDiscriminator"):
            skipped[e] = "shiftattr.ratios has no CNNDiscriminator in this checkout"
        elif e.endswith(CNN_SUFFIX) and not hasattr(shiftattr.value, "raw_features"):
            skipped[e] = "shiftattr.value has no CNNRegressor / raw_features in this checkout"
        elif e.endswith(OFFSET_SUFFIX) and "conditional_ratios" not in params:
            skipped[e] = "shiftattr.attribute has no conditional_ratios= keyword in this checkout"
        elif (
            EXTENDED_MARK in e and "statistics" not in inspect.signature(ImageStatsRatio).parameters
        ):
            skipped[e] = "ImageStatsRatio has no statistics= keyword in this checkout"
        elif BOTH_MARK in e and "both_samples" not in params:
            skipped[e] = "shiftattr.attribute has no both_samples= keyword in this checkout"
        elif e.endswith(CHECK_SUFFIX) and "cross_check" not in params:
            skipped[e] = "shiftattr.attribute has no cross_check= keyword in this checkout"
        else:
            available.append(e)
    return available, skipped


def attribute_kwargs(estimator: str, adapter: SegmentationAdapter) -> dict[str, Any]:
    """The keywords selecting ``estimator``, limited to those ``attribute`` accepts.

    ``regression`` and ``mr`` regress the Dice on ``adapter.output_features`` for ``X``
    (the model's own output: predicted volume, confidence, boundary uncertainty,
    components) and on the library's default features (image statistics) elsewhere.
    """
    params = inspect.signature(shiftattr.attribute).parameters
    key = _method_keyword()
    kw: dict[str, Any] = {}
    method = base_method(estimator)
    if key is not None:
        kw[key] = method
        regresses = method not in ("iw", "mis") or estimator.endswith(CHECK_SUFFIX)
        if regresses and "features" in params and hasattr(adapter, "output_features"):
            kw["features"] = {"X": adapter.output_features}
    if estimator.endswith(REPEATS_SUFFIX):
        kw["n_repeats"] = N_REPEATS
    if "interval" in params:  # explicit: the runs stay comparable whatever the default
        kw["interval"] = "bias_aware" if is_bias_aware(estimator) else "bootstrap"
    if "pooled_regressions" in params:  # explicit, as the interval: since 2026-11-30 the
        # library's default ("auto") pools mr on images, so plain mr would change under it
        kw["pooled_regressions"] = POOLED_SUFFIX in estimator
    if _marked(estimator, BOTH_DX_MARK):
        kw["both_samples"] = ["D", "X"]
    elif _marked(estimator, BOTH_MARK):
        kw["both_samples"] = True
    if estimator.endswith(CHECK_SUFFIX):
        kw["cross_check"] = True
    if estimator.endswith(OFFSET_SUFFIX):
        kw["conditional_ratios"] = "offset"
    elif _marked(estimator, OFFSET_CHILD_MARK):
        kw["conditional_ratios"] = "offset_child"
    return kw


def ratio_estimators(estimator: str, adapter: SegmentationAdapter, seed: int) -> dict[str, Any]:
    """The image ratio estimators of a run: for ``<method>+outputs`` both also see the
    model's outputs wherever ``X`` is in their node set (the annotation ratio's parent
    set ``(D, X)`` is estimated by ``X``'s estimator, so both must see the same); for
    ``+ext`` both use the extended statistics, otherwise the basic ones (pinned, whatever
    the library's default); for ``+cnnratio`` both are the command line's CNN
    discriminator."""
    if estimator.endswith(CNN_RATIO_SUFFIX):
        from shiftattr.config import DiscriminatorConfig

        cnn = DiscriminatorConfig().build(spatial_dims=3, random_state=seed)
        return {"X": cnn, "Y": cnn}
    extra = {"X": adapter.output_features} if OUTPUTS_SUFFIX in estimator else None
    if SELFDICE_MARK in estimator:
        extra = {**(extra or {}), "X": partial(_with_self_dice, adapter)}
    if _marked(estimator, CONTRAST_MARK):
        extra = {**(extra or {}), "X": partial(_with_contrast, adapter)}
    if METRIC_MARK in estimator:
        extra = {**(extra or {}), "Y": adapter.score}
    if _marked(estimator, VSM_MARK) or _marked(estimator, OFFSET_CHILD_MARK):
        extra = {**(extra or {}), "Y": adapter.agreement_features}
    kw: dict[str, Any] = {}
    if "statistics" in inspect.signature(ImageStatsRatio).parameters:  # explicit: the
        # library's default became "extended" on 2026-11-30, after these runs' basic ones
        kw["statistics"] = "extended" if EXTENDED_MARK in estimator else "basic"
    if MIC_MARK in estimator:
        kw["mask_image_contrast"] = True
    x_ratio = ImageStatsRatio(extra_features=extra, random_state=seed, **kw)
    if _marked(estimator, YCHILD_MARK) or _marked(estimator, YOWN_MARK):
        agreement = {"Y": adapter.agreement_features} if _marked(estimator, YCHILD_MARK) else None
        return {
            "X": x_ratio,
            "Y": _AnnotationOnly(extra_features=agreement, random_state=seed, **kw),
        }
    return {"X": x_ratio, "Y": ImageStatsRatio(extra_features=extra, random_state=seed, **kw)}


class _AnnotationOnly(ImageStatsRatio):
    """The annotation's ratio features without the image's: the statistics of ``Y``
    alone and its ``extra_features`` (:meth:`ImageStatsRatio.node_features`). Only for
    the offset model (``conditional_ratios="offset"``), which reads the joint set's
    features from ``Y``'s estimator and takes the parents' log-ratio from ``X``'s."""

    def ratio_features(self, features) -> np.ndarray:
        return self.node_features(features, "Y")


def _with_self_dice(adapter: SegmentationAdapter, environment) -> np.ndarray:
    """The model's output summaries and its expected Dice against its own probabilities."""
    masks = np.asarray(adapter.predict(environment)).reshape(len(environment), -1)
    proba = np.asarray(adapter.predict_proba(environment)).reshape(len(environment), -1)
    inside = (masks * proba).sum(axis=1)
    self_dice = 2 * inside / np.maximum(masks.sum(axis=1) + proba.sum(axis=1), 1e-9)
    return np.column_stack([adapter.output_features(environment), self_dice])


def lesion_contrast(
    images: np.ndarray, masks: np.ndarray, proba: np.ndarray, margin: int = 2, top_k: int = 8
) -> np.ndarray:
    """How one-channel images render the predicted lesions, per case: relative contrast
    ``(in - ring) / (|in| + |ring|)`` against a ``margin``-voxel ring around them, the
    contrast-to-noise ratio (clipped to ±100), the same relative contrast weighted by the
    probabilities, and per spatial axis the log of the mean absolute gradient at the
    lesions' edge over the contrast (clipped to ±20). Where nothing is predicted the
    ``top_k`` most probable voxels stand in; a first column says so.

    Parameters
    ----------
    images, masks, proba : ndarray of shape (N, *spatial)
        Images (one channel), predicted masks, predicted probabilities.
    margin : int, default 2
    top_k : int, default 8

    Returns
    -------
    ndarray of shape (N, 1 + 3 + spatial axes)

    Examples
    --------
    >>> x = np.ones((1, 12, 12, 12)); x[0, 4:8, 4:8, 4:8] = 1.5
    >>> m = (x > 1.2).astype("uint8")
    >>> lesion_contrast(x, m, 0.9 * m)[0, :2].round(3).tolist()
    [0.0, 0.2]
    """
    from scipy import ndimage

    n, spatial = len(images), images.shape[1:]
    x = images.reshape(n, -1).astype(np.float64)
    p = np.clip(proba.reshape(n, -1).astype(np.float64), 0.0, 1.0)
    m = masks.reshape(n, -1) != 0
    empty = ~m.any(axis=1)
    if empty.any():  # the most lesion-like voxels stand in for the lesion
        top = np.argsort(-p[empty], axis=1)[:, :top_k]
        stand_in = np.zeros((int(empty.sum()), m.shape[1]), dtype=bool)
        np.put_along_axis(stand_in, top, True, axis=1)
        m[empty] = stand_in
    m = m.reshape(n, *spatial)
    faces = np.zeros((3,) * (len(spatial) + 1), dtype=bool)  # no link between cases
    faces[1] = ndimage.generate_binary_structure(len(spatial), 1)
    near = ndimage.binary_dilation(m, structure=faces, iterations=margin)
    ring = near & ~m
    edge = ndimage.binary_dilation(m, structure=faces) & ~ndimage.binary_erosion(
        m, structure=faces, border_value=1
    )
    near, ring, edge, mf = (a.reshape(n, -1) for a in (near, ring, edge, m))
    tiny = 1e-12

    def mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return (values * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), tiny)

    inside, around = mean(x, mf), mean(x, ring)
    diff = inside - around
    ring_sd = np.sqrt(np.maximum(mean(x**2, ring) - around**2, 0.0))
    soft_in, soft_out = mean(x, p * near), mean(x, (1.0 - p) * near)
    cols = [
        empty.astype(np.float64),
        diff / np.maximum(np.abs(inside) + np.abs(around), tiny),
        np.clip(diff / np.maximum(ring_sd, tiny), -100.0, 100.0),
        (soft_in - soft_out) / np.maximum(np.abs(soft_in) + np.abs(soft_out), tiny),
    ]
    for axis in range(len(spatial)):
        grad = np.abs(np.gradient(images.astype(np.float64), axis=axis + 1)).reshape(n, -1)
        ratio = np.maximum(mean(grad, edge), tiny) / np.maximum(np.abs(diff), tiny)
        cols.append(np.clip(np.log(ratio), -20.0, 20.0))
    return np.column_stack(cols)


def _with_contrast(adapter: SegmentationAdapter, environment) -> np.ndarray:
    """The model's output summaries and :func:`lesion_contrast` of the images (as the
    scanner gave them) at the model's predicted lesions."""
    images = np.asarray(environment["X"], dtype=np.float64)
    contrast = lesion_contrast(
        images.reshape(len(images), *images.shape[-3:]),
        np.asarray(adapter.predict(environment)),
        np.asarray(adapter.predict_proba(environment)),
    )
    return np.column_stack([adapter.output_features(environment), contrast])


def oracle_nodes(estimator: str) -> tuple[str, ...]:
    """The mechanisms whose true ratio ``estimator`` is given: all for ``<method>+oracle``,
    one for ``<method>+oracle-<node>``, none otherwise."""
    if estimator.endswith(ORACLE_SUFFIX):
        return MECHANISMS
    if ORACLE_NODE_MARK in estimator:
        return (estimator.rsplit(ORACLE_NODE_MARK, 1)[1],)
    return ()


def oracle_ratios(
    sim: SyntheticMS, scen: Scenario, nodes: tuple[str, ...] = MECHANISMS
) -> dict[str, Any]:
    """``known_ratios`` for ``attribute``: the true log-ratio of each of ``nodes`` between
    the scenario's source and target, from the simulator's hidden per-case draws."""
    return {
        node: partial(
            sim.true_log_ratio, node=node, source=scen.env("source"), target=scen.env("target")
        )
        for node in nodes
    }


def one_run(
    scen: Scenario,
    truth: dict[str, Any],
    source,
    target,
    m_s: np.ndarray,
    m_t: np.ndarray,
    adapter: SegmentationAdapter,
    estimator: str,
    seed: int,
    n: int,
    n_bootstrap: int,
    n_folds: int,
    sim: SyntheticMS | None = None,
) -> dict[str, Any]:
    """One attribution, scored against the truth (``sim``: the simulator, needed by the
    ``+oracle`` variants)."""
    rec: dict[str, Any] = {
        "scenario": scen.name,
        "seed": seed,
        "n": n,
        "estimator": estimator,
        "source_dice": float(m_s.mean()),
        "target_dice": float(m_t.mean()),
    }
    kw = attribute_kwargs(estimator, adapter)
    metric: Any = m_s
    if is_paired(estimator):  # Y substituted by the counterfactual readings
        kw["paired"] = scen.paired_keys()
        metric = adapter.score  # paired substitution re-scores the model on them
        rec["paired"] = {k: list(v) for k, v in kw["paired"].items()}
    if estimator.endswith(CNN_SUFFIX):  # the voxels, read by the CNN regressor
        from shiftattr.value import CNNRegressor, raw_features

        kw["features"] = {"X": raw_features("X")}
        kw["regressor"] = CNNRegressor(image_shape=source.item_shape("X"), random_state=seed)
    if oracle_nodes(estimator):
        if sim is None:
            raise ValueError(f"{estimator} needs the simulator: pass sim= to one_run")
        kw["known_ratios"] = oracle_ratios(sim, scen, oracle_nodes(estimator))
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ShiftAttrWarning)  # recorded in res.warnings
            res = shiftattr.attribute(
                segmentation_graph(),
                source,
                target,
                metric=metric,
                target_metric=m_t,
                estimators=ratio_estimators(estimator, adapter, seed),
                n_folds=n_folds,
                n_bootstrap=n_bootstrap,
                bootstrap=bootstrap_mode(estimator),
                metric_name="Dice",
                progress=False,
                random_state=seed,
                **kw,
            )
    except Exception as exc:  # record and go on
        rec.update(
            ok=False,
            seconds=time.perf_counter() - t0,
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(limit=4),
        )
        return rec
    rec["seconds"] = time.perf_counter() - t0
    values = {m: float(res.values[m]) for m in MECHANISMS}
    diag = res.diagnostics or {}
    per = diag.get("mechanisms", {})
    overall = diag.get("overall", {})
    codes = [w["code"] + (f":{w['mechanism']}" if w.get("mechanism") else "") for w in res.warnings]
    rec.update(
        ok=True,
        values=values,
        ci={m: [float(res.ci[m][0]), float(res.ci[m][1])] for m in MECHANISMS},
        stderr={m: float(res.stderr[m]) for m in MECHANISMS},
        dominant_estimated=max(MECHANISMS, key=lambda m: abs(values[m])),
        ess_fraction={m: per.get(m, {}).get("ess_fraction") for m in MECHANISMS},
        ess_all_fraction=overall.get("ess_all_fraction"),
        pareto_k={m: per.get(m, {}).get("pareto_k") for m in MECHANISMS},
        pareto_k_all=overall.get("pareto_k_all"),
        auc_joint={m: per.get(m, {}).get("auc_joint") for m in MECHANISMS},
        auc_parents={m: per.get(m, {}).get("auc_parents") for m in MECHANISMS},
        estimated_target_dice=float(res.estimated_target_metric),
        closure_error=res.closure_error,
        warnings=codes,
        flagged=bool(res.warnings),
        repeats={k: v for k, v in diag.get("repeats", {}).items() if k != "values"} or None,
        bias_bound=diag.get("estimator", {}).get("bias_bound"),
        # a network's training per node set and fold (the CNN variants): epoch kept,
        # held-out AUC, temperature
        ratio_fits=diag.get("ratio_fits") or None,
        settings={
            k: res.settings.get(k)
            for k in (
                "estimators",
                "n_folds",
                "n_repeats",
                "n_bootstrap",
                "interval",
                "bootstrap",
                "method",
                "paired",
            )
        },
    )
    return score_run(rec, truth)


def score_run(rec: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
    """Set (or replace) the fields of a successful run that compare it with ``truth``.

    Everything else in ``rec`` (estimates, intervals, diagnostics, warnings) does not
    depend on the truth, which is what lets ``--rescore`` re-score stored runs against
    a more precise truth without running the attributions again.
    """
    tv, tse = truth["values"], truth["stderr"]
    values = rec["values"]
    # a JSON round trip writes NaN as null: read missing bounds back as NaN
    ci = {m: [np.nan if b is None else b for b in rec["ci"][m]] for m in MECHANISMS}
    err = {m: abs(values[m] - tv[m]) for m in MECHANISMS}
    max_err = max(err.values())
    rec.update(
        truth=tv,
        truth_se=tse,
        abs_error=err,
        mae=float(np.mean(list(err.values()))),
        max_abs_error=max_err,
        covered={
            m: (None if not np.all(np.isfinite(ci[m])) else bool(ci[m][0] <= tv[m] <= ci[m][1]))
            for m in MECHANISMS
        },
        dominant_true=truth["dominant"],
        dominant_right=(
            None if truth["dominant"] is None else rec["dominant_estimated"] == truth["dominant"]
        ),
        error_above_threshold=bool(max_err > ERROR_FLAG_THRESHOLD),
    )
    # what attribute(..., tolerance=ERROR_FLAG_THRESHOLD) adds: an `imprecise` warning per
    # mechanism whose interval reaches further than that (the library's rule, applied to
    # the stored intervals)
    rec["imprecise"] = list(imprecise_mechanisms(values, ci, ERROR_FLAG_THRESHOLD))
    rec["flagged_with_tolerance"] = bool(rec["flagged"] or rec["imprecise"])
    return rec


# -- summaries ---------------------------------------------------------------------------
def _rate(flags: list[bool | None]) -> float | None:
    vals = [bool(f) for f in flags if f is not None]
    return float(np.mean(vals)) if vals else None


def summarise(runs: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Aggregates of the successful runs, grouped by ``keys``."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for gkey, rs in groups.items():
        ok = [r for r in rs if r.get("ok")]
        row: dict[str, Any] = dict(zip(keys, gkey))
        row.update(n_runs=len(rs), n_ok=len(ok), n_failed=len(rs) - len(ok))
        if ok:
            maes = [r["mae"] for r in ok]
            above = [r for r in ok if r["error_above_threshold"]]
            below = [r for r in ok if not r["error_above_threshold"]]
            unflagged = [r["mae"] for r in ok if not r["flagged"]]
            row.update(
                mae_mean=float(np.mean(maes)),
                mae_sd=float(np.std(maes, ddof=1)) if len(maes) > 1 else None,
                max_abs_error=float(max(r["max_abs_error"] for r in ok)),
                mae_unflagged=float(np.mean(unflagged)) if unflagged else None,
                n_unflagged=len(unflagged),
                dominant_rate=_rate([r["dominant_right"] for r in ok]),
                n_dominant_defined=sum(r["dominant_right"] is not None for r in ok),
                coverage=_rate([c for r in ok for c in r["covered"].values()]),
                coverage_shifted=_rate(
                    [
                        r["covered"][m]
                        for r in ok
                        for m in MECHANISMS
                        if abs(r["truth"][m]) > 0 or r["truth_se"][m] > 0
                    ]
                ),
                n_error_above=len(above),
                flagged_when_error_above=_rate([r["flagged"] for r in above]),
                flagged_when_error_below=_rate([r["flagged"] for r in below]),
                flagged_with_tolerance_when_error_above=_rate(
                    [r.get("flagged_with_tolerance") for r in above]
                ),
                flagged_with_tolerance_when_error_below=_rate(
                    [r.get("flagged_with_tolerance") for r in below]
                ),
                seconds_median=float(statistics.median(r["seconds"] for r in ok)),
                ess_all_fraction_mean=_mean([r["ess_all_fraction"] for r in ok]),
                auc_joint_mean={m: _mean([r["auc_joint"][m] for r in ok]) for m in MECHANISMS},
                value_mean={m: float(np.mean([r["values"][m] for r in ok])) for m in MECHANISMS},
                abs_error_mean={
                    m: float(np.mean([r["abs_error"][m] for r in ok])) for m in MECHANISMS
                },
                warning_counts=_counts([c.split(":")[0] for r in ok for c in r["warnings"]]),
            )
        out.append(row)
    return out


def _mean(xs: list[Any]) -> float | None:
    xs = [x for x in xs if x is not None and np.isfinite(x)]
    return float(np.mean(xs)) if xs else None


def _counts(codes: list[str]) -> dict[str, int]:
    return {c: codes.count(c) for c in sorted(set(codes))}


def targets_table(overall: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per target and (estimator, N) group: measured value and met / not met."""
    rows = []
    for g in overall:
        if not g.get("n_ok"):
            continue
        label = {k: g[k] for k in ("estimator", "n") if k in g}
        checks = [
            ("MAE <= 0.01 Dice (mean over runs)", g["mae_mean"], g["mae_mean"] <= TARGETS["mae"]),
            (
                "dominant mechanism right in >= 95 % of runs",
                g["dominant_rate"],
                None if g["dominant_rate"] is None else g["dominant_rate"] >= TARGETS["dominant"],
            ),
            (
                "95 % CIs cover the truth in >= 90 %",
                g["coverage"],
                None if g["coverage"] is None else g["coverage"] >= TARGETS["coverage"],
            ),
            (
                "every run with error > 0.02 flagged by the diagnostics",
                g["flagged_when_error_above"],
                None
                if g["flagged_when_error_above"] is None
                else g["flagged_when_error_above"] >= TARGETS["flagged"],
            ),
        ]
        for name, value, met in checks:
            rows.append({**label, "target": name, "measured": value, "met": met})
        tol = g.get("flagged_with_tolerance_when_error_above")
        rows.append(
            {
                **label,
                "target": TOLERANCE_TARGET,
                "measured": tol,
                "met": None if tol is None else tol >= TARGETS["flagged"],
                "false_alarms": g.get("flagged_with_tolerance_when_error_below"),
            }
        )
    return rows


#: The value-estimator issue's target on this world: MR's MAE at most 1 / ratio of IW's
#: at N cases per environment; the pairs of estimators compared.
MR_VS_IW = {"n": 300, "ratio": 2.0}
MR_VS_IW_PAIRS = (
    ("mr", "iw"),
    ("mr+outputs", "iw"),
    ("mr+outputs", "iw+outputs"),
    ("mr+pooled", "iw"),
    ("mr+pooled+ext", "iw+ext"),  # both with the library's defaults since 2026-11-30
    ("mr+pooled+ext", "iw+ext+outputs"),  # iw as the command line runs it since then
    ("mr+pooled+ext+outputs", "iw+ext+outputs"),  # both with the outputs in the ratios
    ("mr+pooled+ext+both", "iw+ext"),  # mr over both samples, like for like
    ("mr+pooled+ext+outputs+both", "iw+ext+outputs"),
    ("mr+pooled+ext+outputs+bothDX", "iw+ext+outputs"),  # the annotation over own cases
    ("mr+both+oracle", "iw+oracle"),
    ("mr+oracle", "iw+oracle"),
)


def ratio_interval(
    scenarios: list[str], numerator: np.ndarray, denominator: np.ndarray, n_resamples: int = 10_000
) -> tuple[float, float]:
    """95 % interval of ``mean(numerator) / mean(denominator)`` over paired runs, the
    runs resampled with replacement within each scenario (the seeds are the noise; the
    scenarios are fixed). Seeded: the same runs give the same interval.

    Parameters
    ----------
    scenarios : list of str
        The scenario of each run.
    numerator, denominator : ndarray of shape (n_runs,)
        The two estimators' errors per run, in the same order.
    n_resamples : int, default 10000

    Returns
    -------
    tuple of float
        The 2.5 and 97.5 percentiles of the resampled ratio.

    Examples
    --------
    >>> import numpy as np
    >>> lo, hi = ratio_interval(["a", "a", "b", "b"], np.array([2.0, 2.2, 4.0, 3.8]),
    ...                         np.array([1.0, 1.1, 2.0, 1.9]))
    >>> bool(lo <= 2.0 <= hi)
    True
    """
    rng = np.random.default_rng(0)
    labels = np.asarray(scenarios)
    num = np.zeros(n_resamples)
    den = np.zeros(n_resamples)
    for name in dict.fromkeys(scenarios):
        rows = np.flatnonzero(labels == name)
        draw = rows[rng.integers(0, len(rows), (n_resamples, len(rows)))]
        num += numerator[draw].sum(axis=1)
        den += denominator[draw].sum(axis=1)
    lo, hi = np.percentile(num / den, [2.5, 97.5])
    return float(lo), float(hi)


def mr_vs_iw(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """IW's mean MAE over MR's at ``MR_VS_IW["n"]``, on the (scenario, seed) both ran, with
    a 95 % interval over the seeds (:func:`ratio_interval`)."""
    mae: dict[str, dict[tuple, float]] = {}
    for r in runs:
        if r.get("ok") and r["n"] == MR_VS_IW["n"]:
            mae.setdefault(r["estimator"], {})[(r["scenario"], r["seed"])] = r["mae"]
    rows = []
    for m, b in MR_VS_IW_PAIRS:
        both = sorted(set(mae.get(m, {})) & set(mae.get(b, {})))
        if not both:
            continue
        iw, mr = (np.array([mae[e][k] for k in both]) for e in (b, m))
        ratio = float(iw.mean() / mr.mean())
        rows.append(
            {
                "mr": m,
                "iw": b,
                "n": MR_VS_IW["n"],
                "n_runs": len(both),
                "ratio": ratio,
                "ratio_interval": ratio_interval([k[0] for k in both], iw, mr),
                "target_ratio": MR_VS_IW["ratio"],
                "met": ratio >= MR_VS_IW["ratio"],
            }
        )
    return rows


# -- figure ------------------------------------------------------------------------------
def plot(runs: list[dict[str, Any]], out: Path) -> Path:
    """Estimated vs true value per mechanism, coloured by estimator, CIs as bars.

    Hollow markers: runs ``attribute`` warned about (flagged by the diagnostics).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in runs if r.get("ok")]
    ests = [e for e in ESTIMATORS if any(r["estimator"] == e for r in ok)]
    sizes = sorted({r["n"] for r in ok})
    colors = dict(
        zip(
            ESTIMATORS,  # one colour per estimator name: a new name needs a colour
            (
                "tab:blue",
                "tab:orange",
                "tab:green",
                "tab:purple",
                "tab:red",
                "tab:cyan",
                "tab:olive",
                "tab:brown",
                "tab:pink",
                "tab:gray",
                "black",
                "gold",
                "darkgreen",
                "lightsteelblue",
                "crimson",
                "teal",
                "darkorange",
                "indigo",
                "magenta",
                "orchid",
                "slategray",
                "sienna",
                "navy",
                "olive",
                "deepskyblue",
                "yellowgreen",
                "maroon",
                "steelblue",
                "mediumvioletred",
                "darkkhaki",
                "rosybrown",
                "cadetblue",
                "chocolate",
                "darkslateblue",
                "firebrick",
                "olivedrab",
                "hotpink",
                "darkcyan",
                "peru",
                "purple",
                "lightcoral",
                "darkgoldenrod",
                "mediumseagreen",
                "darkred",
                "lightseagreen",
                "mediumpurple",
                "goldenrod",
                "slateblue",
                "saddlebrown",
                "darkviolet",
                "lime",
                "tomato",
                "dodgerblue",
                "darkseagreen",
                "coral",
                "khaki",
                "mediumorchid",
                "darkturquoise",
                "springgreen",
                "palevioletred",
                "midnightblue",
                "darkolivegreen",
                "lightslategray",
                "darkmagenta",
                "slategrey",
                "orangered",
                "peru",
            ),
            strict=True,
        )
    )
    markers = dict(zip(sizes, "os^Dv"))
    fig, axes = plt.subplots(1, 3, figsize=(15, 5))
    for ax, m in zip(axes, MECHANISMS):
        lo_all, hi_all = [0.0], [0.0]
        for e in ests:
            for n in sizes:
                rs = [r for r in ok if r["estimator"] == e and r["n"] == n]
                if not rs:
                    continue
                t = np.array([r["truth"][m] for r in rs])
                v = np.array([r["values"][m] for r in rs])
                ci = np.array([r["ci"][m] for r in rs], dtype=float)
                jitter = (sizes.index(n) - (len(sizes) - 1) / 2) * 0.002
                yerr = np.abs(np.vstack([v - ci[:, 0], ci[:, 1] - v]))
                yerr = np.where(np.isfinite(yerr), yerr, 0.0)
                flagged = np.array([r["flagged"] for r in rs])
                for sel, face in ((~flagged, colors[e]), (flagged, "none")):
                    if not sel.any():
                        continue
                    ax.errorbar(
                        t[sel] + jitter,
                        v[sel],
                        yerr=yerr[:, sel],
                        fmt=markers[n],
                        color=colors[e],
                        mfc=face,
                        alpha=0.6,
                        ms=4.5,
                        elinewidth=0.6,
                        label=f"{e}, N = {n}" + (", flagged" if face == "none" else ""),
                    )
                lo_all += [t.min(), v.min()]
                hi_all += [t.max(), v.max()]
        lo, hi = min(lo_all) - 0.02, max(hi_all) + 0.02
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.fill_between(
            [lo, hi],
            [lo - 0.01, hi - 0.01],
            [lo + 0.01, hi + 0.01],
            color="0.85",
            zorder=0,
            label="± 0.01 Dice",
        )
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("true Shapley value (Dice drop)")
        ax.set_ylabel("estimated value (95 % bootstrap CI)")
        ax.set_title({"D": "D: population", "X": "X: acquisition", "Y": "Y: annotation"}[m])
    axes[0].legend(fontsize=7)
    fig.suptitle(
        "Synthetic MS: estimated vs true attribution (one point per run; hollow = flagged)"
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


# -- merging -----------------------------------------------------------------------------
#: Config entries that must agree for runs to be merged into an existing results file.
_MERGE_KEYS = ("shape", "n_bootstrap", "bootstrap", "n_folds", "truth_n_first", "truth_n_max")


def check_mergeable(previous: dict[str, Any] | None, args: argparse.Namespace, shape) -> None:
    """Refuse ``--merge`` when the existing results were made with other settings."""
    if not previous or "runs" not in previous:
        return  # nothing to merge into: a plain run
    cfg = previous.get("config", {})
    now = {
        "shape": list(shape),
        "n_bootstrap": args.n_bootstrap,
        "bootstrap": "fixed",
        "n_folds": args.n_folds,
        "truth_n_first": args.truth_n,
        "truth_n_max": args.truth_max,
    }
    bad = {k: (cfg.get(k), now[k]) for k in _MERGE_KEYS if cfg.get(k) != now[k]}
    mode = "quick" if args.quick else "full"
    if previous.get("mode") != mode:
        bad["mode"] = (previous.get("mode"), mode)
    if bad:
        raise SystemExit(f"--merge: settings differ from the existing results (old, new): {bad}")


def check_same_models(previous: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """Refuse to merge runs made with another segmenter than the existing runs'.

    A model trained anew (every cached model but the kept 16³ ones) can differ from the
    one the existing runs used (another CPU generation's floating-point kernels); its
    runs would be scored against its own truth while the results show one truth per
    scenario. Raises ``ValueError`` naming the centres whose weights differ.
    """
    old = (previous or {}).get("per_center", {})
    differ = {
        c: (old[c].get("weights_sha256_16"), m.get("weights_sha256_16"))
        for c, m in new.get("per_center", {}).items()
        if c in old and old[c].get("weights_sha256_16") != m.get("weights_sha256_16")
    }
    if differ:
        raise ValueError(
            f"the segmenter's weights differ from the existing runs' (centre: old, new "
            f"hash): {differ}. Runs on another model are not comparable with them: put the "
            "weights the existing runs used in benchmarks/results/cache/ and run again "
            "(training reproduces them only on a CPU with the same floating-point kernels), "
            "or merge into results made on these weights (the 16³ weights in the repository: "
            "results/synthetic_ms_shipped.json)."
        )


def _run_key(r: dict[str, Any]) -> tuple:
    return (r["scenario"], r["estimator"], r["n"], r["seed"])


def merge_results(previous: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``previous`` with the runs of ``new`` added (replacing those with the same scenario,
    estimator, N and seed); scenarios, models, skipped, not-applicable and config merged.

    The date, machine and command stay those of the first run; each merge is listed under
    ``merged`` with its own date and command."""
    check_same_models(previous.get("model"), new["model"])
    fresh = {_run_key(r) for r in new["runs"]}
    runs = [r for r in previous.get("runs", []) if _run_key(r) not in fresh] + new["runs"]
    out = dict(previous)
    pcfg, ncfg = previous.get("config", {}), new["config"]

    def union(key: str, order: tuple | None = None) -> list:
        vals = list(dict.fromkeys([*pcfg.get(key, []), *ncfg.get(key, [])]))
        return [e for e in order if e in vals] if order else sorted(vals)

    cfg = {**pcfg, **{k: v for k, v in ncfg.items() if k not in pcfg}}
    cfg.update(
        sizes=union("sizes"),
        seeds=union("seeds"),
        estimators_requested=union("estimators_requested", ESTIMATORS),
        estimators_run=[e for e in ESTIMATORS if any(r["estimator"] == e for r in runs)],
    )
    model = dict(previous.get("model", {}))
    model["per_center"] = {**model.get("per_center", {}), **new["model"]["per_center"]}
    na = {e: dict(v) for e, v in (previous.get("not_applicable") or {}).items()}
    for e, v in new["not_applicable"].items():
        old = na.get(e, {}).get("scenarios", [])
        na[e] = {**v, "scenarios": list(dict.fromkeys([*old, *v["scenarios"]]))}
    scenarios = {**previous.get("scenarios", {}), **new["scenarios"]}
    for e in ncfg["estimators_run"]:  # paired: every scenario whose annotators agree
        if not is_paired(e):
            continue
        same = [
            s for s, v in scenarios.items() if v["source"]["annotator"] == v["target"]["annotator"]
        ]
        v = na.setdefault(e, {"reason": NOT_APPLICABLE_REASON, "scenarios": []})
        v["scenarios"] = [s for s in scenarios if s in {*v["scenarios"], *same}]
    skipped = {**(previous.get("skipped") or {}), **new["skipped"]}
    for e in cfg["estimators_run"]:
        skipped.pop(e, None)
    merges = list(previous.get("merged", []))
    merges.append(
        {
            "date": now_utc(),
            "command": new["command"],
            "estimators": ncfg["estimators_run"],
            "scenarios": list(new["scenarios"]),
            "sizes": ncfg["sizes"],
            "seeds": ncfg["seeds"],
            "n_runs": len(new["runs"]),
            "seconds": new["seconds"],
        }
    )
    out.update(
        config=cfg,
        model=model,
        skipped=skipped,
        not_applicable=na,
        scenarios=scenarios,
        runs=runs,
        log=[*previous.get("log", []), *new["log"]],
        seconds=float(previous.get("seconds") or 0.0) + new["seconds"],
        merged=merges,
    )
    return out


def absorb(previous: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """``previous`` with the runs that ``other`` added to a copy of it.

    Runs in parallel go to separate folders, each started from a copy of the results and
    run with ``--merge``. Each merge entry of ``other`` that ``previous`` does not list
    (by date and command) is merged as it ran: its own runs, command, date, scenarios and
    seconds, not those of the whole file it sits in (whose log and seconds repeat
    ``previous``'s).

    Parameters
    ----------
    previous, other : dict
        Results files of this benchmark.

    Returns
    -------
    dict
        The merged results (summaries not yet recomputed: see :func:`finish`).
    """
    bad = {
        k: (previous["config"].get(k), other["config"].get(k))
        for k in _MERGE_KEYS
        if previous["config"].get(k) != other["config"].get(k)
    }
    if previous.get("mode") != other.get("mode"):
        bad["mode"] = (previous.get("mode"), other.get("mode"))
    if bad:
        raise ValueError(f"cannot merge results made with other settings (old, new): {bad}")
    known = {(m["date"], m["command"]) for m in previous.get("merged", [])}
    out = previous
    for m in other.get("merged", []):
        if (m["date"], m["command"]) in known:
            continue
        runs = [
            r
            for r in other["runs"]
            if r["estimator"] in m["estimators"]
            and r["n"] in m["sizes"]
            and r["seed"] in m["seeds"]
            and r["scenario"] in m["scenarios"]
        ]
        if len(runs) != m["n_runs"]:
            raise ValueError(
                f"merge entry {m['command']!r} lists {m['n_runs']} runs but the file holds "
                f"{len(runs)} of its (estimator, N, seed, scenario); was it overwritten?"
            )
        na = other.get("not_applicable") or {}
        sub = {
            "command": m["command"],
            "config": {
                "sizes": m["sizes"],
                "seeds": m["seeds"],
                "estimators_requested": m["estimators"],
                "estimators_run": m["estimators"],
            },
            "model": {"per_center": other.get("model", {}).get("per_center", {})},
            "not_applicable": {e: v for e, v in na.items() if e in m["estimators"]},
            "skipped": {},
            "scenarios": {name: other["scenarios"][name] for name in m["scenarios"]},
            "runs": runs,
            "log": [],
            "seconds": m["seconds"],
        }
        out = merge_results(out, sub)
        out["merged"][-1]["date"] = m["date"]  # when it ran, not when it was merged
    return out


# -- main --------------------------------------------------------------------------------
def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="benchmarks/bench_synthetic_ms.py", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a few minutes: 16^3, N=100, 2 seeds, 50 bootstraps, 500 truth cases",
    )
    p.add_argument(
        "--estimators",
        default=None,
        help="comma-separated subset of " + ",".join(ESTIMATORS) + " (default: all available "
        "but the +refit, +repeats, +biasaware, +oracle, +check, +cnn, +cnnratio, +metric, +selfdice, +contrast "
        "and +both ones and " + ", ".join(OPT_IN) + "; "
        "the +paired ones "
        "run only where the annotators differ)",
    )
    p.add_argument("--n", default=None, help="cases per environment, e.g. 100,300")
    p.add_argument("--seeds", default=None, help="e.g. 0,1,2,3,4")
    p.add_argument(
        "--scenarios",
        default=None,
        help="comma-separated names (default all): " + ",".join(s.name for s in SCENARIOS),
    )
    p.add_argument("--shape", type=int, default=16, help="volume side (default 16)")
    p.add_argument("--n-bootstrap", type=int, default=None)
    p.add_argument("--n-folds", type=int, default=None)
    p.add_argument("--truth-n", type=int, default=None, help="first truth batch (cases)")
    p.add_argument("--truth-max", type=int, default=None, help="most truth cases per scenario")
    p.add_argument(
        "--truth-se",
        type=float,
        default=None,
        help="stop adding truth batches when every MC s.e. is below this",
    )
    p.add_argument(
        "--reuse-truth",
        action="store_true",
        help="reuse a scenario's truth from results/synthetic_ms.json when its key "
        "(specs, model weights, truth settings) matches",
    )
    p.add_argument(
        "--merge",
        action="store_true",
        help="merge into the existing results/synthetic_ms.json: replace only the runs made "
        "now (same scenario, estimator, N, seed), keep every other run",
    )
    p.add_argument(
        "--rescore",
        action="store_true",
        help="run no attribution: recompute every scenario's truth of the existing results "
        "with the --truth-* settings (reused when its key matches) and re-score the stored "
        "runs against it",
    )
    p.add_argument(
        "--merge-from",
        nargs="+",
        default=None,
        metavar="DIR",
        help="run no attribution: add to the results in --out the runs made in these folders "
        "(each started from a copy of them and run with --merge), each merge entry with its "
        "own command, runs and seconds",
    )
    p.add_argument(
        "--out", default=str(RESULTS_DIR), help="results folder (default benchmarks/results)"
    )
    args = p.parse_args(argv)
    quick = args.quick
    defaults = {
        "n": "100" if quick else "100,300",
        "seeds": "0,1" if quick else "0,1,2,3,4",
        "n_bootstrap": 50 if quick else 200,
        "n_folds": 3 if quick else 5,
        "truth_n": 500 if quick else 2000,
        "truth_max": 500 if quick else 16000,
        "truth_se": 0.01 if quick else 0.0025,
    }
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    return args


def finish(payload: dict[str, Any], results_dir: Path) -> None:
    """Recompute the summaries and targets of ``payload``, write it and its figure."""
    runs = payload["runs"]
    overall = summarise(runs, ("estimator", "n")) + summarise(runs, ("estimator",))
    payload["summary"] = summarise(runs, ("scenario", "estimator", "n"))
    payload["overall"] = overall
    payload["targets"] = targets_table(overall)
    payload["mr_vs_iw"] = mr_vs_iw(runs)
    path = write_json(NAME, payload, results_dir)
    fig = plot(runs, results_dir / f"{NAME}.png")
    print(f"wrote {path} and {fig} in {payload['seconds']:.0f} s", flush=True)
    for row in payload["targets"]:
        if "n" in row:
            continue
        met = {True: "met", False: "NOT met", None: "not measured"}[row["met"]]
        val = "—" if row["measured"] is None else f"{row['measured']:.3f}"
        print(f"  [{row['estimator']}] {row['target']}: {val} -> {met}")


def rescore(args: argparse.Namespace, argv: list[str] | None) -> int:
    """``--rescore``: a more precise truth for the stored runs, without re-running them.

    The truth of each scenario is recomputed with the ``--truth-*`` settings for the model
    the runs were scored with (its cached weights must still hash the same), and every
    successful run is re-scored with :func:`score_run`; estimates, intervals and warnings
    are kept as they were.
    """
    t_start = time.perf_counter()
    results_dir = Path(args.out)
    previous = read_json(NAME, results_dir)
    if not previous or not previous.get("runs"):
        raise SystemExit(f"--rescore needs existing runs in {results_dir / (NAME + '.json')}")
    shape = tuple(previous["config"]["shape"])
    sim = make_simulator(shape)
    msettings = ModelSettings(shape=shape)
    names = args.scenarios.split(",") if args.scenarios else list(previous["scenarios"])
    known = {s.name: s for s in SCENARIOS}
    bad = [n for n in names if n not in known or n not in previous["scenarios"]]
    if bad:
        raise SystemExit(f"--rescore: scenario(s) {bad} not in the stored results")
    log: list[str] = []
    models: dict[str, tuple[UNet3D, dict[str, Any]]] = {}
    stored_models = previous.get("model", {}).get("per_center", {})
    computed: list[str] = []  # scenarios whose truth was recomputed (not reused)
    with blas_threads(1):
        for name in names:
            scen = known[name]
            center = scen.env("source")["center"]
            if center not in models:
                models[center] = get_model(sim, center, msettings, log)
                digest = models[center][1]["weights_sha256_16"]
                stored = stored_models.get(center, {}).get("weights_sha256_16")
                if stored != digest:
                    raise SystemExit(
                        f"--rescore: the cached model of center {center} hashes {digest}, the "
                        f"runs were scored with {stored}; re-run the benchmark instead."
                    )
            net, minfo = models[center]
            adapter = make_adapter(net)
            truth, key, how = scenario_truth(sim, scen, adapter, minfo, args, previous["scenarios"])
            previous["scenarios"][name].update(truth=truth, truth_key=key, truth_how=how)
            if how == "computed":
                computed.append(name)
            for r in previous["runs"]:
                if r["scenario"] == name and r.get("ok"):
                    score_run(r, truth)
    seconds = time.perf_counter() - t_start
    if set(names) == set(previous["scenarios"]):  # else each truth_key records its own
        previous["config"].update(
            truth_n_first=args.truth_n, truth_n_max=args.truth_max, truth_se_target=args.truth_se
        )
    previous.setdefault("rescored", []).append(
        {
            "date": now_utc(),
            "command": "benchmarks/bench_synthetic_ms.py "
            + " ".join(sys.argv[1:] if argv is None else argv),
            "scenarios": names,
            "computed": computed,
            "truth_n_first": args.truth_n,
            "truth_n_max": args.truth_max,
            "truth_se_target": args.truth_se,
            "seconds": seconds,
        }
    )
    previous["log"] = [*previous.get("log", []), *log]
    previous["seconds"] = float(previous.get("seconds") or 0.0) + seconds
    finish(previous, results_dir)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rescore:
        return rescore(args, argv)
    if args.merge_from:
        results_dir = Path(args.out)
        merged = read_json(NAME, results_dir)
        for folder in [results_dir, *args.merge_from]:
            if not (Path(folder) / f"{NAME}.json").is_file():
                raise SystemExit(f"--merge-from: no {NAME}.json in {folder}")
        for folder in args.merge_from:
            merged = absorb(merged, read_json(NAME, Path(folder)))
        finish(merged, results_dir)
        return 0
    t_start = time.perf_counter()
    results_dir = Path(args.out)
    sizes, seeds = _ints(args.n), _ints(args.seeds)
    available, skipped = available_estimators()
    requested = (
        [e.strip() for e in args.estimators.split(",") if e.strip()]
        if args.estimators
        else list(DEFAULT_ESTIMATORS)
    )
    unknown = [e for e in requested if e not in ESTIMATORS]
    if unknown:
        raise SystemExit(f"unknown estimator(s) {unknown}; choose from {list(ESTIMATORS)}")
    estimators = [e for e in requested if e in available]
    skipped = {e: r for e, r in skipped.items() if e in requested}
    names = args.scenarios.split(",") if args.scenarios else [s.name for s in SCENARIOS]
    bad = [n for n in names if n not in {s.name for s in SCENARIOS}]
    if bad:
        raise SystemExit(f"unknown scenario(s) {bad}")
    scenarios = [s for s in SCENARIOS if s.name in names]
    shape = (args.shape,) * 3
    sim = make_simulator(shape)
    msettings = ModelSettings(shape=shape)
    previous = read_json(NAME, results_dir) if (args.reuse_truth or args.merge) else None
    old_truth = (previous or {}).get("scenarios", {}) if args.reuse_truth else {}
    if args.merge:
        check_mergeable(previous, args, shape)
    log: list[str] = []
    print(
        f"estimators: {estimators}; skipped: {sorted(skipped)}; N {sizes}; seeds {seeds}; "
        f"{len(scenarios)} scenarios; shape {shape}",
        flush=True,
    )

    models: dict[str, tuple[UNet3D, dict[str, Any]]] = {}
    scen_out: dict[str, Any] = {}
    runs: list[dict[str, Any]] = []
    not_applicable: dict[str, dict[str, Any]] = {}
    with blas_threads(1):
        for scen in scenarios:
            center = scen.env("source")["center"]
            if center not in models:
                models[center] = get_model(sim, center, msettings, log)
                if args.merge and previous:  # fail now, not after the runs
                    try:
                        check_same_models(
                            previous.get("model"), {"per_center": {center: models[center][1]}}
                        )
                    except ValueError as err:
                        raise SystemExit(f"--merge: {err}") from None
            net, minfo = models[center]
            adapter = make_adapter(net)
            truth, key, truth_how = scenario_truth(sim, scen, adapter, minfo, args, old_truth)
            scen_out[scen.name] = {
                "kind": scen.kind,
                "description": scen.description,
                "source": scen.env("source"),
                "target": scen.env("target"),
                "shifted": scen.shifted,
                "model_center": center,
                "truth": truth,
                "truth_key": key,
                "truth_how": truth_how,
            }
            scen_ests = [e for e in estimators if not is_paired(e) or scen.annotation_shifted]
            for e in estimators:
                if e not in scen_ests:
                    na = not_applicable.setdefault(
                        e,
                        {"reason": NOT_APPLICABLE_REASON, "scenarios": []},
                    )
                    na["scenarios"].append(scen.name)
            # the other side's annotator also reads every case (only for the paired runs;
            # it adds counterfactual readings and leaves D, X, Y unchanged)
            pair = any(is_paired(e) for e in scen_ests)
            src_ann, tgt_ann = scen.env("source")["annotator"], scen.env("target")["annotator"]
            for n in sizes if scen_ests else ():
                for seed in seeds:
                    t0 = time.perf_counter()
                    source = sim.sample(
                        n,
                        **scen.env("source"),
                        random_state=_seed(scen.name, "source", n, seed),
                        annotate_all=[tgt_ann] if pair else False,
                    )
                    target = sim.sample(
                        n,
                        **scen.env("target"),
                        random_state=_seed(scen.name, "target", n, seed),
                        annotate_all=[src_ann] if pair else False,
                    )
                    m_s, m_t = adapter.score(source), adapter.score(target)
                    data_seconds = time.perf_counter() - t0
                    for est in scen_ests:
                        rec = one_run(
                            scen,
                            truth,
                            source,
                            target,
                            m_s,
                            m_t,
                            adapter,
                            est,
                            seed,
                            n,
                            args.n_bootstrap,
                            args.n_folds,
                            sim=sim,
                        )
                        rec["data_seconds"] = data_seconds
                        rec["simulator_version"] = SIMULATOR_VERSION
                        runs.append(rec)
                        if rec["ok"]:
                            print(
                                f"  {est:<10} N={n:<4} seed={seed}: "
                                + ", ".join(f"{m} {rec['values'][m]:+.3f}" for m in MECHANISMS)
                                + f" | MAE {rec['mae']:.4f}, max {rec['max_abs_error']:.3f}, "
                                f"cov {sum(bool(c) for c in rec['covered'].values())}/3, "
                                f"dom {rec['dominant_right']}, flags {rec['warnings']}, "
                                f"{rec['seconds']:.1f} s",
                                flush=True,
                            )
                        else:
                            print(
                                f"  {est:<10} N={n:<4} seed={seed}: FAILED {rec['error']}",
                                flush=True,
                            )
                    adapter.clear_cache()
    new_runs = runs
    payload = {
        "mode": "quick" if args.quick else "full",
        "command": "benchmarks/bench_synthetic_ms.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "config": {
            "shape": list(shape),
            "sizes": sizes,
            "seeds": seeds,
            "estimators_requested": requested,
            "estimators_run": estimators,
            "n_bootstrap": args.n_bootstrap,
            "bootstrap": "fixed",
            "n_folds": args.n_folds,
            "ratio_estimators": {
                "X": "ImageStatsRatio",
                "Y": "ImageStatsRatio",
                "D": "ClassifierRatio (default)",
            },
            "graph": "D -> X -> Y, Y <- D (shiftattr.pipeline.segmentation_graph)",
            "truth_n_first": args.truth_n,
            "truth_n_max": args.truth_max,
            "truth_se_target": args.truth_se,
            "error_flag_threshold": ERROR_FLAG_THRESHOLD,
            "targets": TARGETS,
            "threads": {
                "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                "torch": torch.get_num_threads(),
            },
        },
        "model": {
            "kind": "UNet3D trained once per source center, weights cached",
            "settings": {
                "n_train": msettings.n_train,
                "epochs": msettings.epochs,
                "channels": list(msettings.channels),
                "seed": msettings.seed,
                "train_data": "annotator 1, default population",
                "metric": "Dice, empty reference and prediction = 1",
            },
            "per_center": {c: info for c, (_, info) in models.items()},
        },
        "custom_specs": {
            "far": FAR_CENTER.model_dump(),
            "strong-under": STRONG_ANNOTATOR.model_dump(),
            "older-low-load": OLD_LOW_LOAD.model_dump(),
        },
        "skipped": skipped,
        "not_applicable": not_applicable,
        "scenarios": scen_out,
        "runs": runs,
        "log": log,
        "seconds": time.perf_counter() - t_start,
    }
    if args.merge and previous:
        payload = merge_results(previous, payload)
    finish(payload, results_dir)
    return 1 if any(not r.get("ok") for r in new_runs) else 0


if __name__ == "__main__":
    sys.exit(main())
