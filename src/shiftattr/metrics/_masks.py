"""Input conversion and validation shared by all metrics.

Masks arrive as numpy arrays, torch tensors (anything with ``.detach().cpu().numpy()``;
torch itself is never imported here) or nested sequences. They are validated once and
turned into boolean arrays of shape ``(B, *spatial)`` plus a flag that says whether the
caller passed a batch, so that every metric can compute on a batch and return a float for
a single case.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "as_binary_masks",
    "check_connectivity",
    "finish",
    "resolve_layout",
    "spacing_per_case",
    "to_numpy",
]


def to_numpy(x: Any) -> np.ndarray:
    """Convert a mask (numpy array, torch tensor, sequence) to a numpy array.

    Numpy input is returned as is (no copy); torch is never imported.

    Parameters
    ----------
    x : array_like
        A numpy array, an object with ``.detach().cpu().numpy()`` (a torch tensor, converted
        without importing torch), or anything :func:`numpy.asarray` accepts.

    Returns
    -------
    numpy.ndarray
        The data as a numpy array.

    Examples
    --------
    >>> from shiftattr.metrics._masks import to_numpy
    >>> to_numpy([[0, 1], [1, 0]]).shape
    (2, 2)
    """
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "cpu") and hasattr(x, "numpy"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def resolve_layout(ndim: int, batch: bool | None = None) -> tuple[bool, int]:
    """Decide whether an array of ``ndim`` dimensions is one case or a batch.

    Parameters
    ----------
    ndim : int
        Number of dimensions of the mask array.
    batch : bool or None, default None
        ``None``: ``ndim == 2`` or ``3`` is one 2D / 3D case and ``ndim == 4`` is a batch of
        3D cases (a stack of 2D cases, ``ndim == 3``, must be flagged ``batch=True``).
        ``True``: the first axis is the batch axis (``ndim`` 3 or 4).
        ``False``: one case (``ndim`` 2 or 3).

    Returns
    -------
    is_batch : bool
        Whether the first axis is a batch axis.
    n_spatial : int
        Number of spatial dimensions (2 or 3).

    Raises
    ------
    ValueError
        If ``ndim`` does not fit the requested layout.

    Examples
    --------
    >>> from shiftattr.metrics import resolve_layout
    >>> resolve_layout(3)
    (False, 3)
    >>> resolve_layout(3, batch=True)
    (True, 2)
    >>> resolve_layout(4)
    (True, 3)
    """
    if batch is None:
        if ndim in (2, 3):
            return False, ndim
        if ndim == 4:
            return True, 3
    elif batch:
        if ndim in (3, 4):
            return True, ndim - 1
    elif ndim in (2, 3):
        return False, ndim
    expected = {
        None: "2 or 3 (one case) or 4 (batch of 3D cases)",
        True: "3 (batch of 2D cases) or 4 (batch of 3D cases)",
        False: "2 or 3 (one 2D or 3D case)",
    }[None if batch is None else bool(batch)]
    hint = ""
    if ndim == 5 or (ndim == 4 and batch is False):
        hint = " If the masks have a channel axis (B, 1, ...), remove it, e.g. x[:, 0]."
    raise ValueError(f"masks have {ndim} dimensions but batch={batch!r} expects {expected}.{hint}")


def _binarize(a: np.ndarray, name: str) -> np.ndarray:
    if a.dtype == np.bool_:
        # a bool view of other bytes (a 0/255 uint8 export viewed as bool) holds bytes
        # other than 0/1, which the byte-wise counts would read as several voxels
        raw = a.view(np.uint8)
        return raw != 0 if a.size and raw.max() > 1 else a
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold booleans or numbers 0/1, got dtype {a.dtype}; convert it to a "
            "bool or numeric 0/1 array first."
        )
    nonbinary = (a != 0) & (a != 1)
    n_bad = int(np.count_nonzero(nonbinary))
    if n_bad:
        example = a[nonbinary].flat[0]
        raise ValueError(
            f"{name} is not a binary mask: {n_bad} of {a.size} voxels are neither 0 nor 1 "
            f"(e.g. {example!r}). Threshold probabilities or select a label first, "
            f"e.g. {name} > 0.5 or {name} == label."
        )
    return a != 0


def as_binary_masks(
    pred: Any, ref: Any, *, batch: bool | None = None
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Validate a prediction / reference pair and return boolean ``(B, *spatial)`` arrays.

    Parameters
    ----------
    pred, ref : array_like
        Binary masks of identical shape: bool, or integers / floats equal to 0 or 1.
        Torch tensors are accepted (converted with ``.detach().cpu().numpy()``).
    batch : bool or None, default None
        Layout rule, see :func:`resolve_layout`.

    Returns
    -------
    pred, ref : numpy.ndarray
        Boolean arrays of shape ``(B, *spatial)`` (``B == 1`` for a single case). Boolean
        numpy input is not copied.
    is_batch : bool
        Whether the input was a batch (metrics then return an array, else a float).

    Raises
    ------
    TypeError
        If a mask's dtype is neither boolean nor numeric (e.g. strings, objects or
        complex numbers); the message names the mask and its dtype.
    ValueError
        If the shapes differ (both shapes are named), the layout is ambiguous or wrong, or
        a mask is not binary (the number of non-binary voxels is given).

    Examples
    --------
    >>> import numpy as np
    >>> from shiftattr.metrics import as_binary_masks
    >>> p, r, is_batch = as_binary_masks(np.zeros((4, 4)), np.eye(4))
    >>> p.shape, p.dtype, is_batch
    ((1, 4, 4), dtype('bool'), False)
    >>> as_binary_masks(np.zeros((4, 4)), np.zeros((4, 5)))
    Traceback (most recent call last):
    ...
    ValueError: pred and ref must have the same shape, got pred (4, 4) and ref (4, 5)
    """
    p = to_numpy(pred)
    r = to_numpy(ref)
    if p.shape != r.shape:
        raise ValueError(
            f"pred and ref must have the same shape, got pred {p.shape} and ref {r.shape}"
        )
    is_batch, _ = resolve_layout(p.ndim, batch)
    p = _binarize(p, "pred")
    r = _binarize(r, "ref")
    if not is_batch:
        p = p[np.newaxis]
        r = r[np.newaxis]
    return p, r, is_batch


