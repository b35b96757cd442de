"""Turn any segmentation model into per-case metrics an attribution can use.

:class:`SegmentationAdapter` wraps a ``torch.nn.Module`` (nnU-Net / MONAI networks,
:class:`~shiftattr.segmentation.unet.UNet3D`) or any callable mapping an image batch
``(B, C, *spatial)`` to logits or probabilities ``(B, K, *spatial)`` / ``(B, *spatial)``,
and computes per-case metrics (Dice, lesion-wise F1, ...) on an
:class:`~shiftattr.environment.Environment`. Predictions are cached, so scoring a second
metric on the same cases does not run the model again, and
:meth:`SegmentationAdapter.output_features` summarises the same cached predictions into
per-case features for regression value estimators. ``preprocess`` applies the intensity
normalisation the model was trained with on the way to it, leaving the environment's
images as the scanner wrote them.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import sys
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, ClassVar

import numpy as np
import torch

from shiftattr.environment import Environment, LazyVolumes, case_key
from shiftattr.segmentation._threads import intra_op_threads
from shiftattr.segmentation.features import (
    AGREEMENT_FEATURE_NAMES,
    MASK_FEATURE_NAMES,
    mask_agreement,
    mask_features,
)
from shiftattr.segmentation.sliding_window import _output_tensor, sliding_window_inference

__all__ = ["CACHE_MEMORY_FRACTION", "SegmentationAdapter"]

_ACTIVATIONS = ("auto", "sigmoid", "softmax", "none")

#: ``cache_max_bytes="auto"`` bounds the prediction cache at this fraction of the
#: machine's physical memory.
CACHE_MEMORY_FRACTION = 0.25


#: Memory limits of a container or batch job (cgroup v2, then v1): a quarter of the
#: host's memory can exceed the job's whole allowance.
_CGROUP_LIMITS = (
    "/sys/fs/cgroup/memory.max",
    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
)


def _physical_memory() -> int | None:
    """Bytes of memory this process may use: the machine's, or a smaller cgroup limit
    (Docker, Slurm, Kubernetes); None where the platform says neither (Windows)."""
    sizes = []
    with suppress(AttributeError, ValueError, OSError):
        sizes.append(int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES")))
    for path in _CGROUP_LIMITS:
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():  # "max" (v2) means no limit
            sizes.append(int(text))
    return min(sizes) if sizes else None


def _user_stacklevel() -> int:
    """The ``stacklevel`` of a warning raised by the caller of this function that points
    at the first frame outside shiftattr and joblib (the user's call): the call depth
    differs between methods and joblib's backends."""
    inside = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "joblib")
    frame, level = sys._getframe(1), 1
    while frame is not None and any(part in frame.f_code.co_filename for part in inside):
        frame, level = frame.f_back, level + 1
    return level


def _identity(fn: Callable[..., Any] | None) -> str | None:
    """A function's name for the cache fingerprint; with the object's id when the name
    does not tell it apart (lambdas, local functions, callable objects)."""
    if fn is None:
        return None
    qual = getattr(fn, "__qualname__", None)
    name = f"{getattr(fn, '__module__', '')}.{qual or type(fn).__qualname__}"
    if hasattr(fn, "__self__"):  # a bound method: its instance may hold parameters
        return f"{name}:{id(fn.__self__)}"
    return name if qual and "<" not in qual else f"{name}:{id(fn)}"


def _foreground_of(environment: Environment | None) -> int | None:
    """The class a loader cut an environment's masks from (``foreground=k``), if any."""
    if environment is None:
        return None
    cut = environment.metadata.get("foreground")
    return None if cut is None else int(cut)


def _check_finite(values: np.ndarray, case_ids: Sequence[str], name: str) -> np.ndarray:
    """``shiftattr.metrics.check_finite_metric`` when available, else an equivalent check."""
    try:
        from shiftattr.metrics import check_finite_metric
    except ImportError:  # pragma: no cover - metrics always ship with the package
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            listed = ", ".join(repr(case_ids[i]) for i in bad[:20])
            raise ValueError(
                f"metric {name!r} is not finite for {bad.size} of {len(values)} cases: {listed}. "
                "Set the metric's empty-mask policy (metric_params={'empty': ...})."
            ) from None
        return values
    return check_finite_metric(values, case_ids=list(case_ids), metric_name=name)


def _compute_metrics(
    fns: Sequence[tuple[Callable[..., Any], dict[str, Any]]], pred: np.ndarray, ref: np.ndarray
) -> tuple[float, ...]:
    """One case, every metric (module level so joblib can ship it to workers)."""
    out = []
    for fn, kwargs in fns:
        value = fn(pred, ref, **kwargs)
        arr = np.asarray(value, dtype=np.float64)
        if arr.size != 1:
            raise ValueError(
                f"metric {getattr(fn, '__name__', fn)!r} returned shape {arr.shape} for one case; "
                "it must return one number per case."
            )
        out.append(float(arr.reshape(())))
    return tuple(out)


def _case_output_features(
    mask: np.ndarray,
    proba: np.ndarray,
    spacing: np.ndarray | None,
    connectivity: int,
    case_id: str,
) -> np.ndarray:
    """One case's :func:`mask_features`; errors name the case (module level for joblib)."""
    try:
        return mask_features(mask, proba, spacing=spacing, connectivity=connectivity)
    except ValueError as exc:
        raise ValueError(f"case {case_id!r}: {exc}") from None


