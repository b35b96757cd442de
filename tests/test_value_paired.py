"""Paired counterfactual substitution on the linear-Gaussian SCM (Y is a sink).

The source cases carry ``Y`` as the *target's* mechanism would have produced it from
the same parents and the same noise (common random numbers: ``sample_mixed`` with
the source's seed and only ``Y`` shifted), exactly what "every case read by every
annotator" provides. Substitution is then exact, not estimated.
"""

import warnings

import numpy as np
import pytest

import shiftattr as sa
from fast_estimators import fast_settings
from paired_data import paired_source
from shiftattr.attribution import check_metric, iw_game
from shiftattr.datasets import LinearGaussianSCM
from shiftattr.results import ShiftAttrWarning
from shiftattr.value import check_paired, paired_metrics
from shiftattr.value.build import fit_value

SCM = LinearGaussianSCM.example(metric="squared_error")
MECHS = ("Z", "X", "Y")


def _envs(scm, n, seed, reverse=False):
    """Source with the target's Y of its own cases; optionally the reverse for the target."""
    src = paired_source(scm, n, seed)
    t = scm.sample(n, "target", random_state=seed + 1000)
    cf = None
    if reverse:  # Y of the target cases under the source's mechanism, same noise
        cf = {"source": {"Y": scm.sample_mixed(n, ["Z", "X"], random_state=seed + 1000)["Y"]}}
    tgt = sa.Environment({v: t[v] for v in MECHS}, name="target", counterfactuals=cf)
    return src, tgt


def _quiet_attribute(*args, **kwargs):
    kwargs.setdefault("n_bootstrap", 0)
    kwargs.setdefault("progress", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShiftAttrWarning)
        return sa.attribute(*args, **kwargs)


def _fast():
    return fast_settings(MECHS)


def _mr_paired(scm, src, tgt, seed, **kw):
    """``method="mr"`` with ``Y`` substituted, fast estimators, no warnings."""
    return _quiet_attribute(
        scm.graph, src, tgt, metric=scm.metric, method="mr", paired=["Y"], random_state=seed,
        **kw, **_fast(),
    )  # fmt: skip


def test_the_counterfactual_shares_the_noise_of_the_source_case():
    # the helper is right: y_cf - y = change of intercept + change of X's slope * x
    # + change of noise scale * eps, with eps recovered from the source's Y
    src, _ = _envs(SCM, 50, seed=0)
    s, t = SCM.source["Y"], SCM.target["Y"]
    x, z, y = src["X"], src["Z"], src["Y"]
    eps = (y - s.intercept - s.coefs["X"] * x - s.coefs["Z"] * z) / s.noise
    expected = t.intercept + t.coefs["X"] * x + t.coefs["Z"] * z + t.noise * eps
    np.testing.assert_allclose(src.counterfactual("target", "Y"), expected, atol=1e-12)


def test_substituting_y_gives_the_exact_counterfactual_drop():
    src, tgt = _envs(SCM, 800, seed=1)
    m = SCM.metric(src)
    m_cf = SCM.metric(src.with_nodes(Y=src.counterfactual("target", "Y")))
    exact = m.mean() - m_cf.mean()
    res = _quiet_attribute(
        SCM.graph, src, tgt, metric=SCM.metric, mechanisms=["Y"], paired=["Y"], random_state=0
    )
    assert res.values["Y"] == pytest.approx(exact, abs=1e-12)
    assert res.total == pytest.approx(exact, abs=1e-12)
    # nothing was weighted: no discriminator for Y, full ESS, and it is said so
    diag = res.diagnostics["mechanisms"]["Y"]
    assert diag["paired"] is True and diag["ess_fraction"] == 1.0
    assert res.diagnostics["estimator"]["paired"] == ["Y"]
    # no parents' discriminator either: None, as for a root, and the same after JSON
    # (it was NaN in memory and None read back, so the two CSVs differed)
    assert diag["auc_parents"] is None
    back = sa.Attribution.from_json(res.to_json()).diagnostics["mechanisms"]["Y"]
    assert back["auc_parents"] is None
    # and the exact counterfactual drop is the closed-form one (-0.203) up to sampling
    # noise: measured over 30 seeds at N = 800, SD 0.018, largest |error| 0.056
    truth = SCM.true_attribution(["Y"]).values["Y"]
    assert res.values["Y"] == pytest.approx(truth, abs=0.075)


