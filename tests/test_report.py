import json

import numpy as np

import shiftattr as sa
from shiftattr.report import write_report


def _result():
    return sa.Attribution(
        mechanisms=("X", "Y"),
        values={"X": 0.05, "Y": 0.01},
        ci={"X": (0.02, 0.08), "Y": (-0.01, 0.03)},
        stderr={"X": 0.015, "Y": 0.01},
        source_metric=0.8,
        estimated_target_metric=0.74,
        measured_target_metric=0.75,
        closure_error=-0.01,
        diagnostics={
            "mechanisms": {
                m: {
                    "auc_joint": 0.8,
                    "auc_parents": None,
                    "ess": 50.0,
                    "ess_fraction": 0.5,
                    "max_weight": 4.0,
                    "pareto_k": 0.83 if m == "X" else 0.21,
                    "frac_truncated": 0.0,
                }
                for m in ("X", "Y")
            },
            "overall": {"ess_all": 40.0, "ess_all_fraction": 0.4, "n_source": 100},
        },
        warnings=[{"code": "low_ess", "mechanism": "X", "message": "few <cases>"}],
        settings={"metric_name": "Dice", "source": "a", "target": "b"},
        bootstrap_values=np.zeros((3, 2)),
    )


def test_report_folder_contents(tmp_path):
    truth = {"values": {"X": 0.06, "Y": 0.0}, "n": 100}
    page = write_report(_result(), tmp_path, truth=truth)
    names = {p.name for p in tmp_path.iterdir()}
    assert {
        "attribution.json",
        "attribution.csv",
        "attribution.png",
        "diagnostics.png",
        "truth.json",
        "report.html",
    } <= names
    html = page.read_text()
    assert "data:image/png;base64," in html  # self-contained
    assert "few &lt;cases&gt;" in html  # escaped
    assert "+0.0600" in html and "-0.0100" in html  # truth and error columns
    assert "<th>Pareto k</th>" in html and "<td>0.83</td>" in html
    rows = (tmp_path / "attribution.csv").read_text().splitlines()
    assert rows[0].startswith("mechanism,value,ci_low")
    assert json.loads((tmp_path / "truth.json").read_text())["values"]["X"] == 0.06
    assert sa.Attribution.from_json(tmp_path / "attribution.json").values == _result().values


def test_summary_mentions_sign_and_warnings():
    text = _result().summary()
    assert "positive = performance drop" in text
    assert "[low_ess]" in text
    assert "closure error" in text


def test_plot_draws_intervals_that_exclude_the_estimate():
    res = _result()
    res.ci["Y"] = (0.02, 0.03)  # a percentile interval above the point estimate 0.01
    ax = res.plot()
    segments = ax.collections[0].get_segments()
    assert [tuple(s[:, 1]) for s in segments][1] == (0.02, 0.03)


def test_interval_column_names_its_level_and_kind(tmp_path):
    plain = write_report(_result(), tmp_path / "plain").read_text()
    assert "<th>95% CI</th>" in plain and "bias-aware" not in plain
    res = _result()
    res.settings.update(confidence=0.9, interval="bias_aware")
    aware = write_report(res, tmp_path / "aware").read_text()
    assert "<th>90% CI (bias-aware)</th>" in aware


def test_dominant_is_settled_only_when_its_interval_clears_the_others():
    res = _result()  # X 0.05 [0.02, 0.08], Y 0.01 [-0.01, 0.03]
    assert res.dominant == "X" and not res.dominant_settled  # 0.02 < 0.03: overlap
    res.ci["Y"] = (-0.01, 0.015)
    assert res.dominant_settled
    res.warnings.append({"code": "narrow_interval", "mechanism": None, "message": "..."})
    assert not res.dominant_settled  # intervals known to be too narrow settle nothing
    res.warnings.pop()
    res.ci["X"] = (float("nan"), float("nan"))  # no interval: nothing is settled
    assert not res.dominant_settled
    one = sa.Attribution(
        mechanisms=("X",),
        values={"X": 0.05},
        ci={"X": (0.02, 0.08)},
        stderr={"X": 0.01},
        source_metric=0.8,
        estimated_target_metric=0.75,
    )
    assert one.dominant_settled  # nothing to separate it from
