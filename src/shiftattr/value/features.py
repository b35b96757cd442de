"""Per-node regression features: what the nested regressions see of each variable.

A tabular node is its own feature (flattened per case). An image or mask node is
summarised per case by the basic statistics of
:func:`shiftattr.ratios.image_statistics` unless the user gives a
featurizer, e.g. the segmentation model's own output summaries
(:meth:`shiftattr.segmentation.SegmentationAdapter.output_features`), which predict a
case's Dice far better than intensity statistics do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from shiftattr.environment import Environment
from shiftattr.ratios.image_stats import image_statistics

__all__ = [
    "Featurizer",
    "check_image_regressors",
    "is_summarised",
    "level_features",
    "node_features",
    "raw_features",
]

#: ``featurizer(environment) -> ndarray of shape (len(environment), p)``.
Featurizer = Callable[[Environment], np.ndarray]

#: A node with more values than this per case is summarised, not used raw.
_MAX_RAW = 64


def is_summarised(environment: Environment, node: str) -> bool:
    """Whether the regressions see ``node`` through summaries: an image or mask (lazy, or
    more than 64 values per case), not a tabular variable.

    Parameters
    ----------
    environment : Environment
    node : str

    Returns
    -------
    bool

    Examples
    --------
    >>> env = Environment({"age": np.array([50.0, 61.0]), "X": np.zeros((2, 8, 8, 8))})
    >>> is_summarised(env, "age"), is_summarised(env, "X")
    (False, True)
    """
    return bool(environment.is_lazy(node) or np.prod(environment.item_shape(node) or ()) > _MAX_RAW)


def _raw(environment: Environment, node: str) -> np.ndarray:
    """A node's values as float64, one flattened row per case."""
    return np.asarray(environment[node], dtype=np.float64).reshape(len(environment), -1)


def raw_features(node: str) -> Featurizer:
    """A featurizer giving a node's values as they are, one flattened row per case.

    For a regressor that reads images itself (:class:`~shiftattr.value.CNNRegressor`):
    ``features={"X": raw_features("X")}`` hands it every voxel instead of summaries.

    Parameters
    ----------
    node : str

    Returns
    -------
    callable
        ``featurizer(environment) -> ndarray of shape (len(environment), n_values)``.

    Examples
    --------
    >>> env = Environment({"X": np.arange(16.0).reshape(2, 2, 2, 2)})
    >>> raw_features("X")(env).shape
    (2, 8)
    """

    def featurize(environment: Environment) -> np.ndarray:
        return _raw(environment, node)

    featurize.__name__ = f"raw_features({node!r})"
    featurize.raw_node = node  # read by check_image_regressors
    return featurize


def check_image_regressors(
    regressors: Any,
    featurizers: Mapping[str, Featurizer] | None,
    *environments: Environment,
    levels: Sequence[str] | None = None,
) -> None:
    """Refuse a regressor whose ``image_shape`` does not fit the raw image it is given.

    :class:`~shiftattr.value.CNNRegressor` reads the last ``prod(image_shape)`` columns
    as one single-channel image: a transposed or wrong shape, or a second channel, was
    read silently (the other voxels became covariates) and gave other numbers. A node
    whose cases have no common shape (lazy volumes of several grids) is not checked.

    Parameters
    ----------
    regressors : regressor, mapping of str to regressor, or None
    featurizers : mapping of str to callable, optional
        ``features=`` of :func:`~shiftattr.attribute`; those made by
        :func:`raw_features` name their node.
    *environments : Environment
        Every environment the regressions read (source and target).
    levels : sequence of str, optional
        The regressions' levels in causal order (:func:`~shiftattr.value.build.value_levels`):
        a regression's design holds the features of the levels before it, in this order,
        so the image's voxels are its last columns only where no level lies between the
        image node and the last level.

    Raises
    ------
    ValueError
        Naming the regressor, the node's shape and the ``image_shape`` to give; or, with
        ``levels``, when several nodes have raw features, or a level lies between the
        raw image node and the last level (its features would follow the voxels, and
        the regressor would read them as part of the image).

    Examples
    --------
    >>> class Reader:  # any regressor with an image_shape
    ...     image_shape = (4, 4)
    >>> env = Environment({"X": np.zeros((3, 4, 4))})
    >>> check_image_regressors(Reader(), {"X": raw_features("X")}, env)  # fits: nothing
    >>> Reader.image_shape = (2, 8)
    >>> check_image_regressors({"cnn": Reader()}, {"X": raw_features("X")}, env)
    Traceback (most recent call last):
    ...
    ValueError: regressor 'cnn' (Reader, image_shape=(2, 8)) reads one image of shape (2, 8) per case, but node 'X' holds (4, 4): pass image_shape=(4, 4) (one channel).
    """
    named = regressors if isinstance(regressors, Mapping) else {None: regressors}
    readers = {k: r for k, r in named.items() if hasattr(r, "image_shape")}
    nodes = [getattr(f, "raw_node", None) for f in (featurizers or {}).values()]
    if readers and levels is not None:
        raw = [n for n in levels if n in nodes]
        if len(raw) > 1:
            raise ValueError(
                f"nodes {raw} all have raw features, but an image regressor reads one "
                "image per case (the last columns of its design): give raw_features to "
                "one node and summaries (e.g. statistics) to the others."
            )
        after = list(levels[levels.index(raw[0]) + 1 : -1]) if raw else []
        if after:
            raise ValueError(
                f"the regressions after node {raw[0]!r} put the features of {after} after "
                f"its voxels, and an image regressor reads the last columns of its design "
                f"as the image: it would read them as voxels. An image regressor takes a "
                f"raw image node only right before the last level of the causal order "
                f"(here {list(levels)}); give {raw[0]!r} summary features instead of "
                "raw_features."
            )
    for env in environments:
        for node in (n for n in nodes if n is not None):
            item = env.item_shape(node)
            for key, reader in readers.items():
                shape = tuple(int(s) for s in reader.image_shape)
                if item is None or item in (shape, (1, *shape)):
                    continue
                extra = len(item) == len(shape) + 1
                fix = f"image_shape={tuple(item[1:] if extra else item)}" + (
                    " and one channel" if extra else " (one channel)"
                )
                who = type(reader).__name__ + f", image_shape={shape}"
                who = (
                    f"{type(reader).__name__}(image_shape={shape})"
                    if key is None
                    else (f"regressor {key!r} ({who})")
                )
                raise ValueError(
                    f"{who} reads one image of shape {shape} per case, but node {node!r} "
                    f"holds {item}: pass {fix}."
                )


