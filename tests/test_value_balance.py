"""Balance-heuristic importance weighting of both environments (``method="mis"``)."""

import numpy as np
import pytest

import shiftattr as sa
from shiftattr.attribution import iw_game
from shiftattr.config import AttributionConfig
from shiftattr.graph import CausalGraph
from shiftattr.shapley import ExactShapley
from shiftattr.value import BalancedValue
from shiftattr.weighting import resample_counts


def _gaussian_pair(seed, n=300, shift=1.5):
    """X ~ N(0, 1) in the source, N(shift, 1) in the target; exact log-ratios."""
    rng = np.random.default_rng(seed)
    xs, xt = rng.normal(0, 1, n), rng.normal(shift, 1, n)

    def log_ratio(x):
        return shift * x - shift**2 / 2

    return xs, xt, log_ratio


def test_exact_ratios_err_less_than_source_weighting():
    """Under a strong shift the target's own cases carry the estimate: with exact ratios
    the error of the attributed drop is far below plain importance weighting's."""
    shift = 2.0
    truth = -(1 + shift**2) + 1  # E_s[X^2] - E_t[X^2]
    err_iw, err_mis = [], []
    for seed in range(20):
        xs, xt, lr = _gaussian_pair(seed, shift=shift)
        ms, mt = xs**2, xt**2
        bal = BalancedValue(["X"], ["X"], lr(xs)[None], lr(xt)[None], ms, mt)
        v_mis = ExactShapley().solve(bal.game()).values[0]
        v_iw = ExactShapley().solve(iw_game(["X"], lr(xs)[None], ms)).values[0]
        err_mis.append(abs(v_mis - truth))
        err_iw.append(abs(v_iw - truth))
    assert np.mean(err_mis) < 0.35 * np.mean(err_iw)
    assert np.mean(err_mis) < 0.2


def test_unequal_sample_sizes_are_weighted_by_their_counts():
    """With exact ratios and 200 source against 2000 target cases the estimate stays
    unbiased: the mixture's density counts each environment by its number of cases
    (swapping them biased it by about -1.2 here)."""
    shift, errors = 2.0, []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        xs, xt = rng.normal(0, 1, 200), rng.normal(shift, 1, 2000)
        lr = shift * np.r_[xs, xt] - shift**2 / 2
        bal = BalancedValue(["X"], ["X"], lr[None, :200], lr[None, 200:], xs**2, xt**2)
        errors.append(ExactShapley().solve(bal.game()).values[0] - (1 - (1 + shift**2)))
    assert abs(np.mean(errors)) < 0.15


def test_unshifted_mechanism_gets_exactly_zero():
    """A mechanism whose ratio is one at every case leaves every weight unchanged."""
    xs, xt, lr = _gaussian_pair(0)
    rng = np.random.default_rng(1)
    zs, zt = rng.normal(size=len(xs)), rng.normal(size=len(xt))
    L_s = np.vstack([np.zeros(len(xs)), lr(xs)])
    L_t = np.vstack([np.zeros(len(xt)), lr(xt)])
    bal = BalancedValue(["Z", "X"], ["Z", "X"], L_s, L_t, xs + zs, xt + zt)
    sv = ExactShapley().solve(bal.game())
    assert sv.values[0] == pytest.approx(0.0, abs=1e-12)
    assert sv.values[1] == pytest.approx(sv.total, abs=1e-12)


def test_unattributed_node_enters_the_mixture_only():
    """A node that is not a player still shifts the target sample: its ratio belongs in
    the denominator, not in any coalition's numerator."""
    xs, xt, lr = _gaussian_pair(2)
    L_s, L_t = lr(xs)[None], lr(xt)[None]
    bal = BalancedValue([], ["X"], L_s, L_t, xs, xt)
    # no player: every case weighted by 1 / (n_s + n_t r), the source law
    w = bal.weights(np.zeros((1, 0), dtype=bool))[0]
    expected = 1 / (len(xs) + len(xt) * np.exp(np.r_[L_s[0], L_t[0]]))
    np.testing.assert_allclose(w, expected / expected.max())
    with pytest.raises(ValueError, match="no log-ratio row"):
        BalancedValue(["Y"], ["X"], L_s, L_t, xs, xt)


def test_resampled_values_equal_the_game_on_each_resample():
    xs, xt, lr = _gaussian_pair(3, n=50)
    rng = np.random.default_rng(4)
    zs, zt = rng.normal(0, 1, 50), rng.normal(0.5, 1, 50)
    L_s = np.vstack([0.5 * zs - 0.125, lr(xs)])
    L_t = np.vstack([0.5 * zt - 0.125, lr(xt)])
    bal = BalancedValue(["Z", "X"], ["Z", "X"], L_s, L_t, xs * zs, xt * zt)
    coalitions = np.array([[False, False], [True, False], [False, True], [True, True]])
    idx_s, idx_t = rng.integers(0, 50, (6, 50)), rng.integers(0, 50, (6, 50))
    many = bal.resampled_values(coalitions, resample_counts(idx_s, 50), resample_counts(idx_t, 50))
    for b in range(6):
        one = bal.game(idx_s[b], idx_t[b])(coalitions)
        np.testing.assert_allclose(many[:, b], one, atol=1e-12)
        # the same resample as plain data: an independent value function on its cases
        i, j = idx_s[b], idx_t[b]
        direct = BalancedValue(
            ["Z", "X"], ["Z", "X"], L_s[:, i], L_t[:, j], (xs * zs)[i], (xt * zt)[j]
        )
        np.testing.assert_allclose(many[:, b], direct.game()(coalitions), atol=1e-12)
    with pytest.raises(ValueError, match="original sizes"):
        bal.resampled_values(
            coalitions, resample_counts(idx_s[:, :10], 50), resample_counts(idx_t, 50)
        )
    with pytest.raises(ValueError, match="both idx_source and idx_target"):
        bal.game(idx_s[0], None)


