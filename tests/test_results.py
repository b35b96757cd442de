"""The result layer: the metric's direction, JSON round trips, the summary's wording."""

import json
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest

import shiftattr as sa
from shiftattr.datasets import LinearGaussianSCM
from shiftattr.results import ShiftAttrWarning, dominant_mechanism, dominant_separated

RED = (0.753, 0.224, 0.169)  # "#c0392b": worse on target
BLUE = (0.157, 0.455, 0.651)  # "#2874a6": better on target


def _run(scm, **kw):
    src = scm.sample(200, "source", random_state=0)
    tgt = scm.sample(200, "target", random_state=1)
    kw = {"n_bootstrap": 10, "bootstrap": "fixed", "n_folds": 3, "random_state": 0, **kw}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShiftAttrWarning)
        return sa.attribute(
            scm.graph,
            src,
            tgt,
            scm.metric(src),
            target_metric=scm.metric(tgt),
            progress=False,
            **kw,
        )


@pytest.fixture(scope="module")
def loss_result():
    return _run(LinearGaussianSCM.example(metric="squared_error"), metric_name="squared_error")


def _result(values, ci, **settings):
    mechs = tuple(values)
    return sa.Attribution(
        mechanisms=mechs,
        values=dict(values),
        ci=dict(ci),
        stderr=dict.fromkeys(mechs, 0.01),
        source_metric=0.5,
        estimated_target_metric=0.5 - sum(values.values()),
        settings={"metric_name": "m", **settings},
    )


def _bar_colors(ax):
    return [tuple(round(c, 3) for c in p.get_facecolor()[:3]) for p in ax.patches]


def test_a_loss_is_worded_coloured_and_ranked_as_lower_is_better(loss_result):
    res = loss_result
    assert res.settings["higher_is_better"] is False and res.higher_is_better is False
    text = res.summary()
    assert "positive = the metric fell (better: lower is better for squared_error)" in text
    assert "total change" in text
    assert "performance drop" not in text and "total drop" not in text
    # the loss rose on the target: the mechanism that raised it most is the most negative
    assert res.dominant == min(res.values, key=res.values.get)
    ax = res.plot()
    assert ax.get_ylabel().endswith("(+ = better on target)")
    expected = [RED if res.values[k] < 0 else BLUE for k in res.mechanisms]
    assert _bar_colors(ax) == expected  # red is always "worse on target"
    plt.close(ax.figure)


def test_higher_is_better_keeps_todays_wording_and_ranking():
    res = _result(
        {"X": 0.3, "Y": -0.1}, {"X": (0.2, 0.4), "Y": (-0.15, -0.05)}, higher_is_better=True
    )
    text = res.summary()
    assert "positive = performance drop" in text and "total drop" in text
    assert res.dominant == "X" and res.dominant_settled
    ax = res.plot()
    assert ax.get_ylabel().endswith("(+ = worse on target)")
    assert _bar_colors(ax) == [RED, BLUE]
    plt.close(ax.figure)


def test_unknown_direction_is_neutral_and_ranks_by_absolute_value():
    res = _result(
        {"X": 0.1, "Y": -0.3}, {"X": (0.05, 0.15), "Y": (-0.4, -0.2)}, higher_is_better=None
    )
    text = res.summary()
    assert "positive = the metric fell from source to target" in text and "total change" in text
    assert "performance drop" not in text and "better" not in text.split("\n")[1]
    assert res.dominant == "Y"
    assert res.dominant_settled  # |Y| >= 0.2 > 0.15 >= |X|
    res.ci["X"] = (-0.25, 0.15)  # |X| may reach 0.25 > 0.2
    assert not res.dominant_settled
    ax = res.plot()
    assert ax.get_ylabel().endswith("(+ = lower on target)")
    colors = _bar_colors(ax)
    assert colors[0] == colors[1] and RED not in colors and BLUE not in colors
    plt.close(ax.figure)