def test_paired_and_weighted_mechanisms_compose_in_one_game():
    # oracle X (and Z) ratios, Y substituted: v(I) weights the source cases by the
    # ratios of I \ {Y} and averages the metric with Y swapped iff Y in I
    src, _ = _envs(SCM, 1000, seed=2)
    m = SCM.metric(src)
    m_cf = SCM.metric(src.with_nodes(Y=src.counterfactual("target", "Y")))
    L = np.vstack([SCM.true_log_ratio(src, v) for v in MECHS])
    L_garbage = L.copy()
    L_garbage[2] = 5.0 * np.random.default_rng(0).normal(size=1000)  # paired row: ignored
    paired = {frozenset(): m, frozenset({"Y"}): m_cf}
    game = iw_game(MECHS, L_garbage, m, paired=paired)

    def weighted(values, *nodes):
        w = np.exp(sum(L[MECHS.index(v)] for v in nodes))
        return float(w @ values / w.sum())

    rows = {
        (False, False, True): m.mean() - m_cf.mean(),
        (False, True, True): m.mean() - weighted(m_cf, "X"),
        (True, True, True): m.mean() - weighted(m_cf, "Z", "X"),
        (False, True, False): m.mean() - weighted(m, "X"),
        (True, False, False): m.mean() - weighted(m, "Z"),
    }
    got = game(np.array(list(rows), dtype=bool))
    np.testing.assert_allclose(got, list(rows.values()), atol=1e-12)
    assert game(np.zeros((1, 3), dtype=bool))[0] == pytest.approx(0.0, abs=1e-12)


