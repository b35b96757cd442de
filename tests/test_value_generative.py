"""The generative value estimator: mechanism samplers, their simulation, attribute(method=...).

The linear-Gaussian SCM ``Z -> X -> Y <- Z`` has linear mechanisms with Gaussian noise,
so a linear regression plus its residuals is a correctly specified sampler and the mean
(``DummyRegressor``, ignoring the parents) a misspecified one; its truth is closed form.
"""

import warnings

import numpy as np
import pytest
from sklearn.dummy import DummyRegressor

import shiftattr as sa
from shiftattr.datasets import LinearGaussianSCM
from shiftattr.environment import Environment
from shiftattr.graph import CausalGraph
from shiftattr.results import ShiftAttrWarning
from shiftattr.shapley import ExactShapley
from shiftattr.value import GenerativeValue, MechanismSampler, StandardisedRidgeCV, fit_sampler
from shiftattr.value.generative import check_tabular_nodes, is_discrete

SCM = LinearGaussianSCM.example(metric="hit")
TRUTH = SCM.true_attribution()
MECHS = TRUTH.mechanisms


def _pair(n, seed, scm=SCM):
    return (
        scm.sample(n, "source", random_state=seed),
        scm.sample(n, "target", random_state=seed + 1000),
    )


def _generative(src, tgt, scm=SCM, **kw):
    kw.setdefault("regressor", StandardisedRidgeCV())
    kw.setdefault("n_bootstrap", 0)
    kw.setdefault("n_folds", 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShiftAttrWarning)
        return sa.attribute(
            scm.graph, src, tgt, metric=scm.metric, method="generative", progress=False, **kw
        )


def _on_graph(graph, src, tgt, metric, **kw):
    """attribute(method="generative") on any graph, quick settings."""
    kw = {"n_bootstrap": 0, "n_folds": 3, "progress": False, "random_state": 0, **kw}
    return sa.attribute(graph, src, tgt, metric, method="generative", **kw)


# -- samplers --------------------------------------------------------------------------


def test_a_root_is_drawn_from_its_sorted_values_so_equal_numbers_couple_quantiles():
    a = MechanismSampler("A", (), "empirical", np.array([1.0, 2.0, 3.0, 4.0]))
    b = MechanismSampler("A", (), "empirical", np.array([10.0, 20.0, 30.0, 40.0]))
    u = np.array([0.0, 0.3, 0.6, 0.99])
    assert a.sample(np.empty((4, 0)), u).tolist() == [1.0, 2.0, 3.0, 4.0]
    assert b.sample(np.empty((4, 0)), u).tolist() == [10.0, 20.0, 30.0, 40.0]
    env = Environment({"A": np.array([3.0, 1.0, 2.0])})
    assert fit_sampler("A", (), env, discrete=False).support.tolist() == [1.0, 2.0, 3.0]


def test_an_additive_noise_sampler_recovers_the_conditional_mean_and_spread():
    rng = np.random.default_rng(0)
    a = rng.normal(size=3000)
    env = Environment({"A": a, "B": 2.0 * a + 0.5 * rng.normal(size=3000)})
    s = fit_sampler("B", ["A"], env, discrete=False, random_state=0)
    assert s.kind == "additive_noise"
    draws = s.sample(np.full((20_000, 1), 1.5), rng.random(20_000))
    assert draws.mean() == pytest.approx(3.0, abs=0.03)
    assert draws.std() == pytest.approx(0.5, rel=0.05)


def test_a_heteroscedastic_mechanism_gets_a_noise_scale_that_follows_its_parents():
    rng = np.random.default_rng(1)
    a = rng.uniform(-2, 2, size=4000)
    # a noise sd quadratic in the parent, which the quadratic ridge can follow
    env = Environment({"A": a, "B": a + (0.3 + 0.5 * a**2) * rng.normal(size=4000)})
    s = fit_sampler("B", ["A"], env, discrete=False, random_state=0)
    assert s.kind == "location_scale"
    u = rng.random(20_000)
    near = s.sample(np.zeros((20_000, 1)), u)
    far = s.sample(np.full((20_000, 1), 1.8), u)
    assert near.std() == pytest.approx(0.3, rel=0.2)
    assert far.std() == pytest.approx(1.92, rel=0.15)
    # homoscedastic data keep one scale
    env = Environment({"A": a, "B": a + rng.normal(size=4000)})
    assert fit_sampler("B", ["A"], env, discrete=False, random_state=0).kind == "additive_noise"


