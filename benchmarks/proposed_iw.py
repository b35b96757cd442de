"""Prototype of a blocked split-product importance-weighting kernel (a proposed patch).

Not part of the library: the benchmark measures it beside the library's
:func:`shiftattr.attribution.iw_game`. The library's ``coalition_means`` (the same
factorisation, commit 2001a79) builds the half-coalition weights for all ``N`` cases at
once, so its memory grows as ``3 * 2**(n/2) * N`` floats (1.5 GB for 12 mechanisms and
a million cases), and it falls back to the direct path for batches with more than
4 half-pairs per coalition, i.e. for the permutation solver's batches. This version
blocks over the cases (about 64 MB whatever ``N``) and uses the product up to 16
half-pairs per coalition. The weight of a
coalition factorises over any split of the mechanisms into two halves ``A`` and ``B``:
``w_I = w_{I∩A} * w_{I∩B}``. So for all coalitions at once

``sum_j w_I(j) m_j = [(W_A * m) @ W_B.T][I∩A, I∩B]`` and
``sum_j w_I(j)     = [W_A @ W_B.T][I∩A, I∩B]``,

where ``W_A`` holds the weights of the distinct half-coalitions (``2**(n/2)`` rows). The
``2**n * N`` exponentials of the direct path become ``2 * 2**(n/2) * N`` exponentials
plus two matrix products that BLAS runs near peak speed. Batches whose half-coalitions
are too sparse for the product (pairs more than 16 times the coalitions) take the
direct path. Each half is
shifted by the sum of its mechanisms' largest log-ratios, so no weight overflows; rows
whose total weight underflows fall back to the direct path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shiftattr.shapley import Game
from shiftattr.weighting import coalition_weighted_means

#: Floats held by one block of half-coalition weights (bounds memory to ~64 MB).
_BLOCK_FLOATS = 8_000_000

#: Use the matrix product while it computes at most this many times more (half, half)
#: pairs than there are coalitions: one pair costs ~2N flops in BLAS, far less than the
#: exponential, normalisation and reductions the direct path spends per coalition.
_DENSE_FACTOR = 16


def _half_codes(C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes = C.astype(np.int64) @ np.left_shift(1, np.arange(C.shape[1], dtype=np.int64))
    uniq, inverse = np.unique(codes, return_inverse=True)
    rows = ((uniq[:, None] >> np.arange(C.shape[1])) & 1).astype(float)
    return rows, inverse.ravel()


def coalition_means(coalitions: np.ndarray, log_ratios: np.ndarray, metric: np.ndarray):
    """Self-normalised importance-weighted mean of ``metric`` for each coalition.

    Same numbers as ``coalition_weighted_means(...).means`` (no truncation), computed by
    the two-half factorisation of the module docstring.

    Parameters
    ----------
    coalitions : bool ndarray of shape (k, n)
    log_ratios : ndarray of shape (n, N)
    metric : ndarray of shape (N,)

    Returns
    -------
    ndarray of shape (k,)
    """
    C = np.asarray(coalitions, dtype=bool)
    L = np.asarray(log_ratios, dtype=float)
    m = np.asarray(metric, dtype=float)
    k, n = C.shape
    N = m.shape[0]
    if n < 2:
        return coalition_weighted_means(C, L, m).means
    h = n // 2
    UA, ia = _half_codes(C[:, :h])
    UB, ib = _half_codes(C[:, h:])
    if len(UA) * len(UB) > _DENSE_FACTOR * k:  # too sparse: the direct path is cheaper
        return coalition_weighted_means(C, L, m).means
    top = L.max(axis=1)
    shift_a, shift_b = UA @ top[:h], UB @ top[h:]
    block = max(1, _BLOCK_FLOATS // (len(UA) + len(UB)))
    num = np.zeros((len(UA), len(UB)))
    den = np.zeros((len(UA), len(UB)))
    for start in range(0, N, block):
        sl = slice(start, min(start + block, N))
        wa = UA @ L[:h, sl]
        wa -= shift_a[:, None]
        np.exp(wa, out=wa)
        wb = UB @ L[h:, sl]
        wb -= shift_b[:, None]
        np.exp(wb, out=wb)
        den += wa @ wb.T
        wa *= m[sl]
        num += wa @ wb.T
    num_k, den_k = num[ia, ib], den[ia, ib]
    out = np.empty(k)
    ok = den_k > np.finfo(float).tiny * N
    out[ok] = num_k[ok] / den_k[ok]
    if not ok.all():
        out[~ok] = coalition_weighted_means(C[~ok], L, m).means
    return out


def factorised_iw_game(
    mechanisms: Sequence[str], log_ratios: np.ndarray, metric: np.ndarray
) -> Game:
    """``iw_game(mechanisms, log_ratios, metric)`` with the blocked split-product kernel."""
    base = float(np.mean(metric))
    return Game(list(mechanisms), lambda C: base - coalition_means(C, log_ratios, metric))
