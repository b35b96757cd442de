"""Multiply-robust and regression estimates of ``M(P_I)`` for every coalition.

With the nested regressions ``h_k`` of :mod:`shiftattr.value.nested` and ``g_k`` the
outcome level ``k`` regresses (``h_{k+1}``, or the metric at the last level), the
multiply-robust estimate of ``M(P_I)`` is (Quintas-Martínez et al., 2024)

``M_MR(I) = E_{c_0}[g_0] + sum_{k>=1} E_{c_k}[ omega_k (g_k - h_k) ]``,

where ``E_e`` averages over the cases of environment ``e`` and
``omega_k(v_<k) = p_I(v_<k) / p_{c_k}(v_<k)`` reweights them to the coalition's mixed
distribution of the earlier variables: the product, over earlier levels ``l`` whose
environment differs from ``c_k``, of their conditional density ratios (``r_l`` at
source cases, ``1 / r_l`` at target cases). Each correction is self-normalised, and its
weights are truncated at ``sqrt(n)`` times their mean by default (Ionides, 2008,
"Truncated importance sampling"): under a strong shift a handful of weights would
otherwise decide the correction. Where the regression is right the correction has mean
zero whatever the weights, so truncating costs no bias; where it is wrong, the cap grows
with ``n`` and the estimate stays consistent.
The estimate is consistent when, level by level, either the regression or the ratio
is right, and its error is the product of the two errors. Dropping the corrections
gives the plain regression estimate ``M_REG(I) = E_{c_0}[g_0]``.

With no mechanism from the target every ``omega`` is one and the sum telescopes:
``M_MR(∅)`` is exactly the mean source metric, so ``v(∅) = 0``.

**Both samples** (``both_samples``). Every term of the sum is an expectation under
``p_I`` and can be taken over the cases of both environments at once, as draws from their
mixture ``q = (n_s p_s + n_t p_t) / (n_s + n_t)``, with the balance-heuristic weights of
:mod:`shiftattr.value.balance` restricted to the levels the term involves:

``M_MR(I) = sum_i u_0(i) g_0(i) + sum_{k>=1} sum_i u_k(i) (g_k(i) - h_k(i))``,

the sums over all ``n_s + n_t`` cases, with
``u_k ∝ p_I(v_<=k) / (n_s p_s(v_<=k) + n_t p_t(v_<=k))
= prod_{l<=k, l in I} r_l / (n_s + n_t prod_{l<=k} r_l)`` (from the source-relative
ratios at both kinds of case), normalised to sum one; the corrections' weights are
capped as above. The price: over its own environment's cases a term needs no ratio of
its own level (``V_k`` already follows mechanism ``c_k`` there), over both it needs that
ratio right, since the other environment's cases must be reweighted to ``c_k``'s
mechanism, and the first term leans on the first level's ratio. A too-flat ratio then
pulls the term towards the pooled mean, as it does ``"mis"``'s. The gain: ``M(∅)`` and
``M(all)`` are no longer the two samples' means, so their sampling error does not pass
into every value unchanged, and every coalition is averaged over the same cases. Terms
can be taken over both samples level by level (``both_samples`` as a list of levels).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from numbers import Real
from typing import Any

import numpy as np

from shiftattr.shapley import Game
from shiftattr.value.balance import mixture_log_density
from shiftattr.value.nested import NestedRegressions
from shiftattr.weighting import resample_counts

__all__ = ["DrawnWeights", "RobustValue"]

#: Below this, a resample's largest weight (relative to the largest over all cases) is
#: recomputed relative to its own largest: far from the subnormal range (~2e-308), where
#: weights lose precision and their normalisation overflows.
_TINY_WEIGHT = 1e-150


def check_correction_cap(cap: str | float | None) -> None:
    """Raise ``ValueError`` unless ``cap`` is ``"sqrt"``, ``None`` or a number above 1."""
    if cap is None or (isinstance(cap, str) and cap == "sqrt"):
        return
    if isinstance(cap, bool) or not isinstance(cap, Real):
        raise ValueError(f"correction_cap must be 'sqrt', None or a number above 1; got {cap!r}.")
    if not (np.isfinite(cap) and cap > 1):
        raise ValueError(
            f"correction_cap caps weights normalised to mean one and must exceed 1; got {cap}."
        )


def _both_levels(
    both_samples: bool | Sequence[str],
    regressions: NestedRegressions,
    log_ratio_source: dict[str, np.ndarray],
    log_ratio_target: dict[str, np.ndarray],
) -> frozenset[int]:
    """The level indices whose terms are taken over both samples; raise ``ValueError``
    unless they have what that needs."""
    levels = regressions.levels
    free = levels[: regressions.first_paired]  # paired levels are substituted, not averaged
    if isinstance(both_samples, bool):
        names = free if both_samples else ()
    else:
        names = tuple(both_samples)
        unknown = sorted(set(names) - set(free))
        if unknown:
            raise ValueError(
                f"both_samples names {unknown}, which are not levels of {list(free)} "
                "(paired levels are substituted, not averaged)."
            )
    if not names:
        return frozenset()
    if regressions.metric_target is None:
        raise ValueError(
            "both_samples weights the source and the target cases together: it needs the "
            "metric at the target cases."
        )
    last = max(levels.index(n) for n in names)
    missing = [
        n for n in levels[: last + 1] if n not in log_ratio_source or n not in log_ratio_target
    ]
    if missing:
        raise ValueError(
            f"both_samples needs the log-ratio of every level up to {levels[last]!r} at both "
            f"environments' cases; missing: {missing}."
        )
    return frozenset(levels.index(n) for n in names)


class DrawnWeights:
    """Self-normalised weights ``exp(logw)`` on many resamples of the cases at once.

    A resample is given by how often it draws each case (a row of ``draws``); a case
    drawn ``c`` times weighs ``c`` times, so nothing is copied per resample. On each
    resample the weights are capped at ``cap`` times their mean there (as on the
    resample itself, see :func:`shiftattr.weighting.cap_weights`). Most resamples need
    no cap and their sums are matrix-vector products with the draws; only a resample
    that may need one (the largest weight of all cases exceeds the cap on its mean), or
    whose drawn weights are all below ``1e-150`` times the largest of all cases (then
    recomputed relative to its own largest), gets a row of its own weights.

    Parameters
    ----------
    logw : ndarray of shape (n,)
        Log-weights of every case.
    draws : ndarray of shape (B, n)
        How often each resample draws each case (a row of ones: every case once).
    cap : float or None
        Largest weight over the resample's mean weight; ``None``: uncapped.

    Attributes
    ----------
    capped_fraction : ndarray of shape (B,)
        Fraction of each resample's drawn cases whose weight was capped.
    ess_fraction : ndarray of shape (B,)
        Kish effective sample size of each resample's capped weights over its size.

    Examples
    --------
    >>> dw = DrawnWeights(np.log([1.0, 1.0, 4.0]), np.array([[1.0, 1.0, 1.0], [2.0, 1.0, 0.0]]), None)
    >>> dw.mean(np.array([0.0, 0.0, 6.0]))   # 6 * 4 / 6 on all cases; case 2 undrawn
    array([4., 0.])
    >>> dw.ess_fraction.round(3)             # the second draws three equal weights
    array([0.667, 1.   ])
    """

    def __init__(self, logw: np.ndarray, draws: np.ndarray, cap: float | None) -> None:
        top = logw.max()
        w = np.exp(logw - top)  # once per case: the normalisation makes the shift irrelevant
        n = draws.sum(axis=1)
        total = draws @ w
        special = np.zeros(len(draws), dtype=bool)
        drawn_top = None  # each resample's largest drawn log-weight, where needed
        if cap is not None:  # a resample may need the cap only if the largest weight exceeds it
            special |= w.max() > cap * total / n
        if logw.min() - top < np.log(_TINY_WEIGHT):
            # drawn weights all tiny next to the largest of all cases: underflowing, or
            # subnormal and imprecise
            drawn_top = self._drawn_top(logw, draws)
            special |= drawn_top - top < np.log(_TINY_WEIGHT)
        # (a special row's total may underflow to 0; its own row replaces it)
        self._draws, self._w, self._total = draws, w, np.where(total > 0, total, 1.0)
        self.ess_fraction = total**2 / np.maximum(draws @ w**2, np.finfo(float).tiny) / n
        self.capped_fraction = np.zeros(len(draws))
        self._rows = np.flatnonzero(special)
        if self._rows.size:
            rows = self._rows
            top_rows = self._drawn_top(logw, draws[rows]) if drawn_top is None else drawn_top[rows]
            self._own_rows(logw, top_rows, cap, n)

    @staticmethod
    def _drawn_top(logw: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """Each resample's largest log-weight among the cases it draws."""
        return np.where(draws > 0, logw, -np.inf).max(axis=1)

    def _own_rows(
        self, logw: np.ndarray, drawn_top: np.ndarray, cap: float | None, n: np.ndarray
    ) -> None:
        """The special resamples' weights, each relative to its own largest drawn
        log-weight (``drawn_top``) and capped: a row per resample."""
        rows, draws = self._rows, self._draws[self._rows]
        # undrawn cases above a row's largest are clipped: they weigh 0 times
        w = np.exp(np.minimum(logw - drawn_top[:, None], 0.0))
        dw = draws * w
        total = dw.sum(axis=1)
        if cap is not None:
            limit = (cap * total / n[rows])[:, None]
            self.capped_fraction[rows] = np.einsum("ij,ij->i", draws, w > limit) / n[rows]
            w = np.minimum(w, limit)
            dw = draws * w
            total = dw.sum(axis=1)
        squares = np.maximum(np.einsum("ij,ij->i", dw, w), np.finfo(float).tiny)
        self.ess_fraction[rows] = total**2 / squares / n[rows]
        self._dw_rows = dw / total[:, None]

    def mean(self, values: np.ndarray) -> np.ndarray:
        """Each resample's weighted mean of per-case ``values`` (shape ``(n,)``).

        Parameters
        ----------
        values : ndarray of shape (n,)

        Returns
        -------
        ndarray of shape (B,)

        Examples
        --------
        >>> draws = np.array([[1.0, 1.0], [0.0, 2.0]])   # both cases; case 1 twice
        >>> DrawnWeights(np.log([1.0, 3.0]), draws, None).mean(np.array([4.0, 0.0]))
        array([1., 0.])
        """
        out = self._draws @ (self._w * values) / self._total
        if self._rows.size:
            out[self._rows] = self._dw_rows @ values
        return out


