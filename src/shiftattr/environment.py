"""Environments: a name plus named node arrays sharing one leading sample axis."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np

__all__ = ["Environment", "LazyVolumes", "NodeFeatures", "cached_per_case", "case_key"]


class LazyVolumes(Sequence):
    """A sequence of arrays produced on access, e.g. NIfTI volumes read from disk.

    Only the items asked for are loaded, so memory stays bounded by the batch a
    consumer requests. Indexing with an integer returns one array; indexing with a
    slice or an integer array returns another :class:`LazyVolumes` view.

    Parameters
    ----------
    loader : callable
        ``loader(i) -> numpy.ndarray`` for ``0 <= i < length``.
    length : int
        Number of items.
    shape : tuple of int, optional
        Shape of one item when known without loading and the same for every item
        (used for validation).
    dtype : numpy dtype, optional
        Dtype of one item when known.
    item_shapes : sequence of tuple of int, optional
        The shape of every item when known without loading (e.g. from NIfTI headers)
        but not all the same; lets a consumer that needs one grid name the odd items
        before reading any. Ignored when ``shape`` is given.

    Examples
    --------
    >>> vols = LazyVolumes(lambda i: np.full((2, 2), i), length=3)
    >>> len(vols), int(vols[2].sum())
    (3, 8)
    >>> [int(v.sum()) for v in vols[[0, 2]]]
    [0, 8]
    >>> ragged = LazyVolumes(np.zeros, length=3, item_shapes=[(2, 2), (3, 2), (2, 2)])
    >>> ragged.shape_item, ragged[1:].item_shapes
    (None, [(3, 2), (2, 2)])
    """

    _shapes: list[tuple[int, ...]] | None = None  # (a LazyVolumes pickled before it)

    def __init__(
        self,
        loader: Callable[[int], np.ndarray],
        length: int,
        shape: tuple[int, ...] | None = None,
        dtype: Any = None,
        item_shapes: Sequence[tuple[int, ...]] | None = None,
        _index: np.ndarray | None = None,
    ) -> None:
        self._loader = loader
        self._index = np.arange(length) if _index is None else np.asarray(_index)
        self.shape_item = shape
        self.dtype = dtype
        self._shapes = None
        if shape is None and item_shapes is not None:
            self._shapes = [tuple(int(k) for k in sh) for sh in item_shapes]
            if _index is None and len(self._shapes) != length:
                raise ValueError(f"item_shapes has {len(self._shapes)} entries for {length} items.")

    @property
    def item_shapes(self) -> list[tuple[int, ...]] | None:
        """The shape of each item of this view when known without loading, else None.

        Returns
        -------
        list of tuple of int or None

        Examples
        --------
        >>> LazyVolumes(np.zeros, length=2, shape=(3, 3)).item_shapes
        [(3, 3), (3, 3)]
        >>> LazyVolumes(np.zeros, length=2, item_shapes=[(3, 3), (2, 3)])[[1]].item_shapes
        [(2, 3)]
        """
        if self.shape_item is not None:
            return [tuple(self.shape_item)] * len(self)
        if self._shapes is None:
            return None
        return [self._shapes[int(i)] for i in self._index]

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, (int, np.integer)):
            n = len(self)
            if not -n <= key < n:
                raise IndexError(f"index {key} out of range for {n} volumes")
            return np.asarray(self._loader(int(self._index[key])))
        idx = self._index[key]
        view = LazyVolumes(self._loader, 0, self.shape_item, self.dtype, _index=idx)
        view._shapes = self._shapes
        return view

    def load(self, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Load items (all by default) and stack them into one array.

        Parameters
        ----------
        indices : array-like of int, optional

        Returns
        -------
        numpy.ndarray
            Shape ``(len(indices),) + item_shape``.

        Examples
        --------
        >>> vols = LazyVolumes(lambda i: np.full((2, 2), i), length=3)
        >>> vols.load().shape
        (3, 2, 2)
        >>> vols.load([2, 0])[:, 0, 0].tolist()
        [2, 0]
        """
        ids = range(len(self)) if indices is None else _positions(indices, len(self), "item")
        return np.stack([self[int(i)] for i in ids])

    def __repr__(self) -> str:
        return f"LazyVolumes(n={len(self)}, shape={self.shape_item})"


