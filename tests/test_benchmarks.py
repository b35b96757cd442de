"""The benchmark suite imports and its pure-numpy parts run in their tiniest configuration."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the suite is a top-level package next to src/
    sys.path.insert(0, str(REPO))

MODULES = [
    "benchmarks._common",
    "benchmarks.games",
    "benchmarks.scms",
    "benchmarks.solvers",
    "benchmarks.accuracy_tabular",
    "benchmarks.dowhy_attribution",
    "benchmarks.scaling",
    "benchmarks.metrics_peer",
    "benchmarks.synthetic_ms",
    "benchmarks.plots",
    "benchmarks.report",
    "benchmarks.run",
    "benchmarks.bench_demo_seeds",
    "benchmarks.bench_ratio_information",
    "benchmarks.bench_image_statistics_memory",
    "benchmarks.bench_volume_scaling",
    "benchmarks.bench_metric_range",
    "benchmarks.bench_saved_probabilities",
]


@pytest.mark.parametrize("name", MODULES)
def test_modules_import(name):
    module = importlib.import_module(name)
    assert module.__doc__


def test_scaling_bootstrap_study_runs_both_routes_on_tiny_sizes():
    """The fixed-bootstrap timing study imports the library's bootstrap inside the
    function (an import test cannot see it) and compares its two routes."""
    from benchmarks import scaling

    out = scaling.bootstrap([40], [40], n_boot=3, repeats=1)
    assert [r["method"] for r in out["rows"]] == ["iw", "mr"]
    assert all(r["max_abs_difference"] < 1e-9 for r in out["rows"])


def test_unanimity_game_values_are_exact():
    from benchmarks.games import unanimity_game

    from shiftattr.shapley import ExactShapley, Game

    game = unanimity_game(6, n_terms=8, seed=3)
    sv = ExactShapley().solve(Game(game.players, game.value_fn))
    np.testing.assert_allclose(sv.values, game.exact, atol=1e-12)


def test_cpu_identity_tells_cpus_with_one_name_apart():
    from benchmarks._common import cpu_identity, machine_info

    info = "processor\t: {p}\ncpu family\t: 25\nmodel\t\t: {m}\nstepping\t: 1\nflags\t\t: {f}\n"
    milan = cpu_identity(info.format(p=0, m=1, f="fpu sse2 avx2 fma"))
    genoa = cpu_identity(
        info.format(p=0, m=17, f="fpu avx2 avx512f") + info.format(p=1, m=99, f="fpu")
    )
    assert milan["family"] == genoa["family"] == "25"
    assert (milan["model"], milan["vector_isa"]) == ("1", "avx2")
    assert (genoa["model"], genoa["vector_isa"]) == ("17", "avx512")  # first processor's
    assert cpu_identity("")["vector_isa"] is None
    assert set(machine_info()["cpu_identity"]) == {
        "family",
        "model",
        "stepping",
        "vector_isa",
        "torch_capability",
    }


def test_solver_comparison_json_structure(tmp_path):
    from benchmarks import solvers
    from benchmarks._common import write_json
    from benchmarks.games import iw_bench_game, unanimity_game

    games = [unanimity_game(6, n_terms=8, seed=0), iw_bench_game(6, n_samples=500, seed=0)]
    names = ["shiftattr", "shiftattr_random", "shiftattr_plain", "shapiq_permutation"]
    out = solvers.rmse_comparison(games, {g.name: [20, 40] for g in games}, 2, names)
    path = write_json("solvers_test", {"rmse": out}, results_dir=tmp_path)
    data = json.loads(path.read_text())
    assert {"benchmark", "date", "machine", "rmse"} <= set(data)
    assert data["machine"]["cpu_count"] >= 1
    rmse = data["rmse"]
    assert set(rmse["games"]) == {g.name for g in games}
    for game in rmse["games"].values():
        assert [r["budget"] for r in game["budgets"]] == [20, 40]
        for row in game["budgets"]:
            ours = row["shiftattr"]
            assert ours["rmse"] >= 0 and ours["mean_evaluations"] <= row["budget"]
            peer = row["shapiq_permutation"]
            if peer.get("status") == "skipped":  # shapiq not installed
                assert rmse["solvers"]["shapiq_permutation"]["status"] == "skipped"
            else:
                assert peer["mean_evaluations"] <= row["budget"]
                assert row["ratio_vs_shapiq_permutation"] > 0
                assert row["ratio_random_vs_shapiq_permutation"] > 0
    assert set(rmse["target"]) >= {"rule", "n_comparisons", "n_met", "met"}
    from benchmarks._common import peer_available

    if peer_available("shapiq"):  # the opt-in sampler is judged against shapiq too
        assert rmse["target_random"]["solver"] == "shiftattr_random"


def test_simulated_truth_is_efficient_and_null_player_is_zero():
    from benchmarks.scms import logistic_interaction

    scm = logistic_interaction()
    truth = scm.truth(n=2_000, chunk=1_000)
    assert sum(truth.values.values()) == pytest.approx(truth.total, abs=1e-12)
    assert truth.values["X3"] == pytest.approx(0.0, abs=1e-12)  # unshifted mechanism
    env = scm.sample(50, "source", random_state=0)
    assert np.all(scm.true_log_ratio(env, "X3") == 0)
    assert scm.metric(env).shape == (50,)


def test_report_writes_markdown_from_results(tmp_path):
    from benchmarks import report
    from benchmarks._common import write_json

    write_json(
        "metrics",
        {"n_cases": 2, "shape": [4, 4, 4], "repeats": 1, "dice_batch_cases_per_s": 10.0},
        results_dir=tmp_path,
    )
    out = report.write(results_dir=tmp_path, out=tmp_path / "RESULTS.md")
    text = out.read_text()
    assert "## 3. Metric throughput vs MONAI" in text
    assert "## 5. Synthetic MS validation" in text
    assert "## 1. Attribution accuracy on tabular SCMs\n\nNot run." in text


def test_refit_variants_compare_intervals_on_the_same_runs():
    from benchmarks import bench_synthetic_ms as bench

    assert bench.base_method("mr+refit") == "mr" and bench.bootstrap_mode("mr+refit") == "refit"
    assert bench.base_method("iw+paired") == "iw" and bench.bootstrap_mode("iw") == "fixed"
    assert "iw+refit" not in bench.DEFAULT_ESTIMATORS  # opt-in: n_bootstrap fits per run

    def run(estimator, seed, lo, hi):
        return {
            "ok": True,
            "scenario": "acq",
            "n": 100,
            "seed": seed,
            "estimator": estimator,
            "seconds": 1.0 if estimator == "iw" else 30.0,
            "covered": {m: lo <= 0.05 <= hi for m in "DXY"},
            "ci": {m: [lo, hi] for m in "DXY"},
        }

    runs = [
        run("iw", 0, 0.0, 0.02),  # misses 0.05
        run("iw", 1, 0.0, 0.02),  # no refit twin: must not count
        run("iw+refit", 0, -0.02, 0.08),  # covers
        run("mr", 0, 0.0, 0.02),  # an mr run without an mr+refit twin
    ]
    cells, text = _variant_row(runs, "+refit", 100, ("acq", "other"))
    assert "coverage, `iw+refit`" in text
    assert cells[2:4] == ["0%", "100%"]  # coverage fixed vs refit, seed 0 only
    assert cells[4:6] == ["0.02", "0.1"]  # mean widths
    assert _variant_row(runs[:2], "+refit", 100) == (None, "")  # no refit twin at all


def test_rescoring_replaces_every_truth_dependent_field():
    from benchmarks import bench_synthetic_ms as bench

    rec = {
        "ok": True,
        "values": {"D": 0.0, "X": 0.05, "Y": 0.01},
        "ci": {"D": [-0.01, 0.01], "X": [0.02, 0.08], "Y": [-0.02, 0.04]},
        "dominant_estimated": "X",
        "warnings": [],
        "flagged": False,
    }
    rough = {
        "values": {"D": 0.0, "X": 0.09, "Y": 0.0},
        "stderr": {"D": 0.0, "X": 0.01, "Y": 0.0},
        "dominant": "X",
    }
    bench.score_run(rec, rough)
    assert rec["covered"] == {"D": True, "X": False, "Y": True}
    assert rec["max_abs_error"] == pytest.approx(0.04) and rec["error_above_threshold"]
    assert rec["dominant_right"] is True
    precise = {
        "values": {"D": 0.0, "X": 0.06, "Y": 0.03},
        "stderr": {"D": 0.0, "X": 0.002, "Y": 0.002},
        "dominant": None,
    }
    bench.score_run(rec, precise)
    assert rec["truth"] == precise["values"] and rec["truth_se"] == precise["stderr"]
    assert rec["covered"] == {"D": True, "X": True, "Y": True}
    assert rec["abs_error"] == pytest.approx({"D": 0.0, "X": 0.01, "Y": 0.02})
    assert rec["mae"] == pytest.approx(0.01) and not rec["error_above_threshold"]
    assert rec["dominant_true"] is None and rec["dominant_right"] is None
    assert rec["warnings"] == [] and not rec["flagged"]  # what the run reported is kept
    # tolerance=0.02 would have warned about the intervals reaching 0.03 from the value
    assert rec["imprecise"] == ["X", "Y"] and rec["flagged_with_tolerance"]


def test_section_5d_shows_the_shipped_runs_beside_section_5s(tmp_path):
    from benchmarks import report
    from benchmarks.bench_synthetic_ms import summarise

    def run(estimator, n, seed, mae, flagged):
        return {
            **_ms_run(estimator, "acq", n, seed, mae),
            "max_abs_error": 2 * mae,
            "error_above_threshold": 2 * mae > 0.02,
            "flagged": flagged,
            "dominant_right": True,
            "covered": {"D": True, "X": mae < 0.02, "Y": True},
            "truth": {"D": 0.0, "X": 0.1, "Y": 0.0},
            "truth_se": {"D": 0.0, "X": 0.002, "Y": 0.0},
            "seconds": 2.0,
            "ess_all_fraction": 0.5,
            "auc_joint": {"D": 0.5, "X": 0.7, "Y": 0.5},
            "values": {"D": 0.0, "X": 0.1, "Y": 0.0},
            "abs_error": {"D": 0.0, "X": mae, "Y": 0.0},
            "warnings": [],
        }

    def payload(runs, digest):
        return {
            "date": "2026-12-01T04:00:00+00:00",
            "command": "bench_synthetic_ms.py --quick",
            "seconds": 10.0,
            "config": {
                "shape": [16, 16, 16],
                "sizes": [100, 300],
                "seeds": [0, 1],
                "n_folds": 3,
                "n_bootstrap": 50,
                "truth_se_target": 0.0025,
                "truth_n_max": 16000,
            },
            "model": {"per_center": {"01": {"weights_sha256_16": digest}}},
            "scenarios": {
                "acq": {
                    "shifted": ["X"],
                    "truth": {
                        "values": {"D": 0.0, "X": 0.1, "Y": 0.0},
                        "stderr": {"D": 0.0, "X": 0.002, "Y": 0.0},
                        "source_metric": 0.7,
                        "target_metric": 0.6,
                    },
                }
            },
            "overall": summarise(runs, ("estimator", "n")) + summarise(runs, ("estimator",)),
            "mr_vs_iw": [
                {
                    "mr": "mr",
                    "iw": "iw",
                    "n": 300,
                    "ratio": 1.5,
                    "n_runs": 2,
                    "target_ratio": 2.0,
                    "met": False,
                }
            ],
            "merged": [{"command": "bench --merge", "n_runs": 2, "date": "2026-12-01"}],
        }

    shipped = payload(
        [run("mr", n, seed, 0.004 * (1 + seed), seed == 1) for n in (100, 300) for seed in (0, 1)],
        "b18905a52e0942b7",
    )
    old = payload([run("mr", 300, 0, 0.03, True)], "fc7b11cbd4b70bd2")
    text = report._synthetic_ms_shipped(shipped, old)
    assert text.startswith("### 5d.")
    # section 5's (lost) weights are named first, the kept ones after
    assert 0 < text.index("`fc7b11cbd4b70bd2`") < text.index("`b18905a52e0942b7`")
    rows = [line for line in text.splitlines() if line.startswith("| `mr`")]
    assert len(rows) == 2  # one per N, not the row over both sizes
    n100, n300 = ([c.strip() for c in row.strip("|").split("|")] for row in rows)
    assert n100[1:3] == ["100", "2"] and n100[-1] == "—"  # section 5 has no N = 100 run
    assert n300[3].startswith("0.006 ±") and n300[-1].startswith("0.03;")
    assert "`mr` vs `iw` at N = 300: 1.5×" in text and "Merged into these results" in text
    assert report._synthetic_ms_shipped(None, old) == ""
    # the report places it, with its MR-vs-IW rows in the Targets table
    (tmp_path / "synthetic_ms_shipped.json").write_text(json.dumps(shipped))
    written = report.write(results_dir=tmp_path, out=tmp_path / "RESULTS.md").read_text()
    assert "### 5d. Synthetic MS on the segmenters the repository holds" in written
    assert "| Synthetic MS on the segmenters kept (section 5d), N = 300: `mr`" in written


def _variant_row(runs, suffix, n, scenarios=("acq",)):
    """The cells of the ``acq`` row of the ``<method><suffix>`` comparison table of
    section 5, and the table's text; ``(None, "")`` when there is no table."""
    from benchmarks import report

    ms = {"scenarios": {s: {} for s in scenarios}, "config": {"sizes": [n]}, "runs": runs}
    text = "\n".join(report._ms_variant_table(ms, suffix))
    if not text:
        return None, text
    row = next(line for line in text.splitlines() if line.startswith("| acq"))
    return [c.strip() for c in row.strip("|").split("|")], text


