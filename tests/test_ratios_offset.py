"""Conditional ratios fitted with the parents' log-ratio as an offset (``conditional="offset"``)."""

import numpy as np
import pytest

import shiftattr as sa
from shiftattr import CausalGraph, Environment
from shiftattr.config import AttributionConfig
from shiftattr.ratios import (
    ClassifierRatio,
    CrossFittedRatios,
    DensityRatioEstimator,
    ImageStatsRatio,
)
from shiftattr.ratios.offset import crossfit_conditional


def _chain(seed, n=600, parent_shift=2.0, child_shift=0.0):
    """Z -> X: Z's mean shifts by ``parent_shift``, X | Z's by ``child_shift``."""
    rng = np.random.default_rng(seed)
    zs, zt = rng.normal(0, 1, n), rng.normal(parent_shift, 1, n)
    xs = zs + rng.normal(0, 1, n)
    xt = zt + child_shift + rng.normal(0, 1, n)
    return (
        CausalGraph({"Z": [], "X": ["Z"]}),
        Environment({"Z": zs, "X": xs}, name="s"),
        Environment({"Z": zt, "X": xt}, name="t"),
    )


def _fit(conditional, seed, **kw):
    graph, src, tgt = _chain(seed, **kw)
    cf = CrossFittedRatios(
        graph, ["Z", "X"], n_folds=3, progress=False, random_state=seed, conditional=conditional
    )
    return cf.fit(src, tgt), src, tgt


def test_unchanged_child_of_a_shifted_parent_gets_flat_ratios():
    """The difference of two classifiers leaves noise on a mechanism that did not shift;
    the offset model's penalty pulls it towards zero."""
    sd = {"difference": [], "offset": []}
    for seed in range(4):
        for conditional in sd:
            r, _, _ = _fit(conditional, seed)
            x = r.mechanisms.index("X")
            sd[conditional].append(np.r_[r.log_ratios[x], r.log_ratios_target[x]].std())
    assert np.mean(sd["offset"]) < 0.6 * np.mean(sd["difference"])
    assert np.mean(sd["offset"]) < 0.25


def test_shifted_child_is_recovered():
    """X | Z moves by 1: the true conditional log-ratio is x - z - 0.5."""
    r, src, tgt = _fit("offset", 0, child_shift=1.0)
    x = r.mechanisms.index("X")
    truth = np.r_[src["X"] - src["Z"], tgt["X"] - tgt["Z"]] - 0.5
    est = np.r_[r.log_ratios[x], r.log_ratios_target[x]]
    assert np.corrcoef(est, truth)[0, 1] > 0.9
    assert np.polyfit(truth, est, 1)[0] == pytest.approx(1.0, abs=0.25)
    assert set(r.offset_penalty) == {"X"}  # a root keeps its marginal classifier


def test_unequal_sample_sizes_leave_an_unchanged_mechanism_at_zero():
    """The prior odds of each training fold are removed: with 300 source and 900 target
    cases and an exact parent offset, an unchanged child's log-ratio centres on zero
    (keeping the prior would put it near log 3)."""
    rng = np.random.default_rng(0)
    pa_s, pa_t = rng.normal(0, 1, 300), rng.normal(1, 1, 900)
    v_s, v_t = pa_s + rng.normal(size=300), pa_t + rng.normal(size=900)
    fs, ft = np.arange(300) % 3, np.arange(900) % 3
    ls, lt, _ = crossfit_conditional(
        np.c_[pa_s, v_s], np.c_[pa_t, v_t], pa_s - 0.5, pa_t - 0.5, fs, ft
    )
    assert abs(np.r_[ls, lt].mean()) < 0.1


def test_non_finite_features_are_named():
    graph, src, tgt = _chain(2)
    x = np.asarray(src["X"], dtype=float).copy()
    x[3] = np.nan
    bad = Environment({"Z": src["Z"], "X": x}, name="s")
    cf = CrossFittedRatios(graph, ["Z", "X"], n_folds=2, progress=False, conditional="offset")
    with pytest.raises(ValueError, match=r"environment 's' hold non-finite values"):
        cf.fit(bad, tgt)


def test_estimators_without_a_feature_matrix_keep_the_difference():
    class Gaussian(DensityRatioEstimator):  # a fixed log-ratio, no feature matrix
        def fit(self, source_features, target_features):
            self.fitted_ = True
            return self

        def log_ratio(self, features):
            return np.sum([np.asarray(v, dtype=float) for v in features.values()], axis=0)

    graph, src, tgt = _chain(1)
    cf = CrossFittedRatios(
        graph,
        ["X"],
        estimators={"X": Gaussian(), "Z": Gaussian()},
        n_folds=2,
        progress=False,
        conditional="offset",
    )
    r = cf.fit(src, tgt)
    assert r.offset_penalty == {}
    np.testing.assert_allclose(r.log_ratios[0], src["X"])  # (Z + X) - Z
    with pytest.raises(ValueError, match=r"one of \('difference', 'offset', 'offset_child'\), got"):
        CrossFittedRatios(graph, ["X"], conditional="product")


