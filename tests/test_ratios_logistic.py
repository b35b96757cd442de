"""StandardisedLogisticRegression: the penalised log-loss minimised, as a ratio classifier."""

import numpy as np
import pytest
from scipy.special import expit
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from shiftattr.ratios import ClassifierRatio, StandardisedLogisticRegression


def _data(seed, separable=False):
    rng = np.random.default_rng(seed)
    n, p = int(rng.integers(40, 400)), int(rng.integers(1, 4))
    X = rng.normal(size=(n, p)) * rng.uniform(0.1, 10, p) + 5 * rng.normal(size=p)
    noise = 0.01 if separable else rng.uniform(0.3, 2)
    y = (np.sin(X[:, 0]) + 0.3 * X[:, -1] + noise * rng.normal(size=n) > 0).astype(int)
    return X, y


def _sklearn(C, degree):
    steps = [StandardScaler()]
    if degree == 2:
        steps += [PolynomialFeatures(2, include_bias=False), StandardScaler()]
    return make_pipeline(*steps, LogisticRegression(C=C, tol=1e-12, max_iter=100_000))


@pytest.mark.parametrize("degree", [1, 2])
@pytest.mark.parametrize("C", [0.1, 1.0, 100.0])
@pytest.mark.parametrize("seed", range(4))
def test_same_optimum_as_scikit_learn_run_to_convergence(seed, C, degree):
    X, y = _data(seed)
    ours = StandardisedLogisticRegression(C=C, degree=degree).fit(X, y)
    theirs = _sklearn(C, degree).fit(X, y)
    np.testing.assert_allclose(
        ours.predict_proba(X)[:, 1], theirs.predict_proba(X)[:, 1], atol=2e-5
    )


@pytest.mark.parametrize("seed", range(4))
def test_the_gradient_vanishes_at_the_fit_even_near_separation(seed):
    """Stationarity of ``C * sum(logloss) + |w|^2 / 2`` on the expanded design."""
    X, y = _data(seed, separable=True)
    C = 1e4
    model = StandardisedLogisticRegression(C=C, degree=2).fit(X, y)
    Z = X
    for step in _sklearn(C, 2)[:-1]:
        Z = step.fit_transform(Z)
    residual = expit(model.decision_function(X)) - y
    grad_w = C * Z.T @ residual + model.coef_[0]
    grad_b = C * residual.sum()
    assert np.max(np.abs(grad_w)) / (C * len(y)) < 1e-6
    assert abs(grad_b) / (C * len(y)) < 1e-6


def test_labels_of_any_type_and_clones():
    X, y = _data(9)
    labels = np.where(y == 1, "target", "source")
    model = clone(StandardisedLogisticRegression()).fit(X, labels)
    assert model.classes_.tolist() == ["source", "target"]
    assert set(model.predict(X)) <= {"source", "target"}
    assert model.score(X, labels) > 0.6


def test_it_serves_as_a_density_ratio_classifier():
    """Inside ClassifierRatio it gives the log-ratio of the converged scikit-learn
    pipeline, and near the true one of a Gaussian mean shift (0.5 x - 0.125)."""
    rng = np.random.default_rng(0)
    src, tgt = {"X": rng.normal(0.0, 1.0, 4000)}, {"X": rng.normal(0.5, 1.0, 4000)}
    x = {"X": np.linspace(-2, 2, 9)}
    ours = ClassifierRatio(classifier=StandardisedLogisticRegression(), calibration="none")
    theirs = ClassifierRatio(classifier=_sklearn(1.0, 1), calibration="none")
    got = ours.fit(src, tgt).log_ratio(x)
    np.testing.assert_allclose(got, theirs.fit(src, tgt).log_ratio(x), atol=1e-5)
    np.testing.assert_allclose(got, 0.5 * x["X"] - 0.125, atol=0.1)


@pytest.mark.parametrize(
    "kwargs, y, match",
    [
        ({"degree": 3}, None, "degree must be 1 or 2"),
        ({"C": 0.0}, None, "C must be a positive"),
        ({}, np.zeros(50, dtype=int), "binary; y has 1 class"),
    ],
)
def test_errors_name_the_problem(kwargs, y, match):
    X, y_ok = _data(1)
    with pytest.raises(ValueError, match=match):
        StandardisedLogisticRegression(**kwargs).fit(X[:50], y_ok[:50] if y is None else y)


def test_unfitted_and_mismatched_inputs_are_refused():
    model = StandardisedLogisticRegression()
    with pytest.raises(ValueError, match="not fitted"):
        model.decision_function(np.zeros((2, 1)))
    model.fit(np.arange(10.0)[:, None], np.arange(10) % 2)
    with pytest.raises(ValueError, match="fitted on 1"):
        model.decision_function(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="finite"):
        model.decision_function(np.array([[np.nan]]))


def test_offset_is_held_fixed_and_left_out_of_the_decision_function():
    """With the true log-odds split into an offset and a learnt part, the fit recovers the
    learnt part only; a wrong-length offset is refused."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 1))
    offset = 1.5 * rng.normal(size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(offset + 0.8 * x[:, 0] - 0.3)))).astype(int)
    clf = StandardisedLogisticRegression(C=1e6).fit(x, y, offset=offset)
    z = np.array([[-1.0], [0.0], [1.0]])
    np.testing.assert_allclose(clf.decision_function(z), 0.8 * z[:, 0] - 0.3, atol=0.1)
    with pytest.raises(ValueError, match="offset must hold 4000 finite values"):
        StandardisedLogisticRegression().fit(x, y, offset=offset[:10])
