"""Lesion-wise detection metrics as in the MSSEG-2016 evaluation (animaSegPerfAnalyzer).

Lesions are the connected components of each mask (:func:`scipy.ndimage.label`, face
connectivity by default: 6-connectivity in 3D, 4 in 2D, as ITK's
``ConnectedComponentImageFilter`` used by anima; ``connectivity`` is the rank of
:func:`scipy.ndimage.generate_binary_structure`, 1..ndim, so 3 gives 26-connectivity in 3D).
Components whose volume is at most ``min_lesion_volume`` (3 mm^3 by default; voxel volume
from ``spacing``) are removed from both masks first and their voxels count as background.

A reference lesion ``L`` is **detected** (Commowick et al. 2018, Sci Rep 8:13650,
doi:10.1038/s41598-018-31911-7, detection scores; ``SegPerfCAnalyzer::getTruePositiveLesions``
and ``falsePositiveRatioTester`` in Anima) when

1. (alpha) more than ``alpha`` (0.10) of ``L``'s voxels are covered by predicted lesions, and
2. (beta, gamma) going through the predicted lesions that overlap ``L`` in decreasing order
   of overlap, none has more than ``beta`` (0.70) of its own voxels on the reference
   background before the accumulated overlap of the components already accepted reaches
   ``gamma`` (0.65) of ``L``'s *total covered part* (anima divides each overlap by the sum
   of overlaps with predicted lesions, not by ``L``'s size). The component that would
   complete ``gamma`` is itself tested first.

Lesion sensitivity is detected reference lesions / reference lesions. Lesion PPV swaps the
roles: a predicted lesion is a true positive when it is detected by the reference with the
same rule. F1 is ``2 * sens * ppv / (sens + ppv)``.

What was matched against Anima (Inria-Empenn/Anima-Public, ``animaSegPerfApp.cxx`` and
``animaSegPerfCAnalyzer.cxx``): the defaults (3 mm^3, 0.10, 0.70, 0.65); strict ``>`` in
the alpha and beta tests; the loop condition "while accumulated share < gamma" (the share
is computed from integer voxel counts, where Anima sums floating-point ratios: they can
only differ when the share equals gamma to rounding precision); removal of
components with ``n_voxels <= floor(min_volume / voxel_volume)`` (here with a 1e-9 relative
tolerance so that e.g. 3000 voxels of 0.001 mm^3 are removed); background share of a
predicted lesion counted against the reference after small-component removal.
Deliberate differences: ties in overlap are broken by component label (scan order) where
Anima's ``std::sort`` leaves them unspecified; Anima's loop bound ``k < nLabelsRef`` (it
stops after as many predicted components as there are reference labels, which looks like a
bug) is not reproduced; when sensitivity and PPV are both 0 the F1 is 0 where Anima returns
0/0 = NaN; a case without predicted lesions has F1 0 (Anima: NaN, because its PPV is 0/0).

The overlap table is a sparse contingency table of (reference lesion, predicted lesion)
pairs built with :func:`numpy.bincount` on the voxels where both masks are set, and the
sequential beta/gamma rule is evaluated for all lesions at once (a lexicographic sort of
the pairs and group-wise cumulative sums): the only Python loop is over cases.

Empty masks: a mask is "empty" when it has no lesion left after small-component removal.
Sensitivity is 0/0 when the reference has no lesion, PPV when the prediction has none;
both-empty gives NaN for all three by default (``empty="nan"``), see
:mod:`shiftattr.metrics.empty`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy import ndimage

from shiftattr.metrics._masks import (
    as_binary_masks,
    check_connectivity,
    finish,
    spacing_per_case,
)
from shiftattr.metrics.empty import EmptySpec, apply_empty_policy, resolve_empty_policy

__all__ = ["LesionCounts", "lesion_counts", "lesion_f1", "lesion_ppv", "lesion_sensitivity"]

_DENSE_TABLE_MAX = 1 << 22  # use a dense bincount table up to this many cells


class LesionCounts(NamedTuple):
    """Lesion counts of one case (ints) or a batch (int64 arrays ``(B,)``).

    Attributes
    ----------
    n_ref : int or numpy.ndarray
        Reference lesions after small-component removal.
    ref_detected : int or numpy.ndarray
        Reference lesions detected by the prediction (sensitivity numerator).
    n_pred : int or numpy.ndarray
        Predicted lesions after small-component removal.
    pred_detected : int or numpy.ndarray
        Predicted lesions detected by the reference (PPV numerator).

    Examples
    --------
    >>> from shiftattr.metrics import LesionCounts
    >>> c = LesionCounts(n_ref=4, ref_detected=3, n_pred=5, pred_detected=3)
    >>> c.ref_detected / c.n_ref, c.pred_detected / c.n_pred
    (0.75, 0.6)
    """

    n_ref: Any
    ref_detected: Any
    n_pred: Any
    pred_detected: Any


def _check_params(
    connectivity: int,
    n_spatial: int,
    min_lesion_volume: float,
    alpha: float,
    beta: float,
    gamma: float,
) -> None:
    check_connectivity(connectivity, n_spatial)
    if not (math.isfinite(min_lesion_volume) and min_lesion_volume >= 0):
        raise ValueError(f"min_lesion_volume must be >= 0 (mm^3), got {min_lesion_volume!r}")
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha must be in [0, 1), got {alpha!r}")
    if not 0 <= beta <= 1:
        raise ValueError(f"beta must be in [0, 1], got {beta!r}")
    if not 0 < gamma <= 1:
        raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")


def _components(
    mask: np.ndarray, structure: np.ndarray, max_removed: int, out: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Label ``mask`` into ``out``.

    Returns the flat indices of the foreground voxels, their new lesion ids (0 for removed
    small components, else 1..n_kept), the kept sizes, and n_kept. Only the foreground
    voxels are read after labelling.
    """
    n = ndimage.label(mask, structure=structure, output=out)
    fg = np.flatnonzero(mask)
    labels = out.ravel()[fg]
    sizes = np.bincount(labels, minlength=n + 1)
    keep = sizes > max_removed
    keep[0] = False
    new_id = np.cumsum(keep) * keep
    return fg, new_id[labels], new_id, sizes[keep], int(np.count_nonzero(keep))


