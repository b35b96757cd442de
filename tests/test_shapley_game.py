"""Tests of shiftattr.shapley.Game: batching, deduplication, cache, validation."""

from __future__ import annotations

import numpy as np
import pytest

from shiftattr.shapley import Game


class Recorder:
    """A value function v(S) = sum of player weights, recording every call."""

    def __init__(self, n: int) -> None:
        self.weights = 10.0 ** np.arange(n)
        self.calls: list[np.ndarray] = []

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        assert coalitions.dtype == bool
        self.calls.append(coalitions.copy())
        return coalitions @ self.weights

    @property
    def rows(self) -> int:
        return sum(c.shape[0] for c in self.calls)


def test_values_in_input_order_with_duplicates():
    fn = Recorder(3)
    game = Game(["a", "b", "c"], fn)
    C = np.array([[1, 0, 1], [0, 0, 0], [1, 0, 1], [1, 1, 1], [0, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(game(C), [101.0, 0.0, 101.0, 111.0, 0.0])
    # the 5 rows hold 3 distinct coalitions, each passed to value_fn once
    assert fn.rows == 3
    assert game.n_evaluations == 3
    passed = np.concatenate(fn.calls)
    assert len({row.tobytes() for row in passed}) == 3


def test_cache_evaluates_only_new_coalitions():
    fn = Recorder(3)
    game = Game(["a", "b", "c"], fn)
    game(np.array([[1, 0, 0], [0, 1, 0]], dtype=bool))
    out = game(np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 0, 1]], dtype=bool))
    np.testing.assert_array_equal(out, [10.0, 100.0, 1.0, 100.0])
    assert len(fn.calls) == 2
    np.testing.assert_array_equal(fn.calls[1], [[False, False, True]])
    assert game.n_evaluations == 3
    # a call made only of cached coalitions does not call value_fn at all
    game(np.array([[0, 0, 1], [1, 0, 0]], dtype=bool))
    assert len(fn.calls) == 2


def test_cache_is_consistent_over_many_random_calls():
    rng = np.random.default_rng(0)
    n = 7
    fn = Recorder(n)
    game = Game([f"p{i}" for i in range(n)], fn)
    seen: set[bytes] = set()
    for _ in range(20):
        C = rng.random((30, n)) < 0.5
        np.testing.assert_array_equal(game(C), C @ fn.weights)
        seen.update(row.tobytes() for row in C)
        assert game.n_evaluations == len(seen) == fn.rows


def test_batch_size_bounds_value_fn_calls():
    fn = Recorder(4)
    game = Game(list("abcd"), fn, batch_size=3)
    codes = np.arange(16)
    C = ((codes[:, None] >> np.arange(4)) & 1).astype(bool)
    np.testing.assert_array_equal(game(C), C @ fn.weights)
    assert [c.shape[0] for c in fn.calls] == [3, 3, 3, 3, 3, 1]


def test_many_players_use_byte_keys():
    # more than 64 players: the cache keys are packed byte strings, not integers
    n = 70
    rng = np.random.default_rng(1)
    calls = []

    def fn(c):
        calls.append(len(c))
        return c.sum(axis=1).astype(float) + c[:, -1]

    game = Game([f"x{i}" for i in range(n)], fn)
    C = rng.random((10, n)) < 0.5
    C[3] = C[7]
    C[5, -1] = ~C[2, -1]
    C[5, :-1] = C[2, :-1]  # rows 2 and 5 differ only in the last player
    out = game(np.concatenate([C, C[::-1]]))
    np.testing.assert_array_equal(out[:10], C.sum(axis=1) + C[:, -1])
    np.testing.assert_array_equal(out[10:], out[:10][::-1])
    assert game.n_evaluations == 9 == sum(calls)
    assert game.is_new(C).sum() == 0


def test_is_new_marks_first_uncached_occurrences():
    game = Game(["a", "b"], Recorder(2))
    game(np.array([[True, True]]))
    C = np.array([[0, 1], [1, 1], [0, 1], [0, 0]], dtype=bool)
    np.testing.assert_array_equal(game.is_new(C), [True, False, False, True])
    assert game.n_evaluations == 1  # is_new does not evaluate


