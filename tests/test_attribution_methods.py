"""attribute(method=...): the regression and multiply-robust value estimators end to end."""

import warnings

import numpy as np
import pytest

import shiftattr as sa
from fast_estimators import fast_settings
from shiftattr.datasets import LinearGaussianSCM
from shiftattr.results import ShiftAttrWarning

MECHS = ("Z", "X", "Y")


def _fast():
    return fast_settings(MECHS)


def _run(scm, n, seed, **kw):
    src = scm.sample(n, "source", random_state=seed)
    tgt = scm.sample(n, "target", random_state=seed + 1000)
    kw.setdefault("n_bootstrap", 0)
    kw.setdefault("target_metric", scm.metric(tgt))
    for key, value in _fast().items():
        kw.setdefault(key, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShiftAttrWarning)
        return sa.attribute(
            scm.graph, src, tgt, metric=scm.metric(src), progress=False, random_state=seed, **kw
        )


def _errors(res, truth):
    return np.array([res.values[m] - truth.values[m] for m in MECHS])


def test_mr_beats_importance_weighting_at_equal_n():
    # squared error: a loss with a heavy right tail, where weighting suffers most.
    # Measured over 40 seeds at N = 500 (same ratio estimator for both): pooled RMSE
    # of the Shapley values 0.015 (MR) vs 0.10 (IW); in groups of 6 consecutive seeds
    # the ratio of mean per-seed RMSEs was at most 0.54 (0.72 in groups of 4). Here
    # seeds 0..5 must give MR at most 0.75 of IW's error.
    scm = LinearGaussianSCM.example(metric="squared_error")
    truth = scm.true_attribution()
    rmse = {"iw": [], "mr": []}
    for seed in range(6):
        for method in rmse:
            res = _run(scm, 500, seed, method=method)
            rmse[method].append(np.sqrt(np.mean(_errors(res, truth) ** 2)))
    iw, mr = np.mean(rmse["iw"]), np.mean(rmse["mr"])
    assert mr < 0.75 * iw, (rmse, mr / iw)


def test_regression_and_mr_find_the_truth_and_the_dominant_mechanism():
    # hit rate (bounded). Measured over seeds 10..19 at N = 4000: Shapley errors have
    # SD 0.003 (Z, X) and 0.0075 (Y) for both methods, largest |error| 0.0135; 0.03 is
    # 4 SD of Y's and fails for a value off by a quarter of Y's (0.116) or all of X's
    scm = LinearGaussianSCM.example(metric="hit")
    truth = scm.true_attribution()
    for method in ("regression", "mr"):
        res = _run(scm, 4000, 11, method=method)
        assert res.settings["method"] == method
        assert np.abs(_errors(res, truth)).max() < 0.03, (method, res.values, truth.values)
        assert res.dominant == truth.dominant == "Y"


def test_mr_keeps_unattributed_mechanisms_at_the_source():
    # players X and Y only: Z (shifted too) stays at the source in every coalition, so
    # the corrections need Z's ratio although Z gets no value. Truth: X 0.011, Y 0.098
    # (0.116 with Z a player). Measured over seeds 10..19 at N = 4000: SD 0.003 (X)
    # and 0.006 (Y), largest |error| 0.0095; 0.025 is 4 SD of Y's.
    scm = LinearGaussianSCM.example(metric="hit")
    truth = scm.true_attribution(["X", "Y"])
    res = _run(scm, 4000, 12, method="mr", mechanisms=["X", "Y"])
    assert set(res.values) == {"X", "Y"}
    for m in ("X", "Y"):
        assert res.values[m] == pytest.approx(truth.values[m], abs=0.025), (res.values, truth)


