"""The ``shiftattr run CONFIG.toml`` configuration, validated with pydantic.

A configuration names the data (a synthetic preset or a NIfTI layout with the two
environments to compare), the model, how to attribute and where to write. Unknown
keys are errors, so a typo never silently falls back to a default.

Example (the synthetic experiment B)::

    [data]
    kind = "synthetic"
    shape = [32, 32, 32]
    source = { center = ["01", "07", "08"], annotator = "1", n = 80 }
    target = { center = "03", annotator = "1", n = 80 }
    truth_n = 200

    [model]
    kind = "train-unet"
    epochs = 15

    [attribution]
    metric = "dice"
    n_bootstrap = 200
    bootstrap = "fixed"

    [output]
    folder = "shiftattr-report"
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["ConfigError", "RunConfig", "load_config"]


#: The names ``model.preprocess`` accepts besides ``"module:function"`` (the keys of
#: :data:`shiftattr.segmentation.PREPROCESSORS`, kept here so the configuration is
#: validated without torch).
_PREPROCESSORS = ("zscore",)

#: The nodes of the segmentation graph (:func:`shiftattr.pipeline.segmentation_graph`).
_NODES = ("D", "X", "Y")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SyntheticEnvironment(_Strict):
    """One simulated environment: mechanisms by preset name, and its size."""

    center: str | list[str] = "01"
    annotator: str = "1"
    population: str = "default"
    n: int = Field(80, ge=10, description="cases")

    @model_validator(mode="after")
    def _check(self) -> SyntheticEnvironment:
        from shiftattr.datasets import synthetic_ms as ms

        centers = [self.center] if isinstance(self.center, str) else self.center
        if not centers:
            raise ValueError("center must name at least one center")
        for c in centers:  # the simulator's own lookup: its names, its message
            ms.lookup_preset(c, ms.CENTER_PRESETS, ms.CenterSpec, "center")
        ms.lookup_preset(self.annotator, ms.ANNOTATOR_PRESETS, ms.AnnotatorSpec, "annotator")
        ms.lookup_preset(self.population, ms.POPULATION_PRESETS, ms.PopulationSpec, "population")
        return self


class SyntheticData(_Strict):
    """Data from :class:`shiftattr.datasets.SyntheticMS`."""

    kind: Literal["synthetic"]
    shape: tuple[int, ...] = Field(
        (32, 32, 32), description="the simulator's grid: 2 or 3 sides of at least 8 voxels"
    )
    source: SyntheticEnvironment = SyntheticEnvironment(center=["01", "07", "08"])
    target: SyntheticEnvironment = SyntheticEnvironment(center="03")
    train_n: int = Field(60, ge=4, description="source cases to train the model on")
    truth_n: int = Field(
        200, ge=0, description="cases per coalition for the ground truth; 0 skips it"
    )
    random_state: int = 0

    @model_validator(mode="after")
    def _check_shape(self) -> SyntheticData:
        if len(self.shape) not in (2, 3) or min(self.shape) < 8:
            raise ValueError(
                f"data.shape must have 2 or 3 sides of at least 8 voxels (the simulator's "
                f"grid), got {list(self.shape)}"
            )
        return self


def _given(model: BaseModel) -> set[str]:
    """Fields set to something other than their default: a configuration dumped whole
    (``model_dump``) and validated again marks every field as set."""
    fields = type(model).model_fields
    return {k for k in model.model_fields_set if getattr(model, k) != fields[k].get_default()}


#: The keys each NIfTI ``data.kind`` reads: of ``data``, and of each side.
_NIFTI_READS: dict[str, tuple[set[str], set[str]]] = {
    "msseg2016": (
        {"root", "modalities", "foreground"},
        {"centers", "annotators", "patients", "label"},
    ),
    "folder": (
        {"foreground"},
        {"folder", "manifest", "prediction_column", "probability_column"},
    ),
    "nnunet": (
        {"foreground"},
        {"folder", "cases", "cases_file", "split", "predictions", "probabilities"},
    ),
}
_SIDES = ("source", "target")

#: The keys of each side naming the saved predictions and their saved probabilities,
#: per ``data.kind`` that reads them.
_SAVED_KEYS: dict[str, tuple[str, str]] = {
    "folder": ("prediction_column", "probability_column"),
    "nnunet": ("predictions", "probabilities"),
}


class NiftiSelection(_Strict):
    """Which cases of a NIfTI layout form one environment."""

    folder: Path | None = None
    manifest: str | None = None
    centers: list[str] | None = None
    annotators: list[str] | None = None
    patients: list[str] | None = None
    label: str = "consensus"
    cases: list[str] | None = Field(
        None,
        min_length=1,
        description="nnunet: the case identifiers to load (load_nnunet_raw's cases); unset "
        "(and no cases_file): every case of the split",
    )
    cases_file: Path | None = Field(
        None,
        description="nnunet: a text file with one case identifier per line (blank lines and "
        "lines starting with '#' ignored), read from the configuration file's folder if "
        "relative; instead of cases",
    )
    split: Literal["Tr", "Ts"] = Field(
        "Tr",
        description="nnunet: 'Tr' (imagesTr, labelsTr) or 'Ts' (imagesTs, labelsTs: "
        "shiftattr run needs the masks)",
    )
    prediction_column: str | None = Field(
        None,
        description="folder, with model.kind = 'predictions': the manifest column holding "
        "each case's saved prediction (load_folder's prediction_column)",
    )
    predictions: Path | None = Field(
        None,
        description="nnunet, with model.kind = 'predictions': the folder of saved "
        "predictions, {case}{file_ending} per case as nnUNetv2_predict writes (read from "
        "the configuration file's folder if relative)",
    )
    probability_column: str | None = Field(
        None,
        description="folder, with prediction_column: the manifest column holding each "
        "case's saved probabilities, an nnU-Net .npz or a NIfTI map of the class scored "
        "(load_folder's probability_column)",
    )
    probabilities: bool = Field(
        False,
        description="nnunet, with predictions: also read {case}.npz from the predictions "
        "folder (nnUNetv2_predict --save_probabilities) for the confidence and entropy "
        "summaries",
    )


class NiftiData(_Strict):
    """Data from NIfTI files: a manifest folder, nnU-Net raw or MSSEG-2016."""

    kind: Literal["folder", "nnunet", "msseg2016"]
    root: Path | None = None
    source: NiftiSelection
    target: NiftiSelection
    modalities: list[str] = ["FLAIR"]
    foreground: StrictInt | None = Field(
        None,
        ge=1,
        description="with label-map masks (labels 0, 1, 2, ...), the label to score: Y "
        "becomes the binary mask label == foreground; unset, masks must be binary",
    )

    @model_validator(mode="after")
    def _check(self) -> NiftiData:
        if self.kind == "msseg2016" and self.root is None:
            raise ValueError("data.root is required for kind = 'msseg2016'")
        if self.kind in ("folder", "nnunet"):
            for side in ("source", "target"):
                if getattr(self, side).folder is None:
                    raise ValueError(f"data.{side}.folder is required for kind = {self.kind!r}")
        # keys another kind reads: given here, they would be ignored without a word
        reads_data, reads_side = _NIFTI_READS[self.kind]
        ignored = sorted(f"data.{k}" for k in _given(self) - reads_data - {"kind", *_SIDES})
        for side in _SIDES:
            ignored += sorted(f"data.{side}.{k}" for k in _given(getattr(self, side)) - reads_side)
        if ignored:
            reads = "; ".join(
                f"{kind!r}: {', '.join(sorted(d | s))}" for kind, (d, s) in _NIFTI_READS.items()
            )
            raise ValueError(
                f"{', '.join(ignored)} not read with data.kind = {self.kind!r}: remove "
                f"them, or choose the kind that reads them ({reads})"
            )
        for side in _SIDES:
            sel = getattr(self, side)
            if sel.cases is not None and sel.cases_file is not None:
                raise ValueError(
                    f"data.{side}.cases and data.{side}.cases_file both select the cases of "
                    f"data.{side}: give one of them"
                )
        return self


#: The keys of ``[model]`` each ``model.kind`` reads (besides ``kind``): the reference
#: U-Net is trained on the images as they are, with one output channel; a loaded model
#: may need its normalisation and channel; saved predictions run no model.
_MODEL_READS: dict[str, set[str]] = {
    "train-unet": {"epochs", "channels", "patch_size", "cache_gb"},
    "checkpoint": {
        "factory",
        "checkpoint",
        "patch_size",
        "cache_gb",
        "preprocess",
        "output_channel",
    },
    "predictions": {"cache_gb"},
}


class ModelConfig(_Strict):
    """The model to attribute: train the reference U-Net, load your own, or score the
    predictions it saved (``"predictions"``: named per side in ``data``)."""

    kind: Literal["train-unet", "checkpoint", "predictions"] = "train-unet"
    epochs: int = Field(15, ge=1)
    channels: list[Annotated[int, Field(gt=0)]] = Field([8, 16, 32], min_length=1)
    factory: str | None = Field(
        None, description="'package.module:function' returning an untrained torch.nn.Module"
    )
    checkpoint: Path | None = None
    patch_size: list[int] | None = None
    cache_gb: float | None = Field(
        None,
        gt=0,
        description="bound on the memory the model's cached predictions take (N x voxels x "
        "5 bytes, about 35 GB for 600 cases of 256x256x180); least recently used cases are "
        "evicted and the model runs again if they are needed (default: a quarter of the "
        "machine's memory, SegmentationAdapter's cache_max_bytes='auto')",
    )
    preprocess: str | None = Field(
        None,
        description="intensity normalisation of each case on its way to the model: "
        "'zscore' (per channel, nnU-Net's for MRI) or 'package.module:function'",
    )
    output_channel: StrictInt | None = Field(
        None,
        ge=0,
        description="the model's output channel of the class scored (SegmentationAdapter's "
        "channel=): with data.<side>.foreground = k and one output channel per class, set k",
    )

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if self.kind == "checkpoint" and (self.checkpoint is None or self.factory is None):
            raise ValueError("model.kind = 'checkpoint' needs model.factory and model.checkpoint")
        # a key this kind does not read would be ignored without a word (a checkpoint's
        # keys with the default kind trained a fresh U-Net instead of the user's model)
        unread = sorted(_given(self) - {"kind"} - _MODEL_READS[self.kind])
        if unread:
            where = "; ".join(
                f"model.{key} is read with model.kind = "
                + " or ".join(repr(kind) for kind, keys in _MODEL_READS.items() if key in keys)
                for key in unread
            )
            why = (
                ": the saved predictions are scored as they are"
                if self.kind == "predictions"
                else ""
            )
            raise ValueError(
                f"{', '.join(f'model.{k}' for k in unread)} not read with model.kind = "
                f"{self.kind!r}{why} ({where}); remove them or change model.kind"
            )
        if self.preprocess is not None:
            module, _, name = self.preprocess.partition(":")
            if self.preprocess not in _PREPROCESSORS and (not module or not name):
                raise ValueError(
                    f"model.preprocess must be one of {', '.join(map(repr, _PREPROCESSORS))} "
                    f"or look like 'package.module:function', got {self.preprocess!r}"
                )
        if self.factory is not None:
            module, _, name = self.factory.partition(":")
            if not module or not name:
                raise ValueError(
                    f"model.factory must look like 'package.module:function', got {self.factory!r}"
                )
        return self


class DiscriminatorConfig(_Strict):
    """Settings of the CNN discriminators (``attribution.image_estimator = "cnn"``)."""

    epochs: int = Field(12, ge=1)
    channels: list[Annotated[int, Field(gt=0)]] = Field([8, 16, 32], min_length=1)
    batch_size: int = Field(16, ge=2)
    patience: int = Field(4, ge=1)
    tta: bool = True
    downsample: (
        Literal["auto"]
        | Annotated[StrictInt, Field(ge=1)]
        | Annotated[list[Annotated[StrictInt, Field(ge=1)]], Field(min_length=2, max_length=3)]
    ) = Field(
        "auto",
        description="average-pool the images by this factor per spatial axis before the "
        "network: 'auto' brings every axis above 48 voxels to at most 48, 1 never pools; a "
        "list gives one factor per spatial axis (CNNDiscriminator's downsample)",
    )

    def build(self, spatial_dims: int, random_state: int | None = None, progress: bool = False):
        """The :class:`~shiftattr.ratios.CNNDiscriminator` these settings describe (needs
        torch, the ``images`` extra).

        Parameters
        ----------
        spatial_dims : int
            Spatial axes of an image case.
        random_state : int, optional
        progress : bool, default False
            Show each fit's epochs (a fit on large volumes takes minutes).

        Returns
        -------
        shiftattr.ratios.CNNDiscriminator
            Unfitted.

        Raises
        ------
        ConfigError
            ``downsample`` lists a number of factors other than ``spatial_dims``.

        Examples
        --------
        >>> cnn = DiscriminatorConfig(epochs=3).build(spatial_dims=3, random_state=0)
        >>> cnn.epochs, cnn.channels, cnn.patience
        (3, (8, 16, 32), 4)
        """
        from shiftattr.ratios.cnn import CNNDiscriminator

        factors = self.downsample
        if isinstance(factors, list) and len(factors) != spatial_dims:
            raise ConfigError(
                f"attribution.discriminator.downsample = {factors} gives {len(factors)} "
                f"factors for {spatial_dims}D images: give one per spatial axis, one int "
                "for all, or 'auto'"
            )

        return CNNDiscriminator(
            spatial_dims=spatial_dims,
            channels=tuple(self.channels),
            epochs=self.epochs,
            batch_size=self.batch_size,
            patience=self.patience,
            tta=self.tta,
            downsample=self.downsample
            if isinstance(self.downsample, str | int)
            else tuple(self.downsample),
            random_state=random_state,
            progress=progress,
        )


class AttributionConfig(_Strict):
    """How to attribute."""

    mechanisms: list[str] | None = None
    metric: str = "dice"
    empty: str | float | dict[str, float] = Field(
        "best",
        description="the metric's empty-mask policy (shiftattr.metrics.resolve_empty_policy):"
        " a preset name ('best' scores a case with both masks empty as perfect: 1 for Dice, "
        "0 for hausdorff95 and volume_difference), a number (the value of a case with both "
        "masks empty), or a table { both = ..., reference = ..., prediction = ... } giving "
        "the value where both, only the reference or only the prediction is empty (a "
        "distance such as hausdorff95 is infinite where exactly one mask is empty)",
    )
    n_folds: int = Field(5, ge=2)
    n_repeats: int = Field(1, ge=1)
    n_bootstrap: int = Field(
        200, ge=0, description="bootstrap replicates: 0 (no intervals) or 2 or more"
    )
    bootstrap: Literal["auto", "refit", "fixed"] = Field(
        "auto",
        description="'auto': 'refit' with the image statistics estimator, 'fixed' with the "
        "CNN discriminators (refitting them per replicate is out of reach); see "
        "bootstrap_mode",
    )
    interval: Literal["auto", "bootstrap", "bias_aware"] = "auto"
    solver: Literal["exact", "permutation"] = "exact"
    truncate: float | None = Field(None, gt=1)
    tolerance: float | None = Field(None, gt=0, allow_inf_nan=False)
    correction_cap: Literal["sqrt", "none"] | Annotated[float, Field(gt=1, allow_inf_nan=False)] = (
        "sqrt"
    )
    pooled_regressions: bool | Literal["auto"] = "auto"
    both_samples: bool | list[str] | Literal["auto"] = Field(
        "auto",
        description="method 'mr': take the terms of these levels (true: all unpaired) over both "
        "environments' cases with balance-heuristic weights; 'auto': true with paired "
        "and method 'mr'; see both_samples_mode and shiftattr.attribute",
    )
    conditional_ratios: Literal["difference", "offset", "offset_child"] = Field(
        "difference",
        description="how a conditional ratio is formed (shiftattr.attribute); 'offset_child' "
        "with image_estimator 'stats' also gives the annotation's ratio the mask's agreement "
        "with the model's prediction (SegmentationAdapter.agreement_features); the CNN "
        "discriminators have no feature matrix and keep the difference",
    )
    cross_check: bool = False
    image_estimator: Literal["stats", "cnn"] = "stats"
    image_statistics: Literal["basic", "extended"] | None = Field(
        None,
        description="image statistics of the 'stats' image estimator; unset: the "
        "ImageStatsRatio default ('extended')",
    )
    ratio_outputs: bool | Literal["auto"] = Field(
        "auto",
        description="the image ratio estimators also see the model's output summaries; "
        "'auto': on with the extended image statistics and method 'iw' or 'mis', or 'mr' "
        "over both samples (by default with paired); see ratio_outputs_mode",
    )
    method: Literal["auto", "iw", "mis", "regression", "mr"] = Field(
        "auto",
        description="value estimator; 'auto': 'mis'; 'mr' with paired, 'iw' with "
        "truncate or cross_check (which 'mis' does not take); see method_mode",
    )
    paired: list[str] | dict[str, str | tuple[str, str]] = []
    discriminator: DiscriminatorConfig = DiscriminatorConfig()
    n_jobs: int = Field(
        1,
        ge=-1,
        description="processes for the ratio fits and the refit bootstrap replicates "
        "(joblib; -1: one per core)",
    )
    random_state: int = 0

    @model_validator(mode="after")
    def _check(self) -> AttributionConfig:
        from shiftattr.bias_aware import resolve_interval
        from shiftattr.metrics import get_metric, metric_direction
        from shiftattr.metrics.empty import EMPTY_PRESETS, resolve_empty_policy
        from shiftattr.value import WEIGHTING_METHODS

        get_metric(self.metric)  # unknown names fail here, listing the known ones
        method = self.method_mode
        # errors about the method name the one the user did not choose: say where it came from
        resolved = (
            f" (attribution.method = 'auto' resolves to {method!r} here; set method to choose)"
            if self.method == "auto"
            else ""
        )
        if self.n_bootstrap == 1:
            raise ValueError(
                "attribution.n_bootstrap must be 0 (no intervals) or 2 or more (200 "
                "recommended): one replicate gives a zero-width interval"
            )
        if self.n_jobs == 0:
            raise ValueError(
                "attribution.n_jobs must be a number of processes (1 or more) or -1 for one "
                "per core, got 0"
            )
        if isinstance(self.empty, str):
            self.empty = self.empty.strip().lower()  # as the metrics read it
            if self.empty not in EMPTY_PRESETS:
                raise ValueError(
                    f"attribution.empty must be one of {', '.join(EMPTY_PRESETS)}, a number "
                    "or a table { both = ..., reference = ..., prediction = ... }, got "
                    f"{self.empty!r}"
                )
        else:
            try:
                resolve_empty_policy(self.empty)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"attribution.empty = {self.empty!r}: {exc}") from None
        if self.empty == "one" and metric_direction(self.metric) is False:
            raise ValueError(
                f"attribution.empty = 'one' would score a case whose masks are both empty "
                f"(a correct answer) as 1.0 {self.metric}, where lower is better: set "
                "attribution.empty = 'best' (0 for it)"
            )
        if self.mechanisms is not None:
            unknown = sorted(set(self.mechanisms) - set(_NODES))
            if unknown or not self.mechanisms or len(set(self.mechanisms)) < len(self.mechanisms):
                raise ValueError(
                    "attribution.mechanisms must name distinct nodes among "
                    f"{', '.join(_NODES)} (population, acquisition, annotation); got "
                    f"{self.mechanisms}"
                )
        if self.tolerance is not None and self.n_bootstrap == 0:
            raise ValueError(
                "attribution.tolerance is judged against the bootstrap intervals (or the "
                "bias-aware ones built on them), but attribution.n_bootstrap = 0: set "
                "n_bootstrap or remove tolerance"
            )
        if self.pooled_regressions is True and method in WEIGHTING_METHODS:
            raise ValueError(
                "attribution.pooled_regressions = true needs attribution.method 'mr' or "
                f"'regression' ({method!r} fits no regressions){resolved}"
            )
        if self.both_samples not in (False, [], "auto"):
            named = self.both_samples if isinstance(self.both_samples, list) else []
            unknown = sorted(set(named) - set(_NODES))
            if unknown:
                raise ValueError(
                    f"attribution.both_samples must name nodes among {', '.join(_NODES)}, "
                    f"got {self.both_samples}"
                )
            if method != "mr":
                raise ValueError(
                    "attribution.both_samples needs attribution.method 'mr' (got "
                    f"{method!r}{resolved})"
                )
            clash = sorted(set(named) & set(self.paired))
            if clash:
                raise ValueError(
                    f"attribution.both_samples names {clash}, which attribution.paired "
                    "substitutes; drop them from both_samples"
                )
        if self.truncate is not None and method in ("mr", "regression"):
            raise ValueError(
                f"attribution.truncate caps the weights of method 'iw'; {method!r} does not "
                "use them for its estimate (only for its comparison with 'iw'): remove it"
            )
        if "correction_cap" in _given(self) and method != "mr":
            raise ValueError(
                "attribution.correction_cap caps the weights of method 'mr''s corrections; "
                f"{method!r} has none{resolved}: remove it or set attribution.method = 'mr'"
            )
        if method == "mis" and (self.paired or self.truncate is not None):
            raise ValueError(
                "attribution.method 'mis' takes neither attribution.paired nor "
                "attribution.truncate (it does not substitute counterfactuals, and its "
                "weights are bounded by the other environment's cases)"
            )
        stats_only = [
            key
            for key, set_ in (
                ("image_statistics", self.image_statistics is not None),
                ("ratio_outputs", self.ratio_outputs is True),
            )
            if set_
        ]
        if self.image_estimator == "cnn" and stats_only:
            names = " and ".join(f"attribution.{k}" for k in stats_only)
            raise ValueError(
                f"{names} set{'s' if len(stats_only) == 1 else ''} the image-statistics "
                "ratio estimator, but attribution.image_estimator = 'cnn': remove "
                f"{'it' if len(stats_only) == 1 else 'them'} or use image_estimator = 'stats'"
            )
        if self.cross_check and method != "iw":
            raise ValueError(
                "attribution.cross_check = true is for attribution.method 'iw' ('mr' and "
                "'regression' are always compared with importance weighting)"
            )
        try:  # the library's rule, so that the two cannot drift apart
            resolve_interval(self.interval, method, self.n_bootstrap)
        except ValueError as exc:
            raise ValueError(f"attribution.interval = {self.interval!r}: {exc}{resolved}") from None
        allowed = self.mechanisms if self.mechanisms is not None else _NODES
        bad = sorted(set(self.paired) - set(allowed))
        if bad:
            raise ValueError(
                f"attribution.paired names {bad}, which are not attributed mechanisms "
                f"({', '.join(allowed)})"
            )
        return self

    @property
    def bootstrap_mode(self) -> str:
        """The bootstrap :func:`shiftattr.attribute` gets: ``bootstrap`` if set, else
        ``"refit"`` with the image statistics estimator and ``"fixed"`` with the CNN
        discriminators.

        Refit intervals hold the ratio estimators' own variance, which fixed ones leave
        out: on the synthetic MS benchmark (extended statistics, N = 100 and 300) they
        held the truth for 86 % of (run, mechanism) pairs with ``"iw"`` against 68 %
        fixed, and 82 % against 54 % with ``"mis"``. Refitting a CNN discriminator per
        replicate costs ``n_bootstrap`` trainings, hence ``"fixed"`` there.

        Examples
        --------
        >>> AttributionConfig().bootstrap_mode
        'refit'
        >>> AttributionConfig(image_estimator="cnn").bootstrap_mode
        'fixed'
        >>> AttributionConfig(bootstrap="fixed").bootstrap_mode
        'fixed'
        """
        if self.bootstrap != "auto":
            return self.bootstrap
        return "fixed" if self.image_estimator == "cnn" else "refit"

    @property
    def ratio_outputs_mode(self) -> bool:
        """Whether the image ratio estimators see the model's output summaries:
        ``ratio_outputs`` if set, else on with the image statistics estimator, its
        extended statistics (the default) and the weighting methods (``"iw"``,
        ``"mis"``, and ``"mr"`` with ``both_samples``).

        The weights then balance what the Dice depends on. Over the demo's 12 data seeds
        (refit intervals) they lowered the MAE of ``"iw"`` from 0.019 to 0.014 with every
        interval still holding the truth; on the synthetic MS benchmark (extended
        statistics) they lowered the MAE of ``"iw"`` and ``"mis"`` at every N. For
        ``"mr"`` and ``"regression"``, whose regressions already read the outputs, it
        was not measured to help; with the basic statistics it broke ``"iw"`` on the
        demo (ESS 1 %); and the CNN discriminators read voxels. ``"mr"`` with
        ``both_samples`` leans on its ratios as ``"mis"`` does, and they lowered its MAE
        from 0.019 to 0.015 (synthetic MS, N = 300, 55 runs).

        Examples
        --------
        >>> AttributionConfig().ratio_outputs_mode
        True
        >>> AttributionConfig(method="mr").ratio_outputs_mode
        False
        >>> AttributionConfig(method="mr", both_samples=True).ratio_outputs_mode
        True
        >>> AttributionConfig(image_estimator="cnn").ratio_outputs_mode
        False
        >>> AttributionConfig(image_statistics="basic").ratio_outputs_mode
        False
        >>> AttributionConfig(ratio_outputs=False).ratio_outputs_mode
        False
        """
        if self.ratio_outputs != "auto":
            return bool(self.ratio_outputs)
        from shiftattr.value import WEIGHTING_METHODS

        return (
            self.image_estimator == "stats"
            and self.image_statistics in (None, "extended")
            and (self.method_mode in WEIGHTING_METHODS or self.both_samples_mode not in (False, []))
        )

    @property
    def method_mode(self) -> str:
        """The value estimator :func:`shiftattr.attribute` gets: ``method`` if set, else
        ``"mis"``; ``"mr"`` with ``paired`` (and ``both_samples`` then, see
        :attr:`both_samples_mode`); ``"iw"`` with ``truncate`` or ``cross_check``. ``"mis"``
        takes none of the three.

        With paired annotations ``"mr"`` over both samples had the lowest error measured:
        on the synthetic MS scenarios whose annotators differ, MAE 0.0098 / 0.0083 /
        0.0047 at N = 100 / 300 / 1000, against 0.0166 / 0.0120 / 0.0079 for ``"mr"``
        over own cases and 0.0246 / 0.0152 / 0.0093 for ``"iw"`` with the same
        substitution, the extended statistics and the outputs in its ratios: what
        ``"auto"`` resolved to with ``paired`` before 2026-11-30.

        ``"mis"`` weights both environments' cases, so each coalition's mean is
        estimated from both samples. With the image statistics it had the lower error
        everywhere it was measured against ``"iw"`` with the same ratios: MAE 0.016
        against 0.027 on the synthetic MS benchmark at N = 300 (extended statistics and
        the model's outputs in the ratios), 0.012 against 0.014 over the demo's 12 data
        seeds, 0.031 against 0.054 on the tabular SCMs. Its interval is then the
        bias-aware one (``interval="auto"``), which held the truth where its bootstrap
        interval did not. With the CNN discriminators too (synthetic MS, N = 300, 55
        runs): MAE 0.036 against 0.045, its bias-aware intervals held the truth for 72 %
        of the (run, mechanism) pairs where ``"iw"``'s held it for 59 %.

        Examples
        --------
        >>> AttributionConfig().method_mode
        'mis'
        >>> AttributionConfig(image_estimator="cnn").method_mode
        'mis'
        >>> AttributionConfig(paired=["Y"]).method_mode
        'mr'
        >>> AttributionConfig(truncate=20.0).method_mode
        'iw'
        >>> AttributionConfig(method="mr").method_mode
        'mr'
        """
        if self.method != "auto":
            return self.method
        if self.truncate is not None or self.cross_check:
            return "iw"
        return "mr" if self.paired else "mis"

    @property
    def both_samples_mode(self) -> bool | list[str]:
        """The ``both_samples`` :func:`shiftattr.attribute` gets: ``both_samples`` if set,
        else ``True`` with ``paired`` and the method ``"mr"``, else ``False``.

        Paired annotations take away what ``both_samples`` otherwise costs, a ratio of
        the annotation (see :attr:`method_mode` for the measurements).

        Examples
        --------
        >>> AttributionConfig().both_samples_mode
        False
        >>> AttributionConfig(paired=["Y"]).both_samples_mode
        True
        >>> AttributionConfig(paired=["Y"], both_samples=False).both_samples_mode
        False
        >>> AttributionConfig(paired=["Y"], method="iw").both_samples_mode
        False
        """
        if self.both_samples != "auto":
            return self.both_samples
        return bool(self.paired) and self.method_mode == "mr"


class OutputConfig(_Strict):
    """Where the report folder goes."""

    folder: Path = Path("shiftattr-report")


class RunConfig(_Strict):
    """A whole ``shiftattr run`` configuration.

    Build it with :func:`load_config` (from a TOML file or a dict) or
    ``RunConfig.model_validate(mapping)``; unknown keys are errors.

    Attributes
    ----------
    data : SyntheticData or NiftiData
        The two environments to compare, chosen by ``data.kind``: ``"synthetic"``
        (simulated with :class:`shiftattr.datasets.SyntheticMS`) or ``"folder"``,
        ``"nnunet"``, ``"msseg2016"`` (NIfTI files). Required.
    model : ModelConfig
        The model to attribute: train the reference U-Net (default) or load a
        checkpoint.
    attribution : AttributionConfig
        How to attribute: metric, mechanisms, folds, bootstrap, solver, estimator...
    output : OutputConfig
        Where the report folder is written (default ``shiftattr-report``).

    Examples
    --------
    >>> cfg = RunConfig.model_validate(
    ...     {"data": {"kind": "synthetic", "shape": [16, 16, 16]},
    ...      "attribution": {"n_bootstrap": 50}})
    >>> cfg.data.kind, cfg.data.shape, cfg.attribution.n_bootstrap, cfg.model.kind
    ('synthetic', (16, 16, 16), 50, 'train-unet')
    >>> str(cfg.output.folder)
    'shiftattr-report'
    """

    data: Annotated[SyntheticData | NiftiData, Field(discriminator="kind")]
    model: ModelConfig = ModelConfig()
    attribution: AttributionConfig = AttributionConfig()
    output: OutputConfig = OutputConfig()

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        if self.model.kind == "train-unet" and self.data.kind != "synthetic":
            raise ValueError(
                f"model.kind = 'train-unet' needs data.kind = 'synthetic' (got "
                f"{self.data.kind!r}); for NIfTI data give model.kind = 'checkpoint' with "
                "model.factory and model.checkpoint, or model.kind = 'predictions' with the "
                "predictions your model saved"
            )
        self._check_predictions()
        paired = sorted(self.attribution.paired)
        if paired and self.data.kind in ("folder", "nnunet"):
            raise ValueError(
                f"attribution.paired = {paired} needs readings of the same cases by both "
                f"sides, which data.kind = {self.data.kind!r} does not load; only 'synthetic' "
                "and 'msseg2016' (every case read by all seven raters) have them. Remove "
                "attribution.paired."
            )
        if (
            isinstance(self.attribution.paired, list)
            and paired
            and self.data.kind == "msseg2016"
            and (self.data.source.annotators or self.data.target.annotators)
        ):
            raise ValueError(
                "attribution.paired = ['Y'] pairs each side with the other side's rater "
                "(data.<side>.label), but data.source.annotators or data.target.annotators "
                "lists several raters per side; give one label per side, or name the keys "
                "with attribution.paired = {Y = 'annotator-<k>'}"
            )
        if paired and paired != ["Y"]:
            raise ValueError(
                f"attribution.paired = {paired}: only the annotation Y can be paired with "
                f"data.kind = {self.data.kind!r} (the same images read by another annotator); "
                "a case cannot be re-scanned or its patient re-drawn."
            )
        return self

    def _check_predictions(self) -> None:
        """``model.kind = "predictions"`` and the data's prediction keys go together."""
        key, proba_key = _SAVED_KEYS.get(self.data.kind, (None, None))
        if self.model.kind != "predictions":
            given = [
                f"data.{side}.{k}"
                for side in _SIDES
                for k in (key, proba_key)
                if k is not None and getattr(getattr(self.data, side), k) not in (None, False)
            ]
            if given:
                raise ValueError(
                    f"{', '.join(given)} name saved predictions, which only model.kind = "
                    f"'predictions' scores (got {self.model.kind!r}): set model.kind = "
                    "'predictions', or remove them"
                )
            return
        if key is None:
            raise ValueError(
                f"model.kind = 'predictions' reads saved predictions with data.kind = "
                f"'folder' (data.<side>.prediction_column) or 'nnunet' "
                f"(data.<side>.predictions), not {self.data.kind!r}"
            )
        missing = [
            f"data.{side}.{key}"
            for side in _SIDES
            if getattr(getattr(self.data, side), key) is None
        ]
        if missing:
            raise ValueError(
                f"model.kind = 'predictions' needs {', '.join(missing)}: where each side's "
                "saved predictions are"
            )
        if self.attribution.paired:
            raise ValueError(
                "attribution.paired needs the model to score other readings of the same "
                "cases; with model.kind = 'predictions' remove attribution.paired"
            )
        given = [bool(getattr(getattr(self.data, side), proba_key)) for side in _SIDES]
        if any(given) and not all(given):
            half = [f"data.{side}.{proba_key}" for side, g in zip(_SIDES, given) if not g]
            raise ValueError(
                f"saved probabilities are read on one side only: set {', '.join(half)} too "
                "(the output features must mean the same on both sides), or remove them"
            )


class ConfigError(ValueError):
    """An invalid configuration; the message names every offending key.

    A :class:`ValueError`, raised by :func:`load_config` (and so by ``shiftattr run``)
    for unreadable TOML, a missing file or values that fail validation.

    Examples
    --------
    >>> try:
    ...     load_config({"data": {"kind": "synthetic", "shape": [32, 32, 32]},
    ...                  "attribution": {"n_folds": 1}})
    ... except ConfigError as err:
    ...     print(err)
    invalid configuration <dict>:
      attribution.n_folds: Input should be greater than or equal to 2
    >>> issubclass(ConfigError, ValueError)
    True
    """


#: The tags of ``data.kind``, which pydantic puts in an error's location after ``data``.
_DATA_KINDS = ("synthetic", *_NIFTI_READS)


def _format(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration {source}:"]
    for e in err.errors():
        parts = [str(p) for p in e["loc"] if not str(p).startswith("function-")]
        if len(parts) > 2 and parts[0] == "data" and parts[1] in _DATA_KINDS:
            del parts[1]  # "data.folder.source.labl" is the key data.source.labl
        loc = ".".join(parts)
        lines.append(f"  {loc or '(top level)'}: {e['msg']}")
    return "\n".join(lines)


def load_config(path_or_dict: str | Path | dict[str, Any]) -> RunConfig:
    """Read and validate a TOML file (or an already parsed dict).

    Parameters
    ----------
    path_or_dict : str, Path or dict

    Returns
    -------
    RunConfig

    Raises
    ------
    ConfigError
        Unreadable TOML, or values that fail validation (each key named).

    Notes
    -----
    Paths read from a file (``data.root``, ``data.<side>.folder``,
    ``data.<side>.cases_file``, ``data.<side>.predictions``, ``model.checkpoint``,
    ``output.folder``) are relative to
    that file's folder, and ``~`` is expanded, so a configuration runs the same from any
    working directory; an ``output.folder`` the file does not set is the default
    ``shiftattr-report`` in the working directory. A dict's paths are kept as given.

    Examples
    --------
    >>> cfg = load_config({"data": {"kind": "synthetic"}})
    >>> cfg.attribution.metric, cfg.data.target.center
    ('dice', '03')
    >>> load_config({"data": {"kind": "synthetic", "shape": [32, 32]}, "modle": {}})
    Traceback (most recent call last):
    ...
    shiftattr.config.ConfigError: invalid configuration <dict>:
      modle: Extra inputs are not permitted
    """
    if isinstance(path_or_dict, dict):
        raw, source = path_or_dict, "<dict>"
    else:
        path = Path(path_or_dict)
        source = str(path)
        try:
            with open(path, "rb") as fh:  # TOML is UTF-8 whatever the locale
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"configuration file {path} does not exist") from None
        except IsADirectoryError:
            raise ConfigError(f"configuration {path} is a folder, not a TOML file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"configuration {path} cannot be read as TOML: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration {path} is not valid TOML: {exc}") from None
    try:
        cfg = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format(exc, source)) from None
    if not isinstance(path_or_dict, dict):
        _anchor_paths(cfg, path.parent)
    return cfg


def _anchor_paths(cfg: RunConfig, base: Path) -> None:
    """Make the configuration's paths independent of the working directory: ``~`` is
    expanded, and a relative path is read from the configuration file's folder."""

    def anchored(p: Path) -> Path:
        p = p.expanduser()
        return p if p.is_absolute() else base / p

    data = cfg.data
    if isinstance(data, NiftiData):
        if data.root is not None:
            data.root = anchored(data.root)
        for side in (data.source, data.target):
            if side.folder is not None:
                side.folder = anchored(side.folder)
            if side.cases_file is not None:
                side.cases_file = anchored(side.cases_file)
            if side.predictions is not None:
                side.predictions = anchored(side.predictions)
    if cfg.model.checkpoint is not None:
        cfg.model.checkpoint = anchored(cfg.model.checkpoint)
    if "folder" in cfg.output.model_fields_set:  # the default stays in the working directory
        cfg.output.folder = anchored(cfg.output.folder)
