"""Surface distance: the 95th-percentile Hausdorff distance.

Surfaces are the mask voxels with at least one face neighbour outside the mask
(``mask & ~binary_erosion(mask)``, image border counted as outside; axes of length 1,
such as a channel axis or the one slice of a 2D image stored as 3D, are left out, so
that such a mask's surface is its contour and not all its voxels), distances are
Euclidean in physical units via :func:`scipy.ndimage.distance_transform_edt` with
``sampling=spacing``, and both are computed on the bounding box of the two masks only (exact:
every surface voxel lies inside it), so small lesions in large volumes are cheap.

Two conventions exist for the "symmetric" 95th percentile; ``mode="max"`` (default) takes
the larger of the two directed 95th percentiles (pred -> ref and ref -> pred), like MONAI's
``compute_hausdorff_distance(percentile=95)``; ``mode="pooled"`` takes the 95th percentile of
the pooled distances of both directions, like MedPy's ``hd95``.

Empty masks: with one mask empty there is no surface to measure to and the formula value is
``inf``; with both empty it is undefined (NaN by default, ``empty="best"`` gives 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from scipy import ndimage

from shiftattr.metrics._masks import as_binary_masks, finish, spacing_per_case
from shiftattr.metrics.empty import EmptySpec, apply_empty_policy, resolve_empty_policy

__all__ = ["hausdorff95"]


def _surface(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def _case_hd(
    p: np.ndarray, r: np.ndarray, spacing: np.ndarray, percentile: float, mode: str
) -> float:
    # an axis of length 1 (a channel axis, or the one slice of a 2D image stored as 3D)
    # is not spatial: along it every voxel would lie on the border, and so on the surface
    spatial = [a for a, n in enumerate(p.shape) if n > 1]
    if len(spatial) < p.ndim:
        if not spatial:  # one voxel, in both masks
            return 0.0
        p = p.reshape([p.shape[a] for a in spatial])
        r = r.reshape(p.shape)
        spacing = np.asarray(spacing)[spatial]
    union = p | r
    box = ndimage.find_objects(union.astype(np.uint8))[0]
    p, r = p[box], r[box]
    structure = ndimage.generate_binary_structure(p.ndim, 1)
    sp, sr = _surface(p, structure), _surface(r, structure)
    # distance of every voxel to the nearest surface voxel of the other mask
    d_to_r = ndimage.distance_transform_edt(~sr, sampling=spacing)
    d_to_p = ndimage.distance_transform_edt(~sp, sampling=spacing)
    a = d_to_r[sp]  # pred surface -> ref surface
    b = d_to_p[sr]  # ref surface -> pred surface
    if mode == "pooled":
        return float(np.percentile(np.concatenate([a, b]), percentile))
    return float(max(np.percentile(a, percentile), np.percentile(b, percentile)))


def hausdorff95(
    pred: Any,
    ref: Any,
    *,
    spacing: float | Sequence[float] | np.ndarray | None = None,
    empty: EmptySpec = "nan",
    batch: bool | None = None,
    percentile: float = 95.0,
    mode: Literal["max", "pooled"] = "max",
) -> float | np.ndarray:
    """95th-percentile symmetric Hausdorff distance between the mask surfaces.

    Parameters
    ----------
    pred, ref : array_like
        Binary masks (bool or 0/1 numbers; numpy arrays or torch tensors) of equal shape:
        one case ``(*spatial)`` or a batch ``(B, *spatial)``.
    spacing : float, sequence of float, array ``(B, ndim)`` or None, optional
        Voxel spacing along the array axes (default 1); distances are in its unit (mm).
    empty : EmptyPolicy, str, float or mapping, default "nan"
        Value for empty masks (:func:`shiftattr.metrics.resolve_empty_policy`). The formula
        gives ``inf`` when exactly one mask is empty; both empty is NaN by default and 0
        with ``"best"``. Set ``EmptyPolicy(reference=..., prediction=...)`` to replace the
        ``inf`` by a finite penalty (e.g. the image diagonal).
    batch : bool or None, default None
        Layout rule (see :func:`shiftattr.metrics.resolve_layout`).
    percentile : float, default 95.0
        Percentile of the surface distances (100 gives the classical Hausdorff distance).
    mode : {"max", "pooled"}, default "max"
        ``"max"``: larger of the two directed percentiles (MONAI); ``"pooled"``: percentile
        of both directions' distances pooled (MedPy ``hd95``).

    Returns
    -------
    float or numpy.ndarray
        Distance (0 is perfect) for one case, or ``(B,)`` for a batch.

    Examples
    --------
    >>> import numpy as np
    >>> from shiftattr.metrics import hausdorff95
    >>> ref = np.zeros((20, 20, 20), dtype=bool); ref[5:10, 5:10, 5:10] = True
    >>> pred = np.roll(ref, 3, axis=0)
    >>> hausdorff95(pred, ref)
    3.0
    >>> hausdorff95(pred, ref, spacing=(2.0, 1.0, 1.0))
    6.0
    """
    if mode not in ("max", "pooled"):
        raise ValueError(f"mode must be 'max' or 'pooled', got {mode!r}")
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {percentile!r}")
    policy = resolve_empty_policy(empty, best=0.0)
    p, r, is_batch = as_binary_masks(pred, ref, batch=batch)
    sp = spacing_per_case(spacing, p.shape[0], p.ndim - 1)
    n_cases = p.shape[0]
    n_vox = int(np.prod(p.shape[1:]))  # -1 cannot be inferred for a batch of 0 cases
    p_empty = ~p.reshape(n_cases, n_vox).any(axis=1)
    r_empty = ~r.reshape(n_cases, n_vox).any(axis=1)
    values = np.full(n_cases, np.inf)
    values[p_empty & r_empty] = np.nan
    for k in np.flatnonzero(~p_empty & ~r_empty):
        values[k] = _case_hd(p[k], r[k], sp[k], percentile, mode)
    apply_empty_policy(values, r_empty, p_empty, policy)
    return finish(values, is_batch)