def test_a_discrete_node_is_drawn_from_class_probabilities():
    rng = np.random.default_rng(2)
    a = rng.normal(size=4000)
    s_values = (rng.random(4000) < 1 / (1 + np.exp(-2 * a))).astype(int)
    env = Environment({"A": a, "S": s_values})
    assert is_discrete([env["S"]]) and not is_discrete([env["A"]])
    s = fit_sampler("S", ["A"], env, discrete=True, random_state=0)
    assert s.kind == "categorical" and s.support.tolist() == [0, 1]
    draws = s.sample(np.ones((20_000, 1)), rng.random(20_000))
    assert set(np.unique(draws)) <= {0, 1}
    assert draws.mean() == pytest.approx(1 / (1 + np.exp(-2)), abs=0.04)


def test_many_distinct_integers_are_continuous():
    assert not is_discrete([np.arange(21)])
    assert is_discrete([np.arange(20), np.arange(5)])


def test_image_nodes_are_refused_with_the_alternatives():
    env = Environment({"A": np.zeros(3), "X": np.zeros((3, 4, 4))}, name="s")
    with pytest.raises(ValueError, match=r"'X' of 's' has shape .*use method='mr' or 'iw'"):
        check_tabular_nodes(["A", "X"], env)


# -- the simulation ----------------------------------------------------------------------


def _fitted_value(src, tgt, random_state=0, n_simulations=20_000, scm=SCM):
    samplers = {}
    for node in scm.graph.topological_order():
        for side, env in ((False, src), (True, tgt)):
            samplers[(node, side)] = fit_sampler(
                node, scm.graph.parents(node), env, False, 3, StandardisedRidgeCV(), None, 0
            )
    return GenerativeValue(
        scm.graph, MECHS, samplers, scm.metric, n_simulations, random_state=random_state
    )


def test_the_reported_simulation_error_is_the_spread_over_simulation_seeds():
    src, tgt = _pair(2000, 0)
    runs = [ExactShapley().solve(_fitted_value(src, tgt, seed).game()).values for seed in range(12)]
    spread = np.std(runs, axis=0, ddof=1)
    gv = _fitted_value(src, tgt, 0)
    ExactShapley().solve(gv.game())
    reported = np.array(list(gv.details()["simulation_stderr"].values()))
    # 12 seeds give the spread to within ~±40 %; batch means to within ~±30 %
    assert np.all(reported > spread / 2.5) and np.all(reported < spread * 2.5), (reported, spread)


def test_common_random_numbers_make_differences_more_precise_than_independent_draws():
    # a continuous metric (squared error): coupled draws move together. Measured with
    # these data: the total's batch standard error is 0.54 of what independent draws of
    # the two coalitions give (a 0/1 metric under this large shift gains nothing).
    scm = LinearGaussianSCM.example(metric="squared_error")
    src, tgt = _pair(2000, 0, scm)
    gv = _fitted_value(src, tgt, scm=scm)
    b = gv.batch_means(np.array([[False] * 3, [True] * 3]))
    coupled = np.std(b[0] - b[1], ddof=1)
    independent = np.hypot(*np.std(b, axis=1, ddof=1))
    assert coupled < 0.7 * independent


def test_a_mechanism_left_unchanged_gets_exactly_zero():
    src, tgt = _pair(1000, 3)
    tgt = Environment({"Z": src["Z"], "X": tgt["X"], "Y": tgt["Y"]}, name="target")
    res = _generative(src, tgt, random_state=0)
    assert res.values["Z"] == 0.0
    assert abs(res.values["Y"]) > 0.05


