"""shiftattr — why did my model's performance change between environments?

Attribute a model's performance change between a source (training) and a target
(deployment) environment to the causal mechanisms of the data-generating process
(scanner, annotator, patient population, any node of a DAG) with Shapley values,
estimating each counterfactual with classifier-based density ratios.

The core (graph, environments, tabular ratios, Shapley solvers, attribution) needs
only numpy/scipy/scikit-learn; the image parts (:mod:`shiftattr.segmentation`,
:class:`shiftattr.ratios.CNNDiscriminator`) need the ``images`` extra (torch, nibabel)
and are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from shiftattr import datasets, ratios, shapley
from shiftattr.attribution import attribute
from shiftattr.environment import Environment, LazyVolumes
from shiftattr.graph import CausalGraph, GraphError
from shiftattr.results import Attribution

__version__ = "0.1.0.dev0"

__all__ = [
    "Attribution",
    "CausalGraph",
    "Environment",
    "GraphError",
    "LazyVolumes",
    "PairwiseAttribution",
    "__version__",
    "attribute",
    "attribute_pairs",
    "datasets",
    "metrics",
    "ratios",
    "segmentation",
    "shapley",
]

_LAZY_MODULES = {"metrics", "segmentation", "cli"}
_LAZY_NAMES = {
    "attribute_pairs": "shiftattr.pairwise",
    "PairwiseAttribution": "shiftattr.pairwise",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(f"shiftattr.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    raise AttributeError(f"module 'shiftattr' has no attribute {name!r}")
