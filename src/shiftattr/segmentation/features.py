"""Summary features of a segmentation model's own output, one row per case.

Regression (multiply-robust) value estimators regress the per-case metric on features of
the image; :func:`mask_features` turns one case's predicted mask and probability map into
a small vector of such features — predicted volume, confidence, uncertainty overall and
near the predicted boundary, connected components — and
:meth:`SegmentationAdapter.output_features
<shiftattr.segmentation.SegmentationAdapter.output_features>` computes them for a whole
environment from the adapter's cached predictions.

:func:`mask_agreement` compares a reference mask with the model's prediction (volume
ratio, overlap as a share of each); :meth:`SegmentationAdapter.agreement_features
<shiftattr.segmentation.SegmentationAdapter.agreement_features>` computes it for every
case of an environment, as features of the annotation's density ratio.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.special import xlogy

from shiftattr.metrics._masks import check_connectivity, spacing_per_case

__all__ = ["AGREEMENT_FEATURE_NAMES", "MASK_FEATURE_NAMES", "mask_agreement", "mask_features"]

#: Column names of :func:`mask_agreement`, in order.
AGREEMENT_FEATURE_NAMES: tuple[str, ...] = (
    "log_volume_ratio",
    "overlap_of_reference",
    "overlap_of_prediction",
)

#: Column names of :func:`mask_features`, in order.
MASK_FEATURE_NAMES: tuple[str, ...] = (
    "log_volume",
    "mean_confidence",
    "mean_entropy",
    "boundary_entropy",
    "uncertain_fraction",
    "log_n_components",
    "largest_component_fraction",
    "log_expected_volume",
)


def _binary_entropy_bits(p: np.ndarray) -> np.ndarray:
    """Entropy of Bernoulli(p) in bits, 0 at p = 0 and p = 1."""
    q = 1.0 - p
    return -(xlogy(p, p) + xlogy(q, q)) / np.log(2.0)


def mask_agreement(prediction: Any, reference: Any) -> np.ndarray:
    """How a reference mask agrees with the model's predicted mask, in three numbers.

    ``log((|R| + 1) / (|P| + 1))``, ``|R and P| / (|R| + 1)`` and ``|R and P| / (|P| + 1)``,
    for reference ``R`` and prediction ``P`` (voxel counts; the ``+ 1`` keeps empty masks
    finite). They tell an annotator who outlines wider or narrower, or leaves out lesions
    the model finds, from one who agrees with the model: features of the annotation's
    conditional density ratio given the image (:meth:`SegmentationAdapter.agreement_features
    <shiftattr.segmentation.SegmentationAdapter.agreement_features>`).

    Parameters
    ----------
    prediction, reference : array_like
        Binary masks of the same shape (nonzero = foreground).

    Returns
    -------
    numpy.ndarray
        float64 ``(3,)``, named by :data:`AGREEMENT_FEATURE_NAMES`.

    Raises
    ------
    ValueError
        If the shapes differ.

    Examples
    --------
    >>> p = np.zeros((4, 4), dtype=bool); p[:2] = True     # 8 voxels predicted
    >>> r = np.zeros((4, 4), dtype=bool); r[:1] = True     # 4 annotated, all inside
    >>> mask_agreement(p, r).round(3)
    array([-0.588,  0.8  ,  0.444])
    """
    p, r = np.asarray(prediction) != 0, np.asarray(reference) != 0
    if p.shape != r.shape:
        raise ValueError(
            f"prediction has shape {p.shape} and reference {r.shape}; the masks must share "
            "their grid."
        )
    both = float(np.count_nonzero(p & r))
    n_p, n_r = np.count_nonzero(p) + 1.0, np.count_nonzero(r) + 1.0
    return np.array([np.log(n_r / n_p), both / n_r, both / n_p])


def mask_features(
    mask: Any,
    proba: Any,
    *,
    spacing: Sequence[float] | None = None,
    connectivity: int = 1,
) -> np.ndarray:
    """Summary features of one case's predicted mask and probability map.

    Parameters
    ----------
    mask : array_like
        Predicted binary mask of the label of interest, ``(*spatial)`` (nonzero =
        foreground).
    proba : array_like
        Predicted probability of the label of interest, voxel by voxel, same shape. It is clipped
        to [0, 1] for the entropy (guards rounding such as ``1.0000001``).
    spacing : sequence of float, optional
        Voxel spacing, one value per axis. Volumes are then physical (e.g. mm³) instead
        of voxel counts.
    connectivity : int, default 1
        Rank of :func:`scipy.ndimage.generate_binary_structure` for the connected
        components and the boundary shell: 1 = faces (6-connectivity in 3D, 4 in 2D,
        as the lesion-wise metrics), up to ``ndim`` (26-connectivity in 3D).

    Returns
    -------
    numpy.ndarray
        float64 of shape ``(8,)``, finite, in the order of :data:`MASK_FEATURE_NAMES`:

        ``log_volume``
            ``log1p`` of the predicted foreground volume (voxels, or physical volume
            with ``spacing``).
        ``mean_confidence``
            Mean probability inside the predicted mask (0 for an empty mask).
        ``mean_entropy``
            Mean binary entropy of the probabilities over the whole volume, in bits
            (0 = certain, 1 = p = 0.5).
        ``boundary_entropy``
            Mean entropy in the 1-voxel shell around the predicted boundary: voxels of
            the dilated mask that are not in the eroded mask (the edge of the field of
            view is not a boundary). 0 when there is no boundary (empty or full mask).
        ``uncertain_fraction``
            Fraction of voxels with ``0.1 < p < 0.9``.
        ``log_n_components``
            ``log1p`` of the number of connected components of the mask.
        ``largest_component_fraction``
            Size of the largest component over the foreground size (0 for an empty mask).
        ``log_expected_volume``
            ``log1p`` of the expected foreground volume ``sum(p)`` (times the voxel
            volume with ``spacing``).

    Raises
    ------
    ValueError
        If the shapes differ, the arrays are empty, ``proba`` holds NaN or infinite
        values, or ``spacing`` / ``connectivity`` do not fit the number of axes.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((8, 8, 8), dtype="uint8")
    >>> mask[1:3, 1:3, 1:3] = 1  # two blobs of 8 and 1 voxels
    >>> mask[6, 6, 6] = 1
    >>> proba = np.where(mask, 0.9, 0.05)
    >>> features = dict(zip(MASK_FEATURE_NAMES, mask_features(mask, proba)))
    >>> round(float(np.expm1(features["log_volume"])), 6)
    9.0
    >>> round(float(np.expm1(features["log_n_components"])), 6)
    2.0
    >>> round(float(features["largest_component_fraction"]), 4)
    0.8889
    >>> round(float(features["mean_confidence"]), 4)
    0.9
    """
    m = np.asarray(mask) != 0
    p = np.asarray(proba, dtype=np.float64)
    if m.shape != p.shape:
        raise ValueError(
            f"mask has shape {m.shape} but proba has shape {p.shape}; they must match."
        )
    if m.ndim == 0 or m.size == 0:
        raise ValueError(f"mask and proba must be non-empty arrays, got shape {m.shape}.")
    bad = int(np.count_nonzero(~np.isfinite(p)))
    if bad:
        raise ValueError(
            f"proba holds {bad} non-finite value(s) of {p.size}; the model output NaN or "
            "infinite values."
        )
    check_connectivity(connectivity, m.ndim)
    voxel_volume = float(np.prod(spacing_per_case(spacing, 1, m.ndim)[0]))

    p = np.clip(p, 0.0, 1.0)
    entropy = _binary_entropy_bits(p)
    structure = ndimage.generate_binary_structure(m.ndim, int(connectivity))

    n_fg = int(np.count_nonzero(m))
    mean_confidence = float(p[m].mean()) if n_fg else 0.0

    shell = ndimage.binary_dilation(m, structure=structure) & ~ndimage.binary_erosion(
        m, structure=structure, border_value=1
    )
    n_shell = int(np.count_nonzero(shell))
    boundary_entropy = float(entropy[shell].mean()) if n_shell else 0.0

    labels, n_components = ndimage.label(m, structure=structure)
    if n_components:
        sizes = np.bincount(labels.reshape(-1), minlength=n_components + 1)[1:]
        largest_fraction = float(sizes.max()) / float(n_fg)
    else:
        largest_fraction = 0.0

    return np.array(
        [
            np.log1p(n_fg * voxel_volume),
            mean_confidence,
            float(entropy.mean()),
            boundary_entropy,
            float(np.count_nonzero((p > 0.1) & (p < 0.9))) / p.size,
            np.log1p(n_components),
            largest_fraction,
            np.log1p(float(p.sum()) * voxel_volume),
        ],
        dtype=np.float64,
    )