# -- attribute(method="generative") --------------------------------------------------------


def test_generative_is_consistent_with_a_right_family_and_biased_and_flagged_with_a_wrong_one():
    # Measured over 6 seeds at N = 5000: largest |error| 0.018 (RMSE Z 0.003, X 0.001,
    # Y 0.009); with DummyRegressor (X and Y ignore their parents) Z is off by 0.054 and
    # Y by 0.086-0.089, and both anchors miss the measured metric by 0.35-0.51.
    for seed in range(2):
        src, tgt = _pair(5000, seed)
        right = _generative(src, tgt, random_state=seed)
        err = [right.values[m] - TRUTH.values[m] for m in MECHS]
        assert np.max(np.abs(err)) < 0.03, err
        assert "generative_misfit" not in {w["code"] for w in right.warnings}
        wrong = _generative(src, tgt, random_state=seed, regressor=DummyRegressor())
        assert abs(wrong.values["Y"] - TRUTH.values["Y"]) > 0.05
        codes = [w["code"] for w in wrong.warnings]
        assert codes.count("generative_misfit") == 2


def test_values_sum_to_the_total_and_unattributed_mechanisms_stay_at_the_source():
    src, tgt = _pair(800, 1)
    res = _generative(src, tgt, random_state=1)
    total = res.source_metric - res.estimated_target_metric
    assert sum(res.values.values()) == pytest.approx(total, abs=1e-12)
    e = res.diagnostics["estimator"]
    assert total == pytest.approx(e["simulated_source_metric"] - e["simulated_target_metric"])
    only_y = _generative(src, tgt, random_state=1, mechanisms=["Y"])
    assert list(only_y.values) == ["Y"]
    # Z and X at the source: Y's value alone differs from its share with all shifted
    assert only_y.values["Y"] != pytest.approx(res.values["Y"], abs=1e-3)


def test_generative_is_reproducible_and_reports_its_fits():
    src, tgt = _pair(600, 2)
    a = _generative(src, tgt, random_state=5)
    b = _generative(src, tgt, random_state=5)
    assert a.values == b.values
    e = a.diagnostics["estimator"]
    assert e["name"] == "generative" and e["n_simulations"] == 20_000
    assert e["mechanism_fits"]["Z@source"]["kind"] == "empirical"
    assert e["mechanism_fits"]["Y@target"]["kind"] == "additive_noise"
    assert e["mechanism_fits"]["Y@target"]["r2"] > 0.8
    assert set(e["simulation_stderr"]) == set(MECHS)
    assert "iw_values" in e  # compared with importance weighting on the same ratios
    assert a.settings["method"] == "generative" and a.settings["n_simulations"] == 20_000


def test_discrete_nodes_keep_their_dtype_in_the_simulated_cases():
    rng = np.random.default_rng(4)
    graph = CausalGraph({"A": [], "S": ["A"]})
    seen = []

    def metric(env):
        seen.append(env["S"].dtype)
        return (env["S"] == 1).astype(float)

    def sample(n, shift):
        a = rng.normal(shift, 1, n)
        return Environment({"A": a, "S": (rng.random(n) < 1 / (1 + np.exp(-a))).astype(np.int8)})

    res = _on_graph(graph, sample(800, 0.0), sample(800, 1.0), metric)
    assert all(d == np.int8 for d in seen)
    assert res.diagnostics["estimator"]["mechanism_fits"]["S@source"]["kind"] == "categorical"
    assert res.values["A"] < -0.1  # more positives at the target: the metric rises


def test_the_refit_bootstrap_brackets_the_point_estimate():
    src, tgt = _pair(400, 6)
    res = _generative(src, tgt, random_state=0, n_bootstrap=8)
    assert res.bootstrap_values.shape == (8, 3)
    assert res.settings["interval"] == "bias_aware"  # the default for "generative"
    boot = res.diagnostics["estimator"]["bootstrap_ci"]
    assert all(res.ci[m][0] <= boot[m][0] and boot[m][1] <= res.ci[m][1] for m in MECHS)
    for m in MECHS:
        lo, hi = res.ci[m]
        assert lo < hi and lo - 0.05 < res.values[m] < hi + 0.05