def _detected(
    rows: np.ndarray,
    cols: np.ndarray,
    overlap: np.ndarray,
    size_rows: np.ndarray,
    size_cols: np.ndarray,
    alpha: float,
    beta: float,
    gamma: float,
) -> int:
    """Number of row lesions detected by column lesions (Anima's rule), all rows at once.

    ``rows``/``cols`` are 1-based lesion ids of the non-zero overlap pairs, ``overlap`` their
    voxel counts, ``size_rows``/``size_cols`` the lesion sizes (0-based index = id - 1).
    """
    n_rows, n_cols = size_rows.size, size_cols.size
    if rows.size == 0:
        return 0
    covered = np.bincount(rows, weights=overlap, minlength=n_rows + 1)  # TP per row lesion
    alpha_ok = covered[1:] / size_rows > alpha
    inside = np.bincount(cols, weights=overlap, minlength=n_cols + 1)[1:]
    beta_fail = (size_cols - inside) / size_cols > beta  # share on the row-mask background
    # Sort pairs by row, decreasing overlap, column id (deterministic ties).
    order = np.lexsort((cols, -overlap, rows))
    r, c, v = rows[order], cols[order], overlap[order].astype(np.int64)
    # Overlap accumulated before each pair within its row (exact integer cumsum); the
    # cumulated share is monotone, so a pair is examined iff the share before it < gamma.
    before = np.cumsum(v) - v
    new_row = np.r_[True, r[1:] != r[:-1]]
    before -= before[new_row][np.cumsum(new_row) - 1]
    reached = before / covered[r] < gamma
    blocked = np.zeros(n_rows + 1, dtype=bool)
    blocked[r[reached & beta_fail[c - 1]]] = True
    return int(np.count_nonzero(alpha_ok & ~blocked[1:]))


def _case_counts(
    p: np.ndarray,
    r: np.ndarray,
    buf_p: np.ndarray,
    buf_r: np.ndarray,
    spacing: np.ndarray,
    structure: np.ndarray,
    min_lesion_volume: float,
    alpha: float,
    beta: float,
    gamma: float,
) -> tuple[int, int, int, int]:
    voxel_volume = float(np.prod(spacing[:3]))
    ratio = min_lesion_volume / voxel_volume
    max_removed = math.floor(ratio * (1 + 1e-9))
    fg_r, ids_r, _, size_r, n_ref = _components(r, structure, max_removed, buf_r)
    if n_ref == 0:
        n_pred = _components(p, structure, max_removed, buf_p)[4]
        return n_ref, 0, n_pred, 0
    _, _, id_p, size_p, n_pred = _components(p, structure, max_removed, buf_p)
    if n_pred == 0:
        return n_ref, 0, n_pred, 0
    # lesion ids of both masks on the reference foreground
    a = ids_r
    b = id_p[buf_p.ravel()[fg_r]]
    ok = (a > 0) & (b > 0)
    key = a[ok].astype(np.int64) * (n_pred + 1) + b[ok]
    n_cells = (n_ref + 1) * (n_pred + 1)
    if n_cells <= _DENSE_TABLE_MAX:
        table = np.bincount(key, minlength=n_cells)
        keys = np.flatnonzero(table)
        counts = table[keys]
    else:
        keys, counts = np.unique(key, return_counts=True)
    i, j = np.divmod(keys, n_pred + 1)
    det_ref = _detected(i, j, counts, size_r, size_p, alpha, beta, gamma)
    det_pred = _detected(j, i, counts, size_p, size_r, alpha, beta, gamma)
    return n_ref, det_ref, n_pred, det_pred