def test_dominant_settled_follows_the_direction():
    ci = {"X": (-0.15, -0.05), "Y": (-0.02, 0.02), "Z": (0.0, 0.04)}
    values = {"X": -0.1, "Y": 0.0, "Z": 0.02}
    res = _result(values, ci, higher_is_better=False)
    assert res.dominant == "X" and res.dominant_settled  # -0.05 < every other lower end
    res.ci["Y"] = (-0.06, 0.02)
    assert not res.dominant_settled
    # read as a score, the same numbers say it rose by 0.08, X raising it most: X
    # dominates (the largest "drop", Z, was named before)
    assert dominant_mechanism(values, True) == "X"
    assert dominant_separated(values, ci, higher_is_better=True) is True  # 0.05 > 0.04
    res.settings["higher_is_better"] = True
    assert res.dominant == "X"
    assert dominant_mechanism({"X": 0.1, "Y": 0.0, "Z": -0.02}, True) == "X"  # a drop


def test_when_every_mechanism_improved_the_metric_the_largest_improvement_dominates():
    # the review's case: X improved the Dice by 0.1, Y by 0.001 (its interval holds 0);
    # Y, the smallest "drop", was named dominant and settled
    res = _result(
        {"X": -0.10, "Y": -0.001},
        {"X": (-0.12, -0.08), "Y": (-0.01, 0.008)},
        higher_is_better=True,
    )
    assert res.dominant == "X" and res.dominant_settled


def test_files_without_the_direction_take_the_metric_names(loss_result):
    d = json.loads(loss_result.to_json())
    del d["settings"]["higher_is_better"]  # as written before the setting existed
    old = sa.Attribution.from_dict(d)
    assert old.settings["metric_name"] == "squared_error"
    # a loss was worded as a Dice, its rises called drops, and red and blue swapped
    assert old.higher_is_better is False
    assert old.dominant == loss_result.dominant
    assert "positive = performance drop" not in old.summary()
    d["settings"]["metric_name"] = "metric"  # a name of no known direction: Dice runs
    assert sa.Attribution.from_dict(d).higher_is_better is True
    del d["settings"]["metric_name"]
    assert sa.Attribution.from_dict(d).higher_is_better is True
    again = sa.Attribution.from_json(loss_result.to_json())
    assert again.higher_is_better is False and again.dominant == loss_result.dominant


def test_a_paired_mechanism_reads_back_with_its_nan_diagnostics():
    scm = LinearGaussianSCM.example()
    s0 = scm.sample(200, "source", random_state=0)
    t0 = scm.sample(200, "target", random_state=1)

    def env(e, name, other, shift):
        cf = {other: {"Y": np.asarray(e["Y"]) + shift}}
        return sa.Environment({k: e[k] for k in "ZXY"}, name=name, counterfactuals=cf)

    src, tgt = env(s0, "source", "target", 0.5), env(t0, "target", "source", -0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShiftAttrWarning)
        res = sa.attribute(
            scm.graph,
            src,
            tgt,
            scm.metric,
            target_metric=scm.metric(tgt),
            paired=["Y"],
            n_bootstrap=0,
            n_folds=3,
            progress=False,
            random_state=0,
        )
    assert np.isnan(res.diagnostics["mechanisms"]["Y"]["auc_joint"])
    back = sa.Attribution.from_json(res.to_json())
    assert np.isnan(back.diagnostics["mechanisms"]["Y"]["auc_joint"])  # not None
    assert back.diagnostics["mechanisms"]["Z"]["auc_parents"] is None  # a root: None stays
    assert back.summary() == res.summary()
    y_row = next(x for x in res.summary().splitlines() if x.startswith("Y "))
    assert "nan" not in y_row and "—" in y_row


def test_a_generator_as_random_state_is_saved_as_none_with_a_note():
    res = _run(LinearGaussianSCM.example(), n_bootstrap=0, random_state=np.random.default_rng(0))
    d = json.loads(res.to_json())  # failed: cannot serialise Generator
    assert d["settings"]["random_state"] is None
    assert "numpy.random.Generator" in d["settings"]["random_state_note"]
    assert sa.Attribution.from_dict(d).settings["random_state"] is None
    seeded = _result({"X": 0.1}, {"X": (0.0, 0.2)}, random_state=7)
    assert json.loads(seeded.to_json())["settings"]["random_state"] == 7
    assert "random_state_note" not in seeded.to_dict()["settings"]