def test_empty_and_full_value():
    fn = Recorder(3)
    game = Game(["a", "b", "c"], lambda c: fn(c) + 5.0)
    assert game.empty_value == 5.0
    assert game.full_value == 116.0
    assert game.full_value - game.empty_value == 111.0
    assert fn.rows == 2


def test_integer_coalitions_are_accepted_and_share_the_cache():
    fn = Recorder(2)
    game = Game(["a", "b"], fn)
    np.testing.assert_array_equal(game(np.array([[1, 0], [0, 1]])), [1.0, 10.0])
    game(np.array([[True, False]]))
    assert fn.rows == 2


def test_empty_batch_calls_nothing():
    fn = Recorder(2)
    out = Game(["a", "b"], fn)(np.zeros((0, 2), dtype=bool))
    assert out.shape == (0,)
    assert fn.calls == []


@pytest.mark.parametrize(
    ("coalitions", "match"),
    [
        (np.array([True, False]), r"shape \(k, 2\).*\(1, n\) row"),
        (np.zeros((3, 3), dtype=bool), r"shape \(k, 2\).*got shape \(3, 3\)"),
        (np.array([[0, 2]]), "boolean"),
        (np.array([["a", "b"]]), "boolean"),
    ],
)
def test_bad_coalitions_are_rejected(coalitions, match):
    game = Game(["a", "b"], Recorder(2))
    with pytest.raises(ValueError, match=match):
        game(coalitions)


def test_value_fn_wrong_shape_is_reported():
    game = Game(["a", "b"], lambda c: np.zeros((len(c), 1)))
    with pytest.raises(ValueError, match=r"shape \(2, 1\) for 2 coalitions.*shape \(2,\)"):
        game(np.array([[1, 0], [0, 1]], dtype=bool))


def test_non_finite_values_name_the_coalitions():
    def fn(c):
        out = c.sum(axis=1).astype(float)
        out[c[:, 0] & c[:, 2]] = np.nan
        out[~c.any(axis=1)] = np.inf
        return out

    game = Game(["X", "Y", "Z"], fn)
    C = np.array([[1, 0, 0], [1, 1, 1], [0, 0, 0]], dtype=bool)
    with pytest.raises(ValueError, match="non-finite") as info:
        game(C)
    message = str(info.value)
    assert "{X, Y, Z} -> nan" in message
    assert "{} -> inf" in message
    assert "{X}" not in message
    assert game.n_evaluations == 0  # nothing was cached


@pytest.mark.parametrize(
    ("players", "error", "match"),
    [
        ([], ValueError, "at least one player"),
        (["a", "b", "a"], ValueError, r"unique.*\['a'\]"),
        ("abc", TypeError, "single string"),
        (["a", 2], TypeError, r"players\[1\]"),
    ],
)
def test_bad_players_are_rejected(players, error, match):
    with pytest.raises(error, match=match):
        Game(players, lambda c: c.sum(axis=1))


def test_bad_value_fn_and_batch_size_are_rejected():
    with pytest.raises(TypeError, match="callable"):
        Game(["a"], 3.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        Game(["a"], lambda c: c.sum(axis=1), batch_size=0)


def test_from_table_uses_bitmask_order():
    # player i is bit i: code 1 = {p0}, code 2 = {p1}, code 3 = {p0, p1}
    game = Game.from_table([0.0, 1.0, 2.0, 7.0])
    assert game.players == ("p0", "p1")
    np.testing.assert_array_equal(
        game(np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=bool)), [0.0, 1.0, 2.0, 7.0]
    )
    with pytest.raises(ValueError, match="2\\*\\*n entries"):
        Game.from_table([0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="2 players, but 3 player names"):
        Game.from_table([0.0, 1.0, 2.0, 3.0], players=["a", "b", "c"])


def test_coalition_builds_rows_by_name():
    game = Game(["a", "b", "c"], Recorder(3))
    np.testing.assert_array_equal(game.coalition(["c", "a"]), [True, False, True])
    np.testing.assert_array_equal(game.coalition("b"), [False, True, False])
    with pytest.raises(KeyError, match=r"unknown player 'd'.*\['a', 'b', 'c'\]"):
        game.coalition(["d"])
