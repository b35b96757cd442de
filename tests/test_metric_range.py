"""The target's metric beyond the source's range: the test, its record, its warning."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import shiftattr as sa
from paired_data import paired_source
from shiftattr.datasets import LinearGaussianSCM
from shiftattr.datasets.linear_gaussian import LinearMechanism as Lin
from shiftattr.metric_range import (
    METRIC_RANGE_ALPHA,
    exceedance_pvalue,
    metric_beyond_source,
    metric_range,
    values_beyond_span,
)
from shiftattr.ratios import ClassifierRatio


def test_exceedance_pvalue_is_the_chance_the_top_k_of_a_shuffle_are_all_target():
    # 40,000 shuffles of 30 source and 12 target labels: the share whose k largest
    # positions all hold target labels; s.e. of a share of 0.05 is 0.0011
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(30, bool), np.ones(12, bool)]
    top = np.array([rng.permutation(labels)[:3] for _ in range(40_000)])
    for k in (1, 2, 3):
        assert top[:, :k].all(1).mean() == pytest.approx(exceedance_pvalue(k, 30, 12), abs=0.005)
    assert exceedance_pvalue(0, 30, 12) == 1.0
    assert exceedance_pvalue(13, 30, 12) == 0.0  # more than the target holds
    assert exceedance_pvalue(12, 0, 12) == pytest.approx(1.0)


def test_metric_range_measures_both_tails_against_the_source_extremes():
    src = np.array([0.2, 0.5, 0.9])
    tgt = np.array([0.0, 0.1, 0.5, 1.2, 0.9])  # 0.9 equals the source's max: not beyond
    r = metric_range(src, tgt)
    assert (r["source_min"], r["source_max"]) == (0.2, 0.9)
    assert (r["n_source"], r["n_target"]) == (3, 5)
    assert r["low"]["n_beyond"] == 2 and r["high"]["n_beyond"] == 1
    assert r["low"]["share"] == pytest.approx(0.4)
    assert r["low"]["excess"] == pytest.approx((0.2 + 0.1) / 5)
    assert r["high"]["excess"] == pytest.approx(0.3 / 5)
    assert r["excess"] == pytest.approx(0.12)
    assert r["change"] == pytest.approx(tgt.mean() - src.mean())
    assert r["high"]["p_value"] == pytest.approx(exceedance_pvalue(1, 3, 5))


def test_empty_or_non_finite_samples_are_refused_by_name():
    with pytest.raises(ValueError, match="target_metric, got 0 value"):
        metric_range(np.arange(3.0), np.array([]))
    with pytest.raises(ValueError, match=r"source_metric, got 3 value.*NaN or inf"):
        metric_range(np.array([0.0, np.nan, 1.0]), np.arange(3.0))


def test_alike_heavy_tailed_metrics_raise_the_warning_about_as_often_as_its_level():
    # both environments from one lognormal (a heavy tail, no shift): the false-alarm rate
    # over 600 pairs is at most the test's level (1 %), plus 3 s.e. (0.012)
    rng = np.random.default_rng(1)
    fired = [
        bool(
            metric_beyond_source(
                metric_range(rng.lognormal(0, 1.5, 300), rng.lognormal(0, 1.5, 80))
            )
        )
        for _ in range(600)
    ]
    assert np.mean(fired) <= METRIC_RANGE_ALPHA + 0.012, np.mean(fired)


def test_a_tail_that_grew_is_flagged_and_a_trivial_overshoot_is_not():
    rng = np.random.default_rng(2)
    src = rng.chisquare(1, 500)
    # the target's squared errors four times larger: about 10 % lie beyond the source's
    grown = metric_beyond_source(metric_range(src, 4 * rng.chisquare(1, 80)), "loss")
    assert [w["code"] for w in grown] == ["metric_beyond_source"]
    assert "above the source's largest loss" in grown[0]["message"]
    # a bounded metric: many target cases just below the source's smallest value, which
    # hold a negligible part (under 5 %) of a large change
    dice_s = rng.uniform(0.05, 0.9, 300)
    dice_t = np.r_[np.full(20, 0.04), rng.uniform(0.05, 0.5, 80)]
    r = metric_range(dice_s, dice_t)
    assert r["low"]["p_value"] < 1e-6 and r["excess"] < 0.05 * abs(r["change"])
    assert metric_beyond_source(r) == []


def test_each_tail_is_judged_on_its_own_excess():
    # the review's case: ten target values a hair below the source's smallest (a clear
    # but negligible tail) and two far above its largest (a large but unproven one);
    # judged together, the first tail's p-value and the second's excess made a warning
    rng = np.random.default_rng(3)
    src = rng.uniform(0, 1, 500)
    tgt = np.r_[rng.uniform(0, 1, 69), np.full(10, src.min() - 0.001), 30.0]
    r = metric_range(src, tgt)
    assert r["low"]["p_value"] < 1e-6 and r["low"]["excess"] < 0.05 * abs(r["change"])
    assert r["high"]["p_value"] > METRIC_RANGE_ALPHA / 2
    assert r["excess"] > 0.05 * abs(r["change"])  # both tails together would pass
    assert metric_beyond_source(r) == []
    # the far tail, now with enough cases to be a finding, is named with its own excess
    tgt = np.r_[rng.uniform(0, 1, 69), np.full(10, src.min() - 0.001), np.full(6, 3.0)]
    (w,) = metric_beyond_source(metric_range(src, tgt), "loss")
    assert "above the source's largest loss" in w["message"]
    assert "below" not in w["message"]


def _noise_grew(metric="squared_error", y_noise=2.0):
    graph = {"Z": [], "X": ["Z"], "Y": ["X"]}
    src = {"Z": Lin(0, {}, 1), "X": Lin(0, {"Z": 0.8}, 1), "Y": Lin(0, {"X": 1.0}, 1)}
    tgt = dict(src, Y=Lin(0, {"X": 1.0}, y_noise))
    return LinearGaussianSCM(graph, src, tgt, outcome="Y", model_coefs={"X": 1.0}, metric=metric)


def _attribute(scm, seed, n_target=80, **kw):
    src = scm.sample(500, random_state=seed)
    tgt = scm.sample(n_target, "target", random_state=100 + seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sa.attribute(
            scm.graph, src, tgt, metric=scm.metric(src), target_metric=scm.metric(tgt),
            n_bootstrap=0, progress=False, random_state=seed, **kw,
        )  # fmt: skip


def test_attribute_warns_when_importance_weighting_cannot_reach_the_targets_losses():
    # Y's noise doubles, so the squared error's tail grows four-fold (truth Y -3.0); a
    # linear classifier cannot see a change of spread, so the weights stay flat and IW
    # puts about 0 on Y. Seed 0: 8 of the 80 target losses lie above every source loss
    scm = _noise_grew()
    res = _attribute(scm, 0, method="iw", estimators={"Y": ClassifierRatio(LogisticRegression())})
    assert abs(res.values["Y"]) < 0.5  # the miss the warning is about
    codes = [w["code"] for w in res.warnings]
    assert "metric_beyond_source" in codes
    assert res.diagnostics["overall"]["warning_counts"]["metric_beyond_source"] == 1
    rng = res.diagnostics["metric_range"]
    assert rng["high"]["n_beyond"] >= 5 and rng["high"]["p_value"] < 1e-4
    # kept through JSON
    back = sa.Attribution.from_json(res.to_json())
    assert back.diagnostics["metric_range"] == rng  # floats survive JSON exactly


def test_methods_that_also_use_the_target_cases_record_the_range_without_the_warning(tmp_path):
    scm = _noise_grew()
    res = _attribute(scm, 0, method="mis")
    assert "metric_beyond_source" not in {w["code"] for w in res.warnings}
    assert res.diagnostics["metric_range"]["high"]["n_beyond"] >= 5
    assert res.values["Y"] < -2.0  # mis weights the target's cases in: it reaches them
    # still a finding, told in the summary and the report: the target's new failures
    line = next(x for x in res.summary().splitlines() if x.startswith("beyond the source"))
    assert "8 of 80 target cases above the source's largest metric" in line
    from shiftattr.report import write_report

    page = write_report(res, tmp_path)
    assert "beyond the source's range: 8 of 80 target cases" in page.read_text()


def test_a_bounded_metric_under_the_same_shift_raises_no_range_warning():
    scm = _noise_grew(metric="hit")
    res = _attribute(scm, 0, method="iw")
    assert "metric_beyond_source" not in {w["code"] for w in res.warnings}
    assert res.diagnostics["metric_range"]["excess"] == 0.0
    assert "beyond the source" not in res.summary()


def test_without_a_target_metric_there_is_no_range_record():
    scm = _noise_grew()
    src, tgt = scm.sample(300, random_state=3), scm.sample(300, "target", random_state=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sa.attribute(
            scm.graph, src, tgt, metric=scm.metric(src), n_bootstrap=0, progress=False
        )
    assert "metric_range" not in res.diagnostics


def test_values_beyond_the_metric_span_are_named_and_nothing_else():
    hits = np.array([0.0, 1.0, 1.0, 0.0])
    warns = values_beyond_span({"Z": -8.3, "X": 0.99, "Y": 1.0}, [hits, None], "hit rate")
    assert [w["mechanism"] for w in warns] == ["Z"]
    assert (
        warns[0]["code"] == "value_beyond_span" and "hit rate's whole span" in warns[0]["message"]
    )
    # the span is over both environments, NaN per-case values and NaN values are left out
    assert values_beyond_span({"X": 1.5}, [hits, np.array([2.0, np.nan])]) == []
    assert values_beyond_span({"X": float("nan")}, [hits]) == []
    assert values_beyond_span({"X": 1.0}, [None, None]) == []


def test_mr_on_an_unattributed_separating_node_is_flagged_beyond_the_span():
    """A root left out of the mechanisms that separates the environments: "mr" regresses
    along it and extrapolates (values of several units for a hit rate); "iw" never reads
    it. The estimate is flagged for what it is."""
    from shiftattr.results import ShiftAttrWarning

    scm = sa.datasets.LinearGaussianSCM.example()
    s, t = scm.sample(200, "source", random_state=0), scm.sample(200, "target", random_state=1)

    def with_a(env, level):
        a = level + np.random.default_rng(int(level)).normal(0, 0.01, len(env))
        return sa.Environment({**{n: env[n] for n in env.nodes}, "A": a}, name=env.name)

    graph = sa.CausalGraph({"A": [], **{n: list(scm.graph.parents(n)) for n in scm.graph.nodes}})
    kw = dict(
        metric=scm.metric(s), target_metric=scm.metric(t), mechanisms=["Z", "X", "Y"],
        n_folds=3, n_bootstrap=0, progress=False, random_state=0,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShiftAttrWarning)
        mr = sa.attribute(graph, with_a(s, 1.0), with_a(t, 2.0), method="mr", **kw)
        iw = sa.attribute(graph, with_a(s, 1.0), with_a(t, 2.0), method="iw", **kw)
    beyond = {w["mechanism"] for w in mr.warnings if w["code"] == "value_beyond_span"}
    assert beyond and all(abs(mr.values[k]) > 1 for k in beyond)
    assert mr.diagnostics["overall"]["warning_counts"]["value_beyond_span"] == len(beyond)
    assert not any(w["code"] == "value_beyond_span" for w in iw.warnings)


def test_the_span_includes_the_re_scored_paired_cases(monkeypatch):
    """Substituted cases are per-case values of the metric too: a paired value is a mean
    difference with them, so the span it is judged against must hold them."""
    import shiftattr.attribution as attribution

    scm = LinearGaussianSCM.example(metric="squared_error")
    src = paired_source(scm, 150, 0)
    tgt = scm.sample(150, "target", random_state=1000)
    seen = []

    def spy(values, metrics, metric_name="metric"):
        seen.extend(metrics)
        return values_beyond_span(values, metrics, metric_name)

    monkeypatch.setattr(attribution, "values_beyond_span", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sa.attribute(
            scm.graph, src, tgt, metric=scm.metric, paired=["Y"], method="iw",
            n_bootstrap=0, n_folds=3, progress=False, random_state=0,
        )  # fmt: skip
    substituted = scm.metric(src.with_nodes(Y=src.counterfactual("target", "Y")))
    assert any(
        a is not None and a.shape == substituted.shape and np.allclose(a, substituted) for a in seen
    )