@pytest.mark.parametrize("method", ["regression", "mr"])
def test_values_sum_to_the_total_and_the_empty_coalition_is_zero(method):
    scm = LinearGaussianSCM.example(metric="hit")
    res = _run(scm, 400, 1, method=method)
    assert sum(res.values.values()) == pytest.approx(res.total, abs=1e-10)
    assert res.source_metric - res.total == pytest.approx(res.estimated_target_metric, abs=1e-12)
    if method == "mr":
        # all mechanisms from the target: the corrections telescope to the measured
        # target mean exactly (so the closure error of "mr" is zero by construction)
        assert res.estimated_target_metric == pytest.approx(res.measured_target_metric, abs=1e-12)
        # and it is not shown as a check that passed
        assert res.diagnostics["overall"]["closure_by_construction"] is True
        assert "0 by construction for mr with every node attributed: not a check" in (res.summary())
        part = _run(scm, 400, 1, method=method, mechanisms=["X", "Y"])  # Z stays at the source
        assert "closure_by_construction" not in part.diagnostics["overall"]
        assert "closure error +" in part.summary() or "closure error -" in part.summary()
    else:  # the plug-in mean of the cross-fitted regressions: close, not identical
        gap = abs(res.estimated_target_metric - res.measured_target_metric)
        assert 1e-9 < gap < 0.05


@pytest.mark.parametrize("bootstrap, n_bootstrap", [("fixed", 30), ("refit", 6)])
def test_bootstraps_run_for_mr_and_bracket_the_point_estimate(bootstrap, n_bootstrap):
    scm = LinearGaussianSCM.example(metric="hit")
    res = _run(scm, 300, 2, method="mr", n_bootstrap=n_bootstrap, bootstrap=bootstrap, n_folds=3)
    assert res.bootstrap_values.shape == (n_bootstrap, 3)
    assert np.all(np.isfinite(res.bootstrap_values))
    for m in MECHS:
        lo, hi = res.ci[m]
        assert lo < hi and res.stderr[m] > 0
        # a percentile interval of a smooth statistic holds its point estimate (the
        # largest gap seen in 7 runs at N = 300-400 was well inside)
        assert lo - 0.25 * (hi - lo) <= res.values[m] <= hi + 0.25 * (hi - lo), (m, res.ci)
    # replicates are not copies of the point estimate
    assert np.ptp(res.bootstrap_values, axis=0).min() > 0


def test_the_fixed_bootstrap_of_mr_is_reproducible():
    scm = LinearGaussianSCM.example(metric="hit")
    a = _run(scm, 200, 3, method="mr", n_bootstrap=10, bootstrap="fixed", n_folds=3)
    b = _run(scm, 200, 3, method="mr", n_bootstrap=10, bootstrap="fixed", n_folds=3)
    np.testing.assert_array_equal(a.bootstrap_values, b.bootstrap_values)
    assert a.values == b.values


def test_regression_methods_need_the_metric_at_the_target():
    scm = LinearGaussianSCM.example()
    src = scm.sample(100, "source", random_state=0)
    tgt = scm.sample(100, "target", random_state=1)
    for method in ("regression", "mr"):
        with pytest.raises(ValueError, match=rf"method='{method}'.*target_metric"):
            sa.attribute(scm.graph, src, tgt, metric=scm.metric(src), method=method, progress=False)
    # a callable metric is scored on the target cases itself
    res = sa.attribute(
        scm.graph,
        src,
        tgt,
        metric=scm.metric,
        method="mr",
        n_bootstrap=0,
        n_folds=3,
        progress=False,
        random_state=0,
        **_fast(),
    )
    assert res.measured_target_metric == pytest.approx(scm.metric(tgt).mean())


def test_unknown_method_is_refused():
    scm = LinearGaussianSCM.example()
    src = scm.sample(50, "source", random_state=0)
    tgt = scm.sample(50, "target", random_state=1)
    with pytest.raises(
        ValueError,
        match=r"method must be one of \['iw', 'mis', 'regression', 'mr', 'generative'\].*'dr'",
    ):
        sa.attribute(scm.graph, src, tgt, metric=scm.metric(src), method="dr", progress=False)


