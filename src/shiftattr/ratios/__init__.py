"""Density-ratio estimators ``log p_target / p_source`` and their cross-fitting.

:class:`DensityRatioEstimator` is the small interface to extend;
:class:`ClassifierRatio` serves tabular nodes; :class:`ImageStatsRatio` (per-case
image and mask statistics, no torch) and :class:`CNNDiscriminator` (``images`` extra,
imported on first use) serve image nodes.
"""

from __future__ import annotations

import importlib
from typing import Any

from shiftattr.ratios.base import DensityRatioEstimator
from shiftattr.ratios.classifier import ClassifierRatio
from shiftattr.ratios.crossfit import CrossFittedRatios, MechanismRatios
from shiftattr.ratios.image_stats import ImageStatsRatio, image_statistics
from shiftattr.ratios.logistic import StandardisedLogisticRegression

__all__ = [
    "CNNDiscriminator",
    "ClassifierRatio",
    "CrossFittedRatios",
    "DensityRatioEstimator",
    "ImageStatsRatio",
    "MechanismRatios",
    "StandardisedLogisticRegression",
    "image_statistics",
]


def __getattr__(name: str) -> Any:
    if name == "CNNDiscriminator":
        return importlib.import_module("shiftattr.ratios.cnn").CNNDiscriminator
    raise AttributeError(f"module 'shiftattr.ratios' has no attribute {name!r}")
