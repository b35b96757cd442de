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


def test_report_of_a_result_read_back_from_json_with_a_paired_mechanism(tmp_path):
    # a paired mechanism has no discriminator: auc_joint NaN, null in JSON; the report
    # of the file (what `shiftattr report attribution.json` does) must still draw it
    res = _result()
    res.diagnostics["mechanisms"]["Y"].update(auc_joint=float("nan"), pareto_k=float("nan"))
    res.to_json(tmp_path / "attribution.json")
    back = sa.Attribution.from_json(tmp_path / "attribution.json")
    page = write_report(back, tmp_path / "report")
    assert (tmp_path / "report" / "diagnostics.png").exists()
    assert back.summary() == res.summary()
    assert "<td>—</td>" in page.read_text(encoding="utf-8")


def test_html_shows_the_closure_interval_the_ess_and_the_value_estimator(tmp_path):
    res = _result()
    res.closure_ci = (-0.03, 0.01)
    res.diagnostics["estimator"] = {"paired": ["Y"]}
    html = write_report(res, tmp_path, figures=False).read_text(encoding="utf-8")
    assert "closure error -0.0100, CI [-0.0300, +0.0100]" in html
    assert "ESS, all mechanisms shifted: 40 of 100 (40.0%)" in html
    assert "value estimator: importance weighting; substituted: Y" in html
    text = res.summary()  # the same words as the summary's
    assert "closure error -0.0100, CI [-0.0300, +0.0100]" in text
    assert "40 of 100 (40.0%)" in text and "substituted: Y" in text


def test_report_words_follow_the_metric_direction(tmp_path):
    res = _result()
    res.settings.update(metric_name="hausdorff95", higher_is_better=False)
    html = write_report(res, tmp_path, figures=False).read_text(encoding="utf-8")
    assert "lower is better for hausdorff95" in html and "total change" in html
    assert "performance drop" not in html and "total drop" not in html
    data = json.loads((tmp_path / "attribution.json").read_text(encoding="utf-8"))
    assert "lower is better" in data["sign_convention"]


def test_report_files_are_utf8_whatever_the_locale(tmp_path):
    # an ASCII locale (LC_ALL=C without UTF-8 mode): the page's "→" and "—" and a
    # mechanism named "Ÿ" must still be written, as UTF-8
    import os
    import subprocess
    import sys

    # the child's command line must be ASCII under that locale: non-ASCII text as escapes
    code = (
        "import sys, locale, shiftattr as sa\n"
        "from shiftattr.report import write_report\n"
        "assert locale.getpreferredencoding(False).lower() not in ('utf-8', 'utf8')\n"
        "m, name = '\\u0178', 'Dice \\u2192 \\u2265'\n"
        "res = sa.Attribution(mechanisms=(m,), values={m: 0.1}, ci={m: (0.0, 0.2)},\n"
        "    stderr={m: 0.05}, source_metric=0.8, estimated_target_metric=0.7,\n"
        "    settings={'metric_name': name})\n"
        "write_report(res, sys.argv[1], figures=False)\n"
        "print(sa.Attribution.from_json(sys.argv[1] + '/attribution.json').metric_name == name)\n"
    )
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}
    env["PYTHONCOERCECLOCALE"] = "0"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "True"
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<td>Ÿ</td>" in page and "Dice → ≥" in page
    assert (tmp_path / "attribution.csv").read_text(encoding="utf-8").splitlines()[1][0] == "Ÿ"


def test_a_truth_left_by_an_earlier_run_is_never_shown_with_another_result(tmp_path, capsys):
    """A run without a truth into a folder holding an earlier run's truth.json showed
    that truth, and errors against it, as this result's (results review)."""
    from shiftattr.cli import main
    from shiftattr.report import read_truth

    write_report(_result(), tmp_path, truth={"values": {"X": 0.06, "Y": 0.0}}, figures=False)
    assert read_truth(tmp_path / "attribution.json")[0]["values"]["X"] == 0.06
    later = _result()
    later.values["X"] = 0.3
    write_report(later, tmp_path, figures=False)  # no truth: the old one is removed
    assert not (tmp_path / "truth.json").exists()
    # a truth copied in beside another result (or edited files) is not used either
    other = tmp_path / "other"
    write_report(_result(), other, truth={"values": {"X": 0.06, "Y": 0.0}}, figures=False)
    (tmp_path / "truth.json").write_text((other / "truth.json").read_text())
    truth, note = read_truth(tmp_path / "attribution.json")
    assert truth is None and "written for another result" in note
    assert main(["report", str(tmp_path / "attribution.json")]) == 0
    assert "was not used" in capsys.readouterr().err
    assert "ground truth" not in (tmp_path / "report.html").read_text()
    assert ",0.06" not in (tmp_path / "attribution.csv").read_text()
    # rebuilt from its own folder, the matching truth is shown again
    assert main(["report", str(other / "attribution.json")]) == 0
    assert "+0.0600" in (other / "report.html").read_text()


