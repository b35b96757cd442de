"""Reading a model's saved probability maps: nnU-Net's ``.npz`` files and NIfTI maps.

A saved mask tells what a pipeline predicted, not how sure it was. The probabilities
let :class:`~shiftattr.segmentation.SavedPredictions` give the confidence and entropy
summaries of :func:`~shiftattr.segmentation.mask_features` that a model's own outputs
give, so that the image ratio's output features vary between cases by more than the
masks' volumes and components.

Two layouts are read, one file per case:

* ``.npz`` as ``nnUNetv2_predict --save_probabilities`` writes it: the array
  ``"probabilities"`` of shape ``(C, *spatial)``, one channel per label value (label
  ``k`` is channel ``k``), with the spatial axes in SimpleITK's order, the reverse of
  nibabel's (nnU-Net's NIfTI readers both reverse the axes on reading and restore them
  when writing the mask). The channel of the class scored is kept and the axes are put
  back in nibabel's order, the order of the images and masks shiftattr reads.
* NIfTI (``.nii``, ``.nii.gz``): a 3D map of the probability of the class scored, on the
  grid of the case's images.

Reading checks that the values are finite and within [0, 1] (a map of logits or
percentages is an error naming the case), and never unpickles anything (nnU-Net's
``.pkl`` beside each ``.npz`` is not read).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence

import numpy as np

from shiftattr.segmentation.nifti import NiftiDataError, _file_stamp, _read_data, _read_header

__all__ = ["NNUNET_PROBABILITY_KEY", "ProbabilityMapLoader", "probability_map_info"]

#: The name of the array in the ``.npz`` files ``nnUNetv2_predict --save_probabilities``
#: writes.
NNUNET_PROBABILITY_KEY = "probabilities"

#: How far a stored probability may stray outside [0, 1] (float16 rounding) before the
#: map is refused; values within it are clipped.
_RANGE_SLACK = 1e-3


def _is_npz(path: str) -> bool:
    return str(path).lower().endswith(".npz")


def _npz_member_header(path: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of the ``probabilities`` array of an ``.npz``, from its header
    (no voxel is decompressed)."""
    member = f"{NNUNET_PROBABILITY_KEY}.npy"
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if member not in names:
                keys = [n[:-4] if n.endswith(".npy") else n for n in names]
                raise NiftiDataError(
                    f"{path!r} holds no array {NNUNET_PROBABILITY_KEY!r} (it holds {keys}); "
                    "nnUNetv2_predict --save_probabilities writes one per case."
                )
            with zf.open(member) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                else:  # a newer format: read the array itself
                    with np.load(path, allow_pickle=False) as z:
                        arr = z[NNUNET_PROBABILITY_KEY]
                    shape, dtype = arr.shape, arr.dtype
    except NiftiDataError:
        raise
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise NiftiDataError(
            f"cannot read {path!r} as an .npz file ({type(exc).__name__}: {exc}); is it complete?"
        ) from exc
    return tuple(int(s) for s in shape), np.dtype(dtype)


def probability_map_info(path: str | os.PathLike) -> tuple[int | None, tuple[int, ...]]:
    """The number of classes and the spatial shape (nibabel's axis order) of a saved
    probability map, from its header.

    Parameters
    ----------
    path : path
        An nnU-Net ``.npz`` or a NIfTI map.

    Returns
    -------
    n_classes : int or None
        The number of channels of an ``.npz`` (one per label value); None for a NIfTI
        map, which holds the class scored only.
    shape : tuple of int
        The spatial shape, in the axis order nibabel reads the case's images in.

    Raises
    ------
    NiftiDataError
        If the file is missing, is not a readable ``.npz`` or NIfTI file, its
        ``.npz`` holds no ``probabilities`` array, that array does not have a channel
        axis and 2 or 3 spatial axes, or its dtype is not floating.

    Examples
    --------
    >>> import tempfile, os, numpy as np
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "case.npz")
    ...     np.savez_compressed(path, probabilities=np.zeros((2, 5, 4, 3), "float16"))
    ...     probability_map_info(path)                  # (C, z, y, x) -> (x, y, z)
    (2, (3, 4, 5))
    """
    path = str(path)
    if not os.path.isfile(path):
        raise NiftiDataError(f"probability map not found: {path!r}")
    if _is_npz(path):
        shape, dtype = _npz_member_header(path)
        if len(shape) not in (3, 4):
            raise NiftiDataError(
                f"{path!r}: the probabilities have shape {shape}; expected (classes, *spatial) "
                "with 2 or 3 spatial axes, as nnUNetv2_predict --save_probabilities writes."
            )
        if dtype.kind != "f":
            raise NiftiDataError(
                f"{path!r}: the probabilities have dtype {dtype}; expected floating values in [0, 1]."
            )
        return shape[0], tuple(reversed(shape[1:]))
    return None, _read_header(path).shape


def fits_grid(grid: Sequence[int], shape: Sequence[int]) -> bool:
    """Whether a probability map's spatial ``grid`` is the images' ``shape``, up to
    trailing axes of length 1 (nnU-Net stores a 2D case as ``(C, 1, y, x)``, read in
    reverse as ``(x, y, 1)``)."""
    grid, shape = tuple(grid), tuple(shape)
    k = len(shape)
    return grid[:k] == shape and all(v == 1 for v in grid[k:])


