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
    pw = sa.attribute_pairs(
        scm.graph,
        [a, b, c],
        {"source": scorer_for("source"), "target": scorer_for("target")},
        estimators=dict.fromkeys("ZXY", est),
        n_bootstrap=0,
        n_folds=3,
        progress=False,
        random_state=0,
        metric_name="hit",
    )
    return pw, calls


def test_pairs_matrices_and_scoring_cache(sweep):
    pw, calls = sweep
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
    pw, _ = sweep
    table = pw.summary_table()
    ys = [r.values["Y"] for r in pw.results.values()]
    assert table["Y"]["mean"] == pytest.approx(np.mean(ys))
    assert table["Y"]["sd"] == pytest.approx(np.std(ys, ddof=1))
    assert table["Y"]["n_pairs"] == 4
    text = pw.summary()
    assert "mean ± sd" in text and "positive = performance drop" in text


def test_only_y_shift_is_attributed_to_y(sweep):
    pw, _ = sweep
    r = pw.results["source", "y-only"]
    assert r.dominant == "Y"
    assert abs(r.values["Z"]) < 0.02 and abs(r.values["X"]) < 0.02


def test_plot_and_json_roundtrip(sweep, tmp_path):
    pw, _ = sweep
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