def _positions(indices: Any, n: int, what: str = "case", where: str = "") -> np.ndarray:
    """Integer positions from ``indices``: integers, or a boolean mask with one entry
    per item (``np.asarray(mask, dtype=int)`` would read it as positions 0 and 1).

    Examples
    --------
    >>> _positions([2, 0], 3).tolist(), _positions(np.array([True, False, True]), 3).tolist()
    ([2, 0], [0, 2])
    """
    idx = np.asarray(indices)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise ValueError(
                f"a boolean mask must have one entry per {what} ({n}{where}), got shape {idx.shape}"
            )
        return np.flatnonzero(idx)
    if idx.size and idx.dtype.kind not in "iu":
        raise TypeError(f"{what} indices must be integers or a boolean mask, got dtype {idx.dtype}")
    return idx.astype(int, copy=False)


def _as_node_array(node: str, value: Any):
    """Turn a user value into a numpy array or keep a lazy sequence as is."""
    if isinstance(value, LazyVolumes):
        return value
    if hasattr(value, "to_numpy"):  # pandas Series / DataFrame
        value = value.to_numpy()
    if isinstance(value, np.ndarray):
        arr = value
    elif isinstance(value, (list, tuple)) and value and not np.isscalar(value[0]):
        first = np.asarray(value[0])
        if first.ndim >= 2 or callable(value[0]):
            shapes = [np.shape(v) for v in value]
            uniform = len(set(shapes)) == 1
            return LazyVolumes(
                lambda i, v=value: np.asarray(v[i]),
                len(value),
                shapes[0] if uniform else None,
                item_shapes=None if uniform else shapes,
            )
        arr = np.asarray(value)
    elif (
        isinstance(value, Sequence)
        and not isinstance(value, (str, bytes))
        and not isinstance(value, (list, tuple))
    ):
        # a sequence of volumes (a dataset-like object) stays lazy; one of numbers or
        # rows (a range, an array.array, a deque) is a column, by the rule lists follow.
        # Reading the first item to tell them apart loads one volume.
        if len(value) and np.ndim(value[0]) < 2 and not callable(value[0]):
            arr = np.asarray(value)
        else:
            return LazyVolumes(lambda i, v=value: np.asarray(v[i]), len(value))
    else:
        try:
            arr = np.asarray(value)
        except Exception as exc:  # pragma: no cover - numpy raises many kinds
            raise TypeError(
                f"node {node!r}: cannot convert {type(value).__name__} to an array"
            ) from exc
    if arr.ndim == 0:
        raise ValueError(
            f"node {node!r} is a scalar; every node needs a leading sample axis (one row per case)."
        )
    if arr.dtype == object:
        raise TypeError(
            f"node {node!r} has dtype object; pass a numeric array (ragged volumes belong in "
            "a LazyVolumes)."
        )
    if arr.dtype.kind in "USc":  # text, bytes, complex: no estimator reads them
        raise TypeError(
            f"node {node!r} has dtype {arr.dtype}; encode it as numbers first (e.g. a "
            "category as integer codes, or one column per level)."
        )
    return arr


