"""Simulators with known ground truth: the proof of how accurate an attribution is.

:class:`LinearGaussianSCM` gives a closed-form truth for tabular data;
:class:`SyntheticMS` simulates 3D MS-lesion volumes from explicit population,
acquisition and annotation mechanisms.
"""

from __future__ import annotations

import importlib
from typing import Any

from shiftattr.datasets.linear_gaussian import LinearGaussianSCM, LinearMechanism
from shiftattr.datasets.truth import TrueAttribution, all_coalitions, shapley_from_table

_SYNTHETIC_MS = (
    "ANNOTATOR_PRESETS",
    "CENTER_PRESETS",
    "POPULATION_PRESETS",
    "AnnotatorSpec",
    "CenterSpec",
    "PopulationSpec",
    "SyntheticMS",
)

__all__ = [
    *_SYNTHETIC_MS,
    "LinearGaussianSCM",
    "LinearMechanism",
    "TrueAttribution",
    "all_coalitions",
    "shapley_from_table",
]


def __getattr__(name: str) -> Any:
    if name in _SYNTHETIC_MS:
        return getattr(importlib.import_module("shiftattr.datasets.synthetic_ms"), name)
    raise AttributeError(f"module 'shiftattr.datasets' has no attribute {name!r}")
