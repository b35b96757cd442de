"""Exact Shapley values by evaluating all ``2**n`` coalitions."""

from __future__ import annotations

from math import comb

import numpy as np

from shiftattr.shapley.base import ShapleySolver, _check_game, _check_int
from shiftattr.shapley.game import Game
from shiftattr.shapley.values import ShapleyValues

__all__ = ["ExactShapley", "coalition_bitmasks", "shapley_from_tables"]

#: Coalitions per game call when ``batch_size`` is None (a 2**16 x n bool matrix).
_DEFAULT_BATCH = 2**16


class ExactShapley(ShapleySolver):
    """Exact Shapley values from all ``2**n`` coalitions.

    The coalitions are enumerated as the bitmasks ``0 .. 2**n - 1`` in batches, each
    batch one call of the game. With ``w(s) = s! (n-s-1)! / n!``,

    ``phi_i = sum_{S ∌ i} w(|S|) (v(S ∪ {i}) - v(S))``,

    computed from the table of the ``2**n`` values with array operations (a loop over
    the ``n`` players, none over coalitions); the table takes ``8 * 2**n`` bytes.
    The cost is ``2**n`` evaluations of the value function, so ``n`` is capped by
    ``max_players``; above it use :class:`~shiftattr.shapley.PermutationShapley`.

    Parameters
    ----------
    batch_size : int, optional
        Coalitions per game call, bounding memory to ``batch_size * n`` booleans plus
        what the value function needs for that many rows. Default ``2**16``. The
        :class:`~shiftattr.shapley.Game` has its own ``batch_size`` for the value
        function.
    max_players : int, default 20
        Refuse games with more players (``2**20`` is about a million coalitions).

    Examples
    --------
    The glove game: a left glove (``L1`` or ``L2``) and a right glove (``R``) are worth
    1 together.

    >>> import numpy as np
    >>> from shiftattr.shapley import ExactShapley, Game
    >>> def gloves(c):
    ...     return ((c[:, 0] | c[:, 1]) & c[:, 2]).astype(float)
    >>> sv = ExactShapley().solve(Game(["L1", "L2", "R"], gloves))
    >>> sv.values.round(4)
    array([0.1667, 0.1667, 0.6667])
    >>> sv.n_evaluations
    8
    """

    def __init__(self, batch_size: int | None = None, max_players: int = 20) -> None:
        self.batch_size = batch_size
        self.max_players = max_players

    def solve(self, game: Game) -> ShapleyValues:
        """Exact Shapley values of ``game``.

        Parameters
        ----------
        game : Game
            Players and batched value function.

        Returns
        -------
        ShapleyValues
            Exact values (``stderr`` is None); ``n_evaluations`` counts the coalitions
            this call evaluated (those already cached in ``game`` are not re-evaluated).

        Examples
        --------
        A unanimity game: worth 1 when both ``a`` and ``b`` are in; ``c`` is a null player.

        >>> game = Game(["a", "b", "c"], lambda c: (c[:, 0] & c[:, 1]).astype(float))
        >>> ExactShapley().solve(game).as_dict()
        {'a': 0.5, 'b': 0.5, 'c': 0.0}
        """
        game = _check_game(game)
        batch_size = _check_int("batch_size", self.batch_size, 1, allow_none=True) or _DEFAULT_BATCH
        max_players = _check_int("max_players", self.max_players, 1)
        n = game.n_players
        if n > max_players:
            raise ValueError(
                f"ExactShapley evaluates all 2**n coalitions: {2**n:,} for the n={n} players "
                f"of this game, above max_players={max_players}. Estimate the values with "
                "PermutationShapley(tol=..., max_evaluations=...) instead, or raise "
                "max_players if the value function is cheap enough."
            )
        start_evaluations = game.n_evaluations

        # every coalition's value, indexed by bitmask (player i is bit i)
        n_coalitions = 2**n
        table = np.empty(n_coalitions)
        sizes = np.empty(n_coalitions, dtype=np.uint8)
        for start in range(0, n_coalitions, batch_size):
            stop = min(start + batch_size, n_coalitions)
            C = coalition_bitmasks(n, start, stop)
            table[start:stop] = game(C)
            sizes[start:stop] = C.sum(axis=1)

        phi = shapley_from_tables(table, sizes)
        total = float(table[-1] - table[0])
        return ShapleyValues.efficient(
            game.players, phi, total, n_evaluations=game.n_evaluations - start_evaluations
        )