def test_a_resample_without_the_heaviest_cases_stays_finite():
    """Weights are scaled by the largest over all cases; a resample that leaves out the
    cases carrying nearly all the weight is recomputed on its own largest weight."""
    # with X from the target, case 2 outweighs every other case by about e^900
    L = np.array([[-900.0, -900.0, 0.0, -900.0]])
    m = np.array([1.0, 2.0, 3.0, 4.0])
    bal = BalancedValue(["X"], ["X"], L[:, :2], L[:, 2:], m[:2], m[2:])
    idx_s, idx_t = np.array([[0, 1]]), np.array([[1, 1]])  # target case 0 (case 2) not drawn
    got = bal.resampled_values(
        np.array([[True]]), resample_counts(idx_s, 2), resample_counts(idx_t, 2)
    )
    direct = BalancedValue(["X"], ["X"], L[:, [0, 1]], L[:, [3, 3]], m[[0, 1]], m[[3, 3]])
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[:, 0], direct.game()(np.array([[True]])), atol=1e-12)


def test_attribute_mis_end_to_end():
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
        n_folds=3,
        n_bootstrap=20,
        bootstrap="fixed",
        progress=False,
        random_state=0,
    )
    assert res.settings["method"] == "mis"
    truth = scm.true_attribution().values
    assert np.mean([abs(res.values[m] - truth[m]) for m in truth]) < 0.03  # measured 0.016
    # its weight diagnostics are those of the weights it uses: both samples' cases
    assert res.diagnostics["overall"]["n_weighted"] == 800
    details = res.diagnostics["estimator"]
    assert details["name"] == "mis"
    assert 0 < details["min_weight_ess_fraction"] <= 1
    # it is compared with importance weighting, and by default its interval is the
    # bias-aware one built on that comparison (the bootstrap one kept beside it)
    assert "iw_values" in details
    assert res.settings["interval"] == "bias_aware"
    assert res.ci == details["bias_aware_ci"] and details["bootstrap_ci"] != res.ci
    total = sum(res.values.values())
    assert total == pytest.approx(res.source_metric - res.estimated_target_metric)
    for m in scm.graph.nodes:
        lo, hi = res.ci[m]
        assert lo <= res.values[m] <= hi


def test_attribute_mis_refuses_what_it_cannot_do():
    scm = sa.datasets.LinearGaussianSCM.example()
    s = scm.sample(100, "source", random_state=0)
    t = scm.sample(100, "target", random_state=1)
    kw = {"method": "mis", "n_bootstrap": 0, "n_folds": 2, "progress": False}
    with pytest.raises(ValueError, match="needs the metric at the target cases"):
        sa.attribute(scm.graph, s, t, scm.metric(s), **kw)
    with pytest.raises(ValueError, match="drop truncate"):
        sa.attribute(
            scm.graph, s, t, scm.metric(s), target_metric=scm.metric(t), truncate=5.0, **kw
        )
    graph = CausalGraph({**{n: scm.graph.parents(n) for n in scm.graph.nodes}, "W": []})
    with pytest.raises(ValueError, match=r"every\s+node of the graph in both environments"):
        sa.attribute(
            graph,
            s,
            t,
            scm.metric(s),
            target_metric=scm.metric(t),
            mechanisms=list(scm.graph.nodes),
            **kw,
        )


def test_attribute_mis_refuses_a_node_constant_per_environment():
    """Every node's ratio enters the mixture, so an unattributed node that only labels
    the environment (0 in the source, 1 in the target) is refused, as a mechanism is."""
    scm = sa.datasets.LinearGaussianSCM.example()
    s = scm.sample(100, "source", random_state=0)
    t = scm.sample(100, "target", random_state=1)
    graph = CausalGraph({**{n: scm.graph.parents(n) for n in scm.graph.nodes}, "W": []})
    s2 = sa.Environment({**{n: s[n] for n in scm.graph.nodes}, "W": np.zeros(100)}, name="s")
    t2 = sa.Environment({**{n: t[n] for n in scm.graph.nodes}, "W": np.ones(100)}, name="t")
    with pytest.raises(ValueError, match="'W' is constant"):
        sa.attribute(
            graph,
            s2,
            t2,
            scm.metric(s),
            target_metric=scm.metric(t),
            mechanisms=list(scm.graph.nodes),
            method="mis",
            n_bootstrap=0,
            n_folds=2,
            progress=False,
        )


def test_config_refuses_mis_with_paired():
    with pytest.raises(ValueError, match=r"'mis' takes neither attribution\.paired"):
        AttributionConfig(method="mis", paired=["Y"])
    assert AttributionConfig(method="mis").method == "mis"
