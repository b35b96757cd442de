"""Bias-aware intervals: the critical values, their coverage, and attribute(interval=...)."""

import warnings

import numpy as np
import pytest
from scipy.stats import foldnorm, norm
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shiftattr as sa
from shiftattr.bias_aware import bias_aware_interval, folded_normal_quantile, resolve_interval
from shiftattr.datasets import LinearGaussianSCM
from shiftattr.results import Attribution, ShiftAttrWarning


def test_without_a_bound_it_is_the_normal_interval():
    iv = bias_aware_interval(np.array([0.3, -0.1]), np.zeros(2), np.array([0.02, 0.05]), 0.9)
    z = norm.ppf(0.95)
    np.testing.assert_allclose(iv.critical, [z, z])
    np.testing.assert_allclose(iv.low, [0.3 - z * 0.02, -0.1 - z * 0.05])
    np.testing.assert_allclose(iv.high - iv.low, 2 * iv.half_width)


def test_a_large_bound_adds_the_one_sided_quantile():
    # cv(t) -> t + z_{confidence}: one tail's miss probability vanishes for large t
    iv = bias_aware_interval(np.zeros(1), np.array([1.0]), np.array([0.01]))
    assert iv.half_width[0] == pytest.approx(1.0 + norm.ppf(0.95) * 0.01, rel=1e-9)
    # the half-width grows with the bound and always exceeds bound and normal half-width
    b = np.linspace(0, 0.1, 11)
    h = bias_aware_interval(np.zeros(11), b, np.full(11, 0.01)).half_width
    assert np.all(np.diff(h) > 0)
    assert np.all(h >= b) and np.all(h >= norm.ppf(0.975) * 0.01 - 1e-12)
    assert np.all(h <= b + norm.ppf(0.975) * 0.01 + 1e-12)  # never wider than the sum


@pytest.mark.parametrize("bias_fraction", [0.0, 0.5, 1.0])
def test_coverage_is_at_least_the_level_for_any_bias_within_the_bound(bias_fraction):
    rng = np.random.default_rng(0)
    se, bound, n = 0.02, 0.03, 40_000
    estimates = bias_fraction * bound + rng.normal(0, se, n)  # the estimand is 0
    iv = bias_aware_interval(estimates, np.full(n, bound), np.full(n, se))
    covered = np.mean((iv.low <= 0) & (iv.high >= 0))
    if bias_fraction == 1.0:  # exact at the end of the range
        assert covered == pytest.approx(0.95, abs=0.005)
    else:
        assert covered > 0.95
    # the normal interval misses this bias
    normal = np.mean(np.abs(estimates) <= norm.ppf(0.975) * se)
    assert bias_fraction == 0.0 or normal < 0.9


def test_folded_normal_quantile_matches_scipy():
    t = np.array([0.0, 1e-9, 0.3, 1.0, 2.5, 8.0, 300.0])
    for level in (0.8, 0.95, 0.99):
        np.testing.assert_allclose(
            folded_normal_quantile(t, level), foldnorm.ppf(level, c=t), rtol=1e-12
        )
    assert np.isnan(folded_normal_quantile(np.array([np.nan]))[0])


def test_degenerate_standard_errors():
    iv = bias_aware_interval(np.ones(3), np.array([0.0, 0.2, 0.1]), np.array([0.0, 0.0, np.nan]))
    assert iv.half_width[0] == 0 and iv.critical[0] == 0  # no noise, no bound: a point
    assert iv.half_width[1] == 0.2 and np.isinf(iv.critical[1])  # no noise: the bound itself
    assert np.isnan(iv.low[2]) and np.isnan(iv.high[2])  # unknown s.e.: unknown interval
    with pytest.raises(ValueError, match="stderr must be non-negative"):
        bias_aware_interval(np.zeros(1), np.zeros(1), np.array([-1.0]))
    with pytest.raises(ValueError, match="confidence must lie in"):
        bias_aware_interval(np.zeros(1), np.zeros(1), np.ones(1), confidence=1.0)


def test_resolve_interval_defaults_to_bias_aware_for_mr_and_mis():
    assert resolve_interval("auto", "mr", 200) == "bias_aware"
    assert resolve_interval("auto", "mis", 200) == "bias_aware"  # 92-94 % against 76-88 %
    assert resolve_interval("auto", "mis", 1) == "bootstrap"
    assert resolve_interval("auto", "mr", 1) == "bootstrap"  # no standard error to widen
    assert resolve_interval("auto", "regression", 200) == "bootstrap"  # 67-82 % coverage
    assert resolve_interval("auto", "iw", 200) == "bootstrap"  # nothing to compare with
    assert resolve_interval("bootstrap", "mr", 0) == "bootstrap"
    assert resolve_interval("bias_aware", "regression", 10) == "bias_aware"
    with pytest.raises(ValueError, match="interval must be one of"):
        resolve_interval("bayes", "mr", 10)
    with pytest.raises(ValueError, match="needs method='mr', 'regression', 'generative' or 'mis'"):
        resolve_interval("bias_aware", "iw", 10)
    with pytest.raises(ValueError, match="n_bootstrap of 2 or more \\(got 1\\)"):
        resolve_interval("bias_aware", "mr", 1)  # one replicate has no standard error


@pytest.fixture(scope="module")
def tabular():
    scm = LinearGaussianSCM.example()
    src = scm.sample(300, "source", random_state=0)
    tgt = scm.sample(300, "target", random_state=1)
    return scm, src, tgt


def _attribute(tabular, **kw):
    scm, src, tgt = tabular
    args = dict(
        metric=scm.metric(src),
        target_metric=scm.metric(tgt),
        n_bootstrap=40,
        bootstrap="fixed",
        n_folds=3,
        progress=False,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShiftAttrWarning)
        return sa.attribute(scm.graph, src, tgt, **{**args, **kw})


