"""RobustValue: the multiply-robust and regression estimates of M(P_I), against known truth.

The linear-Gaussian SCM ``Z -> X -> Y <- Z`` with the squared-error metric makes every
nested regression exactly quadratic in the earlier variables (``E[(Y - 1.2 X)^2 | z, x]``
is a squared linear form plus a constant, and Gaussian integration keeps it quadratic),
so ``quadratic-ridge`` is a correctly specified regression and ``DummyRegressor`` (the
fold mean) a misspecified one; ``true_log_ratio`` is the exact ratio and an all-zero
log-ratio a wrong one.
"""

import numpy as np
import pytest
from sklearn.dummy import DummyRegressor

import shiftattr as sa
from shiftattr.datasets import LinearGaussianSCM
from shiftattr.datasets.truth import all_coalitions
from shiftattr.value import NestedRegressions, RobustValue, default_regressors
from shiftattr.value.robust import DrawnWeights
from shiftattr.weighting import resample_counts

SCM = LinearGaussianSCM.example(metric="squared_error")
TRUTH = SCM.true_attribution()
MECHS = TRUTH.mechanisms  # ("Z", "X", "Y")
N_LARGE = 20_000
# Tolerance of the consistency checks at N = 20,000. Measured over 20 seeds (0..19):
# the Shapley errors of the correctly specified combinations (oracle ratios + constant
# regressions, quadratic regressions + zero ratios, both right) have a standard
# deviation of at most 0.006 (Y; Z 0.004, X 0.003) and a largest |error| of 0.015. So
# 0.025 is ~4 SD, while the negative control (both wrong) misses Z by 0.13 and Y by 0.16.
ATOL = 0.025
# coalition values at the same N: their spread is that of the Shapley values or less
ATOL_COALITION = 0.03


def _robust_value(seed, regressors, oracle_ratios, n=N_LARGE, robust=True):
    src = SCM.sample(n, "source", random_state=seed)
    tgt = SCM.sample(n, "target", random_state=seed + 1000)
    fs = [np.asarray(src[v], dtype=float)[:, None] for v in MECHS]
    ft = [np.asarray(tgt[v], dtype=float)[:, None] for v in MECHS]
    rng = np.random.default_rng(seed)
    nested = NestedRegressions(
        MECHS,
        fs,
        ft,
        SCM.metric(src),
        SCM.metric(tgt),
        rng.integers(0, 5, n),
        rng.integers(0, 5, n),
        regressors=regressors,
        random_state=seed,
    )
    if oracle_ratios:
        lr_s = {v: SCM.true_log_ratio(src, v) for v in MECHS}
        lr_t = {v: SCM.true_log_ratio(tgt, v) for v in MECHS}
    else:  # wrong: "no shift" in every mechanism
        lr_s = {v: np.zeros(n) for v in MECHS}
        lr_t = {v: np.zeros(n) for v in MECHS}
    return RobustValue(nested, MECHS, lr_s, lr_t, robust=robust), src


def _shapley(value):
    return sa.shapley.ExactShapley().solve(value.game()).values


def _truth():
    return np.array([TRUTH.values[m] for m in MECHS])


def _coalition_errors(value):
    rows = np.array([[m in c for m in MECHS] for c in all_coalitions(MECHS)])
    est = value.game()(rows)
    return est - np.array([TRUTH.delta_m[c] for c in all_coalitions(MECHS)])


def test_mr_is_consistent_with_right_ratios_and_wrong_regressions():
    # constant (fold-mean) regressions: every correction is a weighted average, the
    # sum telescopes to the importance-weighted mean under P_I
    value, _ = _robust_value(0, DummyRegressor(), oracle_ratios=True)
    assert {f.chosen for f in value.regressions.fits} <= {"DummyRegressor", "mean"}
    np.testing.assert_allclose(_shapley(value), _truth(), atol=ATOL)
    np.testing.assert_allclose(_coalition_errors(value), 0.0, atol=ATOL_COALITION)