def _batch_counts(
    pred: Any,
    ref: Any,
    spacing: Any,
    batch: bool | None,
    connectivity: int,
    min_lesion_volume: float,
    alpha: float,
    beta: float,
    gamma: float,
) -> tuple[np.ndarray, bool]:
    p, r, is_batch = as_binary_masks(pred, ref, batch=batch)
    n_spatial = p.ndim - 1
    _check_params(connectivity, n_spatial, min_lesion_volume, alpha, beta, gamma)
    sp = spacing_per_case(spacing, p.shape[0], n_spatial)
    structure = ndimage.generate_binary_structure(n_spatial, int(connectivity))
    # label buffers reused across cases (no fresh page-faulted allocation per case)
    buf_p = np.empty(p.shape[1:], dtype=np.int32)
    buf_r = np.empty(p.shape[1:], dtype=np.int32)
    counts = np.array(
        [
            _case_counts(
                p[k], r[k], buf_p, buf_r, sp[k], structure, min_lesion_volume, alpha, beta, gamma
            )
            for k in range(p.shape[0])
        ],
        dtype=np.int64,
    ).reshape(-1, 4)
    return counts, is_batch


def lesion_counts(
    pred: Any,
    ref: Any,
    *,
    spacing: float | Sequence[float] | np.ndarray | None = None,
    batch: bool | None = None,
    connectivity: int = 1,
    min_lesion_volume: float = 3.0,
    alpha: float = 0.10,
    beta: float = 0.70,
    gamma: float = 0.65,
) -> LesionCounts:
    """Count reference / predicted lesions and how many of each are detected.

    Parameters
    ----------
    pred, ref : array_like
        Binary masks of equal shape, one case or a batch ``(B, *spatial)``.
    spacing : float, sequence of float, array ``(B, ndim)`` or None, optional
        Voxel spacing in mm along the array axes (default 1 mm isotropic).
    batch : bool or None, default None
        Layout rule (see :func:`shiftattr.metrics.resolve_layout`).
    connectivity : int, default 1
        Rank of :func:`scipy.ndimage.generate_binary_structure`: 1 = faces (6-connectivity
        in 3D, 4 in 2D, as Anima), up to ``ndim`` (26-connectivity in 3D).
    min_lesion_volume : float, default 3.0
        Components of at most this volume (mm^3; mm^2 for 2D masks) are removed from both
        masks before matching.
    alpha : float, default 0.10
        A lesion needs more than this share of its voxels covered to be detected.
    beta : float, default 0.70
        A covering component with more than this share of its voxels on the other mask's
        background blocks the detection (if examined before gamma is reached).
    gamma : float, default 0.65
        Share of the covered part that the examined components must reach.

    Returns
    -------
    LesionCounts
        ``(n_ref, ref_detected, n_pred, pred_detected)``, ints for one case or int64 arrays
        ``(B,)`` for a batch.

    Examples
    --------
    >>> import numpy as np
    >>> from shiftattr.metrics import lesion_counts
    >>> ref = np.zeros((20, 20, 20), dtype=bool)
    >>> ref[2:5, 2:5, 2:5] = True; ref[10:13, 10:13, 10:13] = True
    >>> pred = np.zeros_like(ref); pred[2:5, 2:5, 2:4] = True
    >>> lesion_counts(pred, ref)
    LesionCounts(n_ref=2, ref_detected=1, n_pred=1, pred_detected=1)
    """
    counts, is_batch = _batch_counts(
        pred, ref, spacing, batch, connectivity, min_lesion_volume, alpha, beta, gamma
    )
    if is_batch:
        return LesionCounts(*(counts[:, k] for k in range(4)))
    return LesionCounts(*(int(x) for x in counts[0]))


