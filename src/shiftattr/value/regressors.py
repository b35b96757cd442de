"""Cross-fitted regressions of a per-case outcome, with the regressor chosen by out-of-fold error.

The nested regressions of the multiply-robust and regression estimators are ordinary
supervised problems: predict a per-case outcome (the metric, or the previous level's
regression) from the features of the variables earlier in the causal order. Every
case's prediction must come from a model that did not see it (cross-fitting), and the
model family should adapt to the data: a penalised linear model on a few hundred cases,
boosting when there are thousands and interactions. :func:`crossfit_regression` fits
each candidate on every fold, keeps the one with the lowest out-of-fold squared error,
and returns its out-of-fold predictions together with predictions for other cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from inspect import signature
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from shiftattr._clone import with_seed
from shiftattr._threads import limit_threads
from shiftattr.ratios.classifier import BOOSTING_PARAMS
from shiftattr.value.ridge import StandardisedRidgeCV

__all__ = [
    "REGRESSION_BOOSTING_PARAMS",
    "CrossFitPrediction",
    "candidate_regressors",
    "crossfit_regression",
    "default_regressors",
    "takes_sample_weight",
]

#: The boosting regressor's settings: the classifiers' trees and penalties with a third
#: of the rounds at three times the step. On the benchmark SCMs' metric regressions
#: (300 and 1,000 cases) the out-of-fold R² stays within 0.025 of 150 rounds at 0.1 while
#: each fit takes a third of the time, and the nested regressions fit it once per fold
#: for every (level, downstream assignment). Early stopping was worse: its validation
#: split stopped at a few rounds on 300 noisy cases (R² 0.02-0.06 instead of 0.26).
REGRESSION_BOOSTING_PARAMS: dict[str, object] = {
    **BOOSTING_PARAMS,
    "max_iter": 50,
    "learning_rate": 0.3,
}


def default_regressors(random_state: int | None = None) -> dict[str, object]:
    """The regressors the nested regressions choose between by default.

    - ``"ridge"``: standardised linear ridge regression, penalty by efficient
      leave-one-out; the safe choice on a few hundred cases.
    - ``"quadratic-ridge"``: ridge on standardised degree-2 polynomial features, for
      curvature and pairwise interactions.
    - ``"gradient-boosting"``: regularised histogram gradient boosting
      (:data:`REGRESSION_BOOSTING_PARAMS`), for thresholds and higher-order
      interactions once there are enough cases.

    Both ridges are :class:`~shiftattr.value.ridge.StandardisedRidgeCV`, the closed form
    of the scikit-learn pipelines ``StandardScaler`` (``PolynomialFeatures``,
    ``StandardScaler``) ``RidgeCV``: the same penalty and predictions to rounding, without
    the per-call validation that dominates a fit on a few hundred cases.

    Parameters
    ----------
    random_state : int, optional
        Seed of the boosting model.

    Returns
    -------
    dict
        Name -> unfitted scikit-learn regressor.

    Examples
    --------
    >>> sorted(default_regressors())
    ['gradient-boosting', 'quadratic-ridge', 'ridge']
    """
    return {
        "ridge": StandardisedRidgeCV(),
        "quadratic-ridge": StandardisedRidgeCV(degree=2),
        "gradient-boosting": HistGradientBoostingRegressor(
            **REGRESSION_BOOSTING_PARAMS, random_state=random_state
        ),
    }


def candidate_regressors(regressors: Any = None, random_state: int | None = None) -> dict:
    """The candidates a ``regressors`` argument stands for, by name.

    Parameters
    ----------
    regressors : estimator or mapping of str to estimator, optional
        ``None`` for :func:`default_regressors`, one regressor (named after its class),
        or a mapping of names to regressors.
    random_state : int, optional
        Seed of the default regressors, and of given ones whose ``random_state`` is unset.

    Returns
    -------
    dict of str to estimator

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression
    >>> list(candidate_regressors(LinearRegression()))
    ['LinearRegression']
    >>> sorted(candidate_regressors())
    ['gradient-boosting', 'quadratic-ridge', 'ridge']
    """
    if regressors is None:
        return default_regressors(random_state)
    given = (
        regressors if isinstance(regressors, Mapping) else {type(regressors).__name__: regressors}
    )
    # a given regressor left unseeded gets random_state (a copy: the caller's stays as is)
    return {name: with_seed(clone(reg), random_state) for name, reg in given.items()}


@dataclass
class CrossFitPrediction:
    """Out-of-fold predictions of one cross-fitted regression.

    Attributes
    ----------
    oof : ndarray of shape (N_fit,)
        Prediction for every fitting case from the fold model that did not see it.
    other : ndarray of shape (N_other,)
        Prediction for the other cases: the mean of the fold models.
    r2 : float
        Out-of-fold coefficient of determination of the chosen regressor.
    chosen : str
        Name of the chosen regressor.
    mse : dict
        Out-of-fold mean squared error of every candidate.
    candidates_oof : dict, optional
        Out-of-fold predictions of every candidate (for another rule of choice).

    Examples
    --------
    >>> p = CrossFitPrediction(np.zeros(2), np.zeros(1), 0.5, "ridge", {"ridge": 1.0})
    >>> p.chosen
    'ridge'
    """

    oof: np.ndarray
    other: np.ndarray
    r2: float
    chosen: str
    mse: dict[str, float]
    candidates_oof: dict[str, np.ndarray] | None = None


def crossfit_regression(
    X: np.ndarray,
    y: np.ndarray,
    folds: np.ndarray,
    X_other: np.ndarray,
    regressors: Mapping[str, object] | object | None = None,
    random_state: int | None = None,
    n_threads: int | None = 1,
    sample_weight: np.ndarray | None = None,
) -> CrossFitPrediction:
    """Cross-fit ``E[y | X]`` and predict it out of fold and on other cases.

    Parameters
    ----------
    X : ndarray of shape (N, p)
        Features of the fitting cases (``p`` may be 0: the regression is then the mean).
    y : ndarray of shape (N,)
        Outcome per fitting case.
    folds : ndarray of int, shape (N,)
        Fold label per fitting case.
    X_other : ndarray of shape (M, p)
        Cases none of the models saw (e.g. the other environment's).
    regressors : estimator or mapping of str to estimator, optional
        One scikit-learn regressor, or candidates to choose between by out-of-fold
        squared error; default :func:`default_regressors`.
    random_state : int, optional
        Seed for the default regressors.
    n_threads : int or None, default 1
        OpenMP/BLAS threads per fit (one is fastest on shared machines).
    sample_weight : ndarray of shape (N,), optional
        Case weights of the fits (passed to the last step of a pipeline, which must
        accept them), the out-of-fold error that chooses the regressor and its R².

    Returns
    -------
    CrossFitPrediction

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> y = X[:, 0] + 0.1 * rng.normal(size=200)
    >>> p = crossfit_regression(X, y, np.arange(200) % 4, X[:5], random_state=0)
    >>> bool(p.r2 > 0.9), p.oof.shape, p.other.shape
    (True, (200,), (5,))
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    X_other = np.asarray(X_other, dtype=float)
    folds = np.asarray(folds)
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    if X.shape[1] == 0 or np.ptp(y) == 0:  # nothing to regress on, or nothing to explain
        oof = np.empty_like(y)
        for f in np.unique(folds):
            train = folds != f
            oof[folds == f] = np.average(y[train], weights=None if w is None else w[train])
        mean = float(np.average(y, weights=w))
        return CrossFitPrediction(oof, np.full(len(X_other), mean), 0.0, "mean", {})
    regressors = candidate_regressors(regressors, random_state)
    if w is not None:
        unweighted = [name for name, reg in regressors.items() if not takes_sample_weight(reg)]
        if unweighted:
            raise ValueError(
                f"pooled regressions weight their cases, but regressor(s) {unweighted} take "
                "no sample_weight in fit (in a pipeline: its last step): pass regressors "
                "that do (e.g. RidgeCV, HistGradientBoostingRegressor), or fit without "
                "sample_weight (attribute(pooled_regressions=False))."
            )
    fold_ids = np.unique(folds)
    oof = {name: np.empty_like(y) for name in regressors}
    other = {name: np.zeros(len(X_other)) for name in regressors}
    with limit_threads(n_threads):
        for f in fold_ids:
            train, test = folds != f, folds == f
            for name, reg in regressors.items():
                model = _fit(clone(reg), X[train], y[train], None if w is None else w[train])
                oof[name][test] = model.predict(X[test])
                if len(X_other):
                    other[name] += model.predict(X_other) / len(fold_ids)
    mse = {name: float(np.average((oof[name] - y) ** 2, weights=w)) for name in regressors}
    best = min(mse, key=mse.__getitem__)
    r2 = 1.0 - mse[best] / float(np.average((y - np.average(y, weights=w)) ** 2, weights=w))
    return CrossFitPrediction(oof[best], other[best], float(r2), best, mse, oof)


def takes_sample_weight(model) -> bool:
    """Whether ``model.fit`` (a pipeline's last step) accepts ``sample_weight``.

    Parameters
    ----------
    model : estimator or sklearn.pipeline.Pipeline

    Returns
    -------
    bool

    Examples
    --------
    >>> from sklearn.linear_model import RidgeCV
    >>> from sklearn.neighbors import KNeighborsRegressor
    >>> takes_sample_weight(RidgeCV()), takes_sample_weight(KNeighborsRegressor())
    (True, False)
    """
    step = model.steps[-1][1] if isinstance(model, Pipeline) else model
    return "sample_weight" in signature(step.fit).parameters


def _fit(model, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None):
    """``model.fit`` with case weights, routed to the last step of a pipeline."""
    if sample_weight is None:
        return model.fit(X, y)
    if isinstance(model, Pipeline):
        return model.fit(X, y, **{f"{model.steps[-1][0]}__sample_weight": sample_weight})
    return model.fit(X, y, sample_weight=sample_weight)
