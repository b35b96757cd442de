"""Intensity preprocessing of a case before the model sees it.

A segmentation model is trained on normalised images (nnU-Net z-scores each MRI case,
MONAI pipelines use ``NormalizeIntensity``), while the environments hold the images as
the scanner wrote them, which is what the acquisition mechanism's density ratios must
see. :class:`~shiftattr.segmentation.SegmentationAdapter`'s ``preprocess`` applies such
a function to each case on its way to the model only.

A preprocessing function takes one case as ``(C, *spatial)`` (channels first, also for
one channel) and returns an array of the same shape: resampling to another grid
changes the grid the reference masks are compared on, so it belongs in the files.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["PREPROCESSORS", "zscore"]


def zscore(image: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Per-channel z-scoring over the whole volume (nnU-Net's default for MRI).

    Parameters
    ----------
    image : ndarray
        One case, channels first: ``(C, *spatial)``.
    eps : float, default 1e-8
        Added to the standard deviation, so a constant channel becomes zeros.

    Returns
    -------
    ndarray of float32, same shape
        Each channel minus its mean, divided by its standard deviation.

    Examples
    --------
    >>> x = np.stack([np.arange(8.0).reshape(2, 2, 2), np.full((2, 2, 2), 5.0)])
    >>> z = zscore(x)
    >>> z.shape, z.dtype
    ((2, 2, 2, 2), dtype('float32'))
    >>> [round(float(v), 6) for v in (z[0].mean(), z[0].std(), np.abs(z[1]).max())]
    [0.0, 1.0, 0.0]
    """
    x = np.asarray(image, dtype=np.float64)
    axes = tuple(range(1, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    sd = x.std(axis=axes, keepdims=True)
    return ((x - mean) / (sd + eps)).astype(np.float32)


#: Preprocessing functions by the names ``model.preprocess`` accepts in a
#: configuration file (besides ``"module:function"``).
PREPROCESSORS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"zscore": zscore}
