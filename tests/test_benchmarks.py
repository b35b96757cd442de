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
]


@pytest.mark.parametrize("name", MODULES)
def test_modules_import(name):
    module = importlib.import_module(name)
    assert module.__doc__


def test_unanimity_game_values_are_exact():
    from benchmarks.games import unanimity_game

    from shiftattr.shapley import ExactShapley, Game

    game = unanimity_game(6, n_terms=8, seed=3)
    sv = ExactShapley().solve(Game(game.players, game.value_fn))
    np.testing.assert_allclose(sv.values, game.exact, atol=1e-12)


def test_solver_comparison_json_structure(tmp_path):
    from benchmarks import solvers
    from benchmarks._common import write_json
    from benchmarks.games import iw_bench_game, unanimity_game

    games = [unanimity_game(6, n_terms=8, seed=0), iw_bench_game(6, n_samples=500, seed=0)]
    names = ["shiftattr", "shiftattr_plain", "shapiq_permutation"]
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
    assert set(rmse["target"]) >= {"rule", "n_comparisons", "n_met", "met"}


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