def class_channel(n_classes: int | None, foreground: int | None, path: str) -> int | None:
    """The channel of an ``.npz`` holding the class scored: ``foreground`` when given,
    else 1 for a two-class map; None for a NIfTI map (one class only).

    Raises
    ------
    NiftiDataError
        If ``foreground`` is not a channel of the map, or the map holds more than two
        classes and no ``foreground`` says which one is scored.
    """
    if n_classes is None:
        return None
    if foreground is not None:
        if not 0 < foreground < n_classes:
            raise NiftiDataError(
                f"{path!r} holds the probabilities of {n_classes} classes (labels 0 to "
                f"{n_classes - 1}) but foreground={foreground}."
            )
        return int(foreground)
    if n_classes != 2:
        raise NiftiDataError(
            f"{path!r} holds the probabilities of {n_classes} classes; pass foreground=k "
            "to score class k (the masks become label == k and channel k is read)."
        )
    return 1


def check_probabilities(p: np.ndarray, what: str, case_id: str) -> np.ndarray:
    """``p`` after checking it is finite and within [0, 1] up to float16 rounding;
    a clipped copy if it strays within that rounding, else ``p`` itself. ``what`` names
    the map in the error."""
    finite = np.isfinite(p)
    if not finite.all():
        raise NiftiDataError(
            f"case {case_id!r}: {what} holds "
            f"{int(p.size - np.count_nonzero(finite))} non-finite value(s)."
        )
    lo, hi = (float(p.min()), float(p.max())) if p.size else (0.0, 0.0)
    if lo < -_RANGE_SLACK or hi > 1.0 + _RANGE_SLACK:
        raise NiftiDataError(
            f"case {case_id!r}: {what} holds values in [{lo:.4g}, "
            f"{hi:.4g}], not probabilities in [0, 1]; save the softmax or sigmoid of the "
            "outputs, not the logits (or divide percentages by 100)."
        )
    return np.clip(p, 0.0, 1.0) if lo < 0.0 or hi > 1.0 else p


class ProbabilityMapLoader:
    """Read one case's probability of the class scored (a picklable ``LazyVolumes``
    loader).

    Parameters
    ----------
    paths : sequence of str
        One file per case: an nnU-Net ``.npz`` or a NIfTI map (see the module docstring).
    channels : sequence of int or None
        Per case, the channel of an ``.npz`` to keep (None for a NIfTI map).
    case_ids : sequence of str, optional
        Used in error messages.
    grids : sequence of tuple of int, optional
        Per case, the images' shape: a map whose grid differs from it by trailing axes of
        length 1 only (a 2D case as nnU-Net stores it) is reshaped to it.

    Examples
    --------
    >>> import tempfile, os, numpy as np
    >>> p = np.zeros((2, 1, 2, 3), "float16"); p[1, 0, 1, 2] = 0.75; p[0] = 1 - p[1]
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "case.npz")
    ...     np.savez_compressed(path, probabilities=p)
    ...     q = ProbabilityMapLoader([path], [1])(0)
    >>> q.shape, q.dtype, float(q[2, 1, 0])          # nibabel's axes: (x, y, z)
    ((3, 2, 1), dtype('float32'), 0.75)
    """

    def __init__(
        self,
        paths: Sequence[str],
        channels: Sequence[int | None],
        case_ids: Sequence[str] | None = None,
        grids: Sequence[Sequence[int]] | None = None,
    ) -> None:
        self.paths = [str(p) for p in paths]
        self.grids = None if grids is None else [tuple(int(v) for v in g) for g in grids]
        self.channels = [None if c is None else int(c) for c in channels]
        if len(self.channels) != len(self.paths):
            raise ValueError(f"{len(self.paths)} paths but {len(self.channels)} channels")
        self.case_ids = list(case_ids) if case_ids is not None else None
        self.n_reads = 0  # number of files read (for diagnostics and tests)

    def __len__(self) -> int:
        return len(self.paths)

    def item_key(self, i: int) -> tuple:
        """Identity of case ``i``'s map: path, size, modification time and channel.

        Parameters
        ----------
        i : int
            Case index.

        Returns
        -------
        tuple
            Hashable key that changes when the file is replaced or modified.

        Examples
        --------
        >>> import tempfile, os, numpy as np
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = os.path.join(tmp, "case.npz")
        ...     np.savez_compressed(path, probabilities=np.full((2, 2, 2, 2), 0.5, "float16"))
        ...     loader = ProbabilityMapLoader([path, path], [0, 1])
        ...     loader.item_key(0) == loader.item_key(1)      # another channel
        False
        """
        return ("probability", *_file_stamp(self.paths[i]), self.channels[i])

    def __call__(self, i: int) -> np.ndarray:
        path, channel = self.paths[i], self.channels[i]
        case_id = self.case_ids[i] if self.case_ids is not None else str(i)
        if not os.path.isfile(path):  # e.g. moved or deleted after the environment was built
            raise NiftiDataError(f"case {case_id!r}: probability map not found: {path!r}")
        if _is_npz(path):
            try:
                with np.load(path, allow_pickle=False) as z:
                    stack = z[NNUNET_PROBABILITY_KEY]
            except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
                raise NiftiDataError(
                    f"case {case_id!r}: cannot read the probabilities of {path!r} "
                    f"({type(exc).__name__}: {exc})."
                ) from exc
            if channel is None or not 0 <= channel < stack.shape[0]:
                raise NiftiDataError(
                    f"case {case_id!r}: {path!r} holds {stack.shape[0]} class(es); channel "
                    f"{channel} was asked for (has the file changed since loading?)."
                )
            # SimpleITK's axis order (z, y, x) back to nibabel's (x, y, z)
            p = np.ascontiguousarray(stack[channel].T, dtype=np.float32)
        else:
            p = np.asarray(_read_data(path), dtype=np.float32)
        self.n_reads += 1
        grid = None if self.grids is None else self.grids[i]
        if grid is not None and p.shape != grid and fits_grid(p.shape, grid):
            p = p.reshape(grid)
        return check_probabilities(p, f"the probability map {path!r}", case_id)

    def __repr__(self) -> str:
        return f"ProbabilityMapLoader(n={len(self)})"
