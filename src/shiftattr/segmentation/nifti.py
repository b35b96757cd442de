"""NIfTI datasets as lazy environments: a folder with a manifest, nnU-Net raw, MSSEG-2016.

Every loader reads the headers only (shape, affine, voxel size) and checks them at
load time: all channels and the mask of a case share one grid (same shape, affines
equal within a tolerance). Voxel data are read on access, one case at a time, through
:class:`~shiftattr.environment.LazyVolumes`; reading problems (truncated gzip, corrupt
file) and non-binary masks are reported then, naming the file. Nothing is ever
written into the data folder.

Images are float32, ``(*spatial)`` for one channel and ``(C, *spatial)`` for several;
masks are uint8 (0/1 when binary). Per-case information is kept in
``environment.metadata`` as arrays aligned with the cases: ``"case_id"``, ``"spacing"`` (voxel sizes
from the headers, array-axis order), ``"affine"``, ``"shape"``, ``"image_paths"``,
``"label_paths"``, plus layout-specific keys (``"center"``, ``"patient"``,
``"annotator"`` for MSSEG-2016; manifest columns for :func:`load_folder`). Keys that
describe the whole environment are kept as is by :func:`select_cases` and
:meth:`~shiftattr.Environment.subset`: ``"channel_names"`` (``{"0": "FLAIR", "1": "T1"}``,
the image channels in order, recorded by every loader) and ``"foreground"`` (the label
scored as ``Y``, or None).

Before attributing two loaded environments, :func:`check_comparable` checks that their
channels agree and warns when their orientations differ.
"""

from __future__ import annotations

import csv
import json
import os
import re
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shiftattr.environment import Environment, LazyVolumes

__all__ = [
    "MSSEG2016_MODALITIES",
    "NiftiDataError",
    "NiftiVolumeLoader",
    "check_comparable",
    "load_folder",
    "load_msseg2016",
    "load_nnunet_raw",
    "msseg2016_environments",
    "select_cases",
]

MSSEG2016_MODALITIES: tuple[str, ...] = ("FLAIR", "T1", "T2", "DP", "GADO")
"""Modalities of MSSEG-2016 (``DP`` is proton density; ``GADO`` T1 with gadolinium)."""

_MSSEG2016_LABELS = {"background": 0, "lesion": 1}

#: The names the raw (not pre-processed) scans of the MSSEG-2016 release carry, tried
#: after the modality's own name: the 3D acquisitions are ``3DFLAIR``, ``3DT1`` and
#: ``3DT1GADO`` there (``DP`` and ``T2`` keep theirs).
_MSSEG2016_RAW_NAMES = {"FLAIR": ("3DFLAIR",), "T1": ("3DT1",), "GADO": ("3DT1GADO", "T1GADO")}

_NIFTI_ENDINGS = (".nii.gz", ".nii")
# metadata keys written by every loader; manifest columns of these names get a prefix
_RESERVED_METADATA = frozenset(
    {
        "case_id",
        "spacing",
        "affine",
        "shape",
        "image_paths",
        "label_paths",
        "prediction_paths",
        "probability_paths",
        "manifest",
        "folder",
        "channel_names",
        "foreground",
    }
)


class NiftiDataError(ValueError):
    """A NIfTI file is missing, unreadable or inconsistent; the message names the file(s).

    A subclass of :class:`ValueError`.

    Examples
    --------
    >>> try:
    ...     NiftiVolumeLoader([["/no/such/case.nii.gz"]])(0)
    ... except NiftiDataError as err:
    ...     print(err)
    file not found: '/no/such/case.nii.gz'
    """


def _nibabel() -> Any:
    try:
        import nibabel
    except ImportError as exc:  # pragma: no cover - nibabel ships with the images extra
        raise ImportError(
            'reading NIfTI files needs nibabel: pip install "shiftattr[images]"'
        ) from exc
    return nibabel


# ---------------------------------------------------------------------------------- headers
@dataclass(frozen=True)
class _Header:
    path: str
    shape: tuple[int, ...]
    affine: np.ndarray
    zooms: tuple[float, ...]


def _effective_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """Drop trailing singleton axes beyond the third ((x, y, z, 1) -> (x, y, z))."""
    s = list(int(v) for v in shape)
    while len(s) > 3 and s[-1] == 1:
        s.pop()
    return tuple(s)


def _read_header(path: str) -> _Header:
    nib = _nibabel()
    if not os.path.isfile(path):
        raise NiftiDataError(f"file not found: {path!r}")
    try:
        img = nib.load(path, mmap=False)
        shape = _effective_shape(img.shape)
        affine = np.asarray(img.affine, dtype=np.float64)
        zooms = tuple(float(z) for z in img.header.get_zooms()[: len(shape)])
    except MemoryError:  # pragma: no cover
        raise
    except Exception as exc:
        raise NiftiDataError(
            f"cannot read the NIfTI header of {path!r} ({type(exc).__name__}: {exc}); is the "
            "file complete and a NIfTI-1/2 image?"
        ) from exc
    return _Header(path, shape, affine, zooms)


def _check_same_grid(
    case_id: str, headers: Sequence[_Header], check_affine: bool, tolerance: float
) -> None:
    ref = headers[0]
    for h in headers[1:]:
        if len(h.shape) != len(ref.shape) and max(len(h.shape), len(ref.shape)) > 3:
            multi, single = (h, ref) if len(h.shape) > len(ref.shape) else (ref, h)
            raise NiftiDataError(
                f"case {case_id!r}: {multi.path!r} is a {len(multi.shape)}D image of shape "
                f"{multi.shape} (several channels or time points in one file) but "
                f"{single.path!r} has shape {single.shape}. Split the {len(multi.shape)}D file "
                "into one 3D file per channel (e.g. nibabel.funcs.four_to_three) and list them "
                "in the manifest's image columns, in order (nnU-Net: one file per channel, "
                "{case}_0000, {case}_0001, ...)."
            )
        if h.shape != ref.shape:
            raise NiftiDataError(
                f"case {case_id!r}: {h.path!r} has shape {h.shape} but {ref.path!r} has shape "
                f"{ref.shape}; images and masks of a case must share one voxel grid "
                "(resample / co-register them first)."
            )
        if check_affine and not np.allclose(h.affine, ref.affine, rtol=0.0, atol=tolerance):
            diff = float(np.abs(h.affine - ref.affine).max())
            raise NiftiDataError(
                f"case {case_id!r}: the affine of {h.path!r} differs from that of {ref.path!r} "
                f"(max abs difference {diff:.3g} > tolerance {tolerance:g}); the volumes are not "
                f"on the same grid.\n{h.path}:\n{h.affine}\n{ref.path}:\n{ref.affine}\n"
                "Co-register them, or pass check_affine=False / a larger affine_tolerance if "
                "the difference is only header rounding."
            )


# ---------------------------------------------------------------------------------- loader
def _check_foreground(
    foreground: Any, declared: Mapping[str, Any] | None = None, where: str = ""
) -> int | None:
    """``foreground`` as an int, checked to be positive and among ``declared`` labels.

    ``declared`` maps label names to values (nnU-Net's ``dataset.json`` ``labels``);
    ``where`` names the file declaring them.
    """
    if foreground is None:
        return None
    values = _label_values(declared) if declared is not None else set()
    shown = f"; {where or 'the dataset'} declares the labels {dict(declared)}" if declared else ""
    if isinstance(foreground, (bool, np.bool_)) or not isinstance(foreground, (int, np.integer)):
        raise NiftiDataError(
            f"foreground must be a positive int (the label scored as the mask), got "
            f"{foreground!r}{shown}."
        )
    if foreground < 1:
        raise NiftiDataError(
            f"foreground must be a positive int, got {foreground} (0 is the background){shown}."
        )
    if declared is not None and int(foreground) not in values:
        positive = sorted(v for v in values if v > 0)
        raise NiftiDataError(
            f"foreground={foreground} is not a declared label{shown}; pass one of {positive}."
        )
    return int(foreground)


def _file_stamp(path: str) -> tuple:
    """``(real path, size, modification time)`` of a file (``None`` for a missing
    one's size and time): what a lazy loader's ``item_key`` tells a file's contents by."""
    real = os.path.realpath(path)  # a file reached through a link is the same file
    try:
        st = os.stat(real)
    except OSError:
        return (real, None, None)
    return (real, st.st_size, st.st_mtime_ns)


def _read_data(path: str) -> np.ndarray:
    nib = _nibabel()
    if not os.path.isfile(path):  # e.g. moved or deleted after the environment was built
        raise NiftiDataError(f"file not found: {path!r}")
    try:
        img = nib.load(path, mmap=False)
        data = np.asarray(img.dataobj)
    except MemoryError:  # pragma: no cover
        raise
    except Exception as exc:
        raise NiftiDataError(
            f"cannot read the voxel data of {path!r} ({type(exc).__name__}: {exc}); the file "
            "is probably truncated or corrupt (re-download or re-export it)."
        ) from exc
    return data.reshape(_effective_shape(data.shape))


