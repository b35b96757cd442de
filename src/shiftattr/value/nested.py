"""Nested regressions of the metric along the causal order, fitted lazily and shared.

Order the graph's nodes topologically, ``V_0 .. V_{K-1}``. A coalition assigns each
level an environment ``c_k`` (target for the mechanisms in the coalition, source for
the rest). The nested regressions are

``h_{K-1}(v_<K-1) = E_{c_{K-1}}[m | v_<K-1]``, and
``h_k(v_<k) = E_{c_k}[h_{k+1}(V_<k+1) | v_<k]``,

each fitted on the cases of environment ``c_k`` (where ``V_k | v_<k`` follows
mechanism ``c_k`` by the Markov property). ``h_k`` depends on the coalition only
through the environments of levels ``k .. K-1``, so a regression is fitted once per
(level, downstream assignment) and reused by every coalition that shares it: at most
``2^(n+1) - 2`` regressions for ``n`` mechanisms, fitted only when a coalition first
needs them. All predictions are cross-fitted.

Paired levels (sink nodes whose target value is observed for the source cases, and
optionally the source value for the target cases) need no regression: the metric
re-scored with the observed counterfactual value is an unbiased draw of ``h_k`` at
that case.

**Pooled regressions** (``pool_log_ratios``). Fitted on one environment's cases, ``h_k``
is predicted at the other environment's, often beyond the region it was fitted on (a
scanner the regression never saw). Pooled, it is fitted on the cases of both: the cases
of the other environment enter with the conditional density ratio of their level,
``r_k(v_k | v_<k)`` at source cases for a target mechanism, ``1 / r_k`` at target cases
for a source one (normalised to mean one, capped at ``sqrt(n)`` times the mean like the
corrections, and renormalised: the cap limits the largest share, it does not fix it),
which gives them the conditional law of ``V_k`` the regression is about;
the outcome is the same function of the variables in both environments. The regression
then depends on ``r_k`` as well: it is consistent when ``r_k`` is right (or the level did
not shift), and the corrections of the multiply-robust estimate still remove its error
wherever the earlier levels' ratios are right.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from shiftattr.value.regressors import crossfit_regression
from shiftattr.weighting import cap_weights

__all__ = ["NestedRegressions", "RegressionFit", "pool_weights"]


def pool_weights(log_ratio: np.ndarray) -> np.ndarray:
    """Weights of the other environment's cases in a pooled regression.

    ``exp(log_ratio)`` normalised to mean one and capped at ``sqrt(n)`` (truncated
    importance sampling, as the multiply-robust corrections), then normalised to mean
    one again (so a capped weight ends somewhat above the cap).

    Parameters
    ----------
    log_ratio : ndarray of shape (n,)
        Conditional log density ratio, towards the mechanism the regression follows.

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> w = pool_weights(np.log([1.0, 1.0, 1.0, 100.0]))
    >>> w.round(3).tolist()   # uncapped, the last would carry 97 % of the weight
    [0.073, 0.073, 0.073, 3.78]
    """
    lr = np.asarray(log_ratio, dtype=float)
    w = np.exp(lr - lr.max())
    cap_weights(w, float(np.sqrt(len(w))))
    return w * (len(w) / w.sum())


@dataclass
class RegressionFit:
    """Predictions of one nested regression ``h_k`` for one downstream assignment.

    Attributes
    ----------
    level : int
        Index of the level in the causal order.
    target_nodes : frozenset of str
        Nodes at levels ``>= level`` taken from the target.
    fitted_on : {"source", "target", "paired"}
        Environment whose mechanism it follows (whose cases fitted it, unless pooled);
        ``"paired"`` for observed counterfactuals.
    source, target : ndarray
        ``h_k`` at every source and every target case (out of fold where fitted).
    r2 : float or None
        Out-of-fold R² (None for paired levels).
    chosen : str or None
        Chosen regressor.
    pooled : bool
        Fitted on both environments' cases, the other one's weighted by its ratio.

    Examples
    --------
    >>> f = RegressionFit(1, frozenset({"Y"}), "target", np.zeros(2), np.zeros(3), 0.4, "ridge")
    >>> f.fitted_on
    'target'
    """

    level: int
    target_nodes: frozenset
    fitted_on: str
    source: np.ndarray
    target: np.ndarray
    r2: float | None
    chosen: str | None
    pooled: bool = False


class NestedRegressions:
    """Lazily fitted, memoised nested regressions of a per-case metric.

    Parameters
    ----------
    levels : sequence of str
        Nodes in a topological order (paired sinks last).
    features_source, features_target : sequence of ndarray
        Per level, the node's features at the source / target cases, shape ``(N, p_k)``.
    metric_source : ndarray of shape (N_source,)
        The metric at the source cases.
    metric_target : ndarray of shape (N_target,) or None
        The metric at the target cases (needed whenever a level fitted on the target
        reaches the metric).
    folds_source, folds_target : ndarray of int
        Cross-fitting fold per case.
    paired_source : mapping of frozenset to ndarray, optional
        For the trailing paired levels: ``S -> metric at the source cases with the
        nodes in S replaced by their observed target values`` (``frozenset()`` is the
        metric itself).
    paired_target : mapping of frozenset to ndarray, optional
        ``S -> metric at the target cases with the nodes in S replaced by their
        observed source values``; a missing entry is regressed from the source cases.
    regressors : estimator or mapping, optional
        Passed to :func:`~shiftattr.value.crossfit_regression`.
    pool_log_ratios : tuple of two mappings of str to ndarray, optional
        ``(at source cases, at target cases)``: per node, the conditional log-ratio
        ``log p_t / p_s`` of its mechanism. Given, every regression of a node listed
        there is pooled (see the module docstring); other nodes are fitted on their
        own environment.
    random_state : int, optional

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> xs, xt = rng.normal(0, 1, 300), rng.normal(1, 1, 300)
    >>> nr = NestedRegressions(["X"], [xs[:, None]], [xt[:, None]], xs**2, xt**2,
    ...                        np.arange(300) % 3, np.arange(300) % 3, random_state=0)
    >>> fit = nr.fit(0, frozenset())      # level 0 has no inputs: fold means
    >>> bool(abs(fit.source.mean() - np.mean(xs**2)) < 0.05), fit.fitted_on
    (True, 'source')
    >>> nr.fit(0, frozenset({"X"})).fitted_on   # X from the target: fitted on its cases
    'target'
    """

    def __init__(
        self,
        levels: Sequence[str],
        features_source: Sequence[np.ndarray],
        features_target: Sequence[np.ndarray],
        metric_source: np.ndarray,
        metric_target: np.ndarray | None,
        folds_source: np.ndarray,
        folds_target: np.ndarray,
        paired_source: Mapping[frozenset, np.ndarray] | None = None,
        paired_target: Mapping[frozenset, np.ndarray] | None = None,
        regressors=None,
        random_state: int | None = None,
        pool_log_ratios: tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]] | None = None,
    ) -> None:
        self.levels = tuple(levels)
        self.pool_log_ratios = pool_log_ratios
        self.paired_source = dict(paired_source or {})
        self.paired_target = dict(paired_target or {})
        paired = set().union(*self.paired_source) if self.paired_source else set()
        self.first_paired = len(self.levels) - len(paired)
        if set(self.levels[self.first_paired :]) != paired:
            raise ValueError(
                f"paired nodes {sorted(paired)} must be the last levels of the order "
                f"{list(self.levels)}."
            )
        self._cum_s = self._cumulative(features_source)
        self._cum_t = self._cumulative(features_target)
        self.metric_source = np.asarray(metric_source, dtype=float)
        self.metric_target = None if metric_target is None else np.asarray(metric_target, float)
        self.folds_source = np.asarray(folds_source)
        self.folds_target = np.asarray(folds_target)
        self.regressors = regressors
        self.random_state = random_state
        self._memo: dict[tuple[int, frozenset], RegressionFit] = {}

    @staticmethod
    def _cumulative(features: Sequence[np.ndarray]) -> list[np.ndarray]:
        """``out[k]`` = features of levels ``< k`` side by side."""
        n = len(features[0]) if len(features) else 0
        out = [np.empty((n, 0))]
        for F in features:
            out.append(np.hstack([out[-1], np.asarray(F, dtype=float).reshape(n, -1)]))
        return out

    @property
    def fits(self) -> tuple[RegressionFit, ...]:
        """Every regression fitted so far.

        Returns
        -------
        tuple of RegressionFit

        Examples
        --------
        >>> x = np.arange(8.0)
        >>> nr = NestedRegressions(["X"], [x[:, None]], [x[:, None]], x, x,
        ...                        np.arange(8) % 2, np.arange(8) % 2)
        >>> len(nr.fits), len((nr.fit(0, frozenset()), nr.fits)[1])
        (0, 1)
        """
        return tuple(self._memo.values())

    def downstream(self, level: int, target_nodes: frozenset) -> frozenset:
        """The members of ``target_nodes`` at levels ``>= level``.

        Parameters
        ----------
        level : int
        target_nodes : frozenset of str

        Returns
        -------
        frozenset of str

        Examples
        --------
        >>> x = np.zeros((4, 1))
        >>> nr = NestedRegressions(["X", "Y"], [x, x], [x, x], x[:, 0], x[:, 0],
        ...                        np.arange(4) % 2, np.arange(4) % 2)
        >>> sorted(nr.downstream(1, frozenset({"X", "Y"})))
        ['Y']
        """
        return frozenset(n for n in target_nodes if self.levels.index(n) >= level)

    def outcome(self, level: int, target_nodes: frozenset) -> tuple[np.ndarray, np.ndarray | None]:
        """``g_k``: what level ``k`` regresses, at the source and the target cases.

        The metric for the last level, else ``h_{k+1}`` for the assignment of the
        levels after ``k``.

        Parameters
        ----------
        level : int
        target_nodes : frozenset of str

        Returns
        -------
        tuple of ndarray (source, target); target may be None when the metric at the
        target cases is unknown.

        Examples
        --------
        >>> x = np.arange(4.0)
        >>> nr = NestedRegressions(["X"], [x[:, None]], [x[:, None]], x, None,
        ...                        np.arange(4) % 2, np.arange(4) % 2)
        >>> nr.outcome(0, frozenset())[1] is None     # the last level regresses the metric
        True
        """
        if level == len(self.levels) - 1:
            return self.metric_source, self.metric_target
        fit = self.fit(level + 1, self.downstream(level + 1, target_nodes))
        return fit.source, fit.target

    def fit(self, level: int, target_nodes: frozenset) -> RegressionFit:
        """``h_k`` for the environments ``target_nodes`` assigns to levels ``>= k``.

        Parameters
        ----------
        level : int
        target_nodes : frozenset of str
            Nodes taken from the target (only those at levels ``>= level`` matter).

        Returns
        -------
        RegressionFit
            Memoised: a second call with the same downstream assignment is free.

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(100, 1))
        >>> m = x[:, 0] ** 2
        >>> nr = NestedRegressions(["X", "Y"], [x, x], [x, x], m, m,
        ...                        np.arange(100) % 2, np.arange(100) % 2, random_state=0)
        >>> nr.fit(1, frozenset()) is nr.fit(1, frozenset({"X"}))  # X is upstream of level 1
        True
        """
        key = (level, self.downstream(level, target_nodes))
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self._fit(*key)
        return hit

    def _fit(self, level: int, down: frozenset) -> RegressionFit:
        node = self.levels[level]
        if level >= self.first_paired:
            return self._paired(level, down)
        gs, gt = self.outcome(level, down)
        on_target = node in down
        y = gt if on_target else gs
        if y is None:
            raise ValueError(
                f"the regression of level {node!r} on the target cases needs the metric at the "
                "target cases: pass target_metric (or a callable metric) to attribute()."
            )
        Xs, Xt = self._cum_s[level], self._cum_t[level]
        env = "target" if on_target else "source"
        pooled = self._pooled(level, on_target, gs, gt, Xs, Xt)
        if pooled is not None:
            return RegressionFit(level, down, env, *pooled, pooled=True)
        fit_X, other_X = (Xt, Xs) if on_target else (Xs, Xt)
        folds = self.folds_target if on_target else self.folds_source
        p = crossfit_regression(
            fit_X, y, folds, other_X, self.regressors, random_state=self.random_state
        )
        hs, ht = (p.other, p.oof) if on_target else (p.oof, p.other)
        return RegressionFit(level, down, env, hs, ht, p.r2, p.chosen)

    def _pooled(
        self,
        level: int,
        on_target: bool,
        gs: np.ndarray,
        gt: np.ndarray | None,
        Xs: np.ndarray,
        Xt: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, float, str] | None:
        """``h_k`` fitted on both environments' cases: its values at the source and the
        target cases, R² and regressor; None where it cannot be pooled."""
        if self.pool_log_ratios is None or gt is None:
            return None
        lr_s, lr_t = (r.get(self.levels[level]) for r in self.pool_log_ratios)
        if lr_s is None or lr_t is None:
            return None
        ns = len(gs)
        # the other environment's cases, reweighted to this level's mechanism
        w_other = pool_weights(lr_s) if on_target else pool_weights(-np.asarray(lr_t))
        weights = np.concatenate(
            [w_other, np.ones(len(gt))] if on_target else [np.ones(ns), w_other]
        )
        p = crossfit_regression(
            np.vstack([Xs, Xt]),
            np.concatenate([gs, gt]),
            np.concatenate([self.folds_source, self.folds_target]),
            np.empty((0, Xs.shape[1])),
            self.regressors,
            random_state=self.random_state,
            sample_weight=weights,
        )
        return p.oof[:ns], p.oof[ns:], p.r2, p.chosen

    def _paired(self, level: int, down: frozenset) -> RegressionFit:
        tail = frozenset(self.levels[level:])
        hs = self.paired_source[down]
        ht = self.paired_target.get(tail - down)
        chosen = None
        r2 = None
        if ht is None:  # no source reading of the target cases: regress it
            p = crossfit_regression(
                self._cum_s[level],
                hs,
                self.folds_source,
                self._cum_t[level],
                self.regressors,
                random_state=self.random_state,
            )
            ht, chosen, r2 = p.other, p.chosen, p.r2
        return RegressionFit(level, down, "paired", hs, ht, r2, chosen)