def test_estimator_intervals_come_back_as_tuples():
    res = _result({"X": 0.1, "Y": 0.0}, {"X": (0.05, 0.15), "Y": (-0.1, 0.1)})
    res.diagnostics["estimator"] = {
        "bootstrap_ci": {"X": (0.05, 0.15), "Y": (-0.1, 0.1)},
        "bias_aware_ci": {"X": (0.0, 0.2), "Y": (float("nan"), float("nan"))},
        "difference_ci": {"X": (-0.01, 0.02), "Y": (-0.03, 0.0)},
        "paired": ["Y"],
    }
    est = sa.Attribution.from_json(res.to_json()).diagnostics["estimator"]
    assert est["bootstrap_ci"] == res.diagnostics["estimator"]["bootstrap_ci"]
    assert est["difference_ci"] == res.diagnostics["estimator"]["difference_ci"]
    assert est["bias_aware_ci"]["X"] == (0.0, 0.2)
    assert np.isnan(est["bias_aware_ci"]["Y"]).all() and isinstance(
        est["bias_aware_ci"]["Y"], tuple
    )
    assert est["paired"] == ["Y"]  # lists that are not intervals stay lists


def test_a_direction_is_a_bool_or_looked_up():
    from shiftattr.metrics import resolve_direction

    assert resolve_direction(None, "hausdorff95") is False
    assert resolve_direction(None, "metric") is None
    assert resolve_direction(np.True_, "loss") is True  # given wins over the name
    with pytest.raises(TypeError, match="higher_is_better must be True, False or None"):
        resolve_direction("yes", "dice")


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda d: d["values"].pop("X"), "values has no entry for"),
        (lambda d: d["ci"].update(X=[0.1]), "ci.X must be"),
        (lambda d: d["warnings"].append({"message": "no code"}), "warnings must be"),
        (lambda d: d.update(measured_target_metric="0.5"), "measured_target_metric must be"),
        (lambda d: d["settings"].update(confidence="95%"), "settings.confidence must be"),
        (lambda d: d.update(stderr=None), "stderr must be an object"),
        (lambda d: d["settings"].update(higher_is_better="no"), "settings.higher_is_better"),
        (lambda d: d.update(bootstrap_values=[[0.1], [0.2, 0.3]]), "bootstrap_values must be"),
        (lambda d: d.pop("mechanisms"), "mechanisms is missing"),
    ],
)
def test_a_hand_edited_file_is_refused_naming_the_key(edit, key):
    """Each failed later, in a summary or a table, with a bare KeyError or IndexError;
    "no" was read as higher-is-better."""
    res = _result({"X": 0.1, "Y": 0.02}, {"X": (0.05, 0.15), "Y": (-0.01, 0.05)})
    d = json.loads(res.to_json())
    d["bootstrap_values"] = [[0.1, 0.02], [0.12, 0.01]]
    sa.Attribution.from_dict(json.loads(json.dumps(d)))  # as saved: read
    edit(d)
    with pytest.raises(ValueError, match=f"saved attribution: {key}"):
        sa.Attribution.from_dict(d)


def test_a_result_without_intervals_reads_them_as_unknown():
    res = sa.Attribution(("X", "Y"), {"X": 0.1, "Y": 0.02}, {}, {}, 0.8, 0.68)
    assert res.dominant == "X" and not res.dominant_settled  # was a KeyError
    assert np.isnan(res.ci["Y"][0]) and np.isnan(res.stderr["X"])
    assert [r["mechanism"] for r in res.to_records()] == ["X", "Y"]
    d = res.to_dict()
    del d["ci"]["Y"], d["stderr"]["X"]
    again = sa.Attribution.from_dict(d)
    assert np.isnan(again.ci["Y"][1]) and again.stderr["Y"] != again.stderr["Y"]


def test_a_long_default_title_is_wrapped_to_the_figure():
    res = _result(
        {"X": 0.1, "Y": 0.02},
        {"X": (0.05, 0.15), "Y": (-0.01, 0.05)},
        source="center-01+07+08/annotator-1",
        target="center-03/annotator-1",
    )
    ax = res.plot()
    assert ax.get_title() == "center-01+07+08/annotator-1\n→ center-03/annotator-1"
    plt.close(ax.figure)
    ax = _result({"X": 0.1}, {"X": (0.05, 0.15)}).plot()
    assert ax.get_title() == "source → target"
    plt.close(ax.figure)