class NiftiVolumeLoader:
    """Read one case's volume(s) from NIfTI files (a picklable ``LazyVolumes`` loader).

    Parameters
    ----------
    paths : sequence of sequence of str
        Per case, the files to read: several files are stacked as channels.
    kind : {"image", "mask"}
        Images come back as float32; masks as integers (uint8 when binary).
    binary : bool, default True
        For masks: require values in {0, 1} (the error lists the values found).
    squeeze : bool, default True
        Return ``(*spatial)`` rather than ``(1, *spatial)`` for one file.
    case_ids : sequence of str, optional
        Used in error messages.
    foreground : int, optional
        For masks that are label maps: return the binary mask ``label == foreground``
        (uint8); ``binary`` is not used then.

    Examples
    --------
    >>> import tempfile, os, nibabel as nib, numpy as np
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "a.nii.gz")
    ...     nib.save(nib.Nifti1Image(np.ones((2, 3, 4), dtype="float32"), np.eye(4)), path)
    ...     NiftiVolumeLoader([[path]])(0).shape
    (2, 3, 4)

    A label map scored on label 2:

    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "seg.nii.gz")
    ...     labels = np.array([0, 1, 2, 2], dtype="uint8").reshape(1, 1, 4)
    ...     nib.save(nib.Nifti1Image(labels, np.eye(4)), path)
    ...     NiftiVolumeLoader([[path]], "mask", foreground=2)(0).ravel().tolist()
    [0, 0, 1, 1]
    """

    def __init__(
        self,
        paths: Sequence[Sequence[str]],
        kind: str = "image",
        binary: bool = True,
        squeeze: bool = True,
        case_ids: Sequence[str] | None = None,
        foreground: int | None = None,
    ) -> None:
        if kind not in ("image", "mask"):
            raise ValueError(f"kind must be 'image' or 'mask', got {kind!r}")
        if foreground is not None and kind != "mask":
            raise ValueError("foreground= applies to masks (kind='mask') only")
        self.paths = [tuple(str(p) for p in ps) for ps in paths]
        self.kind = kind
        self.binary = bool(binary)
        self.squeeze = bool(squeeze)
        self.case_ids = list(case_ids) if case_ids is not None else None
        self.foreground = _check_foreground(foreground)
        self.n_reads = 0  # number of files read (for diagnostics and tests)

    def __len__(self) -> int:
        return len(self.paths)

    def item_key(self, i: int) -> tuple:
        """Identity of case ``i``'s data: paths, sizes and modification times.

        Parameters
        ----------
        i : int
            Case index.

        Returns
        -------
        tuple
            Hashable key that changes when a file is replaced or modified.

        Examples
        --------
        >>> import tempfile, os, nibabel as nib, numpy as np
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = os.path.join(tmp, "a.nii.gz")
        ...     nib.save(nib.Nifti1Image(np.ones((2, 2, 2), dtype="float32"), np.eye(4)), path)
        ...     loader = NiftiVolumeLoader([[path]])
        ...     before = loader.item_key(0)
        ...     nib.save(nib.Nifti1Image(np.ones((3, 3, 3), dtype="float32"), np.eye(4)), path)
        ...     hash(before) == hash(before), before == loader.item_key(0)
        (True, False)
        """
        key = (self.kind, self.binary, tuple(_file_stamp(p) for p in self.paths[i]))
        return key if self.foreground is None else (*key, ("foreground", self.foreground))

    def _mask(self, data: np.ndarray, path: str) -> np.ndarray:
        if data.dtype.kind == "f":
            if not np.all(np.isfinite(data)) or not np.array_equal(data, np.round(data)):
                bad = np.unique(data[~np.isfinite(data) | (data != np.round(data))])[:10]
                raise NiftiDataError(
                    f"mask {path!r} holds non-integer values (e.g. {bad.tolist()}); a "
                    "segmentation mask must hold labels (binarise soft masks first)."
                )
        elif data.dtype.kind not in "biu":
            raise NiftiDataError(f"mask {path!r} has dtype {data.dtype}; expected integer labels")
        if self.foreground is not None:
            return (data == self.foreground).astype(np.uint8)
        if self.binary:
            outside = (data != 0) & (data != 1)
            if outside.any():
                values = np.unique(data)
                shown = values[:20].tolist()
                more = f" (and {values.size - 20} more)" if values.size > 20 else ""
                raise NiftiDataError(
                    f"mask {path!r} is not binary: it holds the values {shown}{more}. Binarise "
                    "it, or load it as a label map (binary=False / binary_labels=False) and "
                    "choose the label of interest with SegmentationAdapter(label=...)."
                )
            return data.astype(np.uint8)
        lo, hi = (int(data.min()), int(data.max())) if data.size else (0, 0)
        if lo >= 0 and hi < 256:
            return data.astype(np.uint8)
        return data.astype(np.int32)

    def __call__(self, i: int) -> np.ndarray:
        vols = []
        for p in self.paths[i]:
            data = _read_data(p)
            self.n_reads += 1
            if self.kind == "image":
                vols.append(data.astype(np.float32, copy=False))
            else:
                vols.append(self._mask(data, p))
        shapes = {v.shape for v in vols}
        if len(shapes) > 1:  # headers were checked; data disagreeing means files changed
            raise NiftiDataError(
                f"channels of case {self._case(i)!r} have different shapes "
                f"{[v.shape for v in vols]} ({list(self.paths[i])})"
            )
        if len(vols) == 1 and self.squeeze:
            return vols[0]
        return np.stack(vols)

    def _case(self, i: int) -> str:
        return self.case_ids[i] if self.case_ids is not None else str(i)

    def __repr__(self) -> str:
        fg = "" if self.foreground is None else f", foreground={self.foreground}"
        return f"NiftiVolumeLoader(n={len(self)}, kind={self.kind!r}, binary={self.binary}{fg})"


# ---------------------------------------------------------------------------------- builder
@dataclass
class _Case:
    case_id: str
    images: tuple[str, ...]
    label: str | None
    extra_labels: dict[str, str] | None = None  # counterfactual name -> mask path
    prediction: str | None = None  # the model's saved prediction (a mask or label map)
    probability: str | None = None  # its saved probabilities (nnU-Net .npz or a NIfTI map)


