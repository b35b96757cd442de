"""A cooperative game: player names plus a batched, cached value function.

Coalitions are boolean rows of shape ``(n_players,)``: entry ``i`` is ``True`` when
player ``i`` is in the coalition. A batch of ``k`` coalitions is a boolean matrix of
shape ``(k, n_players)``. Where a coalition is written as an integer (a *bitmask*,
as in :meth:`Game.from_table`), player ``i`` is bit ``i``: ``code = sum(2**i for i in S)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["Game"]

#: Largest number of players whose coalitions are cached under a 64-bit integer key;
#: beyond it the key is the packed bit row as a raw byte string.
_MAX_INT_KEY_PLAYERS = 64


class Game:
    """A cooperative game whose value function is evaluated in batches and cached.

    Every coalition is evaluated at most once: a call deduplicates its rows, looks them
    up in the cache of coalitions already evaluated, and passes only the new distinct
    coalitions to ``value_fn``, in batches of at most ``batch_size`` rows.

    Parameters
    ----------
    players : sequence of str
        Unique player names; column ``i`` of a coalition matrix is ``players[i]``.
    value_fn : callable
        ``value_fn(coalitions) -> values``: takes a boolean array of shape ``(k, n)``
        and returns ``k`` finite floats, one per row, in the same order.
    batch_size : int, optional
        Largest number of coalitions passed to ``value_fn`` in one call, to bound its
        memory. ``None`` (default) passes all new coalitions of a call at once.

    Attributes
    ----------
    players : tuple of str
    n_players : int
    n_evaluations : int
        Number of distinct coalitions evaluated so far (rows passed to ``value_fn``).

    Examples
    --------
    A game of three players whose value is the squared coalition size:

    >>> import numpy as np
    >>> game = Game(["a", "b", "c"], lambda c: c.sum(axis=1) ** 2.0)
    >>> game(np.array([[True, False, True], [True, True, True], [True, False, True]]))
    array([4., 9., 4.])
    >>> game.n_evaluations          # the repeated row was evaluated once
    2
    >>> game.full_value - game.empty_value
    9.0
    >>> game.n_evaluations          # the full coalition was already cached
    3
    """

    def __init__(
        self,
        players: Sequence[str],
        value_fn: Callable[[np.ndarray], Any],
        batch_size: int | None = None,
    ) -> None:
        if isinstance(players, str):
            raise TypeError(
                f"players must be a sequence of names, not the single string {players!r}; "
                f"wrap it in a list: [{players!r}]."
            )
        players = tuple(players)
        if not players:
            raise ValueError("a game needs at least one player; players is empty.")
        for i, p in enumerate(players):
            if not isinstance(p, str):
                raise TypeError(
                    f"player names must be strings; players[{i}] is {p!r} "
                    f"({type(p).__name__}). Convert the names with str()."
                )
        duplicates = sorted({p for p in players if players.count(p) > 1})
        if duplicates:
            raise ValueError(f"player names must be unique; repeated: {duplicates}.")
        if not callable(value_fn):
            raise TypeError(
                f"value_fn must be callable (bool array (k, n) -> float array (k,)), "
                f"got {type(value_fn).__name__}."
            )
        if batch_size is not None and (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}.")
        self._players: tuple[str, ...] = players
        self._value_fn = value_fn
        self.batch_size = None if batch_size is None else int(batch_size)
        n = len(players)
        key_dtype = (
            np.dtype(np.uint64) if n <= _MAX_INT_KEY_PLAYERS else np.dtype((np.void, -(-n // 8)))
        )
        # the cache: keys kept sorted, values aligned with them
        self._cache_keys = np.empty(0, dtype=key_dtype)
        self._cache_values = np.empty(0, dtype=float)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_table(
        cls,
        table: Sequence[float] | np.ndarray,
        players: Sequence[str] | None = None,
        batch_size: int | None = None,
    ) -> Game:
        """Game given by the value of every coalition, indexed by bitmask.

        Parameters
        ----------
        table : array-like of shape (2**n,)
            ``table[code]`` is the value of the coalition whose bitmask is ``code``
            (player ``i`` is bit ``i``); ``table[0]`` is the empty coalition.
        players : sequence of str, optional
            Player names; default ``("p0", "p1", ...)``.
        batch_size : int, optional
            See :class:`Game`.

        Returns
        -------
        Game

        Examples
        --------
        >>> game = Game.from_table([0.0, 1.0, 2.0, 5.0], players=["x", "y"])
        >>> game(np.array([[True, False], [True, True]]))
        array([1., 5.])
        """
        values = np.array(table, dtype=float).ravel()
        n = int(np.log2(max(values.size, 1)))
        if values.size < 2 or values.size != 2**n:
            raise ValueError(
                f"table must hold one value per coalition, 2**n entries for n players; "
                f"got {values.size} entries."
            )
        if players is None:
            players = tuple(f"p{i}" for i in range(n))
        elif len(players) != n:
            raise ValueError(
                f"table has 2**{n} entries, i.e. {n} players, but {len(players)} player "
                f"names were given: {list(players)}."
            )
        values.setflags(write=False)
        powers = np.left_shift(1, np.arange(n, dtype=np.int64))

        def value_fn(coalitions: np.ndarray) -> np.ndarray:
            return values[coalitions.astype(np.int64) @ powers]

        return cls(players, value_fn, batch_size=batch_size)

    # ------------------------------------------------------------------ properties
    @property
    def players(self) -> tuple[str, ...]:
        """Player names, in column order of the coalition matrices.

        Examples
        --------
        >>> Game(["x", "y"], lambda c: c.sum(axis=1) * 1.0).players
        ('x', 'y')
        """
        return self._players

    @property
    def n_players(self) -> int:
        """Number of players.

        Examples
        --------
        >>> Game(["x", "y", "z"], lambda c: c.sum(axis=1) * 1.0).n_players
        3
        """
        return len(self._players)

    @property
    def n_evaluations(self) -> int:
        """Number of distinct coalitions evaluated so far (rows passed to ``value_fn``).

        Examples
        --------
        >>> game = Game(["x", "y"], lambda c: c.sum(axis=1) * 1.0)
        >>> game.n_evaluations
        0
        >>> _ = game(np.array([[True, False], [True, False], [False, False]]))
        >>> game.n_evaluations
        2
        """
        return int(self._cache_keys.size)

    @property
    def empty_value(self) -> float:
        """Value of the empty coalition ``v(∅)`` (evaluated once, then cached).

        Examples
        --------
        >>> Game(["x", "y"], lambda c: c.sum(axis=1) + 1.0).empty_value
        1.0
        """
        return float(self(np.zeros((1, self.n_players), dtype=bool))[0])

    @property
    def full_value(self) -> float:
        """Value of the grand coalition ``v(N)`` (evaluated once, then cached).

        Examples
        --------
        >>> Game(["x", "y"], lambda c: c.sum(axis=1) + 1.0).full_value
        3.0
        """
        return float(self(np.ones((1, self.n_players), dtype=bool))[0])

    # ------------------------------------------------------------------ helpers
    def coalition(self, members: Sequence[str]) -> np.ndarray:
        """Boolean row of the coalition made of the named players.

        Parameters
        ----------
        members : sequence of str
            Names of the players in the coalition.

        Returns
        -------
        ndarray of bool, shape (n_players,)

        Examples
        --------
        >>> game = Game(["a", "b", "c"], lambda c: c.sum(axis=1))
        >>> game.coalition(["c", "a"])
        array([ True, False,  True])
        """
        if isinstance(members, str):
            members = [members]
        index = {p: i for i, p in enumerate(self._players)}
        row = np.zeros(self.n_players, dtype=bool)
        for m in members:
            if m not in index:
                raise KeyError(f"unknown player {m!r}; the players are {list(self._players)}.")
            row[index[m]] = True
        return row

    def is_new(self, coalitions: np.ndarray) -> np.ndarray:
        """Which rows a call on ``coalitions`` would pass to ``value_fn``.

        Parameters
        ----------
        coalitions : bool ndarray of shape (k, n_players)

        Returns
        -------
        ndarray of bool, shape (k,)
            ``True`` at the first occurrence of every coalition that is not cached yet;
            its sum is the number of evaluations the call would cost.

        Examples
        --------
        >>> game = Game(["a", "b"], lambda c: c.sum(axis=1) * 1.0)
        >>> _ = game(np.array([[True, False]]))
        >>> game.is_new(np.array([[True, False], [False, True], [False, True]]))
        array([False,  True, False])
        """
        C = self._check_coalitions(coalitions)
        new = np.zeros(C.shape[0], dtype=bool)
        if C.shape[0] == 0:
            return new
        ukeys, first, _ = self._unique(C)
        found, _ = self._lookup(ukeys)
        new[first[~found]] = True
        return new

    # ------------------------------------------------------------------ evaluation
    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        """Evaluate a batch of coalitions, each distinct new one once.

        Parameters
        ----------
        coalitions : bool ndarray of shape (k, n_players)
            One coalition per row (0/1 integers are accepted too).

        Returns
        -------
        ndarray of float, shape (k,)
            Value of each row, in order; repeated and cached rows are not re-evaluated.

        Examples
        --------
        >>> game = Game(["a", "b"], lambda c: c @ np.array([1.0, 10.0]))
        >>> game(np.array([[0, 1], [1, 1]]))
        array([10., 11.])
        """
        C = self._check_coalitions(coalitions)
        if C.shape[0] == 0:
            return np.empty(0, dtype=float)
        ukeys, first, inverse = self._unique(C)
        found, pos = self._lookup(ukeys)
        uvalues = np.empty(ukeys.size, dtype=float)
        uvalues[found] = self._cache_values[pos[found]]
        new = ~found
        if new.any():
            values = self._evaluate(C[first[new]])
            uvalues[new] = values
            # ukeys is sorted and pos[new] are the insertion points in the sorted cache,
            # so np.insert keeps the cache sorted.
            self._cache_keys = np.insert(self._cache_keys, pos[new], ukeys[new])
            self._cache_values = np.insert(self._cache_values, pos[new], values)
        return uvalues[inverse]

    def __repr__(self) -> str:
        return (
            f"Game(players={list(self._players)}, n_evaluations={self.n_evaluations}, "
            f"batch_size={self.batch_size})"
        )

    # ------------------------------------------------------------------ internals
    def _check_coalitions(self, coalitions: np.ndarray) -> np.ndarray:
        C = np.asarray(coalitions)
        n = self.n_players
        if C.ndim != 2 or C.shape[1] != n:
            hint = (
                " (a single coalition must be a (1, n) row: use row[None, :])"
                if C.ndim == 1
                else ""
            )
            raise ValueError(
                f"coalitions must be an array of shape (k, {n}) for the {n} players "
                f"{list(self._players)}; got shape {C.shape}{hint}."
            )
        if C.dtype == bool:
            return np.ascontiguousarray(C)
        if C.dtype.kind not in "iuf" or not np.isin(C, (0, 1)).all():
            raise ValueError(
                f"coalitions must be boolean (or 0/1) membership rows; got dtype {C.dtype} "
                "with values other than 0 and 1."
            )
        return np.ascontiguousarray(C.astype(bool))

    def _encode(self, C: np.ndarray) -> np.ndarray:
        """One sortable key per row: the bitmask (n <= 64) or the packed bytes."""
        packed = np.packbits(C, axis=1, bitorder="little")
        if self._cache_keys.dtype == np.uint64:
            padded = np.zeros((C.shape[0], 8), dtype=np.uint8)
            padded[:, : packed.shape[1]] = packed
            return padded.view("<u8").ravel().astype(np.uint64, copy=False)
        return np.ascontiguousarray(packed).view(self._cache_keys.dtype).ravel()

    def _unique(self, C: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ukeys, first, inverse = np.unique(self._encode(C), return_index=True, return_inverse=True)
        return ukeys, first, inverse.reshape(-1)

    def _lookup(self, ukeys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For sorted unique keys: whether each is cached, and its cache position."""
        pos = np.searchsorted(self._cache_keys, ukeys)
        found = pos < self._cache_keys.size
        found[found] = self._cache_keys[pos[found]] == ukeys[found]
        return found, pos

    def _evaluate(self, rows: np.ndarray) -> np.ndarray:
        k = rows.shape[0]
        step = k if self.batch_size is None else self.batch_size
        out = np.empty(k, dtype=float)
        for start in range(0, k, step):
            batch = rows[start : start + step]
            values = np.asarray(self._value_fn(batch), dtype=float)
            if values.shape != (batch.shape[0],):
                raise ValueError(
                    f"value_fn returned an array of shape {values.shape} for "
                    f"{batch.shape[0]} coalitions; it must return one float per coalition, "
                    f"shape ({batch.shape[0]},)."
                )
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                shown = "; ".join(f"{self._describe(batch[j])} -> {values[j]}" for j in bad[:5])
                more = f" (and {bad.size - 5} more)" if bad.size > 5 else ""
                raise ValueError(
                    f"value_fn returned non-finite values for {bad.size} of "
                    f"{batch.shape[0]} coalitions: {shown}{more}. Every coalition needs a "
                    "finite value; check the value function on these coalitions (for an "
                    "importance-weighted mean: overflowing or all-zero weights)."
                )
            out[start : start + step] = values
        return out

    def _describe(self, row: np.ndarray) -> str:
        return "{" + ", ".join(p for p, inside in zip(self._players, row) if inside) + "}"
