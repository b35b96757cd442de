"""Ground-truth attributions: the coalition table ``ΔM_I`` and its exact Shapley values."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shiftattr.shapley import ExactShapley, Game

__all__ = ["TrueAttribution", "all_coalitions", "shapley_from_table"]


def all_coalitions(mechanisms: Sequence[str]) -> list[tuple[str, ...]]:
    """Every subset of ``mechanisms`` (as tuples in the given order), smallest first.

    Parameters
    ----------
    mechanisms : sequence of str
        The players.

    Returns
    -------
    list of tuple of str
        The ``2**n`` coalitions, by size then in :func:`itertools.combinations` order.

    Examples
    --------
    >>> all_coalitions(["A", "B"])
    [(), ('A',), ('B',), ('A', 'B')]
    """
    mechs = tuple(mechanisms)
    return [c for r in range(len(mechs) + 1) for c in itertools.combinations(mechs, r)]


def shapley_from_table(
    mechanisms: Sequence[str], value: Callable[[tuple[str, ...]], float] | dict
) -> dict[str, float]:
    """Exact Shapley values of a game given coalition by coalition.

    Parameters
    ----------
    mechanisms : sequence of str
    value : dict or callable
        ``{coalition tuple: v}`` (tuples in ``mechanisms`` order) or a callable on
        such tuples.

    Returns
    -------
    dict
        Mechanism -> Shapley value.

    Examples
    --------
    >>> shapley_from_table(["A", "B"], {(): 0, ("A",): 1, ("B",): 0, ("A", "B"): 2})
    {'A': 1.5, 'B': 0.5}
    """
    mechs = tuple(mechanisms)
    lookup = value.__getitem__ if isinstance(value, dict) else value
    # bitmask table (player i = bit i), the layout Game.from_table expects
    codes = np.arange(2 ** len(mechs))
    table = [
        float(lookup(tuple(m for i, m in enumerate(mechs) if code >> i & 1))) for code in codes
    ]
    sv = ExactShapley().solve(Game.from_table(table, players=mechs))
    return {m: float(v) for m, v in zip(mechs, sv.values)}


@dataclass(frozen=True)
class TrueAttribution:
    """The ground truth a simulator knows: ``ΔM_I`` for every coalition and Shapley values.

    Attributes
    ----------
    mechanisms : tuple of str
    values : dict
        Mechanism -> exact Shapley value of the game ``ΔM_I`` (positive = drop).
    delta_m : dict
        Coalition (tuple of mechanisms) -> ``M(source) - M(P_I)``.
    source_metric, target_metric : float
        ``M(source)`` and ``M(target)``.
    stderr : dict or None
        Monte-Carlo standard errors of ``values`` (None when exact in closed form).
    n : int or None
        Simulated cases per coalition (None when exact).
    extra : dict
        Simulator-specific details.
    higher_is_better : bool or None, default True
        The metric's direction, which decides :attr:`dominant` (``None``: unknown, the
        largest absolute value).

    Examples
    --------
    >>> table = {(): 0.0, ("A",): 0.1, ("B",): 0.0, ("A", "B"): 0.3}
    >>> truth = TrueAttribution(("A", "B"), shapley_from_table(("A", "B"), table), table,
    ...                         source_metric=0.9, target_metric=0.6)
    >>> {k: round(v, 4) for k, v in truth.values.items()}
    {'A': 0.2, 'B': 0.1}
    """

    mechanisms: tuple[str, ...]
    values: dict[str, float]
    delta_m: dict[tuple[str, ...], float]
    source_metric: float
    target_metric: float
    stderr: dict[str, float] | None = None
    n: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    higher_is_better: bool | None = True

    @property
    def total(self) -> float:
        """``ΔM`` with every mechanism shifted (the values sum to it).

        Examples
        --------
        >>> table = {(): 0.0, ("A",): 0.1, ("B",): 0.0, ("A", "B"): 0.3}
        >>> truth = TrueAttribution(("A", "B"), shapley_from_table(("A", "B"), table),
        ...                         table, source_metric=0.9, target_metric=0.6)
        >>> truth.total
        0.3
        """
        return self.delta_m[tuple(self.mechanisms)]

    @property
    def dominant(self) -> str:
        """Mechanism whose shift moved the metric most in the direction it changed overall.

        The rule of :attr:`shiftattr.Attribution.dominant`
        (:func:`shiftattr.results.dominant_mechanism`): where the metric got worse, the
        mechanism that worsened it most; where it got better, the one that improved it
        most; the largest absolute value where the direction is unknown.

        Examples
        --------
        >>> table = {(): 0.0, ("A",): 0.1, ("B",): 0.0, ("A", "B"): 0.3}
        >>> truth = TrueAttribution(("A", "B"), shapley_from_table(("A", "B"), table),
        ...                         table, source_metric=0.9, target_metric=0.6)
        >>> truth.dominant
        'A'
        """
        from shiftattr.results import dominant_mechanism

        return dominant_mechanism(self.values, self.higher_is_better)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (coalitions written as ``"A+B"``, empty as ``"∅"``).

        Returns
        -------
        dict
            Keys ``mechanisms, values, stderr, delta_m, source_metric, target_metric,
            n``; what :func:`shiftattr.report.write_report` takes as ``truth``.

        Examples
        --------
        >>> table = {(): 0.0, ("A",): 0.1, ("B",): 0.0, ("A", "B"): 0.3}
        >>> truth = TrueAttribution(("A", "B"), shapley_from_table(("A", "B"), table),
        ...                         table, source_metric=0.9, target_metric=0.6)
        >>> truth.to_dict()["delta_m"]
        {'∅': 0.0, 'A': 0.1, 'B': 0.0, 'A+B': 0.3}
        """
        return {
            "mechanisms": list(self.mechanisms),
            "values": dict(self.values),
            "stderr": None if self.stderr is None else dict(self.stderr),
            "delta_m": {("+".join(k) or "∅"): v for k, v in self.delta_m.items()},
            "source_metric": self.source_metric,
            "target_metric": self.target_metric,
            "n": self.n,
        }