def _rates(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n_ref, det_ref, n_pred, det_pred = counts.T.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return det_ref / n_ref, det_pred / n_pred


def lesion_sensitivity(
    pred: Any,
    ref: Any,
    *,
    spacing: float | Sequence[float] | np.ndarray | None = None,
    empty: EmptySpec = "nan",
    batch: bool | None = None,
    connectivity: int = 1,
    min_lesion_volume: float = 3.0,
    alpha: float = 0.10,
    beta: float = 0.70,
    gamma: float = 0.65,
) -> float | np.ndarray:
    """Lesion-wise sensitivity: detected reference lesions / reference lesions.

    Parameters
    ----------
    pred, ref : array_like
        Binary masks (bool or 0/1 numbers; numpy arrays or torch tensors) of equal shape:
        one case ``(*spatial)`` or a batch ``(B, *spatial)``.
    spacing : float, sequence of float, array ``(B, ndim)`` or None, optional
        Voxel spacing in mm along the array axes (default 1 mm isotropic); sets the voxel
        volume for ``min_lesion_volume``.
    empty : EmptyPolicy, str, float or mapping, default "nan"
        Value when the reference and/or prediction has no lesion (after small-component
        removal), see :func:`shiftattr.metrics.resolve_empty_policy`. The formula gives NaN
        when the reference has no lesion (whatever the prediction) and 0 when only the
        prediction is empty.
    batch : bool or None, default None
        Layout rule (see :func:`shiftattr.metrics.resolve_layout`).
    connectivity : int, default 1
        Rank of :func:`scipy.ndimage.generate_binary_structure` (1: 6-connectivity in 3D,
        4 in 2D; 3: 26-connectivity in 3D).
    min_lesion_volume : float, default 3.0
        Components of at most this many mm^3 are removed from both masks.
    alpha, beta, gamma : float, default 0.10, 0.70, 0.65
        Detection thresholds (see :mod:`shiftattr.metrics.lesionwise`).

    Returns
    -------
    float or numpy.ndarray
        Sensitivity in [0, 1] for one case, or ``(B,)`` for a batch.

    Examples
    --------
    >>> import numpy as np
    >>> from shiftattr.metrics import lesion_sensitivity
    >>> ref = np.zeros((20, 20, 20), dtype=bool)
    >>> ref[2:5, 2:5, 2:5] = True; ref[10:13, 10:13, 10:13] = True
    >>> pred = ref.copy(); pred[10:13, 10:13, 10:13] = False
    >>> lesion_sensitivity(pred, ref)
    0.5
    """
    policy = resolve_empty_policy(empty, best=1.0)
    counts, is_batch = _batch_counts(
        pred, ref, spacing, batch, connectivity, min_lesion_volume, alpha, beta, gamma
    )
    sens, _ = _rates(counts)
    apply_empty_policy(sens, counts[:, 0] == 0, counts[:, 2] == 0, policy)
    return finish(sens, is_batch)


def lesion_ppv(
    pred: Any,
    ref: Any,
    *,
    spacing: float | Sequence[float] | np.ndarray | None = None,
    empty: EmptySpec = "nan",
    batch: bool | None = None,
    connectivity: int = 1,
    min_lesion_volume: float = 3.0,
    alpha: float = 0.10,
    beta: float = 0.70,
    gamma: float = 0.65,
) -> float | np.ndarray:
    """Lesion-wise positive predictive value (PPV).

    Predicted lesions detected by the reference / predicted lesions.

    Parameters
    ----------
    pred, ref : array_like
        Binary masks (bool or 0/1 numbers; numpy arrays or torch tensors) of equal shape:
        one case ``(*spatial)`` or a batch ``(B, *spatial)``.
    spacing : float, sequence of float, array ``(B, ndim)`` or None, optional
        Voxel spacing in mm along the array axes (default 1 mm isotropic); sets the voxel
        volume for ``min_lesion_volume``.
    empty : EmptyPolicy, str, float or mapping, default "nan"
        Value when the reference and/or prediction has no lesion (after small-component
        removal), see :func:`shiftattr.metrics.resolve_empty_policy`. The formula gives NaN
        when the prediction has no lesion (whatever the reference) and 0 when only the
        reference is empty.
    batch : bool or None, default None
        Layout rule (see :func:`shiftattr.metrics.resolve_layout`).
    connectivity : int, default 1
        Rank of :func:`scipy.ndimage.generate_binary_structure` (1: 6-connectivity in 3D,
        4 in 2D; 3: 26-connectivity in 3D).
    min_lesion_volume : float, default 3.0
        Components of at most this many mm^3 are removed from both masks.
    alpha, beta, gamma : float, default 0.10, 0.70, 0.65
        Detection thresholds (see :mod:`shiftattr.metrics.lesionwise`).

    Returns
    -------
    float or numpy.ndarray
        PPV in [0, 1] for one case, or ``(B,)`` for a batch.

    Examples
    --------
    >>> import numpy as np
    >>> from shiftattr.metrics import lesion_ppv
    >>> ref = np.zeros((20, 20, 20), dtype=bool); ref[2:5, 2:5, 2:5] = True
    >>> pred = ref.copy(); pred[10:13, 10:13, 10:13] = True  # one false-positive lesion
    >>> lesion_ppv(pred, ref)
    0.5
    """
    policy = resolve_empty_policy(empty, best=1.0)
    counts, is_batch = _batch_counts(
        pred, ref, spacing, batch, connectivity, min_lesion_volume, alpha, beta, gamma
    )
    _, ppv = _rates(counts)
    apply_empty_policy(ppv, counts[:, 0] == 0, counts[:, 2] == 0, policy)
    return finish(ppv, is_batch)


def lesion_f1(
    pred: Any,
    ref: Any,
    *,
    spacing: float | Sequence[float] | np.ndarray | None = None,
    empty: EmptySpec = "nan",
    batch: bool | None = None,
    connectivity: int = 1,
    min_lesion_volume: float = 3.0,
    alpha: float = 0.10,
    beta: float = 0.70,
    gamma: float = 0.65,
) -> float | np.ndarray:
    """Lesion-wise F1 score ``2 * sens * ppv / (sens + ppv)``.

    F1 is 0 when sensitivity and PPV are both 0, and 0 when exactly one mask has lesions
    (every lesion is then missed or false); it is NaN (then ``empty.both``) only when
    neither mask has a lesion.

    Parameters
    ----------
    pred, ref : array_like
        Binary masks (bool or 0/1 numbers; numpy arrays or torch tensors) of equal shape:
        one case ``(*spatial)`` or a batch ``(B, *spatial)``.
    spacing : float, sequence of float, array ``(B, ndim)`` or None, optional
        Voxel spacing in mm along the array axes (default 1 mm isotropic); sets the voxel
        volume for ``min_lesion_volume``.
    empty : EmptyPolicy, str, float or mapping, default "nan"
        Value when the reference and/or prediction has no lesion (after small-component
        removal), see :func:`shiftattr.metrics.resolve_empty_policy`. The formula gives 0
        when exactly one mask has lesions and NaN when neither has.
    batch : bool or None, default None
        Layout rule (see :func:`shiftattr.metrics.resolve_layout`).
    connectivity : int, default 1
        Rank of :func:`scipy.ndimage.generate_binary_structure` (1: 6-connectivity in 3D,
        4 in 2D; 3: 26-connectivity in 3D).
    min_lesion_volume : float, default 3.0
        Components of at most this many mm^3 are removed from both masks.
    alpha, beta, gamma : float, default 0.10, 0.70, 0.65
        Detection thresholds (see :mod:`shiftattr.metrics.lesionwise`).

    Returns
    -------
    float or numpy.ndarray
        F1 in [0, 1] for one case, or ``(B,)`` for a batch.

    Examples
    --------
    >>> import numpy as np
    >>> from shiftattr.metrics import lesion_f1
    >>> ref = np.zeros((20, 20, 20), dtype=bool)
    >>> ref[2:5, 2:5, 2:5] = True; ref[10:13, 10:13, 10:13] = True
    >>> pred = ref.copy(); pred[10:13, 10:13, 10:13] = False; pred[15:18, 2:5, 2:5] = True
    >>> lesion_f1(pred, ref)  # sensitivity 1/2, PPV 1/2
    0.5
    """
    policy = resolve_empty_policy(empty, best=1.0)
    counts, is_batch = _batch_counts(
        pred, ref, spacing, batch, connectivity, min_lesion_volume, alpha, beta, gamma
    )
    sens, ppv = _rates(counts)
    ref_empty, pred_empty = counts[:, 0] == 0, counts[:, 2] == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(sens + ppv > 0, 2 * sens * ppv / (sens + ppv), 0.0)
    f1[ref_empty ^ pred_empty] = 0.0
    f1[ref_empty & pred_empty] = np.nan
    apply_empty_policy(f1, ref_empty, pred_empty, policy)
    return finish(f1, is_batch)
