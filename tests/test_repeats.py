"""Repeated cross-fitting: the combining rules and attribute(n_repeats=...)."""

import warnings

import numpy as np
import pytest

import shiftattr as sa
from shiftattr.datasets import LinearGaussianSCM
from shiftattr.ratios import DensityRatioEstimator
from shiftattr.repeats import repeats_interval, split_unstable_warnings
from shiftattr.results import Attribution, ShiftAttrWarning


def test_widening_adds_the_between_repeat_variance_to_the_bootstrap_variance():
    rng = np.random.default_rng(0)
    boot = rng.normal(0.1, 0.02, size=(400, 2))
    repeats = np.array([[0.10, 0.05], [0.16, 0.05], [0.04, 0.05]])  # spread in the first only
    point = repeats.mean(axis=0)
    iv = repeats_interval(point, repeats, boot, confidence=0.9)
    boot_sd = boot.std(axis=0, ddof=1)
    np.testing.assert_allclose(iv.between_sd, [0.06, 0.0], atol=1e-12)
    np.testing.assert_allclose(iv.stderr, np.hypot(boot_sd, iv.between_sd))
    assert iv.factor[0] > 3 and iv.factor[1] == 1.0  # equal repeats: the interval stays
    # the percentile interval, scaled about the point by the factor
    lo, hi = np.quantile(boot, [0.05, 0.95], axis=0)
    np.testing.assert_allclose(iv.low, point + (lo - point) * iv.factor)
    np.testing.assert_allclose(iv.high, point + (hi - point) * iv.factor)
    assert iv.low[1] == pytest.approx(lo[1]) and iv.high[1] == pytest.approx(hi[1])


def test_without_bootstrap_spread_the_interval_is_the_repeats_normal_interval():
    point = np.array([0.2, 0.1])
    repeats = np.array([[0.1, 0.1], [0.3, 0.1]])  # first differs, second does not
    iv = repeats_interval(point, repeats, np.array([[0.2, 0.1]] * 5))  # no bootstrap spread
    sd = np.std([0.1, 0.3], ddof=1)
    assert np.isinf(iv.factor[0]) and iv.factor[1] == 1.0
    assert iv.low[0] == pytest.approx(0.2 - 1.959964 * sd) and iv.high[0] > 0.2 + 0.27
    assert iv.low[1] == iv.high[1] == pytest.approx(0.1)


def test_widening_needs_two_repeats_and_a_replicate():
    with pytest.raises(ValueError, match="at least two repeats"):
        repeats_interval(np.zeros(1), np.zeros((1, 1)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="at least one replicate"):
        repeats_interval(np.zeros(1), np.zeros((2, 1)), np.zeros((0, 1)))


def test_split_unstable_names_only_the_mechanisms_whose_repeats_disagree():
    w = split_unstable_warnings(("D", "X"), np.array([0.02, 0.02]), np.array([0.01, 0.03]), 4)
    assert [x["mechanism"] for x in w] == ["D"]
    assert "between 4 cross-fitting repeats" in w[0]["message"]


def _data(n=300):
    scm = LinearGaussianSCM.example()
    return scm, scm.sample(n, "source", random_state=0), scm.sample(n, "target", random_state=1)


def _attribute(scm, src, tgt, **kw):
    args = {
        "metric": scm.metric(src),
        "target_metric": scm.metric(tgt),
        "method": "iw",  # written for importance weighting, the default until 2026-12-02
        "n_folds": 3,
        "n_bootstrap": 30,
        "bootstrap": "fixed",
        "estimators": dict.fromkeys("ZXY", sa.ratios.ClassifierRatio(_logistic())),
        "progress": False,
        "random_state": 3,
    }
    args.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShiftAttrWarning)
        return sa.attribute(scm.graph, src, tgt, **args)


def _logistic():
    return sa.ratios.classifier.default_candidates()["quadratic-logistic"]


@pytest.mark.parametrize("method", ["iw", "mr"])
def test_repeats_average_the_values_and_the_first_repeat_is_the_single_fit(method):
    scm, src, tgt = _data()
    one = _attribute(scm, src, tgt, method=method)
    three = _attribute(scm, src, tgt, method=method, n_repeats=3)
    rep = three.diagnostics["repeats"]
    assert rep["n_repeats"] == 3 and three.settings["n_repeats"] == 3
    for k in one.mechanisms:
        runs = rep["values"][k]
        assert runs[0] == pytest.approx(one.values[k], abs=1e-12)  # same seed, same folds
        assert three.values[k] == pytest.approx(np.mean(runs), abs=1e-12)
        assert rep["sd"][k] == pytest.approx(np.std(runs, ddof=1), abs=1e-12)
        assert len(set(np.round(runs, 10))) == 3  # other folds, other ratios
    assert "repeats" not in one.diagnostics and one.settings["n_repeats"] == 1
    # the weighted target metric is averaged as well: the values still close the sum
    total = three.source_metric - three.estimated_target_metric
    assert sum(three.values.values()) == pytest.approx(total, abs=1e-10)
    if method == "mr":  # the importance-weighting twin is averaged over the same repeats
        iw_one = one.diagnostics["estimator"]["iw_values"]
        iw_three = three.diagnostics["estimator"]["iw_values"]
        assert iw_three != pytest.approx(iw_one, abs=1e-9)
        assert set(three.diagnostics["estimator"]["difference_ci"]) == set(one.mechanisms)