def _ms_run(estimator, scenario, n, seed, mae):
    return {
        "ok": True,
        "scenario": scenario,
        "n": n,
        "seed": seed,
        "estimator": estimator,
        "mae": mae,
    }


def test_outputs_variants_are_compared_on_the_runs_every_column_made():

    def run(estimator, seed, mae):
        return {
            **_ms_run(estimator, "acq", 100, seed, mae),
            "dominant_right": mae < 0.02,
            "covered": {"X": mae < 0.02},
        }

    runs = [run(e, 0, m) for e, m in (("iw", 0.04), ("iw+outputs", 0.01), ("mr", 0.03))]
    runs += [run("mr+outputs", 0, 0.01), run("iw", 1, 0.5)]  # seed 1: iw alone, left out
    cells, _ = _variant_row(runs, "+outputs", 100)
    assert cells[2:6] == ["0.04", "0.01", "0.03", "0.01"]  # MAE: iw, iw+outputs, mr, mr+outputs
    assert cells[6:8] == ["0%", "100%"]  # dominant right, iw and iw+outputs
    # no (scenario, N, seed) that every column ran: no table at all
    apart = [run("iw", 0, 0.04), run("iw+outputs", 1, 0.01)]
    assert _variant_row(apart, "+outputs", 100) == (None, "")


def test_mr_vs_iw_ratio_uses_the_runs_both_made():
    from benchmarks import bench_synthetic_ms as bench
    from benchmarks import report

    runs = [
        _ms_run("iw", "a", 300, 0, 0.04),
        _ms_run("mr", "a", 300, 0, 0.02),
        _ms_run("iw", "b", 300, 0, 0.10),  # no mr twin: left out
        _ms_run("mr", "a", 100, 0, 0.50),  # another N: left out
        _ms_run("mr+outputs", "a", 300, 0, 0.03),
    ]
    rows = bench.mr_vs_iw(runs)
    assert [(r["mr"], r["iw"]) for r in rows] == [("mr", "iw"), ("mr+outputs", "iw")]
    assert rows[0]["ratio"] == pytest.approx(2.0) and rows[0]["met"] and rows[0]["n_runs"] == 1
    assert not rows[1]["met"]
    table = report._ms_mr_vs_iw({"mr_vs_iw": rows})
    # one run per scenario: resampling it changes nothing
    assert rows[0]["ratio_interval"] == pytest.approx((2.0, 2.0))
    assert table[0][1] == "2× (95 % over seeds: 2–2) (1 runs each)"
    assert table[1][2] == "**no**"
    assert (
        "over seeds"
        not in report._ms_mr_vs_iw({"mr_vs_iw": [{**rows[0], "ratio_interval": None}]})[0][1]
    )


def test_git_state_keeps_the_first_letter_of_modified_files(monkeypatch):
    import subprocess

    from benchmarks import _common

    def fake_run(args, **kwargs):
        out = (
            "abc1234\n"
            if "rev-parse" in args
            else " M src/a.py\n?? src/b.py\n M benchmarks/bench_x.py\n"
        )
        return subprocess.CompletedProcess(args, 0, stdout=out, stderr="")

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert _common.git_state() == {
        "commit": "abc1234",
        "modified_src_files": ["src/a.py", "src/b.py"],
        "modified_benchmark_files": ["benchmarks/bench_x.py"],
    }


def test_repeats_variants_pass_n_repeats_and_are_compared_on_shared_runs():
    from benchmarks import bench_synthetic_ms as bench

    assert bench.attribute_kwargs("mr+repeats", object())["n_repeats"] == bench.N_REPEATS
    assert "n_repeats" not in bench.attribute_kwargs("mr", object())
    assert "iw+repeats" not in bench.DEFAULT_ESTIMATORS  # opt-in: N_REPEATS fits per run
    assert bench.base_method("iw+repeats") == "iw"

    def run(estimator, seed, mae, flagged):
        repeats = "+" in estimator
        return {
            **_ms_run(estimator, "acq", 300, seed, mae),
            "values": {"X": 0.1, "Y": 0.0},
            "covered": {"X": mae < 0.02},
            "error_above_threshold": mae > 0.02,
            "flagged": flagged,
            "warnings": ["split_unstable:X"] if repeats else ["low_ess"],
            # widening factors sqrt(1 + ratio^2) for ratios 0.75 and 2.4: median 1.575
            "repeats": {"interval_factor": {"X": 1.25, "Y": 2.6}} if repeats else None,
            "seconds": 10.0 if repeats else 2.0,
        }

    runs = [run("iw", 0, 0.04, False), run("iw+repeats", 0, 0.03, True), run("iw", 1, 0.5, False)]
    cells, _ = _variant_row(runs, "+repeats", 300)
    # MAE, coverage, flagged of error > 0.02, split_unstable, split s.d. / bootstrap s.e.,
    # time, each for iw then iw+repeats; seed 1 has no twin and is left out
    assert cells[2:] == [
        *("0.04", "0.03", "0%", "0%", "0 of 1", "1 of 1"),
        *("0 of 2", "1 of 2", "—", "1.6", "2 s", "10 s"),
    ]


def test_biasaware_variant_passes_the_interval_and_is_compared_on_shared_runs():
    from benchmarks import bench_synthetic_ms as bench

    assert bench.attribute_kwargs("mr+biasaware", object())["interval"] == "bias_aware"
    assert bench.attribute_kwargs("mr", object())["interval"] == "bootstrap"
    assert "mr+biasaware" not in bench.DEFAULT_ESTIMATORS  # opt-in: the same values as mr
    assert bench.base_method("mr+biasaware") == "mr"

    def run(estimator, seed, lo, hi, covered):
        return {
            **_ms_run(estimator, "acq", 300, seed, 0.03),
            "values": {"X": 0.1, "Y": 0.0},
            "ci": {"X": [lo, hi], "Y": [-0.01, 0.01]},
            "truth": {"X": 0.1, "Y": 0.0},
            "covered": {"X": covered},
            "error_above_threshold": True,
            "flagged": True,
            "seconds": 2.0,
        }

    runs = [
        run("mr", 0, 0.08, 0.12, False),
        run("mr+biasaware", 0, 0.0, 0.2, True),
        run("mr", 1, 0.0, 1.0, True),  # no twin: left out
    ]
    cells, _ = _variant_row(runs, "+biasaware", 300)
    # coverage, mean CI width, largest drop separated (right), flagged of error > 0.02,
    # time; each for mr then mr+biasaware
    assert cells[2:] == [
        *("0%", "100%", "0.03", "0.11", "1 of 1 (1 right)", "0 of 1 (0 right)"),
        *("1 of 1", "1 of 1", "2 s", "2 s"),
    ]


def test_value_estimator_interval_summary_reports_coverage_and_width_per_n():
    from benchmarks import report

    def run(method, n, lo, hi, covered):
        return {
            "ok": True,
            "method": method,
            "n": n,
            "ci": {"X": [lo, hi]},
            "covered": {"X": covered},
        }

    runs = [
        run("mr", 100, 0.0, 0.1, True),
        run("mr", 300, 0.0, 0.3, False),
        run("mr_biasaware", 100, 0.0, 0.5, True),
        {"ok": True, "method": "dowhy_mr_default", "n": 100},  # no intervals: no line
    ]
    lines = report._ve_interval_summary(runs)
    assert lines[2] == "- shiftattr MR: N = 100: 100%, 0.1; N = 300: 0%, 0.3; all N: 50%, 0.2"
    assert lines[3] == "- shiftattr MR, bias-aware interval: N = 100: 100%, 0.5; all N: 100%, 0.5"
    assert not any("DoWhy" in line for line in lines)
    assert report._ve_interval_summary(runs[3:]) == []


def test_pooled_variant_passes_the_option_and_is_compared_with_mr():
    from benchmarks import bench_synthetic_ms as bench

    assert bench.attribute_kwargs("mr+pooled", object())["pooled_regressions"] is True
    assert bench.attribute_kwargs("mr", object())["pooled_regressions"] is False  # explicit
    assert bench.attribute_kwargs("mr+pooled", object())["interval"] == "bootstrap"
    assert "mr+pooled" in bench.DEFAULT_ESTIMATORS  # the library's mr on images
    assert "mr+pooled+cnn" not in bench.DEFAULT_ESTIMATORS
    assert ("mr+pooled", "iw") in bench.MR_VS_IW_PAIRS  # the 2x target is judged for it

    def run(estimator, mae):
        return {
            **_ms_run(estimator, "acq", 300, 0, mae),
            "values": {"X": 0.1},
            "ci": {"X": [0.05, 0.15]},
            "truth": {"X": 0.1},
            "covered": {"X": True},
            "dominant_right": estimator == "mr+pooled",
            "error_above_threshold": mae > 0.02,
            "flagged": False,
            "seconds": 4.0,
        }

    cells, _ = _variant_row([run("mr", 0.03), run("mr+pooled", 0.01)], "+pooled", 300)
    # MAE, dominant, coverage, bias-aware coverage (no bound recorded here), flagged, time;
    # each for mr then mr+pooled
    assert cells[2:] == [
        *("0.03", "0.01", "0%", "100%", "100%", "100%", "—", "—"),
        *("1 of 1 (1 right)", "1 of 1 (1 right)", "0 of 1", "0 of 0", "4 s", "4 s"),
    ]
    rows = bench.mr_vs_iw([run("mr+pooled", 0.01), {**run("iw", 0.03), "estimator": "iw"}])
    assert rows == [
        {
            "mr": "mr+pooled",
            "iw": "iw",
            "n": 300,
            "n_runs": 1,
            "ratio": pytest.approx(3.0),
            "ratio_interval": pytest.approx((3.0, 3.0)),
            "target_ratio": 2.0,
            "met": True,
        }
    ]


