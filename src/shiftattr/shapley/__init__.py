"""Cooperative games and Shapley-value solvers.

A :class:`Game` is a list of player names plus a *batched* value function
``coalitions: bool[k, n] -> float[k]``; it deduplicates and caches coalitions so that
each is evaluated once. A :class:`ShapleySolver` turns a game into
:class:`ShapleyValues`:

- :class:`ExactShapley` enumerates all ``2**n`` coalitions in batches (up to about
  20 players);
- :class:`PermutationShapley` samples permutations (antithetic pairs by default),
  reports standard errors and stops at a tolerance or an evaluation budget.

To add a solver, subclass :class:`ShapleySolver` and implement ``solve(game)``.

Examples
--------
>>> import numpy as np
>>> from shiftattr.shapley import ExactShapley, Game
>>> game = Game(["x", "y"], lambda c: c @ np.array([1.0, 2.0]) + c.all(axis=1))
>>> ExactShapley().solve(game).as_dict()
{'x': 1.5, 'y': 2.5}
"""

from __future__ import annotations

from shiftattr.shapley.base import ShapleySolver
from shiftattr.shapley.exact import ExactShapley, coalition_bitmasks, shapley_from_tables
from shiftattr.shapley.game import Game
from shiftattr.shapley.permutation import PermutationShapley
from shiftattr.shapley.values import ShapleyValues

__all__ = [
    "ExactShapley",
    "Game",
    "PermutationShapley",
    "ShapleySolver",
    "ShapleyValues",
    "coalition_bitmasks",
    "shapley_from_tables",
]