def test_attribute_pairs_passes_the_scorer_to_the_simulation():
    src, tgt = _pair(400, 7)
    pw = sa.attribute_pairs(
        SCM.graph,
        [src, tgt],
        {"source": SCM.metric},
        method="generative",
        regressor=StandardisedRidgeCV(),
        n_bootstrap=0,
        n_folds=3,
        progress=False,
        random_state=0,
    )
    res = pw.results["source", "target"]
    assert res.settings["method"] == "generative"


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"metric": "array"}, "callable Environment -> per-case values"),
        ({"paired": ["Y"]}, "no use for paired"),
        ({"features": {"X": lambda env: env["X"][:, None]}}, "drop features"),
        ({"bootstrap": "fixed", "n_bootstrap": 5}, "bootstrap='refit'"),
        ({"n_simulations": 10}, "n_simulations must be an integer of at least 20"),
        ({"pooled_regressions": True}, "fits none"),
    ],
)
def test_generative_refuses_what_it_cannot_do(kw, match):
    src, tgt = _pair(100, 0)
    kw = dict(kw)
    metric = SCM.metric(src) if kw.pop("metric", None) == "array" else SCM.metric
    with pytest.raises(ValueError, match=match):
        sa.attribute(SCM.graph, src, tgt, metric, method="generative", progress=False, **kw)


def test_a_metric_that_needs_more_than_the_graph_nodes_is_explained():
    src, tgt = _pair(200, 0)

    def metric(env):
        return env["not_a_node"]

    src = Environment({**{n: src[n] for n in MECHS}, "not_a_node": np.ones(200)}, name="s")
    tgt = Environment({**{n: tgt[n] for n in MECHS}, "not_a_node": np.ones(200)}, name="t")
    with pytest.raises(ValueError, match="that hold only the graph's nodes"):
        sa.attribute(
            SCM.graph,
            src,
            tgt,
            metric,
            method="generative",
            n_bootstrap=0,
            n_folds=3,
            regressor=StandardisedRidgeCV(),
            progress=False,
        )


def test_a_missing_or_image_node_is_refused_before_any_fitting(monkeypatch):
    import shiftattr.value.build as build

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before checking the nodes")

    monkeypatch.setattr(build, "fit_value", no_fit)
    monkeypatch.setattr(sa.attribution, "fit_value", no_fit)
    src, tgt = _pair(100, 0)
    image = np.random.default_rng(0).normal(size=(100, 2, 2))
    tgt = Environment({"Z": tgt["Z"], "X": image, "Y": tgt["Y"]}, name="t")
    with pytest.raises(ValueError, match="node 'X' of 't' has shape"):
        sa.attribute(SCM.graph, src, tgt, SCM.metric, method="generative", progress=False)


# -- found in review: dtypes, shapes, whole-environment metrics, solver-driven cost --------


def _shift_pair(n, make, seed=0):
    rng = np.random.default_rng(seed)
    return make(rng, n, 0.0, "s"), make(rng, n, 1.0, "t")


def test_continuous_nodes_stored_as_integers_are_simulated_as_floats():
    # B = round(8 + 4 A + 4 e) has 27+ distinct values: continuous. Stored as uint8 it
    # used to be cast back to uint8 after simulation (negative draws wrapped to ~255).
    def make(rng, n, shift, name, dtype=float):
        a = rng.normal(shift, 1, n)
        b = np.clip(np.round(8 + 4 * a + 4 * rng.normal(size=n)), 0, None)
        return Environment({"A": a, "B": b.astype(dtype)}, name=name)

    graph = CausalGraph({"A": [], "B": ["A"]})
    src, tgt = _shift_pair(3000, make)
    as_uint8 = [
        Environment({"A": e["A"], "B": e["B"].astype(np.uint8)}, name=e.name) for e in (src, tgt)
    ]
    kw = dict(method="generative", n_bootstrap=0, n_folds=3, progress=False, random_state=0)
    floats = sa.attribute(graph, src, tgt, lambda env: env["B"].astype(float), **kw)
    ints = sa.attribute(graph, *as_uint8, lambda env: env["B"].astype(float), **kw)
    assert ints.values == pytest.approx(floats.values, abs=1e-12)
    assert floats.values["A"] == pytest.approx(-4.0, abs=0.3)  # E[B] rises by 4