def _build(
    cases: Sequence[_Case],
    *,
    name: str,
    image_node: str,
    label_node: str,
    binary_labels: bool,
    check_affine: bool,
    affine_tolerance: float,
    extra_nodes: Mapping[str, np.ndarray] | None = None,
    metadata: Mapping[str, Any] | None = None,
    channel_names: Sequence[str] | None = None,
    foreground: int | None = None,
    prediction_node: str = "P",
    probability_node: str = "P_proba",
) -> Environment:
    """The lazy environment of ``cases`` (headers checked; see the module docstring).

    ``channel_names`` (one per image file of a case, in order) is recorded as
    ``metadata["channel_names"] = {"0": name0, ...}``; ``foreground`` makes the masks
    the binary masks ``label == foreground``. Cases with a saved ``prediction`` (all or
    none) get node ``prediction_node``: label maps (``== foreground`` when given), on
    the grid of the case's images. Cases with saved probabilities (all or none, only
    beside predictions) get node ``probability_node``: the probability of the class
    scored (:mod:`~shiftattr.segmentation.probability_maps`), on the same grid.
    """
    from shiftattr.segmentation.probability_maps import (
        ProbabilityMapLoader,
        _is_npz,
        class_channel,
        fits_grid,
        probability_map_info,
    )

    if not cases:
        raise NiftiDataError(f"no cases found for environment {name!r}")
    ids = [c.case_id for c in cases]
    dup = sorted(c for c, k in Counter(ids).items() if k > 1)
    if dup:
        raise NiftiDataError(f"duplicate case ids {dup[:10]} in environment {name!r}")
    has_label = cases[0].label is not None
    if any((c.label is not None) != has_label for c in cases):
        missing = [c.case_id for c in cases if c.label is None]
        raise NiftiDataError(f"cases {missing[:10]} have no label file while others do")
    has_prediction = cases[0].prediction is not None
    has_probability = cases[0].probability is not None
    taken = {image_node, label_node, *(extra_nodes or {})}
    if has_prediction and prediction_node in taken:
        raise ValueError(
            f"prediction_node={prediction_node!r} would replace a node the loader makes "
            f"({sorted(taken)}); name the predictions' node otherwise (default 'P')."
        )
    if has_probability and probability_node in taken | {prediction_node}:
        raise ValueError(
            f"probability_node={probability_node!r} would replace a node the loader makes "
            f"({sorted(taken | {prediction_node})}); name the probabilities' node otherwise "
            "(default 'P_proba')."
        )
    for what, has in (("prediction", has_prediction), ("probability", has_probability)):
        if any((getattr(c, what) is not None) != has for c in cases):
            missing = [c.case_id for c in cases if getattr(c, what) is None]
            raise NiftiDataError(f"cases {missing[:10]} have no {what} file while others do")
    if has_probability and not has_prediction:
        raise ValueError(
            "saved probabilities are read beside saved predictions (the masks scored); "
            "give the predictions too."
        )
    headers_cache: dict[str, _Header] = {}

    def header(path: str) -> _Header:
        if path not in headers_cache:
            headers_cache[path] = _read_header(path)
        return headers_cache[path]

    shapes, affines, zooms, channels = [], [], [], []
    for c in cases:
        files = list(c.images) + ([c.label] if c.label else [])
        files += list((c.extra_labels or {}).values())
        files += [c.prediction] if c.prediction else []
        npz = c.probability is not None and _is_npz(c.probability)
        files += [c.probability] if c.probability and not npz else []  # a NIfTI map
        hs = [header(p) for p in files]
        _check_same_grid(c.case_id, hs, check_affine, affine_tolerance)
        if npz:  # an .npz has no affine: its grid, from the array's header
            n_classes, grid = probability_map_info(c.probability)
            if not fits_grid(grid, hs[0].shape):
                raise NiftiDataError(
                    f"case {c.case_id!r}: the probability map {c.probability!r} has spatial "
                    f"shape {grid} (nibabel's axis order; an .npz is read in reverse) but "
                    f"{hs[0].path!r} has shape {hs[0].shape}; they must share the images' "
                    "grid (save the probabilities at the images' resolution, as "
                    "nnUNetv2_predict does)."
                )
            channels.append(class_channel(n_classes, foreground, c.probability))
        elif c.probability is not None:
            channels.append(None)
        shapes.append(hs[0].shape)
        affines.append(hs[0].affine)
        zooms.append(hs[0].zooms)
    n = len(cases)
    n_channels = {len(c.images) for c in cases}
    if len(n_channels) != 1:
        raise NiftiDataError(f"cases of {name!r} have different numbers of channels {n_channels}")
    n_ch = n_channels.pop()
    uniform = len(set(shapes)) == 1
    spatial = shapes[0] if uniform else None
    img_shape = None if spatial is None else (spatial if n_ch == 1 else (n_ch, *spatial))

    image_loader = NiftiVolumeLoader([c.images for c in cases], "image", case_ids=ids)
    img_shapes = [tuple(sh) if n_ch == 1 else (n_ch, *sh) for sh in shapes]
    data: dict[str, Any] = {
        image_node: LazyVolumes(
            image_loader, n, shape=img_shape, dtype=np.float32, item_shapes=img_shapes
        )
    }

    def masks(paths: list[str], binary: bool) -> LazyVolumes:
        """One mask file per case, lazily; uint8 when binary or one class is kept."""
        loader = NiftiVolumeLoader(
            [(p,) for p in paths], "mask", binary=binary, case_ids=ids, foreground=foreground
        )
        dtype = np.uint8 if binary or foreground is not None else None
        return LazyVolumes(loader, n, shape=spatial, dtype=dtype, item_shapes=shapes)

    if has_label:
        data[label_node] = masks([c.label for c in cases], binary_labels)
    if has_prediction:
        # label maps as written (nnU-Net writes its classes), or the one class scored
        data[prediction_node] = masks([c.prediction for c in cases], False)
    if has_probability:
        proba_loader = ProbabilityMapLoader(
            [c.probability for c in cases], channels, ids, grids=shapes
        )
        data[probability_node] = LazyVolumes(
            proba_loader, n, shape=spatial, dtype=np.float32, item_shapes=shapes
        )
    for node, values in (extra_nodes or {}).items():
        data[node] = values
    counterfactuals: dict[str, dict[str, Any]] = {}
    cf_names = sorted({k for c in cases for k in (c.extra_labels or {})})
    for cf in cf_names:
        paths = []
        for c in cases:
            if cf not in (c.extra_labels or {}):
                raise NiftiDataError(f"case {c.case_id!r} has no mask for {cf!r}")
            paths.append((c.extra_labels or {})[cf])
        counterfactuals[cf] = {label_node: masks(paths, binary_labels)}
    d = len(shapes[0])
    meta: dict[str, Any] = {
        "case_id": np.array(ids, dtype=object),
        "spacing": np.array([z[:d] for z in zooms], dtype=np.float64),
        "affine": np.stack(affines),
        "shape": np.array(shapes, dtype=np.int64)
        if len({len(s) for s in shapes}) == 1
        else np.array([str(s) for s in shapes], dtype=object),
        "image_paths": np.array([c.images for c in cases], dtype=object).reshape(n, n_ch),
        "label_paths": np.array([c.label for c in cases], dtype=object),
    }
    if has_prediction:
        meta["prediction_paths"] = np.array([c.prediction for c in cases], dtype=object)
    if has_probability:
        meta["probability_paths"] = np.array([c.probability for c in cases], dtype=object)
    meta.update(metadata or {})
    if channel_names is not None:  # not per case: subset and select_cases keep it whole
        meta["channel_names"] = {str(k): str(v) for k, v in enumerate(channel_names)}
    meta["foreground"] = foreground
    return Environment(
        data, name=name, case_ids=ids, metadata=meta, counterfactuals=counterfactuals
    )


def _nifti_path(base: Path, stem: str) -> Path | None:
    for ending in _NIFTI_ENDINGS:
        p = base / f"{stem}{ending}"
        if p.is_file():
            return p
    return None


# ---------------------------------------------------------------------------------- folder
def _read_manifest(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise NiftiDataError(f"manifest not found: {str(path)!r}")
    if path.suffix.lower() == ".json":
        try:
            content = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise NiftiDataError(f"manifest {str(path)!r} is not valid JSON: {exc}") from exc
        if isinstance(content, Mapping):
            for key in ("cases", "records", "data", "training"):
                if isinstance(content.get(key), list):
                    content = content[key]
                    break
        if not isinstance(content, list) or not all(isinstance(r, Mapping) for r in content):
            raise NiftiDataError(
                f"manifest {str(path)!r} must hold a list of records (one object per case), "
                "or an object with such a list under 'cases'."
            )
        return [dict(r) for r in content]
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, skipinitialspace=True)
        if reader.fieldnames is None:
            raise NiftiDataError(f"manifest {str(path)!r} is empty")
        names = [(k or "").strip() for k in reader.fieldnames]
        # unnamed columns (a spreadsheet's empty trailing ones) are left out
        twice = sorted({k for k in names if k and names.count(k) > 1})
        if twice:  # the reader would keep the last of them: a channel dropped unseen
            raise NiftiDataError(
                f"manifest {str(path)!r} names the column(s) {twice} more than once; give "
                "each column its own name (image channels: e.g. image_flair, image_t1)."
            )
        rows = []
        for row in reader:
            # a cell too many (a decimal comma) or too few would shift the columns
            extra = [c for c in row.pop(None, None) or () if c.strip()]  # empty ones: none
            if (row.pop("", None) or "").strip():
                extra.append("")  # a value under an unnamed column: a shifted row too
            if extra or None in row.values():
                n_cells = sum(v is not None for v in row.values()) + len(extra)
                raise NiftiDataError(
                    f"manifest {str(path)!r}, line {reader.line_num}: {n_cells} cells for "
                    f"{len(names)} columns; quote cells holding commas (a decimal comma: "
                    "write 2.1, not 2,1)."
                )
            rows.append(
                {
                    (k or "").strip(): (v.strip() if isinstance(v, str) else v)
                    for k, v in row.items()
                }
            )
    return rows


#: Text that ``float`` reads but a manifest means as a code: a leading zero ("007",
#: "01": "007" and "7" would become one value), digits grouped by "_" ("2020_01"), and
#: infinities.
_CODE_LIKE = re.compile(r"^[+-]?0\d|_|^[+-]?inf", re.IGNORECASE)


def _to_numeric(values: Sequence[Any], codes: bool = True) -> np.ndarray | None:
    """float array if every value parses as a number, else None (empty cells -> NaN;
    with ``codes``, text of :data:`_CODE_LIKE` is no number: a column the user named a
    covariate is read as numbers)."""
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if isinstance(v, (bool, int, float)):
            out[i] = float(v)
        elif v is None or (isinstance(v, str) and v == ""):
            out[i] = np.nan
        else:
            if codes and isinstance(v, str) and _CODE_LIKE.search(v.strip()):
                return None
            try:
                out[i] = float(v)
            except (TypeError, ValueError):
                return None
    return out


def _resolve(folder: Path, value: Any, what: str, case_id: str, manifest: Path) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise NiftiDataError(f"case {case_id!r}: empty {what} in manifest {str(manifest)!r}")
    p = Path(str(value).strip())
    if not p.is_absolute():
        p = folder / p
    if not p.is_file():
        raise NiftiDataError(
            f"case {case_id!r}: {what} file not found: {str(p)!r} (listed in {str(manifest)!r}; "
            "relative paths are relative to the folder)"
        )
    return str(p)


