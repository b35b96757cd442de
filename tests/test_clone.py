import numpy as np
from sklearn.base import clone

from shiftattr.ratios import StandardisedLogisticRegression
from shiftattr.value import StandardisedRidgeCV


def test_closed_form_estimators_clone_to_unfitted_copies_of_their_parameters():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 2)), rng.integers(0, 2, 60)
    alphas = [0.1, 1.0]
    for est in (
        StandardisedRidgeCV(alphas=alphas, degree=2),
        StandardisedLogisticRegression(C=0.5, degree=2),
    ):
        fitted = est.fit(X, y)
        copy = clone(fitted)
        assert type(copy) is type(est) and copy is not est
        assert copy.get_params() == est.get_params()
        assert not hasattr(copy, "n_features_in_")  # unfitted
        # a clone fits to the same model as a fresh estimator with those parameters
        fresh = type(est)(**est.get_params()).fit(X, y)
        np.testing.assert_array_equal(copy.fit(X, y).predict(X), fresh.predict(X))
    ridge = StandardisedRidgeCV(alphas=alphas)
    copy = clone(ridge)
    assert copy.alphas == alphas and copy.alphas is not alphas  # parameters deep-copied


def test_clone_reads_the_parameter_names_once_per_class(monkeypatch):
    from shiftattr import _clone

    calls = []
    names = StandardisedRidgeCV._get_param_names()
    monkeypatch.setattr(
        StandardisedRidgeCV, "_get_param_names", classmethod(lambda cls: calls.append(1) or names)
    )
    _clone._param_names.cache_clear()
    for _ in range(3):
        clone(StandardisedRidgeCV(degree=2))
    assert len(calls) == 1  # scikit-learn's own clone reads them on every call
    _clone._param_names.cache_clear()
