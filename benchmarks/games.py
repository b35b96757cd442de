"""Non-additive cooperative games with known Shapley values, for the solver comparison.

- :func:`unanimity_game`: a weighted sum of unanimity games ``u_S(C) = 1[S ⊆ C]``
  with random supports of several sizes; ``phi_i = sum_{S ∋ i} a_S / |S|`` exactly.
- :func:`iw_bench_game`: shiftattr's importance-weighting value function
  (:func:`shiftattr.attribution.iw_game`) on synthetic log-ratios and a Dice-like metric
  with interactions; exact values by :class:`~shiftattr.shapley.ExactShapley`. Its table
  of ``2**n`` values is kept so that solvers replay it at no cost.

Each returns a :class:`BenchGame`: a batched value function ``bool (k, n) -> (k,)``,
the exact values, and a name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from shiftattr.attribution import iw_game
from shiftattr.shapley import ExactShapley, Game


@dataclass(frozen=True)
class BenchGame:
    """A game with known Shapley values.

    Attributes
    ----------
    name : str
    n_players : int
    value_fn : callable
        Batched ``bool (k, n) -> float (k,)``.
    exact : ndarray of shape (n,)
    description : str
    """

    name: str
    n_players: int
    value_fn: Callable[[np.ndarray], np.ndarray]
    exact: np.ndarray
    description: str

    @property
    def players(self) -> list[str]:
        return [f"p{i}" for i in range(self.n_players)]


def unanimity_game(n: int, n_terms: int = 30, seed: int = 0) -> BenchGame:
    """A weighted sum of ``n_terms`` unanimity games on random supports.

    Support sizes are drawn uniformly from 1 to ``n``; weights are normal. The game has
    interactions of every order up to ``n``.

    Parameters
    ----------
    n : int
    n_terms : int, default 30
    seed : int, default 0

    Returns
    -------
    BenchGame
    """
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, n + 1, size=n_terms)
    members = np.zeros((n_terms, n), dtype=bool)
    for t, s in enumerate(sizes):
        members[t, rng.choice(n, size=s, replace=False)] = True
    weights = rng.normal(0.0, 1.0, size=n_terms)
    exact = (members * (weights / sizes)[:, None]).sum(axis=0)
    M = members.T.astype(np.int64)

    def value_fn(coalitions: np.ndarray) -> np.ndarray:
        C = np.asarray(coalitions, dtype=np.int64).reshape(-1, n)
        return (sizes == (C @ M)).astype(float) @ weights

    return BenchGame(
        name=f"unanimity_n{n}",
        n_players=n,
        value_fn=value_fn,
        exact=exact,
        description=(
            f"sum of {n_terms} unanimity games, {n} players, support sizes 1..{n}, "
            "normal weights; exact values in closed form"
        ),
    )


def iw_bench_game(n: int, n_samples: int = 20_000, sd: float = 0.3, seed: int = 0) -> BenchGame:
    """shiftattr's importance-weighting game on synthetic ratios (see module docstring).

    The log-ratios are normal with standard deviation ``sd``; the metric is a Dice-like
    score in ``[0, 1]`` that depends on the log-ratios with a pairwise interaction, so
    the game is not additive. The returned value function replays the table of the
    ``2**n`` values (exactly the values ``iw_game`` gives).

    Parameters
    ----------
    n : int
    n_samples : int, default 20000
    sd : float, default 0.3
    seed : int, default 0

    Returns
    -------
    BenchGame
    """
    rng = np.random.default_rng(seed)
    log_ratios = rng.normal(0.0, sd, size=(n, n_samples))
    beta = rng.normal(0.0, 1.0, size=n)
    signal = beta @ log_ratios + 0.5 * log_ratios[0] * log_ratios[1]
    metric = np.clip(0.8 - 0.1 * np.tanh(signal) + 0.05 * rng.normal(size=n_samples), 0, 1)
    players = [f"p{i}" for i in range(n)]
    codes = np.arange(2**n, dtype=np.int64)
    C = ((codes[:, None] >> np.arange(n)) & 1).astype(bool)
    table = iw_game(players, log_ratios, metric)(C)
    exact = ExactShapley().solve(Game.from_table(table, players=players)).values
    powers = np.left_shift(1, np.arange(n, dtype=np.int64))

    def value_fn(coalitions: np.ndarray) -> np.ndarray:
        return table[np.asarray(coalitions, dtype=np.int64).reshape(-1, n) @ powers]

    return BenchGame(
        name=f"iw_n{n}",
        n_players=n,
        value_fn=value_fn,
        exact=np.asarray(exact),
        description=(
            f"shiftattr.attribution.iw_game, {n} mechanisms, N = {n_samples:,} cases, "
            f"log-ratios N(0, {sd}^2), Dice-like metric with a pairwise interaction; "
            "exact values by ExactShapley"
        ),
    )


class CountingGame:
    """Wrap a batched value function and count the coalitions it is asked to evaluate.

    Accepts a single coalition (1-D) or a batch (2-D) of bools or 0/1 integers, so the
    same object serves shiftattr, shapiq (batches) and DoWhy (one vector at a time).
    """

    def __init__(self, value_fn: Callable[[np.ndarray], np.ndarray], n: int) -> None:
        self.value_fn = value_fn
        self.n = n
        self.count = 0

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        C = np.asarray(coalitions).astype(bool).reshape(-1, self.n)
        self.count += len(C)
        return self.value_fn(C)

    def scalar(self, coalition: np.ndarray) -> float:
        """One coalition -> float (DoWhy's set-function signature)."""
        return float(self(coalition)[0])
