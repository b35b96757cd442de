"""Value estimators: how ``M(P_I)``, the metric under a mixed distribution, is estimated.

- ``"iw"``: self-normalised importance weighting of the source cases
  (:func:`shiftattr.attribution.iw_game`);
- ``"mis"``: importance weighting of the source and the target cases together, with
  balance-heuristic weights (:class:`BalancedValue`);
- ``"regression"``: nested regressions of the metric along the causal order
  (:class:`NestedRegressions`), plug-in;
- ``"mr"``: the same regressions corrected by the density ratios, multiply robust
  (:class:`RobustValue`);
- ``"generative"``: every mechanism fitted as a sampler, every mixed distribution
  simulated and scored (:class:`GenerativeValue`; tabular graphs);
- paired substitution (:func:`paired_metrics`) for mechanisms whose target value is
  observed for the source cases; it composes with ``"iw"``, ``"regression"`` and
  ``"mr"``.

An image node's regressions see summaries of it (:func:`node_features`), or, with
``features={"X": raw_features("X")}`` and ``regressor=CNNRegressor(...)``, its voxels
through a small convolutional network (``images`` extra).
"""

import importlib
from typing import Any

from shiftattr.value.balance import BalancedValue
from shiftattr.value.features import Featurizer, level_features, node_features, raw_features
from shiftattr.value.generative import GenerativeValue, MechanismSampler, fit_sampler
from shiftattr.value.nested import NestedRegressions, RegressionFit
from shiftattr.value.paired import PairedSpec, check_paired, paired_keys, paired_metrics
from shiftattr.value.regressors import (
    CrossFitPrediction,
    candidate_regressors,
    crossfit_regression,
    default_regressors,
)
from shiftattr.value.ridge import StandardisedRidgeCV
from shiftattr.value.robust import RobustValue

#: The value estimators :func:`shiftattr.attribute` accepts.
ESTIMATORS = ("iw", "mis", "regression", "mr", "generative")
#: Those whose values are functions of the density ratios alone (no regressions).
WEIGHTING_METHODS = ("iw", "mis")

__all__ = [
    "ESTIMATORS",
    "WEIGHTING_METHODS",
    "BalancedValue",
    "CNNRegressor",
    "CrossFitPrediction",
    "Featurizer",
    "GenerativeValue",
    "MechanismSampler",
    "NestedRegressions",
    "PairedSpec",
    "RegressionFit",
    "RobustValue",
    "StandardisedRidgeCV",
    "candidate_regressors",
    "check_paired",
    "crossfit_regression",
    "default_regressors",
    "fit_sampler",
    "level_features",
    "node_features",
    "paired_keys",
    "paired_metrics",
    "raw_features",
]


def __getattr__(name: str) -> Any:
    if name == "CNNRegressor":  # needs torch (the images extra): imported on first use
        return importlib.import_module("shiftattr.value.cnn_regressor").CNNRegressor
    raise AttributeError(f"module 'shiftattr.value' has no attribute {name!r}")