def test_the_ess_panel_says_what_its_percentages_are_of():
    """For method="mis" the ESS fraction is of the source's and the target's cases
    together; the panel said "% of source" (an ESS of 520 over 300 source cases was
    drawn as 87 %; results review)."""
    from shiftattr.report import _weighted_cases

    res = _result()
    assert _weighted_cases(res) == "source cases"
    res.diagnostics["overall"] |= {"n_source": 300, "n_weighted": 600}
    assert _weighted_cases(res) == "source + target cases"
    res.diagnostics["overall"]["n_weighted"] = 300
    assert _weighted_cases(res) == "source cases"


def test_figure_labels_are_drawn_as_written():
    """A '$' in a name started a matplotlib formula ("from $5 to $10" was drawn as
    "from 5to10"), and six or long names overlapped side by side (results review)."""
    import matplotlib.pyplot as plt

    names = ("price $5", "a very long mechanism name", "C", "D", "E", "F")
    res = sa.Attribution(
        mechanisms=names,
        values=dict.fromkeys(names, 0.01),
        ci=dict.fromkeys(names, (0.0, 0.02)),
        stderr=dict.fromkeys(names, 0.005),
        source_metric=0.8,
        estimated_target_metric=0.74,
        settings={"source": "$5", "target": "$10"},
    )
    ax = res.plot()
    ax.figure.canvas.draw()
    assert ax.get_title() == r"\$5 → \$10"  # a literal dollar for the renderer
    ticks = ax.get_xticklabels()
    assert ticks[0].get_text() == r"price \$5" and ticks[0].get_rotation() == 30
    lines = res.summary().splitlines()
    header = next(x for x in lines if x.startswith("mechanism"))
    row = next(x for x in lines if x.startswith("a very long"))
    assert header.index("value") + 5 == row.index("+0.0100") + 7  # columns stay aligned
    plt.close(ax.figure)
    pair = sa.Attribution(("X",), {"X": 0.1}, {}, {}, 0.8, 0.7)
    pw = sa.PairwiseAttribution(
        ("$a", "b$"), ("X",), {("$a", "b$"): pair}, {("$a", "b$"): 0.7, ("$a", "$a"): 0.8}
    )
    fig = pw.plot()
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [r"\$a", r"b\$"]
    plt.close(fig)


def test_fixed_bootstrap_intervals_carry_a_note_in_the_summary_and_the_report(tmp_path):
    """Fixed intervals leave out the ratios' error: a tabular review found iw and mis
    with fixed intervals excluding the truth in up to half the runs with no warning, and
    the summary said only "(fixed)"."""
    res = _result()
    assert "note: fixed bootstrap" not in res.summary()
    res.settings |= {"bootstrap": "fixed", "n_bootstrap": 100}
    assert "note: fixed bootstrap: the fitted ratios (and regressions) are held fixed" in (
        res.summary()
    )
    page = write_report(res, tmp_path, figures=False).read_text()
    assert "<b>Note</b>: fixed bootstrap" in page
    res.settings["bootstrap"] = "refit"
    assert "note:" not in res.summary()


def test_a_closure_interval_wider_than_the_measured_change_is_called_a_weak_check(tmp_path):
    """A passed check that would pass an estimate missing most of the change read like
    evidence (a tabular review: closure error 38 % of the total, no warning, 80 target
    cases)."""
    res = _result()  # source 0.80, measured 0.75: a change of 0.05
    res.closure_ci = (-0.04, 0.03)  # 0.07 wide, holds 0
    assert "a weak check" in res.summary()
    assert "a weak check" in write_report(res, tmp_path, figures=False).read_text()
    res.closure_ci = (-0.02, 0.02)  # narrower than the change: a real check
    assert "weak" not in res.summary()
    res.closure_ci = (0.01, 0.09)  # excludes 0: it failed, which is not weak
    assert "weak" not in res.summary()
