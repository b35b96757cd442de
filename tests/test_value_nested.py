"""NestedRegressions: which regressions are fitted, on which cases, and how often."""

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

import shiftattr.value.nested as nested_mod
from shiftattr.value import NestedRegressions, RobustValue, default_regressors

LEVELS = ("Z", "X", "Y")


def _data(n=300, seed=0, metric_target=True, paired=False, paired_target=False):
    rng = np.random.default_rng(seed)
    zs, zt = rng.normal(0, 1, n), rng.normal(0.5, 1, n)
    xs, xt = zs + rng.normal(0, 1, n), zt + rng.normal(0, 1, n)
    # metric (Y - X)^2, E[m | x] = x^2 + 1 on the source and 4 x^2 + 1 on the target
    ys, yt = rng.normal(0, 1, n), 3 * xt + rng.normal(0, 1, n)
    ms, mt = (ys - xs) ** 2, (yt - xt) ** 2
    kw = {}
    if paired:
        y_cf = 3 * xs + rng.normal(0, 1, n)
        kw["paired_source"] = {frozenset(): ms, frozenset({"Y"}): (y_cf - xs) ** 2}
    if paired_target:  # the source's reading of the target cases
        y_cf = rng.normal(0, 1, n)
        kw["paired_target"] = {frozenset(): mt, frozenset({"Y"}): (y_cf - xt) ** 2}
    return NestedRegressions(
        LEVELS,
        [zs[:, None], xs[:, None], np.empty((n, 0))],
        [zt[:, None], xt[:, None], np.empty((n, 0))],
        ms,
        mt if metric_target else None,
        np.arange(n) % 3,
        np.arange(n) % 3,
        regressors=default_regressors()["quadratic-ridge"],
        random_state=0,
        **kw,
    )


def _all_coalitions(n):
    return np.array([[(i >> j) & 1 for j in range(n)] for i in range(2**n)], dtype=bool)


def test_regressions_are_memoised_and_fitted_once_per_downstream_assignment(monkeypatch):
    calls = []
    original = nested_mod.crossfit_regression

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(nested_mod, "crossfit_regression", counting)
    nr = _data()
    value = RobustValue(
        nr, LEVELS, {v: np.zeros(300) for v in LEVELS}, {v: np.zeros(300) for v in LEVELS}
    )
    game = value.game()
    game(_all_coalitions(3))
    # levels 1 and 2 (level 0's regression is the plain mean of g_0): 2^2 downstream
    # assignments of {X, Y} at level 1 plus 2 of {Y} at level 2, each fitted once,
    # although the 8 coalitions ask for them again and again
    assert len(nr.fits) == 6
    assert len(calls) == 6
    assert sorted(c[1] for c in calls) == [1, 1, 1, 1, 2, 2]  # on Z, or on (Z, X)
    # a second, fresh game over the same coalitions fits nothing new
    RobustValue(nr, LEVELS, value.log_ratio_source, value.log_ratio_target).game()(
        _all_coalitions(3)
    )
    assert len(calls) == 6
    # the upstream part of a coalition does not matter to a level
    assert nr.fit(2, frozenset({"Z", "X"})) is nr.fit(2, frozenset())
    assert nr.fit(1, frozenset({"Z", "Y"})) is nr.fit(1, frozenset({"Y"}))
    assert nr.fit(1, frozenset({"X"})) is not nr.fit(1, frozenset())
    assert len(calls) == 6


def test_features_grow_along_the_order(monkeypatch):
    # level k regresses on the features of levels < k: Z at level 1, Z and X at level 2
    calls = []
    nr = _data()
    original = nested_mod.crossfit_regression
    monkeypatch.setattr(
        nested_mod,
        "crossfit_regression",
        lambda *a, **k: calls.append(a[0].shape) or original(*a, **k),
    )
    nr.fit(1, frozenset())
    assert calls == [(300, 2), (300, 1)]  # level 2 first (the outcome of level 1)