def test_fit_value_composes_its_own_ratios_with_the_substituted_metric():
    # the same composition through the estimator plumbing attribute() uses
    src, tgt = _envs(SCM, 400, seed=3)
    m = SCM.metric(src)
    ps, pt = paired_metrics(SCM.metric, src, tgt, ["Y"], m, None, check_metric)
    assert set(ps) == {frozenset(), frozenset({"Y"})} and pt == {}
    fv = fit_value(
        "iw",
        SCM.graph,
        src,
        tgt,
        MECHS,
        m,
        None,
        paired=("Y",),
        paired_source=ps,
        estimators=_fast()["estimators"],
        n_folds=3,
        progress=False,
        random_state=0,
    )
    assert fv.ratios.mechanisms == ("Z", "X")  # no discriminator for the paired Y
    assert np.all(fv.log_ratios[2] == 0.0)
    w_x = np.exp(fv.log_ratios[1])
    w_zx = np.exp(fv.log_ratios[0] + fv.log_ratios[1])
    m_cf = ps[frozenset({"Y"})]
    got = fv.game()(np.array([[0, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=bool))
    expected = [
        m.mean() - m_cf.mean(),
        m.mean() - w_x @ m_cf / w_x.sum(),
        m.mean() - w_zx @ m_cf / w_zx.sum(),
    ]
    np.testing.assert_allclose(got, expected, atol=1e-12)
    # a fixed-bootstrap resample substitutes the resampled cases' own counterfactuals
    idx = np.random.default_rng(1).integers(0, 400, 400)
    assert fv.game(idx)(np.array([[0, 0, 1]], dtype=bool))[0] == pytest.approx(
        m[idx].mean() - m_cf[idx].mean(), abs=1e-12
    )


# MR with Y substituted, against the closed-form truth. Metric: hit rate (bounded).
# Measured over 12 seeds at N = 2000 (fast ratios and regressions): Shapley errors
# have an SD of at most 0.009 and a largest |error| of 0.018, with or without the
# reverse counterfactuals. 0.035 is ~4 SD; Y's true value is 0.116, Z's 0.054.
TOL_MR_PAIRED = 0.035


# With both_samples=True (Z and X averaged over both samples, Y substituted), over the
# same 12 runs (seeds 0-5, with and without the reverse counterfactuals): SD at most
# 0.0084, largest |error| 0.0165, mean |error| 0.0052 against 0.0066 without.
@pytest.mark.parametrize("both_samples", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_mr_with_substitution_recovers_the_closed_form_truth(reverse, both_samples):
    scm = LinearGaussianSCM.example(metric="hit")
    truth = scm.true_attribution()
    src, tgt = _envs(scm, 2000, seed=4, reverse=reverse)
    res = _mr_paired(scm, src, tgt, 4, both_samples=both_samples)
    assert res.settings["both_samples"] == (["Z", "X"] if both_samples else [])
    for v in MECHS:
        assert res.values[v] == pytest.approx(truth.values[v], abs=TOL_MR_PAIRED), (
            v,
            res.values,
            truth.values,
        )
    assert sum(res.values.values()) == pytest.approx(res.total, abs=1e-10)
    fits = res.diagnostics["estimator"]["regressions"]
    y_fits = [f for f in fits if f["level"] == "Y"]
    assert y_fits and {f["fitted_on"] for f in y_fits} == {"paired"}
    if reverse:  # both readings observed: nothing regressed at the Y level
        assert all(f["r2"] is None for f in y_fits)
    else:  # the target side of "Y from the source" is regressed from the source cases
        assert any(f["r2"] is not None for f in y_fits)


@pytest.mark.parametrize("bootstrap", ["fixed", "refit"])
def test_bootstraps_resample_the_substituted_metric(bootstrap):
    src, tgt = _envs(SCM, 300, seed=5)
    res = _mr_paired(SCM, src, tgt, 5, n_bootstrap=8, bootstrap=bootstrap, n_folds=3)
    for v in MECHS:
        lo, hi = res.ci[v]
        assert np.isfinite(lo) and lo < hi and res.stderr[v] > 0


def test_both_samples_with_only_the_paired_mechanism_attributed():
    # every attributed mechanism paired: the unattributed levels before it are still
    # averaged over both samples, and their ratios are fitted for it
    src, tgt = _envs(SCM, 300, seed=7)
    res = _mr_paired(SCM, src, tgt, 7, mechanisms=["Y"], both_samples=np.True_)
    assert res.settings["both_samples"] == ["Z", "X"]
    own = _mr_paired(SCM, src, tgt, 7, mechanisms=["Y"])
    assert res.values["Y"] != pytest.approx(own.values["Y"], abs=1e-9)


def test_both_samples_cannot_average_a_paired_node():
    src, tgt = _envs(SCM, 200, seed=6)
    with pytest.raises(ValueError, match=r"both_samples names \['Y'\], which are paired"):
        _quiet_attribute(
            SCM.graph, src, tgt, metric=SCM.metric, method="mr", paired=["Y"], both_samples=["Y"]
        )


def test_paired_node_with_children_is_refused_naming_it():
    src, tgt = _envs(SCM, 50, seed=6)
    # the source even holds a counterfactual X: refused all the same, X has a child
    src = sa.Environment(
        {v: src[v] for v in MECHS},
        name="source",
        counterfactuals={"target": {"X": tgt["X"], "Y": src.counterfactual("target", "Y")}},
    )
    with pytest.raises(ValueError, match=r"paired node 'X' has children \['Y'\]"):
        _quiet_attribute(SCM.graph, src, tgt, metric=SCM.metric, paired=["X"])


def test_paired_needs_a_callable_metric():
    src, tgt = _envs(SCM, 50, seed=7)
    with pytest.raises(ValueError, match="callable"):
        _quiet_attribute(SCM.graph, src, tgt, metric=SCM.metric(src), paired=["Y"])


def test_paired_node_must_be_a_mechanism():
    src, tgt = _envs(SCM, 50, seed=8)
    with pytest.raises(ValueError, match=r"paired node 'Y' is not among the mechanisms"):
        _quiet_attribute(SCM.graph, src, tgt, metric=SCM.metric, mechanisms=["X"], paired=["Y"])


def test_missing_counterfactual_names_what_is_available():
    src, tgt = _envs(SCM, 50, seed=9)
    bare = sa.Environment({v: src[v] for v in MECHS}, name="source")
    with pytest.raises(KeyError, match=r"'Y' under 'target'.*available: none"):
        _quiet_attribute(SCM.graph, bare, tgt, metric=SCM.metric, paired=["Y"])
    other = sa.Environment(
        {v: src[v] for v in MECHS},
        name="source",
        counterfactuals={"annotator-4": {"Y": src.counterfactual("target", "Y")}},
    )
    with pytest.raises(KeyError, match=r"available: \{'annotator-4': \['Y'\]\}"):
        check_paired(SCM.graph, ["Y"], MECHS, other, tgt, SCM.metric)


# -- SyntheticMS: every case read by a second annotator --------------------------------


def _dice_of_a_threshold_model(env):
    """Dice of a fixed 'model' (the brightest 3 % of voxels) against the mask Y."""
    x = np.asarray(env["X"], dtype=float).reshape(len(env), -1)
    y = np.asarray(env["Y"]).reshape(len(env), -1) > 0
    pred = x > np.quantile(x, 0.97, axis=1, keepdims=True)
    inter = (pred & y).sum(axis=1)
    size = pred.sum(axis=1) + y.sum(axis=1)
    return np.where(size > 0, 2 * inter / np.maximum(size, 1), 1.0)


@pytest.fixture(scope="module")
def ms_annotation_pair():
    sim = sa.datasets.SyntheticMS(shape=(16, 16, 16), random_state=0)
    src = sim.sample(8, center="01", annotator="1", annotate_all=["5"], random_state=0)
    tgt = sim.sample(8, center="01", annotator="5", annotate_all=["1"], random_state=1)
    return sim, src, tgt


def test_synthetic_ms_counterfactuals_are_keyed_by_annotator_not_environment_name(
    ms_annotation_pair,
):
    # SyntheticMS stores the second reading under "annotator-5", while the target
    # environment is named "center-01/annotator-5": the default paired=["Y"] (keyed by
    # target.name) cannot find it, and says what is there
    sim, src, tgt = ms_annotation_pair
    assert tgt.name == "center-01/annotator-5" and list(src.counterfactuals) == ["annotator-5"]
    with pytest.raises(KeyError, match=r"available: \{'annotator-5': \['Y'\]\}"):
        _quiet_attribute(
            sim.graph,
            src,
            tgt,
            metric=_dice_of_a_threshold_model,
            mechanisms=["Y"],
            paired=["Y"],
        )


def test_synthetic_ms_annotation_shift_is_the_substituted_dice_difference(ms_annotation_pair):
    sim, src, tgt = ms_annotation_pair
    m = _dice_of_a_threshold_model(src)
    cf = src.counterfactual("annotator-5", "Y")
    m_cf = _dice_of_a_threshold_model(src.with_nodes(Y=cf))
    # the second reading is a draw of the mixed distribution on the same images: the same
    # cases, annotator 5 (with its own reading noise, so not the mixed sample's reading)
    mixed = sim.sample_mixed(
        8, {"annotator": "1"}, {"annotator": "5"}, shifted={"Y"}, random_state=0
    )
    np.testing.assert_array_equal(mixed["X"], src["X"])
    assert not np.array_equal(cf, src["Y"])  # annotator 5 reads differently
    res = _quiet_attribute(
        sim.graph,
        src,
        tgt,
        metric=_dice_of_a_threshold_model,
        mechanisms=["Y"],
        paired={"Y": ("annotator-5", "annotator-1")},
        method="iw",
        random_state=0,
    )
    assert res.values["Y"] == pytest.approx(m.mean() - m_cf.mean(), abs=1e-12)
    assert res.values["Y"] != 0.0
    assert res.settings["paired"] == {"Y": ["annotator-5", "annotator-1"]}


class _LoopExact(sa.shapley.ExactShapley):
    """ExactShapley under another type: attribute() then solves one game per replicate."""


@pytest.mark.parametrize("method", ["iw", "mr"])
def test_the_batched_fixed_bootstrap_substitutes_like_one_game_per_replicate(method):
    src, tgt = _envs(SCM, 300, seed=6, reverse=True)
    kw = dict(metric=SCM.metric, method=method, paired=["Y"], n_bootstrap=8, random_state=2)
    batched = _quiet_attribute(SCM.graph, src, tgt, **kw, **_fast())
    looped = _quiet_attribute(SCM.graph, src, tgt, solver=_LoopExact(), **kw, **_fast())
    np.testing.assert_allclose(batched.bootstrap_values, looped.bootstrap_values, atol=1e-12)
    assert batched.closure_ci == pytest.approx(looped.closure_ci, abs=1e-12)
    assert np.ptp(batched.bootstrap_values[:, 2]) > 0  # the substituted Y varies too


def test_a_paired_mechanism_carrying_the_change_is_not_an_unseen_shift():
    """Only ``Y`` shifts and it is paired: no discriminator sees a shift (its AUC is not
    estimated), yet the change is explained; ``shift_not_seen`` used to fire here
    (``max`` over AUCs with a NaN among them depended on the mechanisms' order)."""
    scm = LinearGaussianSCM.example(shifted=("Y",), metric="squared_error")
    src, tgt = _envs(scm, 2000, seed=3)
    res = _mr_paired(scm, src, tgt, seed=0)
    assert np.isnan(res.diagnostics["mechanisms"]["Y"]["auc_joint"])
    assert max(res.diagnostics["mechanisms"][m]["auc_joint"] for m in "ZX") < 0.55
    assert abs(res.source_metric - res.measured_target_metric) > 0.1  # a real change
    assert "shift_not_seen" not in {w["code"] for w in res.warnings}


def test_attribute_pairs_finds_counterfactuals_stored_under_the_mappings_keys():
    # SyntheticMS(annotate_all=...) stores each rater's readings under "annotator-5",
    # while the environments are named "center-01/annotator-5": the sweep raised a
    # KeyError, the keys of `environments` were not tried
    src, tgt = _envs(SCM, 150, 0, reverse=True)
    a = sa.Environment(
        {v: src[v] for v in MECHS},
        name="site/a",
        counterfactuals={"b": {"Y": src.counterfactual("target", "Y")}},
    )
    b = sa.Environment(
        {v: tgt[v] for v in MECHS},
        name="site/b",
        counterfactuals={"a": {"Y": tgt.counterfactual("source", "Y")}},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShiftAttrWarning)
        pw = sa.attribute_pairs(
            SCM.graph, {"a": a, "b": b}, {"a": SCM.metric}, paired=["Y"], method="mr",
            n_bootstrap=0, progress=False, random_state=0, **_fast(),
        )  # fmt: skip
    res = pw.results["a", "b"]
    assert res.settings["paired"] == {"Y": ["b", "a"]}
    assert np.isfinite(list(res.values.values())).all()
