"""Prototype of quasi-random permutations for PermutationShapley (a proposed library patch).

Not part of the library: the benchmark runs it beside
:class:`~shiftattr.shapley.PermutationShapley` to show what the patch would buy. The
first permutation of every antithetic pair is the ``argsort`` of a point of a scrambled
Halton sequence instead of a uniformly random shuffle (DoWhy's permutation sampler does
this, without the antithetic pairs). Low-discrepancy points spread the relative orders
of players more evenly than independent shuffles, which is what the marginal
contributions of high-order interactions (unanimity games) depend on.

The prototype reuses the library's solver unchanged (cache, budget, antithetic pairs,
standard errors) and only swaps the generator it draws shuffles from; the library patch
is a ``sampler={"random", "halton"}`` parameter doing the same inside ``solve``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import qmc

from shiftattr.shapley import PermutationShapley


class _HaltonShuffles:
    """Stands in for the solver's ``numpy.random.Generator``: ``permuted`` draws Halton orders."""

    def __init__(self, seed: int | None) -> None:
        self._seed = seed
        self._halton: qmc.Halton | None = None

    def permuted(self, rows: np.ndarray, axis: int = 1) -> np.ndarray:
        n = rows.shape[1]
        if self._halton is None:
            self._halton = qmc.Halton(d=n, scramble=True, seed=self._seed)
        return np.argsort(self._halton.random(rows.shape[0]), axis=1)


class HaltonPermutationShapley(PermutationShapley):
    """:class:`~shiftattr.shapley.PermutationShapley` drawing scrambled-Halton permutations."""

    def _rng(self):  # type: ignore[override]
        seed = self.random_state if isinstance(self.random_state, int) else None
        return _HaltonShuffles(seed)