class RobustValue:
    """``M(P_I)`` by nested regressions, with or without the ratio corrections.

    Parameters
    ----------
    regressions : NestedRegressions
    mechanisms : sequence of str
        The players; every other level stays at the source.
    log_ratio_source, log_ratio_target : mapping of str to ndarray
        Cross-fitted conditional log-ratios ``log p_t / p_s`` of every non-paired
        level before the last mechanism, at the source and the target cases.
    robust : bool, default True
        Add the ratio corrections (multiply robust); ``False`` is the regression
        estimate.
    correction_cap : "sqrt", float or None, default "sqrt"
        Cap on the correction weights normalised to mean one: ``"sqrt"`` caps them at
        ``sqrt(n)`` for ``n`` cases, a number ``c > 1`` at ``c``; ``None`` leaves them
        untruncated.
    both_samples : bool or sequence of str, default False
        The levels whose terms are taken over the cases of both environments with
        balance-heuristic weights (see the module docstring); ``True``: every level.
        Needs the log-ratio of every level up to the last one named at both
        environments' cases and the metric at the target cases; paired levels are
        substituted as ever (``True`` names every other level).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> xs, xt = rng.normal(0, 1, 400), rng.normal(0.5, 1, 400)
    >>> m_s, m_t = xs + rng.normal(0, 1, 400), 2 * xt + rng.normal(0, 1, 400)
    >>> nr = NestedRegressions(["X", "Y"], [xs[:, None], m_s[:, None]],
    ...                        [xt[:, None], m_t[:, None]], m_s, m_t,
    ...                        np.arange(400) % 4, np.arange(400) % 4, random_state=0)
    >>> val = RobustValue(nr, ["X", "Y"], {"X": 0.5 * xs - 0.125}, {"X": 0.5 * xt - 0.125})
    >>> g = val.game()
    >>> round(float(g(np.array([[False, False]]))[0]), 12)
    0.0
    """

    def __init__(
        self,
        regressions: NestedRegressions,
        mechanisms: Sequence[str],
        log_ratio_source: dict[str, np.ndarray],
        log_ratio_target: dict[str, np.ndarray],
        robust: bool = True,
        correction_cap: str | float | None = "sqrt",
        both_samples: bool | Sequence[str] = False,
    ) -> None:
        check_correction_cap(correction_cap)
        self._both = _both_levels(both_samples, regressions, log_ratio_source, log_ratio_target)
        self.regressions = regressions
        self.mechanisms = tuple(mechanisms)
        self.levels = regressions.levels
        self.log_ratio_source = log_ratio_source
        self.log_ratio_target = log_ratio_target
        self.robust = robust
        self.correction_cap = correction_cap
        #: Smallest correction-weight ESS fraction (of the weights as used, after the cap),
        #: largest ``abs(MR - regression)`` and largest fraction of capped correction weights
        #: over the coalitions evaluated on all cases (not on bootstrap resamples).
        self.min_ess_fraction_ = 1.0
        self.max_abs_correction_ = 0.0
        self.max_truncated_fraction_ = 0.0

    def own_samples(self) -> RobustValue:
        """The same estimate with every term over its own environment's cases.

        Shares the fitted regressions and ratios (nothing is refitted): the estimate
        ``both_samples`` is compared with, since it needs no level's own ratio.

        Returns
        -------
        RobustValue

        Examples
        --------
        >>> x = np.arange(6.0)
        >>> nr = NestedRegressions(["X"], [x[:, None]], [x[:, None] + 1], x, x + 1,
        ...                        np.arange(6) % 2, np.arange(6) % 2)
        >>> val = RobustValue(nr, ["X"], {"X": np.zeros(6)}, {"X": np.zeros(6)}, both_samples=True)
        >>> val.both_levels, val.own_samples().both_levels
        (('X',), ())
        """
        own = copy.copy(self)
        own._both = frozenset()
        return own

    @property
    def both_levels(self) -> tuple[str, ...]:
        """The levels whose terms are taken over both environments' cases, in order.

        Returns
        -------
        tuple of str

        Examples
        --------
        >>> x = np.arange(6.0)
        >>> nr = NestedRegressions(["X", "Y"], [x[:, None]] * 2, [x[:, None] + 1] * 2, x,
        ...                        x + 1, np.arange(6) % 2, np.arange(6) % 2)
        >>> lr = {"X": np.zeros(6), "Y": np.zeros(6)}
        >>> RobustValue(nr, ["X", "Y"], lr, lr, both_samples=["Y", "X"]).both_levels
        ('X', 'Y')
        """
        return tuple(self.levels[k] for k in sorted(self._both))

    def _target_nodes(self, row: np.ndarray) -> frozenset:
        return frozenset(m for m, on in zip(self.mechanisms, row) if on)

    def estimate(
        self,
        target_nodes: frozenset,
        idx_source: np.ndarray | None = None,
        idx_target: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """``M(P_I)`` for one coalition, with its plain-regression part and weights ESS.

        Parameters
        ----------
        target_nodes : frozenset of str
            The coalition ``I``.
        idx_source, idx_target : ndarray of int, optional
            Cases to use (a bootstrap resample); default all. Of shape ``(B, n)``: ``B``
            resamples at once, and every entry of the result is then an array of ``B``.

        Returns
        -------
        dict
            ``value`` (the estimate), ``regression`` (the first term: ``E_{c_0}[g_0]``,
            or its balance-heuristic mean over both samples when the first level is in
            ``both_samples``), ``min_ess_fraction`` (smallest Kish ESS fraction of the
            weights as used: the corrections', and the first term's over both samples),
            ``truncated_fraction`` (largest fraction of them that were capped).

        Examples
        --------
        >>> x = np.arange(6.0)
        >>> nr = NestedRegressions(["X"], [x[:, None]], [x[:, None] + 1], x, x + 1,
        ...                        np.arange(6) % 2, np.arange(6) % 2)
        >>> val = RobustValue(nr, ["X"], {"X": np.zeros(6)}, {"X": np.zeros(6)})
        >>> val.estimate(frozenset({"X"}))["value"]   # X from the target: its mean metric
        3.5
        """
        out = self._estimate(target_nodes, *self._draws(idx_source, idx_target))
        if idx_source is None and idx_target is None:
            self._record(out)
        if np.ndim(idx_source) < 2 and np.ndim(idx_target) < 2:
            return {k: float(v[0]) for k, v in out.items()}
        return out

    def _record(self, out: dict[str, np.ndarray]) -> None:
        """Update the diagnostics with an estimate on all the cases."""
        self.min_ess_fraction_ = min(self.min_ess_fraction_, float(out["min_ess_fraction"][0]))
        correction = abs(float(out["value"][0] - out["regression"][0]))
        self.max_abs_correction_ = max(self.max_abs_correction_, correction)
        self.max_truncated_fraction_ = max(
            self.max_truncated_fraction_, float(out["truncated_fraction"][0])
        )

    def _draws(
        self, idx_source: np.ndarray | None, idx_target: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """How often each source and each target case is drawn, one row per resample:
        ``(B, n)`` for ``B`` resamples of case indices, one row of ones for all cases."""
        out = []
        for idx, n in ((idx_source, self._n_source), (idx_target, self._n_target)):
            if idx is None:
                out.append(np.ones((1, n)))
            else:
                out.append(resample_counts(np.atleast_2d(idx), n))
        return out[0], out[1]

    def _estimate(
        self,
        target_nodes: frozenset,
        draws_source: np.ndarray,
        draws_target: np.ndarray,
        cache: dict | None = None,
    ) -> dict[str, Any]:
        """:meth:`estimate` on resamples given by how often each case is drawn (one row
        per resample, every statistic then one value per resample).

        A resample that draws a case ``c`` times weights it ``c`` times, so each term is a
        product of the draws with per-case weights and residuals: no case is copied.
        ``cache`` keeps, across the coalitions of one set of resamples, each level's
        drawn correction weights (they depend only on the environments of the levels up
        to it) and residuals (only on those from it on)."""
        memo = {} if cache is None else cache
        nr = self.regressions
        env = ["t" if node in target_nodes else "s" for node in self.levels]
        n_rows = max(len(draws_source), len(draws_target))
        draws = {"s": draws_source, "t": draws_target}
        if self._both:
            if "both draws" not in memo:
                memo["both draws"] = np.concatenate(
                    [
                        np.broadcast_to(d, (n_rows, d.shape[1]))
                        for d in (draws_source, draws_target)
                    ],
                    axis=1,
                )
            draws["both"] = memo["both draws"]

        gs, gt = nr.outcome(0, target_nodes)
        if 0 in self._both:  # uncapped, as "mis": no regression to fall back on
            key_w = ("mixture", 0, tuple(env[:1]))
            if key_w not in memo:
                logw = self._mixture_log_weights(0, env)
                memo[key_w] = DrawnWeights(logw, draws["both"], None)
            value = memo[key_w].mean(np.concatenate([gs, gt]))
            min_ess = memo[key_w].ess_fraction
        else:
            d = draws[env[0]]
            value = d @ (gt if env[0] == "t" else gs) / d.sum(axis=1)
            min_ess = np.ones_like(value)
        value = np.array(np.broadcast_to(value, (n_rows,)))
        regression = value.copy()
        truncated = np.zeros(n_rows)
        if self.robust:
            for k in range(1, nr.first_paired):
                e = "both" if k in self._both else env[k]
                key_r = ("resid", k, e, nr.downstream(k, target_nodes))
                if key_r not in memo:
                    h = nr.fit(k, target_nodes)
                    gs, gt = nr.outcome(k, target_nodes)
                    if e == "both":
                        memo[key_r] = np.concatenate([gs - h.source, gt - h.target])
                    else:
                        memo[key_r] = gt - h.target if e == "t" else gs - h.source
                key_w = ("weights", k, e, tuple(env[: k + 1]))
                if key_w not in memo:
                    if e == "both":
                        logw = self._mixture_log_weights(k, env)
                    else:
                        logw = self._correction_log_weights(k, env)
                    memo[key_w] = DrawnWeights(logw, draws[e], self._cap(len(logw)))
                w = memo[key_w]
                truncated = np.maximum(truncated, w.capped_fraction)
                value = value + w.mean(memo[key_r])
                min_ess = np.minimum(min_ess, w.ess_fraction)
        return {
            "value": value,
            "regression": regression,
            "min_ess_fraction": np.array(np.broadcast_to(min_ess, (n_rows,))),
            "truncated_fraction": truncated,
        }

    @property
    def _n_source(self) -> int:
        return len(self.regressions.metric_source)

    @property
    def _n_target(self) -> int:
        return len(self.regressions.folds_target)

    def _mixture_log_weights(self, k: int, env: list[str]) -> np.ndarray:
        """Log balance-heuristic weights of levels ``<= k`` at the source then the target
        cases: ``log prod_{l<=k, l in I} r_l - log(n_s + n_t prod_{l<=k} r_l)``."""
        in_coalition = np.array([e == "t" for e in env[: k + 1]], dtype=float)
        sides = []
        for lr in (self.log_ratio_source, self.log_ratio_target):
            L = np.array([lr[n] for n in self.levels[: k + 1]])  # (levels <= k, cases)
            sides.append(
                in_coalition @ L
                - mixture_log_density(L.sum(axis=0), self._n_source, self._n_target)
            )
        return np.concatenate(sides)

    def _correction_log_weights(self, k: int, env: list[str]) -> np.ndarray:
        """Level ``k``'s log correction weights at every case of its environment."""
        e = env[k]
        logw = np.zeros(self._n_source if e == "s" else self._n_target)
        for l_ in range(k):
            node = self.levels[l_]
            if env[l_] == e:
                continue
            if e == "s":
                logw += self.log_ratio_source[node]
            else:
                logw -= self.log_ratio_target[node]
        return logw

    def _cap(self, n: int) -> float | None:
        if self.correction_cap is None:
            return None
        return float(np.sqrt(n)) if self.correction_cap == "sqrt" else float(self.correction_cap)

    def game(
        self, idx_source: np.ndarray | None = None, idx_target: np.ndarray | None = None
    ) -> Game:
        """The game ``v(I) = M(∅) - M(P_I)`` on (a resample of) the cases.

        Parameters
        ----------
        idx_source, idx_target : ndarray of int, optional

        Returns
        -------
        shiftattr.shapley.Game

        Examples
        --------
        >>> x = np.arange(6.0)
        >>> nr = NestedRegressions(["X"], [x[:, None]], [x[:, None] + 1], x, x + 1,
        ...                        np.arange(6) % 2, np.arange(6) % 2)
        >>> g = RobustValue(nr, ["X"], {"X": np.zeros(6)}, {"X": np.zeros(6)}).game()
        >>> g(np.array([[True]]))       # a rise of the metric is a negative drop
        array([-1.])
        """

        if np.ndim(idx_source) > 1 or np.ndim(idx_target) > 1:
            raise ValueError(
                "game() takes one resample (1-D case indices); for many at once use "
                "resampled_values() with resample_counts() of each environment's indices."
            )
        draws = self._draws(idx_source, idx_target)
        cache: dict = {}  # shared by the coalitions: drawn weights and residuals
        on_all_cases = idx_source is None and idx_target is None

        def estimate(target_nodes: frozenset) -> float:
            out = self._estimate(target_nodes, *draws, cache)
            if on_all_cases:
                self._record(out)
            return float(out["value"][0])

        base = estimate(frozenset())

        def value(coalitions: np.ndarray) -> np.ndarray:
            return np.array([base - estimate(self._target_nodes(row)) for row in coalitions])

        return Game(list(self.mechanisms), value)

    def resampled_values(
        self, coalitions: np.ndarray, draws_source: np.ndarray, draws_target: np.ndarray
    ) -> np.ndarray:
        """The game's values ``M(∅) - M(P_I)`` on many resamples at once.

        Parameters
        ----------
        coalitions : bool ndarray of shape (k, n_mechanisms)
        draws_source, draws_target : ndarray of shape (B, N_source) and (B, N_target)
            How often each resample draws each source and each target case
            (:func:`shiftattr.weighting.resample_counts` of its case indices).

        Returns
        -------
        ndarray of shape (k, B)
            Row ``j``, column ``b``: what :meth:`game` gives coalition ``j`` on the
            case indices whose counts are ``draws_source[b]`` and ``draws_target[b]`` (up
            to rounding).

        Examples
        --------
        >>> x = np.arange(6.0)
        >>> nr = NestedRegressions(["X"], [x[:, None]], [x[:, None] + 1], x, x + 1,
        ...                        np.arange(6) % 2, np.arange(6) % 2)
        >>> val = RobustValue(nr, ["X"], {"X": np.zeros(6)}, {"X": np.zeros(6)})
        >>> draws = resample_counts(np.array([[0, 1, 2, 3, 4, 5], [0, 0, 0, 0, 0, 0]]), 6)
        >>> val.resampled_values(np.array([[False], [True]]), draws, draws)
        array([[ 0.,  0.],
               [-1., -1.]])
        """
        cache: dict = {}  # shared by the coalitions: drawn weights and residuals
        base = self._estimate(frozenset(), draws_source, draws_target, cache)["value"]
        return np.array(
            [
                base
                - self._estimate(self._target_nodes(row), draws_source, draws_target, cache)[
                    "value"
                ]
                for row in np.asarray(coalitions, dtype=bool)
            ]
        ).reshape(len(coalitions), -1)