def coalition_bitmasks(n: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """The coalitions of ``n`` players in bitmask order: row ``code`` holds player ``i``
    iff bit ``i`` of ``code`` is set (the layout :func:`shapley_from_tables` reads).

    Parameters
    ----------
    n : int
    start, stop : int, optional
        Rows ``start .. stop - 1`` only (default all ``2**n``).

    Returns
    -------
    bool ndarray of shape (stop - start, n)

    Examples
    --------
    >>> coalition_bitmasks(2).astype(int).tolist()
    [[0, 0], [1, 0], [0, 1], [1, 1]]
    """
    codes = np.arange(start, 2**n if stop is None else stop, dtype=np.int64)
    return ((codes[:, None] >> np.arange(n, dtype=np.int64)) & 1).astype(bool)


def shapley_from_tables(tables: np.ndarray, sizes: np.ndarray | None = None) -> np.ndarray:
    """Exact Shapley values from coalition values indexed by bitmask, for many games at once.

    With ``w(s) = s! (n-s-1)! / n!``, ``phi_i = sum_{S ∌ i} w(|S|) (v(S ∪ {i}) - v(S))``,
    computed with array operations: a loop over the ``n`` players, none over coalitions
    or games. Used by :class:`ExactShapley` (one game) and by the fixed bootstrap of
    :func:`shiftattr.attribute` (one game per replicate, all solved together).

    Parameters
    ----------
    tables : ndarray of shape (2**n,) or (2**n, B)
        ``tables[code]`` is the value of the coalition whose members are the set bits of
        ``code`` (player ``i`` is bit ``i``); a second axis holds ``B`` games.
    sizes : ndarray of shape (2**n,), optional
        Number of members of every coalition (computed when omitted).

    Returns
    -------
    ndarray of shape (n,) or (B, n)

    Examples
    --------
    >>> shapley_from_tables(np.array([0.0, 1.0, 0.0, 2.0]))      # players a (bit 0), b
    array([1.5, 0.5])
    >>> shapley_from_tables(np.array([[0.0, 0.0], [1.0, 2.0], [0.0, 2.0], [2.0, 4.0]]))
    array([[1.5, 0.5],
           [2. , 2. ]])
    """
    tables = np.asarray(tables, dtype=float)
    n = int(tables.shape[0]).bit_length() - 1
    if tables.shape[0] != 2**n or tables.ndim not in (1, 2):
        raise ValueError(
            f"tables must have 2**n rows (one per coalition bitmask) and at most one batch "
            f"axis; got shape {tables.shape}."
        )
    if sizes is None:
        sizes = coalition_bitmasks(n).sum(axis=1)
    batch = tables.shape[1:]
    if n == 0:
        return np.empty((*batch, 0))
    # w[s] = s! (n-s-1)! / n! = 1 / (n * C(n-1, s)), s = 0 .. n-1
    w = np.array([1.0 / (n * comb(n - 1, s)) for s in range(n)])
    # As an n-dimensional 2 x ... x 2 array, axis n-1-i is player i's membership bit;
    # pairing S with S + {i} along that axis gives all marginal contributions at once,
    # weighted by the size of S. A null player gets exactly zero.
    cube = tables.reshape((2,) * n + batch)
    weight_cube = w[np.minimum(np.asarray(sizes), n - 1)].reshape((2,) * n)
    phi = np.empty((n, *batch))
    for i in range(n):
        axis = n - 1 - i
        marginal = cube.take(1, axis=axis) - cube.take(0, axis=axis)
        weights = weight_cube.take(0, axis=axis).reshape(-1)
        phi[i] = weights @ marginal.reshape((weights.size, *batch))
    return phi.T if batch else phi