@pytest.mark.parametrize("method", ["mr", "regression"])
def test_attribute_bias_aware_interval(tabular, method):
    plain = _attribute(tabular, method=method, interval="bootstrap")
    aware = _attribute(tabular, method=method, interval="bias_aware")
    assert aware.values == plain.values and aware.stderr == plain.stderr
    default = _attribute(tabular, method=method)  # "auto": bias-aware for mr only
    assert default.ci == (aware.ci if method == "mr" else plain.ci)
    assert default.settings["interval"] == ("bias_aware" if method == "mr" else "bootstrap")
    est = aware.diagnostics["estimator"]
    # both intervals are in the diagnostics of either run; ci holds the one asked for
    assert plain.diagnostics["estimator"]["bias_aware_ci"] == est["bias_aware_ci"]
    assert est["bootstrap_ci"] == plain.ci and aware.ci == est["bias_aware_ci"]
    for k in aware.mechanisms:
        bound = abs(aware.values[k] - est["iw_values"][k])
        assert est["bias_bound"][k] == pytest.approx(bound, abs=1e-15)
        lo, hi = aware.ci[k]
        expected = bias_aware_interval(
            np.array([aware.values[k]]), np.array([bound]), np.array([aware.stderr[k]])
        )
        assert (lo, hi) == pytest.approx((expected.low[0], expected.high[0]))
        assert hi - lo >= 2 * bound  # always reaches past the other estimator's value
        assert lo <= est["iw_values"][k] <= hi
    assert aware.settings["interval"] == "bias_aware" and plain.settings["interval"] == "bootstrap"
    assert "intervals: bias-aware" in aware.summary()
    assert "bias-aware" not in plain.summary()
    codes = {w["code"] for w in aware.warnings}
    if method == "regression":  # the se still leaves out the regressions' error: kept
        assert "narrow_interval" in {w["code"] for w in plain.warnings}
        assert "narrow_interval" in codes
    back = Attribution.from_json(aware.to_json())
    assert back.settings["interval"] == "bias_aware"
    for k in aware.mechanisms:
        assert tuple(back.ci[k]) == pytest.approx(aware.ci[k])


def test_attribute_refuses_a_bias_aware_interval_it_cannot_compute(tabular):
    with pytest.raises(ValueError, match="needs method='mr', 'regression', 'generative' or 'mis'"):
        _attribute(tabular, method="iw", interval="bias_aware")
    with pytest.raises(ValueError, match="n_bootstrap of 2 or more"):
        _attribute(tabular, method="mr", interval="bias_aware", n_bootstrap=0)
    with pytest.raises(ValueError, match="interval must be one of"):
        _attribute(tabular, method="mr", interval="percentile")


def _expected(values, bound, stderr, confidence):
    """The interval from scipy's folded normal, independently of the library."""
    half = stderr * foldnorm.ppf(confidence, c=bound / stderr)
    return values - half, values + half


@pytest.mark.parametrize(
    ("bootstrap", "n_repeats", "n_bootstrap"), [("fixed", 3, 12), ("refit", 2, 4)]
)
def test_bias_aware_interval_uses_the_reported_se_and_the_mean_iw_of_the_repeats(
    tabular, bootstrap, n_repeats, n_bootstrap
):
    # the bound comes from a separate importance-weighting run on the same folds: the IW
    # twin of "mr" must be the mean over the repeats of exactly that estimate
    kw = dict(bootstrap=bootstrap, n_repeats=n_repeats, n_bootstrap=n_bootstrap, confidence=0.9)
    fast = make_pipeline(StandardScaler(), RidgeCV())  # the regressor does not matter here
    aware = _attribute(tabular, method="mr", interval="bias_aware", regressor=fast, **kw)
    iw = _attribute(tabular, method="iw", **kw)
    raw_sd = np.std(aware.bootstrap_values, axis=0, ddof=1)
    for i, k in enumerate(aware.mechanisms):
        bound = abs(aware.values[k] - iw.values[k])
        assert aware.diagnostics["estimator"]["bias_bound"][k] == pytest.approx(bound, abs=1e-12)
        se = aware.stderr[k]
        if bootstrap == "fixed":  # widened by the spread between the repeats
            assert se > raw_sd[i]
            assert se == pytest.approx(
                np.hypot(raw_sd[i], np.std(aware.diagnostics["repeats"]["values"][k], ddof=1))
            )
        else:  # each refit replicate is one fit: its spread is the standard error
            assert se == pytest.approx(raw_sd[i])
        lo, hi = _expected(aware.values[k], bound, se, 0.9)
        assert aware.ci[k] == pytest.approx((lo, hi), abs=1e-12)


def test_tolerance_is_judged_against_the_bias_aware_interval(tabular):
    plain = _attribute(tabular, method="mr", interval="bootstrap")
    aware = _attribute(tabular, method="mr", interval="bias_aware")
    half = {k: (hi - lo) / 2 for k, (lo, hi) in plain.ci.items()}
    wide = {k: (hi - lo) / 2 for k, (lo, hi) in aware.ci.items()}
    k = max(aware.mechanisms, key=lambda m: wide[m] - half[m])
    assert wide[k] > half[k] * 1.2  # the bound widened this mechanism's interval
    tol = max(abs(plain.values[k] - b) for b in plain.ci[k]) * 1.01  # plain fits inside
    plain_t = _attribute(tabular, method="mr", interval="bootstrap", tolerance=tol)
    aware_t = _attribute(tabular, method="mr", interval="bias_aware", tolerance=tol)

    def imprecise(res):
        return {w["mechanism"] for w in res.warnings if w["code"] == "imprecise"}

    assert k not in imprecise(plain_t) and k in imprecise(aware_t)