def test_biasaware_coverage_is_rebuilt_from_the_recorded_bound():
    from benchmarks import report

    def run(truth, bound):
        return {
            "values": {"X": 0.1},
            "stderr": {"X": 0.01},
            "truth": {"X": truth},
            "bias_bound": {"X": bound} if bound is not None else None,
        }

    # half-width 0.01 * cv(5) = 0.0664: 0.16 is inside, 0.17 outside
    assert report._biasaware_coverage([run(0.16, 0.05), run(0.17, 0.05)]) == "50%"
    assert report._biasaware_coverage([run(0.16, None)]) == "—"  # no bound recorded


def test_separated_counts_only_a_real_largest_drop_as_right():
    from benchmarks import report

    def run(values, ci, truth):
        return {"values": values, "ci": ci, "truth": truth}

    ci = {"X": [0.05, 0.15], "Y": [-0.02, 0.02]}
    runs = [
        run({"X": 0.1, "Y": 0.0}, ci, {"X": 0.08, "Y": 0.0}),  # separated, right
        run({"X": 0.1, "Y": 0.0}, ci, {"X": 0.0, "Y": 0.0}),  # separated in the null: wrong
        run({"X": 0.1, "Y": 0.0}, {"X": [0.0, 0.2], "Y": [-0.02, 0.02]}, {"X": 0.1, "Y": 0}),
        run({"X": 0.1, "Y": 0.0}, {"X": [None, None], "Y": [-0.02, 0.02]}, {"X": 0.1, "Y": 0}),
    ]
    assert report._separated(runs) == "2 of 4 (1 right)"