def test_mr_is_consistent_with_right_regressions_and_wrong_ratios():
    value, _ = _robust_value(1, default_regressors()["quadratic-ridge"], oracle_ratios=False)
    np.testing.assert_allclose(_shapley(value), _truth(), atol=ATOL)
    # the regressions are informative (a constant has out-of-fold R2 <= 0): 0.15-0.25
    # for the noisy squared error itself, above 0.5 one level up
    r2 = {(f.level, f.target_nodes): f.r2 for f in value.regressions.fits}
    assert len(r2) == 6 and min(r2.values()) > 0.1, r2
    assert min(v for (level, _), v in r2.items() if level == 1) > 0.5, r2
    np.testing.assert_allclose(_coalition_errors(value), 0.0, atol=ATOL_COALITION)


def test_mr_with_both_wrong_is_far_from_the_truth():
    # negative control: with neither piece right the estimate is M(target's Y level)
    # for every coalition holding Y, and 0 for the others: Z and X get nothing
    value, _ = _robust_value(2, DummyRegressor(), oracle_ratios=False)
    err = np.abs(_shapley(value) - _truth())
    assert err.max() > 4 * ATOL, err
    assert err[MECHS.index("Z")] > 0.1 and err[MECHS.index("Y")] > 0.1, err


def test_regression_estimate_needs_the_regressions_and_mr_does_not():
    # the plain regression estimate (robust=False) with constant regressions is as
    # wrong as the negative control; the corrections are what rescue it
    plain, _ = _robust_value(3, DummyRegressor(), oracle_ratios=True, robust=False)
    mr, _ = _robust_value(3, DummyRegressor(), oracle_ratios=True, robust=True)
    assert np.abs(_shapley(plain) - _truth()).max() > 0.1
    assert np.abs(_shapley(mr) - _truth()).max() < ATOL
    # and with correct regressions the plain estimate is consistent as well
    good, _ = _robust_value(3, default_regressors()["quadratic-ridge"], False, robust=False)
    np.testing.assert_allclose(_shapley(good), _truth(), atol=ATOL)


@pytest.mark.parametrize("robust", [True, False])
def test_empty_coalition_is_exactly_the_source_mean(robust):
    # all levels at the source: every weight is one and the corrections telescope
    value, src = _robust_value(4, default_regressors()["ridge"], True, n=600, robust=robust)
    est = value.estimate(frozenset())
    if robust:
        assert est["value"] == pytest.approx(SCM.metric(src).mean(), abs=1e-12)
        assert est["min_ess_fraction"] == 1.0
    else:  # the plug-in mean of the cross-fitted first regression: close, not exact
        assert est["value"] == pytest.approx(SCM.metric(src).mean(), rel=0.05)
    assert value.game()(np.zeros((1, 3), dtype=bool))[0] == 0.0


def test_efficiency_and_resampled_games():
    value, _ = _robust_value(5, default_regressors()["quadratic-ridge"], True, n=800)
    sv = sa.shapley.ExactShapley().solve(value.game())
    full = value.game()(np.ones((1, 3), dtype=bool))[0]
    assert sv.values.sum() == pytest.approx(full, abs=1e-10)
    # a bootstrap resample re-averages the same fitted pieces: identity indices give
    # the same game, other indices a different one, and no new regression is fitted
    n_fits = len(value.regressions.fits)
    idx = np.arange(800)
    rows = np.array([[m in c for m in MECHS] for c in all_coalitions(MECHS)])
    np.testing.assert_allclose(value.game(idx, idx)(rows), value.game()(rows), atol=1e-12)
    boot = np.random.default_rng(0).integers(0, 800, (2, 800))
    assert not np.allclose(value.game(boot[0], boot[1])(rows), value.game()(rows))
    assert len(value.regressions.fits) == n_fits


