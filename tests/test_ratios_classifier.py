import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from shiftattr.ratios import ClassifierRatio
from shiftattr.ratios.crossfit import assign_folds


def _gaussians(n, rng):
    mu_s, mu_t = np.zeros(2), np.array([0.8, -0.5])
    cov_s = np.eye(2)
    cov_t = np.array([[1.3, 0.3], [0.3, 0.8]])
    src = rng.multivariate_normal(mu_s, cov_s, n)
    tgt = rng.multivariate_normal(mu_t, cov_t, n)

    def true_log_ratio(x):
        return multivariate_normal(mu_t, cov_t).logpdf(x) - multivariate_normal(mu_s, cov_s).logpdf(
            x
        )

    return src, tgt, true_log_ratio


@pytest.mark.parametrize("classifier", [None, "logistic-quadratic"])
def test_recovers_analytic_gaussian_log_ratio(classifier):
    rng = np.random.default_rng(0)
    src, tgt, truth = _gaussians(3000, rng)
    if classifier == "logistic-quadratic":
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import PolynomialFeatures

        classifier = make_pipeline(PolynomialFeatures(2), LogisticRegression(max_iter=2000))
    est = ClassifierRatio(classifier=classifier, random_state=0)
    est.fit({"a": src[:, 0], "b": src[:, 1]}, {"a": tgt[:, 0], "b": tgt[:, 1]})
    held = rng.multivariate_normal([0.4, -0.25], np.eye(2), 2000)  # both supports
    est_lr = est.log_ratio({"a": held[:, 0], "b": held[:, 1]})
    corr = np.corrcoef(est_lr, truth(held))[0, 1]
    assert corr > 0.95
    # calibrated: the level is right too, not only the ranking
    assert abs(np.median(est_lr - truth(held))) < 0.25


def test_class_prior_is_removed():
    rng = np.random.default_rng(1)
    # identical distributions, unequal sample sizes: the log-ratio must be ~0, not log(nt/ns)
    src = {"x": rng.normal(size=2000)}
    tgt = {"x": rng.normal(size=500)}
    est = ClassifierRatio(classifier=LogisticRegression(), random_state=0).fit(src, tgt)
    lr = est.log_ratio({"x": np.linspace(-2, 2, 50)})
    assert np.all(np.abs(lr) < 0.15)
    assert est.log_prior_odds_ == pytest.approx(np.log(500 / 2000))


def test_extreme_logits_are_not_clipped():
    # separable data: a log-ratio far beyond log(1e15) must come out finite and large
    src = {"x": np.linspace(-10, -5, 60)}
    tgt = {"x": np.linspace(5, 10, 60)}
    est = ClassifierRatio(classifier=LogisticRegression(C=1e6, max_iter=5000), calibration="none")
    lr = est.fit(src, tgt).log_ratio({"x": np.array([-40.0, 40.0])})
    assert np.all(np.isfinite(lr))
    assert lr[1] - lr[0] > 60


def test_sklearn_conventions():
    est = ClassifierRatio(calibration_folds=4, random_state=3)
    assert clone(est).get_params()["calibration_folds"] == 4
    with pytest.raises(NotFittedError, match="not fitted"):
        est.log_ratio({"x": np.zeros(2)})
    est.fit({"x": np.arange(20.0)}, {"x": np.arange(20.0) + 5})
    assert not hasattr(clone(est), "classifier_")
    with pytest.raises(ValueError, match="fitted on"):
        est.log_ratio({"y": np.zeros(2)})


def test_input_errors():
    with pytest.raises(ValueError, match="different nodes"):
        ClassifierRatio().fit({"x": np.zeros(10)}, {"y": np.zeros(10)})
    with pytest.raises(ValueError, match="calibration must be"):
        ClassifierRatio(calibration="isotonic").fit({"x": np.zeros(10)}, {"x": np.zeros(10)})
    with pytest.raises(ValueError, match="at least 6 cases"):
        ClassifierRatio().fit({"x": np.zeros(4)}, {"x": np.ones(4)})


def test_same_seed_same_numbers():
    rng = np.random.default_rng(2)
    src, tgt = {"x": rng.normal(size=300)}, {"x": rng.normal(0.5, 1, 300)}
    a = ClassifierRatio(random_state=7).fit(src, tgt).log_ratio(src)
    b = ClassifierRatio(random_state=7).fit(src, tgt).log_ratio(src)
    np.testing.assert_array_equal(a, b)


