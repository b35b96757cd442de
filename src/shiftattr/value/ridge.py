"""Standardised ridge regression with its penalty chosen by leave-one-out, in closed form.

The nested regressions fit a ridge model once per fold for every (level, downstream
assignment), often dozens of times per attribution on a few hundred cases. There the
cost of a scikit-learn pipeline (``StandardScaler`` then ``RidgeCV``, optionally with
``PolynomialFeatures``) is mostly input validation and bookkeeping, not arithmetic.
:class:`StandardisedRidgeCV` is the same model computed directly: standardise, one thin
SVD of the centred design, the exact leave-one-out error of every penalty from it
(Golub, Heath & Wahba, 1979), the coefficients of the best. It follows scikit-learn's
estimator conventions, so it can be cloned, passed as ``regressor=`` and mixed with
any other regressor.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import RidgeCV

from shiftattr._clone import CloneByParams
from shiftattr._design import fit_design, fitted_design

__all__ = ["StandardisedRidgeCV"]

_ALPHAS = tuple(np.logspace(-3, 4, 15))


class StandardisedRidgeCV(CloneByParams, RegressorMixin, BaseEstimator):
    """Ridge regression on standardised (optionally degree-2) features, penalty by LOO.

    Equal, up to rounding, to ``make_pipeline(StandardScaler(), RidgeCV(alphas))`` and, with
    ``degree=2``, to ``make_pipeline(StandardScaler(), PolynomialFeatures(2,
    include_bias=False), StandardScaler(), RidgeCV(alphas))``, at a fraction of their
    cost on small data.

    Parameters
    ----------
    alphas : sequence of float, default ``logspace(-3, 4, 15)``
        Penalties to choose from by efficient leave-one-out squared error.
    degree : {1, 2}, default 1
        ``2`` adds every square and pairwise product of the standardised features, then
        standardises those again.

    Attributes
    ----------
    alpha_ : float
        The chosen penalty.
    coef_ : ndarray of shape (n_expanded_features,)
        Coefficients on the standardised (expanded) features.
    intercept_ : float
    n_features_in_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 2))
    >>> y = X[:, 0] ** 2 + 0.1 * rng.normal(size=100)
    >>> lin = StandardisedRidgeCV().fit(X, y)
    >>> quad = StandardisedRidgeCV(degree=2).fit(X, y)
    >>> bool(quad.score(X, y) > 0.95 > lin.score(X, y))
    True
    """

    def __init__(self, alphas=_ALPHAS, degree: int = 1) -> None:
        self.alphas = alphas
        self.degree = degree

    def fit(self, X, y, sample_weight=None) -> StandardisedRidgeCV:
        """Standardise, choose the penalty by leave-one-out error and fit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional
            Case weights of the ridge fit and of its leave-one-out error (the
            standardisation stays unweighted, as in the pipeline); computed by
            scikit-learn's ``RidgeCV``.

        Returns
        -------
        self

        Examples
        --------
        >>> X = np.arange(20.0)[:, None]
        >>> StandardisedRidgeCV().fit(X, 3 * X[:, 0] + 1).alpha_   # no noise: least shrinkage
        0.001
        """
        alphas = np.asarray(self.alphas, dtype=float).ravel()
        if alphas.size == 0 or not np.all(alphas > 0):
            raise ValueError(f"alphas must be positive numbers; got {self.alphas!r}.")
        Z, y = fit_design(self, X, y)
        y = y.astype(float)
        if not np.isfinite(y).all():
            raise ValueError("y must be finite (no NaN or infinity).")
        if sample_weight is not None:
            ridge = RidgeCV(alphas=alphas).fit(Z, y, sample_weight=sample_weight)
            self.alpha_ = float(ridge.alpha_)
            self.coef_, self.intercept_ = ridge.coef_, float(ridge.intercept_)
            return self
        mean_z, mean_y = Z.mean(axis=0), y.mean()
        U, s, Vt = np.linalg.svd(Z - mean_z, full_matrices=False)
        uty = U.T @ (y - mean_y)
        s2 = s**2
        shrink = s2 / (s2 + alphas[:, None])  # (n_alphas, rank)
        fitted = (shrink * uty) @ U.T  # centred fitted values, one row per alpha
        hat = 1.0 / len(y) + shrink @ (U**2).T  # leverage incl. the unpenalised intercept
        with np.errstate(divide="ignore", invalid="ignore"):
            loo = ((y - mean_y) - fitted) / (1.0 - hat)
        best = int(np.argmin(np.nanmean(loo**2, axis=1)))
        self.alpha_ = float(alphas[best])
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = np.where(s > 0, s / (s2 + self.alpha_), 0.0)
        self.coef_ = Vt.T @ (gain * uty)
        self.intercept_ = float(mean_y - mean_z @ self.coef_)
        return self

    def predict(self, X) -> np.ndarray:
        """Predictions of the fitted model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)

        Examples
        --------
        >>> X = np.arange(20.0)[:, None]
        >>> StandardisedRidgeCV().fit(X, 3 * X[:, 0] + 1).predict([[100.0]]).round()  # extrapolates the line
        array([301.])
        """
        Z = fitted_design(self, X)
        return Z @ self.coef_ + self.intercept_