def load_folder(
    folder: str | os.PathLike,
    manifest: str | os.PathLike | None = None,
    *,
    image_columns: str | Sequence[str] | None = None,
    label_column: str | None = "label",
    id_column: str | None = "case_id",
    covariate_columns: Sequence[str] | Mapping[str, str | Sequence[str]] | None = None,
    covariate_node: str = "D",
    name: str | None = None,
    binary_labels: bool = True,
    image_node: str = "X",
    label_node: str = "Y",
    check_affine: bool = True,
    affine_tolerance: float = 1e-3,
    foreground: int | None = None,
    prediction_column: str | None = None,
    prediction_node: str = "P",
    probability_column: str | None = None,
    probability_node: str = "P_proba",
) -> Environment:
    """A lazy environment from a folder of NIfTI files listed in a manifest.

    Parameters
    ----------
    folder : path
        Folder holding the manifest; relative paths in it are relative to this folder.
    manifest : path, optional
        CSV (header row) or JSON (a list of records, or ``{"cases": [...]}``) file,
        relative to ``folder``. Default: ``manifest.csv``, else ``manifest.json``.
    image_columns : str or list of str, optional
        Column(s) holding the image path(s); several columns are channels, in order.
        In JSON a column may also hold a list of paths. Default: every column whose
        name starts with ``"image"``, in manifest order.
    label_column : str or None, default "label"
        Column holding the mask path; ``None`` for unlabelled data (no label node).
    id_column : str or None, default "case_id"
        Column holding unique case ids; ``None`` numbers the cases ``"<name>:<i>"``.
    covariate_columns : list of str or mapping, optional
        Columns that become nodes: a list makes node ``covariate_node`` of shape
        ``(N, d)``; a mapping ``{node: column or [columns]}`` makes named nodes
        (``(N,)`` for one column name, ``(N, d)`` for a list). Numeric columns only: a
        non-numeric one is kept in metadata instead, with a warning.
    covariate_node : str, default "D"
        Node name for a list of covariate columns.
    name : str, optional
        Environment name (default: the folder's name).
    binary_labels : bool, default True
        Require masks holding only 0 and 1 (checked when a mask is read); ``False``
        keeps integer label maps.
    image_node, label_node : str, default "X", "Y"
        Names of the image and mask nodes.
    check_affine : bool, default True
        Require the affines of a case's images and mask to agree.
    affine_tolerance : float, default 1e-3
        Absolute tolerance on affine entries (mm).
    foreground : int, optional
        The masks are label maps and ``label_node`` is the binary mask
        ``label == foreground`` (uint8): one class of a multi-label segmentation
        (``binary_labels`` is not used then). Recorded as ``metadata["foreground"]``.
    prediction_column : str, optional
        Column holding the path of each case's saved prediction (a mask or label map
        your model wrote, on the grid of the case's images): it becomes node
        ``prediction_node``, which
        :class:`~shiftattr.segmentation.SavedPredictions` scores instead of running a
        model. A label map is kept as written (``== foreground`` with ``foreground``).
    prediction_node : str, default "P"
        Name of that node; not one the loader makes otherwise (a ``ValueError``).
    probability_column : str, optional
        With ``prediction_column``: the column holding the path of each case's saved
        probabilities, an ``.npz`` as ``nnUNetv2_predict --save_probabilities`` writes
        (channel ``foreground`` is read, or 1 for two classes) or a NIfTI map of the
        class scored on the images' grid (see
        :mod:`~shiftattr.segmentation.probability_maps`). It becomes node
        ``probability_node`` (float32), which gives
        :class:`~shiftattr.segmentation.SavedPredictions` the confidence and entropy
        summaries.
    probability_node : str, default "P_proba"
        Name of that node; not one the loader makes otherwise (a ``ValueError``).

    Returns
    -------
    Environment
        Lazy ``image_node`` / ``label_node`` (and ``prediction_node``, with
        ``prediction_column``; ``probability_node``, with ``probability_column``); other manifest columns are in
        ``metadata`` (numeric ones as float arrays), one entry per case.
        ``metadata["channel_names"]`` names the channels by their image columns,
        ``{"0": "image_flair", "1": "image_t1"}`` (``"images[0]"``, ``"images[1]"``
        for a JSON column holding a list of paths).

    Raises
    ------
    NiftiDataError
        Naming the file or column: manifest missing or malformed, unknown column, file
        not found, unreadable header, image / mask grids that disagree, empty covariate
        values (a non-numeric covariate column is moved to the metadata with a warning),
        a JSON image column holding lists of different lengths, or a ``foreground``
        that is not a positive int.

    Examples
    --------
    >>> import tempfile, os, nibabel as nib, numpy as np
    >>> tmp = tempfile.mkdtemp()
    >>> for c in ("a", "b"):
    ...     nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), "float32"), np.eye(4)), f"{tmp}/{c}.nii.gz")
    ...     nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), "uint8"), np.eye(4)), f"{tmp}/{c}_seg.nii.gz")
    >>> with open(f"{tmp}/manifest.csv", "w") as fh:
    ...     _ = fh.write("case_id,image,label,age\\na,a.nii.gz,a_seg.nii.gz,50\\nb,b.nii.gz,b_seg.nii.gz,61\\n")
    >>> env = load_folder(tmp, covariate_columns=["age"])
    >>> env.case_ids, env["D"].ravel().tolist(), env["X"][0].shape
    (('a', 'b'), [50.0, 61.0], (4, 4, 4))
    >>> import shutil; shutil.rmtree(tmp)
    """
    root = Path(folder)
    if not root.is_dir():
        raise NiftiDataError(f"folder not found: {str(root)!r}")
    foreground = _check_foreground(foreground)
    if manifest is None:
        candidates = [root / "manifest.csv", root / "manifest.json"]
        found = [p for p in candidates if p.is_file()]
        if not found:
            raise NiftiDataError(
                f"no manifest.csv or manifest.json in {str(root)!r}; pass manifest='...'"
            )
        mpath = found[0]
    else:
        mpath = Path(manifest)
        if not mpath.is_absolute():
            mpath = root / mpath
    rows = _read_manifest(mpath)
    if not rows:
        raise NiftiDataError(f"manifest {str(mpath)!r} lists no cases")
    columns = list(dict.fromkeys(k for r in rows for k in r))
    env_name = name if name is not None else root.resolve().name

    def need(col: str, what: str) -> None:
        if col not in columns:
            raise NiftiDataError(
                f"manifest {str(mpath)!r} has no {what} column {col!r}; its columns are {columns}"
            )

    if image_columns is None:
        img_cols = [c for c in columns if c.lower().startswith("image")]
        if not img_cols:
            raise NiftiDataError(
                f"manifest {str(mpath)!r} has no column starting with 'image'; its columns are "
                f"{columns}. Pass image_columns=[...]."
            )
    else:
        img_cols = [image_columns] if isinstance(image_columns, str) else list(image_columns)
        for c in img_cols:
            need(c, "image")
    if label_column is not None and label_column not in columns:
        raise NiftiDataError(
            f"manifest {str(mpath)!r} has no label column {label_column!r}; its columns are "
            f"{columns}. Pass label_column='...', or label_column=None for unlabelled data."
        )
    if prediction_column is not None:
        need(prediction_column, "prediction")
    if probability_column is not None:
        if prediction_column is None:
            raise ValueError(
                "probability_column is read beside prediction_column (the saved masks "
                "scored); pass prediction_column too."
            )
        need(probability_column, "probability")
    if id_column is not None:
        need(id_column, "case id")
        ids = [str(r.get(id_column, "")).strip() for r in rows]
        empty = [i for i, v in enumerate(ids) if not v]
        if empty:
            raise NiftiDataError(f"manifest {str(mpath)!r}: empty case id in rows {empty[:10]}")
    else:
        ids = [f"{env_name}:{i}" for i in range(len(rows))]

    # channel names: the image columns; a JSON column of lists gives one name per entry
    channel_names: list[str] = []
    for col in img_cols:
        lengths = {
            cid: len(v) if isinstance(v := r.get(col), (list, tuple)) else 1
            for cid, r in zip(ids, rows)
        }
        distinct = sorted(set(lengths.values()))
        if len(distinct) > 1:
            examples = {k: [c for c, v in lengths.items() if v == k][:3] for k in distinct}
            raise NiftiDataError(
                f"image column {col!r} of {str(mpath)!r} holds different numbers of paths "
                f"({', '.join(f'{k} in cases {c}' for k, c in examples.items())}); every case "
                "needs the same channels in the same order: list them in separate image "
                "columns instead."
            )
        k = distinct[0]
        channel_names += [col] if k == 1 else [f"{col}[{j}]" for j in range(k)]

    cases = []
    for cid, row in zip(ids, rows):
        paths: list[str] = []
        for col in img_cols:
            value = row.get(col)
            values = value if isinstance(value, (list, tuple)) else [value]
            paths.extend(_resolve(root, v, f"image ({col})", cid, mpath) for v in values)
        label = (
            _resolve(root, row.get(label_column), f"label ({label_column})", cid, mpath)
            if label_column is not None
            else None
        )
        prediction = (
            _resolve(
                root, row.get(prediction_column), f"prediction ({prediction_column})", cid, mpath
            )
            if prediction_column is not None
            else None
        )
        probability = (
            _resolve(
                root, row.get(probability_column), f"probability ({probability_column})", cid, mpath
            )
            if probability_column is not None
            else None
        )
        cases.append(
            _Case(cid, tuple(paths), label, prediction=prediction, probability=probability)
        )

    # covariates and metadata columns
    used = set(img_cols) | {label_column, id_column, prediction_column, probability_column}
    if covariate_columns is None:
        groups: dict[str, list[str] | str] = {}
    elif isinstance(covariate_columns, Mapping):
        groups = {
            str(k): (v if isinstance(v, str) else list(v)) for k, v in covariate_columns.items()
        }
    else:
        groups = {covariate_node: list(covariate_columns)}
    extra_nodes: dict[str, np.ndarray] = {}
    metadata: dict[str, Any] = {"manifest": str(mpath), "folder": str(root)}
    for node, cols in groups.items():
        col_list = [cols] if isinstance(cols, str) else cols
        numeric, numeric_cols = [], []
        for col in col_list:
            need(col, "covariate")
            used.add(col)
            raw = [r.get(col) for r in rows]
            values = _to_numeric(raw, codes=False)
            if values is not None and np.isinf(values).any():
                bad = [ids[i] for i in np.flatnonzero(np.isinf(values))[:10]]
                raise NiftiDataError(
                    f"covariate column {col!r} of {str(mpath)!r} holds infinite values for "
                    f"cases {bad}; give finite numbers."
                )
            if values is None:
                warnings.warn(
                    f"covariate column {col!r} of {str(mpath)!r} is not numeric; it is kept in "
                    f"metadata[{col!r}], not in node {node!r}. Encode it as numbers to use it "
                    "as a covariate.",
                    UserWarning,
                    stacklevel=2,
                )
                metadata[col] = np.array([str(v) for v in raw], dtype=object)
                continue
            if np.isnan(values).any():
                bad = [ids[i] for i in np.flatnonzero(np.isnan(values))[:10]]
                raise NiftiDataError(
                    f"covariate column {col!r} of {str(mpath)!r} is empty for cases {bad}; fill "
                    "the values or leave the column out."
                )
            numeric.append(values)
            numeric_cols.append(col)
        if not numeric:
            continue
        if isinstance(cols, str):
            extra_nodes[node] = numeric[0]
        else:
            extra_nodes[node] = np.stack(numeric, axis=1)
        metadata[f"{node}_columns"] = tuple(numeric_cols)  # a tuple: never taken per case
    for col in columns:
        if col in used:
            continue
        raw = [r.get(col) for r in rows]
        values = _to_numeric(raw)
        key = f"manifest_{col}" if col in _RESERVED_METADATA else col
        metadata[key] = (
            values
            if values is not None
            else np.array([None if v is None else str(v) for v in raw], dtype=object)
        )
    return _build(
        cases,
        name=env_name,
        image_node=image_node,
        label_node=label_node,
        binary_labels=binary_labels,
        check_affine=check_affine,
        affine_tolerance=affine_tolerance,
        extra_nodes=extra_nodes,
        metadata=metadata,
        channel_names=channel_names,
        foreground=foreground,
        prediction_node=prediction_node,
        probability_node=probability_node,
    )