def test_crossfit_conditional_uses_only_other_folds():
    """A case's prediction must not depend on its own label: changing one test case's
    features leaves the other folds' predictions unchanged."""
    rng = np.random.default_rng(0)
    Zs, Zt = rng.normal(size=(60, 2)), rng.normal(0.5, 1, size=(60, 2))
    folds = np.arange(60) % 3
    a = crossfit_conditional(Zs, Zt, np.zeros(60), np.zeros(60), folds, folds, penalties=(3.0,))
    Zs2 = Zs.copy()
    Zs2[0] += 5.0  # case 0 is in fold 0
    b = crossfit_conditional(Zs2, Zt, np.zeros(60), np.zeros(60), folds, folds, penalties=(3.0,))
    in_fold0 = folds == 0
    np.testing.assert_allclose(
        a[0][in_fold0 & (np.arange(60) != 0)], b[0][in_fold0 & (np.arange(60) != 0)]
    )
    assert not np.allclose(a[0][~in_fold0], b[0][~in_fold0])


def test_attribute_with_offset_ratios():
    scm = sa.datasets.LinearGaussianSCM.example()
    s = scm.sample(400, "source", random_state=0)
    t = scm.sample(400, "target", random_state=1)
    res = sa.attribute(
        scm.graph,
        s,
        t,
        scm.metric(s),
        target_metric=scm.metric(t),
        method="mis",
        conditional_ratios="offset",
        n_folds=3,
        n_bootstrap=0,
        progress=False,
        random_state=0,
    )
    assert res.settings["conditional_ratios"] == "offset"
    per = res.diagnostics["mechanisms"]
    assert per["Z"]["offset_penalty"] is None  # a root
    assert per["X"]["offset_penalty"] > 0 and per["Y"]["offset_penalty"] > 0
    with pytest.raises(ValueError, match="conditional_ratios must be"):
        sa.attribute(scm.graph, s, t, scm.metric(s), conditional_ratios="ratio", progress=False)
    assert AttributionConfig(conditional_ratios="offset").conditional_ratios == "offset"


def test_offset_child_fits_on_the_nodes_own_features():
    """``"offset_child"``: the offset model reads :meth:`node_features` of the mechanism's
    node (here the child alone), never the joint set's matrix; an unchanged child of a
    shifted parent still comes out flat."""

    seen = []

    class Spy(ClassifierRatio):
        def node_features(self, features, node):
            seen.append((tuple(sorted(features)), node))
            return super().node_features(features, node)

    graph, src, tgt = _chain(0)
    spy = Spy(random_state=0)
    cf = CrossFittedRatios(
        graph,
        ["Z", "X"],
        estimators={"X": spy, "Z": ClassifierRatio(random_state=0)},
        n_folds=3,
        progress=False,
        random_state=0,
        conditional="offset_child",
    )
    r = cf.fit(src, tgt)
    assert seen == [(("X", "Z"), "X"), (("X", "Z"), "X")]  # source and target
    assert set(r.offset_penalty) == {"X"}
    x = r.mechanisms.index("X")
    assert np.r_[r.log_ratios[x], r.log_ratios_target[x]].std() < 0.25
    f = {"Z": np.zeros(4), "X": np.arange(4.0)}
    np.testing.assert_array_equal(ClassifierRatio().node_features(f, "X").ravel(), f["X"])


def test_image_node_features_hold_the_nodes_statistics_and_its_extras():
    """The extra features keyed by the node read the whole joint set (here the image)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 6, 6, 6))
    y = (rng.random((5, 6, 6, 6)) > 0.8).astype("uint8")
    est = ImageStatsRatio(
        extra_features={
            "Y": lambda env: env["X"].mean(axis=(1, 2, 3)),
            "X": lambda env: np.ones(len(env)),
        }
    )
    z = est.node_features({"X": x, "Y": y}, "Y")
    own = ImageStatsRatio().ratio_features({"Y": y})
    np.testing.assert_allclose(z, np.c_[own, x.mean(axis=(1, 2, 3))])
    assert est.ratio_features({"X": x, "Y": y}).shape[1] > z.shape[1]  # joint: X's too


def test_image_node_features_are_cached_with_the_environment():
    """A refit bootstrap replicate reuses the node's statistics instead of recomputing
    them: they are stored in the environment's cache, and a resample takes its rows."""
    rng = np.random.default_rng(1)
    env = Environment(
        {"X": rng.normal(size=(6, 6, 6, 6)), "Y": (rng.random((6, 6, 6, 6)) > 0.8).astype("u1")}
    )
    est = ImageStatsRatio()
    features = env.features(["X", "Y"])
    first = est.node_features(features, "Y")
    assert any("image_statistics" in str(k) and "('Y',)" in str(k) for k in features.cache)
    boot = env.subset([5, 5, 0])
    np.testing.assert_allclose(est.node_features(boot.features(["X", "Y"]), "Y"), first[[5, 5, 0]])
