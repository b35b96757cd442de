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

__all__ = [
    "LinearGaussianSCM",
    "LinearMechanism",
    "SyntheticMS",
    "TrueAttribution",
    "all_coalitions",
    "shapley_from_table",
]


def __getattr__(name: str) -> Any:
    if name == "SyntheticMS":
        return importlib.import_module("shiftattr.datasets.synthetic_ms").SyntheticMS
    raise AttributeError(f"module 'shiftattr.datasets' has no attribute {name!r}")