def test_fixed_bootstrap_intervals_include_the_spread_between_repeats(tmp_path):
    scm, src, tgt = _data()
    res = _attribute(scm, src, tgt, n_repeats=3)
    rep = res.diagnostics["repeats"]
    boot = res.bootstrap_values  # replicates of the mean over repeats, not widened
    assert boot.shape == (30, 3)
    for i, k in enumerate(res.mechanisms):
        v = res.values[k]
        boot_sd = boot[:, i].std(ddof=1)
        factor = np.sqrt(1 + rep["sd"][k] ** 2 / boot_sd**2)  # from the stored pieces alone
        assert rep["interval_factor"][k] == pytest.approx(factor, rel=1e-9) and factor > 1.0
        lo, hi = np.quantile(boot[:, i], [0.025, 0.975])
        assert res.ci[k] == pytest.approx((v + (lo - v) * factor, v + (hi - v) * factor))
        assert res.stderr[k] == pytest.approx(np.hypot(boot_sd, rep["sd"][k]), rel=1e-9)
    back = Attribution.from_json(res.to_json(tmp_path / "a.json"))
    assert back.diagnostics["repeats"]["sd"] == pytest.approx(rep["sd"])
    assert "x 3 repeats" in res.summary()


def test_refit_bootstrap_is_not_widened():
    scm, src, tgt = _data(200)
    res = _attribute(scm, src, tgt, n_repeats=2, bootstrap="refit", n_bootstrap=4)
    assert "interval_factor" not in res.diagnostics["repeats"]
    assert len(res.bootstrap_values) == 4
    for i, k in enumerate(res.mechanisms):  # the plain percentile interval of the refits
        lo, hi = np.quantile(res.bootstrap_values[:, i], [0.025, 0.975])
        assert res.ci[k] == pytest.approx((lo, hi))


class RecordingSolver(sa.shapley.PermutationShapley):
    """A permutation solver that keeps the standard errors of every solve."""

    def solve(self, game):
        out = super().solve(game)
        self.seen.append(np.asarray(out.stderr))
        return out


def test_sampling_solver_error_is_not_shrunk_by_the_repeats():
    scm, src, tgt = _data(200)
    one_solver = RecordingSolver(n_permutations=8, random_state=0)
    one_solver.seen = []
    one = _attribute(scm, src, tgt, solver=one_solver, n_bootstrap=0)
    solver = RecordingSolver(n_permutations=8, random_state=0)
    solver.seen = []
    two = _attribute(scm, src, tgt, solver=solver, n_bootstrap=0, n_repeats=2)
    assert (
        len(solver.seen) == 2 and two.settings["n_evaluations"] == 2 * one.settings["n_evaluations"]
    )
    # the same permutations in both repeats: the errors are not independent, so the
    # reported error is their root mean square, not that divided by sqrt(2)
    rms = np.sqrt(np.mean(np.square(solver.seen), axis=0))
    np.testing.assert_allclose([two.solver_stderr[k] for k in two.mechanisms], rms, rtol=1e-12)
    # and a single repeat reports its solve's error as it is
    np.testing.assert_array_equal(
        [one.solver_stderr[k] for k in one.mechanisms], one_solver.seen[0]
    )


class FoldSensitiveRatio(DensityRatioEstimator):
    """A deliberately unstable estimator: its slope depends on which cases it was fitted on."""

    def fit(self, source_features, target_features):
        z = np.asarray(source_features["Z"], dtype=float)
        self.slope_ = 3.0 * ((1e3 * z.sum()) % 1.0)  # anywhere in [0, 3) from fold to fold
        return self

    def log_ratio(self, features):
        z = np.asarray(features["Z"], dtype=float)
        return self.slope_ * z - self.slope_**2 / 2


def test_unstable_ratios_raise_split_unstable_and_it_is_counted():
    scm, src, tgt = _data()
    res = _attribute(
        scm, src, tgt, n_repeats=4, mechanisms=["Z"], estimators={"Z": FoldSensitiveRatio()}
    )
    codes = [w["code"] for w in res.warnings]
    assert codes.count("split_unstable") == 1
    assert res.diagnostics["overall"]["warning_counts"]["split_unstable"] == 1
    # stable ratios (the same logistic model refitted) stay quiet on the same data
    calm = _attribute(scm, src, tgt, n_repeats=4, mechanisms=["Z"])
    assert "split_unstable" not in [w["code"] for w in calm.warnings]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_bad_n_repeats_is_refused(bad):
    scm, src, tgt = _data(60)
    with pytest.raises(ValueError, match="n_repeats must be a positive integer"):
        _attribute(scm, src, tgt, n_repeats=bad, n_bootstrap=0)
