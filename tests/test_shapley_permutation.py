"""Tests of shiftattr.shapley.PermutationShapley: accuracy, standard errors, stopping rules."""

from __future__ import annotations

import numpy as np
import pytest

from shiftattr.shapley import ExactShapley, Game, PermutationShapley


def all_coalitions(n: int) -> np.ndarray:
    codes = np.arange(2**n)
    return ((codes[:, None] >> np.arange(n)) & 1).astype(bool)


def random_table(n: int, seed: int) -> np.ndarray:
    """A non-additive game: random values for every coalition."""
    return np.random.default_rng(seed).normal(size=2**n)


def quadratic_plus_noise(n: int, noise: float, seed: int) -> np.ndarray:
    """v(S) = (sum of the weights in S)**2 + noise: strong order dependence, where a
    permutation and its reverse have nearly opposite marginal contributions (for the
    pure quadratic their average is exactly the Shapley value)."""
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.5, 2.0, size=n)
    table = (all_coalitions(n) @ weights) ** 2 + noise * rng.normal(size=2**n)
    table[0] = 0.0
    return table


def unanimity_sum(n: int, n_terms: int, min_size: int, seed: int):
    """A sum of unanimity games on random supports of ``min_size .. n`` players: the
    value function and the exact values ``sum_{S ∋ i} w_S / |S|``."""
    rng = np.random.default_rng(seed)
    members = np.zeros((n_terms, n), dtype=bool)
    for t in range(n_terms):
        members[t, rng.choice(n, size=rng.integers(min_size, n + 1), replace=False)] = True
    weights, sizes = rng.normal(size=n_terms), members.sum(axis=1)
    exact = (members * (weights / sizes)[:, None]).sum(axis=0)

    def value(c):
        return ((c.astype(int) @ members.T.astype(int)) == sizes) @ weights

    return value, exact


def exact_values(table: np.ndarray) -> np.ndarray:
    return ExactShapley().solve(Game.from_table(table)).values


def test_estimates_within_three_standard_errors_of_exact():
    table = random_table(6, seed=0)
    sv = PermutationShapley(n_permutations=400, random_state=0).solve(Game.from_table(table))
    exact = exact_values(table)
    assert sv.n_permutations == 400
    assert np.all(sv.stderr > 0)
    assert np.all(np.abs(sv.values - exact) < 3 * sv.stderr)
    # the estimate is efficient whatever the sampling error
    assert sv.values.sum() == pytest.approx(table[-1] - table[0], rel=1e-12)


@pytest.mark.parametrize(
    "antithetic, sampler, n_permutations",
    [(True, "random", 32), (False, "random", 32), (True, "cyclic", 100), (False, "cyclic", 100)],
)
def test_standard_errors_are_calibrated(antithetic, sampler, n_permutations):
    # Over many seeds the spread of the estimates matches the reported standard error;
    # for antithetic sampling this needs the SE over pair averages (a per-permutation
    # SE would be far too large on this game), for the cyclic sampler the SE over rounds
    # (10 or 20 rounds here: with fewer, the SE has few degrees of freedom).
    table = quadratic_plus_noise(5, noise=1.0, seed=3)
    game = Game.from_table(table)  # shared cache: all seeds reuse the 32 coalitions
    exact = exact_values(table)
    runs = [
        PermutationShapley(
            n_permutations=n_permutations, antithetic=antithetic, sampler=sampler, random_state=s
        ).solve(game)
        for s in range(150)
    ]
    estimates = np.array([r.values for r in runs])
    stderr = np.array([r.stderr for r in runs])
    ratio = estimates.std(axis=0) / np.sqrt((stderr**2).mean(axis=0))
    assert np.all((ratio > 0.75) & (ratio < 1.3)), ratio
    z = np.abs(estimates - exact) / stderr
    assert 0.88 < (z < 2).mean() < 0.99


def test_antithetic_lowers_rmse_at_equal_evaluations():
    table = quadratic_plus_noise(8, noise=0.5, seed=123)
    exact = exact_values(table)

    def rmse(antithetic: bool) -> float:
        errors = []
        for seed in range(10):
            solver = PermutationShapley(
                antithetic=antithetic, max_evaluations=60, batch_permutations=2, random_state=seed
            )
            sv = solver.solve(Game.from_table(table))
            assert 50 <= sv.n_evaluations <= 60
            errors.append(np.mean((sv.values - exact) ** 2))
        return float(np.sqrt(np.mean(errors)))

    # measured: about 0.2 with antithetic pairs vs 2.0 without
    assert rmse(True) < 0.3 * rmse(False)


def test_antithetic_pairs_are_exact_for_quadratic_games():
    table = quadratic_plus_noise(6, noise=0.0, seed=1)
    sv = PermutationShapley(n_permutations=2, random_state=0).solve(Game.from_table(table))
    np.testing.assert_allclose(sv.values, exact_values(table), rtol=1e-12)
    assert np.all(np.isnan(sv.stderr))  # one pair: no standard error can be estimated


