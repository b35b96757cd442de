"""Turn a features mapping into the 2-D float matrix a scikit-learn classifier expects."""

from __future__ import annotations

import numpy as np

from shiftattr.environment import LazyVolumes
from shiftattr.ratios.base import Features, n_cases

__all__ = ["image_estimator_hint", "tabular_matrix"]


def image_estimator_hint(name: str) -> str:
    """How to give image node ``name`` an image estimator (the end of an error message).

    Parameters
    ----------
    name : str

    Returns
    -------
    str

    Examples
    --------
    >>> image_estimator_hint("X").startswith("Pass an image estimator for it")
    True
    """
    return (
        f"Pass an image estimator for it, e.g. estimators={{{name!r}: "
        "shiftattr.ratios.ImageStatsRatio()} (per-case image statistics, what "
        "`shiftattr run` uses) or shiftattr.ratios.CNNDiscriminator(spatial_dims=3), "
        "for every node set holding it."
    )


def tabular_matrix(features: Features, nodes: tuple[str, ...] | None = None) -> np.ndarray:
    """Stack nodes (sorted by name unless ``nodes`` is given) into an ``(N, d)`` matrix.

    Each node's value per case is flattened, so a node of shape ``(N, k)`` gives ``k``
    columns. Lazy volumes are refused: images need an image estimator.

    Parameters
    ----------
    features : mapping of str to array-like
    nodes : tuple of str, optional
        Column order; default sorted node names.

    Returns
    -------
    numpy.ndarray of shape (N, d), float64

    Examples
    --------
    >>> tabular_matrix({"b": np.ones((2, 2)), "a": np.zeros(2)}).shape
    (2, 3)
    """
    n = n_cases(features)
    names = tuple(sorted(features)) if nodes is None else nodes
    cols = []
    for name in names:
        value = features[name]
        if isinstance(value, LazyVolumes):
            raise TypeError(
                f"node {name!r} holds lazily loaded volumes; a tabular classifier cannot use "
                f"it. {image_estimator_hint(name)}"
            )
        arr = np.asarray(value)
        if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
            raise TypeError(
                f"node {name!r} has non-numeric dtype {arr.dtype}; encode it as numbers first."
            )
        cols.append(arr.reshape(n, -1).astype(float, copy=False))
    return np.hstack(cols)