class SegmentationAdapter:
    """Run a segmentation model on environments and score it case by case.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor ``(B, C, *spatial)`` to logits or probabilities
        ``(B, K, *spatial)`` or ``(B, *spatial)`` (tensor or numpy array). Modules are
        put in eval mode and run under :func:`torch.no_grad` (each submodule's
        training flag is restored afterwards) and are moved to ``device``.
    metric : str or callable, default "dice"
        A name from :mod:`shiftattr.metrics` (``"dice"``, ``"lesion_f1"``,
        ``"lesion_sensitivity"``, ``"lesion_ppv"``, ``"volume_difference"``,
        ``"hausdorff95"``) or any ``fn(pred, ref) -> float`` on one case's binary masks.
    activation : {"auto", "sigmoid", "softmax", "none"}, default "auto"
        How outputs become probabilities. ``"sigmoid"``: per channel, mask is
        ``p > threshold``. ``"softmax"``: over channels, mask is ``argmax == label``.
        ``"none"``: outputs already are probabilities (one channel: ``p > threshold``;
        several: ``argmax == label``). ``"auto"``: ``"none"`` if the first batch already
        looks like probabilities (values in [0, 1], summing to 1 over channels when
        K > 1), else sigmoid for one channel and softmax for several; the choice is
        kept in ``activation_`` and a later batch contradicting it raises an error.
    threshold : float, default 0.5
        Probability threshold for one-channel and sigmoid outputs.
    label : int, default 1
        Label of interest: the reference mask is ``Y == label``, and for multi-class
        (softmax / argmax) outputs channel ``label`` is that class (channel 0 is
        background, as in nnU-Net and MONAI).
    channel : int, optional
        Output channel of interest when it differs from ``label`` (e.g. multi-label
        sigmoid heads without a background channel). Default: ``label`` for several
        channels, 0 for one. Masks loaded with ``foreground=k`` hold class ``k`` as 1:
        keep ``label=1`` and, for a model with more than two output channels, set
        ``channel`` to its channel of class ``k`` (``k`` with a background channel 0;
        without it, scoring such an environment with ``k != label`` is refused rather
        than comparing channel ``label`` with them). Two channels are taken for a
        background and a foreground.
    batch_size : int, default 2
        Cases per model call (or windows per call with ``patch_size``).
    device : str or torch.device, default "cpu"
        Where the model runs (a module is moved there).
    patch_size : sequence of int, optional
        Run sliding-window inference with this patch (padding smaller volumes),
        see :func:`~shiftattr.segmentation.sliding_window_inference`.
    overlap : float, default 0.5
        Sliding-window overlap.
    blending : {"gaussian", "constant"}, default "gaussian"
        Sliding-window blending.
    sigma_scale : float, default 0.125
        Gaussian blending width relative to the patch.
    metric_params : dict, optional
        Keyword arguments for the metric, e.g. ``{"empty": "one"}`` or
        ``{"min_lesion_volume": 3.0}`` (mm³) for lesion-wise metrics. With several
        metrics each gets the entries its signature takes (a callable ``fn(pred, ref)``
        none); an entry no metric takes is an error.
    spacing : sequence of float, array (N, d) or "metadata", optional
        Voxel spacing for distance-aware metrics: one spacing for every case, one row
        per case (of the one environment scored: another environment is refused, since
        rows are matched by position), or ``"metadata"`` to read
        ``environment.metadata["spacing"]`` (set by the NIfTI loaders from the headers). Passed to registered metrics and to
        callables with a ``spacing`` argument, and used for the volumes of
        :meth:`output_features`. Default: the metric's default (voxel units).
    spatial_dims : int, optional
        Number of spatial axes. Default: from the reference masks (when the
        environment holds them), else the model's ``spatial_dims`` attribute (e.g.
        :class:`~shiftattr.segmentation.UNet3D`), else ``len(patch_size)``, else
        ``ndim`` of a case for 2 or 3 axes (one channel) and ``ndim - 1`` beyond. Set
        it for multi-channel 2D images ``(C, H, W)`` without masks.
    preprocess : callable, optional
        Applied to each case on its way to the model, as ``(C, *spatial)`` (channels
        first, also for one channel), returning the same shape: the intensity
        normalisation the model was trained with, e.g.
        :func:`~shiftattr.segmentation.preprocessing.zscore` (nnU-Net's for MRI). The
        environment's images stay as they are, which is what the acquisition
        mechanism's density ratios must see. Applied to the whole case before any
        sliding window, as nnU-Net does.
    progress : bool, default True
        Show a tqdm progress bar over cases.
    num_threads : int or None, default 1
        torch intra-op threads during inference (``None``: torch's setting). One is
        fastest on small shared machines, where torch's default threads wait on each
        other (see :func:`shiftattr.segmentation.unet.train_segmentation_model`).
    n_jobs : int, default 1
        Number of joblib workers for the per-case metric computation (``-1``: all cores). Use
        ``joblib.parallel_config(backend=...)`` to switch backend (Ray, Dask).
    cache : bool, default True
        Keep each case's binary mask and probability map in memory, keyed by model
        fingerprint and case identity, so a second metric or a second call does not
        run the model again. Memory: ``N x voxels x 5`` bytes (uint8 mask + float32
        probability), e.g. ~500 MB for 50 cases of 128^3 voxels.
    cache_max_bytes : int, "auto" or None, default "auto"
        Evict least recently used cases beyond this many bytes; ``"auto"`` is
        :data:`CACHE_MEMORY_FRACTION` (a quarter) of the machine's physical memory, or
        of a container's or batch job's memory limit where that is smaller (6 GB on a
        24 GB machine: about 100 cases of 256×256×180); unbounded where the platform
        says neither (Windows). None is unbounded.
        An evicted case is predicted again when asked for; the first eviction warns,
        and :attr:`n_cache_evictions_` counts them.

    Attributes
    ----------
    n_model_calls_ : int
        Number of calls to ``model`` so far (sliding-window batches count one each).
    n_cache_hits_ : int
        Number of cases served from the cache.
    n_cache_evictions_ : int
        Number of cases evicted from the cache to respect ``cache_max_bytes``.
    activation_ : str or None
        The activation in use (resolved from ``"auto"`` on the first batch).
    n_output_channels_ : int or None
        Number of channels the model outputs (None before its first call).
    output_feature_names : tuple of str
        Column names of :meth:`output_features` (class attribute).

    Notes
    -----
    The cache key is ``(model fingerprint, case identity)``. The fingerprint hashes
    the bytes of every state-dict tensor of a module (so changed weights invalidate
    it) or uses the identity of a plain callable (call :meth:`clear_cache` if its
    behaviour changes), plus every option that changes predictions. A case's
    identity is a hash of its image for in-memory arrays, its file paths, sizes and
    modification times for NIfTI-backed environments, and the lazy loader and index
    otherwise — never the case id alone, since ids such as ``"environment:0"`` repeat
    across environments.

    Examples
    --------
    >>> import numpy as np
    >>> from shiftattr import Environment
    >>> x = np.zeros((2, 1, 4, 4), dtype="float32"); x[:, 0, :2] = 1.0
    >>> y = np.zeros((2, 4, 4), dtype="uint8"); y[:, :2, :2] = 1
    >>> env = Environment({"X": x, "Y": y}, name="toy")
    >>> adapter = SegmentationAdapter(lambda b: 4 * b - 2, progress=False)
    >>> adapter.score(env).round(4)
    array([0.6667, 0.6667])
    >>> adapter.predict(env).shape, adapter.n_model_calls_
    ((2, 4, 4), 1)
    """

    output_feature_names: ClassVar[tuple[str, ...]] = MASK_FEATURE_NAMES

    def __init__(
        self,
        model: torch.nn.Module | Callable[..., Any],
        metric: str | Callable[..., float] = "dice",
        *,
        activation: str = "auto",
        threshold: float = 0.5,
        label: int = 1,
        channel: int | None = None,
        batch_size: int = 2,
        device: str | torch.device = "cpu",
        patch_size: Sequence[int] | None = None,
        overlap: float = 0.5,
        blending: str = "gaussian",
        sigma_scale: float = 0.125,
        metric_params: Mapping[str, Any] | None = None,
        spacing: Any = None,
        spatial_dims: int | None = None,
        preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
        progress: bool = True,
        n_jobs: int = 1,
        cache: bool = True,
        cache_max_bytes: int | str | None = "auto",
        num_threads: int | None = 1,
    ) -> None:
        if not callable(model):
            raise TypeError(
                f"model must be a torch.nn.Module or a callable, got {type(model).__name__}"
            )
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
        if blending not in ("gaussian", "constant"):
            raise ValueError(f"blending must be 'gaussian' or 'constant', got {blending!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0.0 <= float(overlap) < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        if spatial_dims is not None and int(spatial_dims) < 1:
            raise ValueError(f"spatial_dims must be positive, got {spatial_dims}")
        if isinstance(spacing, str) and spacing != "metadata":
            raise ValueError(
                f"spacing must be numbers, an (N, d) array or 'metadata', got {spacing!r}"
            )
        if isinstance(cache_max_bytes, str) and cache_max_bytes != "auto":
            raise ValueError(
                f"cache_max_bytes must be a number of bytes, 'auto' or None, got "
                f"{cache_max_bytes!r}"
            )
        if num_threads is not None and int(num_threads) < 1:
            raise ValueError(f"num_threads must be a positive int or None, got {num_threads!r}")
        if preprocess is not None and not callable(preprocess):
            raise TypeError(
                f"preprocess must be a function of one case (C, *spatial), got "
                f"{type(preprocess).__name__}"
            )
        self.preprocess = preprocess
        self.num_threads = num_threads
        self.model = model
        self.metric = metric
        self.activation = activation
        self.threshold = float(threshold)
        self.label = int(label)
        self.channel = None if channel is None else int(channel)
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        self.patch_size = None if patch_size is None else tuple(int(p) for p in patch_size)
        self.overlap = float(overlap)
        self.blending = blending
        self.sigma_scale = float(sigma_scale)
        self.metric_params = dict(metric_params or {})
        self.spacing = spacing
        self.spatial_dims = None if spatial_dims is None else int(spatial_dims)
        self.progress = bool(progress)
        self.n_jobs = n_jobs
        self.cache = bool(cache)
        self.cache_max_bytes = cache_max_bytes
        self.n_model_calls_ = 0
        self.n_cache_hits_ = 0
        self.n_cache_evictions_ = 0
        self.n_output_channels_: int | None = None
        self.activation_: str | None = None if activation == "auto" else activation
        self._cache: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_bytes = 0
        self._pinned: dict[int, Any] = {}  # keeps lazy loaders alive so their ids stay unique
        # the cases that per-case spacing rows belong to (the first environment scored)
        self._spacing_cases: tuple[str, ...] | None = None
        self._input_dtype: torch.dtype | None = None

    # ------------------------------------------------------------------ public API
    def predict(
        self, data: Any, image_node: str = "X", *, label_node: str | None = "Y"
    ) -> np.ndarray | list[np.ndarray]:
        """Binary masks of the label of interest.

        Parameters
        ----------
        data : Environment, numpy.ndarray or LazyVolumes
            An environment (its ``image_node`` is used), an array ``(N, *spatial)`` /
            ``(N, C, *spatial)``, or a lazy sequence of per-case volumes (loaded one
            batch at a time).
        image_node : str, default "X"
            Node holding the images when ``data`` is an environment.
        label_node : str or None, default "Y"
            If the environment holds this node, its masks tell how many spatial axes
            the images have (``(C, *spatial)`` vs ``(*spatial)``); see ``spatial_dims``.

        Returns
        -------
        numpy.ndarray
            Binary masks, uint8 ``(N, *spatial)`` holding 0/1; a list of arrays if cases differ in shape.

        Examples
        --------
        >>> import numpy as np
        >>> adapter = SegmentationAdapter(lambda b: b, activation="none", progress=False)
        >>> adapter.predict(np.array([[[0.2, 0.9]], [[0.7, 0.1]]])).tolist()
        [[[0, 1]], [[1, 0]]]
        """
        return self._collect(data, image_node, label_node, which=0)

    def predict_proba(
        self, data: Any, image_node: str = "X", *, label_node: str | None = "Y"
    ) -> np.ndarray | list[np.ndarray]:
        """Probability of the label of interest, voxel by voxel.

        Parameters
        ----------
        data : Environment, numpy.ndarray or LazyVolumes
            See :meth:`predict`.
        image_node : str, default "X"
            Node holding the images when ``data`` is an environment.
        label_node : str or None, default "Y"
            See :meth:`predict`.

        Returns
        -------
        numpy.ndarray
            Probabilities, float32 ``(N, *spatial)``; a list of arrays if cases differ in shape.

        Examples
        --------
        >>> import numpy as np
        >>> adapter = SegmentationAdapter(lambda b: b, activation="sigmoid", progress=False)
        >>> adapter.predict_proba(np.zeros((1, 2, 2))).tolist()
        [[[0.5, 0.5], [0.5, 0.5]]]
        """
        return self._collect(data, image_node, label_node, which=1)

    def score(
        self,
        environment: Environment,
        image_node: str = "X",
        label_node: str = "Y",
        metric: str | Callable[..., float] | Sequence[str | Callable[..., float]] | None = None,
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Per-case metric of the model on an environment.

        Parameters
        ----------
        environment : Environment
            Holds the images (``image_node``) and reference masks (``label_node``).
        image_node : str, default "X"
            Node holding the images.
        label_node : str, default "Y"
            Node holding the reference masks (``Y == label`` is the reference).
        metric : str, callable or list of them, optional
            Overrides the adapter's metric. A list computes several metrics in one
            pass and returns a dict.

        Returns
        -------
        numpy.ndarray or dict
            Metric values, float64 ``(N,)`` in case order; ``{metric_name: values}``
            for a list.

        Raises
        ------
        TypeError
            If ``environment`` is not an :class:`~shiftattr.Environment`, or a metric is
            neither a name nor a callable.
        KeyError
            If ``environment`` lacks ``label_node`` or ``image_node``: raised by the
            look-up ``environment[node]`` (the label node is looked up first), naming the
            missing node and the nodes the environment holds.
        ValueError
            If a metric name is unknown (:func:`~shiftattr.metrics.get_metric`), a
            reference mask does not have the prediction's spatial shape, a reference
            holds a single nonzero value other than ``label`` that no case holds beside
            ``label`` (a 0/255 export, or the wrong ``label``; a case of a label map
            lacking the class is an empty reference), an image's number of axes does not fit the model's
            spatial axes, ``spacing`` does not fit the cases, a metric returns more than
            one number per case, or a value is NaN or infinite (e.g. Dice with both masks
            empty): the message names the cases and how to set the empty-mask policy
            (``metric_params={"empty": "one"}``).

        Examples
        --------
        >>> import numpy as np
        >>> from shiftattr import Environment
        >>> x = np.array([[[0.0, 1.0, 1.0]], [[1.0, 1.0, 0.0]]])
        >>> env = Environment({"X": x, "Y": (x > 0.5).astype("uint8")})
        >>> adapter = SegmentationAdapter(lambda b: b, activation="none", progress=False,
        ...                               spatial_dims=2)
        >>> adapter.score(env, metric=["dice", lambda p, r: float(p.sum())])
        {'dice': array([1., 1.]), 'metric_1': array([2., 2.])}
        """
        if not isinstance(environment, Environment):
            raise TypeError(
                f"score needs an Environment holding {image_node!r} and {label_node!r}, got "
                f"{type(environment).__name__}; build one with shiftattr.Environment({{...}})."
            )
        refs = environment[label_node]
        images = environment[image_node]
        case_ids = list(environment.case_ids)
        sd = self.spatial_dims or self._label_spatial_dims(environment, label_node)

        metrics = metric if metric is not None else self.metric
        many = isinstance(metrics, (list, tuple))
        metric_list = list(metrics) if many else [metrics]
        names, fns = self._resolve_metrics(metric_list, own=metric is None)
        spacing = self._spacing_for(environment)

        seen = self._label_tally()

        def tasks() -> Iterator[Any]:
            from joblib import delayed

            for i, mask, _ in self._iter_cases(images, case_ids, sd, environment):
                ref = self._reference(refs[i], case_ids[i], label_node, mask.shape, seen)
                per_case = []
                for fn, kwargs, accepts_spacing in fns:
                    kw = dict(kwargs)
                    if spacing is not None and accepts_spacing:
                        kw["spacing"] = spacing[i]
                    per_case.append((fn, kw))
                yield delayed(_compute_metrics)(per_case, mask, ref)

        from joblib import Parallel

        rows = Parallel(n_jobs=self.n_jobs)(tasks())
        self._check_label(seen, label_node, environment)
        values = np.asarray(rows, dtype=np.float64).reshape(len(case_ids), len(names))
        out = {
            name: _check_finite(values[:, j].copy(), case_ids, name) for j, name in enumerate(names)
        }
        return out if many else out[names[0]]

    def output_features(
        self,
        environment: Environment,
        image_node: str | None = None,
        *,
        label_node: str | None = "Y",
        connectivity: int = 1,
    ) -> np.ndarray:
        """Per-case summary features of the model's own output.

        Features for regression (multiply-robust) value estimators that regress the
        per-case metric on the image: predicted volume, confidence, uncertainty overall
        and near the predicted boundary, connected components (see
        :func:`~shiftattr.segmentation.mask_features`, columns named by
        :attr:`output_feature_names`). They come from the same cached masks and
        probabilities as :meth:`score`, so calling both runs the model once per case.

        "Foreground" is the label of interest: the cached mask (``p > threshold`` for
        one-channel / sigmoid outputs, ``argmax == label`` for multi-class outputs) and
        the probability of channel ``label`` (or ``channel``). For a multi-class model
        every other class counts as background, as in the metric that is regressed.

        Parameters
        ----------
        environment : Environment
            Holds the images; reference masks are not needed.
        image_node : str, optional
            Node holding the images. Default: ``"X"``.
        label_node : str or None, default "Y"
            If the environment holds this node, its masks tell how many spatial axes the
            images have (as in :meth:`score`, so the cache is shared); otherwise see
            ``spatial_dims``.
        connectivity : int, default 1
            Rank of :func:`scipy.ndimage.generate_binary_structure` for components and the
            boundary shell (1: 6-connectivity in 3D, as the lesion-wise metrics).

        Returns
        -------
        numpy.ndarray
            float64 ``(N, len(output_feature_names))``, finite, in case order. Volumes are
            in voxels, or physical units when the adapter's ``spacing`` is set.

        Raises
        ------
        ValueError
            If the model output is not finite for a case (the message names it), or the
            image node is missing.

        Examples
        --------
        >>> import numpy as np
        >>> import torch
        >>> from shiftattr import Environment
        >>> x = np.zeros((2, 1, 8, 8, 8), dtype="float32")
        >>> x[:, 0, 1:3, 1:3, 1:3] = 1.0  # a cube in both cases
        >>> x[1, 0, 5:7, 5:7, 5:7] = 1.0  # and a second one in case 1
        >>> net = torch.nn.Conv3d(1, 1, 1)
        >>> with torch.no_grad():
        ...     _ = net.weight.fill_(10.0), net.bias.fill_(-5.0)  # logit = 10 x - 5
        >>> adapter = SegmentationAdapter(net, progress=False)
        >>> features = adapter.output_features(Environment({"X": x}))
        >>> features.shape == (2, len(adapter.output_feature_names))
        True
        >>> names = list(adapter.output_feature_names)
        >>> np.expm1(features[:, names.index("log_n_components")]).round(6)
        array([1., 2.])
        >>> np.expm1(features[:, names.index("log_volume")]).round(6)
        array([ 8., 16.])
        >>> _ = adapter.output_features(Environment({"X": x}))  # served from the cache
        >>> adapter.n_model_calls_, adapter.n_cache_hits_
        (1, 2)
        """
        if not isinstance(environment, Environment):
            raise TypeError(
                "output_features needs an Environment holding the images, got "
                f"{type(environment).__name__}; build one with shiftattr.Environment({{...}})."
            )
        node = "X" if image_node is None else image_node
        if node not in environment:
            raise ValueError(
                f"environment {environment.name!r} has no image node {node!r} (nodes: "
                f"{list(environment.nodes)}); pass image_node=."
            )
        images = environment[node]
        case_ids = list(environment.case_ids)
        sd = self.spatial_dims
        if sd is None and label_node and label_node in environment:
            sd = self._label_spatial_dims(environment, label_node)
        spacing = self._spacing_for(environment)

        def tasks() -> Iterator[Any]:
            from joblib import delayed

            for i, mask, proba in self._iter_cases(images, case_ids, sd, environment):
                sp = None if spacing is None else spacing[i]
                yield delayed(_case_output_features)(mask, proba, sp, connectivity, case_ids[i])

        from joblib import Parallel

        rows = Parallel(n_jobs=self.n_jobs)(tasks())
        n_features = len(self.output_feature_names)
        return np.asarray(rows, dtype=np.float64).reshape(len(case_ids), n_features)

    def agreement_features(
        self, environment: Environment, image_node: str = "X", *, label_node: str = "Y"
    ) -> np.ndarray:
        """Per-case agreement of the reference masks with the model's prediction.

        :func:`~shiftattr.segmentation.mask_agreement` of every case: the log ratio of
        the reference's volume to the predicted one, and their overlap as a share of
        each (columns named by :data:`~shiftattr.segmentation.AGREEMENT_FEATURE_NAMES`).
        A function of the image and the mask, so a feature of the annotation's joint
        node set: give it to the annotation's ratio as
        ``ImageStatsRatio(extra_features={"X": adapter.output_features, "Y":
        adapter.agreement_features})`` with ``attribute(...,
        conditional_ratios="offset_child")``, where the annotation's conditional ratio
        reads the mask's own statistics and these, and not the image's (see "Choosing
        estimators and solvers" in the documentation for what it was measured to gain
        and cost). The predictions come from the same cache as :meth:`score`.

        Parameters
        ----------
        environment : Environment
            Holds the images (``image_node``) and reference masks (``label_node``).
        image_node : str, default "X"
        label_node : str, default "Y"

        Returns
        -------
        numpy.ndarray
            float64 ``(N, 3)``, finite, in case order.

        Raises
        ------
        ValueError
            If a node is missing, or a reference's grid differs from its prediction's.

        Examples
        --------
        >>> import numpy as np
        >>> from shiftattr import Environment
        >>> x = np.zeros((2, 1, 4, 4), dtype="float32")
        >>> x[:, 0, :2] = 1.0                           # the model predicts the top half
        >>> y = np.zeros((2, 4, 4), dtype="uint8")
        >>> y[0, :2] = 1                                 # case 0: the annotator agrees
        >>> y[1, :1] = 1                                 # case 1: outlines half as much
        >>> adapter = SegmentationAdapter(lambda b: b, activation="none", progress=False,
        ...                               spatial_dims=2)
        >>> adapter.agreement_features(Environment({"X": x, "Y": y})).round(3)
        array([[ 0.   ,  0.889,  0.889],
               [-0.588,  0.8  ,  0.444]])
        """
        if not isinstance(environment, Environment):
            raise TypeError(
                "agreement_features needs an Environment holding the images and masks, got "
                f"{type(environment).__name__}; build one with shiftattr.Environment({{...}})."
            )
        missing = [n for n in (image_node, label_node) if n not in environment]
        if missing:
            raise ValueError(
                f"environment {environment.name!r} has no node {missing[0]!r} (nodes: "
                f"{list(environment.nodes)}); agreement_features compares the masks of "
                "label_node= with the predictions from the images of image_node=."
            )
        refs = environment[label_node]
        case_ids = list(environment.case_ids)
        sd = self.spatial_dims or self._label_spatial_dims(environment, label_node)
        seen = self._label_tally()
        rows = [
            mask_agreement(
                mask, self._reference(refs[i], case_ids[i], label_node, mask.shape, seen)
            )
            for i, mask, _ in self._iter_cases(environment[image_node], case_ids, sd, environment)
        ]
        self._check_label(seen, label_node, environment)
        return np.asarray(rows, dtype=np.float64).reshape(
            len(case_ids), len(AGREEMENT_FEATURE_NAMES)
        )

    def clear_cache(self) -> None:
        """Forget all cached predictions (and the ``"auto"`` activation choice).

        Examples
        --------
        >>> import numpy as np
        >>> adapter = SegmentationAdapter(lambda b: b, activation="none", progress=False)
        >>> _ = adapter.predict(np.full((1, 2, 2), 0.9))
        >>> adapter.clear_cache()
        >>> adapter.cache_bytes_, adapter.n_model_calls_
        (0, 1)
        """
        self._cache.clear()
        self._cache_bytes = 0
        self._pinned.clear()
        if self.activation == "auto":
            self.activation_ = None

    @property
    def cache_bytes_(self) -> int:
        """Bytes held by cached masks and probabilities.

        Examples
        --------
        >>> import numpy as np
        >>> adapter = SegmentationAdapter(lambda b: b, activation="none", progress=False)
        >>> _ = adapter.predict(np.stack([np.full((4, 4), 0.9), np.full((4, 4), 0.8)]))
        >>> adapter.cache_bytes_  # 2 cases x 16 voxels x (1 + 4) bytes
        160
        >>> _ = adapter.predict(np.full((3, 4, 4), 0.7))  # one image three times: one entry
        >>> adapter.cache_bytes_
        240
        """
        return self._cache_bytes

    def fingerprint(self) -> str:
        """Hash of the model (weights or identity) and every prediction-changing option.

        Returns
        -------
        str
            Hex digest; part of every cache key.

        Examples
        --------
        >>> import torch
        >>> net = torch.nn.Conv2d(1, 1, 1)
        >>> adapter = SegmentationAdapter(net, progress=False)
        >>> before = adapter.fingerprint()
        >>> with torch.no_grad():
        ...     _ = net.bias.add_(1.0)
        >>> adapter.fingerprint() == before
        False
        """
        h = hashlib.blake2b(digest_size=16)
        model = self.model
        # a bound method of a module (net.forward, net.predict) is as its module's weights
        module = model if isinstance(model, torch.nn.Module) else getattr(model, "__self__", None)
        if isinstance(module, torch.nn.Module):
            if module is not model:
                h.update(f"method:{_identity(model)}".encode())
            h.update(f"module:{type(module).__module__}.{type(module).__qualname__}".encode())
            for name, t in module.state_dict().items():
                t = t.detach()
                h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
                if t.numel():
                    flat = t.reshape(-1).contiguous().cpu().view(torch.uint8).numpy()
                    h.update(memoryview(flat))
        else:
            h.update(f"callable:{_identity(model)}".encode())
        options = (
            self.activation,
            self.threshold,
            self.label,
            self.channel,
            self.patch_size,
            self.overlap if self.patch_size else None,
            self.blending if self.patch_size else None,
            self.sigma_scale if self.patch_size else None,
            _identity(self.preprocess),
        )
        h.update(repr(options).encode())
        return h.hexdigest()

    def __repr__(self) -> str:
        name = (
            type(self.model).__name__
            if isinstance(self.model, torch.nn.Module)
            else getattr(self.model, "__name__", type(self.model).__name__)
        )
        return (
            f"SegmentationAdapter(model={name}, metric={self._metric_name(self.metric, 0)!r}, "
            f"activation={self.activation!r}, patch_size={self.patch_size}, "
            f"cached_cases={len(self._cache)})"
        )

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _metric_name(metric: Any, j: int) -> str:
        if isinstance(metric, str):
            return metric
        name = getattr(metric, "__name__", None)
        return f"metric_{j}" if name in (None, "<lambda>") else str(name)

    def _resolve_metrics(
        self, metrics: Sequence[Any], own: bool = True
    ) -> tuple[list[str], list[tuple[Callable[..., Any], dict[str, Any], bool]]]:
        """Names and ``(function, keyword arguments, accepts spacing)`` of the metrics.
        Each gets the entries of ``metric_params`` its signature takes (a callable
        ``fn(pred, ref)`` none, ``dice`` not ``min_lesion_volume``); with the adapter's
        ``own`` metrics, an entry that none takes is refused, naming it (a misspelling;
        other metrics given to :meth:`score` may simply not need them)."""
        names: list[str] = []
        fns: list[tuple[Callable[..., Any], dict[str, Any], bool]] = []
        used: set[str] = set()
        for j, m in enumerate(metrics):
            if isinstance(m, str):
                from shiftattr.metrics import get_metric

                fn = get_metric(m)
            elif callable(m):
                fn = m
            else:
                raise TypeError(
                    f"metric must be a name from shiftattr.metrics or a callable (pred, ref) -> "
                    f"float, got {type(m).__name__}"
                )
            try:
                params = inspect.signature(fn).parameters
                takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
            except (TypeError, ValueError):  # builtins without signature
                params, takes_all = {}, False
            kwargs = {k: v for k, v in self.metric_params.items() if takes_all or k in params}
            used |= set(kwargs)
            if isinstance(m, str):
                kwargs.setdefault("batch", False)  # one case per call, 2D or 3D
            accepts_spacing = takes_all or "spacing" in params
            name = self._metric_name(m, j)
            if name in names:
                name = f"{name}_{j}"
            names.append(name)
            fns.append((fn, kwargs, accepts_spacing))
        unused = sorted(set(self.metric_params) - used)
        if unused and own:
            raise ValueError(
                f"metric_params {unused} are taken by none of the metrics {names}; check the "
                "spelling, or the metric they belong to (e.g. min_lesion_volume is a "
                "lesion-wise metric's)."
            )
        return names, fns

    def _spacing_for(self, environment: Environment) -> np.ndarray | None:
        sp = self.spacing
        if sp is None:
            return None
        n = len(environment)
        if isinstance(sp, str):
            if "spacing" not in environment.metadata:
                raise ValueError(
                    f"spacing='metadata' but environment {environment.name!r} has no "
                    "metadata['spacing']; pass the voxel spacing explicitly."
                )
            sp = self._metadata_spacing(environment)
        arr = np.asarray(sp, dtype=np.float64)
        if arr.ndim == 0:
            raise ValueError("spacing must have one value per spatial axis, e.g. (1.0, 1.0, 3.0)")
        if arr.ndim == 1:
            return np.broadcast_to(arr, (n, arr.shape[0]))
        if arr.ndim == 2 and arr.shape[0] == n:
            if not isinstance(self.spacing, str):  # rows by position: one environment only
                ids = tuple(environment.case_ids)
                if self._spacing_cases is None:
                    self._spacing_cases = ids
                bound = self._spacing_cases
                if bound != ids:
                    raise ValueError(
                        f"spacing holds one row per case of the environment first scored "
                        f"(cases {list(bound[:3])}...), and environment {environment.name!r} "
                        f"holds other cases ({list(ids[:3])}...): its rows would be matched "
                        "by position. Use spacing='metadata' (the loaders record each case's "
                        "voxel size), or one adapter per environment."
                    )
            return arr
        raise ValueError(
            f"spacing has shape {arr.shape}; expected (d,) for every case or ({n}, d), one row "
            f"per case of environment {environment.name!r}."
        )

    @staticmethod
    def _metadata_spacing(environment: Environment) -> np.ndarray:
        """``metadata["spacing"]`` aligned with the cases, also after ``subset``.

        Per-case arrays are matched by ``metadata["case_id"]`` (written by the NIfTI
        loaders) when present: a bootstrap copy ``"id#k"`` (or ``"id#k#j"``, a subset
        of a subset) takes the row of ``"id"``.
        """
        meta = environment.metadata
        spacing = np.asarray(meta["spacing"], dtype=np.float64)
        ids = meta.get("case_id")
        if ids is None:
            return spacing
        ids = [str(c) for c in np.asarray(ids)]
        if len(ids) != len(spacing):
            raise ValueError("metadata['case_id'] and metadata['spacing'] have different lengths")
        current = list(environment.case_ids)
        if ids == current:
            return spacing
        position = {c: k for k, c in enumerate(ids)}
        rows = []
        for c in current:
            base = c
            while base not in position and "#" in base:  # bootstrap copies: "id#k#j"
                base = base.rsplit("#", 1)[0]
            if base not in position:
                raise ValueError(
                    f"case {c!r} of environment {environment.name!r} is not in "
                    "metadata['case_id']; cannot find its spacing. Pass spacing= explicitly."
                )
            rows.append(position[base])
        return spacing[rows]

    def _reference(
        self,
        ref: Any,
        case_id: str,
        node: str,
        shape: tuple[int, ...],
        seen: dict[str, Any],
    ) -> np.ndarray:
        """Case ``case_id``'s reference as the binary mask ``ref == label``. ``seen``
        tallies, over an environment, the other classes held beside ``label``
        (``"beside"``) and the cases holding one nonzero value other than ``label``
        (``"other"``), for :meth:`_check_label`."""
        r = np.asarray(ref)
        if r.shape != tuple(shape):
            if r.ndim == len(shape) + 1 and r.shape[0] == 1 and r.shape[1:] == tuple(shape):
                r = r[0]
            else:
                raise ValueError(
                    f"case {case_id!r}: reference {node!r} has shape {r.shape} but the prediction "
                    f"has shape {tuple(shape)}; images and masks must share their spatial grid."
                )
        if r.dtype.kind in "fc":
            bad = ~np.isfinite(r)
            bad |= r != np.round(np.where(bad, 0, r))
            if bad.any():
                raise ValueError(
                    f"case {case_id!r}: reference {node!r} holds values that are not class "
                    f"labels (e.g. {r[bad].flat[0].item()!r}, in {int(bad.sum())} voxels): soft or "
                    "interpolated masks would count as other classes. Threshold or round "
                    "them first (resample masks with nearest-neighbour interpolation)."
                )
        binary = r == self.label
        if r.any():
            values = np.unique(r)
            nonzero = values[values != 0]
            if binary.any():
                seen["beside"].update(v for v in nonzero.tolist() if v != self.label)
            elif nonzero.size == 1:
                seen["other"].append((case_id, values.tolist(), nonzero[0].item()))
        return binary

    @staticmethod
    def _label_tally() -> dict[str, Any]:
        """An empty tally for :meth:`_reference` and :meth:`_check_label`."""
        return {"beside": set(), "other": []}

    def _check_label(
        self, seen: dict[str, Any], node: str, environment: Environment | None = None
    ) -> None:
        """Refuse a case whose reference holds one nonzero value other than ``label``,
        unless that value is another class of a label map (held beside ``label`` in some
        case): a binary mask exported as 0/255, or masks scored with the wrong label,
        would otherwise count as empty references. A case of a label map that lacks the
        class of interest (an organ without tumour) is a legitimate empty reference."""
        wrong = [c for c in seen["other"] if c[2] not in seen["beside"]]
        if not wrong:
            return
        case_id, values, other = wrong[0]
        more = f" (and {len(wrong) - 1} more case(s) like it)" if len(wrong) > 1 else ""
        cut = _foreground_of(environment)
        if cut is not None:  # the loader binarised class `cut`: label must be the 1 it wrote
            raise ValueError(
                f"case {case_id!r}: reference {node!r} holds the values {values} but "
                f"label={self.label}{more}: environment {environment.name!r} was loaded "
                f"with foreground={cut}, which stores class {cut} as 1. Keep label=1; for a "
                "model with one output channel per class, set channel= (model.output_channel "
                f"in a configuration) to its channel of class {cut} ({cut} for a softmax "
                "model whose channel 0 is the background)."
            )
        raise ValueError(
            f"case {case_id!r}: reference {node!r} holds the values {values} but "
            f"label={self.label}{more}, and no case holds {other!r} beside label "
            f"{self.label} as another class would be; set label={other!r}, or binarise "
            "the masks (e.g. a 0/255 export)."
        )

    def _image_key(self, images: Any, i: int, item: np.ndarray | None) -> tuple:
        key = case_key(images, i, item)
        if key[0] == "lazy":  # keyed by the loader's id: keep it alive so the id stays its own
            self._pinned[id(images._loader)] = images._loader
        return key

    def _as_images(self, data: Any, image_node: str) -> tuple[Any, list[str]]:
        if isinstance(data, Environment):
            return data[image_node], list(data.case_ids)
        if isinstance(data, LazyVolumes):
            return data, [f"case {i}" for i in range(len(data))]
        if isinstance(data, torch.Tensor):
            data = data.detach().cpu().numpy()
        if isinstance(data, np.ndarray):
            if data.ndim < 2:
                raise ValueError(
                    f"images must be (N, *spatial) or (N, C, *spatial), got shape {data.shape}"
                )
            return data, [f"case {i}" for i in range(len(data))]
        if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
            return data, [f"case {i}" for i in range(len(data))]
        raise TypeError(
            f"expected an Environment, a numpy array or LazyVolumes, got {type(data).__name__}"
        )

    def _collect(
        self, data: Any, image_node: str, label_node: str | None, which: int
    ) -> np.ndarray | list[np.ndarray]:
        images, case_ids = self._as_images(data, image_node)
        sd = self.spatial_dims
        if sd is None and isinstance(data, Environment) and label_node and label_node in data:
            sd = self._label_spatial_dims(data, label_node)
        source = data if isinstance(data, Environment) else None
        out = [res[which] for _, *res in self._iter_cases(images, case_ids, sd, source)]
        if not out:
            return np.zeros((0,), dtype=np.uint8 if which == 0 else np.float32)
        if len({a.shape for a in out}) == 1:
            return np.stack(out)
        return [a.copy() for a in out]  # the caller's own, not the cache's

    def _label_spatial_dims(self, environment: Environment, label_node: str) -> int | None:
        """The spatial axes the masks show: their number of axes, less a leading 1
        (channel-first masks, as MONAI stores them); a model's declared ``spatial_dims``
        decides between the two (a 3D model on single-slice volumes ``(1, H, W)``)."""
        shape = environment.item_shape(label_node)
        if not shape:
            return None
        model_sd = self._declared_spatial_dims()
        if model_sd in (len(shape), len(shape) - 1):
            return model_sd
        if len(shape) in (3, 4) and shape[0] == 1:
            return len(shape) - 1
        return len(shape)

    def _declared_spatial_dims(self) -> int | None:
        """The model's own ``spatial_dims`` attribute (e.g. ``UNet3D(spatial_dims=2)``),
        if it declares an integer one."""
        sd = getattr(self.model, "spatial_dims", None)
        return sd if isinstance(sd, int) and not isinstance(sd, bool) else None

    def _spatial(self, ndim: int, sd: int | None, case_id: str) -> int:
        if sd is None:
            sd = self._declared_spatial_dims()
        if sd is None:
            sd = len(self.patch_size) if self.patch_size else (ndim if ndim <= 3 else ndim - 1)
        if ndim not in (sd, sd + 1):
            raise ValueError(
                f"case {case_id!r}: image has {ndim} axes but the model works on {sd} spatial "
                f"axes; expected (*spatial) or (C, *spatial). Set spatial_dims= if this is wrong."
            )
        return sd

    def _iter_cases(
        self,
        images: Any,
        case_ids: Sequence[str],
        sd: int | None,
        environment: Environment | None = None,
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield ``(index, mask, proba)`` in case order, batching the model calls;
        ``environment``, the one the images come from, is checked for masks cut from
        another class than the model's channel of interest (:meth:`_check_class`)."""
        n = len(images)
        fingerprint = self.fingerprint() if self.cache else None
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, desc="segmentation", unit="case")
        try:
            for start in range(0, n, self.batch_size):
                idx = range(start, min(start + self.batch_size, n))
                done: dict[int, tuple[np.ndarray, np.ndarray]] = {}
                loaded: dict[int, np.ndarray] = {}
                keys: dict[int, tuple] = {}
                for i in idx:
                    if self.cache:
                        item = None
                        if not isinstance(images, LazyVolumes):
                            item = np.asarray(images[i])
                            loaded[i] = item
                        # keyed by the spatial axes the model will use, resolved the same
                        # way whether or not a label node told them (so output_features of
                        # an environment without masks reuses what score computed), for
                        # lazy volumes too: from their declared shape, else the case itself
                        key_sd = sd
                        if sd is None:
                            shape = getattr(images, "shape_item", None)
                            if item is None and shape is None:
                                item = loaded[i] = np.asarray(images[i])
                            ndim = item.ndim if item is not None else len(shape)
                            key_sd = self._spatial(ndim, None, case_ids[i])
                        keys[i] = (fingerprint, key_sd, self._image_key(images, i, item))
                        hit = self._cache.get(keys[i])
                        if hit is not None:
                            self._cache.move_to_end(keys[i])
                            self.n_cache_hits_ += 1
                            done[i] = hit
                            continue
                    if i not in loaded:
                        loaded[i] = np.asarray(images[i])
                misses = [i for i in idx if i not in done]
                if misses:
                    results = self._run(
                        [loaded[i] for i in misses], [case_ids[i] for i in misses], sd
                    )
                    for i, res in zip(misses, results):
                        done[i] = res
                        if self.cache:
                            self._store(keys[i], res)
                if start == 0:
                    self._check_class(environment)
                for i in idx:
                    if bar is not None:
                        bar.update(1)
                    yield i, done[i][0], done[i][1]
        finally:
            if bar is not None:
                bar.close()

    def _check_class(self, environment: Environment | None) -> None:
        """Refuse to compare channel ``label`` of a multi-class model with masks that a
        loader cut from another class of a label map (``metadata["foreground"]``, stored
        as 1): the default channel is ``label``, 1, which is then most likely another
        class. Two channels are a background and a foreground (channel 1 is right)."""
        cut = _foreground_of(environment)
        k = self.n_output_channels_
        if cut is None or self.channel is not None or k is None or k <= 2 or cut == self.label:
            return
        raise ValueError(
            f"environment {environment.name!r} was loaded with foreground={cut}: its masks are "
            f"class {cut} of the label maps, stored as 1. The model outputs {k} channels and, "
            f"without channel=, its channel {self.label} would be compared with them. Set "
            f"channel= (model.output_channel in a configuration) to the model's channel of "
            f"class {cut}: {cut} for a softmax model whose channel 0 is the background "
            f"(nnU-Net, MONAI), {cut - 1} for sigmoid heads of classes 1..{k} without one; "
            "label stays 1, the masks' value."
        )

    def _store(self, key: tuple, res: tuple[np.ndarray, np.ndarray]) -> None:
        size = res[0].nbytes + res[1].nbytes
        old = self._cache.get(key)  # identical images in one batch: stored once, counted once
        if old is not None:
            self._cache_bytes -= old[0].nbytes + old[1].nbytes
        self._cache[key] = res
        self._cache_bytes += size
        limit = self._cache_limit()
        while limit is not None and self._cache_bytes > limit and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= old[0].nbytes + old[1].nbytes
            self.n_cache_evictions_ += 1
            if self.n_cache_evictions_ == 1:
                warnings.warn(
                    f"the prediction cache reached its bound ({limit / 2**30:.2f} GB, "
                    f"cache_max_bytes={self.cache_max_bytes!r}): the least recently used "
                    "cases are evicted and the model runs again for them when they are "
                    "needed. Raise cache_max_bytes (model.cache_gb in a configuration) if "
                    "the memory is there.",
                    UserWarning,
                    stacklevel=_user_stacklevel(),
                )

    def _cache_limit(self) -> int | None:
        """The cache bound in bytes (None: unbounded); ``"auto"`` reads the machine's
        memory once per adapter, not at every case stored."""
        if self.cache_max_bytes != "auto":
            return None if self.cache_max_bytes is None else int(self.cache_max_bytes)
        if not hasattr(self, "_auto_limit"):
            total = _physical_memory()
            self._auto_limit = None if total is None else int(CACHE_MEMORY_FRACTION * total)
        return self._auto_limit

    def _run(
        self, items: list[np.ndarray], ids: list[str], sd: int | None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Run the model on cases; groups of identical shape share a batch."""
        prepared = []
        for item, cid in zip(items, ids):
            s = self._spatial(item.ndim, sd, cid)
            arr = item[np.newaxis] if item.ndim == s else item
            if self.preprocess is not None:
                out = np.asarray(self.preprocess(arr))
                if out.shape != arr.shape:
                    raise ValueError(
                        f"preprocess changed case {cid!r} from shape {arr.shape} to "
                        f"{out.shape}; it must keep the grid the masks are compared on "
                        "(resample the files instead)"
                    )
                arr = out
            prepared.append(arr)
        results: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(items)
        groups: dict[tuple, list[int]] = {}
        for k, arr in enumerate(prepared):
            groups.setdefault(arr.shape, []).append(k)
        with self._inference_context():
            for shape, members in groups.items():
                batch = torch.from_numpy(
                    np.stack([prepared[k] for k in members]).astype(np.float32, copy=False)
                )
                logits = self._forward(batch)
                masks, probas = self._postprocess(
                    logits, tuple(shape[1:]), [ids[k] for k in members]
                )
                for j, k in enumerate(members):
                    # a case's own arrays: a slice would keep the whole batch (and a
                    # softmax's every channel) alive in the cache, up to 50 times what
                    # its bound counts; read-only, so that no caller changes the cache
                    case = (np.array(masks[j]), np.array(probas[j]))
                    for a in case:
                        a.flags.writeable = False
                    results[k] = case
        return results  # type: ignore[return-value]

    @contextmanager
    def _inference_context(self) -> Iterator[None]:
        model = self.model
        if not isinstance(model, torch.nn.Module):
            with torch.no_grad():
                yield
            return
        flags = [(m, m.training) for m in model.modules()]
        params = next(model.parameters(), None)
        if params is not None and params.device != self.device:
            model.to(self.device)
        if params is not None and params.is_floating_point():
            self._input_dtype = params.dtype  # e.g. a half-precision model gets half inputs
        model.eval()
        try:
            with torch.no_grad(), intra_op_threads(self.num_threads):
                yield
        finally:
            self._input_dtype = None
            for m, flag in flags:
                m.training = flag

    def _call_model(self, batch: torch.Tensor) -> torch.Tensor:
        self.n_model_calls_ += 1
        out = self.model(batch.to(device=self.device, dtype=self._input_dtype or batch.dtype))
        return _output_tensor(out)  # deep supervision: the full-resolution head

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        if self.patch_size is not None:
            if len(self.patch_size) != batch.ndim - 2:
                raise ValueError(
                    f"patch_size {self.patch_size} has {len(self.patch_size)} axes but the images "
                    f"have {batch.ndim - 2} spatial axes."
                )
            return sliding_window_inference(
                self._call_model,
                batch,
                self.patch_size,
                overlap=self.overlap,
                blending=self.blending,
                batch_size=self.batch_size,
                sigma_scale=self.sigma_scale,
                device=self.device,
                output_device="cpu",
            )
        return self._call_model(batch)

    def _resolve_activation(self, out: torch.Tensor) -> str:
        k = out.shape[1]
        looks_like_proba = bool(out.min() >= 0) and bool(out.max() <= 1)
        if k > 1 and looks_like_proba:
            looks_like_proba = bool(torch.allclose(out.sum(1), torch.ones(()), atol=1e-3))
        if self.activation_ is None:
            self.activation_ = "none" if looks_like_proba else ("sigmoid" if k == 1 else "softmax")
        elif self.activation == "auto" and self.activation_ == "none" and not looks_like_proba:
            self.clear_cache()
            raise ValueError(
                "activation='auto' took the model's outputs for probabilities on the first batch, "
                "but this batch holds values outside [0, 1] (or not summing to 1): set "
                "activation='sigmoid', 'softmax' or 'none' explicitly. The cache was cleared."
            )
        return self.activation_

    def _postprocess(
        self, out: torch.Tensor, spatial: tuple[int, ...], ids: list[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        out = out.detach().to("cpu", torch.float32)
        nd = len(spatial)
        if out.ndim == nd + 1:
            out = out.unsqueeze(1)
        if out.ndim != nd + 2 or tuple(out.shape[2:]) != spatial:
            raise ValueError(
                f"model output has shape {tuple(out.shape)} for input spatial shape {spatial} "
                f"(cases {ids}); expected (B, K, *spatial) or (B, *spatial). Models that change "
                "the resolution need resampling before scoring."
            )
        k = self.n_output_channels_ = out.shape[1]
        act = self._resolve_activation(out) if self.activation == "auto" else self.activation
        ch = self.channel if self.channel is not None else (self.label if k > 1 else 0)
        if not 0 <= ch < k:
            raise ValueError(
                f"the model outputs {k} channel(s) but the label/channel of interest is {ch}; "
                "set label= (class index for softmax outputs) or channel=."
            )
        if k == 1 and act == "softmax":
            raise ValueError(
                "activation='softmax' on a one-channel output is constant 1; use 'sigmoid' "
                "for one-channel logits or 'none' for probabilities."
            )
        if act == "sigmoid":
            proba = torch.sigmoid(out[:, ch])
            mask = proba > self.threshold
        elif act == "softmax":
            proba = torch.softmax(out, dim=1)[:, ch]
            mask = out.argmax(dim=1) == ch
        else:  # probabilities already
            proba = out[:, ch]
            mask = proba > self.threshold if k == 1 else out.argmax(dim=1) == ch
        finite = torch.isfinite(proba).reshape(len(proba), -1).all(dim=1)
        if not bool(finite.all()):
            bad = [ids[i] for i in torch.nonzero(~finite).ravel().tolist()]
            # NaN > threshold is False: the case would score as an empty prediction
            raise ValueError(
                f"the model output is non-finite (NaN or inf) for some voxels of case(s) "
                f"{bad}; such voxels would count as background and give a confident but "
                "meaningless metric. Check the model's weights and that its input is "
                "normalised as in training (SegmentationAdapter(preprocess=...))."
            )
        return mask.numpy().astype(np.uint8), proba.numpy().astype(np.float32, copy=False)
