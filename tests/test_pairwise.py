import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

import shiftattr as sa
from shiftattr.datasets import LinearGaussianSCM


@pytest.fixture(scope="module")
def sweep():
    scm = LinearGaussianSCM.example()
    a = scm.sample(300, "source", random_state=0)
    b = scm.sample(300, "target", random_state=1)
    c = LinearGaussianSCM.example(shifted=("Y",)).sample(300, "target", random_state=2)
    c = sa.Environment({k: c[k] for k in c.nodes}, name="y-only")
    calls = []

    def scorer_for(model):
        def score(env):
            calls.append((model, env.name))
            return scm.metric(env)

        return score

    est = sa.ratios.ClassifierRatio(
        sa.ratios.classifier.default_candidates()["quadratic-logistic"], calibration="none"
    )
    scorers = {"source": scorer_for("source"), "target": scorer_for("target")}
    kwargs = dict(
        estimators=dict.fromkeys("ZXY", est),
        n_bootstrap=0,
        n_folds=3,
        progress=False,
        random_state=0,
        metric_name="hit",
    )
    pw = sa.attribute_pairs(scm.graph, [a, b, c], scorers, **kwargs)
    n_calls = len(calls)
    # one pair run alone: its seed comes from the pair's names, not its place in the sweep
    alone = sa.attribute_pairs(
        scm.graph, [a, b, c], scorers, pairs=[("target", "y-only")], **kwargs
    )
    del calls[n_calls:]
    return pw, calls, alone


def test_a_pair_run_alone_gives_the_numbers_it_had_in_the_sweep(sweep):
    pw, _, alone = sweep
    assert alone.results["target", "y-only"].values == pw.results["target", "y-only"].values


def test_pairs_matrices_and_scoring_cache(sweep):
    pw, calls, _ = sweep
    assert pw.pairs == [
        ("source", "target"),
        ("source", "y-only"),
        ("target", "source"),
        ("target", "y-only"),
    ]
    assert len(calls) == len(set(calls))  # each (model, env) scored once
    v = pw.value_matrix("Y")
    assert v.shape == (3, 3)
    assert np.isnan(v[0, 0]) and np.isnan(v[2, 0])  # no diagonal, no scorer for y-only
    assert v[0, 1] == pw.results["source", "target"].values["Y"]
    m = pw.metric_matrix()
    assert m[0, 0] == pytest.approx(0.76, abs=0.05)
    assert m[0, 1] < m[0, 0]


def test_summary_table_is_mean_sd_over_pairs(sweep):
    pw, _, _ = sweep
    table = pw.summary_table()
    ys = [r.values["Y"] for r in pw.results.values()]
    assert table["Y"]["mean"] == pytest.approx(np.mean(ys))
    assert table["Y"]["sd"] == pytest.approx(np.std(ys, ddof=1))
    assert table["Y"]["n_pairs"] == 4
    text = pw.summary()
    assert "mean ± sd" in text and "positive = performance drop" in text


def test_only_y_shift_is_attributed_to_y(sweep):
    pw, _, _ = sweep
    r = pw.results["source", "y-only"]
    assert r.dominant == "Y"
    assert abs(r.values["Z"]) < 0.02 and abs(r.values["X"]) < 0.02


def test_plot_and_json_roundtrip(sweep, tmp_path):
    pw, _, _ = sweep
    fig = pw.plot()
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(";" in t for t in texts)
    pw.to_json(tmp_path / "pw.json")
    back = sa.PairwiseAttribution.from_json(tmp_path / "pw.json")
    np.testing.assert_allclose(back.value_matrix("Y"), pw.value_matrix("Y"), equal_nan=True)
    assert back.metrics == pw.metrics


def test_bad_inputs():
    scm = LinearGaussianSCM.example()
    a = scm.sample(50, "source", random_state=0)
    with pytest.raises(ValueError, match="scorers for unknown"):
        sa.attribute_pairs(scm.graph, [a], {"nope": scm.metric})
    with pytest.raises(ValueError, match="two environments are named"):
        sa.attribute_pairs(scm.graph, [a, a], {"source": scm.metric})
    with pytest.raises(ValueError, match="needs a scorer"):
        sa.attribute_pairs(scm.graph, {"a": a, "b": a}, {"a": scm.metric}, pairs=[("b", "a")])
    # an empty sweep gave a summary of "+nan ± —" rows; a diagonal pair ran
    with pytest.raises(ValueError, match="no \\(train, deploy\\) pair"):
        sa.attribute_pairs(scm.graph, {"a": a, "b": a}, {}, pairs=None)
    with pytest.raises(ValueError, match="against itself"):
        sa.attribute_pairs(scm.graph, {"a": a, "b": a}, {"a": scm.metric}, pairs=[("a", "a")])


