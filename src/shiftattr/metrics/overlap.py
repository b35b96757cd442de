"""Overlap metrics: Dice and relative volume difference.

Both reduce three voxel counts per case -- ``|P & R|``, ``|P|`` and ``|R|`` -- computed in
one vectorised reduction over the spatial axes of a block of cases (on numpy >= 2 by
population count on 64-bit words of the boolean masks; no loop over voxels). Blocks bound
the temporary memory to a few MB so that a batch of hundreds of 128^3 volumes does not
allocate a batch-sized temporary.

Empty masks (see :mod:`shiftattr.metrics.empty`): Dice is ``2|P&R| / (|P| + |R|)``; it is
0/0 only when both masks are empty, and 0 when exactly one is empty. With the default
``empty="nan"`` the both-empty case is NaN -- nnU-Net's convention (``tp + fp + fn == 0``
gives NaN and its mean is a ``nanmean``). MONAI ``DiceMetric(ignore_empty=True)`` (its
default) is ``empty="ignore"`` (NaN whenever the reference is empty); MONAI
``ignore_empty=False`` is ``empty="one"`` (1 when both are empty, 0 when only the
prediction is non-empty).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from shiftattr.metrics._masks import as_binary_masks, finish, spacing_per_case
from shiftattr.metrics.empty import EmptySpec, apply_empty_policy, resolve_empty_policy

__all__ = ["dice", "overlap_counts", "volume_difference"]

_BLOCK_BYTES = 8 * 2**20  # temporaries per block of cases
_HAS_BITWISE_COUNT = hasattr(np, "bitwise_count")


def _count_rows(words: np.ndarray) -> np.ndarray:
    """Number of set bytes per row of a (b, n) uint64 view of boolean data."""
    return np.bitwise_count(words).sum(axis=1, dtype=np.int64)


def overlap_counts(
    pred: Any, ref: Any, *, batch: bool | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-case voxel counts ``|P & R|``, ``|P|`` and ``|R|``.

    Parameters
    ----------
    pred, ref : array_like
        Binary masks, one case or a batch (see :func:`shiftattr.metrics.resolve_layout`).
    batch : bool or None, default None
        Layout rule.

    Returns
    -------
    intersection, n_pred, n_ref : numpy.ndarray
        int64 arrays of shape ``(B,)`` (``B == 1`` for a single case).

    Examples
    --------
    >>> import numpy as np
    >>> from shiftattr.metrics.overlap import overlap_counts
    >>> overlap_counts(np.array([[1, 1, 0]]), np.array([[0, 1, 1]]))
    (array([1]), array([2]), array([2]))
    """
    p, r, _ = as_binary_masks(pred, ref, batch=batch)
    return _overlap_counts(p, r)


