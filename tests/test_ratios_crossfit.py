"""Cross-fitting of density ratios: the per-fold route and the joint route must agree."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from shiftattr import CausalGraph, Environment
from shiftattr.ratios import ClassifierRatio, ImageStatsRatio
from shiftattr.ratios import image_stats as image_stats_module
from shiftattr.ratios.base import DensityRatioEstimator
from shiftattr.ratios.crossfit import CrossFittedRatios

FITS: list[int] = []  # module-level: clone() deep-copies parameters


class CountingLogistic(ClassifierMixin, BaseEstimator):
    """A logistic regression that counts its fits in :data:`FITS`."""

    def fit(self, X, y):
        FITS.append(len(y))
        self.model_ = LogisticRegression().fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def decision_function(self, X):
        return self.model_.decision_function(X)


def _unbalanced(rng, ns=150, nt=90):
    src = {"a": rng.normal(0, 1, ns), "b": rng.normal(0, 1, ns)}
    tgt = {"a": rng.normal(0.7, 1, nt), "b": rng.normal(-0.3, 1.2, nt)}
    # folds of unequal class balance: each fold's training prior differs from the pooled
    fs = np.arange(ns) % 3
    ft = np.r_[np.zeros(60), np.ones(20), np.full(nt - 80, 2)].astype(int)
    return src, tgt, fs, ft


def test_joint_route_equals_per_fold_fits_for_a_single_uncalibrated_classifier():
    src, tgt, fs, ft = _unbalanced(np.random.default_rng(0))
    est = ClassifierRatio(LogisticRegression(), calibration="none")
    joint = est.crossfit_log_ratio(src, tgt, fs, ft)
    per_fold = DensityRatioEstimator.crossfit_log_ratio(est, src, tgt, fs, ft)
    # unequal environments: each fold's own class prior must come off, as in a fold fit
    for j, p in zip(joint, per_fold):
        np.testing.assert_allclose(j, p, rtol=1e-9, atol=1e-9)


def test_joint_route_fits_each_candidate_once_per_fold():
    src, tgt, fs, ft = _unbalanced(np.random.default_rng(1))
    FITS.clear()
    est = ClassifierRatio({"one": CountingLogistic(), "two": CountingLogistic()})
    est.crossfit_log_ratio(src, tgt, fs, ft)
    assert len(FITS) == 3 * 2  # folds x candidates
    FITS.clear()
    DensityRatioEstimator.crossfit_log_ratio(est, src, tgt, fs, ft)
    assert len(FITS) == 3 * (2 * 3 + 1)  # per fold: inner folds x candidates + refit


def test_joint_route_recovers_a_gaussian_log_ratio_out_of_fold():
    rng = np.random.default_rng(2)
    n = 600
    src, tgt = {"x": rng.normal(0, 1, n)}, {"x": rng.normal(0.8, 1, n)}
    folds = np.arange(n) % 5
    lr_s, lr_t = ClassifierRatio(random_state=0).crossfit_log_ratio(src, tgt, folds, folds)
    truth_s = 0.8 * src["x"] - 0.32
    assert np.corrcoef(lr_s, truth_s)[0, 1] > 0.97
    assert abs(np.mean(lr_s - truth_s)) < 0.1
    # E_source[r] = 1 for the true ratio; the out-of-fold estimate should be close
    assert abs(np.mean(np.exp(lr_s)) - 1) < 0.15
    assert np.mean(lr_t) > np.mean(lr_s)


def test_fold_labels_must_match_the_cases():
    src, tgt, fs, ft = _unbalanced(np.random.default_rng(3))
    with pytest.raises(ValueError, match="fold labels"):
        ClassifierRatio(LogisticRegression()).crossfit_log_ratio(src, tgt, fs[:-1], ft)


def test_image_statistics_are_computed_once_and_match_the_per_fold_route(monkeypatch):
    rng = np.random.default_rng(4)
    src = {"X": rng.normal(0, 1.0, size=(30, 6, 6, 6))}
    tgt = {"X": rng.normal(0, 1.4, size=(24, 6, 6, 6))}
    fs, ft = np.arange(30) % 3, np.r_[np.zeros(12), np.ones(8), np.full(4, 2)].astype(int)
    calls = []
    original = image_stats_module.image_statistics

    def counting(features, *args, **kwargs):
        calls.append(len(next(iter(features.values()))))
        return original(features, *args, **kwargs)

    monkeypatch.setattr(image_stats_module, "image_statistics", counting)
    est = ImageStatsRatio(ClassifierRatio(LogisticRegression(), calibration="none"))
    joint = est.crossfit_log_ratio(src, tgt, fs, ft)
    assert calls == [30, 24]  # every case once
    calls.clear()
    per_fold = DensityRatioEstimator.crossfit_log_ratio(est, src, tgt, fs, ft)
    assert sum(calls) == 3 * (30 + 24)  # K - 1 times in training, once as test; K = 3
    for j, p in zip(joint, per_fold):
        np.testing.assert_allclose(j, p, rtol=1e-7, atol=1e-7)


class PerFoldOnly(DensityRatioEstimator):
    """A ratio estimator without a joint route: the engine must fit it per fold."""

    def fit(self, source_features, target_features):
        FITS.append(len(next(iter(source_features.values()))))
        self.inner_ = ClassifierRatio(LogisticRegression(), calibration="none").fit(
            source_features, target_features
        )
        return self

    def log_ratio(self, features):
        return self.inner_.log_ratio(features)


def test_engine_uses_the_joint_route_only_where_the_estimator_has_one(monkeypatch):
    rng = np.random.default_rng(5)
    g = CausalGraph({"Z": [], "X": ["Z"]})
    zs, zt = rng.normal(0, 1, 120), rng.normal(0.8, 1, 120)
    src = Environment({"Z": zs, "X": zs + rng.normal(0, 1, 120)}, name="s")
    tgt = Environment({"Z": zt, "X": zt + rng.normal(0, 1, 120)}, name="t")
    joint_calls = []
    original = ClassifierRatio.crossfit_log_ratio

    def counting(self, *args):
        joint_calls.append(self)
        return original(self, *args)

    monkeypatch.setattr(ClassifierRatio, "crossfit_log_ratio", counting)
    FITS.clear()
    cf = CrossFittedRatios(
        g,
        ["Z", "X"],
        estimators={"X": PerFoldOnly(), "Z": ClassifierRatio(LogisticRegression())},
        n_folds=4,
        progress=False,
        random_state=0,
    )
    r = cf.fit(src, tgt)
    assert len(joint_calls) == 1  # the node set {Z}: one call for all folds
    assert FITS == [90] * 4  # {Z, X}: one fit per fold, on the other three folds
    assert r.log_ratios.shape == (2, 120) and np.all(np.isfinite(r.log_ratios))
    assert r.auc_joint["Z"] > 0.6


class ShiftedClassifierRatio(ClassifierRatio):
    """A subclass that changes log_ratio: the joint route must not bypass it."""

    def log_ratio(self, features):
        return super().log_ratio(features) + 1.0


def test_a_subclass_that_changes_log_ratio_is_fitted_per_fold():
    assert ClassifierRatio().joint_crossfit and ImageStatsRatio().joint_crossfit
    est = ShiftedClassifierRatio(LogisticRegression(), calibration="none")
    assert not est.joint_crossfit
    rng = np.random.default_rng(6)
    g = CausalGraph({"Z": []})
    src = Environment({"Z": rng.normal(0, 1, 60)}, name="s")
    tgt = Environment({"Z": rng.normal(0.5, 1, 60)}, name="t")
    plain = ClassifierRatio(LogisticRegression(), calibration="none")
    kw = {"n_folds": 3, "progress": False, "random_state": 0}
    shifted = CrossFittedRatios(g, ["Z"], estimators={"Z": est}, **kw).fit(src, tgt)
    base = CrossFittedRatios(g, ["Z"], estimators={"Z": plain}, **kw).fit(src, tgt)
    np.testing.assert_allclose(shifted.log_ratios, base.log_ratios + 1.0)


def test_bootstrap_duplicates_share_a_fold_and_a_log_ratio_through_the_joint_route():
    # a refit-bootstrap replicate: cases drawn with replacement, groups = original ids
    rng = np.random.default_rng(7)
    g = CausalGraph({"Z": [], "X": ["Z"]})
    zs, zt = rng.normal(0, 1, 80), rng.normal(0.7, 1, 80)
    src = Environment({"Z": zs, "X": zs + rng.normal(0, 1, 80)}, name="s")
    tgt = Environment({"Z": zt, "X": zt + rng.normal(0, 1, 80)}, name="t")
    ids_s, ids_t = rng.integers(0, 80, 80), rng.integers(0, 80, 80)
    boot_s, boot_t = src.subset(ids_s), tgt.subset(ids_t)
    cf = CrossFittedRatios(g, ["Z", "X"], n_folds=4, progress=False, random_state=0)
    r = cf.fit(boot_s, boot_t, source_groups=ids_s, target_groups=ids_t)
    for i in np.unique(ids_s):
        copies = np.flatnonzero(ids_s == i)
        # one fold, one model, the same features: every copy gets the same log-ratio;
        # a copy in a training fold would make its twin's ratio in-sample instead
        assert np.ptp(r.log_ratios[:, copies], axis=1).max() < 1e-12


def test_known_ratios_are_taken_verbatim_at_both_sides_and_nothing_is_fitted_for_them():
    rng = np.random.default_rng(0)
    g = CausalGraph({"Z": [], "X": ["Z"]})
    src = Environment({"Z": rng.normal(0, 1, 80), "X": rng.normal(0, 1, 80)}, name="s")
    tgt = Environment({"Z": rng.normal(1, 1, 60), "X": rng.normal(0, 1, 60)}, name="t")
    FITS.clear()
    known = {"X": lambda env: 0.5 * env["X"] - 0.1 * env["Z"]}
    cf = CrossFittedRatios(
        g,
        ["Z", "X"],
        estimators={"Z": ClassifierRatio(CountingLogistic(), calibration="none")},
        n_folds=2,
        progress=False,
        random_state=0,
        known_ratios=known,
    )
    r = cf.fit(src, tgt)
    np.testing.assert_array_equal(r.log_ratios[1], known["X"](src))
    np.testing.assert_array_equal(r.log_ratios_target[1], known["X"](tgt))
    assert r.known == ("X",) and r.auc_parents["X"] is None
    assert len(FITS) == 2  # Z's node set only, once per fold; nothing for (Z, X)


def test_rank_auc_equals_sklearn_with_ties_and_refuses_one_class():
    from sklearn.metrics import roc_auc_score

    from shiftattr.ratios.crossfit import rank_auc

    rng = np.random.default_rng(3)
    for decimals in (0, 1, 6):  # many ties, some, none
        labels = np.r_[np.zeros(150), np.ones(90)]
        scores = np.round(rng.normal(size=240) + 0.5 * labels, decimals)
        assert rank_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert rank_auc(np.array([0, 1]), np.array([2.0, 1.0])) == 0.0  # orientation: target high
    with pytest.raises(ValueError, match="both environments"):
        rank_auc(np.zeros(5), rng.normal(size=5))


def test_images_without_an_image_estimator_are_refused_with_the_fix():
    # the default tabular classifier expanded a 16^3 volume into 8.4 million quadratic
    # features and ran out of memory; a numpy image node now gets the lazy volumes' error
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 8, 8, 8))
    src, tgt = Environment({"X": x}, name="s"), Environment({"X": 1.2 * x}, name="t")
    cf = CrossFittedRatios(CausalGraph({"X": []}), ["X"], n_folds=2, progress=False)
    with pytest.raises(TypeError, match=r"512 values per case.*ImageStatsRatio"):
        cf.fit(src, tgt)


def test_unseeded_user_estimators_are_seeded_from_random_state():
    # a CNN or forest left at random_state=None gave other numbers on every seeded run
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(0)
    z = rng.normal(size=(80, 2))
    src = Environment({"Z": z[:40]}, name="s")
    tgt = Environment({"Z": z[40:] + 0.5}, name="t")
    forest = ClassifierRatio(GradientBoostingClassifier(n_estimators=5, subsample=0.5))

    def log_ratios(seed):
        cf = CrossFittedRatios(
            CausalGraph({"Z": []}),
            ["Z"],
            {"Z": forest},
            n_folds=2,
            progress=False,
            random_state=seed,
        )
        return cf.fit(src, tgt).log_ratios

    assert np.array_equal(log_ratios(0), log_ratios(0))
    assert not np.array_equal(log_ratios(0), log_ratios(1))
    assert forest.classifier.random_state is None  # the user's object is left as given
