"""Tests of shiftattr.shapley.ExactShapley: hand-computed games and the Shapley axioms."""

from __future__ import annotations

import itertools
from math import factorial

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shiftattr.shapley import ExactShapley, Game


def all_coalitions(n: int) -> np.ndarray:
    """Bool rows of the 2**n coalitions, row ``code`` has player i iff bit i of code."""
    codes = np.arange(2**n)
    return ((codes[:, None] >> np.arange(n)) & 1).astype(bool)


def brute_force_shapley(table: np.ndarray) -> np.ndarray:
    """Average marginal contribution over all n! orders, straight from the definition."""
    n = int(np.log2(table.size))
    phi = np.zeros(n)
    for order in itertools.permutations(range(n)):
        code = 0
        for player in order:
            phi[player] += table[code | (1 << player)] - table[code]
            code |= 1 << player
    return phi / factorial(n)


def solve_table(table: np.ndarray) -> np.ndarray:
    return ExactShapley().solve(Game.from_table(table)).values


# ----------------------------------------------------------------- hand-computed games
def test_glove_game():
    # v = 1 when a left glove (L1 or L2) and the right glove R are together.
    # R is pivotal in the 4 of 6 orders where it is not first -> 2/3; L1 is pivotal only
    # in the order (R, L1, L2) -> 1/6, and L2 likewise.
    game = Game(["L1", "L2", "R"], lambda c: ((c[:, 0] | c[:, 1]) & c[:, 2]).astype(float))
    sv = ExactShapley().solve(game)
    np.testing.assert_allclose(sv.values, [1 / 6, 1 / 6, 2 / 3], rtol=1e-14)
    assert sv.stderr is None
    assert sv.total == 1.0
    assert sv.n_evaluations == 8


@pytest.mark.parametrize("members", [(0,), (1, 3), (0, 2, 4), (0, 1, 2, 3, 4)])
def test_unanimity_games(members):
    # u_T(S) = 1 if T is a subset of S: each member of T gets 1/|T|, everybody else 0.
    n = 5
    T = np.zeros(n, dtype=bool)
    T[list(members)] = True
    game = Game([f"p{i}" for i in range(n)], lambda c: (c[:, T].all(axis=1)).astype(float))
    sv = ExactShapley().solve(game)
    expected = np.where(T, 1 / len(members), 0.0)
    np.testing.assert_allclose(sv.values, expected, rtol=1e-14, atol=0)
    assert np.all(sv.values[~T] == 0.0)  # null players get exactly zero


def test_weighted_majority_game():
    # Weighted voting with quota 3: A has weight 2, B, C, D weight 1; v = 1 if the
    # weight of S is >= 3. In a random order A is pivotal when the weight before it is
    # 1 or 2, i.e. A is second or third: 12 of 24 orders -> 1/2. B is pivotal when the
    # weight before it is exactly 2: after {A} alone (B second, 2 orders) or after
    # {C, D} (B third, 2 orders) -> 4/24 = 1/6; C and D likewise.
    weights = np.array([2.0, 1.0, 1.0, 1.0])
    game = Game(["A", "B", "C", "D"], lambda c: (c @ weights >= 3).astype(float))
    np.testing.assert_allclose(
        ExactShapley().solve(game).values, [1 / 2, 1 / 6, 1 / 6, 1 / 6], rtol=1e-14
    )


def test_non_additive_four_player_game():
    # v(S) = [A] + 2 [D] + 3 [A, B in S] + 6 [A, B, C in S] - 2 [C, D in S].
    # By linearity: the additive part gives A 1, D 2; the unanimity game on {A, B}
    # gives 3/2 to A and B; on {A, B, C} 6/3 = 2 to each of A, B, C; on {C, D}
    # -2/2 = -1 to C and D. So A = 1 + 1.5 + 2 = 4.5, B = 1.5 + 2 = 3.5,
    # C = 2 - 1 = 1, D = 2 - 1 = 1, summing to v(ABCD) = 1 + 2 + 3 + 6 - 2 = 10.
    def v(c: np.ndarray) -> np.ndarray:
        a, b, cc, d = c.T
        return a + 2.0 * d + 3.0 * (a & b) + 6.0 * (a & b & cc) - 2.0 * (cc & d)

    sv = ExactShapley().solve(Game(["A", "B", "C", "D"], v))
    assert sv.as_dict() == pytest.approx({"A": 4.5, "B": 3.5, "C": 1.0, "D": 1.0}, rel=1e-14)
    assert sv.total == 10.0


def test_single_player_gets_the_whole_change():
    sv = ExactShapley().solve(Game(["only"], lambda c: 3.0 + 2.0 * c[:, 0]))
    assert sv.as_dict() == {"only": 2.0}


