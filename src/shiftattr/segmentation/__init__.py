"""Segmentation models and NIfTI data for attribution (needs the ``images`` extra).

* :class:`SegmentationAdapter` — any torch model or callable + any voxelwise metric ->
  per-case metric values (cached predictions, sliding window, lazy data), and
  per-case features of the model's output (:meth:`SegmentationAdapter.output_features`).
* :class:`SavedPredictions` — the same from predictions saved on disk (node ``"P"`` of
  the NIfTI loaders), for pipelines that predict with their own tools (nnU-Net), with
  their saved probabilities when there are some (node ``"P_proba"``,
  :mod:`~shiftattr.segmentation.probability_maps`).
* :func:`mask_features` — summary features of one predicted mask and probability map
  (volume, confidence, boundary uncertainty, components), named by
  :data:`MASK_FEATURE_NAMES`; :func:`mask_agreement` — how a reference mask agrees with
  the prediction, named by :data:`AGREEMENT_FEATURE_NAMES`.
* :func:`sliding_window_inference` — patch-wise inference with Gaussian blending.
* :func:`load_torch_checkpoint` — safe (``weights_only``) weight loading.
* :func:`zscore` (and :data:`PREPROCESSORS`) — intensity normalisation on the way to
  the model (``SegmentationAdapter(preprocess=...)``).
* :func:`load_folder`, :func:`load_nnunet_raw`, :func:`load_msseg2016` — lazy
  environments from NIfTI files; :func:`check_comparable` — do two of them present
  the same channels, in one orientation?
* :class:`UNet3D`, :func:`train_segmentation_model`, :func:`save_checkpoint`,
  :func:`load_checkpoint` — a small reference U-Net.

Install with ``pip install "shiftattr[images]"`` (torch, nibabel).
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "shiftattr.segmentation needs PyTorch (and nibabel for NIfTI files): "
        'pip install "shiftattr[images]"'
    ) from exc

from shiftattr.segmentation.adapter import SegmentationAdapter
from shiftattr.segmentation.checkpoint import (
    CheckpointError,
    load_state_dict,
    load_torch_checkpoint,
)
from shiftattr.segmentation.features import (
    AGREEMENT_FEATURE_NAMES,
    MASK_FEATURE_NAMES,
    mask_agreement,
    mask_features,
)
from shiftattr.segmentation.nifti import (
    MSSEG2016_MODALITIES,
    NiftiDataError,
    NiftiVolumeLoader,
    check_comparable,
    load_folder,
    load_msseg2016,
    load_nnunet_raw,
    msseg2016_environments,
    select_cases,
)
from shiftattr.segmentation.preprocessing import PREPROCESSORS, zscore
from shiftattr.segmentation.probability_maps import ProbabilityMapLoader, probability_map_info
from shiftattr.segmentation.saved_predictions import MIN_PROBABILITY_CONTRAST, SavedPredictions
from shiftattr.segmentation.sliding_window import (
    gaussian_importance_map,
    sliding_window_inference,
    window_starts,
)
from shiftattr.segmentation.unet import (
    UNet3D,
    load_checkpoint,
    save_checkpoint,
    train_segmentation_model,
)

__all__ = [
    "AGREEMENT_FEATURE_NAMES",
    "MASK_FEATURE_NAMES",
    "MIN_PROBABILITY_CONTRAST",
    "MSSEG2016_MODALITIES",
    "PREPROCESSORS",
    "CheckpointError",
    "NiftiDataError",
    "NiftiVolumeLoader",
    "ProbabilityMapLoader",
    "SavedPredictions",
    "SegmentationAdapter",
    "UNet3D",
    "check_comparable",
    "gaussian_importance_map",
    "load_checkpoint",
    "load_folder",
    "load_msseg2016",
    "load_nnunet_raw",
    "load_state_dict",
    "load_torch_checkpoint",
    "mask_agreement",
    "mask_features",
    "msseg2016_environments",
    "probability_map_info",
    "save_checkpoint",
    "select_cases",
    "sliding_window_inference",
    "train_segmentation_model",
    "window_starts",
    "zscore",
]