def test_known_ratios_are_refused_because_they_belong_to_one_pair():
    scm = LinearGaussianSCM.example()
    envs = [scm.sample(60, "source", random_state=0), scm.sample(60, "target", random_state=1)]
    with pytest.raises(ValueError, match="known_ratios is not supported by attribute_pairs"):
        sa.attribute_pairs(
            scm.graph,
            envs,
            {"source": scm.metric},
            known_ratios={"X": lambda env: scm.true_log_ratio(env, "X")},
            progress=False,
        )


def _res(x, y, **settings):
    return sa.Attribution(("X", "Y"), {"X": x, "Y": y}, {}, {}, 0.8, 0.8 - x - y, settings=settings)


def test_json_is_strict_keeps_arrow_names_and_nan():
    pw = sa.PairwiseAttribution(
        ("x -> y", "z"),
        ("X", "Y"),
        {("x -> y", "z"): _res(0.1, 0.02), ("z", "x -> y"): _res(-0.04, 0.01)},
        {("x -> y", "x -> y"): 0.8, ("x -> y", "z"): float("nan")},
    )
    text = pw.to_json()

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    json.loads(text, parse_constant=refuse)  # no bare NaN
    back = sa.PairwiseAttribution.from_json(text)
    assert back.pairs == pw.pairs
    assert back.results["x -> y", "z"].values == {"X": 0.1, "Y": 0.02}
    np.testing.assert_array_equal(back.metric_matrix(), pw.metric_matrix())  # NaN kept


def test_files_written_with_arrow_keys_still_read():
    old = {
        "environments": ["a", "b -> c"],
        "mechanisms": ["X", "Y"],
        "metric_name": "Dice",
        "results": {"a -> b -> c": _res(0.1, 0.02).to_dict()},
        "metrics": {"a -> a": 0.8, "a -> b -> c": float("nan")},
    }
    back = sa.PairwiseAttribution.from_json(json.dumps(old))
    assert back.pairs == [("a", "b -> c")]
    assert back.metrics["a", "a"] == 0.8 and np.isnan(back.metrics["a", "b -> c"])
    assert back.higher_is_better is True  # written before the direction was stored


def test_single_pair_summary_shows_no_nan():
    pw = sa.PairwiseAttribution(("a", "b"), ("X", "Y"), {("a", "b"): _res(0.1, 0.02)}, {})
    text = pw.summary()
    assert "± nan" not in text
    assert "+10.00 ± —" in text


def test_direction_decides_dominant_counts_words_and_colours():
    results = {("a", "b"): _res(0.1, -0.3), ("b", "a"): _res(-0.2, 0.05)}
    envs, mechs = ("a", "b"), ("X", "Y")
    higher = sa.PairwiseAttribution(envs, mechs, results, {}, "Dice", True)
    lower = sa.PairwiseAttribution(envs, mechs, results, {}, "loss", False)
    unknown = sa.PairwiseAttribution(envs, mechs, results, {}, "score", None)
    count = {
        name: {m: t["n_dominant"] for m, t in pw.summary_table().items()}
        for name, pw in [("higher", higher), ("lower", lower), ("unknown", unknown)]
    }
    # the largest move in the direction of the pair's total change, whichever way the
    # metric points: Y (a->b, -0.2 in total), X (b->a, -0.15)
    assert count["higher"] == count["lower"] == {"X": 1, "Y": 1}
    assert count["unknown"] == {"X": 1, "Y": 1}  # largest |value|: Y, X
    results["a", "b"] = _res(-0.3, -0.05)  # both improved a Dice (or raised a loss)
    # the largest "drop" (Y, -0.05) was counted before for the Dice
    assert higher.summary_table()["X"]["n_dominant"] == 2
    assert lower.summary_table()["X"]["n_dominant"] == 2
    assert unknown.summary_table()["X"]["n_dominant"] == 2
    assert "lower is better for loss" in lower.summary()
    assert "positive = performance drop" in higher.summary()
    assert "positive = the metric fell from source to target" in unknown.summary()
    labels = {}
    for name, pw in [("higher", higher), ("lower", lower), ("unknown", unknown)]:
        fig = pw.plot(["X"])
        labels[name] = (fig.axes[1].get_ylabel(), fig.axes[0].images[0].get_cmap().name)
        plt.close(fig)
    assert labels["higher"] == ("ΔDice (+ = drop) (×100)", "RdBu_r")  # no metric: ×100
    assert labels["lower"] == ("Δloss (+ = fell: better) (×100)", "RdBu")  # positive: blue
    assert labels["unknown"][0] == "Δscore (+ = fell) (×100)"
    assert "Rd" not in labels["unknown"][1]
    back = sa.PairwiseAttribution.from_json(lower.to_json())
    assert back.higher_is_better is False