def test_correction_weights_ess_is_reported_below_one_under_shift():
    value, _ = _robust_value(6, default_regressors()["ridge"], True, n=1000)
    # all levels from the target: nothing to reweight
    assert value.estimate(frozenset(MECHS))["min_ess_fraction"] == 1.0
    # Y from the target, Z and X from the source: the Y-level correction reweights the
    # target cases by 1 / (r_Z r_X), and its Kish ESS is below N
    est = value.estimate(frozenset({"Y"}))
    assert 0.0 < est["min_ess_fraction"] < 0.95
    assert est["value"] != est["regression"]


def test_capped_corrections_keep_the_estimate_and_cut_its_variance():
    # right regressions, ratios made wrong and heavy-tailed (log-ratio noise of sd 2):
    # the Y-level correction then has mean zero whatever its weights, so the sqrt(n)
    # cap must not move the estimate on average but must make it less variable
    ridge = default_regressors()["quadratic-ridge"]
    row = np.array([[m == "Y" for m in MECHS]])
    truth = TRUTH.delta_m[("Y",)]
    errors = {"sqrt": [], None: []}
    for seed in range(16):
        base, _ = _robust_value(20 + seed, ridge, oracle_ratios=True, n=800)
        noise = np.random.default_rng(seed).normal(0.0, 2.0, 800)
        lr_t = {v: base.log_ratio_target[v] + (noise if v == "X" else 0.0) for v in MECHS}
        for cap in errors:
            value = RobustValue(
                base.regressions, MECHS, base.log_ratio_source, lr_t, correction_cap=cap
            )
            errors[cap].append(value.game()(row)[0] - truth)
            if cap == "sqrt":
                assert value.max_truncated_fraction_ > 0  # the cap did bind
            else:
                assert value.max_truncated_fraction_ == 0
    capped, raw = np.array(errors["sqrt"]), np.array(errors[None])
    assert capped.std() < 0.9 * raw.std(), (capped.std(), raw.std())  # measured 0.77
    diff = capped - raw  # paired over seeds: the cap's own shift of the estimate
    assert abs(diff.mean()) < 3 * diff.std(ddof=1) / np.sqrt(len(diff)), diff


@pytest.mark.parametrize("cap", ["cube", 1.0, -2, True])
def test_bad_correction_caps_are_refused(cap):
    value, _ = _robust_value(9, default_regressors()["ridge"], True, n=200)
    with pytest.raises(ValueError, match="correction_cap"):
        RobustValue(value.regressions, MECHS, {}, {}, correction_cap=cap)


@pytest.mark.parametrize("gap", [900.0, 738.0])  # underflow to 0; subnormal weights
def test_resampled_values_equal_each_resample_even_when_its_weights_underflow(gap):
    """All resamples at once = one game per resample, also for a resample that misses the
    one case carrying nearly all the correction weight (its other weights underflow, or
    are subnormal and imprecise)."""
    x = np.arange(8.0)
    nr = NestedRegressions(
        ["X", "Y"],
        [x[:, None], x[:, None]],
        [x[:, None] + 1, x[:, None] + 1],
        x**2,
        (x + 1) ** 2,
        np.arange(8) % 2,
        np.arange(8) % 2,
        regressors=DummyRegressor(),
    )
    # case 0 outweighs the rest by e^gap; those differ among themselves
    lr = {"X": np.array([0.0] + [-gap - 0.5 * i for i in range(7)])}
    val = RobustValue(nr, ["X", "Y"], lr, {"X": np.zeros(8)})
    C = np.array([[False, False], [True, False], [False, True], [True, True]])
    idx = np.array([[1, 2, 3, 4, 5, 6, 7, 7], [0, 1, 2, 3, 4, 5, 6, 7], [0, 0, 2, 2, 4, 4, 6, 6]])
    got = val.resampled_values(C, resample_counts(idx, 8), resample_counts(idx, 8))
    assert np.isfinite(got).all()
    for b in range(len(idx)):
        np.testing.assert_allclose(got[:, b], val.game(idx[b], idx[b])(C), atol=1e-12)


