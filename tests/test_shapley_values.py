"""Tests of shiftattr.shapley.ShapleyValues and the ShapleySolver interface."""

from __future__ import annotations

import numpy as np
import pytest

from shiftattr.shapley import ExactShapley, Game, PermutationShapley, ShapleySolver, ShapleyValues


def test_access_by_name_and_as_dict():
    sv = ShapleyValues(("a", "b"), np.array([0.25, 0.75]), total=1.0, n_evaluations=4)
    assert sv["a"] == 0.25
    assert sv.as_dict() == {"a": 0.25, "b": 0.75}
    assert len(sv) == 2
    assert sv.exact
    with pytest.raises(KeyError, match=r"no player 'c'.*\['a', 'b'\]"):
        sv["c"]


def test_values_are_read_only_copies():
    values = np.array([1.0, 2.0])
    sv = ShapleyValues(("a", "b"), values, total=3.0)
    values[0] = 100.0
    assert sv["a"] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        sv.values[0] = 5.0


def test_inefficient_values_are_refused():
    with pytest.raises(ValueError, match="efficient"):
        ShapleyValues(("a", "b"), np.array([0.5, 0.6]), total=1.0)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="one number per player"):
        ShapleyValues(("a", "b"), np.array([1.0]), total=1.0)
    with pytest.raises(ValueError, match="stderr"):
        ShapleyValues(("a", "b"), np.array([0.5, 0.5]), total=1.0, stderr=np.zeros(3))


def test_efficient_spreads_rounding_gap_and_keeps_zeros():
    raw = np.array([0.1, 0.2, 0.0, -0.3])
    sv = ShapleyValues.efficient(("a", "b", "c", "d"), raw, total=1e-12)
    assert sv["c"] == 0.0
    # exact up to the rounding of the largest value (the raw sum is off by 1e-12)
    assert abs(sv.values.sum() - 1e-12) <= 4 * np.finfo(float).eps * 0.3
    np.testing.assert_allclose(sv.values, raw, atol=1e-11)


def test_repr_lists_players_values_and_errors():
    exact = ShapleyValues(("left", "r"), np.array([1.0, 2.0]), total=3.0, n_evaluations=4)
    text = repr(exact)
    assert text.splitlines()[0] == "ShapleyValues(2 players, total=3, exact, n_evaluations=4)"
    assert "left  1" in text and "r     2" in text
    sampled = ShapleyValues(
        ("x",), np.array([1.0]), total=1.0, stderr=np.array([0.05]), n_permutations=8
    )
    assert "8 permutations" in repr(sampled)
    assert "(se 0.05)" in repr(sampled)


def test_solver_interface():
    with pytest.raises(TypeError):
        ShapleySolver()  # type: ignore[abstract]
    assert repr(ExactShapley(max_players=12)) == "ExactShapley(batch_size=None, max_players=12)"
    assert "tol=0.01" in repr(PermutationShapley(tol=0.01))

    class Zero(ShapleySolver):
        def solve(self, game: Game) -> ShapleyValues:
            return ShapleyValues(game.players, np.zeros(game.n_players), 0.0)

    assert Zero().solve(Game(["a"], lambda c: np.zeros(len(c)))).as_dict() == {"a": 0.0}


@pytest.mark.parametrize("solver", [ExactShapley(), PermutationShapley(n_permutations=4)])
def test_solvers_reject_non_games(solver):
    with pytest.raises(TypeError, match=r"Game\(players, value_fn\)"):
        solver.solve(lambda c: c.sum(axis=1))


def test_efficient_spreads_a_residue_when_every_value_is_zero():
    # found by hypothesis: v(N) - v(empty) = -2.7e-76 from cancellation, values all 0
    sv = ShapleyValues.efficient(("a", "b"), np.zeros(2), -2.7324620082649804e-76)
    assert sv.values.sum() == pytest.approx(-2.7324620082649804e-76, rel=1e-12)
    assert sv.values[0] == sv.values[1]
