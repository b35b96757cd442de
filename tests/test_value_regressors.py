"""crossfit_regression: out-of-fold predictions and the choice between candidate regressors."""

import numpy as np
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures

from shiftattr.value import crossfit_regression, default_regressors
from shiftattr.value.regressors import candidate_regressors


def test_predictions_are_out_of_fold():
    # the feature is the case id and the outcome pure noise: a 1-nearest-neighbour
    # model returns a case's own outcome exactly if it was trained on it, and a
    # neighbour's (an independent draw) if not
    rng = np.random.default_rng(0)
    n = 200
    X = np.arange(n, dtype=float)[:, None]
    y = rng.normal(size=n)
    folds = np.arange(n) % 5
    p = crossfit_regression(X, y, folds, X[:7], KNeighborsRegressor(n_neighbors=1))
    assert np.all(p.oof != y)  # no case is predicted by a model that saw it
    # ... it is predicted by the neighbour's outcome: R2 near -1 (MSE = 2 Var)
    assert p.r2 < -0.5
    # other cases get the mean of the 5 fold models: 4 of them saw case i (its own
    # outcome), the fifth predicts what the out-of-fold model predicted
    np.testing.assert_allclose(p.other, 0.8 * y[:7] + 0.2 * p.oof[:7], atol=1e-12)
    assert p.chosen == "KNeighborsRegressor" and set(p.mse) == {"KNeighborsRegressor"}


def test_the_candidate_with_the_lower_out_of_fold_error_is_chosen():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    folds = np.arange(300) % 4
    candidates = {"mean": DummyRegressor(), "ols": LinearRegression()}
    y = 3 * X[:, 0] + rng.normal(size=300)
    p = crossfit_regression(X, y, folds, X[:3], candidates)
    assert p.chosen == "ols" and p.mse["ols"] < p.mse["mean"]
    assert p.r2 == pytest.approx(1 - p.mse["ols"] / np.var(y))
    assert p.r2 > 0.8
    # the returned predictions are the chosen candidate's
    ols_oof = np.empty(300)
    for f in range(4):
        model = LinearRegression().fit(X[folds != f], y[folds != f])
        ols_oof[folds == f] = model.predict(X[folds == f])
    np.testing.assert_allclose(p.oof, ols_oof, atol=1e-10)
    # pure noise: a 1-NN model memorises, its out-of-fold error is twice the mean's
    noise = rng.normal(size=300)
    q = crossfit_regression(
        X,
        noise,
        folds,
        X[:3],
        {"1nn": KNeighborsRegressor(n_neighbors=1), "mean": DummyRegressor()},
    )
    assert q.chosen == "mean" and q.mse["1nn"] > 1.5 * q.mse["mean"]
    assert q.r2 <= 0.0


def test_no_features_or_constant_outcome_fall_back_to_fold_means():
    y = np.arange(8, dtype=float)
    folds = np.arange(8) % 2
    p = crossfit_regression(np.empty((8, 0)), y, folds, np.empty((3, 0)))
    assert p.chosen == "mean" and p.r2 == 0.0
    # out of fold: the mean of the other fold's outcomes
    np.testing.assert_allclose(
        p.oof, np.where(folds == 0, y[folds == 1].mean(), y[folds == 0].mean())
    )
    np.testing.assert_allclose(p.other, np.full(3, y.mean()))
    c = crossfit_regression(np.ones((8, 2)), np.full(8, 0.7), folds, np.zeros((2, 2)))
    assert c.chosen == "mean" and np.all(c.oof == 0.7) and np.all(c.other == 0.7)


def test_default_regressors_are_chosen_by_data_and_reproducible():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 2))
    folds = np.arange(400) % 5
    # a pure quadratic: the linear ridge cannot fit it, the quadratic ridge can
    y = X[:, 0] ** 2 + 0.5 * X[:, 0] * X[:, 1] + 0.1 * rng.normal(size=400)
    p = crossfit_regression(X, y, folds, X[:4], random_state=0)
    assert set(p.mse) == set(default_regressors())
    assert p.chosen == "quadratic-ridge" and p.r2 > 0.95
    assert p.mse["ridge"] > 10 * p.mse["quadratic-ridge"]
    q = crossfit_regression(X, y, folds, X[:4], random_state=0)
    np.testing.assert_array_equal(p.oof, q.oof)
    np.testing.assert_array_equal(p.other, q.other)
    # a step: boosting sees the threshold the polynomials smooth over
    step = (X[:, 0] > 0.3).astype(float) * 2 + 0.1 * rng.normal(size=400)
    s = crossfit_regression(X, step, folds, X[:4], random_state=0)
    assert s.chosen == "gradient-boosting"


def test_sample_weights_reach_the_fit_and_the_choice():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 1))
    y = 2 * X[:, 0] + 0.1 * rng.normal(size=300)
    y_bad = y.copy()
    y_bad[150:] = -5 * X[150:, 0]  # half the cases follow another law
    folds = np.arange(300) % 3
    w = np.r_[np.ones(150), np.zeros(150)]  # ... and get no weight
    # the weights reach the last step of a pipeline (earlier steps see every case)
    ridge = make_pipeline(PolynomialFeatures(1, include_bias=False), RidgeCV())
    weighted = crossfit_regression(X, y_bad, folds, X[:10], ridge, sample_weight=w)
    clean = crossfit_regression(X[:150], y[:150], folds[:150], X[:10], ridge)
    np.testing.assert_allclose(weighted.other, clean.other, atol=1e-8)
    np.testing.assert_allclose(weighted.oof[:150], clean.oof, atol=1e-8)
    assert weighted.r2 == pytest.approx(clean.r2)  # judged on the weighted cases only
    unweighted = crossfit_regression(X, y_bad, folds, X[:10], ridge)
    assert not np.allclose(unweighted.other, clean.other, atol=0.1)
    # unit weights change nothing, for every default candidate
    same = crossfit_regression(X, y, folds, X[:10], random_state=0, sample_weight=np.ones(300))
    plain = crossfit_regression(X, y, folds, X[:10], random_state=0)
    np.testing.assert_allclose(same.oof, plain.oof, atol=1e-9)
    assert same.mse == pytest.approx(plain.mse, rel=1e-9)
    # without features the prediction is the weighted mean of the other folds
    mean = crossfit_regression(np.empty((300, 0)), y_bad, folds, X[:2], sample_weight=w)
    assert mean.other[0] == pytest.approx(y[:150].mean())


def test_weights_need_regressors_that_take_them():
    X, y = np.arange(20.0)[:, None], np.arange(20.0)
    with pytest.raises(ValueError, match=r"regressor\(s\) \['KNeighborsRegressor'\] take no"):
        crossfit_regression(
            X, y, np.arange(20) % 2, X[:1], KNeighborsRegressor(), sample_weight=np.ones(20)
        )
    crossfit_regression(X, y, np.arange(20) % 2, X[:1], KNeighborsRegressor())  # unweighted: fine


def test_given_regressors_left_unseeded_get_the_seed():
    from sklearn.ensemble import RandomForestRegressor

    given = RandomForestRegressor(n_estimators=3)
    seeded = candidate_regressors(
        {"forest": given, "fixed": RandomForestRegressor(random_state=5)}, 7
    )
    again = candidate_regressors({"forest": given}, 7)
    assert seeded["forest"].random_state == again["forest"].random_state is not None
    assert seeded["fixed"].random_state == 5 and given.random_state is None