def test_oracle_variant_passes_the_simulators_true_ratios(monkeypatch):
    """``<method>+oracle`` gives attribute the true log-ratio of every mechanism between
    the scenario's source and target, and nothing else changes."""
    from benchmarks import bench_synthetic_ms as bench

    assert "mr+oracle" not in bench.DEFAULT_ESTIMATORS  # opt-in
    assert ("mr+oracle", "iw+oracle") in bench.MR_VS_IW_PAIRS
    assert "+oracle" in __import__("benchmarks.report").report._VARIANT_TABLES
    sim = bench.make_simulator((16, 16, 16))  # with the benchmark's custom specs
    scen = next(s for s in bench.SCENARIOS if s.name == "all_three")
    known = bench.oracle_ratios(sim, scen)
    assert sorted(known) == ["D", "X", "Y"]
    env = sim.sample(5, **scen.env("source"), random_state=1)
    for node, fn in known.items():
        np.testing.assert_array_equal(
            fn(env), sim.true_log_ratio(env, node, scen.env("source"), scen.env("target"))
        )
    seen = {}

    def fake_attribute(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")  # one_run records it as a failed run

    monkeypatch.setattr(bench.shiftattr, "attribute", fake_attribute)
    rec = bench.one_run(
        scen, {}, env, env, np.zeros(5), np.zeros(5), object(), "iw+oracle", 0, 5, 0, 2, sim=sim
    )
    assert rec["ok"] is False and sorted(seen["known_ratios"]) == ["D", "X", "Y"]
    seen.clear()
    plain = bench.one_run(
        scen, {}, env, env, np.zeros(5), np.zeros(5), object(), "iw", 0, 5, 0, 2, sim=sim
    )
    assert plain["ok"] is False and "known_ratios" not in seen
    with pytest.raises(ValueError, match="needs the simulator"):
        bench.one_run(
            scen, {}, env, env, np.zeros(5), np.zeros(5), object(), "iw+oracle", 0, 5, 0, 2
        )


def test_one_node_oracle_variants_pass_only_that_nodes_true_ratio(monkeypatch):
    """``<method>+oracle-<node>`` gives attribute the true ratio of that mechanism alone;
    the other mechanisms keep their estimators (those of ``<method>``)."""
    from types import SimpleNamespace

    from benchmarks import bench_synthetic_ms as bench

    assert bench.oracle_nodes("mis+ext+outputs+oracle-Y") == ("Y",)
    assert bench.oracle_nodes("mr+oracle") == ("D", "X", "Y")
    assert bench.oracle_nodes("mis+ext+outputs") == ()
    for node in bench.MECHANISMS:
        name = f"mis+ext+outputs+oracle-{node}"
        assert name in bench.ESTIMATORS and name not in bench.DEFAULT_ESTIMATORS  # opt-in
    sim = bench.make_simulator((16, 16, 16))
    scen = next(s for s in bench.SCENARIOS if s.name == "all_three")
    env = sim.sample(5, **scen.env("source"), random_state=1)
    seen = {}

    def fake_attribute(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")

    adapter = SimpleNamespace(output_features=lambda env: np.zeros((len(env), 1)))
    assert bench.attribute_kwargs("mis+ext+outputs+oracle-Y", adapter)["method"] == "mis"
    monkeypatch.setattr(bench.shiftattr, "attribute", fake_attribute)
    rec = bench.one_run(
        scen, {}, env, env, np.zeros(5), np.zeros(5), adapter,
        "mis+ext+outputs+oracle-Y", 0, 5, 0, 2, sim=sim,
    )  # fmt: skip
    assert rec["ok"] is False and sorted(seen["known_ratios"]) == ["Y"]
    np.testing.assert_array_equal(
        seen["known_ratios"]["Y"](env),
        sim.true_log_ratio(env, "Y", scen.env("source"), scen.env("target")),
    )
    assert set(seen["estimators"]) == {"X", "Y"}  # estimated where not known, as mis+ext+outputs
    assert seen["estimators"]["X"].extra_features is not None


def test_value_estimator_methods_are_labelled_and_oracles_get_every_true_ratio(monkeypatch):
    from benchmarks import report
    from benchmarks import value_estimators as ve
    from benchmarks.scms import all_scms

    assert set(ve.METHODS) <= set(report._VE_LABELS)
    scm = all_scms()["threshold_chain"]
    source, target = scm.sample(30, "source", 0), scm.sample(30, "target", 1)
    seen = {}

    def fake_attribute(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(ve, "attribute", fake_attribute)
    with pytest.raises(RuntimeError, match="stop here"):
        ve._run_method("mr_oracle", scm, source, target, 0, {"n_bootstrap": 2})
    assert seen["method"] == "mr" and sorted(seen["known_ratios"]) == sorted(scm.graph.nodes)
    np.testing.assert_array_equal(
        seen["known_ratios"]["S"](source), scm.true_log_ratio(source, "S")
    )
    seen.clear()
    with pytest.raises(RuntimeError, match="stop here"):
        ve._run_method("regression_biasaware", scm, source, target, 0, {"n_bootstrap": 2})
    assert seen["method"] == "regression" and seen["interval"] == "bias_aware"
    seen.clear()
    with pytest.raises(RuntimeError, match="stop here"):
        ve._run_method("mis_biasaware", scm, source, target, 0, {"n_bootstrap": 2})
    assert seen["method"] == "mis" and seen["interval"] == "bias_aware"


def test_results_record_the_git_state_the_process_started_from(monkeypatch):
    """A run that outlives a commit must not claim the later commit's code."""
    import subprocess

    from benchmarks import _common

    def fake_run(args, **kwargs):
        return subprocess.CompletedProcess(args, 0, stdout="later99\n", stderr="")

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert _common.git_state()["commit"] == "later99"
    assert _common.machine_info()["git"] == _common.GIT_AT_START
    assert _common.GIT_AT_START["commit"] != "later99"


def test_ratio_interval_resamples_seeds_within_scenarios():
    from benchmarks.bench_synthetic_ms import ratio_interval

    iw = np.array([0.02, 0.04, 0.03, 0.05, 0.30, 0.32])
    mr = np.array([0.01, 0.02, 0.02, 0.02, 0.10, 0.11])
    scen = ["a", "a", "b", "b", "c", "c"]
    lo, hi = ratio_interval(scen, iw, mr)
    assert lo < iw.mean() / mr.mean() < hi
    assert ratio_interval(scen, iw, mr) == (lo, hi)  # seeded
    # every scenario keeps its runs' count: identical seeds within each give no spread
    same = np.repeat([0.02, 0.03, 0.3], 2)
    lo2, hi2 = ratio_interval(scen, same, same / 2)
    assert lo2 == pytest.approx(2.0) and hi2 == pytest.approx(2.0)
    # while resampling across scenarios would: "c" weighs far more than "a"
    lo3, hi3 = ratio_interval(scen, same, np.array([0.01, 0.01, 0.015, 0.015, 0.3, 0.3]))
    assert hi3 - lo3 < 1e-9


def test_the_repository_holds_the_segmenters_of_the_shipped_ms_results():
    # section 5's weights were cached, not kept, and retraining on another CPU generation
    # gave other ones: the results to extend must come with their weights
    import hashlib

    from benchmarks.bench_synthetic_ms import CACHE_DIR, ModelSettings
    from benchmarks.report import MS_SHIPPED_NAME

    payload = json.loads((REPO / "benchmarks" / "results" / f"{MS_SHIPPED_NAME}.json").read_text())
    per_center = payload["model"]["per_center"]
    assert set(per_center) == {"01", "08"}
    settings = ModelSettings(shape=tuple(payload["config"]["shape"]))
    for centre, record in per_center.items():
        path = CACHE_DIR / f"{settings.key(centre)}.pt"  # where the benchmark loads it from
        assert path == REPO / record["cache_file"], centre
        weights = path.read_bytes()
        assert hashlib.sha256(weights).hexdigest()[:16] == record["weights_sha256_16"], centre
    scenarios = payload["scenarios"].values()
    assert {sc["model_center"] for sc in scenarios} <= set(per_center)


def test_every_synthetic_ms_estimator_has_a_plot_colour(tmp_path):
    # a new estimator name without a colour crashed the figure after a 24-minute run
    bench = pytest.importorskip("benchmarks.bench_synthetic_ms")
    mech = dict.fromkeys(bench.MECHANISMS, 0.01)
    runs = [
        {
            "ok": True,
            "estimator": e,
            "n": 100,
            "truth": mech,
            "values": mech,
            "ci": {m: [0.0, 0.02] for m in bench.MECHANISMS},
            "flagged": False,
        }
        for e in bench.ESTIMATORS
    ]
    assert bench.plot(runs, tmp_path / "ms.png").is_file()


def test_synthetic_ms_basic_variants_pin_the_basic_statistics():
    """The runs named without ``+ext`` were measured with the basic statistics; they must
    stay so whatever the library's default (extended since 2026-11-30)."""
    from benchmarks.bench_synthetic_ms import ratio_estimators

    class _Adapter:  # the +outputs variants only pass the bound method along
        def output_features(self, env):
            return np.zeros((len(env), 1))

    cases = {
        "basic": ("iw", "mis", "iw+outputs", "iw+offset", "mr+pooled", "mis+oracle"),
        "extended": ("iw+ext", "mis+ext+outputs", "iw+ext+mic", "mis+ext+offset"),
    }
    for expected, names in cases.items():
        for name in names:
            ests = ratio_estimators(name, adapter=_Adapter(), seed=0)
            assert {e.statistics for e in ests.values()} == {expected}, name


def test_cnn_ratio_variants_use_the_command_lines_discriminator():
    pytest.importorskip("torch")
    from benchmarks import bench_synthetic_ms as bench

    from shiftattr.config import DiscriminatorConfig
    from shiftattr.ratios import CNNDiscriminator

    for name in ("iw+cnnratio", "mis+cnnratio"):
        assert name in bench.ESTIMATORS and name not in bench.DEFAULT_ESTIMATORS  # opt-in
        ests = bench.ratio_estimators(name, adapter=object(), seed=3)
        assert set(ests) == {"X", "Y"}
        for est in ests.values():
            assert isinstance(est, CNNDiscriminator)
            d = DiscriminatorConfig()
            assert (est.epochs, est.patience, est.batch_size, est.tta) == (
                d.epochs,
                d.patience,
                d.batch_size,
                d.tta,
            )
            assert tuple(est.channels) == tuple(d.channels)
            assert (est.spatial_dims, est.random_state) == (3, 3)
        assert bench.bootstrap_mode(name) == "fixed"
        assert bench.base_method(name) == name.split("+")[0]


def test_prognostic_variants_add_the_dice_and_the_self_dice_where_named():
    bench = pytest.importorskip("benchmarks.bench_synthetic_ms")
    from shiftattr import Environment

    class _Adapter:
        def output_features(self, env):
            return np.zeros((len(env), 2))

        def score(self, env):
            return np.full(len(env), 0.5)

        def predict(self, env):  # mask: the first half of each case's voxels
            mask = np.zeros((len(env), 4, 4, 4), dtype="uint8")
            mask[:, :2] = 1
            return mask

        def predict_proba(self, env):
            return np.full((len(env), 4, 4, 4), 0.8, dtype="float32")

    adapter = _Adapter()
    env = Environment({"X": np.zeros((3, 4, 4, 4))})
    plain = bench.ratio_estimators("mis+ext+outputs", adapter, seed=0)["X"].extra_features
    assert set(plain) == {"X"}
    metric = bench.ratio_estimators("mis+ext+outputs+metric", adapter, seed=0)["Y"]
    assert metric.extra_features["Y"] == adapter.score
    selfdice = bench.ratio_estimators("iw+ext+outputs+selfdice", adapter, seed=0)["X"]
    assert set(selfdice.extra_features) == {"X"}
    cols = selfdice.extra_features["X"](env)
    # 2 * sum(mask * p) / (sum(mask) + sum(p)) = 2 * 32 * 0.8 / (32 + 64 * 0.8)
    np.testing.assert_allclose(cols[:, -1], 2 * 32 * 0.8 / (32 + 64 * 0.8))
    assert cols.shape == (3, 3)
    both = bench.ratio_estimators("mis+ext+outputs+selfdice+metric", adapter, seed=0)["Y"]
    assert set(both.extra_features) == {"X", "Y"}
    for name in ("iw+ext+outputs+metric", "mis+ext+outputs+selfdice"):
        assert name in bench.ESTIMATORS and name not in bench.DEFAULT_ESTIMATORS  # opt-in


def test_contrast_variant_adds_the_contrast_at_the_predicted_lesions_for_both_ratios():
    bench = pytest.importorskip("benchmarks.bench_synthetic_ms")
    from shiftattr import Environment

    x = np.ones((3, 1, 8, 8, 8))
    x[:, 0, 2:5, 2:5, 2:5] = 1.5  # a lesion 50 % brighter than its tissue
    x[2, 0] = 1.0  # case 2: nothing to see, nothing predicted

    class _Adapter:
        def output_features(self, env):
            return np.zeros((len(env), 2))

        def predict(self, env):
            return (np.asarray(env["X"])[:, 0] > 1.2).astype("uint8")

        def predict_proba(self, env):
            return 0.9 * self.predict(env).astype("float32")

    adapter = _Adapter()
    env = Environment({"X": x})
    ratios = bench.ratio_estimators("mis+ext+outputs+contrast", adapter, seed=0)
    for node in ("X", "Y"):  # the annotation's parent set is estimated like X's
        cols = ratios[node].extra_features["X"](env)
        assert cols.shape == (3, 2 + 1 + 3 + 3) and np.isfinite(cols).all()
        np.testing.assert_array_equal(cols[:, 2], [0.0, 0.0, 1.0])  # no prediction
        np.testing.assert_allclose(cols[:2, 3], 0.5 / 2.5)  # (in - ring) / (in + ring)
        assert cols[2, 3] == 0.0  # a uniform image has no contrast
    # by hand: the probability-weighted contrast and a sharper edge along no axis
    f = bench.lesion_contrast(x[:1, 0], adapter.predict(env)[:1], adapter.predict_proba(env)[:1])
    assert f[0, 3] < f[0, 1] and f[0, 4] == pytest.approx(f[0, 5]) == pytest.approx(f[0, 6])
    plain = bench.ratio_estimators("mis+ext+outputs", adapter, seed=0)["X"]
    assert plain.extra_features["X"](env).shape == (3, 2)
    name = "mis+ext+outputs+contrast"
    assert name in bench.ESTIMATORS and name not in bench.DEFAULT_ESTIMATORS  # opt-in


def test_agreement_variants_give_the_annotation_ratio_the_masks_agreement():
    bench = pytest.importorskip("benchmarks.bench_synthetic_ms")
    from shiftattr import Environment

    class _Adapter:
        def output_features(self, env):
            return np.zeros((len(env), 2))

        def agreement_features(self, env):  # stands for the mask against the prediction
            return np.asarray(env["Y"]).reshape(len(env), -1).mean(axis=1, keepdims=True)

    adapter = _Adapter()
    y = np.zeros((2, 4, 4, 4))
    y[0, :1] = 1
    y[1, 2:] = 1
    env = Environment({"X": np.zeros((2, 4, 4, 4)), "Y": y})
    for name in ("mis+ext+outputs+vsm", "mis+ext+outputs+vsm+offset"):
        assert name in bench.ESTIMATORS and name not in bench.DEFAULT_ESTIMATORS  # opt-in
        ests = bench.ratio_estimators(name, adapter, seed=0)
        assert ests["X"].extra_features == ests["Y"].extra_features  # both estimators agree
        assert ests["Y"].extra_features == {
            "X": adapter.output_features,
            "Y": adapter.agreement_features,
        }
    assert bench.attribute_kwargs("mis+ext+outputs+vsm+offset", adapter)["conditional_ratios"] == (
        "offset"
    )
    assert "conditional_ratios" not in bench.attribute_kwargs("mis+ext+outputs+vsm", adapter)
    assert "mis+ext+outputs+offset" not in bench.DEFAULT_ESTIMATORS
    own = bench.ImageStatsRatio(statistics="extended").ratio_features({"Y": y})
    # +ychild: the annotation's offset model reads Y's statistics and the agreement only
    name = "mis+ext+outputs+ychild+offset"
    assert name in bench.ESTIMATORS and name not in bench.DEFAULT_ESTIMATORS  # opt-in
    ests = bench.ratio_estimators(name, adapter, seed=0)
    assert bench.attribute_kwargs(name, adapter)["conditional_ratios"] == "offset"
    z = ests["Y"].ratio_features(env.features(["X", "Y"]))
    np.testing.assert_allclose(z, np.c_[own, [1 / 4, 1 / 2]])
    assert ests["X"].ratio_features(env.features(["X"])).shape[1] > 0  # X's keeps the image's
    name = "mis+ext+outputs+refit+biasaware+ychild+offset"  # the default's intervals
    assert name in bench.ESTIMATORS and name not in bench.DEFAULT_ESTIMATORS
    kw = bench.attribute_kwargs(name, adapter)
    assert (kw["interval"], kw["conditional_ratios"]) == ("bias_aware", "offset")
    assert bench.bootstrap_mode(name) == "refit"
    assert isinstance(bench.ratio_estimators(name, adapter, seed=0)["Y"], bench._AnnotationOnly)
    # +yown: Y's statistics alone
    name = "mis+ext+outputs+yown+offset"
    assert name in bench.ESTIMATORS and name not in bench.DEFAULT_ESTIMATORS  # opt-in
    z = bench.ratio_estimators(name, adapter, seed=0)["Y"].ratio_features(env.features(["X", "Y"]))
    np.testing.assert_allclose(z, own)
    # +offsetchild: the library's offset_child, one plain estimator for both, as the CLI
    for name in ("mis+ext+outputs+offsetchild", "mis+ext+outputs+refit+biasaware+offsetchild"):
        assert name in bench.ESTIMATORS and name not in bench.DEFAULT_ESTIMATORS  # opt-in
        assert bench.attribute_kwargs(name, adapter)["conditional_ratios"] == "offset_child"
        ests = bench.ratio_estimators(name, adapter, seed=0)
        assert type(ests["Y"]) is bench.ImageStatsRatio
        assert set(ests["Y"].extra_features) == {"X", "Y"}


def test_demo_seeds_configuration_summary_and_report(tmp_path):
    from benchmarks import report
    from benchmarks.bench_demo_seeds import configuration, summarise

    first = configuration(tmp_path / "a", 3, "mis", "basic", None)
    assert first.data.random_state == 3 and first.attribution.method == "mis"
    assert first.attribution.image_statistics == "basic" and first.model.kind == "train-unet"
    again = configuration(tmp_path / "b", 3, "iw", "extended", tmp_path / "a" / "model.pt")
    assert again.model.kind == "checkpoint" and again.data.truth_n == 0
    assert again.model.factory == "benchmarks.bench_demo_seeds:demo_unet"
    assert not again.attribution.ratio_outputs
    assert again.attribution.bootstrap == "fixed" and again.attribution.n_bootstrap == 200
    assert again.attribution.n_jobs == 1  # as every stored run, whatever the demo's
    assert again.attribution.interval == "bootstrap"  # `covered` is the bootstrap interval's
    refit = configuration(tmp_path / "d", 3, "iw", "extended", None, "refit")
    assert refit.attribution.bootstrap == "refit" and refit.attribution.n_bootstrap == 50
    outputs = configuration(tmp_path / "c", 3, "iw", "extended+outputs", None)
    assert outputs.attribution.image_statistics == "extended" and outputs.attribution.ratio_outputs

    def run(seed, stats, x, warned):
        err = {"D": 0.0, "X": x - 0.08, "Y": 0.0}
        return {
            "seed": seed,
            "method": "iw",
            "statistics": stats,
            "mae": float(np.mean(np.abs(list(err.values())))),
            "max_error": abs(x - 0.08),
            "covered": {"D": True, "X": abs(x - 0.08) < 0.03, "Y": True},
            "dominant": "X" if x > 0 else "D",
            "true_dominant": "X",
            "sign_wrong": ["X"] if x < 0 else [],
            "warnings": ["low_ess"] if warned else [],
        }

    runs = [run(0, "basic", -0.04, True), run(1, "basic", 0.07, False)]
    runs += [run(0, "extended", 0.09, False), run(1, "extended", 0.13, False)]
    rows = {r["statistics"]: r for r in summarise(runs)}
    assert rows["basic"]["n_sign_wrong"] == 1 and rows["basic"]["dominant_rate"] == 0.5
    assert rows["basic"]["n_error_above"] == 1 and rows["basic"]["flagged_when_error_above"] == 1
    assert rows["extended"]["flagged_when_error_above"] == 0.0  # the 0.05 error went unflagged
    assert rows["extended"]["coverage"] == 5 / 6
    payload = {"commands": [{"command": "x", "seconds": 1.0, "n_runs": 4}]}
    payload |= {"config": {"seeds": [0, 1]}, "summary": summarise(runs)}
    text = report._demo_seeds(payload)
    assert "### 5c." in text and "| `iw` | extended | fixed | 2 |" in text
    # the same seeds with the refit bootstrap are a row of their own
    refit = [dict(r, bootstrap="refit") for r in runs if r["statistics"] == "extended"]
    rows = {(r["statistics"], r["bootstrap"]): r for r in summarise(runs + refit)}
    assert rows[("extended", "refit")]["n_runs"] == rows[("extended", "fixed")]["n_runs"] == 2
    assert rows[("extended", "refit")]["coverage_bias_aware"] is None  # none recorded
    # runs recording the bias-aware interval get its coverage beside the bootstrap one's
    ba = [dict(r, method="mis", covered_bias_aware=dict.fromkeys("DXY", True)) for r in refit]
    row = next(r for r in summarise(runs + ba) if r["method"] == "mis")
    assert row["coverage_bias_aware"] == 1.0 and row["coverage"] == 5 / 6
    text = report._demo_seeds({**payload, "summary": summarise(runs + ba)})
    assert "bias-aware CI covers" in text
    mis_row = next(line for line in text.splitlines() if line.startswith("| `mis` |"))
    assert mis_row.startswith("| `mis` | extended | refit | 2 |")
    assert "| 83% | 100% |" in mis_row  # bootstrap coverage, then the bias-aware one
    assert report._demo_seeds(None) == ""


def test_demo_seeds_record_reads_an_outcome_against_the_truth():
    from types import SimpleNamespace

    from benchmarks.bench_demo_seeds import record

    from shiftattr import Attribution

    res = Attribution(
        mechanisms=("D", "X", "Y"),
        values={"D": 0.001, "X": -0.05, "Y": 0.03},
        ci={"D": (-0.01, 0.01), "X": (-0.09, -0.01), "Y": (0.0, 0.06)},
        stderr={},
        source_metric=0.6,
        estimated_target_metric=0.62,
        measured_target_metric=0.52,
        warnings=[{"code": "low_ess", "mechanism": "X", "message": ""}] * 2,
    )
    outcome = SimpleNamespace(result=res, seconds={"attribution": 2.0})
    truth = {"values": {"D": 0.0, "X": 0.08, "Y": 0.0}, "stderr": {"D": 0.0, "X": 0.01, "Y": 0.0}}
    rec = record(outcome, truth, seed=4, method="iw", statistics="basic")
    # the values sum to a rise of the Dice, X raising it most: X "dominates", with the
    # wrong sign, which sign_wrong records
    assert rec["sign_wrong"] == ["X"] and rec["dominant"] == "X" and rec["true_dominant"] == "X"
    assert rec["covered"] == {"D": True, "X": False, "Y": True}
    assert rec["covered_bias_aware"] is None and rec["bias_aware_ci"] is None  # iw: none
    assert rec["warnings"] == ["low_ess"] and rec["max_error"] == pytest.approx(0.13)
    assert rec["mae"] == pytest.approx((0.001 + 0.13 + 0.03) / 3)
    # another method's run records its bias-aware interval and whether it holds the truth
    bound = {"D": 0.0, "X": 0.2, "Y": 0.0}
    wide = {"D": (-0.01, 0.01), "X": (-0.3, 0.2), "Y": (0.0, 0.06)}
    res.diagnostics = {"estimator": {"bias_bound": bound, "bias_aware_ci": wide}}
    rec = record(outcome, truth, seed=4, method="mis", statistics="basic")
    assert rec["covered_bias_aware"] == {"D": True, "X": True, "Y": True}
    assert rec["covered"]["X"] is False and rec["bias_bound"] == bound


def test_committed_demo_seeds_summary_matches_its_runs():
    """The table the docs quote is the summary of the runs stored beside it."""
    from benchmarks._common import RESULTS_DIR, read_json
    from benchmarks.bench_demo_seeds import summarise

    ds = read_json("demo_seeds", RESULTS_DIR)
    if ds is None:
        pytest.skip("no committed demo_seeds.json")
    assert summarise(ds["runs"]) == ds["summary"]
    for r in ds["runs"]:  # every record's error is its values minus its truth
        err = [abs(r["values"][m] - r["truth"][m]) for m in r["values"]]
        assert r["mae"] == pytest.approx(np.mean(err))


def test_absorb_merges_each_parallel_run_as_it_ran():
    """Runs made in a separate folder (a copy of the results run with --merge) come back
    with their own command, runs and seconds, not the whole copy's log and seconds."""
    import copy

    bench = pytest.importorskip("benchmarks.bench_synthetic_ms")

    def run(estimator, n, seed):
        return {"scenario": "null", "estimator": estimator, "n": n, "seed": seed, "mae": 0.01}

    def entry(command, estimator, sizes, seeds, seconds, date):
        return {
            "date": date,
            "command": command,
            "estimators": [estimator],
            "scenarios": ["null"],
            "sizes": sizes,
            "seeds": seeds,
            "n_runs": len(sizes) * len(seeds),
            "seconds": seconds,
        }

    previous = {
        "mode": "quick",
        "config": {"shape": [16] * 3, "sizes": [100], "seeds": [0], "estimators_run": ["iw"]},
        "model": {"per_center": {}},
        "not_applicable": {},
        "skipped": {},
        "scenarios": {"null": {"truth": {"D": 0.0}}},
        "runs": [run("iw", 100, 0)],
        "log": ["first run"],
        "seconds": 10.0,
        "merged": [entry("first", "iw", [100], [0], 10.0, "d0")],
    }
    other = copy.deepcopy(previous)  # the copy a parallel run started from
    other["runs"] += [run("iw+ext", 300, 0), run("iw+ext", 300, 1)]
    other["log"] += ["parallel run"]
    other["seconds"] += 40.0
    other["merged"].append(entry("parallel", "iw+ext", [300], [0, 1], 40.0, "d1"))
    out = bench.absorb(previous, other)
    assert sorted(bench._run_key(r) for r in out["runs"]) == sorted(
        bench._run_key(r) for r in other["runs"]
    )
    assert [m["command"] for m in out["merged"]] == ["first", "parallel"]
    assert out["merged"][-1]["date"] == "d1" and out["merged"][-1]["n_runs"] == 2
    assert out["seconds"] == 50.0 and out["log"] == ["first run"]
    assert bench.absorb(out, other)["runs"] == out["runs"]  # already there: nothing added
    # an entry whose runs the file no longer holds, or other settings: refused
    broken = copy.deepcopy(other)
    broken["merged"][-1]["n_runs"] = 5
    with pytest.raises(ValueError, match="lists 5 runs but the file holds 2"):
        bench.absorb(previous, broken)
    other["config"]["shape"] = [32] * 3
    with pytest.raises(ValueError, match=r"other settings.*shape"):
        bench.absorb(previous, other)


def test_merging_runs_of_another_segmenter_is_refused():
    """Runs scored on a model trained anew with other weights (e.g. another torch thread
    count) would sit beside runs of the first model under one truth per scenario."""
    bench = pytest.importorskip("benchmarks.bench_synthetic_ms")
    old = {"per_center": {"01": {"weights_sha256_16": "aaaa"}}}
    bench.check_same_models(old, {"per_center": {"01": {"weights_sha256_16": "aaaa"}}})
    bench.check_same_models(old, {"per_center": {"08": {"weights_sha256_16": "bbbb"}}})
    bench.check_same_models(None, {"per_center": {"01": {"weights_sha256_16": "bbbb"}}})
    with pytest.raises(ValueError, match=r"'01': \('aaaa', 'bbbb'\)"):
        bench.check_same_models(old, {"per_center": {"01": {"weights_sha256_16": "bbbb"}}})
    previous = {"config": {}, "model": old, "runs": []}
    new = {
        "config": {"estimators_run": []},
        "model": {"per_center": {"01": {"weights_sha256_16": "b"}}},
    }
    with pytest.raises(ValueError, match="weights differ"):
        bench.merge_results(previous, {**new, "runs": []})


def test_observed_change_sentence_and_total_error_statistic():
    """Section 5's closure sentence: the rms gap between the samples' change and the
    truth's per N, and how closely the estimator's values sum to that change."""
    from benchmarks import report

    def run(n, values, source, target, truth):
        return {
            "ok": True,
            "estimator": "mr+pooled+ext",
            "n": n,
            "values": dict(zip("DXY", values)),
            "truth": dict(zip("DXY", truth)),
            "source_dice": source,
            "target_dice": target,
        }

    runs = [
        run(100, (0.0, 0.1, 0.0), 0.8, 0.7, (0.0, 0.07, 0.0)),  # observed 0.1, truth 0.07
        run(100, (0.0, 0.0, 0.05), 0.8, 0.75, (0.0, 0.0, 0.01)),  # observed 0.05, truth 0.01
        run(300, (0.05, 0.0, 0.0), 0.7, 0.68, (0.0, 0.0, 0.0)),  # observed 0.02, sum 0.05
    ]
    text = " ".join(report._ms_observed_change({"runs": runs}, "mr+pooled+ext"))
    # the observed change against the truth, not the values' sum (0.05 at N = 300)
    assert "N = 100: 0.035; N = 300: 0.02." in text  # sqrt((0.03² + 0.04²) / 2) = 0.0354
    assert "sum to it to within 0.03:" in text  # the largest gap, the N = 300 run's
    assert report._ms_observed_change({"runs": runs}, "iw") == []
    assert report._total_error(runs[:2]) == "0.035"
    runs[0]["values"]["X"] = 0.07  # now exact: only the second run errs, by 0.04
    assert report._total_error(runs[:2]) == report._f(np.sqrt(0.04**2 / 2), 2)


def test_default_threads_sentence_reports_the_run_it_describes():
    """Section 2: the default-threads comparison is read from its run, not asserted."""
    from benchmarks import report

    one = {"blas_threads": 1, "seconds": {"dowhy_exact": 0.3, "shiftattr_exact": 0.012}}
    many = {
        "blas_threads": "library default",
        "seconds": {"dowhy_exact": 0.27, "shiftattr_exact": 0.009},
        "speedup_vs_dowhy": 30.0,
    }
    text = report._default_threads_sentence(one, [one, many])
    assert "the ratio is 30×" in text and "0.27 s (one thread: 0.3 s)" in text
    assert "inflated" not in text
    assert report._default_threads_sentence(one, [one]).startswith("One thread on both")


def test_closest_to_the_targets_lists_three_of_four_without_oracles():
    from benchmarks import report

    names = list(report._MS_MAIN_TARGETS)

    def rows(estimator, n, met):
        return [{"estimator": estimator, "n": n, "target": t, "met": m} for t, m in zip(names, met)]

    ms = {
        "targets": rows("mis+ext+outputs+refit", 1000, [True, True, False, True])
        + rows("iw", 300, [False, True, False, True])  # two of four: left out
        + rows("mis+oracle", 1000, [True, True, True, True])  # exact ratios: left out
        + rows("mis+ext+outputs+oracle-Y", 1000, [True, True, True, True])
        + [{"estimator": "mr", "target": names[0], "met": True}]  # all-N row: ignored
        + rows("mr", 1000, [True, True, True, True])
    }
    (line,) = report._ms_closest(ms)
    assert "`mis+ext+outputs+refit` at N = 1000 (misses: 95 % CIs cover the truth" in line
    assert "`mr` at N = 1000 (**all four**)" in line
    assert "mis+oracle" not in line and "oracle-Y" not in line
    assert "`iw`" not in line
    assert report._ms_closest({"targets": rows("iw", 300, [False] * 4)}) == []


def test_refit_and_biasaware_compose_in_a_variant_name():
    """``<method>+refit+biasaware``: the refit bootstrap and the bias-aware interval."""
    from types import SimpleNamespace

    from benchmarks import bench_synthetic_ms as bench

    name = "mis+ext+outputs+refit+biasaware"
    assert name in bench.ESTIMATORS and name not in bench.DEFAULT_ESTIMATORS
    assert bench.bootstrap_mode(name) == "refit"
    assert bench.bootstrap_mode("mr+biasaware") == "fixed"
    assert bench.bootstrap_mode("mis+ext+outputs+refit") == "refit"
    kw = bench.attribute_kwargs(name, SimpleNamespace(output_features=lambda env: None))
    assert kw["interval"] == "bias_aware" and kw["method"] == "mis"


def test_paired_default_variant_composes_every_mark_before_paired():
    """The command line's paired default: refit, bias-aware, both samples and paired in
    one name, each mark recognised although ``+paired`` ends it."""
    from types import SimpleNamespace

    from benchmarks import bench_synthetic_ms as bench

    name = "mr+pooled+ext+outputs+both+refit+biasaware+paired"
    assert name in bench.ESTIMATORS and name not in bench.DEFAULT_ESTIMATORS
    assert bench.is_paired(name) and bench.bootstrap_mode(name) == "refit"
    assert bench.is_bias_aware(name) and not bench.is_bias_aware("mis+ext+outputs+refit")
    assert not bench.is_paired("mr+pooled+ext+outputs+both")
    kw = bench.attribute_kwargs(name, SimpleNamespace(output_features=lambda env: None))
    assert kw["interval"] == "bias_aware" and kw["method"] == "mr"
    assert kw["both_samples"] is True and kw["pooled_regressions"] is True


def test_only_sizes_names_the_sizes_a_variant_skipped():
    from benchmarks import report

    runs = [{"estimator": "iw", "n": n} for n in (100, 300, 1000)]
    runs += [{"estimator": "mis+ext+outputs+refit+biasaware", "n": 1000}]
    ms = {"runs": runs}
    assert report._only_sizes(ms, "mis+ext+outputs+refit+biasaware") == "N = 1000"
    assert report._only_sizes(ms, "iw") == ""


def test_value_estimator_merge_drops_the_records_it_redoes():
    """A merge that redoes every run of an earlier merge replaces that merge's record: the
    section then names the run its numbers come from, not one they no longer do."""
    from itertools import product

    from benchmarks.value_estimators import _superseded

    earlier = {"methods": ["mr", "dowhy_mr_default"], "scms": ["a"], "sizes": [100], "seeds": [0]}
    redo = set(product(["a", "b"], [100, 300], [0, 1], ["mr", "dowhy_mr_default", "mr_linear"]))
    assert _superseded(earlier, redo)
    assert not _superseded(earlier, redo - {("a", 100, 0, "dowhy_mr_default")})  # not redone
    assert not _superseded({**earlier, "methods": ["mis_biasaware"]}, redo)


def test_value_estimator_merge_keeps_what_it_does_not_rerun(monkeypatch):
    """A merge replaces only the runs it makes: a peer that is not installed, or a seed
    ``method_seeds`` leaves out, keeps the earlier runs and its merge record; and the
    records survive the checkpoints written during the merge."""
    import benchmarks.value_estimators as ve
    from benchmarks.accuracy_tabular import score

    store, written = {}, []

    def write(name, payload):
        written.append(payload)  # as write_json: the date and the machine added
        store[name] = json.loads(json.dumps({"date": "t", "machine": {}, **payload}))

    monkeypatch.setattr(ve, "write_json", write)
    monkeypatch.setattr(ve, "read_json", lambda name: store.get(name))
    monkeypatch.setattr(ve, "peer_available", lambda name: None)  # DoWhy "not installed"
    monkeypatch.setattr(ve, "bench_samples", lambda i, scm, n, seed: (None, None))
    scm_name, scm = next(iter(ve.all_scms().items()))
    monkeypatch.setattr(
        ve, "_truth", lambda name, s, n: {"values": dict.fromkeys(scm.mechanisms, 0.0)}
    )
    monkeypatch.setattr(
        ve,
        "_run_method",
        lambda method, s, source, target, seed, cfg: {
            "values": dict.fromkeys(scm.mechanisms, 0.01)
        },
    )

    def old(method, seed):
        values = dict.fromkeys(scm.mechanisms, 0.1)
        return {
            "scm": scm_name,
            "n": 100,
            "seed": seed,
            "method": method,
            "ok": True,
            "seconds": 123.0,
            "values": values,
            **score(values, truth),
        }

    truth = dict.fromkeys(scm.mechanisms, 0.0)
    first = ve.run(scms=[scm_name], sizes=[100], seeds=[0], methods=["iw"], log=False)
    store[ve.NAME] = {
        **store[ve.NAME],
        "runs": [
            *first["runs"],
            old("dowhy_mr_default", 0),
            old("mr_point", 0),
            old("mr_point", 1),
        ],
        "merged": [
            {
                "date": "d0",
                "commit": "c",
                "methods": ["dowhy_mr_default"],
                "scms": [scm_name],
                "sizes": [100],
                "seeds": [0],
            }
        ],
    }
    out = ve.run(
        scms=[scm_name],
        sizes=[100],
        seeds=[0, 1],
        methods=["mr_point", "dowhy_mr_default"],
        log=False,
        merge=True,
    )
    kept = {(r["method"], r["seed"], r["seconds"] == 123.0) for r in out["runs"]}
    assert ("dowhy_mr_default", 0, True) in kept  # DoWhy did not run: its run stays
    assert ("mr_point", 1, True) in kept  # method_seeds runs mr_point on seed 0 only
    assert ("mr_point", 0, False) in kept and ("mr_point", 0, True) not in kept  # redone
    assert [g["methods"] for g in out["merged"]] == [["dowhy_mr_default"], ["mr_point"]]
    assert all(p.get("merged") for p in written[-2:])  # checkpoints keep the records


def test_value_estimator_section_names_when_dowhy_was_timed():
    from benchmarks import report

    ve = {"date": "d0", "merged": [{"date": "d1", "methods": ["mis_biasaware"]}]}
    assert report._dowhy_timed(ve) == "d0 (the first run)"
    ve["merged"].append({"date": "d2", "methods": ["mr", "dowhy_mr_default"]})
    ve["merged"].append({"date": "d3", "methods": ["mis"]})
    assert report._dowhy_timed(ve) == "d2 (that merge)"


def test_defaults_targets_table_reads_each_default_per_n():
    """The Targets section opens with the command line's defaults: one row per (default,
    N) from the stored targets, met or not marked, nothing for an estimator not listed."""
    from benchmarks import bench_synthetic_ms as bench
    from benchmarks import report

    assert all(e in bench.ESTIMATORS for _, e in report.MS_DEFAULTS)
    unpaired, paired = (e for _, e in report.MS_DEFAULTS)
    targets = [
        {"estimator": unpaired, "n": 300, "target": t, "measured": v, "met": ok}
        for t, v, ok in zip(report._MS_MAIN_TARGETS, (0.012, 0.9, 0.93, 1.0), (0, 0, 1, 1))
    ] + [{"estimator": "iw", "n": 300, "target": report._MS_MAIN_TARGETS[0], "measured": 0.03}]
    run = {"ok": True, "estimator": unpaired, "n": 300, "max_abs_error": 0.01, "flagged": False}
    runs = [
        {**run, "covered": {"X": True}},
        {**run, "max_abs_error": 0.03, "covered": {"X": True}},  # held by its interval
        {**run, "max_abs_error": 0.03, "flagged": True, "covered": {"X": False}},  # warned
        {**run, "max_abs_error": 0.03, "covered": {"X": False}},  # confidently wrong
    ]
    text = "\n".join(report._ms_defaults_targets({"targets": targets, "runs": runs}))
    row = next(line for line in text.splitlines() if unpaired in line)
    assert "| section 5's (weights not kept) | not used | 300 | 4 |" in row
    assert "0.012 Dice ✗" in row and "93% ✓" in row
    assert row.endswith("| 1 of 4 |")
    assert paired not in text and "`iw`" not in text
    assert report._ms_defaults_targets({"targets": [], "runs": []}) == []
    # the kept segmenters' runs (section 5d) get rows of their own, after section 5's
    kept_targets = [{**t, "n": 100} for t in targets]
    kept = {"targets": kept_targets, "runs": [{**r, "n": 100} for r in runs[:2]]}
    text = "\n".join(report._ms_defaults_targets({"targets": targets, "runs": runs}, kept))
    rows = [line for line in text.splitlines() if unpaired in line]
    assert len(rows) == 2 and "section 5's" in rows[0]
    assert "| kept in the repository (section 5d) | not used | 100 | 2 |" in rows[1]
    assert rows[1].endswith("| 0 of 2 |")
    only_kept = report._ms_defaults_targets(None, kept)
    assert sum(unpaired in line for line in only_kept) == 1


def test_paired_rows_say_how_the_second_reader_was_drawn():
    """Paired figures from simulator 1 (the second reader shared the first's noise) are
    optimistic: every table of paired runs says which simulator drew them, and runs that
    predate the record count as simulator 1."""
    from benchmarks import report

    paired = report.MS_DEFAULTS[1][1]
    old = {"ok": True, "estimator": paired, "max_abs_error": 0.0, "flagged": False}
    old["covered"] = {"Y": True}
    new = {**old, "simulator_version": 2}
    assert report._reader_noise([old, old]).startswith("shared (simulator 1)")
    assert report._reader_noise([new]) == "own per reader (simulator 2)"
    assert report._reader_noise([old, new]).startswith("mixed")
    assert report._reader_noise([{**old, "estimator": "mis"}]) == "not used"
    targets = [
        {
            "estimator": paired,
            "n": n,
            "target": report._MS_MAIN_TARGETS[0],
            "measured": 0.01,
            "met": 0,
        }
        for n in (100, 1000)
    ]
    runs = [{**new, "n": 100}, {**old, "n": 1000}]
    text = "\n".join(report._ms_defaults_targets(None, {"targets": targets, "runs": runs}))
    rows = [line for line in text.splitlines() if paired in line]
    assert "| own per reader (simulator 2) | 100 |" in rows[0]
    assert "| shared (simulator 1) | 1000 |" in rows[1]
    para = "\n".join(
        report._reader_noise_paragraph({"runs": runs, "config": {"estimators_run": [paired]}})
    )
    assert f"`{paired}` N = 100: own per reader" in para
    assert f"`{paired}` N = 1000: shared (simulator 1)" in para
    assert report._reader_noise_paragraph({"runs": [{**old, "estimator": "mis"}]}) == []


def _ratio_information_arrays(n=400, seed=0):
    """Two hidden log parameters, shifted; the features see ``seen`` (with a little noise)
    and not ``hidden``; the metric falls with both."""
    rng = np.random.default_rng(seed)
    ps = {"seen": rng.normal(0, 1, n), "hidden": rng.normal(0, 1, n)}
    pt = {"seen": rng.normal(0.8, 1, n), "hidden": rng.normal(0.8, 1, n)}

    def feats(p):
        return np.column_stack([p["seen"] + 0.1 * rng.normal(size=n), rng.normal(size=n)])

    def metric(p):
        return 0.7 - 0.05 * p["seen"] - 0.05 * p["hidden"] + 0.01 * rng.normal(size=n)

    true_lr = 0.8 * (ps["seen"] + ps["hidden"]) - 0.64  # N(0.8, 1) over N(0, 1), twice
    return ps, pt, feats(ps), feats(pt), metric(ps), metric(pt), true_lr


def test_ratio_information_measures_what_the_features_miss():
    """A parameter the features do not see has R² near 0 and leaves a transport gap of
    the size of its effect; weights on the hidden parameters themselves and the true
    ratio close it; the features' ratio is calibrated along its direction (a near 1)."""
    from benchmarks.bench_ratio_information import WEIGHTS, measure, summarise

    rec = measure(*_ratio_information_arrays(), seed=0)
    seen, hidden = rec["parameters"]["seen"], rec["parameters"]["hidden"]
    assert seen["r2"] > 0.9 and seen["r2_within"] > 0.9
    assert abs(hidden["r2_within"]) < 0.05 and hidden["r2"] < 0.1
    assert seen["corr_metric"] < -0.5
    assert 0.65 < hidden["shift"] < 0.95  # 0.8 over a unit sd
    gap = {w: rec["weights"][w]["gap"] for w in WEIGHTS}
    # the hidden parameter's shift, 0.8 sd, costs 0.05 * 0.8 = 0.04 of the metric
    assert 0.02 < gap["features"] < 0.06 and 0.02 < gap["balanced"] < 0.06
    assert abs(gap["latent"]) < 0.015 and abs(gap["true"]) < 0.015
    assert rec["weights"]["true"]["corr_true"] == pytest.approx(1.0)
    assert rec["weights"]["latent"]["corr_true"] > 0.9 > rec["weights"]["features"]["corr_true"]
    # two unit-variance parameters shifted by 0.8: the true ratio's ESS is exp(-1.28)
    assert rec["weights"]["true"]["ess"] == pytest.approx(np.exp(-2 * 0.64), abs=0.08)
    assert 0.8 < rec["alpha_balance"] < 1.25
    rows = summarise([{"scenario": "s", "seed": 0, **rec}, {"scenario": "s", "seed": 1, **rec}])
    assert len(rows) == 1 and rows[0]["n_seeds"] == 2
    assert rows[0]["weights"]["features"]["gap"] == pytest.approx(gap["features"])
    assert rows[0]["weights"]["features"]["gap_se"] == 0.0


#: Benchmark modules with docstring examples (pytest collects doctests from src/ only).
DOCTESTED = (
    "benchmarks._common",
    "benchmarks.bench_synthetic_ms",
    "benchmarks.bench_ratio_information",
)


@pytest.mark.parametrize("name", DOCTESTED)
def test_benchmark_doctests(name):
    """The examples in the benchmarks' docstrings run and hold."""
    import doctest

    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


def test_ratio_information_refuses_too_few_cases(capsys):
    """An --n below two cases per fold stops before any work, naming the smallest N."""
    from benchmarks import bench_ratio_information as bri

    with pytest.raises(SystemExit) as exc:
        bri.main(["--n", str(2 * bri.N_FOLDS - 1)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"--n must be at least {2 * bri.N_FOLDS}" in err
    assert f"got {2 * bri.N_FOLDS - 1}" in err


def test_ratio_information_run_one_samples_as_the_attribution_benchmark():
    """``run_one`` draws the synthetic-MS benchmark's samples of a (scenario, N, seed):
    its source metric is the one of ``bench_synthetic_ms``'s own draw."""
    from benchmarks import bench_synthetic_ms as ms
    from benchmarks.bench_ratio_information import run_one

    class Stub:  # a "model" whose metric and outputs are image statistics
        def score(self, env):
            return np.asarray(env["X"], float).reshape(len(env), -1).mean(axis=1)

        def output_features(self, env):
            return np.asarray(env["X"], float).reshape(len(env), -1).std(axis=1)[:, None]

    sim = ms.make_simulator((12, 12, 12))  # 8³ leaves some cases without white matter
    scen = {s.name: s for s in ms.SCENARIOS}["acq_01_to_03"]
    rec = run_one(sim, scen, Stub(), n=40, seed=3)
    src = sim.sample(40, random_state=ms._seed(scen.name, "source", 40, 3), **scen.env("source"))
    assert rec["source_metric"] == pytest.approx(Stub().score(src).mean())
    assert rec["scenario"] == "acq_01_to_03" and rec["seed"] == 3 and rec["n"] == 40
    assert "lesion_contrast" in rec["parameters"] and set(rec["weights"]) == {
        "features",
        "balanced",
        "latent",
        "true",
    }
    # lesion contrast falls from centre 01 to 03
    assert rec["parameters"]["lesion_contrast"]["shift"] < 0


def test_ratio_information_report_section(tmp_path):
    """Section 5e shows a column per scenario in the parameter table and a row per
    (scenario, weights) in the gap table, and the report places it with section 5's
    subsections, before the section on the peers."""
    from benchmarks import report
    from benchmarks.bench_ratio_information import measure, summarise

    measured = [measure(*_ratio_information_arrays(200, seed), seed=seed) for seed in (0, 1)]
    recs = [
        {"scenario": sc, "seed": seed, **measured[seed]}
        for sc in ("acq_a", "acq_b")
        for seed in (0, 1)
    ]
    payload = {
        "date": "2026-12-01",
        "command": "python benchmarks/bench_ratio_information.py",
        "seconds": 12.0,
        "config": {"n": 200, "seeds": [0, 1], "n_folds": 5},
        "records": recs,
        "summary": summarise(recs),
    }
    text = report._ratio_information(payload)
    assert text.startswith("### 5e.")
    assert "acq_a: R² (within); corr with Dice; shift | acq_b: R² (within); corr" in text
    hidden = next(line for line in text.splitlines() if line.startswith("| `hidden`"))
    assert len(hidden.strip("|").split("|")) == 3
    gap_rows = [line for line in text.splitlines() if line.startswith("| acq_")]
    assert len(gap_rows) == 8 and "± " in gap_rows[0]
    alpha = payload["summary"][0]["alpha_balance"]
    assert f"acq_a {report._f(alpha, 3)}; acq_b" in text  # the balancing exponents
    assert report._ratio_information(None) == ""
    (tmp_path / "ratio_information.json").write_text(json.dumps(payload))
    written = report.write(results_dir=tmp_path, out=tmp_path / "RESULTS.md").read_text()
    assert "### 5e. What the acquisition ratio sees of a scanner shift" in written
    assert written.index("### 5e.") < written.index("## Where shiftattr is behind a peer")


def test_image_statistics_memory_benchmark_runs_on_a_tiny_shape(tmp_path, monkeypatch):
    """Both configurations run in their own processes and give the same statistics."""
    from benchmarks import _common
    from benchmarks import bench_image_statistics_memory as bench

    monkeypatch.setattr(bench, "write_json", lambda name, p: _common.write_json(name, p, tmp_path))
    assert bench.main(["--shape", "8", "8", "8", "--n", "3"]) == 0
    saved = json.loads((tmp_path / "image_statistics_memory.json").read_text())
    assert [r["configuration"] for r in saved["rows"]] == ["bounded", "one batch"]
    assert saved["same_statistics"] and all(r["cases_per_batch"] == 3 for r in saved["rows"])


def test_volume_scaling_benchmark_runs_on_a_tiny_shape(tmp_path):
    """Every stage runs in its own process and is timed; the report shows the results
    (and those of the image-statistics memory benchmark) as sections 4b and 4c."""
    from benchmarks import bench_volume_scaling as bench
    from benchmarks import report

    args = ["--shapes", "16,16,16", "--n", "2", "--cnn-n", "2", "--out", str(tmp_path)]
    assert bench.main(args) == 0
    saved = json.loads((tmp_path / "volume_scaling.json").read_text())
    stages = bench.stages((16, 16, 16))
    # "auto" does not pool a 16³ grid, so cnn_epoch already is the unpooled epoch
    assert [r["stage"] for r in saved["rows"]] == [s for s in stages if s != "cnn_epoch_unpooled"]
    assert all(
        r["seconds_per_case"] > 0 and r["peak_above_baseline_gb"] >= 0 for r in saved["rows"]
    )
    cnn = saved["rows"][-1]
    assert cnn["downsample"] == [1, 1, 1] and cnn["input_shape"] == [16, 16, 16]
    assert saved["config"]["cnn_n"] == 2 and saved["growth"] == []  # one shape: no slope
    text = report._volume_scaling(saved)
    assert text.startswith("### 4b.") and "| `image_statistics` | " in text

    (tmp_path / "image_statistics_memory.json").write_text(
        json.dumps(
            {
                "date": "2026-12-02",
                "shape": [8, 8, 8],
                "n": 3,
                "same_statistics": True,
                "rows": [
                    {
                        "configuration": c,
                        "cases_per_batch": 3,
                        "peak_above_baseline_gb": 0.01,
                        "seconds": 0.1,
                    }
                    for c in ("bounded", "one batch")
                ],
            }
        )
    )
    written = report.write(results_dir=tmp_path, out=tmp_path / "RESULTS.md").read_text()
    assert written.index("## 4. Scaling") < written.index("### 4b.") < written.index("### 4c.")
    assert "### 4c. Memory of the image statistics at 8×8×8" in written
    assert report._volume_scaling(None) == report._image_statistics_memory(None) == ""


def test_metric_range_benchmark_runs_small_and_reports_section_1b(tmp_path):
    """Both parts run; iw is the one variant the warning is raised for, and the report
    places the section after the tabular accuracy."""
    from benchmarks import bench_metric_range as bench
    from benchmarks import report

    assert bench.main(["--reps", "20", "--seeds", "1", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "metric_range.json").read_text())
    assert len(saved["false_alarms"]) == len(bench.DISTRIBUTIONS) * len(bench.SIZES)
    rows = {r["variant"]: r for r in saved["noise_doubles"]["rows"]}
    assert rows["mis"]["beyond_rate"] == rows["mr"]["beyond_rate"] == 0.0
    assert rows["iw, linear classifier for Y"]["beyond_rate"] == 1.0
    assert saved["noise_doubles"]["truth"] == pytest.approx(-3.0)
    written = report.write(results_dir=tmp_path, out=tmp_path / "RESULTS.md").read_text()
    assert "### 1b. Target metric beyond the source's range" in written
    assert written.index("### 1b.") < written.index("## 2.")
    assert report._metric_range(None) == ""


def test_saved_probabilities_benchmark_runs_small_and_reports_section_5f(tmp_path):
    """One tiny seed: every shift and variant is attributed against the truth, the
    post-processing removes small components only, and the report shows section 5f
    after 5e's place."""
    from benchmarks import bench_saved_probabilities as bench
    from benchmarks import report

    masks = np.zeros((1, 6, 6, 6), np.uint8)
    masks[0, :2, :2, :2] = 1  # 8 voxels: kept
    masks[0, 4, 4, 4] = masks[0, 4, 4, 5] = 1  # 2 voxels: removed
    kept = bench._post_process(masks)
    assert kept.sum() == 8 and kept[0, :2, :2, :2].all()
    args = ["--seeds", "1", "--n", "24", "--size", "12", "--epochs", "1", "--truth-n", "12"]
    args += ["--replicates", "2"]
    assert bench.main([*args, "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "saved_probabilities.json").read_text())
    assert len(saved["rows"]) == len(bench.SHIFTS) * len(bench.VARIANTS)
    for row in saved["rows"]:
        assert set(row["values"]) == set(row["truth"]) == {"X", "Y"}
    assert {(r["shift"], r["variant"]) for r in saved["summary"]} == {
        (s, v) for s in bench.SHIFTS for v in bench.VARIANTS
    }
    checks = {c["mixup"]: c for c in saved["checks"]}
    assert set(checks) == set(bench.MIXUPS)
    assert (
        checks["background channel"]["refused"] == checks["background channel"]["environments"] == 6
    )
    assert saved["own_contrast"]["cases"] > 0
    written = report.write(results_dir=tmp_path, out=tmp_path / "RESULTS.md").read_text()
    assert "### 5f. Saved predictions with and without" in written
    assert "| background channel | 6 | 6 |" in written
    assert report._saved_probabilities(None) == ""
    # a variant missing for every seed: no paired sentence, and no crash of the report
    one_variant = [r for r in saved["rows"] if r["variant"] == "masks only"]
    assert report._saved_probabilities_paired(one_variant) == ""


def test_results_md_is_what_the_report_writes_from_the_shipped_results(tmp_path):
    """RESULTS.md is generated; a change to the report's code (or to a library rule it
    rescores with, such as the dominant mechanism's) left 18 of its rows stale until a
    benchmark happened to rerun. Regenerate it with ``benchmarks/run.py --report-only``."""
    from benchmarks import report

    root = Path(__file__).resolve().parent.parent / "benchmarks"
    import difflib

    def lines(text):  # the header line carries the time of writing
        return [x for x in text.splitlines() if not x.startswith("Written by `benchmarks/run")]

    shipped = lines((root / "RESULTS.md").read_text())
    fresh = lines(report.write(out=tmp_path / "RESULTS.md").read_text())
    diff = list(difflib.unified_diff(shipped, fresh, "shipped", "written", n=0, lineterm=""))
    assert not diff, (
        "benchmarks/RESULTS.md differs from what the report writes (run benchmarks/run.py "
        "--report-only):\n" + "\n".join(line[:200] for line in diff[:8])
    )


def test_refit_centering_intervals_and_summary_on_known_replicates():
    """The refit-centering benchmark's intervals on replicates shifted by a constant from
    the point: the basic interval mirrors the percentile one about the point, the
    bias-corrected normal one is the normal one moved back by the shift, and coverage,
    shrinkage and the summaries are counted per row."""
    from benchmarks import bench_refit_centering as bench

    base = np.linspace(-1.0, 1.0, 101)  # symmetric: 2.5 % / 97.5 % quantiles -0.95 / 0.95
    sd = float(np.sqrt(np.sum(base**2) / 100))  # ddof=1, as the library's stderr
    z = 1.959963984540054
    point, shift = 0.3, 0.5
    iv = bench.intervals(point, point + shift + base)
    np.testing.assert_allclose(iv["percentile"], [-0.15, 1.75], atol=1e-12)
    np.testing.assert_allclose(iv["basic"], [-1.15, 0.75], atol=1e-12)
    lo, hi = iv["percentile"]
    np.testing.assert_allclose(iv["basic"], [2 * point - hi, 2 * point - lo], atol=1e-12)
    np.testing.assert_allclose(iv["normal"], [point - z * sd, point + z * sd], atol=1e-12)
    np.testing.assert_allclose(iv["normal_bc"], [point - shift - z * sd, point - shift + z * sd])
    assert "reported" not in iv
    assert bench.intervals(point, base, reported=(-9, 9))["reported"] == (-9.0, 9.0)

    assert bench.covers((0.0, 1.0), 1.0) and not bench.covers((0.0, 1.0), 1.0001)  # closed
    # truth -1.0 is inside basic and normal_bc only; 1.6 inside percentile only
    key = {"scm": "s", "n": 10, "method": "iw", "mechanism": "X"}
    far = bench.mechanism_row(point, point + shift + base, truth=-1.0)
    assert far["covered"] == {
        "percentile": False,
        "basic": True,
        "normal": False,
        "normal_bc": True,
    }
    high = bench.mechanism_row(point, point + shift + base, truth=1.6)
    assert high["covered"] == {
        "percentile": True,
        "basic": False,
        "normal": False,
        "normal_bc": False,
    }
    assert far["width"]["percentile"] == pytest.approx(far["width"]["basic"]) == pytest.approx(1.9)
    assert far["width"]["normal"] == pytest.approx(2 * z * sd)
    # replicates 0.5 further from zero than a positive point: not shrunk, shift -0.5/sd
    assert not far["shrunk"] and far["shift"] == pytest.approx(shift / sd)
    assert far["shift_toward_zero"] == pytest.approx(-shift / sd)
    assert far["error_along_truth"] == pytest.approx(-1.3)  # 0.3 lies 1.3 zero-wards of -1
    # a negative point whose replicates sit 0.4 nearer zero: shrunk, shift +0.4/sd towards 0
    near = bench.mechanism_row(-1.0, -0.6 + base, truth=0.0, reported=(-2.0, 0.5))
    assert near["shrunk"] and near["shrunk_median"]
    assert near["shift_toward_zero"] == pytest.approx(0.4 / sd)
    assert near["error_along_truth"] is None and near["covered"]["reported"]

    rows = [
        {**key, "seed": 0, **far},
        {**key, "seed": 1, **high},
        {**key, "seed": 2, "method": "mis", **near},
    ]
    out = bench.summary_of(rows)
    assert out["n_rows"] == out["n_runs"] == 3
    assert out["shrunk_share"] == pytest.approx(1 / 3)
    # near: percentile (-1.55, 0.35) holds its truth 0, the mirrored basic one does not
    assert out["coverage"]["percentile"] == pytest.approx(2 / 3)  # high and near
    assert out["coverage"]["basic"] == pytest.approx(1 / 3)  # far only
    assert out["coverage"]["reported"] == 1.0 and out["n_scored"]["reported"] == 1
    # far and high both lie 1.3 zero-wards of their truths; near's zero truth is left out
    assert out["error_along_truth_mean"] == pytest.approx(-1.3)
    assert out["shift_toward_zero_mean"] == pytest.approx((-0.5 - 0.5 + 0.4) / 3 / sd)
    summary = bench.summarise(rows)
    assert [(s["method"], s["n_rows"]) for s in summary["by_method"]] == [("iw", 2), ("mis", 1)]
    assert summary["overall"]["n_rows"] == 3


def test_refit_centering_parts_combine_and_report():
    """Runs made side by side (one process per N) combine into one result whose summaries
    are recomputed from every row; section 1c renders it, and a partial file (a run
    still going or cut short) is not reported."""
    from benchmarks import bench_refit_centering as bench
    from benchmarks import report

    base = np.linspace(-1.0, 1.0, 21)

    def part(n, point, truth, shift=-0.1):
        row = {"scm": "s", "n": n, "method": "iw", "mechanism": "X", "seed": 0}
        row.update(bench.mechanism_row(point, point + shift + base, truth=truth))
        cfg = {"scms": ["s"], "sizes": [n], "seeds": [0], "methods": ["iw"], "n_bootstrap": 21}
        cfg.update(n_folds=5, confidence=0.95, n_truth=10)
        return {
            "command": f"run {n}",
            "config": cfg,
            "truth": {"s": {"values": {"X": truth}}},
            "runs": [{"scm": "s", "n": n, "seed": 0, "method": "iw", "ok": True}],
            "rows": [row],
            "summary": bench.summarise([row]),
            "seconds": 2.0,
            "date": "d",
        }

    a, b = part(300, 0.5, 0.6), part(1000, 0.5, 5.0)
    both = bench.combine([a, b])
    assert both["config"]["sizes"] == [300, 1000] and both["seconds"] == 4.0
    assert both["summary"]["overall"]["n_rows"] == 2
    assert both["summary"]["overall"]["coverage"]["percentile"] == 0.5  # 5.0 lies outside
    assert [p["command"] for p in both["parts"]] == ["run 300", "run 1000"]
    with pytest.raises(ValueError, match="n_bootstrap"):
        bench.combine([a, {**b, "config": {**b["config"], "n_bootstrap": 50}}])
    with pytest.raises(ValueError, match="in two parts"):  # rows would count twice
        bench.combine([a, a])

    text = report._refit_centering(both)
    assert text.startswith("### 1c.")
    assert "| all | 1000 | `iw` | 1 |" in text and "| s | 300 | `iw` | 1 |" in text
    # rows written before they recorded warnings take them from their run: N = 1000's
    # interval missed 5.0 in a run without a warning
    assert both["summary"]["by_n_method"][1]["misses_warned"] == {"misses": 1, "warned": 0}
    row_1000 = next(x for x in text.splitlines() if "| all | 1000 |" in x)
    assert row_1000.endswith("| 0 of 1 |")
    assert "percentile interval held the truth for 50%" in text
    assert "Run in 2 processes side by side" in text and "`run 1000` (2 s)" in text
    # these replicates sit 0.1 nearer zero than θ̂ = 0.5, and the sentence says which way
    assert "nearer to zero than θ̂ (nearer for 100% of the values)" in text
    away = report._refit_centering(bench.combine([part(300, 0.5, 0.6, shift=0.1)]))
    assert "further from zero than θ̂ (nearer for 0% of the values)" in away
    assert report._refit_centering({**both, "partial": True}) == ""
    assert report._refit_centering({**both, "mode": "quick"}) == ""  # not evidence
    assert report._refit_centering(None) == ""