def test_regression_methods_need_every_graph_node():
    scm = LinearGaussianSCM.example()
    src = scm.sample(50, "source", random_state=0)
    tgt = scm.sample(50, "target", random_state=1)
    # a graph with an extra root W that neither environment holds: weighting X needs
    # only X and its parent Z, regressing along the order needs every node
    graph = sa.CausalGraph({"W": [], "Z": [], "X": ["Z"], "Y": ["X", "Z"]})
    kw = dict(metric=scm.metric, mechanisms=["X"], n_bootstrap=0, n_folds=3, progress=False)
    sa.attribute(graph, src, tgt, method="iw", random_state=0, **kw)
    with pytest.raises(ValueError, match=r"\('W', 'source'\).*method='iw'"):
        sa.attribute(graph, src, tgt, method="mr", **kw)


def test_estimator_diagnostics():
    scm = LinearGaussianSCM.example(metric="hit")
    iw = _run(scm, 300, 4, method="iw", n_folds=3)
    assert iw.diagnostics["estimator"] == {"name": "iw", "paired": []}

    reg = _run(scm, 300, 4, method="regression", n_folds=3)
    d = reg.diagnostics["estimator"]
    assert d["name"] == "regression" and "correction_all" not in d
    # levels 1 and 2 for every downstream assignment the 8 coalitions need
    assert len(d["regressions"]) == 6
    assert {f["level"] for f in d["regressions"]} == {"X", "Y"}
    assert {f["fitted_on"] for f in d["regressions"]} == {"source", "target"}
    for f in d["regressions"]:
        assert (
            isinstance(f["r2"], float)
            and f["r2"] <= 1.0
            and f["regressor"] == "StandardisedRidgeCV"
        )
    assert d["min_r2"] == min(f["r2"] for f in d["regressions"])

    mr = _run(scm, 300, 4, method="mr", n_folds=3)
    d = mr.diagnostics["estimator"]
    assert d["name"] == "mr" and len(d["regressions"]) == 6
    # the correction at the full coalition: MR minus the plain regression estimate
    assert np.isfinite(d["correction_all"]) and d["correction_all"] != 0.0
    # over all coalitions some correction reweights (ESS below N) and corrects
    assert 0.0 < d["min_correction_ess_fraction"] < 1.0
    assert d["max_abs_correction"] >= abs(d["correction_all"])
    # the weighting diagnostics are still there for every mechanism
    assert set(mr.diagnostics["mechanisms"]) == set(MECHS)
    assert mr.settings["regressor"] == "StandardisedRidgeCV"


def test_features_feed_the_regressions():
    # a featurizer that hides Z: the level-X regressions (on the features of Z) can
    # then explain nothing, while with Z's raw values they explain most of it
    scm = LinearGaussianSCM.example(metric="squared_error")
    calls = []

    def blind(env):
        calls.append(env.name)
        return np.zeros((len(env), 2))

    def level_x_r2(**kw):
        res = _run(scm, 300, 5, method="regression", n_folds=3, **kw)
        return res, [
            f["r2"] for f in res.diagnostics["estimator"]["regressions"] if f["level"] == "X"
        ]

    res, hidden = level_x_r2(features={"Z": blind})
    assert sorted(calls) == ["source", "target"]  # once per environment, not per coalition
    assert res.settings["features"] == ["Z"]
    _, raw = level_x_r2()
    assert max(hidden) <= 0.05 and max(raw) > 0.8, (hidden, raw)


def test_regression_with_fixed_bootstrap_warns_that_its_interval_is_too_narrow():
    scm = LinearGaussianSCM.example()
    res = _run(scm, 300, 0, method="regression", n_folds=3, n_bootstrap=10, bootstrap="fixed")
    assert "narrow_interval" in [w["code"] for w in res.warnings]
    assert res.diagnostics["overall"]["warning_counts"]["narrow_interval"] == 1
    mr = _run(scm, 300, 0, method="mr", n_folds=3, n_bootstrap=10, bootstrap="fixed")
    assert "narrow_interval" not in [w["code"] for w in mr.warnings]


