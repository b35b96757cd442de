"""Self-normalised importance weighting of a per-case metric, batched over coalitions.

This is the hot path of :func:`shiftattr.attribute`: for a boolean coalition matrix
``C`` of shape ``(k, n_mechanisms)`` and per-mechanism log-ratios ``L`` of shape
``(n_mechanisms, N)``, the log-weights of every coalition are one matrix product
``C @ L``; the weighted means follow with a per-row max-subtraction so that no weight
overflows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["WeightedMeans", "coalition_means", "coalition_weighted_means", "kish_ess"]


@dataclass(frozen=True)
class WeightedMeans:
    """Weighted means and weight diagnostics for a batch of coalitions.

    Attributes
    ----------
    means : ndarray of shape (k,)
        Self-normalised weighted mean of the metric per coalition.
    ess : ndarray of shape (k,)
        Kish effective sample size ``(sum w)^2 / sum w^2`` per coalition.
    max_weight : ndarray of shape (k,)
        Largest normalised weight ``w / mean(w)`` per coalition (the mean taken
        before truncation, so never above ``truncate``).
    frac_truncated : ndarray of shape (k,)
        Fraction of cases whose normalised weight was truncated.

    Examples
    --------
    >>> L = np.log(np.array([[1.0, 3.0]]))      # one mechanism, two cases
    >>> wm = coalition_weighted_means(np.array([[False], [True]]), L, np.array([0.0, 1.0]))
    >>> [a.round(6).tolist() for a in (wm.means, wm.ess, wm.max_weight)]
    [[0.5, 0.75], [2.0, 1.6], [1.0, 1.5]]
    >>> wm.frac_truncated.tolist()              # no truncation asked for
    [0.0, 0.0]
    """

    means: np.ndarray
    ess: np.ndarray
    max_weight: np.ndarray
    frac_truncated: np.ndarray


def kish_ess(weights: np.ndarray, axis: int = -1) -> np.ndarray:
    """Kish effective sample size ``(sum w)^2 / sum w^2``.

    Parameters
    ----------
    weights : ndarray
        Non-negative weights.
    axis : int, default -1

    Returns
    -------
    ndarray

    Examples
    --------
    >>> kish_ess(np.ones(10))
    np.float64(10.0)
    >>> float(kish_ess(np.array([1.0, 0.0, 0.0, 0.0])))
    1.0
    """
    w = np.asarray(weights, dtype=float)
    return w.sum(axis=axis) ** 2 / np.maximum((w**2).sum(axis=axis), np.finfo(float).tiny)


def coalition_weighted_means(
    coalitions: np.ndarray,
    log_ratios: np.ndarray,
    metric: np.ndarray,
    *,
    truncate: float | None = None,
    batch_size: int | None = None,
) -> WeightedMeans:
    """Importance-weighted mean of ``metric`` under each coalition's mixed distribution.

    Parameters
    ----------
    coalitions : bool ndarray of shape (k, n)
        Row ``j`` marks the mechanisms taken from the target in coalition ``j``.
    log_ratios : ndarray of shape (n, N)
        Per-mechanism log density ratios ``log r_i`` at the ``N`` source cases.
    metric : ndarray of shape (N,)
        Per-case metric on the source cases.
    truncate : float, optional
        Cap on the normalised weight ``w / mean(w)``; capped weights are counted in
        ``frac_truncated``. ``None`` (default) keeps all weights as they are.
    batch_size : int, optional
        Coalitions per matrix product, bounding memory to ``batch_size * N`` floats.
        Default: chosen so one batch stays below ~64 MB.

    Returns
    -------
    WeightedMeans

    Examples
    --------
    >>> L = np.log(np.array([[1.0, 3.0]]))      # one mechanism, two cases
    >>> m = np.array([0.0, 1.0])
    >>> C = np.array([[False], [True]])
    >>> coalition_weighted_means(C, L, m).means
    array([0.5 , 0.75])
    """
    C = np.asarray(coalitions, dtype=float)
    L = np.asarray(log_ratios, dtype=float)
    m = np.asarray(metric, dtype=float)
    if C.ndim != 2 or L.ndim != 2 or C.shape[1] != L.shape[0] or L.shape[1] != m.shape[0]:
        raise ValueError(
            f"shape mismatch: coalitions {C.shape}, log_ratios {L.shape}, metric {m.shape}; "
            "expected (k, n), (n, N), (N,)."
        )
    k, N = C.shape[0], m.shape[0]
    if batch_size is None:
        batch_size = max(1, int(8_000_000 // max(N, 1)))
    means = np.empty(k)
    ess = np.empty(k)
    wmax = np.empty(k)
    frac = np.zeros(k)
    for start in range(0, k, batch_size):
        sl = slice(start, min(start + batch_size, k))
        logw = C[sl] @ L
        logw -= logw.max(axis=1, keepdims=True)
        w = np.exp(logw, out=logw)
        # normalise to mean one so truncation and max weight are scale free
        w *= N / w.sum(axis=1, keepdims=True)
        if truncate is not None:
            over = w > truncate
            frac[sl] = over.mean(axis=1)
            np.minimum(w, truncate, out=w)
        total = w.sum(axis=1)
        means[sl] = (w @ m) / total
        ess[sl] = total**2 / np.einsum("ij,ij->i", w, w)
        wmax[sl] = w.max(axis=1)
    return WeightedMeans(means=means, ess=ess, max_weight=wmax, frac_truncated=frac)


#: Floats of half-coalition weights :func:`coalition_means` holds at once (~64 MB).
_BLOCK_FLOATS = 8_000_000

#: :func:`coalition_means` keeps its matrix products while they compute at most this many
#: (half, half) pairs per coalition: a pair costs ~2N flops in BLAS, far less than the
#: exponential, normalisation and reductions the direct path spends on a coalition. The
#: permutation solver's batches (16 permutations) stay below it up to about ten players.
_DENSE_FACTOR = 16


def coalition_means(
    coalitions: np.ndarray,
    log_ratios: np.ndarray,
    metric: np.ndarray,
) -> np.ndarray:
    """Self-normalised weighted means only, computed by splitting the players in two.

    A coalition's weights factor over any split of the players, ``w_S = w_{S∩A} w_{S∩B}``,
    so with ``W_A`` the weights of the distinct ``A``-parts and ``W_B`` those of the
    ``B``-parts, all numerators are one matrix product ``(W_A * m) @ W_B.T`` and all
    denominators ``W_A @ W_B.T``. Exact enumeration of ``n`` players then needs
    ``2 * 2^(n/2) * N`` exponentials instead of ``2^n * N``. The cases are processed in
    blocks, so memory stays near 64 MB whatever ``N``; each half is shifted by the sum
    of its players' largest log-ratios (the same shift in every block). Equals
    ``coalition_weighted_means(...).means`` (no truncation) up to rounding; rows whose
    split weights underflow are recomputed directly.

    Parameters
    ----------
    coalitions : bool ndarray of shape (k, n)
    log_ratios : ndarray of shape (n, N)
    metric : ndarray of shape (N,)

    Returns
    -------
    ndarray of shape (k,)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> L, m = rng.normal(size=(4, 50)), rng.normal(size=50)
    >>> C = rng.random((6, 4)) < 0.5
    >>> bool(np.allclose(coalition_means(C, L, m), coalition_weighted_means(C, L, m).means))
    True
    """
    C = np.asarray(coalitions, dtype=bool)
    L = np.asarray(log_ratios, dtype=float)
    m = np.asarray(metric, dtype=float)
    k, n = C.shape
    if n < 2 or k < 4:
        return coalition_weighted_means(C, L, m).means
    h = n // 2
    ua, ia = np.unique(C[:, :h], axis=0, return_inverse=True)
    ub, ib = np.unique(C[:, h:], axis=0, return_inverse=True)
    ia, ib = ia.ravel(), ib.ravel()
    if len(ua) * len(ub) > _DENSE_FACTOR * k:  # sparse batch: the product would waste work
        return coalition_weighted_means(C, L, m).means
    ua, ub = ua.astype(float), ub.astype(float)
    top = L.max(axis=1)
    shift_a, shift_b = ua @ top[:h], ub @ top[h:]
    block = max(1, _BLOCK_FLOATS // (len(ua) + len(ub)))
    num = np.zeros((len(ua), len(ub)))
    den = np.zeros((len(ua), len(ub)))
    for start in range(0, m.shape[0], block):
        sl = slice(start, start + block)
        wa = ua @ L[:h, sl]
        wa -= shift_a[:, None]
        np.exp(wa, out=wa)
        wb = ub @ L[h:, sl]
        wb -= shift_b[:, None]
        np.exp(wb, out=wb)
        den += wa @ wb.T
        wa *= m[sl]
        num += wa @ wb.T
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num[ia, ib] / den[ia, ib]
    bad = ~np.isfinite(out) | (den[ia, ib] < 1e-250)
    if bad.any():
        out[bad] = coalition_weighted_means(C[bad], L, m).means
    return out