def test_tol_stops_early_with_small_standard_errors():
    table = quadratic_plus_noise(6, noise=1.0, seed=5)
    solver = PermutationShapley(tol=0.05, batch_permutations=16, random_state=0)
    sv = solver.solve(Game.from_table(table))
    assert np.all(sv.stderr < 0.05)
    assert sv.n_permutations % 16 == 0
    assert 32 <= sv.n_permutations < 5000
    # one batch fewer would not have been enough
    fewer = PermutationShapley(
        n_permutations=sv.n_permutations - 16, batch_permutations=16, random_state=0
    ).solve(Game.from_table(table))
    np.testing.assert_array_equal(fewer.values.shape, sv.values.shape)
    assert sv.n_permutations == 32 or np.any(fewer.stderr >= 0.05)


@pytest.mark.parametrize("sampler, expected", [("random", 8), ("cyclic", 56)])
def test_tol_waits_for_two_batches_and_ten_rounds(sampler, expected):
    # an additive game has zero variance, so only the minimum is drawn: two batches of
    # two pairs; for cyclic rounds (3 pairs each for n = 3), batches until a tenth round
    # has begun: nine full rounds and the first batch reaching into the tenth, 28 pairs
    game = Game(["a", "b", "c"], lambda c: c @ np.array([1.0, 2.0, 3.0]))
    sv = PermutationShapley(tol=1e-3, batch_permutations=4, sampler=sampler, random_state=0).solve(
        game
    )
    assert sv.n_permutations == expected
    np.testing.assert_allclose(sv.values, [1.0, 2.0, 3.0])
    assert np.all(sv.stderr == 0)


@pytest.mark.parametrize("sampler", ["cyclic", "random"])
def test_tol_stopping_reports_honest_standard_errors_with_large_rounds(sampler):
    # 20 players: a cyclic round is 10 pairs, so stopping on the first rounds' error
    # estimate (a degree of freedom or two) would stop on lucky draws; the errors at
    # the stop must still be of the size of the reported standard errors
    n = 20
    value, exact = unanimity_sum(n, n_terms=30, min_size=1, seed=0)
    z = []
    for seed in range(40):
        game = Game([f"p{i}" for i in range(n)], value)
        sv = PermutationShapley(tol=0.2, sampler=sampler, random_state=seed).solve(game)
        z.append((sv.values - exact) / sv.stderr)
    rms = float(np.sqrt(np.mean(np.square(z))))
    assert rms < 1.5, rms  # the bug this guards against gave 5.0 for cyclic


@pytest.mark.parametrize("budget", [16, 25, 50, 100])
@pytest.mark.parametrize("antithetic", [True, False])
def test_max_evaluations_is_respected(budget, antithetic):
    rows = []
    base = Game.from_table(random_table(8, seed=2))

    def fn(c):
        rows.append(len(c))
        return base(c)

    game = Game(base.players, fn)
    solver = PermutationShapley(
        antithetic=antithetic, max_evaluations=budget, batch_permutations=4, random_state=0
    )
    sv = solver.solve(game)
    assert sv.n_evaluations == sum(rows) == game.n_evaluations <= budget
    # the budget was used: a unit costs at most 2 * (n - 1) = 14 new evaluations
    assert sv.n_evaluations > budget - 14
    assert sv.values.sum() == pytest.approx(base.full_value - base.empty_value, rel=1e-12)


def test_budget_too_small_for_one_permutation():
    # a pair of 6 players: empty, full and 2 x 5 proper prefixes = 12 coalitions
    game = Game.from_table(random_table(6, seed=0))
    with pytest.raises(ValueError, match=r"max_evaluations=5 is too small.*pair alone needs 12"):
        PermutationShapley(max_evaluations=5, random_state=0).solve(game)


def test_one_game_call_per_batch_and_duplicates_evaluated_once():
    n_calls = []
    base = Game.from_table(random_table(4, seed=1))

    def fn(c):
        n_calls.append(len(c))
        assert len({row.tobytes() for row in c}) == len(c)  # no duplicate rows
        return base(c)

    game = Game(base.players, fn)
    sv = PermutationShapley(n_permutations=64, batch_permutations=16, random_state=0).solve(game)
    # 4 batches -> at most 4 value_fn calls (none once the 16 coalitions are all cached)
    assert len(n_calls) <= 4
    assert sv.n_evaluations == sum(n_calls) == 16
    np.testing.assert_allclose(sv.values.sum(), base.full_value - base.empty_value)


def test_same_seed_same_numbers():
    table = random_table(7, seed=4)

    def run(random_state):
        return PermutationShapley(n_permutations=64, random_state=random_state).solve(
            Game.from_table(table)
        )

    a, b, c = run(7), run(7), run(8)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.stderr, b.stderr)
    assert a.n_evaluations == b.n_evaluations
    assert not np.array_equal(a.values, c.values)
    g1, g2 = run(np.random.default_rng(3)), run(np.random.default_rng(3))
    np.testing.assert_array_equal(g1.values, g2.values)


