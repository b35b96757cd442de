"""``method="auto"``: which value estimator :func:`shiftattr.attribute` runs, and why."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import Ridge

import shiftattr as sa
from paired_data import paired_source
from shiftattr.attribution import ShiftAttrWarning
from shiftattr.bootstrap import resolve_bootstrap
from shiftattr.datasets import LinearGaussianSCM
from shiftattr.results import interval_note
from shiftattr.value.choice import names_levels, resolve_method


@pytest.fixture(scope="module")
def tabular():
    scm = LinearGaussianSCM.example()
    return scm, scm.sample(300, "source", random_state=0), scm.sample(300, "target", random_state=1)


def _attribute(tabular, **kw):
    scm, src, tgt = tabular
    args = dict(metric=scm.metric(src), n_folds=3, n_bootstrap=0, progress=False, random_state=0)
    args.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShiftAttrWarning)
        return sa.attribute(scm.graph, src, tgt, **args)


def test_the_default_runs_mr_with_fixed_bias_aware_intervals_given_the_target_metric(tabular):
    scm, _, tgt = tabular
    res = _attribute(tabular, target_metric=scm.metric(tgt), n_bootstrap=20)
    assert res.settings["method"] == "mr"
    assert res.settings["method_reason"].startswith("auto: 'mr'")
    assert res.settings["bootstrap"] == "fixed"
    assert res.settings["interval"] == "bias_aware"
    explicit = _attribute(tabular, target_metric=scm.metric(tgt), n_bootstrap=20, method="mr")
    assert res.values == explicit.values and res.ci == explicit.ci
    assert explicit.settings["method_reason"] == "requested"


def test_the_default_runs_mr_with_a_callable_metric(tabular):
    scm = tabular[0]
    res = _attribute(tabular, metric=scm.metric)
    assert res.settings["method"] == "mr"


def test_the_default_runs_iw_without_the_target_metric(tabular):
    res = _attribute(tabular)
    assert res.settings["method"] == "iw"
    assert "target cases is unknown" in res.settings["method_reason"]
    assert res.settings["bootstrap"] == "refit"  # as importance weighting always resolved
    assert res.values == _attribute(tabular, method="iw").values


@pytest.mark.parametrize(
    "kw, reason",
    [({"truncate": 20.0}, "takes truncate"), ({"cross_check": True}, "takes cross_check=True")],
)
def test_options_only_iw_takes_choose_iw(tabular, kw, reason):
    scm, _, tgt = tabular
    res = _attribute(tabular, target_metric=scm.metric(tgt), **kw)
    assert res.settings["method"] == "iw"
    assert reason in res.settings["method_reason"]


@pytest.mark.parametrize(
    "kw",
    [
        {"both_samples": True},
        {"regressor": Ridge()},
        {"features": {"X": lambda env: np.asarray(env["X"]).reshape(-1, 1)}},
        {"interval": "bias_aware", "n_bootstrap": 10},
        {"pooled_regressions": np.True_},
    ],
)
def test_options_only_mr_takes_are_refused_with_the_reason_auto_runs_iw(tabular, kw):
    # "iw" would ignore regressor and features silently and refuse the others naming
    # a method the user did not choose
    with pytest.raises(ValueError, match=r"runs 'iw' here \(the metric at the.*provide what"):
        _attribute(tabular, **kw)


def test_a_callable_metric_failing_on_the_target_says_iw_would_not_score_it(tabular):
    scm, src, _ = tabular

    def metric(env):
        values = scm.metric(env)
        return values if env.name == src.name else np.full(len(env), np.nan)

    with pytest.raises(ValueError, match="method='iw' scores the source cases only"):
        _attribute(tabular, metric=metric)
    assert _attribute(tabular, metric=metric, method="iw").settings["method"] == "iw"


def test_the_summary_tells_mr_s_fixed_intervals_apart(tabular):
    scm, _, tgt = tabular
    res = _attribute(tabular, target_metric=scm.metric(tgt), n_bootstrap=10)
    assert "first order" in res.summary() and "too narrow" not in res.summary()
    assert "chosen by method='auto': the metric is known" in res.summary()
    iw = _attribute(tabular, method="iw", n_bootstrap=10, bootstrap="fixed")
    assert "too narrow" in iw.summary() and "chosen by" not in iw.summary()


def test_resolve_method_reads_every_rule():
    graph = sa.CausalGraph({"D": [], "X": ["D"]})
    both = sa.Environment({"D": np.zeros(4), "X": np.zeros(4)}, name="s")
    lacking = sa.Environment({"D": np.zeros(4)}, name="t")
    known = dict(target_metric_known=True)
    assert resolve_method("auto", graph, [both, both], **known)[0] == "mr"
    method, reason = resolve_method("auto", graph, [both, lacking], **known)
    assert method == "iw" and "('X', 't')" in reason
    method, reason = resolve_method("auto", graph, [both, both], mechanisms=["X"], **known)
    assert method == "iw" and "leaves ['D'] out" in reason
    # a paired mechanism is attributed (and not weighted)
    paired_x = dict(mechanisms=["D", "X"], paired=["X"])
    assert resolve_method("auto", graph, [both, both], **paired_x, **known)[0] == "mr"
    mr_only = (
        {"both_samples": ["X"]},
        {"both_samples": np.array(["X"])},
        {"pooled_regressions": True},
        {"pooled_regressions": np.True_},
        {"correction_cap": 10.0},
        {"correction_cap": None},
        {"regressor": Ridge()},
        {"features": {"X": len}},
        {"interval": "bias_aware"},
    )
    for kw in mr_only:  # they change nothing where "mr" runs, and are refused where "iw" does
        assert resolve_method("auto", graph, [both, both], **known, **kw)[0] == "mr", kw
        with pytest.raises(ValueError, match="runs 'iw' here"):
            resolve_method("auto", graph, [both, lacking], **known, **kw)
    for kw in (
        {"pooled_regressions": False},
        {"both_samples": np.array([])},
        {"both_samples": []},
        {"features": {}},
        {"interval": "bootstrap"},
    ):
        method, _ = resolve_method("auto", graph, [both, lacking], **known, **kw)
        assert method == "iw", kw
    # iw's own options decide before anything else, and refuse mr's too
    assert resolve_method("auto", graph, [both, both], truncate=20.0, **known)[0] == "iw"
    for kw in mr_only:
        with pytest.raises(ValueError, match="choose between truncate and them"):
            resolve_method("auto", graph, [both, both], truncate=20.0, **known, **kw)
    # cross_check's own regressions take regressor and features
    for kw in ({"regressor": Ridge()}, {"features": {"X": len}}):
        method, _ = resolve_method("auto", graph, [both, both], cross_check=True, **known, **kw)
        assert method == "iw"
    with pytest.raises(ValueError, match="cross_check=True and them"):
        resolve_method("auto", graph, [both, both], cross_check=True, both_samples=True, **known)
    assert resolve_method("generative", graph, [both, lacking], **known) == (
        "generative",
        "requested",
    )


def test_more_than_eight_weighted_mechanisms_run_iw_and_paired_ones_do_not_count():
    names = [f"V{i}" for i in range(9)]
    graph = sa.CausalGraph({n: [] for n in names})
    env = sa.Environment({n: np.zeros(4) for n in names})
    known = dict(target_metric_known=True)
    method, reason = resolve_method("auto", graph, [env, env], **known)
    assert method == "iw" and "9 weighted mechanisms" in reason and "1022" in reason
    assert resolve_method("auto", graph, [env, env], paired="V8", **known)[0] == "mr"
    assert resolve_method("auto", graph, [env, env], paired=["V8"], **known)[0] == "mr"


def test_paired_substitution_does_not_force_mr():
    """``paired`` composes with "iw" too: with a node the target lacks, the default runs
    "iw" with the substitution where "mr" could not run at all."""
    scm = LinearGaussianSCM.example(metric="squared_error")
    src = paired_source(scm, 200, 0)
    t = scm.sample(200, "target", random_state=1000)
    tgt = sa.Environment({"X": t["X"], "Y": t["Y"]}, name="target")  # no Z
    kw = dict(metric=scm.metric, mechanisms=["Y"], paired=["Y"], n_bootstrap=0, progress=False)
    chain = sa.CausalGraph({"Z": [], "X": ["Z"], "Y": ["X"]})  # Y's mechanism needs no Z
    res = sa.attribute(chain, src, tgt, **kw)
    assert res.settings["method"] == "iw" and "('Z', 'target')" in res.settings["method_reason"]
    assert res.values == sa.attribute(chain, src, tgt, method="iw", **kw).values


def test_images_need_a_featurizer_for_mr():
    graph = sa.CausalGraph({"D": [], "X": ["D"], "Y": ["X"]})
    img = sa.Environment(
        {"D": np.zeros(4), "X": np.zeros((4, 8, 8, 8)), "Y": np.zeros((4, 8, 8, 8))}
    )
    known = dict(target_metric_known=True)
    method, reason = resolve_method("auto", graph, [img, img], **known)
    assert method == "iw" and "features= gives none of them a featurizer" in reason
    # one featurized image is the measured configuration (the mask keeps its statistics)
    summaries = {"X": lambda env: np.zeros((len(env), 3))}
    assert resolve_method("auto", graph, [img, img], features=summaries, **known)[0] == "mr"
    # a featurizer for the covariates alone leaves the images on their statistics;
    # an explicit method="mr" would run them all the same
    with pytest.raises(ValueError, match=r"gives none of them a featurizer.*pass method='mr'"):
        resolve_method("auto", graph, [img, img], features={"D": len}, **known)
    assert resolve_method("mr", graph, [img, img], features={"D": len}, **known)[0] == "mr"


def test_attribute_pairs_without_deploy_labels_runs_iw_even_with_paired(tabular):
    scm = tabular[0]
    envs = {}
    for name, other, seed in (("source", "target", 0), ("target", "source", 1)):
        base = scm.sample(200, name, random_state=seed)
        y_other = scm.sample(200, other, random_state=seed)["Y"]  # a stand-in second reading
        nodes = {v: base[v] for v in ("Z", "X", "Y")}
        envs[name] = sa.Environment(nodes, name=name, counterfactuals={other: {"Y": y_other}})
    scored = []

    def scorer(env):
        scored.append(env.name)
        return scm.metric(env)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShiftAttrWarning)
        pw = sa.attribute_pairs(
            scm.graph, envs, {"source": scorer}, paired=["Y"], measure_target=False,
            n_bootstrap=0, n_folds=3, progress=False, random_state=0,
        )  # fmt: skip
    assert pw.results["source", "target"].settings["method"] == "iw"  # "mr" with the callable
    assert "target" in scored  # the scorer was passed on for the substitution, as before


def test_names_levels():
    assert [names_levels(v) for v in (False, None, [], (), np.array([]))] == [False] * 5
    assert [names_levels(v) for v in (True, np.True_, ["X"], np.array(["X"]))] == [True] * 4
    assert names_levels(0)  # not a sequence: asked for, and refused by attribute() itself


def test_a_malformed_both_samples_keeps_its_own_error(tabular):
    scm, _, tgt = tabular
    with pytest.raises(ValueError, match="both_samples"):
        _attribute(tabular, target_metric=scm.metric(tgt), both_samples=0)


def test_auto_bootstrap_holds_mr_fixed_unless_over_both_samples():
    assert resolve_bootstrap("auto", method="mr") == "fixed"
    assert resolve_bootstrap("auto", method="mr", both_samples=["X"]) == "refit"
    assert resolve_bootstrap("auto", method="mr", both_samples=np.array(["X"])) == "refit"
    assert resolve_bootstrap("auto", method="mr", both_samples=np.array([])) == "fixed"
    assert (
        resolve_bootstrap("auto", method="iw") == resolve_bootstrap("auto", method="mis") == "refit"
    )
    assert resolve_bootstrap("refit", method="mr") == "refit"


def test_the_note_on_fixed_intervals_tells_mr_apart():
    base = {"bootstrap": "fixed", "n_bootstrap": 50}
    plain = interval_note(base)
    mr = interval_note({**base, "method": "mr", "interval": "bias_aware"})
    assert "too narrow" in plain and "too narrow" not in mr and "first order" in mr
    assert interval_note({**base, "method": "mr", "interval": "bootstrap"}) == plain


def test_attribute_pairs_follows_the_default(tabular):
    scm, src, tgt = tabular
    envs = {"source": src, "target": tgt}
    kw = dict(n_bootstrap=0, n_folds=3, progress=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShiftAttrWarning)
        measured = sa.attribute_pairs(scm.graph, envs, {"source": scm.metric}, **kw)
        unmeasured = sa.attribute_pairs(
            scm.graph, envs, {"source": scm.metric}, measure_target=False, **kw
        )
    assert measured.results["source", "target"].settings["method"] == "mr"
    assert unmeasured.results["source", "target"].settings["method"] == "iw"
