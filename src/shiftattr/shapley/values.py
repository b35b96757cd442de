"""The result of a Shapley solver: one value per player, with standard errors if estimated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ShapleyValues"]

#: Relative tolerance of the efficiency check ``sum(values) == total`` (float rounding only).
_EFFICIENCY_RTOL = 1e-9


@dataclass(frozen=True, eq=False, repr=False)
class ShapleyValues:
    """Shapley values of the players of a game.

    The values are *efficient*: they sum to ``total = v(all players) - v(empty)``.
    This is checked on construction (up to float rounding).

    Parameters
    ----------
    players : sequence of str
        Player names, in the order of ``values``.
    values : array-like of shape (n_players,)
        Shapley value of each player.
    total : float
        ``v(N) - v(∅)``, the quantity the values share out.
    stderr : array-like of shape (n_players,), optional
        Monte Carlo standard error of each value; ``None`` for exact values.
    n_evaluations : int, default 0
        Number of value-function evaluations (distinct coalitions) the solver made.
    n_permutations : int, optional
        Number of sampled permutations, for sampling solvers; ``None`` for exact values.

    Examples
    --------
    >>> import numpy as np
    >>> sv = ShapleyValues(("a", "b"), np.array([0.25, 0.75]), total=1.0, n_evaluations=4)
    >>> sv["b"]
    0.75
    >>> sv.as_dict()
    {'a': 0.25, 'b': 0.75}
    >>> sv
    ShapleyValues(2 players, total=1, exact, n_evaluations=4)
      a  0.25
      b  0.75
    """

    players: tuple[str, ...]
    values: np.ndarray
    total: float
    stderr: np.ndarray | None = None
    n_evaluations: int = 0
    n_permutations: int | None = None
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        players = tuple(self.players)
        values = np.array(self.values, dtype=float)
        if values.shape != (len(players),):
            raise ValueError(
                f"values must hold one number per player: {len(players)} players "
                f"{list(players)} but values of shape {values.shape}."
            )
        values.setflags(write=False)
        stderr = None
        if self.stderr is not None:
            stderr = np.array(self.stderr, dtype=float)
            if stderr.shape != values.shape:
                raise ValueError(
                    f"stderr must have the shape of values {values.shape}; got {stderr.shape}."
                )
            stderr.setflags(write=False)
        total = float(self.total)
        scale = max(abs(total), float(np.abs(values).sum()), np.finfo(float).tiny)
        if abs(values.sum() - total) > _EFFICIENCY_RTOL * scale:
            raise ValueError(
                f"values sum to {values.sum()!r} but total = v(N) - v(∅) is {total!r}; "
                "Shapley values must be efficient (sum to the total)."
            )
        object.__setattr__(self, "players", players)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "stderr", stderr)
        object.__setattr__(self, "total", total)
        object.__setattr__(self, "n_evaluations", int(self.n_evaluations))
        object.__setattr__(self, "_index", {p: i for i, p in enumerate(players)})

    @classmethod
    def efficient(
        cls,
        players: Sequence[str],
        values: np.ndarray,
        total: float,
        **kwargs: object,
    ) -> ShapleyValues:
        """Build the result after removing the float-rounding gap to efficiency.

        Solvers whose values are efficient in exact arithmetic call this: the gap
        ``total - sum(values)`` (a few ulps) is spread over the players in proportion
        to ``|value|``, so that the values sum to ``total`` to machine precision and a
        value that is exactly zero (a null player) stays zero.

        Parameters
        ----------
        players : sequence of str
        values : ndarray of shape (n_players,)
        total : float
        **kwargs
            Other fields: ``stderr``, ``n_evaluations``, ``n_permutations``.

        Returns
        -------
        ShapleyValues

        Examples
        --------
        >>> sv = ShapleyValues.efficient(("a", "b", "c"), np.array([0.1, 0.2, 0.0]), 0.3)
        >>> bool(abs(sv.values.sum() - 0.3) <= 1e-16), float(sv["c"])
        (True, 0.0)
        """
        values = np.array(values, dtype=float)
        magnitude = np.abs(values)
        scale = magnitude.sum()
        if scale > 0:
            values += (float(total) - values.sum()) * (magnitude / scale)
        elif values.size:  # all values exactly 0 but a rounding residue in the total
            values += (float(total) - values.sum()) / values.size
        return cls(tuple(players), values, total, **kwargs)  # type: ignore[arg-type]

    @property
    def exact(self) -> bool:
        """``True`` when the values are exact (no standard errors).

        Examples
        --------
        >>> ShapleyValues(("x",), [2.0], total=2.0).exact
        True
        >>> ShapleyValues(("x",), [2.0], total=2.0, stderr=[0.1], n_permutations=8).exact
        False
        """
        return self.stderr is None

    def as_dict(self) -> dict[str, float]:
        """Return the values as ``{player: value}``.

        Returns
        -------
        dict of str to float

        Examples
        --------
        >>> ShapleyValues(("x",), [2.0], total=2.0).as_dict()
        {'x': 2.0}
        """
        return {p: float(v) for p, v in zip(self.players, self.values)}

    def __getitem__(self, player: str) -> float:
        """Return the value of one player, by name.

        Parameters
        ----------
        player : str

        Returns
        -------
        float

        Examples
        --------
        >>> ShapleyValues(("x", "y"), [1.0, 2.0], total=3.0)["y"]
        2.0
        """
        try:
            return float(self.values[self._index[player]])
        except (KeyError, TypeError):
            raise KeyError(f"no player {player!r}; the players are {list(self.players)}.") from None

    def __len__(self) -> int:
        return len(self.players)

    def __repr__(self) -> str:
        kind = "exact" if self.stderr is None else f"{self.n_permutations} permutations"
        head = (
            f"ShapleyValues({len(self.players)} players, total={self.total:.6g}, {kind}, "
            f"n_evaluations={self.n_evaluations})"
        )
        width = max(len(p) for p in self.players)
        lines = [head]
        for i, p in enumerate(self.players):
            line = f"  {p:<{width}}  {self.values[i]:.6g}"
            if self.stderr is not None:
                line += f"  (se {self.stderr[i]:.2g})"
            lines.append(line)
        return "\n".join(lines)