@pytest.mark.parametrize("gap", [900.0, 738.0])  # underflow to 0; subnormal weights
def test_resampled_correction_weights_are_those_of_the_resample_alone(gap):
    """Weights exponentiated once for all cases (shifted by the largest) and then weighted
    by the draws must equal those computed on the drawn cases alone, also for a resample
    missing the heaviest case, whose weights fall to zero or into the imprecise subnormal
    range."""
    from shiftattr.weighting import cap_weights

    x = np.arange(8.0)
    nr = NestedRegressions(
        ["X", "Y"],
        [x[:, None]] * 2,
        [x[:, None]] * 2,
        x,
        x,
        np.arange(8) % 2,
        np.arange(8) % 2,
        regressors=DummyRegressor(),
    )
    lr = np.array([0.0] + [-gap - 0.5 * i for i in range(7)])
    val = RobustValue(nr, ["X", "Y"], {"X": lr}, {"X": np.zeros(8)})
    idx = np.array([[1, 2, 3, 4, 5, 6, 7, 7], [0, 1, 2, 3, 4, 5, 6, 7]])
    drawn = DrawnWeights(
        val._correction_log_weights(1, ["t", "s"]), resample_counts(idx, 8), np.sqrt(8)
    )
    w = np.column_stack([drawn.mean(case) for case in np.eye(8)])  # each case's share
    for b, rows in enumerate(idx):
        own = np.exp(lr[rows] - lr[rows].max())
        cap_weights(own, np.sqrt(len(rows)))
        per_case = np.zeros(8)
        np.add.at(per_case, rows, own / own.sum())  # a case drawn twice weighs twice
        np.testing.assert_allclose(w[b], per_case, rtol=1e-12)


# -- both samples: every term over the source and the target cases together ----------------
def _both(value, both_samples, log_ratio_source=None, log_ratio_target=None):
    """``value``'s regressions and ratios, its terms over both samples at ``both_samples``."""
    return RobustValue(
        value.regressions,
        MECHS,
        value.log_ratio_source if log_ratio_source is None else log_ratio_source,
        value.log_ratio_target if log_ratio_target is None else log_ratio_target,
        both_samples=both_samples,
    )


def test_both_samples_is_consistent_with_right_ratios_and_wrong_regressions():
    # constant regressions: every term is a balance-heuristic weighted mean, and with the
    # true ratios the sum telescopes to M(P_I) as for "mis"
    value, _ = _robust_value(0, DummyRegressor(), oracle_ratios=True)
    both = _both(value, True)
    assert both.both_levels == MECHS
    np.testing.assert_allclose(_shapley(both), _truth(), atol=ATOL)
    np.testing.assert_allclose(_coalition_errors(both), 0.0, atol=ATOL_COALITION)


def test_a_level_over_both_samples_needs_its_own_ratio_even_with_right_regressions():
    # right regressions, X's ratio wrong (zero) and the others exact: taken over its own
    # environment's cases, as by default, a level's term needs no ratio of its own
    # level; over both samples the other environment's cases enter with X's ratio, so
    # X's term is biased, while a level whose ratio is right (Z) stays consistent
    value, _ = _robust_value(1, default_regressors()["quadratic-ridge"], oracle_ratios=True)
    lr_s = {**value.log_ratio_source, "X": np.zeros(N_LARGE)}
    lr_t = {**value.log_ratio_target, "X": np.zeros(N_LARGE)}
    err = {
        str(b): np.abs(_shapley(_both(value, b, lr_s, lr_t)) - _truth())
        for b in (False, ["Z"], ["X"])
    }
    assert err["False"].max() < ATOL and err["['Z']"].max() < ATOL, err
    x = MECHS.index("X")
    assert err["['X']"][x] > 0.02 and err["['X']"][x] > 10 * err["False"][x], err