def test_levels_fit_on_the_environment_of_their_mechanism():
    nr = _data()
    src_fit = nr.fit(2, frozenset())
    tgt_fit = nr.fit(2, frozenset({"Y"}))
    assert (src_fit.fitted_on, tgt_fit.fitted_on) == ("source", "target")
    # fitted on the target's metric: its predictions at target cases track m_t, not m_s
    assert tgt_fit.r2 > 0.4 and src_fit.r2 > 0.1
    assert np.corrcoef(tgt_fit.target, nr.metric_target)[0, 1] > 0.6
    assert np.corrcoef(src_fit.source, nr.metric_source)[0, 1] > 0.3
    # the same function of (X, Y), but Y | X shifted: at the source cases the target
    # fit predicts about 4 x^2 + 1, the source fit x^2 + 1
    x = nr._cum_s[2][:, 1]
    assert np.mean(tgt_fit.source - src_fit.source) == pytest.approx(3 * np.mean(x**2), rel=0.3)
    assert src_fit.r2 is not None and src_fit.chosen == "StandardisedRidgeCV"
    # level 1 with X from the target regresses h_2(·, source Y) on the target cases
    assert nr.fit(1, frozenset({"X"})).fitted_on == "target"
    assert nr.fit(1, frozenset({"Y"})).fitted_on == "source"


def test_the_last_level_on_the_target_needs_the_target_metric():
    nr = _data(metric_target=False)
    assert nr.fit(2, frozenset()).fitted_on == "source"  # source side is fine
    with pytest.raises(ValueError, match="target_metric"):
        nr.fit(2, frozenset({"Y"}))