class NodeFeatures(dict):
    """``{node: values}`` of cases of one environment, with its summary cache and metadata.

    What :meth:`Environment.features` returns: a plain ``dict`` plus ``cache``, the
    environment's store of per-case summaries (see :func:`cached_per_case`; ``None`` for
    a selection of cases), and the cases' ``metadata`` and ``case_ids``, so that a
    function of an environment (e.g. :meth:`SegmentationAdapter.output_features
    <shiftattr.segmentation.SegmentationAdapter.output_features>` reading the voxel
    spacing from ``metadata``) can be called on the selection. Anything that accepts a
    mapping of node arrays accepts it.

    Parameters
    ----------
    data : mapping of str to array-like
    cache : dict or None, default None
        ``{key: ndarray with one row per case}``, shared with the environment.
    origin : (Environment, ndarray of int or None), optional
        The environment and the positions of these cases in it (None: all of them);
        their metadata and ids are taken from it when first asked for (per-case metadata
        can be large: copying it for every fold and replicate cost ~10 ms a call).

    Examples
    --------
    >>> env = Environment({"X": np.zeros((3, 2))})
    >>> feats = env.features(["X"])
    >>> isinstance(feats, dict), feats.cache is env.features(["X"]).cache
    (True, True)
    """

    def __init__(
        self,
        data: Mapping[str, Any],
        cache: dict | None = None,
        origin: tuple[Environment, np.ndarray | None] | None = None,
    ) -> None:
        super().__init__(data)
        self.cache = cache
        self._origin = origin

    @cached_property
    def metadata(self) -> Mapping[str, Any] | None:
        """The cases' metadata (per-case entries restricted to them), or None.

        Examples
        --------
        >>> env = Environment({"X": np.arange(3.0)}, metadata={"scan": np.array([5, 6, 7])})
        >>> env.features(["X"], indices=[2, 0]).metadata["scan"].tolist()
        [7, 5]
        """
        if self._origin is None:
            return None
        env, idx = self._origin
        return env.metadata if idx is None else env._metadata_of(idx)

    @cached_property
    def case_ids(self) -> Sequence[str] | None:
        """The cases' identifiers, or None.

        Examples
        --------
        >>> Environment({"X": np.arange(3.0)}, name="s").features(["X"], indices=[1]).case_ids
        ['s:1']
        """
        if self._origin is None:
            return None
        env, idx = self._origin
        return env.case_ids if idx is None else env._case_ids_of(idx)

    def environment(self) -> Environment:
        """These cases as an :class:`Environment` (name, metadata and case ids kept).

        Returns
        -------
        Environment

        Examples
        --------
        >>> env = Environment({"X": np.arange(3.0)}, metadata={"site": "A"})
        >>> view = env.features(["X"], indices=[2, 0]).environment()
        >>> view.case_ids, view.metadata["site"], view.name
        (('environment:2', 'environment:0'), 'A', 'environment')
        >>> NodeFeatures({"X": np.arange(2.0)}).environment().case_ids  # no origin
        ('environment:0', 'environment:1')
        """
        if self._origin is None:
            return Environment(dict(self))
        view = Environment(
            dict(self), name=self._origin[0].name, case_ids=self.case_ids, metadata=self.metadata
        )
        # the nodes left out stay reachable, read only if asked for (SavedPredictions
        # reads its prediction node, no node of the graph, there)
        view._features_origin = self._origin
        return view


def cached_per_case(
    features: Mapping[str, Any], key: Any, compute: Callable[[], Any]
) -> np.ndarray:
    """A per-case summary of ``features``, computed once per environment.

    When ``features`` came from :meth:`Environment.features` (all cases), the result of
    ``compute()`` is stored under ``key`` in the environment's cache, and
    :meth:`Environment.subset` carries the stored rows to its subsets (bootstrap
    resamples included), so a summary of a case is computed once however many times the
    case is resampled. Any other mapping: ``compute()`` is simply called. The stored
    array is read-only. ``key`` must determine the summary given the node values (e.g.
    the nodes and every setting that changes the numbers); the cache assumes that node
    values are not changed in place.

    Parameters
    ----------
    features : mapping of str to array-like
    key : hashable
    compute : callable
        ``compute() -> array`` with one row per case.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> env = Environment({"X": np.arange(6.0).reshape(3, 2)})
    >>> calls = []
    >>> def row_sums():
    ...     calls.append(1)
    ...     return env["X"].sum(axis=1)
    >>> cached_per_case(env.features(["X"]), "sum", row_sums).tolist()
    [1.0, 5.0, 9.0]
    >>> boot = env.subset([2, 2, 0])
    >>> cached_per_case(boot.features(["X"]), "sum", lambda: 1 / 0).tolist()  # not recomputed
    [9.0, 9.0, 1.0]
    >>> len(calls)
    1
    """
    cache = getattr(features, "cache", None)
    if cache is None:
        return np.asarray(compute())
    if key not in cache:
        value = np.array(compute())  # a copy: the cache owns it
        n = len(next(iter(features.values()))) if features else None
        if n is not None and (value.ndim == 0 or len(value) != n):
            raise ValueError(
                f"a per-case summary must have one row per case ({n}); {key!r} has shape "
                f"{value.shape}"
            )
        value.setflags(write=False)
        cache[key] = value
    return cache[key]


