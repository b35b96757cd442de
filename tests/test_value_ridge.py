"""StandardisedRidgeCV: the closed form of the scikit-learn ridge pipelines it replaces."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from shiftattr.value import StandardisedRidgeCV, crossfit_regression
from shiftattr.value.ridge import _ALPHAS


def _pipeline(degree):
    if degree == 1:
        return make_pipeline(StandardScaler(), RidgeCV(alphas=_ALPHAS))
    return make_pipeline(
        StandardScaler(),
        PolynomialFeatures(2, include_bias=False),
        StandardScaler(),
        RidgeCV(alphas=_ALPHAS),
    )


def _data(seed):
    rng = np.random.default_rng(seed)
    n, p = int(rng.integers(20, 300)), int(rng.integers(1, 5))
    X = rng.normal(size=(n, p)) * rng.uniform(0.1, 10, p) + 5 * rng.normal(size=p)
    y = np.sin(X[:, 0]) + 0.1 * X[:, -1] ** 2 + rng.uniform(0.01, 2) * rng.normal(size=n)
    return X, y, rng.normal(size=(25, p))


@pytest.mark.parametrize("degree", [1, 2])
@pytest.mark.parametrize("seed", range(8))
def test_same_penalty_and_predictions_as_the_scikit_learn_pipeline(degree, seed):
    X, y, X_new = _data(seed)
    ours = StandardisedRidgeCV(degree=degree).fit(X, y)
    theirs = _pipeline(degree).fit(X, y)
    assert ours.alpha_ == theirs[-1].alpha_
    np.testing.assert_allclose(ours.predict(X_new), theirs.predict(X_new), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("degree", [1, 2])
def test_case_weights_give_the_weighted_pipeline(degree):
    X, y, X_new = _data(11)
    w = np.random.default_rng(0).uniform(0.1, 3.0, len(y))
    ours = StandardisedRidgeCV(degree=degree).fit(X, y, sample_weight=w)
    theirs = _pipeline(degree).fit(X, y, ridgecv__sample_weight=w)
    assert ours.alpha_ == theirs[-1].alpha_
    np.testing.assert_allclose(ours.predict(X_new), theirs.predict(X_new), rtol=1e-9, atol=1e-9)


def test_the_penalty_follows_the_noise():
    """Leave-one-out picks little shrinkage for a clean signal, much for pure noise."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    clean = StandardisedRidgeCV().fit(X, X @ [1.0, -2.0, 0.5])
    noise = StandardisedRidgeCV().fit(X, rng.normal(size=200))
    assert clean.alpha_ == _ALPHAS[0] and noise.alpha_ == _ALPHAS[-1]


def test_a_constant_feature_is_harmless_and_clones_refit():
    rng = np.random.default_rng(2)
    X = np.column_stack([rng.normal(size=80), np.full(80, 3.0)])
    y = 2 * X[:, 0] + 0.01 * rng.normal(size=80)
    model = clone(StandardisedRidgeCV(degree=2)).fit(X, y)
    assert np.isfinite(model.coef_).all() and model.score(X, y) > 0.99


def test_it_is_the_default_and_cross_fits_like_the_pipeline():
    X, y, X_new = _data(5)
    folds = np.arange(len(y)) % 4
    ours = crossfit_regression(X, y, folds, X_new, regressors=StandardisedRidgeCV(degree=2))
    theirs = crossfit_regression(X, y, folds, X_new, regressors=_pipeline(2))
    np.testing.assert_allclose(ours.oof, theirs.oof, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours.other, theirs.other, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    "kwargs, call, match",
    [
        ({"degree": 3}, "fit", "degree must be 1 or 2"),
        ({"alphas": [0.0, 1.0]}, "fit", "alphas must be positive"),
        ({}, "predict", "not fitted"),
    ],
)
def test_errors_name_the_problem(kwargs, call, match):
    X, y, _ = _data(0)
    model = StandardisedRidgeCV(**kwargs)
    with pytest.raises(ValueError, match=match):
        model.fit(X, y) if call == "fit" else model.predict(X)


def test_input_errors_name_the_problem():
    model = StandardisedRidgeCV()
    with pytest.raises(ValueError, match="rows but y has"):
        model.fit(np.zeros((5, 1)), np.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        model.fit(np.array([[np.nan], [1.0]]), np.zeros(2))
    model.fit(np.arange(10.0)[:, None], np.arange(10.0))
    with pytest.raises(ValueError, match="fitted on 1"):
        model.predict(np.zeros((3, 2)))
