"""Tests of shiftattr.bootstrap: the fixed and the refit bootstrap replicates."""

import numpy as np
import pytest

import shiftattr as sa
from shiftattr.bootstrap import Cases, fixed_bootstrap, refit_bootstrap, solve_with_twin, twin_of
from shiftattr.value.build import FittedValue, fit_value


def test_the_per_replicate_bootstrap_solves_no_twin_when_none_is_asked_for():
    """The route of every solver but ExactShapley: with twins=False (the cross-check's
    replicates under the refit bootstrap) it solves one game per replicate, not two."""
    solves = []

    class Counting(sa.shapley.ExactShapley):
        def solve(self, game):
            solves.append(1)
            return super().solve(game)

    rng = np.random.default_rng(0)
    L, m = rng.normal(size=(2, 50)), rng.random(50)
    check = FittedValue("iw", ("A", "B"), m, L)
    fitted = FittedValue("iw", ("A", "B"), m, L, check=check)
    idx = rng.integers(0, 50, size=(4, 50))
    values, _, twin = fixed_bootstrap([fitted], Counting(), idx, idx, False, twins=False)
    assert twin is None and values.shape == (4, 2) and len(solves) == 4
    _, _, twin = fixed_bootstrap([fitted], Counting(), idx, idx, False)
    assert twin.shape == (4, 2) and len(solves) == 4 + 8


def _iw_fit(n=120, seed=0):
    scm = sa.datasets.LinearGaussianSCM.example()
    s = scm.sample(n, "source", random_state=seed)
    t = scm.sample(n, "target", random_state=seed + 1)
    kw = dict(estimator="iw", graph=scm.graph, mechanisms=scm.graph.mechanisms, n_folds=3)
    return scm, s, t, kw


def test_refit_replicates_are_the_fits_of_the_resamples_in_any_number_of_processes():
    """Each refit replicate is fit_value on its resample with its seed, solved as one
    point estimate; the processes do not change it."""
    scm, s, t, kw = _iw_fit()
    m = scm.metric(s)
    idx = np.random.default_rng(1).integers(0, len(s), size=(3, len(s)))
    seeds = np.array([11, 12, 13])
    solver = sa.shapley.ExactShapley()
    rep = refit_bootstrap(
        {**kw, "progress": False}, solver, Cases(s, t, m), idx, idx, seeds, 1, False
    )
    for b in range(3):
        fitted = fit_value(
            source=s.subset(idx[b]),
            target=t.subset(idx[b]),
            metric=m[idx[b]],
            metric_target=None,
            source_groups=idx[b],
            target_groups=idx[b],
            random_state=int(seeds[b]),
            progress=False,
            **kw,
        )
        sv, target, _ = solve_with_twin(fitted, solver, None, None)
        np.testing.assert_allclose(rep.values[b], sv.values, atol=1e-12)
        assert rep.target[b] == target
    two = refit_bootstrap(
        {**kw, "progress": False}, solver, Cases(s, t, m), idx, idx, seeds, 2, False
    )
    np.testing.assert_allclose(two.values, rep.values, atol=1e-12)
    assert rep.twin is None and two.twin is None


def test_refit_replicates_carry_the_twin_of_a_weighting_estimator():
    """``"mis"`` is compared with importance weighting on the same ratios: every refit
    replicate solves both, and the twin is ``"iw"`` of the replicate's own fit."""
    scm, s, t, kw = _iw_fit()
    kw["estimator"] = "mis"
    m, mt = scm.metric(s), scm.metric(t)
    idx = np.random.default_rng(2).integers(0, len(s), size=(2, len(s)))
    seeds = np.array([5, 6])
    solver = sa.shapley.ExactShapley()
    rep = refit_bootstrap(
        {**kw, "progress": False}, solver, Cases(s, t, m, mt), idx, idx, seeds, 1, False
    )
    assert rep.twin.shape == rep.values.shape == (2, 3)
    fitted = fit_value(
        source=s.subset(idx[1]),
        target=t.subset(idx[1]),
        metric=m[idx[1]],
        metric_target=mt[idx[1]],
        source_groups=idx[1],
        target_groups=idx[1],
        random_state=6,
        progress=False,
        **kw,
    )
    iw = solver.solve(twin_of(fitted).game()).values
    np.testing.assert_allclose(rep.twin[1], iw, atol=1e-12)
    assert not np.allclose(rep.twin, rep.values)  # the twin is another estimate


def test_a_generative_fit_has_no_resampled_game_and_says_to_refit():
    """The generative estimator simulates new cases: the fixed bootstrap has nothing to
    resample, on one resample or on many."""
    from shiftattr.value.build import FittedValue
    from shiftattr.weighting import resample_counts

    fv = FittedValue("generative", ("A",), np.zeros(3), np.zeros((1, 3)), generative=object())
    draws = resample_counts(np.array([[0, 1, 1]]), 3)
    with pytest.raises(ValueError, match="bootstrap='refit'"):
        fv.resampled_values(np.array([[True]]), draws, draws)
    with pytest.raises(ValueError, match="bootstrap='refit'"):
        fv.game(np.array([0, 1, 1]))


def test_auto_bootstrap_holds_networks_fixed_and_refits_the_rest():
    # 200 refits of every fold's CNN took hours with the Python defaults; the command
    # line already held CNN ratios fixed
    from shiftattr.datasets import LinearGaussianSCM

    class NetworkLike(sa.ratios.ClassifierRatio):
        trains_network = True

    scm = LinearGaussianSCM.example()
    src, tgt = scm.sample(80, "source", random_state=0), scm.sample(80, "target", random_state=1)
    kw = dict(n_bootstrap=2, n_folds=2, progress=False, random_state=0)
    settings = [
        sa.attribute(scm.graph, src, tgt, scm.metric(src), estimators=est, **kw).settings
        for est in (None, {"X": NetworkLike()})
    ]
    assert [s["bootstrap"] for s in settings] == ["refit", "fixed"]