# ---------------------------------------------------------------------------------- nnU-Net
def _label_values(labels: Any) -> set[int]:
    values: set[int] = set()
    if isinstance(labels, Mapping):
        for k, v in labels.items():
            if isinstance(v, (list, tuple)):  # region-based: name -> [labels]
                values.update(int(x) for x in v)
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                values.add(int(v))  # v2: name -> int
            else:
                try:
                    values.add(int(k))  # v1: "1": "lesion"
                except (TypeError, ValueError):
                    continue
    return values


def load_nnunet_raw(
    dataset_folder: str | os.PathLike,
    split: str = "Tr",
    cases: Sequence[str] | None = None,
    name: str | None = None,
    *,
    binary_labels: bool | None = None,
    image_node: str = "X",
    label_node: str = "Y",
    check_affine: bool = True,
    affine_tolerance: float = 1e-3,
    foreground: int | None = None,
    predictions: str | os.PathLike | None = None,
    prediction_node: str = "P",
    probabilities: bool = False,
    probability_node: str = "P_proba",
) -> Environment:
    """A lazy environment from an nnU-Net (v2) raw dataset folder.

    Layout: ``dataset.json``, ``images{split}/{case}_{XXXX}{file_ending}`` (one file
    per channel, ``XXXX`` the 4-digit channel index) and
    ``labels{split}/{case}{file_ending}``. ``dataset.json`` gives ``channel_names``
    (``{"0": "FLAIR", ...}``; v1's ``modality`` is accepted), ``labels``
    (``{"background": 0, "lesion": 1}``), ``numTraining`` and ``file_ending``
    (default ``".nii.gz"``; only NIfTI is read here).

    Parameters
    ----------
    dataset_folder : path
        E.g. ``nnUNet_raw/Dataset001_MS``.
    split : {"Tr", "Ts"}, default "Tr"
        Training or test images. ``labelsTs`` is optional (no label node without it).
    cases : list of str, optional
        Load only these case identifiers (all by default).
    name : str, optional
        Environment name (default ``"<folder name>/images<split>"``).
    binary_labels : bool, optional
        Require 0/1 masks. Default: True when ``labels`` declares only 0 and 1.
    image_node, label_node : str, default "X", "Y"
        Names of the image and mask nodes.
    check_affine : bool, default True
        Require the affines of a case's images and mask to agree.
    affine_tolerance : float, default 1e-3
        Absolute tolerance on affine entries (mm).
    foreground : int, optional
        Score one class of a multi-label dataset: ``label_node`` is the binary mask
        ``label == foreground`` (uint8); it must be a label ``dataset.json`` declares
        (``binary_labels`` is not used then). Recorded as ``metadata["foreground"]``.
    predictions : path, optional
        Folder of the model's saved predictions, ``{case}{file_ending}`` per case (what
        ``nnUNetv2_predict -o`` writes): node ``prediction_node``, which
        :class:`~shiftattr.segmentation.SavedPredictions` scores instead of running a
        model. Label maps are kept as written (``== foreground`` with ``foreground``).
    prediction_node : str, default "P"
        Name of that node; not one the loader makes otherwise (a ``ValueError``).
    probabilities : bool, default False
        Also read ``{case}.npz`` from the predictions folder (what
        ``nnUNetv2_predict --save_probabilities`` writes beside each mask): node
        ``probability_node``, the probability of the class scored (channel
        ``foreground``, or 1 for a two-class dataset), in the images' axis order. It
        gives :class:`~shiftattr.segmentation.SavedPredictions` the confidence and
        entropy summaries. Region-based datasets are refused (their channels are
        regions, not labels).
    probability_node : str, default "P_proba"
        Name of that node; not one the loader makes otherwise (a ``ValueError``).

    Returns
    -------
    Environment
        ``image_node`` ``(C, *spatial)`` (``(*spatial)`` for one channel) and
        ``label_node`` (and ``prediction_node``, with ``predictions``;
        ``probability_node``, with ``probabilities``); metadata adds
        ``"channel_names"``, ``"labels"``, ``"dataset_json"``, ``"foreground"``.

    Raises
    ------
    ValueError
        If ``split`` is not ``"Tr"`` or ``"Ts"``.
    NiftiDataError
        Missing ``dataset.json`` or images folder, no image file with the declared
        ``file_ending`` (naming the files found), a missing channel file (naming the
        case and the file), a missing label file, a file not following the naming
        scheme, unknown requested cases, image / mask grids that disagree, or a
        ``foreground`` that is not a declared positive label (naming the labels).

    Examples
    --------
    >>> import tempfile, json, os, nibabel as nib, numpy as np
    >>> root = tempfile.mkdtemp()
    >>> os.makedirs(f"{root}/imagesTr"); os.makedirs(f"{root}/labelsTr")
    >>> img = nib.Nifti1Image(np.zeros((4, 4, 4), "float32"), np.eye(4))
    >>> for ch in ("0000", "0001"):
    ...     nib.save(img, f"{root}/imagesTr/ms_001_{ch}.nii.gz")
    >>> nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), "uint8"), np.eye(4)), f"{root}/labelsTr/ms_001.nii.gz")
    >>> with open(f"{root}/dataset.json", "w") as fh:
    ...     json.dump({"channel_names": {"0": "FLAIR", "1": "T1"}, "labels": {"background": 0,
    ...                "lesion": 1}, "numTraining": 1, "file_ending": ".nii.gz"}, fh)
    >>> env = load_nnunet_raw(root)
    >>> env.case_ids, env["X"][0].shape, env["Y"][0].shape
    (('ms_001',), (2, 4, 4, 4), (4, 4, 4))
    >>> env.metadata["channel_names"]
    {'0': 'FLAIR', '1': 'T1'}
    >>> import shutil; shutil.rmtree(root)
    """
    root = Path(dataset_folder)
    if split not in ("Tr", "Ts"):
        raise ValueError(
            f"split must be 'Tr' (imagesTr/labelsTr) or 'Ts' (imagesTs/labelsTs), got {split!r}"
        )
    dj_path = root / "dataset.json"
    if not dj_path.is_file():
        raise NiftiDataError(f"nnU-Net dataset.json not found: {str(dj_path)!r}")
    try:
        dj = json.loads(dj_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise NiftiDataError(f"{str(dj_path)!r} is not valid JSON: {exc}") from exc
    channel_names = dj.get("channel_names", dj.get("modality"))
    if not isinstance(channel_names, Mapping) or not channel_names:
        raise NiftiDataError(
            f'{str(dj_path)!r} has no \'channel_names\' (e.g. {{"0": "FLAIR"}}); keys: {list(dj)}'
        )
    n_ch = len(channel_names)
    ending = str(dj.get("file_ending", ".nii.gz"))
    if ending not in _NIFTI_ENDINGS:
        raise NiftiDataError(
            f"{str(dj_path)!r} declares file_ending {ending!r}; only NIfTI ({_NIFTI_ENDINGS}) "
            "is read by shiftattr."
        )
    labels = dj.get("labels", {})
    values = _label_values(labels)
    foreground = _check_foreground(
        foreground, labels if isinstance(labels, Mapping) and labels else None, repr(str(dj_path))
    )
    if binary_labels is None:
        binary_labels = values <= {0, 1}
    img_dir = root / f"images{split}"
    if not img_dir.is_dir():
        raise NiftiDataError(f"images folder not found: {str(img_dir)!r}")
    lab_dir = root / f"labels{split}"
    has_labels = lab_dir.is_dir()
    pred_dir = None if predictions is None else Path(predictions)
    if pred_dir is not None and not pred_dir.is_dir():
        raise NiftiDataError(f"predictions folder not found: {str(pred_dir)!r}")
    if probabilities and pred_dir is None:
        raise ValueError(
            "probabilities=True reads {case}.npz from the predictions folder; pass "
            "predictions= (the folder nnUNetv2_predict -o wrote) too."
        )
    if probabilities and isinstance(labels, Mapping):
        regions = sorted(  # nnU-Net's regions: lists of more than one label
            k for k, v in labels.items() if isinstance(v, (list, tuple)) and len(v) > 1
        )
        if regions:
            raise NiftiDataError(
                f"{str(dj_path)!r} declares region-based labels {regions}: nnU-Net saves one "
                "sigmoid channel per region, in regions_class_order, not one softmax channel "
                "per label, and shiftattr does not read them; leave probabilities out."
            )
    if split == "Tr" and not has_labels:
        raise NiftiDataError(f"labels folder not found: {str(lab_dir)!r}")
    if has_labels and isinstance(labels, Mapping) and "ignore" in labels:
        raise NiftiDataError(
            f"{str(dj_path)!r} declares an 'ignore' label ({labels['ignore']!r}): nnU-Net "
            "leaves those voxels out of training and evaluation, but shiftattr scores every "
            "voxel and would count them as background (or, as foreground, as the class). "
            "Give the masks their full annotation, or score the images without them."
        )
    pattern = re.compile(rf"^(?P<case>.+)_(?P<ch>\d{{4}}){re.escape(ending)}$")
    found: dict[str, set[int]] = {}
    for entry in sorted(os.listdir(img_dir)):
        if not entry.endswith(ending) or entry.startswith("."):
            continue
        m = pattern.match(entry)
        if m is None:
            raise NiftiDataError(
                f"{str(img_dir / entry)!r} does not follow nnU-Net's naming "
                f"{{case}}_{{XXXX}}{ending} (XXXX = 4-digit channel index)."
            )
        found.setdefault(m["case"], set()).add(int(m["ch"]))
    if not found:
        present = sorted(e for e in os.listdir(img_dir) if not e.startswith("."))
        listing = (
            f"it holds {len(present)} file(s), e.g. {present[:5]}"
            if present
            else "the folder is empty"
        )
        raise NiftiDataError(
            f"no image file ending in {ending!r} (dataset.json's file_ending) in "
            f"{str(img_dir)!r}: {listing}. Fix file_ending in {str(dj_path)!r} to match "
            f"the files, or name them {{case}}_0000{ending}."
        )
    if cases is None:
        case_list = sorted(found)
        n_train = dj.get("numTraining")
        if split == "Tr" and n_train is not None and int(n_train) != len(case_list):
            warnings.warn(
                f"{str(dj_path)!r} declares numTraining={n_train} but {str(img_dir)!r} holds "
                f"{len(case_list)} cases.",
                UserWarning,
                stacklevel=2,
            )
    else:
        case_list = [str(c) for c in cases]
        unknown = [c for c in case_list if c not in found]
        if unknown:
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise NiftiDataError(
                f"{len(unknown)} requested case(s) have no image in {str(img_dir)!r}: "
                f"{unknown[:10]}{more} (expected files like {unknown[0]}_0000{ending}); "
                f"it holds {len(found)} case(s), e.g. {sorted(found)[:5]}"
            )
    out = []
    for case in case_list:
        chans = found.get(case, set())
        extra = sorted(c for c in chans if c >= n_ch)
        if extra:
            raise NiftiDataError(
                f"case {case!r}: {str(img_dir / f'{case}_{extra[0]:04d}{ending}')!r} is channel "
                f"{extra[0]} but dataset.json declares {n_ch} channel(s) {dict(channel_names)}."
            )
        paths = []
        for ch in range(n_ch):
            p = img_dir / f"{case}_{ch:04d}{ending}"
            if ch not in chans:
                raise NiftiDataError(
                    f"case {case!r}: missing channel {ch} ({channel_names.get(str(ch), '?')}) "
                    f"file {str(p)!r}"
                )
            paths.append(str(p))
        label = None
        if has_labels:
            lp = lab_dir / f"{case}{ending}"
            if not lp.is_file():
                raise NiftiDataError(f"case {case!r}: label file not found: {str(lp)!r}")
            label = str(lp)
        prediction = None
        if pred_dir is not None:
            pp = pred_dir / f"{case}{ending}"
            if not pp.is_file():
                raise NiftiDataError(
                    f"case {case!r}: prediction file not found: {str(pp)!r} (the predictions "
                    f"folder holds one {{case}}{ending} per case, as nnUNetv2_predict writes)"
                )
            prediction = str(pp)
        probability = None
        if probabilities:
            qp = pred_dir / f"{case}.npz"  # type: ignore[operator]
            if not qp.is_file():
                raise NiftiDataError(
                    f"case {case!r}: probability file not found: {str(qp)!r} (run "
                    "nnUNetv2_predict with --save_probabilities, or leave probabilities out)"
                )
            probability = str(qp)
        out.append(_Case(case, tuple(paths), label, prediction=prediction, probability=probability))
    return _build(
        out,
        name=name if name is not None else f"{root.resolve().name}/images{split}",
        image_node=image_node,
        label_node=label_node,
        binary_labels=bool(binary_labels),
        check_affine=check_affine,
        affine_tolerance=affine_tolerance,
        metadata={
            "channel_names": dict(channel_names),
            "labels": labels,
            "dataset_json": str(dj_path),
            "file_ending": ending,
        },
        foreground=foreground,
        prediction_node=prediction_node,
        probability_node=probability_node,
    )


# ---------------------------------------------------------------------------------- MSSEG
def _two_digits(value: Any, prefix: str) -> str:
    s = str(value).strip()
    if s.lower().startswith(prefix.lower()):
        s = s[len(prefix) :]
    s = s.lstrip("_")
    if not s.isdigit():
        raise ValueError(f"cannot read {value!r} as a {prefix.rstrip('_')} number (e.g. '01' or 1)")
    return f"{int(s):02d}"


def _annotator_name(value: Any) -> str:
    if isinstance(value, str) and value.strip().lower() == "consensus":
        return "consensus"
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"annotator must be 1..7 or 'consensus', got {value!r}") from None
    if not 1 <= k <= 7:
        raise ValueError(f"MSSEG-2016 has annotators 1..7, got {value!r}")
    return str(k)