# ----------------------------------------------------------------- axioms (hypothesis)
def tables(min_players: int = 1, max_players: int = 6) -> st.SearchStrategy[np.ndarray]:
    values = st.floats(-100, 100, allow_nan=False, allow_subnormal=False)
    return st.integers(min_players, max_players).flatmap(
        lambda n: hnp.arrays(np.float64, 2**n, elements=values)
    )


@settings(max_examples=50, deadline=None)
@given(tables(max_players=5))
def test_matches_the_definition(table):
    np.testing.assert_allclose(solve_table(table), brute_force_shapley(table), atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(tables())
def test_efficiency(table):
    sv = ExactShapley().solve(Game.from_table(table))
    assert sv.total == table[-1] - table[0]
    assert abs(sv.values.sum() - sv.total) <= 1e-12 * max(1.0, np.abs(table).max())


@settings(max_examples=50, deadline=None)
@given(tables(min_players=2))
def test_symmetry(table):
    # symmetrise players 0 and 1: v'(S) = v(S) + v(S with 0 and 1 swapped)
    codes = np.arange(table.size)
    swapped = (codes & ~3) | ((codes & 1) << 1) | ((codes >> 1) & 1)
    phi = solve_table(table + table[swapped])
    assert phi[0] == pytest.approx(phi[1], abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(tables(min_players=2), st.data())
def test_null_player(table, data):
    n = int(np.log2(table.size))
    k = data.draw(st.integers(0, n - 1))
    codes = np.arange(table.size)
    phi_null = solve_table(table[codes & ~(1 << k)])  # v'(S) = v(S without k)
    assert phi_null[k] == 0.0
    # and the other players keep the values of the game played without k
    others = np.delete(np.arange(n), k)
    sub = table[(all_coalitions(n - 1).astype(np.int64) @ (1 << others))]
    np.testing.assert_allclose(np.delete(phi_null, k), solve_table(sub), atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda n: st.tuples(
            *[hnp.arrays(np.float64, 2**n, elements=st.floats(-100, 100)) for _ in range(2)]
        )
    ),
    st.floats(-10, 10),
    st.floats(-10, 10),
)
def test_linearity(tables_pair, a, b):
    u, w = tables_pair
    np.testing.assert_allclose(
        solve_table(a * u + b * w), a * solve_table(u) + b * solve_table(w), atol=1e-8
    )


# ----------------------------------------------------------------- mechanics
def test_batches_and_evaluation_counts():
    calls = []
    table = np.random.default_rng(0).normal(size=2**7)
    base = Game.from_table(table)

    def fn(c):
        calls.append(len(c))
        return base(c)

    game = Game(base.players, fn)
    sv = ExactShapley(batch_size=20).solve(game)
    np.testing.assert_allclose(sv.values, solve_table(table), atol=1e-12)
    assert sv.n_evaluations == game.n_evaluations == 128 == sum(calls)
    # v(empty) is evaluated first, then ceil(128 / 20) = 7 batches of at most 20 rows
    assert max(calls) <= 20 and len(calls) == 7
    # a second solve reuses the cache
    again = ExactShapley().solve(game)
    assert again.n_evaluations == 0 and len(calls) == 7
    np.testing.assert_array_equal(again.values, sv.values)


def test_refuses_too_many_players():
    called = []
    game = Game([f"m{i}" for i in range(21)], lambda c: called.append(1) or c.sum(axis=1))
    with pytest.raises(ValueError, match=r"n=21 players.*max_players=20.*PermutationShapley"):
        ExactShapley().solve(game)
    assert called == []
    small = Game(["a", "b", "c"], lambda c: c.sum(axis=1) * 1.0)
    with pytest.raises(ValueError, match="max_players=2"):
        ExactShapley(max_players=2).solve(small)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"batch_size": 0}, "batch_size"), ({"max_players": 1.5}, "max_players")],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExactShapley(**kwargs).solve(Game(["a"], lambda c: c.sum(axis=1) * 1.0))


@settings(max_examples=25, deadline=None)
@given(tables(), st.integers(1, 4))
def test_tables_solve_many_games_at_once(table, n_games):
    """shapley_from_tables on a batch equals ExactShapley on each game."""
    from shiftattr.shapley.exact import shapley_from_tables

    rng = np.random.default_rng(len(table))
    batch = np.column_stack([table * (g + 1) + rng.normal(size=len(table)) for g in range(n_games)])
    phi = shapley_from_tables(batch)
    assert phi.shape == (n_games, int(np.log2(len(table))))
    for g in range(n_games):
        np.testing.assert_allclose(phi[g], solve_table(batch[:, g]), atol=1e-12)


def test_tables_refuse_a_row_count_that_is_not_a_power_of_two():
    from shiftattr.shapley.exact import shapley_from_tables

    with pytest.raises(ValueError, match="2\\*\\*n rows"):
        shapley_from_tables(np.zeros(6))