def test_summary_names_the_value_estimator_and_its_diagnostics():
    scm = LinearGaussianSCM.example()
    mr = _run(scm, 300, 0, method="mr", n_folds=3)
    line = next(x for x in mr.summary().splitlines() if x.startswith("value estimator"))
    assert "multiply robust" in line and "regression R²" in line
    assert "iw from the same ratios: Z" in line
    # the line survives the JSON round trip
    assert line in sa.Attribution.from_json(mr.to_json()).summary()
    iw = _run(scm, 300, 0, method="iw", n_folds=3)
    assert "value estimator: importance weighting\n" in iw.summary()


def test_pooled_regressions_are_reported_and_refused_without_regressions():
    scm = LinearGaussianSCM.example()
    own = _run(scm, 300, 0, method="mr")
    pooled = _run(scm, 300, 0, method="mr", pooled_regressions=True)
    fits = pooled.diagnostics["estimator"]["regressions"]
    assert fits and all(f["pooled"] for f in fits)
    assert not any(f["pooled"] for f in own.diagnostics["estimator"]["regressions"])
    assert pooled.settings["pooled_regressions"] and not own.settings["pooled_regressions"]
    assert pooled.values != pytest.approx(own.values, abs=1e-6)
    # still an estimate of the same thing: the values sum to the same measured drop
    assert sum(pooled.values.values()) == pytest.approx(sum(own.values.values()), abs=1e-9)
    with pytest.raises(ValueError, match=r"pooled_regressions=True .* method='iw' fits none"):
        _run(scm, 100, 0, method="iw", pooled_regressions=True)


def test_both_samples_is_reported_and_bounded_by_its_distance_to_own_samples_mr():
    scm = LinearGaussianSCM.example()
    run = dict(method="mr", n_bootstrap=20, bootstrap="fixed", interval="bias_aware")
    own = _run(scm, 300, 0, **run)
    both = _run(scm, 300, 0, both_samples=True, **run)
    est = both.diagnostics["estimator"]
    assert both.settings["both_samples"] == list(MECHS) == est["both_samples"]
    assert (
        own.settings["both_samples"] == []
        and "own_samples_values" not in own.diagnostics["estimator"]
    )
    # the own-samples estimate beside it is the default run's, from the same fitted pieces
    assert est["own_samples_values"] == pytest.approx(own.values, abs=1e-12)
    assert both.values != pytest.approx(own.values, abs=1e-6)
    for m in MECHS:  # the bias bound covers the distance to both twins
        assert est["bias_bound"][m] >= abs(both.values[m] - own.values[m]) - 1e-12
        assert est["bias_bound"][m] >= abs(both.values[m] - est["iw_values"][m]) - 1e-12
        assert both.ci[m] == pytest.approx(est["bias_aware_ci"][m])
    # only some levels (the rest keep their own cases: test_value_robust)
    part = _run(scm, 300, 0, method="mr", both_samples=["Z"])
    assert part.settings["both_samples"] == ["Z"]
    assert part.values != pytest.approx(both.values, abs=1e-6)
    assert part.values != pytest.approx(own.values, abs=1e-6)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"method": "iw", "both_samples": True}, "method='iw' has none to change"),
        ({"method": "mis", "both_samples": ["X"]}, "'mis' weights both samples already"),
        ({"method": "mr", "both_samples": ["W"]}, r"names \['W'\], which are not nodes"),
        ({"method": "mr", "both_samples": "X"}, "True, False or a list of node names"),
    ],
)
def test_both_samples_is_refused_where_it_cannot_run(kw, match):
    with pytest.raises(ValueError, match=match):
        _run(LinearGaussianSCM.example(), 100, 0, **kw)


class _LoopExact(sa.shapley.ExactShapley):
    """ExactShapley under another type: attribute() then solves one game per replicate."""