def test_permutation_budget_and_default():
    game = Game.from_table(random_table(3, seed=0))
    assert PermutationShapley(n_permutations=10, random_state=0).solve(game).n_permutations == 10
    plain = PermutationShapley(n_permutations=7, antithetic=False, batch_permutations=3)
    assert plain.solve(game).n_permutations == 7
    # with a budget that can never be spent (8 coalitions) and no other stopping rule,
    # the default number of permutations ends the run
    fresh = Game.from_table(random_table(3, seed=0))
    default = PermutationShapley(max_evaluations=1000, random_state=0).solve(fresh)
    assert default.n_permutations == 1000
    assert default.n_evaluations == 8


def test_single_player():
    game = Game(["only"], lambda c: 1.0 + 4.0 * c[:, 0])
    sv = PermutationShapley(n_permutations=4, random_state=0).solve(game)
    assert sv.as_dict() == {"only": 4.0}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_permutations": 7}, r"n_permutations=7 must be even.*antithetic=False"),
        ({"batch_permutations": 5, "tol": 0.1}, "batch_permutations=5 must be even"),
        ({"n_permutations": 0}, "n_permutations must be an integer >= 2"),
        ({"tol": -1.0}, "tol must be a positive"),
        ({"tol": "small"}, "tol must be a positive"),
        ({"max_evaluations": 0, "tol": 0.1}, "max_evaluations must be an integer >= 1"),
        ({"antithetic": "yes", "tol": 0.1}, "antithetic must be True or False"),
        ({"random_state": "seed", "tol": 0.1}, "random_state must be"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PermutationShapley(**kwargs).solve(Game(["a", "b"], lambda c: c.sum(axis=1) * 1.0))


def test_samplers_beat_random_shuffles_on_unanimity_games():
    # a sum of 12 unanimity games on random supports of 2..8 of the 8 players: exact
    # values sum_{S ∋ i} w_S / |S|; quasi-random orders cut the error by about 20%,
    # cyclic rounds (every predecessor-set size once per player) by about 30% at equal
    # permutations (more at equal evaluations: its rounds share coalitions)
    n = 8
    value, exact = unanimity_sum(n, n_terms=12, min_size=2, seed=0)
    game = Game([f"p{i}" for i in range(n)], value)

    def rmse(sampler):
        errors = [
            PermutationShapley(n_permutations=32, sampler=sampler, random_state=s)
            .solve(game)
            .values
            - exact
            for s in range(60)
        ]
        return np.sqrt(np.mean(np.square(errors)))

    assert rmse("halton") < 0.9 * rmse("random")
    assert rmse("cyclic") < 0.8 * rmse("random")


@pytest.mark.parametrize("n", [4, 5, 10])
@pytest.mark.parametrize("antithetic", [True, False])
def test_a_cyclic_round_gives_every_player_every_predecessor_size_once(n, antithetic):
    # v(S) = g(|S|): a player's contribution depends only on its number of predecessors,
    # so one round of the cyclic sampler is exact (each player meets each size once);
    # random shuffles are not
    g = np.random.default_rng(n).normal(size=n + 1)
    per_round = (n // 2 if n % 2 == 0 else n) * 2 if antithetic else n
    exact = (g[n] - g[0]) / n

    def solve(sampler):
        game = Game([f"p{i}" for i in range(n)], lambda c: g[c.sum(axis=1)])
        return PermutationShapley(
            n_permutations=per_round, antithetic=antithetic, sampler=sampler, random_state=3
        ).solve(game)

    cyclic = solve("cyclic")
    np.testing.assert_allclose(cyclic.values, exact, atol=1e-12)
    assert np.abs(solve("random").values - exact).max() > 1e-3
    # the rotations' prefixes are arcs of one cycle: with antithetic pairs and even n a
    # round of n permutations needs 3n²/4 - n/2 + 2 evaluations, not n(n - 1) + 2
    if antithetic and n % 2 == 0:
        assert cyclic.n_evaluations == 3 * n * n // 4 - n // 2 + 2
    else:
        assert cyclic.n_evaluations == n * (n - 1) + 2


def test_cyclic_sampler_is_unbiased():
    # every rotation is a uniformly random permutation: the mean over seeds of estimates
    # from one round and a cut-off one (14 permutations, rounds of 10 for n = 10) is the
    # exact value
    table = random_table(10, seed=4)
    game = Game.from_table(table)
    exact = exact_values(table)
    estimates = np.array(
        [
            PermutationShapley(n_permutations=14, random_state=s).solve(game).values
            for s in range(400)
        ]
    )
    z = (estimates.mean(axis=0) - exact) / (estimates.std(axis=0, ddof=1) / np.sqrt(400))
    assert np.all(np.abs(z) < 4), z


def test_unknown_sampler_is_refused():
    game = Game(["a", "b"], lambda c: c.sum(axis=1).astype(float))
    with pytest.raises(ValueError, match="sampler"):
        PermutationShapley(sampler="sobol").solve(game)