def test_attribute_pairs_looks_the_direction_up_and_passes_it_on():
    scm = LinearGaussianSCM.example(metric="squared_error")
    envs = [scm.sample(200, "source", random_state=0), scm.sample(200, "target", random_state=1)]
    kw = {"n_bootstrap": 0, "n_folds": 3, "progress": False, "random_state": 0}
    pw = sa.attribute_pairs(scm.graph, envs, {"source": scm.metric}, metric_name="MSE", **kw)
    assert pw.higher_is_better is False
    assert pw.results["source", "target"].settings["higher_is_better"] is False
    forced = sa.attribute_pairs(
        scm.graph, envs, {"source": scm.metric}, metric_name="MSE", higher_is_better=True, **kw
    )
    assert forced.higher_is_better is True
    assert forced.results["source", "target"].settings["higher_is_better"] is True


def test_the_scale_of_the_heatmaps_and_summary_follows_the_metric_and_is_shown():
    """A distance was multiplied by 100 without a word: HD95 5.3 read 530."""

    def sweep(metric, value, name):
        return sa.PairwiseAttribution(
            ("a", "b"),
            ("X",),
            {("a", "b"): sa.Attribution(("X",), {"X": value}, {}, {}, metric, metric - value)},
            {("a", "a"): metric, ("a", "b"): metric - value, ("b", "b"): metric},
            metric_name=name,
            higher_is_better=name == "dice",
        )

    hd = sweep(5.3, -1.2, "hausdorff95")
    fig = hd.plot()
    ax = fig.axes[0]
    assert ax.get_title() == "X: hausdorff95; Δ"
    assert sorted(t.get_text() for t in ax.texts) == ["", "5.3", "5.3", "6.5; -1.2"]
    plt.close(fig)
    assert "(×" not in hd.summary().splitlines()[0]
    dice = sweep(0.8, 0.1, "dice")
    fig = dice.plot()
    assert fig.axes[0].get_title() == "X: dice; Δ (×100)"
    assert "×100" in fig.axes[1].get_ylabel()  # the colour bar
    plt.close(fig)
    assert dice.summary().splitlines()[0].endswith("(×100)")
    assert "(×10)" in dice.summary(scale=10).splitlines()[0]


def test_a_metric_beyond_one_keeps_its_small_changes_visible_and_old_sweeps_their_direction():
    pw = sa.PairwiseAttribution(
        ("a", "b"),
        ("X", "Y"),
        {("a", "b"): _res(0.004, -0.002), ("b", "a"): _res(0.003, 0.001)},
        {("a", "a"): 1.2, ("a", "b"): 1.198, ("b", "b"): 1.25, ("b", "a"): 1.246},
        metric_name="cross_entropy",
        higher_is_better=False,
    )
    line = next(row for row in pw.summary().splitlines() if row.startswith("X"))
    assert "+0.0035 ± 0.000707" in line  # printed "+0.00 ± 0.00"
    old = json.loads(pw.to_json())
    del old["higher_is_better"]
    old["metric_name"] = "hausdorff95"  # a sweep saved before the direction was stored
    assert sa.PairwiseAttribution.from_json(json.dumps(old)).higher_is_better is False