def test_a_discrete_node_gets_a_dtype_that_holds_both_environments_values():
    src = Environment({"S": np.array([True, False])})
    tgt = Environment({"S": np.array([0, 2])})
    assert check_tabular_nodes(["S"], src, tgt)["S"] == np.int64


def test_column_nodes_keep_their_shape_in_the_simulated_cases():
    def make(rng, n, shift, name):
        x = rng.normal(shift, 1, (n, 1))
        return Environment({"X": x, "Y": x + 0.5 * rng.normal(size=(n, 1))}, name=name)

    graph = CausalGraph({"X": [], "Y": ["X"]})
    src, tgt = _shift_pair(600, make)

    def metric(env):  # a model that wants a 2-D design, as scikit-learn's do
        assert env["X"].ndim == 2
        return (env["Y"] - 1.2 * env["X"]).ravel() ** 2

    res = _on_graph(graph, src, tgt, metric)
    assert set(res.values) == {"X", "Y"}


def test_each_coalition_is_scored_on_its_own_cases():
    # a metric that centres on its environment's mean: scored on several coalitions at
    # once it would mix them (source A on [-1, 1], target on [2, 4]: same variance)
    def make(rng, n, shift, name):
        return Environment({"A": rng.uniform(-1 + 3 * shift, 1 + 3 * shift, n)}, name=name)

    graph = CausalGraph({"A": []})
    src, tgt = _shift_pair(2000, make)
    with warnings.catch_warnings():  # disjoint supports: the weights' warnings
        warnings.simplefilter("ignore", ShiftAttrWarning)
        res = _on_graph(graph, src, tgt, lambda env: (env["A"] - env["A"].mean()) ** 2)
    assert abs(res.values["A"]) < 0.02  # 1/3 - 1/3; mixed coalitions gave -2.2


def test_details_do_not_simulate_coalitions_a_sampling_solver_skipped():
    src, tgt = _pair(300, 0)
    gv = _fitted_value(src, tgt, n_simulations=200)
    sa.shapley.PermutationShapley(n_permutations=2, random_state=0).solve(gv.game())
    before = len(gv._batches)
    d = gv.details()
    # the solver already simulated the two anchors (empty and full coalitions)
    assert before < 8 and len(gv._batches) == before
    assert "simulation_stderr" not in d


def test_the_rule_prefers_models_that_extrapolate_safely():
    # a sampler predicts at the other environment's parents: among the default regressors
    # within one standard error of the best, a line beats boosting beats a quadratic
    from types import SimpleNamespace

    from shiftattr.value.generative import _simplest_regression

    y = np.random.default_rng(0).normal(size=500)
    # out-of-fold predictions with chosen squared errors: the quadratic best (0.09), boosting
    # within one standard error of it (mean 0.0901, sd 0.01), the line far off (0.5)
    wobble = np.where(np.arange(500) % 2, 0.01, -0.01) + 0.0001
    fit = SimpleNamespace(
        candidates_oof={
            "ridge": y + np.sqrt(0.5),
            "quadratic-ridge": y + 0.3,
            "gradient-boosting": y + np.sqrt(0.09 + wobble),
        },
        chosen="quadratic-ridge",
        r2=0.0,
    )
    assert _simplest_regression(fit, y)[0] == "gradient-boosting"
    fit.candidates_oof["ridge"] = fit.candidates_oof["gradient-boosting"]  # now as close
    assert _simplest_regression(fit, y)[0] == "ridge"