def _mask_stem(annotator: str) -> str:
    return "Consensus" if annotator == "consensus" else f"ManualSegmentation_{annotator}"


def _msseg_centers(root: Path) -> list[tuple[str, Path]]:
    """(split, center folder) pairs: root/Center_XX or root/{Training,Testing}/Center_XX."""
    direct = sorted(p for p in root.glob("Center_*") if p.is_dir())
    if direct:
        return [("", p) for p in direct]
    out = []
    for split in ("Training", "Testing"):
        out.extend((split, p) for p in sorted((root / split).glob("Center_*")) if p.is_dir())
    return out


def load_msseg2016(
    root: str | os.PathLike,
    centers: Sequence[str | int] | None = None,
    annotators: Sequence[str | int] | None = None,
    patients: Sequence[str | int] | None = None,
    label: str | int = "consensus",
    preprocessed: bool = True,
    modalities: Sequence[str] = ("FLAIR",),
    pair_annotators: bool = False,
    *,
    name: str | None = None,
    image_node: str = "X",
    label_node: str = "Y",
    check_affine: bool = True,
    affine_tolerance: float = 1e-3,
    foreground: int | None = None,
) -> Environment:
    """A lazy environment from the MSSEG-2016 (MICCAI 2016 MS lesion) challenge data.

    Layout (under ``root``, or under ``root/Training`` and ``root/Testing``)::

        Center_01/Patient_01/Preprocessed_Data/FLAIR_preprocessed.nii.gz  (also DP, GADO, T1, T2)
        Center_01/Patient_01/Raw_Data/3DFLAIR.nii.gz  (also 3DT1, 3DT1GADO, DP, T2;
                                                      FLAIR.nii.gz etc. are read too)
        Center_01/Patient_01/Masks/ManualSegmentation_1.nii.gz ... _7.nii.gz
        Center_01/Patient_01/Masks/Consensus.nii.gz

    Parameters
    ----------
    root : path
        The dataset folder (holding ``Center_XX`` or ``Training`` / ``Testing``).
    centers : list of str or int, optional
        Centers to keep (``"01"``, ``1`` or ``"Center_01"``); default all.
    annotators : list of int or "consensus", optional
        One case per patient *and* listed annotator, ``Y`` being that annotator's
        mask (``metadata["annotator"]`` says which). Default: one case per patient
        labelled by ``label``.
    patients : list of str or int, optional
        Patients to keep (``"01"``, ``1`` or ``"Patient_01"``); default all.
    label : "consensus" or int 1..7, default "consensus"
        Mask used as ``Y`` when ``annotators`` is not given.
    preprocessed : bool, default True
        Read ``Preprocessed_Data/{modality}_preprocessed.nii.gz`` (co-registered to
        the masks) rather than the raw scans in ``Raw_Data`` (``3DFLAIR``, ``3DT1``,
        ``3DT1GADO``, ``DP``, ``T2`` as the release names them, or ``{modality}``).
    modalities : sequence of str, default ("FLAIR",)
        Channels, in order, from :data:`MSSEG2016_MODALITIES` (``"PD"`` means ``"DP"``).
    pair_annotators : bool, default False
        Add the paired masks of every rater as counterfactuals,
        ``counterfactuals["annotator-k"]["Y"]`` for k = 1..7 and
        ``"annotator-consensus"``: the same images read by all raters (substitution
        data for the annotation mechanism).
    name : str, optional
        Default ``"center-01+07+08/annotator-1"`` style (``"center-all"`` without a
        center filter), matching the counterfactual keys and
        :class:`~shiftattr.datasets.SyntheticMS` names.
    image_node, label_node : str, default "X", "Y"
        Names of the image and mask nodes.
    check_affine : bool, default True
        Require the affines of a case's images and masks to agree.
    affine_tolerance : float, default 1e-3
        Absolute tolerance on affine entries (mm).
    foreground : int, optional
        The label scored as the mask, as in :func:`load_nnunet_raw`; MSSEG-2016's masks
        hold 0 (background) and 1 (lesion), so only 1 is accepted (the masks as they are).

    Returns
    -------
    Environment
        Metadata per case: ``"center"`` (``"01"``), ``"patient"`` (``"01"``),
        ``"annotator"`` (``"1"``..``"7"`` or ``"consensus"``), ``"split"``
        (``"Training"``/``"Testing"``/``""``), plus the NIfTI keys;
        ``"channel_names"`` holds the modalities (``{"0": "FLAIR", "1": "T1"}``).

    Raises
    ------
    ValueError
        A plain :class:`ValueError` (not :class:`NiftiDataError`) for bad arguments: an
        unknown or empty ``modalities``, ``label=`` other than ``"consensus"`` given
        together with ``annotators=``, an annotator or ``label`` that is not 1..7 or
        ``"consensus"``, or a center or patient (in ``centers`` / ``patients`` or a
        ``Center_*`` / ``Patient_*`` folder name) that is not a number.
    NiftiDataError
        Missing folder, modality or mask file (naming it), no matching case,
        image / mask grids that disagree, or a ``foreground`` other than 1.

    See Also
    --------
    msseg2016_environments : Source and target environments in one call.
    select_cases : Subset an environment by metadata values.

    Examples
    --------
    A one-patient tree (real data: 53 patients, 4 centers):

    >>> import tempfile, os, nibabel as nib, numpy as np
    >>> root = tempfile.mkdtemp()
    >>> p = os.path.join(root, "Center_01", "Patient_01")
    >>> for sub in ("Preprocessed_Data", "Masks"):
    ...     os.makedirs(os.path.join(p, sub))
    >>> vol = lambda dtype: nib.Nifti1Image(np.zeros((4, 4, 4), dtype), np.eye(4))
    >>> nib.save(vol("float32"), os.path.join(p, "Preprocessed_Data", "FLAIR_preprocessed.nii.gz"))
    >>> for stem in [f"ManualSegmentation_{k}" for k in range(1, 8)] + ["Consensus"]:
    ...     nib.save(vol("uint8"), os.path.join(p, "Masks", stem + ".nii.gz"))
    >>> env = load_msseg2016(root, label=1, pair_annotators=True)
    >>> env.name, env.case_ids, env.metadata["center"].tolist()
    ('center-all/annotator-1', ('Center_01/Patient_01',), ['01'])
    >>> env.metadata["channel_names"]
    {'0': 'FLAIR'}
    >>> env.counterfactual("annotator-4", "Y")[0].shape
    (4, 4, 4)
    >>> import shutil; shutil.rmtree(root)

    Train on annotator 1, deploy on annotator 4 (same images)::

        source = load_msseg2016(root, label=1, pair_annotators=True)
        target = load_msseg2016(root, label=4)

    Centers 01, 07, 08 versus 03::

        source, target = msseg2016_environments(
            root, source=dict(centers=["01", "07", "08"]), target=dict(centers=["03"]))
    """
    base = Path(root)
    if not base.is_dir():
        raise NiftiDataError(f"MSSEG-2016 folder not found: {str(base)!r}")
    foreground = _check_foreground(foreground, _MSSEG2016_LABELS, "MSSEG-2016")
    mods = []
    for m in modalities:
        key = str(m).strip().upper()
        key = {"PD": "DP", "GADO": "GADO", "T1GADO": "GADO"}.get(key, key)
        if key not in MSSEG2016_MODALITIES:
            raise ValueError(
                f"unknown MSSEG-2016 modality {m!r}; choose from {MSSEG2016_MODALITIES}"
            )
        mods.append(key)
    if not mods:
        raise ValueError(
            f"modalities must name at least one modality, e.g. ('FLAIR',); choose from "
            f"{MSSEG2016_MODALITIES}"
        )
    center_filter = None if centers is None else {_two_digits(c, "Center_") for c in centers}
    patient_filter = None if patients is None else {_two_digits(p, "Patient_") for p in patients}
    if annotators is not None:
        if label != "consensus":
            raise ValueError(
                "pass either label= (one mask per patient) or annotators= (one case per "
                f"patient and annotator), not both; got label={label!r} and "
                f"annotators={list(annotators)!r}. Drop label=, or pass annotators=[{label!r}]."
            )
        ann_list = [_annotator_name(a) for a in annotators]
    else:
        ann_list = [_annotator_name(label)]

    center_dirs = _msseg_centers(base)
    if not center_dirs:
        raise NiftiDataError(
            f"no Center_XX folders in {str(base)!r} (nor in its Training/ and Testing/ folders)"
        )
    all_ann = [str(k) for k in range(1, 8)] + ["consensus"]
    cases: list[_Case] = []
    meta_rows: list[tuple[str, str, str, str]] = []
    for split, cdir in center_dirs:
        center = _two_digits(cdir.name, "Center_")
        if center_filter is not None and center not in center_filter:
            continue
        for pdir in sorted(p for p in cdir.glob("Patient_*") if p.is_dir()):
            patient = _two_digits(pdir.name, "Patient_")
            if patient_filter is not None and patient not in patient_filter:
                continue
            images = []
            for mod in mods:
                folder = pdir / ("Preprocessed_Data" if preprocessed else "Raw_Data")
                stem = f"{mod}_preprocessed" if preprocessed else mod
                p = _nifti_path(folder, stem)
                for other in () if preprocessed else _MSSEG2016_RAW_NAMES.get(mod, ()):
                    p = p or _nifti_path(folder, other)
                if p is None:
                    raise NiftiDataError(
                        f"{split + '/' if split else ''}{cdir.name}/{pdir.name}: missing "
                        f"{mod} file {str(folder / (stem + '.nii.gz'))!r}"
                    )
                images.append(str(p))
            mask_dir = pdir / "Masks"

            def mask(ann: str, pdir: Path = pdir, mask_dir: Path = mask_dir) -> str:
                p = _nifti_path(mask_dir, _mask_stem(ann))
                if p is None:
                    raise NiftiDataError(
                        f"{pdir}: missing mask {str(mask_dir / (_mask_stem(ann) + '.nii.gz'))!r}"
                    )
                return str(p)

            extra = {f"annotator-{a}": mask(a) for a in all_ann} if pair_annotators else None
            for ann in ann_list:
                cid = f"{split + '/' if split else ''}{cdir.name}/{pdir.name}"
                if annotators is not None:
                    cid += f"/annotator-{ann}"
                cases.append(_Case(cid, tuple(images), mask(ann), extra))
                meta_rows.append((center, patient, ann, split))
    if not cases:
        raise NiftiDataError(
            f"no MSSEG-2016 case in {str(base)!r} matches centers={centers}, patients={patients}"
        )
    if name is None:
        ctag = "all" if center_filter is None else "+".join(sorted(center_filter))
        atag = "+".join(ann_list)
        name = f"center-{ctag}/annotator-{atag}"
    rows = np.array(meta_rows, dtype=object).reshape(len(meta_rows), 4)
    return _build(
        cases,
        name=name,
        image_node=image_node,
        label_node=label_node,
        binary_labels=True,
        check_affine=check_affine,
        affine_tolerance=affine_tolerance,
        channel_names=mods,
        foreground=foreground,
        metadata={
            "center": rows[:, 0].astype(str),
            "patient": rows[:, 1].astype(str),
            "annotator": rows[:, 2].astype(str),
            "split": rows[:, 3].astype(str),
            "modalities": tuple(mods),
            "dataset": "MSSEG-2016",
        },
    )