@pytest.mark.parametrize(
    "kw",
    [
        {"method": "iw"},
        {"method": "iw", "truncate": 3.0},
        {"method": "regression"},
        {"method": "mr"},
        {"method": "mr", "n_repeats": 2, "correction_cap": 2.0},
        {"method": "mr", "both_samples": True},
    ],
    ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()),
)
def test_the_batched_fixed_bootstrap_equals_one_game_per_replicate(kw):
    """With the exact solver all replicates are solved from one table per chunk; with any
    other solver one game per replicate. Both must give the same replicates."""
    scm = LinearGaussianSCM.example(metric="hit")
    run = dict(n_bootstrap=12, bootstrap="fixed", n_folds=3, **kw)
    batched = _run(scm, 200, 5, **run)
    looped = _run(scm, 200, 5, solver=_LoopExact(), **run)
    np.testing.assert_allclose(batched.bootstrap_values, looped.bootstrap_values, atol=1e-12)
    for m in MECHS:
        assert batched.ci[m] == pytest.approx(looped.ci[m], abs=1e-12)
    assert batched.closure_ci == pytest.approx(looped.closure_ci, abs=1e-12)
    est_b, est_l = batched.diagnostics["estimator"], looped.diagnostics["estimator"]
    if kw["method"] != "iw":  # the IW twin's replicates, through the difference's interval
        for m in MECHS:
            assert est_b["difference_ci"][m] == pytest.approx(est_l["difference_ci"][m], abs=1e-12)


def test_the_batched_fixed_bootstrap_works_in_chunks(monkeypatch):
    import shiftattr.bootstrap as bootstrap_module

    scm = LinearGaussianSCM.example(metric="hit")
    run = dict(method="mr", n_bootstrap=9, bootstrap="fixed", n_folds=3)
    whole = _run(scm, 150, 6, **run)
    monkeypatch.setattr(bootstrap_module, "_BOOTSTRAP_CHUNK_FLOATS", 150 * 4)  # 4 per chunk
    chunked = _run(scm, 150, 6, **run)
    np.testing.assert_allclose(whole.bootstrap_values, chunked.bootstrap_values, atol=1e-13)


def test_the_cross_check_is_the_regression_estimate_and_catches_a_flat_ratio():
    """iw with a ratio that sees no shift in Y (log-ratio 0) misses Y's effect; its
    cross-check, the regression estimate, does not use the ratios and disagrees."""
    scm = LinearGaussianSCM.example(metric="hit")
    flat = {"Y": lambda env: np.zeros(len(env))}
    run = dict(n_bootstrap=60, bootstrap="fixed", n_folds=3, known_ratios=flat)
    checked = _run(scm, 1000, 7, cross_check=True, **run)
    plain = _run(scm, 1000, 7, method="iw", **run)
    regression = _run(scm, 1000, 7, method="regression", n_folds=3)
    est = checked.diagnostics["estimator"]
    assert est["check_values"] == pytest.approx(regression.values, abs=1e-12)
    assert checked.values == plain.values  # the check changes no value
    assert abs(checked.values["Y"]) < 0.01 < abs(est["check_values"]["Y"])
    flagged = {w["mechanism"] for w in checked.warnings if w["code"] == "methods_disagree"}
    assert "Y" in flagged
    assert not any(w["code"] == "methods_disagree" for w in plain.warnings)
    lo, hi = est["difference_ci"]["Y"]
    assert not lo <= 0 <= hi


def test_the_cross_check_with_the_refit_bootstrap_keeps_its_regressions():
    scm = LinearGaussianSCM.example(metric="hit")
    res = _run(scm, 200, 8, cross_check=True, n_bootstrap=4, bootstrap="refit", n_folds=3)
    est = res.diagnostics["estimator"]
    assert set(est["difference_ci"]) == set(MECHS)
    assert est["check"]["name"] == "regression" and res.settings["cross_check"] is True


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"method": "mr", "cross_check": True}, "cross_check=True is for method='iw'"),
        ({"cross_check": True, "target_metric": None}, "cross_check=True regresses"),
        ({"method": "iw", "pooled_regressions": True}, "fits them unpooled, by design"),
    ],
)
def test_the_cross_check_is_refused_where_it_cannot_run(kw, match):
    scm = LinearGaussianSCM.example(metric="hit")
    with pytest.raises(ValueError, match=match):
        _run(scm, 100, 0, **kw)