def test_both_samples_with_wrong_ratios_shrinks_towards_the_pooled_mean():
    # negative control: with all ratios zero the weights no longer tell the environments
    # apart, and the values are far off however right the regressions
    value, _ = _robust_value(1, default_regressors()["quadratic-ridge"], oracle_ratios=False)
    np.testing.assert_allclose(_shapley(value), _truth(), atol=ATOL)  # own cases: fine
    err = np.abs(_shapley(_both(value, True)) - _truth())
    assert err.max() > 4 * ATOL, err


def test_both_samples_resampled_values_equal_each_resample_and_own_samples_undoes_it():
    value, _ = _robust_value(5, default_regressors()["ridge"], True, n=400)
    both = _both(value, True)
    rows = np.array([[m in c for m in MECHS] for c in all_coalitions(MECHS)])
    boot = np.random.default_rng(1).integers(0, 400, (3, 400))
    got = both.resampled_values(rows, resample_counts(boot, 400), resample_counts(boot[::-1], 400))
    for b in range(3):
        np.testing.assert_allclose(got[:, b], both.game(boot[b], boot[2 - b])(rows), atol=1e-12)
    assert not np.allclose(both.game()(rows), value.game()(rows))
    # own_samples: the default estimate from the same fitted pieces, nothing refitted
    n_fits = len(value.regressions.fits)
    own = both.own_samples()
    assert own.both_levels == () and both.both_levels == MECHS
    np.testing.assert_allclose(own.game()(rows), value.game()(rows), atol=1e-12)
    assert len(value.regressions.fits) == n_fits


def test_both_samples_on_some_levels_leaves_the_others_on_their_own_cases():
    # only Z over both samples: the first term changes, every correction (later levels,
    # each over its own environment's cases) is the default one to rounding
    value, _ = _robust_value(7, default_regressors()["ridge"], True, n=400)
    first = _both(value, ["Z"])
    for coalition in all_coalitions(MECHS):
        own, mixed = value.estimate(frozenset(coalition)), first.estimate(frozenset(coalition))
        own_corrections = own["value"] - own["regression"]
        assert mixed["value"] - mixed["regression"] == pytest.approx(own_corrections, abs=1e-12)
    assert first.estimate(frozenset(MECHS))["regression"] != pytest.approx(
        value.estimate(frozenset(MECHS))["regression"], abs=1e-6
    )
    # and the first term's weights count in the reported ESS, as the corrections' do
    assert (
        first.estimate(frozenset())["min_ess_fraction"]
        < 1.0
        == value.estimate(frozenset())["min_ess_fraction"]
    )


def test_both_samples_refuses_what_it_cannot_use():
    value, _ = _robust_value(9, default_regressors()["ridge"], True, n=200)
    with pytest.raises(ValueError, match=r"names \['W'\], which are not levels"):
        _both(value, ["W"])
    with pytest.raises(
        ValueError, match=r"up to 'Y' at both environments' cases; missing: \['X', 'Y'\]"
    ):
        _both(value, ["Y"], {"Z": np.zeros(200)}, {"Z": np.zeros(200)})
    no_target = NestedRegressions(
        MECHS, *[[np.zeros((200, 1))] * 3] * 2, np.zeros(200), None,
        np.arange(200) % 2, np.arange(200) % 2,
    )  # fmt: skip
    with pytest.raises(ValueError, match="metric at the target cases"):
        RobustValue(no_target, MECHS, {}, {}, both_samples=["Z"])
    assert _both(value, False).both_levels == () and _both(value, []).both_levels == ()


def test_game_takes_one_resample_and_points_many_to_resampled_values():
    value, _ = _robust_value(0, default_regressors()["ridge"], True, n=60)
    idx = np.random.default_rng(0).integers(0, 60, (2, 60))
    with pytest.raises(ValueError, match="resampled_values"):
        value.game(idx, idx)