def msseg2016_environments(
    root: str | os.PathLike,
    source: Mapping[str, Any] | None = None,
    target: Mapping[str, Any] | None = None,
    **common: Any,
) -> tuple[Environment, Environment]:
    """Source and target MSSEG-2016 environments in one call.

    Parameters
    ----------
    root : path
        The dataset folder (see :func:`load_msseg2016`).
    source, target : dict, optional
        Keyword arguments of :func:`load_msseg2016` specific to each environment,
        e.g. ``dict(centers=["01", "07", "08"])`` or ``dict(label=1)``.
    **common
        Keyword arguments shared by both (``modalities``, ``preprocessed``,
        ``pair_annotators``, ...).

    Returns
    -------
    source, target : Environment
        The two lazy environments.

    Examples
    --------
    Two centers of one patient each (real data: 53 patients, 4 centers):

    >>> import tempfile, os, shutil, nibabel as nib, numpy as np
    >>> root = tempfile.mkdtemp()
    >>> vol = lambda dtype: nib.Nifti1Image(np.zeros((4, 4, 4), dtype), np.eye(4))
    >>> for center in ("01", "03"):
    ...     p = os.path.join(root, f"Center_{center}", "Patient_01")
    ...     os.makedirs(os.path.join(p, "Preprocessed_Data"))
    ...     os.makedirs(os.path.join(p, "Masks"))
    ...     nib.save(vol("float32"), os.path.join(p, "Preprocessed_Data", "FLAIR_preprocessed.nii.gz"))
    ...     nib.save(vol("uint8"), os.path.join(p, "Masks", "Consensus.nii.gz"))
    >>> src, tgt = msseg2016_environments(root, source=dict(centers=["01"]),
    ...                                   target=dict(centers=["03"]))
    >>> src.name, tgt.name, len(src), len(tgt)
    ('center-01/annotator-consensus', 'center-03/annotator-consensus', 1, 1)
    >>> shutil.rmtree(root)

    Exp. A of the paper (annotation shift) and Exp. B (acquisition shift)::

        src, tgt = msseg2016_environments(root, source=dict(label=1), target=dict(label=4),
                                          pair_annotators=True)
        src, tgt = msseg2016_environments(root, source=dict(centers=["01", "07", "08"]),
                                          target=dict(centers=["03"]))
    """
    src = load_msseg2016(root, **{**common, **dict(source or {})})
    tgt = load_msseg2016(root, **{**common, **dict(target or {})})
    return src, tgt