def test_methods_disagree_says_when_the_point_difference_lies_outside_its_interval():
    """The bootstrap interval of the difference can exclude 0 while the point difference
    itself is near 0 (replicates biased away from the point): the warning must not read
    as a measured gap then."""
    from types import SimpleNamespace

    from shiftattr.attribution import _compare_with_twin

    mechs = ("X", "Y")
    values = {"X": 0.0013, "Y": 0.05}
    twin = np.array([0.0008, 0.01])  # point differences +0.0005 and +0.04
    rng = np.random.default_rng(0)
    boot_twin = rng.normal(0.0, 0.001, size=(200, 2))
    # replicates' differences: X around +0.02 (away from its point), Y around +0.04
    boot_values = boot_twin + np.array([0.02, 0.04]) + rng.normal(0, 0.004, size=(200, 2))
    details = {}
    warns = _compare_with_twin(
        details,
        SimpleNamespace(estimator="mis"),
        mechs,
        values,
        twin,
        boot_values,
        boot_twin,
        0.025,
    )
    by = {w["mechanism"]: w["message"] for w in warns}
    assert set(by) == {"X", "Y"}  # both intervals exclude 0
    assert "point difference (+0.0005) lies outside" in by["X"]
    assert "lies outside" not in by["Y"]  # +0.04 is inside its own interval
    assert set(details["difference_ci"]) == {"X", "Y"}


def test_mr_with_many_mechanisms_warns_of_its_cost_before_fitting():
    """Its regressions double with every mechanism (354 s at 9 mechanisms, N = 400):
    the cost was documented but not said before the fitting started."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    names = [f"V{i}" for i in range(9)]
    graph = sa.CausalGraph({n: [] for n in names})
    src = sa.Environment({n: rng.normal(size=60) for n in names}, name="s")
    tgt = sa.Environment({n: rng.normal(0.3, 1, size=60) for n in names}, name="t")
    fast = {n: sa.ratios.ClassifierRatio(sa.ratios.StandardisedLogisticRegression()) for n in names}

    def run(mechanisms):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = sa.attribute(
                graph, src, tgt, lambda env: env["V0"] + env["V1"], method="mr",
                mechanisms=mechanisms, regressor=Ridge(), estimators=fast, n_folds=2,
                n_bootstrap=0, progress=False, random_state=0,
            )  # fmt: skip
        return res, [str(w.message) for w in caught]

    res, said = run(names)
    assert said[0].startswith("method='mr' with 9 mechanisms fits up to 1022 nested regressions")
    assert res.diagnostics["overall"]["warning_counts"]["costly_regressions"] == 1
    assert sum("1022 nested" in m for m in said) == 1  # said once, not again at the end
    res, said = run(names[:8])
    assert "costly_regressions" not in res.diagnostics["overall"]["warning_counts"]


def test_a_classifier_given_as_a_ratio_estimator_is_named_with_the_wrapper_to_use():
    """It failed in the first fit with "float() argument must be ... not 'NodeFeatures'"."""
    scm = LinearGaussianSCM.example()
    src, tgt = scm.sample(60, "source", random_state=0), scm.sample(60, "target", random_state=1)
    bare = {"X": sa.ratios.StandardisedLogisticRegression()}
    with pytest.raises(TypeError, match=r"estimators\['X'\] is a StandardisedLogisticRegression, "
                       r"not a density-ratio estimator.*ClassifierRatio\(Standardised"):  # fmt: skip
        sa.attribute(scm.graph, src, tgt, scm.metric(src), estimators=bare, progress=False)