def spacing_per_case(
    spacing: float | Sequence[float] | np.ndarray | None, n_cases: int, n_spatial: int
) -> np.ndarray:
    """Return voxel spacing as a float64 array ``(n_cases, n_spatial)``.

    Parameters
    ----------
    spacing : float, sequence of float, array of shape (n_cases, n_spatial), or None
        Voxel size along each spatial axis, in the order of the array axes (mm by
        convention). ``None`` means 1 along every axis; a scalar applies to every axis;
        a 2D array gives one spacing per case of a batch.
    n_cases : int
        Number of cases.
    n_spatial : int
        Number of spatial dimensions.

    Returns
    -------
    numpy.ndarray
        Positive finite spacings, shape ``(n_cases, n_spatial)``.

    Raises
    ------
    ValueError
        If the shape does not match or a value is not positive and finite.

    Examples
    --------
    >>> from shiftattr.metrics._masks import spacing_per_case
    >>> spacing_per_case((1.0, 1.0, 3.0), 2, 3).tolist()
    [[1.0, 1.0, 3.0], [1.0, 1.0, 3.0]]
    """
    if spacing is None:
        return np.ones((n_cases, n_spatial))
    s = np.asarray(to_numpy(spacing), dtype=np.float64)
    if s.ndim == 0:
        s = np.full((n_cases, n_spatial), float(s))
    elif s.shape == (n_spatial,):
        s = np.broadcast_to(s, (n_cases, n_spatial))
    elif s.shape != (n_cases, n_spatial):
        raise ValueError(
            f"spacing must be a scalar, {n_spatial} values (one per spatial axis) or an "
            f"array of shape ({n_cases}, {n_spatial}) (one row per case), got shape {s.shape}"
        )
    if not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError(f"spacing must be positive and finite, got {s.tolist()}")
    return s


def check_connectivity(connectivity: int, n_spatial: int) -> None:
    """Refuse a connectivity that is not an integer in ``1..n_spatial``.

    Parameters
    ----------
    connectivity : int
        ``scipy.ndimage.generate_binary_structure`` rank: 1 faces, ``n_spatial`` all
        neighbours.
    n_spatial : int
        Number of spatial dimensions.

    Raises
    ------
    ValueError
        Naming the allowed range and what each end means.

    Examples
    --------
    >>> from shiftattr.metrics._masks import check_connectivity
    >>> check_connectivity(1, 3)
    >>> check_connectivity(4, 3)
    Traceback (most recent call last):
    ...
    ValueError: connectivity must be an integer in 1..3 for 3D masks (1: faces, 3: faces, edges and corners), got 4
    """
    if (
        isinstance(connectivity, bool)
        or not isinstance(connectivity, (int, np.integer))
        or not (1 <= connectivity <= n_spatial)
    ):
        raise ValueError(
            f"connectivity must be an integer in 1..{n_spatial} for {n_spatial}D masks "
            f"(1: faces, {n_spatial}: faces, edges{' and corners' if n_spatial == 3 else ''}), "
            f"got {connectivity!r}"
        )


def finish(values: np.ndarray, is_batch: bool) -> float | np.ndarray:
    """Return ``values`` as a float64 array for a batch or a Python float for one case.

    Parameters
    ----------
    values : numpy.ndarray
        One value per case, shape ``(B,)``.
    is_batch : bool
        Whether the caller passed a batch.

    Returns
    -------
    float or numpy.ndarray
        ``float(values[0])`` for one case, else ``values`` as float64.

    Examples
    --------
    >>> import numpy as np
    >>> from shiftattr.metrics._masks import finish
    >>> finish(np.array([0.5]), False)
    0.5
    """
    values = np.asarray(values, dtype=np.float64)
    return values if is_batch else float(values[0])