def case_key(values: Any, i: int, item: np.ndarray | None = None) -> tuple:
    """The identity of case ``i``'s value in a node's ``values``, without reading files.

    A lazily read file is known by its loader's ``item_key`` (paths, sizes, modification
    times: :class:`~shiftattr.segmentation.NiftiVolumeLoader`); another lazy sequence by
    its loader object and position; an array item by a hash of its dtype, shape and
    bytes. Equal keys mean equal values; two copies of one array have equal keys.

    Parameters
    ----------
    values : array-like or LazyVolumes
        A node's values (one item per case).
    i : int
        The case's position.
    item : ndarray, optional
        ``values[i]`` when already loaded.

    Returns
    -------
    tuple
        Hashable.

    Examples
    --------
    >>> a = np.arange(6.0).reshape(3, 2)
    >>> case_key(a, 1) == case_key(a.copy(), 1), case_key(a, 1) == case_key(a, 2)
    (True, False)
    """
    if isinstance(values, LazyVolumes):
        j = int(values._index[i])
        item_key = getattr(values._loader, "item_key", None)
        if callable(item_key):
            return ("file", item_key(j))
        return ("lazy", id(values._loader), j)
    arr = np.ascontiguousarray(values[i] if item is None else item)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{arr.dtype}|{arr.shape}".encode())
    h.update(memoryview(arr.reshape(-1).view(np.uint8)))
    return ("array", h.hexdigest())


def _item_shape(values: Any) -> tuple[int, ...] | None:
    """The shape of one case of a node's values; ``None`` when a lazy node does not know
    it before reading (cases on several grids, or not read yet)."""
    if isinstance(values, LazyVolumes):
        return values.shape_item
    return tuple(values.shape[1:])