def select_cases(environment: Environment, **criteria: Any) -> Environment:
    """Subset an environment by per-case metadata values, keeping metadata aligned.

    Parameters
    ----------
    environment : Environment
        The environment to subset.
    **criteria
        ``key=value`` or ``key=[values]`` on per-case metadata arrays, e.g.
        ``center=["01", "07"]``, ``annotator="4"`` (text arrays are compared as
        strings, numeric arrays as numbers).

    Returns
    -------
    Environment
        The matching cases; per-case metadata arrays are subset too.

    Raises
    ------
    KeyError
        If a key is not a per-case metadata array.
    ValueError
        If no case matches.

    Examples
    --------
    >>> import numpy as np
    >>> env = Environment({"D": np.arange(4.0)}, metadata={"center": np.array(["01", "03", "01", "07"])})
    >>> sub = select_cases(env, center="01")
    >>> sub["D"].tolist(), sub.metadata["center"].tolist()
    ([0.0, 2.0], ['01', '01'])
    """
    n = len(environment)
    keep = np.ones(n, dtype=bool)
    for key, wanted in criteria.items():
        values = environment.metadata.get(key)
        if not isinstance(values, np.ndarray) or values.shape[:1] != (n,):
            per_case = [
                k
                for k, v in environment.metadata.items()
                if isinstance(v, np.ndarray) and v.shape[:1] == (n,)
            ]
            raise KeyError(
                f"{key!r} is not a per-case metadata array of environment {environment.name!r}; "
                f"per-case keys: {per_case}"
            )
        options = [wanted] if isinstance(wanted, (str, int, float)) else list(wanted)
        if values.dtype.kind in "biuf":
            keep &= np.isin(values, np.asarray(options, dtype=np.float64))
        else:
            keep &= np.isin(values.astype(str), [str(o) for o in options])
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        raise ValueError(f"no case of {environment.name!r} matches {criteria}")
    # subset restricts every per-case entry of the metadata (arrays, lists, dicts of them)
    return environment.subset(idx)


# ---------------------------------------------------------------------------------- checks
def _channel_list(environment: Environment) -> list[str] | None:
    """The recorded channel names in channel order, or None."""
    names = environment.metadata.get("channel_names")
    if not isinstance(names, Mapping) or not names:
        return None

    def order(key: Any) -> tuple[int, Any]:
        try:
            return (0, int(key))
        except (TypeError, ValueError):
            return (1, str(key))

    return [str(names[k]) for k in sorted(names, key=order)]


def _n_channels(environment: Environment) -> int | None:
    """Number of image channels from the metadata (image files per case), or None."""
    paths = environment.metadata.get("image_paths")
    if isinstance(paths, np.ndarray) and paths.ndim == 2:
        return int(paths.shape[1])
    names = _channel_list(environment)
    return None if names is None else len(names)


def _orientations(environment: Environment) -> Counter | None:
    """Counts of the orientation codes (``"RAS"``) of the cases, or None without affines."""
    affines = environment.metadata.get("affine")
    if not isinstance(affines, np.ndarray) or affines.ndim != 3 or affines.shape[1:] != (4, 4):
        return None
    orientations = _nibabel().orientations
    codes: Counter = Counter()
    for affine in affines:  # one small matrix per case
        try:
            axes = orientations.aff2axcodes(affine)
        except Exception:  # a degenerate affine has no orientation
            axes = ("?",) * 3
        codes["".join(a if a is not None else "?" for a in axes)] += 1
    return codes


def check_comparable(source: Environment, target: Environment) -> list[dict[str, Any]]:
    """Check that two loaded environments can be compared before attributing their shift.

    The model sees the voxel arrays as stored, so two datasets must present the same
    channels in the same order, and should store their volumes in one orientation:
    otherwise the attribution reports a difference of file layout as a change of the
    scanner. Different voxel spacings are not reported: they are a real difference of
    acquisition.

    Parameters
    ----------
    source, target : Environment
        Environments from :func:`load_folder`, :func:`load_nnunet_raw` or
        :func:`load_msseg2016` (any environment: checks whose metadata are missing,
        as for synthetic data, are skipped).

    Returns
    -------
    list of dict
        Warnings ``{"code", "mechanism", "message"}`` (as in
        :attr:`~shiftattr.Attribution.warnings`); empty when nothing is wrong. Code
        ``"orientation_differs"``: the orientation codes of the affines
        (``nibabel.orientations.aff2axcodes`` of ``metadata["affine"]``) differ between
        the environments or within one.

    Raises
    ------
    NiftiDataError
        If both record ``metadata["channel_names"]`` and the names (compared without
        regard to case) or their order differ, or if the numbers of image channels
        differ.

    See Also
    --------
    load_folder, load_nnunet_raw, load_msseg2016 : Record the metadata checked here.

    Examples
    --------
    Two one-case folders, the second stored in LPS orientation (as some DICOM
    converters write):

    >>> import tempfile, os, nibabel as nib, numpy as np
    >>> tmp = tempfile.mkdtemp()
    >>> for site, affine in (("a", np.eye(4)), ("b", np.diag([-1.0, -1.0, 1.0, 1.0]))):
    ...     os.makedirs(f"{tmp}/{site}")
    ...     nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), "float32"), affine), f"{tmp}/{site}/c.nii.gz")
    ...     nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), "uint8"), affine), f"{tmp}/{site}/s.nii.gz")
    ...     with open(f"{tmp}/{site}/manifest.csv", "w") as fh:
    ...         _ = fh.write("case_id,image,label\\nc,c.nii.gz,s.nii.gz\\n")
    >>> source, target = load_folder(f"{tmp}/a"), load_folder(f"{tmp}/b")
    >>> [w["code"] for w in check_comparable(source, target)]
    ['orientation_differs']
    >>> check_comparable(source, source)
    []

    Channels that differ (names, or the order of the manifests' image columns) are an
    error:

    >>> target.metadata["channel_names"] = {"0": "image_t1"}
    >>> try:
    ...     check_comparable(source, target)
    ... except NiftiDataError as err:
    ...     print(str(err).split(" (")[0])
    the image channels differ: source 'a' has ['image'], target 'b' has ['image_t1']
    >>> import shutil; shutil.rmtree(tmp)
    """
    src_names, tgt_names = _channel_list(source), _channel_list(target)
    sides = f"source {source.name!r} has {{}}, target {target.name!r} has {{}}"

    def norm(names: list[str]) -> list[str]:  # "image_FLAIR" and "image_flair" agree
        return [str(n).strip().lower() for n in names]

    if src_names is not None and tgt_names is not None and norm(src_names) != norm(tgt_names):
        how = (
            "the same channels in another order"
            if sorted(norm(src_names)) == sorted(norm(tgt_names))
            else "different channels"
        )
        raise NiftiDataError(
            "the image channels differ: "
            + sides.format(src_names, tgt_names)
            + f" ({how}). The model would read one channel as another. List the image "
            "columns in the same order in both manifests (nnU-Net: the same channel_names "
            "in both dataset.json files); if the channels are the same under other names, "
            "give them the same names there (from Python: set metadata['channel_names'] "
            "of one environment to those of the other)."
        )
    n_src, n_tgt = _n_channels(source), _n_channels(target)
    if n_src is not None and n_tgt is not None and n_src != n_tgt:
        raise NiftiDataError(
            "the numbers of image channels differ: "
            + sides.format(
                f"{n_src} ({src_names if src_names is not None else 'unnamed'})",
                f"{n_tgt} ({tgt_names if tgt_names is not None else 'unnamed'})",
            )
            + ". Load the same channels, in the same order, for both (the manifests' image "
            "columns, nnU-Net's channel_names or load_msseg2016's modalities)."
        )
    warnings_out: list[dict[str, Any]] = []
    found = {
        side: codes
        for side, codes in (("source", _orientations(source)), ("target", _orientations(target)))
        if codes
    }
    distinct = set().union(*(set(c) for c in found.values())) if found else set()
    if len(distinct) > 1:
        names = {"source": source.name, "target": target.name}

        def describe(codes: Counter) -> str:
            return ", ".join(
                f"{code} ({k} case{'s' if k != 1 else ''})" for code, k in codes.most_common()
            )

        seen = "; ".join(f"{side} {names[side]!r}: {describe(c)}" for side, c in found.items())
        warnings_out.append(
            {
                "code": "orientation_differs",
                "mechanism": None,
                "message": (
                    f"the volumes are stored in different orientations ({seen}): their voxel "
                    "arrays are mirrored or permuted relative to each other, so the model "
                    "sees reoriented images and the change lands on the scanner mechanism. "
                    "Reorient the files to one orientation (e.g. nibabel.as_closest_canonical, "
                    "which gives RAS) before loading."
                ),
            }
        )
    return warnings_out