def test_folds_are_stratified_and_keep_groups_together():
    labels = np.r_[np.zeros(40), np.ones(20)]
    groups = np.r_[np.arange(20).repeat(2), np.arange(20)]
    folds = assign_folds(labels, 5, np.random.default_rng(0), groups)
    for g in range(20):
        assert len(set(folds[:40][groups[:40] == g])) == 1
    for f in range(5):
        assert (folds[labels == 1] == f).sum() == 4


def test_convergence_warnings_only_for_the_chosen_classifier():
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    src = {"x": rng.normal(0, 1, size=(300, 3))}
    tgt = {"x": rng.normal(0.8, 1, size=(300, 3))}
    folds = np.arange(300) % 3
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Stuck(ClassifierMixin, BaseEstimator):
        """An optimiser that gives up at once: a warning and chance log-odds."""

        def fit(self, X, y):
            warnings.warn("gave up", ConvergenceWarning, stacklevel=2)
            self.classes_ = np.array([0.0, 1.0])
            return self

        def decision_function(self, X):
            return np.zeros(len(X))

    good, stuck = LogisticRegression(), Stuck()
    # the stuck candidate loses the comparison: nothing is reported
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = ClassifierRatio({"good": good, "stuck": stuck}, random_state=0).fit(src, tgt)
        ClassifierRatio({"good": good, "stuck": stuck}).crossfit_log_ratio(src, tgt, folds, folds)
    assert est.selected_ == "good" and est.n_unconverged_ == 0
    # alone it is chosen, and reported once per call, with the folds that failed
    with pytest.warns(ConvergenceWarning, match=r"'classifier' did not converge in 4 of 4 fits"):
        est = ClassifierRatio(stuck, random_state=0).fit(src, tgt)
    assert est.n_unconverged_ == 4
    with pytest.warns(ConvergenceWarning, match=r"did not converge in 3 of 3 fits") as rec:
        ClassifierRatio(stuck).crossfit_log_ratio(src, tgt, folds, folds)
    assert sum(issubclass(w.category, ConvergenceWarning) for w in rec) == 1


@pytest.mark.parametrize("forest_first", [True, False])
def test_a_candidate_with_a_nan_log_loss_is_never_chosen(forest_first):
    """min() kept a NaN loss listed first (NaN compares False): NaN log-ratios."""
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    forest = RandomForestClassifier(50, random_state=0)  # probabilities of 0 and 1
    pair = [("rf", forest), ("lr", LogisticRegression())]
    est = ClassifierRatio(dict(pair if forest_first else pair[::-1]), random_state=0)
    est.fit({"x": rng.normal(0, 1, 300)}, {"x": rng.normal(1, 1, 300)})
    assert np.isnan(est.cv_log_loss_["rf"]) and est.selected_ == "lr"
    assert np.isfinite(est.log_ratio({"x": np.array([0.0, 1.0])})).all()


def test_an_unseeded_candidate_dict_is_seeded_from_random_state():
    """The engine's seeding does not reach inside a dict: every run differed."""
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(1)
    src, tgt = {"x": rng.normal(0, 1, (200, 2))}, {"x": rng.normal(0.5, 1, (200, 2))}

    def fit():
        forest = RandomForestClassifier(30, min_samples_leaf=20)
        return ClassifierRatio({"rf": forest}, random_state=3).fit(src, tgt).log_ratio(src)

    np.testing.assert_array_equal(fit(), fit())


def test_constant_log_odds_are_calibrated_to_the_class_share():
    """A Platt slope fitted to constant logits' rounding reached 1e4: log-ratio -3.6."""
    est = ClassifierRatio(LogisticRegression()).fit(
        {"x": np.full(200, 5.0)}, {"x": np.full(100, 5.0)}
    )
    assert est.calibration_[0] == 0.0
    assert est.log_ratio({"x": np.array([5.0])})[0] == pytest.approx(0.0, abs=1e-9)


def test_a_weak_but_real_ranking_keeps_its_calibration():
    """A strongly penalised classifier ranks the cases with log-odds spread 1e-5: that
    is a signal, not the constant output of a classifier that sees nothing."""
    rng = np.random.default_rng(0)
    src, tgt = {"x": rng.normal(0, 1, 500)}, {"x": rng.normal(1, 1, 500)}
    est = ClassifierRatio(LogisticRegression(C=1e-7), random_state=0).fit(src, tgt)
    lr = est.log_ratio({"x": np.array([0.0, 1.0])})
    assert lr[1] - lr[0] > 0.5  # the true difference is 1
