"""The interface every Shapley solver implements."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod

import numpy as np

from shiftattr.shapley.game import Game
from shiftattr.shapley.values import ShapleyValues

__all__ = ["ShapleySolver"]


class ShapleySolver(ABC):
    """Compute the Shapley values of a :class:`~shiftattr.shapley.Game`.

    To add a solver, subclass and implement :meth:`solve`. As in scikit-learn,
    ``__init__`` only stores its parameters under the same names (this gives a
    readable ``repr``); checks happen in :meth:`solve`. Evaluate coalitions in as few,
    large batches as possible: ``game(coalitions)`` deduplicates and caches them.

    Examples
    --------
    A toy solver that splits ``v(N) - v(∅)`` equally (the Shapley value of symmetric
    games):

    >>> import numpy as np
    >>> from shiftattr.shapley import Game, ShapleySolver, ShapleyValues
    >>> class EqualSplit(ShapleySolver):
    ...     def solve(self, game):
    ...         total = game.full_value - game.empty_value
    ...         values = np.full(game.n_players, total / game.n_players)
    ...         return ShapleyValues(game.players, values, total, n_evaluations=2)
    >>> game = Game(["a", "b"], lambda c: c.sum(axis=1) ** 2.0)
    >>> EqualSplit().solve(game).as_dict()
    {'a': 2.0, 'b': 2.0}
    """

    @abstractmethod
    def solve(self, game: Game) -> ShapleyValues:
        """Shapley values of ``game``.

        Parameters
        ----------
        game : Game
            Players and batched value function.

        Returns
        -------
        ShapleyValues
            One value per player, summing to ``v(N) - v(∅)``.

        Examples
        --------
        >>> from shiftattr.shapley import ExactShapley, Game
        >>> game = Game(["a", "b"], lambda c: c.sum(axis=1) ** 2.0)
        >>> ExactShapley().solve(game).as_dict()
        {'a': 2.0, 'b': 2.0}
        """

    def __repr__(self) -> str:
        params = [
            name
            for name, p in inspect.signature(type(self).__init__).parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        args = ", ".join(f"{name}={getattr(self, name, '?')!r}" for name in params)
        return f"{type(self).__name__}({args})"


def _check_game(game: object) -> Game:
    """Return ``game``, or raise a ``TypeError`` saying how to build a :class:`Game`."""
    if not isinstance(game, Game):
        raise TypeError(
            f"solve() expects a shiftattr.shapley.Game, got {type(game).__name__}; "
            "wrap the value function: Game(players, value_fn)."
        )
    return game


def _check_int(name: str, value: object, minimum: int, allow_none: bool = False) -> int | None:
    """Return ``value`` as an int, or raise a ``ValueError`` naming the parameter."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        none = " or None" if allow_none else ""
        raise ValueError(f"{name} must be an integer >= {minimum}{none}; got {value!r}.")
    return int(value)