def node_features(
    environment: Environment,
    node: str,
    featurizers: Mapping[str, Featurizer] | None = None,
) -> np.ndarray:
    """Features of one node for every case of an environment.

    Parameters
    ----------
    environment : Environment
    node : str
    featurizers : mapping of str to callable, optional
        Per-node ``featurizer(environment) -> (N, p)`` arrays; a node without one
        uses its raw values (tabular) or the basic statistics of
        :func:`~shiftattr.ratios.image_statistics` (images and masks).

    Returns
    -------
    ndarray of shape (len(environment), p), float64

    Raises
    ------
    ValueError
        The featurizer returned the wrong number of rows or non-finite values.

    Examples
    --------
    >>> env = Environment({"age": np.array([50.0, 61.0]), "X": np.zeros((2, 8, 8, 8))})
    >>> node_features(env, "age").shape
    (2, 1)
    >>> node_features(env, "X", {"X": lambda e: np.ones((len(e), 3))}).shape
    (2, 3)
    """
    n = len(environment)
    if featurizers and node in featurizers:
        F = np.asarray(featurizers[node](environment), dtype=float)
        if F.ndim == 0 or F.shape[0] != n:  # check before reshaping: (2n,) is not (n, 2)
            raise ValueError(
                f"the featurizer of node {node!r} returned an array of shape {F.shape} for the "
                f"{n} cases of environment {environment.name!r}; it must return one row per case."
            )
        F = F.reshape(n, -1)
    elif is_summarised(environment, node):
        # the 12 basic statistics: the extended ones serve the density ratios (measured
        # there); a regression sees few cases, and the benchmark's regressions used these
        F = image_statistics({node: environment[node]}, statistics="basic")
    else:
        F = _raw(environment, node)
    if not np.all(np.isfinite(F)):
        raise ValueError(
            f"features of node {node!r} in environment {environment.name!r} contain NaN or "
            "inf; fix the featurizer (e.g. guard empty masks) before attributing."
        )
    return F


def level_features(
    environment: Environment,
    levels: Sequence[str],
    featurizers: Mapping[str, Featurizer] | None = None,
) -> list[np.ndarray]:
    """The nested regressions' features of every level, in the order of ``levels``.

    Each level but the last is its node's :func:`node_features`; the last level, whose
    regression is of the metric itself, gets none (an empty ``(N, 0)`` array).

    Parameters
    ----------
    environment : Environment
    levels : sequence of str
        The value levels (:func:`shiftattr.value.build.value_levels`).
    featurizers : mapping of str to callable, optional
        As for :func:`node_features`.

    Returns
    -------
    list of ndarray, one per level

    Examples
    --------
    >>> env = Environment({"Z": np.array([1.0, 2.0]), "Y": np.array([0.0, 1.0])})
    >>> [F.shape for F in level_features(env, ["Z", "Y"])]
    [(2, 1), (2, 0)]
    """
    own = [node_features(environment, node, featurizers) for node in levels[:-1]]
    return [*own, np.empty((len(environment), 0))]