def _overlap_counts(p: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_cases = p.shape[0]
    n_vox = int(np.prod(p.shape[1:]))  # -1 cannot be inferred for a batch of 0 cases
    pf = p.reshape(n_cases, n_vox)
    rf = r.reshape(n_cases, n_vox)
    n_vox = pf.shape[1]
    inter = np.empty(n_cases, dtype=np.int64)
    n_p = np.empty(n_cases, dtype=np.int64)
    n_r = np.empty(n_cases, dtype=np.int64)
    words = (
        _HAS_BITWISE_COUNT and n_vox % 8 == 0 and pf.flags.c_contiguous and rf.flags.c_contiguous
    )
    block = max(1, _BLOCK_BYTES // max(n_vox, 1))
    for start in range(0, n_cases, block):
        sl = slice(start, min(start + block, n_cases))
        if words:
            pw = pf[sl].view(np.uint64)
            rw = rf[sl].view(np.uint64)
            n_p[sl] = _count_rows(pw)
            n_r[sl] = _count_rows(rw)
            inter[sl] = _count_rows(pw & rw)
        else:
            n_p[sl] = np.count_nonzero(pf[sl], axis=1)
            n_r[sl] = np.count_nonzero(rf[sl], axis=1)
            inter[sl] = np.count_nonzero(pf[sl] & rf[sl], axis=1)
    return inter, n_p, n_r


def dice(
    pred: Any,
    ref: Any,
    *,
    spacing: float | Sequence[float] | np.ndarray | None = None,
    empty: EmptySpec = "nan",
    batch: bool | None = None,
) -> float | np.ndarray:
    """Dice similarity coefficient ``2|P & R| / (|P| + |R|)`` per case.

    Parameters
    ----------
    pred, ref : array_like
        Binary masks (bool or 0/1 numbers; numpy arrays or torch tensors) of equal shape:
        one case ``(*spatial)`` or a batch ``(B, *spatial)``.
    spacing : float, sequence of float or None, optional
        Voxel spacing; validated but unused (Dice does not depend on it).
    empty : EmptyPolicy, str, float or mapping, default "nan"
        Value for empty masks (:func:`shiftattr.metrics.resolve_empty_policy`). The formula
        gives 0/0 when both masks are empty and 0 when exactly one is. ``"nan"``: NaN when
        both are empty (nnU-Net). ``"ignore"``: NaN whenever the reference is empty (MONAI
        ``ignore_empty=True``). ``"one"``: 1 when both are empty (MONAI
        ``ignore_empty=False``).
    batch : bool or None, default None
        ``None``: 2D/3D array is one case, 4D is a batch of 3D cases; ``True``: first axis
        is the batch axis; ``False``: one case.

    Returns
    -------
    float or numpy.ndarray
        Dice in [0, 1] for one case, or a float64 array ``(B,)`` for a batch.

    Examples
    --------
    >>> import numpy as np
    >>> from shiftattr.metrics import dice
    >>> ref = np.zeros((8, 8, 8), dtype=bool); ref[:4] = True
    >>> pred = np.zeros((8, 8, 8), dtype=bool); pred[:2] = True
    >>> round(dice(pred, ref), 4)
    0.6667
    >>> dice(np.zeros((2, 8, 8, 8)), np.zeros((2, 8, 8, 8)), empty="one")
    array([1., 1.])
    """
    policy = resolve_empty_policy(empty, best=1.0)
    p, r, is_batch = as_binary_masks(pred, ref, batch=batch)
    spacing_per_case(spacing, p.shape[0], p.ndim - 1)
    inter, n_p, n_r = _overlap_counts(p, r)
    denom = (n_p + n_r).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = 2.0 * inter / denom
    apply_empty_policy(values, n_r == 0, n_p == 0, policy)
    return finish(values, is_batch)


def volume_difference(
    pred: Any,
    ref: Any,
    *,
    spacing: float | Sequence[float] | np.ndarray | None = None,
    empty: EmptySpec = "nan",
    batch: bool | None = None,
    signed: bool = False,
) -> float | np.ndarray:
    """Relative volume difference ``|V_pred - V_ref| / V_ref`` per case.

    Parameters
    ----------
    pred, ref : array_like
        Binary masks of equal shape, one case or a batch ``(B, *spatial)``.
    spacing : float, sequence of float or None, optional
        Voxel spacing. The ratio does not depend on it (both volumes share the voxel
        size); it is validated for a uniform interface.
    empty : EmptyPolicy, str, float or mapping, default "nan"
        Value for empty masks. The formula gives 0/0 (NaN) when both are empty, ``inf``
        when only the reference is empty and 1 (``-1`` if ``signed``) when only the
        prediction is empty. ``"best"`` makes both-empty 0.
    batch : bool or None, default None
        Layout rule (see :func:`shiftattr.metrics.resolve_layout`).
    signed : bool, default False
        Return ``(V_pred - V_ref) / V_ref`` (positive: over-segmentation) instead of its
        absolute value. Same as the relative volume error of animaSegPerfAnalyzer (which
        reports it in percent).

    Returns
    -------
    float or numpy.ndarray
        Relative volume difference (0 is perfect) for one case, or ``(B,)`` for a batch.

    Examples
    --------
    >>> import numpy as np
    >>> from shiftattr.metrics import volume_difference
    >>> ref = np.zeros((10, 10), dtype=bool); ref[:4] = True
    >>> pred = np.zeros((10, 10), dtype=bool); pred[:5] = True
    >>> volume_difference(pred, ref)
    0.25
    >>> volume_difference(ref, pred, signed=True)
    -0.2
    """
    policy = resolve_empty_policy(empty, best=0.0)
    p, r, is_batch = as_binary_masks(pred, ref, batch=batch)
    spacing_per_case(spacing, p.shape[0], p.ndim - 1)
    _, n_p, n_r = _overlap_counts(p, r)
    diff = (n_p - n_r).astype(np.float64)
    if not signed:
        diff = np.abs(diff)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = diff / n_r
    apply_empty_policy(values, n_r == 0, n_p == 0, policy)
    return finish(values, is_batch)