class Environment:
    """A data environment: node arrays sharing a leading sample axis, a name, metadata.

    Parameters
    ----------
    data : mapping of str to array-like
        ``{node: values}`` where ``values`` has one entry per case along axis 0: a
        numpy array, a pandas column, or a lazy sequence (:class:`LazyVolumes`, or any
        sequence whose items are arrays loaded on access).
    name : str, default "environment"
        A human-readable name, e.g. ``"center-03"``.
    case_ids : sequence of str, optional
        One id per case (unique). Defaults to ``"<name>:<index>"``.
    metadata : mapping, optional
        Anything else worth keeping (center, annotator, hidden simulator truth...).
        Entries that are numpy arrays or lists with one item per case (e.g.
        ``metadata["center"]`` per case), and dict entries whose every value is such an
        array, list or dict (e.g. ``metadata["acquisition_params"]``), follow
        :meth:`subset`; everything else is kept as is.
    counterfactuals : mapping, optional
        Paired counterfactual values, ``{environment_name: {node: values}}``: the
        value node ``node`` *would have had* for these very cases under the named
        environment's mechanism (e.g. ``Y`` as read by annotator 4).

    Raises
    ------
    TypeError
        If a node name is not a str, or a node's values (in ``data`` or
        ``counterfactuals``) have dtype object or cannot be converted to an array
        (ragged volumes belong in a :class:`LazyVolumes`).
    ValueError
        If ``data`` is not a non-empty mapping, a node is a scalar (no sample axis),
        nodes have different lengths (the message names them), there are no cases,
        ``case_ids`` does not have one unique id per case, or a counterfactual names an
        unknown node or has the wrong number of cases.

    Examples
    --------
    >>> env = Environment({"D": np.zeros(4), "X": np.ones((4, 2))}, name="site-A")
    >>> len(env), env.nodes
    (4, ('D', 'X'))
    >>> env.subset([0, 2]).case_ids
    ('site-A:0', 'site-A:2')
    """

    #: For a view made by :meth:`NodeFeatures.environment`: the environment it was cut
    #: from and the cases' positions in it (None: all); None otherwise.
    _features_origin: tuple[Environment, np.ndarray | None] | None = None

    def __init__(
        self,
        data: Mapping[str, Any],
        name: str = "environment",
        case_ids: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        counterfactuals: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if not isinstance(data, Mapping) or not data:
            raise ValueError(f"Environment {name!r} needs a non-empty mapping {{node: values}}.")
        arrays = {}
        for node, value in data.items():
            if not isinstance(node, str):
                raise TypeError(
                    f"node names must be strings, got {node!r} ({type(node).__name__}) in "
                    f"environment {name!r}; name every node with a str, e.g. {str(node)!r}."
                )
            arrays[node] = _as_node_array(node, value)
        lengths = {n: len(a) for n, a in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(
                f"Environment {name!r}: nodes have different numbers of cases {lengths}; every "
                "node needs one entry per case along axis 0."
            )
        n = next(iter(lengths.values()))
        if n == 0:
            raise ValueError(
                f"Environment {name!r} has no cases (every node has length 0); pass at least "
                "one case along axis 0."
            )
        if case_ids is None:
            ids = tuple(f"{name}:{i}" for i in range(n))
        else:
            ids = tuple(str(c) for c in case_ids)
            if len(ids) != n:
                raise ValueError(f"Environment {name!r}: {len(ids)} case_ids for {n} cases.")
            if len(set(ids)) != n:
                raise ValueError(f"Environment {name!r}: case_ids are not unique.")
        cf: dict[str, dict[str, Any]] = {}
        for env_name, nodes in (counterfactuals or {}).items():
            cf[env_name] = {}
            for node, value in nodes.items():
                if node not in arrays:
                    raise ValueError(
                        f"Environment {name!r}: counterfactual for unknown node {node!r} "
                        f"(environment {env_name!r}); nodes are {list(arrays)}."
                    )
                arr = _as_node_array(node, value)
                if len(arr) != n:
                    raise ValueError(
                        f"Environment {name!r}: counterfactual {node!r} under {env_name!r} has "
                        f"{len(arr)} cases, expected {n}."
                    )
                have, want = _item_shape(arr), _item_shape(arrays[node])
                if have is not None and want is not None and tuple(have) != tuple(want):
                    # a (n, 1) reading against a (n,) node broadcasts to (n, n) in a metric
                    raise ValueError(
                        f"Environment {name!r}: counterfactual {node!r} under {env_name!r} "
                        f"has cases of shape {tuple(have)}, the node's are {tuple(want)}; "
                        "give the counterfactual the node's layout (reshape it)."
                    )
                cf[env_name][node] = arr
        self.name = str(name)
        self._data = arrays
        self._case_ids = ids
        self.metadata = dict(metadata or {})
        self._counterfactuals = cf
        self._summaries: dict[Any, np.ndarray] = {}  # see cached_per_case

    # -- basic access -----------------------------------------------------------------
    @property
    def nodes(self) -> tuple[str, ...]:
        """Node names held by this environment, in the order they were given.

        Examples
        --------
        >>> Environment({"D": np.zeros(3), "X": np.ones(3)}).nodes
        ('D', 'X')
        """
        return tuple(self._data)

    @property
    def case_ids(self) -> tuple[str, ...]:
        """One id per case (``"<name>:<index>"`` unless given).

        Examples
        --------
        >>> Environment({"X": np.zeros(2)}, name="site-A").case_ids
        ('site-A:0', 'site-A:1')
        >>> Environment({"X": np.zeros(2)}, case_ids=["p1", "p2"]).case_ids
        ('p1', 'p2')
        """
        return self._case_ids

    @property
    def counterfactuals(self) -> dict[str, dict[str, Any]]:
        """Paired counterfactual values ``{environment_name: {node: values}}`` (a copy).

        Examples
        --------
        >>> env = Environment({"Y": np.zeros(3)}, counterfactuals={"reader-2": {"Y": np.ones(3)}})
        >>> list(env.counterfactuals), env.counterfactuals["reader-2"]["Y"].tolist()
        (['reader-2'], [1.0, 1.0, 1.0])
        """
        return {k: dict(v) for k, v in self._counterfactuals.items()}

    def __len__(self) -> int:
        return len(self._case_ids)

    def __contains__(self, node: object) -> bool:
        return node in self._data

    def __getitem__(self, node: str):
        try:
            return self._data[node]
        except KeyError:
            raise KeyError(
                f"node {node!r} is not in environment {self.name!r}; it holds {list(self._data)}."
            ) from None

    def is_lazy(self, node: str) -> bool:
        """Whether ``node`` is loaded on access (a :class:`LazyVolumes`).

        Parameters
        ----------
        node : str
            A node of this environment.

        Returns
        -------
        bool

        Examples
        --------
        >>> vols = LazyVolumes(lambda i: np.zeros((2, 2)), length=3)
        >>> env = Environment({"D": np.zeros(3), "X": vols})
        >>> env.is_lazy("X"), env.is_lazy("D")
        (True, False)
        """
        return isinstance(self[node], LazyVolumes)

    def item_shape(self, node: str) -> tuple[int, ...] | None:
        """Shape of one case of ``node`` (None when lazy and unknown).

        Parameters
        ----------
        node : str
            A node of this environment.

        Returns
        -------
        tuple of int or None
            ``()`` for a scalar node.

        Examples
        --------
        >>> env = Environment({"D": np.zeros(3), "X": np.zeros((3, 4, 5))})
        >>> env.item_shape("X"), env.item_shape("D")
        ((4, 5), ())
        >>> Environment({"X": LazyVolumes(np.zeros, length=3)}).item_shape("X") is None
        True
        """
        return _item_shape(self[node])

    def features(self, nodes: Sequence[str], indices: Sequence[int] | None = None) -> NodeFeatures:
        """The arrays of ``nodes`` (optionally for some cases), as ``{node: values}``.

        Eager nodes come back as numpy arrays, lazy ones as lazy views. The mapping is a
        :class:`NodeFeatures`: it gives the cases' metadata and ids (for a function of an
        environment, :meth:`NodeFeatures.environment`), and without ``indices`` it
        carries the environment's cache of per-case summaries (:func:`cached_per_case`),
        through which e.g. the image statistics of
        :class:`~shiftattr.ratios.ImageStatsRatio` are computed once per case, not once
        per bootstrap replicate.

        Parameters
        ----------
        nodes : sequence of str
        indices : array-like of int or of bool, optional
            Case positions, or a boolean mask with one entry per case.

        Returns
        -------
        NodeFeatures

        Examples
        --------
        >>> env = Environment({"D": np.arange(4), "X": np.arange(8).reshape(4, 2)})
        >>> f = env.features(["X"], indices=[1, 3])
        >>> list(f), f["X"].tolist()
        (['X'], [[2, 3], [6, 7]])
        """
        missing = [n for n in nodes if n not in self._data]
        if missing:
            raise KeyError(
                f"node(s) {missing} are not in environment {self.name!r}; it holds {list(self._data)}."
            )
        if indices is None:
            return NodeFeatures({n: self._data[n] for n in nodes}, self._summaries, (self, None))
        idx = _positions(indices, len(self), "case", f" in {self.name!r}")
        return NodeFeatures({n: self._data[n][idx] for n in nodes}, origin=(self, idx))

    def counterfactual(self, environment: str, node: str):
        """Values of ``node`` for these cases under ``environment``'s mechanism.

        Parameters
        ----------
        environment : str
            Name of the environment whose mechanism produced the paired values.
        node : str
            The node.

        Returns
        -------
        numpy.ndarray or LazyVolumes
            One value per case of this environment.

        Raises
        ------
        KeyError
            When no such paired value was given, naming what is available.

        Examples
        --------
        >>> env = Environment({"Y": np.zeros(3)}, counterfactuals={"reader-2": {"Y": np.ones(3)}})
        >>> env.counterfactual("reader-2", "Y").tolist()
        [1.0, 1.0, 1.0]
        """
        try:
            return self._counterfactuals[environment][node]
        except KeyError:
            have = {k: list(v) for k, v in self._counterfactuals.items()}
            raise KeyError(
                f"environment {self.name!r} has no paired value of {node!r} under "
                f"{environment!r}; available: {have or 'none'}."
            ) from None

    def subset(self, indices: Sequence[int] | np.ndarray) -> Environment:
        """A new environment holding the given cases (repeats allowed: bootstrap).

        Parameters
        ----------
        indices : array-like of int, or of bool
            Case positions, or a boolean mask with one entry per case.

        Returns
        -------
        Environment

        Raises
        ------
        ValueError
            If the indices are not one-dimensional, or a mask does not have one entry
            per case.
        TypeError
            If the indices are neither integers nor booleans.
        IndexError
            If a position is out of range.

        Examples
        --------
        >>> env = Environment({"X": np.arange(4.0)}, name="s")
        >>> env.subset([2, 0])["X"].tolist(), env.subset([2, 0]).case_ids
        ([2.0, 0.0], ('s:2', 's:0'))
        >>> env.subset([1, 1]).case_ids  # bootstrap repeats get unique ids
        ('s:1#0', 's:1#1')
        >>> env.subset(env["X"] > 1.5).case_ids  # a boolean mask of cases
        ('s:2', 's:3')
        """
        idx = _positions(indices, len(self), "case", f" in {self.name!r}")
        if idx.ndim != 1:
            raise ValueError(
                f"subset indices must be one-dimensional, got shape {idx.shape}; pass a "
                "flat sequence of case positions."
            )
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"subset index out of range for {len(self)} cases in {self.name!r}")
        cf = {e: {n: v[idx] for n, v in d.items()} for e, d in self._counterfactuals.items()}
        env = Environment(
            {n: a[idx] for n, a in self._data.items()},
            name=self.name,
            case_ids=self._case_ids_of(idx),
            metadata=self._metadata_of(idx),
            counterfactuals=cf,
        )
        for key, value in self._summaries.items():  # per-case summaries follow their cases
            rows = value[idx]
            rows.setflags(write=False)
            env._summaries[key] = rows
        return env

    def _case_ids_of(self, idx: np.ndarray) -> list[str]:
        """The ids of cases ``idx``; repeated cases (bootstrap) get unique ``"id#k"``."""
        ids = [self._case_ids[i] for i in idx]
        if len(set(ids)) != len(ids):
            ids = [f"{c}#{k}" for k, c in enumerate(ids)]
        return ids

    def _metadata_of(self, idx: np.ndarray) -> dict[str, Any]:
        """The metadata of cases ``idx``: per-case arrays and lists (one entry per case)
        restricted to them; a dict only if every entry is per case (recursively)."""
        n = len(self)

        def is_per_case(value: Any) -> bool:
            if isinstance(value, dict):
                return bool(value) and all(is_per_case(v) for v in value.values())
            if isinstance(value, np.ndarray):
                return value.ndim >= 1 and len(value) == n
            return isinstance(value, list) and len(value) == n

        def take(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: take(v) for k, v in value.items()}
            if isinstance(value, np.ndarray):
                return value[idx]
            return [value[i] for i in idx]

        return {k: take(v) if is_per_case(v) else v for k, v in self.metadata.items()}

    def with_nodes(self, **nodes: Any) -> Environment:
        """A copy with nodes added or replaced (same cases, ids and metadata; the cache of
        per-case summaries starts empty).

        Parameters
        ----------
        **nodes : array-like
            ``node=values``, one entry per case along axis 0.

        Returns
        -------
        Environment

        Examples
        --------
        >>> env = Environment({"X": np.zeros(3)}, name="s")
        >>> env2 = env.with_nodes(M=np.ones(3))
        >>> env2.nodes, env2.case_ids == env.case_ids, env.nodes
        (('X', 'M'), True, ('X',))
        """
        data = dict(self._data)
        data.update(nodes)
        return Environment(data, self.name, self._case_ids, self.metadata, self._counterfactuals)

    @classmethod
    def from_frame(cls, frame: Any, name: str = "environment", **kwargs: Any) -> Environment:
        """Build an environment from a pandas DataFrame, one node per column.

        Parameters
        ----------
        frame : pandas.DataFrame
        name : str
        **kwargs
            Passed to :class:`Environment`.

        Returns
        -------
        Environment

        Examples
        --------
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"D": [0, 1, 1], "X": [0.5, 1.5, 2.5]})
        >>> env = Environment.from_frame(frame, name="site-A")
        >>> env.nodes, len(env), env["X"].tolist()
        (('D', 'X'), 3, [0.5, 1.5, 2.5])
        """
        names = [str(c) for c in frame.columns]
        repeated = sorted({c for c in names if names.count(c) > 1})
        if repeated:
            raise ValueError(
                f"{name}: the frame has more than one column named {repeated} (as text); "
                "each column becomes a node, so rename them (a node of several columns is "
                "built with Environment({'X': frame[[...]].to_numpy(), ...}))"
            )
        return cls(
            {c: frame.iloc[:, j].to_numpy() for j, c in enumerate(names)}, name=name, **kwargs
        )

    def __repr__(self) -> str:
        parts = []
        for n, a in self._data.items():
            if not isinstance(a, LazyVolumes):
                parts.append(f"{n}{tuple(a.shape[1:])}")
            elif a.shape_item is not None:
                parts.append(f"{n}(lazy){tuple(a.shape_item)}")
            else:  # cases on several grids, or shapes unknown until read: not a scalar
                grids = len(set(a.item_shapes or ()))
                parts.append(f"{n}(lazy, {f'{grids} grids' if grids else 'shape unknown'})")
        return f"Environment({self.name!r}, n={len(self)}, nodes=[{', '.join(parts)}])"
