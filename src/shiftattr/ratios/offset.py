"""Conditional density ratios fitted directly, with the parents' log-ratio as an offset.

A mechanism's conditional ratio ``r(v | pa) = p_t(v | pa) / p_s(v | pa)`` is by default
the difference of two classifiers' log-ratios, one on ``(v, pa)`` and one on ``pa``
(:class:`~shiftattr.ratios.CrossFittedRatios`). Where the parents shifted strongly and
``v``'s mechanism did not, both classifiers learn the parents' shift, each with its own
errors, and their difference is noise that no penalty pulls towards zero: a mechanism
that did not change gets weights all the same.

Here the joint classifier is a penalised logistic model whose logit is the parents'
cross-fitted log-ratio plus a learnt term,

``logit P(target | v, pa) = log r(pa) + b + z(v, pa) . beta``,

so ``beta`` models only what the parents' ratio misses: the conditional log-ratio
itself, ``z . beta + b - log(n_t / n_s)``. Its L2 penalty shrinks it towards zero, the
right default for a mechanism that did not shift. The penalty is chosen among a few by
out-of-fold log-loss on the same folds. ``z`` are the joint node set's features
(standardised, and with their pairwise products when there are at most
``QUADRATIC_MAX_FEATURES`` of them), fitted by
:class:`~shiftattr.ratios.StandardisedLogisticRegression` with ``offset``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import log_expit

from shiftattr.ratios.logistic import StandardisedLogisticRegression

__all__ = ["QUADRATIC_MAX_FEATURES", "crossfit_conditional"]

#: Up to this many features, the offset model also sees their squares and pairwise
#: products (a quadratic log-ratio, exact for Gaussian shifts); above it, linear terms
#: only (image statistics: dozens of features, hundreds of cases).
QUADRATIC_MAX_FEATURES = 8

#: The L2 penalties tried (on standardised features, summed log-loss; ``C = 1 / penalty``
#: of :class:`~shiftattr.ratios.StandardisedLogisticRegression`).
PENALTIES = (0.1, 3.0, 30.0, 300.0)


def crossfit_conditional(
    source_features: np.ndarray,
    target_features: np.ndarray,
    offset_source: np.ndarray,
    offset_target: np.ndarray,
    source_folds: np.ndarray,
    target_folds: np.ndarray,
    penalties: Sequence[float] = PENALTIES,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Out-of-fold conditional log-ratios from the offset logistic model.

    Parameters
    ----------
    source_features, target_features : ndarray of shape (N_s, d) and (N_t, d)
        Features of the joint node set (the mechanism's node and its parents).
    offset_source, offset_target : ndarray
        The parents' cross-fitted log-ratio ``log p_t(pa) / p_s(pa)`` at each case.
    source_folds, target_folds : ndarray of int
        Fold label per case; each fold's cases are predicted by the model fitted on the
        others.
    penalties : sequence of float
        L2 penalties to choose from by out-of-fold log-loss.

    Returns
    -------
    tuple
        ``(log_ratio_source, log_ratio_target, penalty)``: the conditional log-ratio
        ``log p_t(v | pa) / p_s(v | pa)`` at every case, and the chosen penalty.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> pa_s, pa_t = rng.normal(0, 1, 400), rng.normal(2, 1, 400)   # parents shift
    >>> v_s, v_t = pa_s + rng.normal(size=400), pa_t + rng.normal(size=400)  # v | pa: same
    >>> lr = lambda pa: 2 * pa - 2                                # exact log r(pa)
    >>> folds = np.arange(400) % 3
    >>> ls, lt, _ = crossfit_conditional(np.c_[pa_s, v_s], np.c_[pa_t, v_t],
    ...                                  lr(pa_s), lr(pa_t), folds, folds)
    >>> bool(np.abs(np.r_[ls, lt]).max() < 0.5)   # near zero: v's mechanism did not shift
    True
    """
    Zs, Zt = np.asarray(source_features, dtype=float), np.asarray(target_features, dtype=float)
    Z = np.vstack([Zs.reshape(len(Zs), -1), Zt.reshape(len(Zt), -1)])
    o = np.r_[np.asarray(offset_source, dtype=float), np.asarray(offset_target, dtype=float)]
    y = np.r_[np.zeros(len(Zs)), np.ones(len(Zt))]
    folds = np.r_[np.asarray(source_folds), np.asarray(target_folds)]
    log_prior = np.log(y.sum() / (len(y) - y.sum()))
    degree = 2 if Z.shape[1] <= QUADRATIC_MAX_FEATURES else 1
    best: tuple[float, np.ndarray, float] | None = None
    for penalty in penalties:
        out = np.empty(len(y))
        for f in np.unique(folds):
            train, test = folds != f, folds == f
            model = StandardisedLogisticRegression(C=1.0 / penalty, degree=degree)
            model.fit(Z[train], y[train], offset=o[train])
            prior = np.log(y[train].sum() / (train.sum() - y[train].sum()))
            out[test] = model.decision_function(Z[test]) - prior
        logit = o + out + log_prior
        loss = float(-np.mean(log_expit(np.where(y == 1, logit, -logit))))
        if best is None or loss < best[0]:
            best = (loss, out, float(penalty))
    _, out, penalty = best
    return out[: len(Zs)], out[len(Zs) :], penalty