def test_paired_levels_need_no_regression_when_both_sides_are_observed(monkeypatch):
    calls = []
    original = nested_mod.crossfit_regression
    monkeypatch.setattr(
        nested_mod, "crossfit_regression", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    nr = _data(paired=True, paired_target=True)
    assert nr.first_paired == 2
    with_y = nr.fit(2, frozenset({"Y"}))
    without = nr.fit(2, frozenset())
    assert {with_y.fitted_on, without.fitted_on} == {"paired"}
    assert (with_y.r2, with_y.chosen, without.r2, without.chosen) == (None,) * 4
    assert calls == []  # observed on both sides: nothing regressed
    # Y from the target: the source cases re-scored with the target's Y, and the
    # target cases as they are; Y from the source: the reverse substitution
    np.testing.assert_array_equal(with_y.source, nr.paired_source[frozenset({"Y"})])
    np.testing.assert_array_equal(with_y.target, nr.metric_target)
    np.testing.assert_array_equal(without.source, nr.metric_source)
    np.testing.assert_array_equal(without.target, nr.paired_target[frozenset({"Y"})])


def test_paired_level_without_the_reverse_reading_is_regressed_from_the_source():
    nr = _data(paired=True)
    fit = nr.fit(2, frozenset({"Y"}))
    assert fit.fitted_on == "paired"
    np.testing.assert_array_equal(fit.source, nr.paired_source[frozenset({"Y"})])
    # E[m | z, x] under the target's Y mechanism, learnt on the source cases and
    # predicted at the target cases: reported with its regressor and R2
    assert fit.chosen == "StandardisedRidgeCV" and fit.r2 > 0.0
    assert fit.target.shape == (300,) and np.all(np.isfinite(fit.target))


def test_paired_nodes_must_be_the_last_levels():
    n = 10
    x = np.zeros((n, 1))
    with pytest.raises(ValueError, match="last levels"):
        NestedRegressions(
            ("Y", "X"),
            [x, x],
            [x, x],
            np.zeros(n),
            np.zeros(n),
            np.arange(n) % 2,
            np.arange(n) % 2,
            paired_source={frozenset(): np.zeros(n), frozenset({"Y"}): np.ones(n)},
        )


def _shifted_x(n=400, seed=3):
    """X moves far between the environments; the law of Y given X does not."""
    rng = np.random.default_rng(seed)
    xs, xt = rng.normal(0, 1, n), rng.normal(2.5, 0.5, n)
    ys, yt = xs + rng.normal(0, 0.3, n), xt + rng.normal(0, 0.3, n)
    # the metric bends where only the source has cases: a line fitted on the target
    # cases extrapolates it wrongly
    ms, mt = np.sin(2 * xs) + 0.1 * ys, np.sin(2 * xt) + 0.1 * yt
    truth_s = np.sin(2 * xs) + 0.1 * xs  # E[m | x] under either environment's Y | X
    return xs, xt, ys, yt, ms, mt, truth_s


def _two_levels(xs, xt, ms, mt, pool, regressor=None):
    """Levels X, Y; Y's regression on X (gradient boosting unless ``regressor``)."""
    n = len(xs)
    return NestedRegressions(
        ("X", "Y"),
        [xs[:, None], np.empty((n, 0))],
        [xt[:, None], np.empty((n, 0))],
        ms,
        mt,
        np.arange(n) % 3,
        np.arange(n) % 3,
        regressors=regressor or default_regressors()["gradient-boosting"],
        random_state=0,
        pool_log_ratios=pool,
    )


def test_pooled_regression_sees_both_environments_instead_of_extrapolating():
    xs, xt, _, _, ms, mt, truth_s = _shifted_x()
    n = len(xs)
    own = _two_levels(xs, xt, ms, mt, None).fit(1, frozenset({"Y"}))
    # Y | X did not shift: its conditional log-ratio is 0 at every case
    zero = {"Y": np.zeros(n)}
    pooled = _two_levels(xs, xt, ms, mt, (zero, zero)).fit(1, frozenset({"Y"}))
    assert own.fitted_on == pooled.fitted_on == "target"
    assert pooled.pooled and not own.pooled
    err_own = np.mean((own.source - truth_s) ** 2)
    err_pooled = np.mean((pooled.source - truth_s) ** 2)
    assert err_pooled < 0.2 * err_own  # at the source cases: fitted there, not extrapolated
    # the source-mechanism regression is pooled the same way, with the target cases
    src = _two_levels(xs, xt, ms, mt, (zero, zero)).fit(1, frozenset())
    assert src.pooled and src.fitted_on == "source"
    truth_t = np.sin(2 * xt) + 0.1 * xt
    own_src = _two_levels(xs, xt, ms, mt, None).fit(1, frozenset())
    assert np.mean((src.target - truth_t) ** 2) < np.mean((own_src.target - truth_t) ** 2)
    # a level without a ratio is fitted on its own environment
    other = _two_levels(xs, xt, ms, mt, ({"Z": np.zeros(n)}, {"Z": np.zeros(n)}))
    assert not other.fit(1, frozenset({"Y"})).pooled


def test_pooled_weights_turn_the_other_environment_into_the_mechanism_followed():
    # Y | X shifts by +1; its conditional log-ratio is known exactly. The metric is Y, so
    # the target mechanism's regression is x + 1 and the source one's is x.
    rng = np.random.default_rng(0)
    n = 4000
    xs, xt = rng.normal(0, 1, n), rng.normal(0.5, 1, n)
    ys, yt = xs + rng.normal(0, 1, n), xt + 1 + rng.normal(0, 1, n)

    def log_ratio(x, y):  # log N(y; x + 1, 1) - log N(y; x, 1)
        return (y - x) - 0.5

    def nested(pool):
        return _two_levels(xs, xt, ys, yt, pool, LinearRegression())

    pool = ({"Y": log_ratio(xs, ys)}, {"Y": log_ratio(xt, yt)})
    tgt = nested(pool).fit(1, frozenset({"Y"}))  # fitted on target + reweighted source
    src = nested(pool).fit(1, frozenset())  # fitted on source + reweighted target
    for fit, shift in ((tgt, 1.0), (src, 0.0)):
        assert fit.pooled
        assert np.mean(fit.source - (xs + shift)) == pytest.approx(0.0, abs=0.05)
        assert np.mean(fit.target - (xt + shift)) == pytest.approx(0.0, abs=0.05)
    lr = log_ratio(xs, ys)
    w = nested_mod.pool_weights(lr)  # no weight reaches the cap here: exp(lr), mean one
    np.testing.assert_allclose(w, np.exp(lr) / np.exp(lr).mean(), rtol=1e-9)
