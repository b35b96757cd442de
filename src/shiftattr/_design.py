"""Standardised, optionally degree-2, design matrices of the closed-form linear learners.

Shared by :class:`shiftattr.value.StandardisedRidgeCV` and
:class:`shiftattr.ratios.StandardisedLogisticRegression`: the features scikit-learn's
``StandardScaler`` (then ``PolynomialFeatures(2, include_bias=False)`` and a second
``StandardScaler``) would give, without their per-call validation.
"""

from __future__ import annotations

import numpy as np


def as_finite_2d(X) -> np.ndarray:
    """``X`` as a finite 2-D float array, or a ``ValueError`` naming what is wrong."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {X.shape}.")
    if not np.isfinite(X).all():
        raise ValueError("X must be finite (no NaN or infinity).")
    return X


def standardiser(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations, a zero deviation replaced by one (as
    scikit-learn's ``StandardScaler`` does)."""
    mean, sd = X.mean(axis=0), X.std(axis=0)
    tiny = 10 * np.finfo(float).eps * np.maximum(np.abs(mean), 1.0)
    return mean, np.where(sd < tiny, 1.0, sd)


def fit_design(model, X, y) -> tuple[np.ndarray, np.ndarray]:
    """Check ``model.degree``, ``X`` and ``y`` for a fit, store the standardisers and the
    number of features on ``model``, and return the design and ``y`` as an array."""
    if model.degree not in (1, 2):
        raise ValueError(f"degree must be 1 or 2; got {model.degree!r}.")
    X = as_finite_2d(X)
    y = np.asarray(y).ravel()
    if len(y) != len(X):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)} values.")
    model.n_features_in_ = X.shape[1]
    model._scale1 = standardiser(X)
    Z, model._scale2 = expand_features(X, model._scale1, model.degree)
    return Z, y


def fitted_design(model, X) -> np.ndarray:
    """The design of new cases ``X`` for a fitted closed-form model, or a ``ValueError``
    saying that the model is not fitted or that ``X`` has the wrong features."""
    if not hasattr(model, "coef_"):
        raise ValueError(f"this {type(model).__name__} is not fitted yet; call fit(X, y) first.")
    X = as_finite_2d(X)
    if X.shape[1] != model.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features but the model was fitted on {model.n_features_in_}."
        )
    return expand_features(X, model._scale1, model.degree, model._scale2)[0]


def expand_features(
    X: np.ndarray,
    scale: tuple[np.ndarray, np.ndarray],
    degree: int,
    scale2: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Standardise ``X``; with ``degree=2`` add squares and pairwise products and
    standardise again (by ``scale2``, or by the expanded columns' own statistics when it
    is None, as when fitting).

    Returns
    -------
    tuple
        The design and the second standardiser (None for ``degree=1``).
    """
    Z = (X - scale[0]) / scale[1]
    if degree == 1:
        return Z, None
    i, j = np.triu_indices(Z.shape[1])
    Z = np.hstack([Z, Z[:, i] * Z[:, j]])
    if scale2 is None:
        scale2 = standardiser(Z)
    return (Z - scale2[0]) / scale2[1], scale2
