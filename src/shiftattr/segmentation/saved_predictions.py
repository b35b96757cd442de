"""Scoring a model's saved predictions instead of running the model.

Many segmentation pipelines predict with their own tools: ``nnUNetv2_predict`` resamples
each case to the model's spacing, runs the network with mirroring and sliding windows,
resamples back and post-processes. A torch module wrapped in
:class:`~shiftattr.segmentation.SegmentationAdapter` reproduces none of those steps,
so its Dice is not the Dice the pipeline reports. When the predictions are on disk (one
mask or label map per case, on the grid of the case's images), the NIfTI loaders put
them in a node of the environment (``load_folder(prediction_column=...)``,
``load_nnunet_raw(predictions=...)``; node ``"P"``), and :class:`SavedPredictions`
scores that node: the metric, the output features and the masks' agreement come from
the saved predictions, through the adapter's code, with its checks and cache.

The attribution itself is unchanged: the density ratios still compare the images
(``X``) and the masks (``Y``) of the two environments, and the prediction node is no
node of the graph. What a saved mask cannot give is a probability. When the pipeline
saved its probabilities too (``nnUNetv2_predict --save_probabilities``; the loaders'
``probabilities=True`` / ``probability_column=`` make node ``"P_proba"``, which
``SavedPredictions(probability_node="P_proba")`` reads), the confidence and entropy
features of :meth:`SavedPredictions.output_features` are the model's; without them they are those of a certain model (1 inside the mask, 0
entropy), and only the volume and component features vary between cases. The masks
scored are always the saved ones (post-processed), never the probabilities
thresholded.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from shiftattr.environment import Environment, LazyVolumes, case_key
from shiftattr.segmentation.adapter import SegmentationAdapter, _user_stacklevel
from shiftattr.segmentation.probability_maps import check_probabilities

__all__ = ["MIN_PROBABILITY_CONTRAST", "SavedPredictions"]

#: The least difference between a case's mean saved probability inside its saved mask
#: and outside it. A model's mask holds its likely voxels (a post-processed one too:
#: removed components and filled holes move the means little), so for a healthy model
#: the difference is large (at least 0.57 over the 2,977 cases of section 5f of
#: ``benchmarks/RESULTS.md``). Where most cases of a call fall short, the probabilities are
#: refused (the background channel, another class); where a few do, they are named in a
#: warning and counted (``low_contrast_cases_``): a model unsure of an unusual case, or a
#: file mix-up, for the user to look at. Cases whose mask is empty or fills the volume
#: are not judged.
MIN_PROBABILITY_CONTRAST = 0.1

#: Options of :class:`~shiftattr.segmentation.SegmentationAdapter` that act on a model's
#: input or output, which a saved prediction does not have.
_MODEL_OPTIONS = (
    "activation",
    "threshold",
    "channel",
    "patch_size",
    "overlap",
    "blending",
    "sigma_scale",
    "preprocess",
    "device",
    "num_threads",
)


class _LabelOf:
    """The "model" of saved predictions: the label map's class of interest, as a
    probability of 0 or 1 (one channel). It tallies, as the adapter does for the
    references, the other classes held beside ``label`` and the cases holding a single
    nonzero value other than ``label`` (a 0/255 export, or the wrong ``label``)."""

    def __init__(self, label: int) -> None:
        self.label = int(label)
        # classes seen beside label, in any case read so far: they excuse a case holding
        # only such a class (a label map without the class of interest)
        self.beside: set[float] = set()
        # the cases read in the current call that hold one nonzero value other than label
        self.other: list[float] = []
        # per call: whether channel 1 holds saved probabilities (channel 0 the labels),
        # the spatial axes then, and per judged case (case id, contrast of the
        # probabilities between inside and outside the mask, the same with their axes
        # reversed where the grid allows, else None)
        self.paired = False
        self.spatial_dims: int | None = None
        self.contrasts: list[tuple[str, float, float | None]] = []

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        labels = batch[:, :1] if self.paired else batch
        hit = labels == self.label
        for j in range(batch.shape[0]):  # per case of a batch: the tally's unit
            case = labels[j]
            nonzero = torch.unique(case[case != 0]).tolist()  # the voxels of the masks only
            if bool(hit[j].any()):
                self.beside.update(v for v in nonzero if v != self.label)
            elif len(nonzero) == 1:
                self.other.append(nonzero[0])
        if not self.paired:
            return hit.to(torch.float32)
        return torch.cat([hit.to(torch.float32), batch[:, 1:]], dim=1)

    def check(self, node: str) -> list[str]:
        """Refuse predictions holding one nonzero value other than ``label`` that is
        no other class of a label map (held beside ``label`` in some case), and saved
        probabilities that do not fit the saved masks; return the cases whose masks
        hold their probabilities less than :data:`MIN_PROBABILITY_CONTRAST` (a few)."""
        low = self._check_contrasts(node)
        wrong = [v for v in self.other if v not in self.beside]
        if wrong:
            raise ValueError(
                f"saved predictions {node!r}: {len(wrong)} case(s) hold the values [0, "
                f"{wrong[0]:g}] but label={self.label}, and no case holds {wrong[0]:g} beside "
                f"label {self.label} as another class would be; set label={wrong[0]:g}, or "
                "binarise the predictions (e.g. a 0/255 export)."
            )
        return low

    def _check_contrasts(self, node: str) -> list[str]:
        """Refuse probabilities that most cases' masks do not hold, or that fit the masks
        better with their axes reversed; return the few cases whose masks do not hold them."""
        if not self.contrasts:
            return []
        reversible = [(d, r) for _, d, r in self.contrasts if r is not None]
        # the masks hold the probabilities reversed, and clearly better than as read
        better = sum(
            r >= MIN_PROBABILITY_CONTRAST and r > d + MIN_PROBABILITY_CONTRAST
            for d, r in reversible
        )
        if reversible and 2 * better > len(reversible):
            raise ValueError(
                f"saved predictions {node!r}: in {better} of {len(reversible)} cases the "
                "saved probabilities fit the saved masks better with their axes reversed. "
                "nnU-Net's .npz is read in reverse axis order, as its SimpleITK and Nibabel "
                "readers write it: were these written otherwise (transposed, or by "
                "NibabelIOWithReorient)? Pass probability_node=None to score the masks "
                "without them."
            )
        low = [(c, d) for c, d, _ in self.contrasts if d < MIN_PROBABILITY_CONTRAST]
        if 2 * len(low) > len(self.contrasts):
            shown = ", ".join(f"{c!r} ({d:+.3f})" for c, d in low[:5])
            raise ValueError(
                f"saved predictions {node!r}: in {len(low)} of the {len(self.contrasts)} "
                "cases read whose masks are neither empty nor full, the saved probabilities "
                f"average less than {MIN_PROBABILITY_CONTRAST} higher inside the saved mask "
                f"than outside it (e.g. {shown}). A model's masks hold its likely voxels: "
                "are they the probabilities of the class the masks hold (not the background "
                "channel), of the same model and cases? Pass probability_node=None to score "
                "the masks without them."
            )
        return [c for c, _ in low]

    def __repr__(self) -> str:
        return f"saved predictions == {self.label}"


def _contrast(mask: torch.Tensor, proba: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per case of a batch, the mean probability inside the mask less that outside it,
    and whether the case can be judged (its mask neither empty nor full)."""
    n_in = mask.flatten(1).sum(1, dtype=torch.float64)
    n_out = mask[0].numel() - n_in
    s_in = (proba * mask).flatten(1).sum(1, dtype=torch.float64)
    s_out = proba.flatten(1).sum(1, dtype=torch.float64) - s_in
    return s_in / n_in.clamp(min=1) - s_out / n_out.clamp(min=1), (n_in > 0) & (n_out > 0)


class _WithProbabilities:
    """A ``LazyVolumes`` loader: case ``j``'s saved label map and saved probability,
    stacked as two channels ``(2, *spatial)``, keyed by both nodes' keys."""

    def __init__(
        self, labels: Any, proba: Any, spatial_dims: int, node: str, case_ids: Sequence[str]
    ) -> None:
        self.labels, self.proba = labels, proba
        self.spatial_dims, self.node, self.case_ids = spatial_dims, node, list(case_ids)

    def __len__(self) -> int:
        return len(self.labels)

    def item_key(self, j: int) -> tuple:
        return ("with probabilities", case_key(self.labels, j), case_key(self.proba, j))

    def _spatial(self, a: np.ndarray) -> np.ndarray:
        # a channel-first case (1, *spatial), as MONAI stores masks, drops its channel
        sd = self.spatial_dims
        return a.reshape(a.shape[1:]) if a.ndim == sd + 1 and a.shape[0] == 1 else a

    def __call__(self, j: int) -> np.ndarray:
        labels = self._spatial(np.asarray(self.labels[j]))
        proba = self._spatial(np.asarray(self.proba[j], dtype=np.float32))
        if labels.shape != proba.shape:
            raise ValueError(
                f"case {self.case_ids[j]!r}: the saved prediction has shape {labels.shape} "
                f"but its saved probabilities {proba.shape}; they must share one grid."
            )
        proba = check_probabilities(proba, f"node {self.node!r}", self.case_ids[j])
        return np.stack([labels.astype(np.float32), proba])


class SavedPredictions(SegmentationAdapter):
    """Per-case metrics and features from predictions saved on disk, not from a model.

    A :class:`~shiftattr.segmentation.SegmentationAdapter` whose "model" reads node
    ``prediction_node`` of the environment (the saved masks or label maps) and keeps
    the class ``label``. :meth:`score`, :meth:`output_features`,
    :meth:`agreement_features`, :meth:`predict` and :meth:`predict_proba` read that
    node by default; the reference masks are ``label_node`` as for the adapter.

    Parameters
    ----------
    metric : str or callable, default "dice"
        As for :class:`~shiftattr.segmentation.SegmentationAdapter`.
    prediction_node : str, default "P"
        The node holding the saved predictions (what the NIfTI loaders' ``prediction_column``
        or ``predictions`` make).
    probability_node : str or None, default None
        The node holding the saved probabilities of class ``label`` (``"P_proba"``, what
        the loaders' ``probability_column`` or ``probabilities=True`` make), read beside
        ``prediction_node``: the output features' confidence and entropy are then the
        model's. Every environment scored must hold it (a ``ValueError`` names one that
        does not), so that the features mean the same on both sides. None reads none.
        The masks scored stay the saved ones. Probabilities that most cases' masks do
        not hold, or that fit them better with their axes reversed, are refused; cases
        whose masks do not hold theirs, when they are few, are named in a warning and
        listed in ``low_contrast_cases_`` (see :data:`MIN_PROBABILITY_CONTRAST`).
    label : int, default 1
        The class of interest, in the predictions and in the reference masks. Environments
        loaded with ``foreground=k`` hold binary masks of that class already: keep 1.
    **kwargs
        Other options of the adapter: ``metric_params``, ``spacing``, ``spatial_dims``,
        ``progress``, ``n_jobs``, ``cache``, ``cache_max_bytes``, ``batch_size``. The
        options that act on a model's input or output (``activation``, ``threshold``,
        ``channel``, ``patch_size``, ``overlap``, ``blending``, ``sigma_scale``,
        ``preprocess``, ``device``, ``num_threads``) are refused: a saved prediction
        has been thresholded and post-processed already.

    Raises
    ------
    TypeError
        If an option that acts on a model is passed.
    ValueError
        When scoring: if the environment (or, for a view of some of its nodes, the
        environment it was cut from) has no prediction node (or no probability node
        named), a case's prediction holds a single nonzero value other than ``label``
        that is no other class of a label map (a 0/255 export, or the wrong ``label``),
        as the adapter refuses such references, or saved probabilities are not finite,
        not in [0, 1], not higher inside most masks than around them (by
        :data:`MIN_PROBABILITY_CONTRAST`: the background channel, another class), or a
        better fit with their axes reversed.

    See Also
    --------
    shiftattr.segmentation.load_folder : ``prediction_column=`` reads them from a manifest.
    shiftattr.segmentation.load_nnunet_raw : ``predictions=`` reads ``nnUNetv2_predict``'s folder.

    Examples
    --------
    >>> import numpy as np
    >>> from shiftattr import Environment
    >>> y = np.zeros((2, 4, 4), dtype="uint8"); y[:, :2, :2] = 1
    >>> p = np.zeros((2, 4, 4), dtype="uint8"); p[0, :2, :2] = 1; p[1, :2, :] = 1
    >>> env = Environment({"X": np.zeros((2, 4, 4), "float32"), "Y": y, "P": p})
    >>> scorer = SavedPredictions("dice", progress=False)
    >>> scorer.score(env).round(4)
    array([1.    , 0.6667])
    >>> scorer.output_features(env)[:, 0].round(3)          # log1p of the predicted volume
    array([1.609, 2.197])

    A label map, scored on class 2:

    >>> labels = np.where(p == 1, 2, 0).astype("uint8"); refs = 2 * y
    >>> env2 = Environment({"X": env["X"], "Y": refs, "P": labels})
    >>> SavedPredictions("dice", label=2, progress=False).score(env2).round(4)
    array([1.    , 0.6667])
    """

    def __init__(
        self,
        metric: str | Callable[..., float] = "dice",
        *,
        prediction_node: str = "P",
        probability_node: str | None = None,
        label: int = 1,
        **kwargs: Any,
    ) -> None:
        refused = sorted(set(kwargs) & set(_MODEL_OPTIONS))
        if refused:
            raise TypeError(
                f"SavedPredictions scores predictions already made: {refused} act on a "
                "model's input or output, which saved predictions do not have. Leave them "
                "out (threshold and post-process before saving, or use SegmentationAdapter "
                "with the model)."
            )
        super().__init__(_LabelOf(label), metric, activation="none", label=label, **kwargs)
        self.prediction_node = str(prediction_node)
        self.probability_node = None if probability_node is None else str(probability_node)
        self.low_contrast_cases_: list[str] = []  # warned of: masks not holding their probabilities

    def fingerprint(self) -> str:
        """Hash of what decides the masks read: the class and the nodes.

        Returns
        -------
        str
            Hex digest; part of every cache key, the same in every process.

        Examples
        --------
        >>> SavedPredictions(label=2).fingerprint() == SavedPredictions(label=2).fingerprint()
        True
        >>> SavedPredictions().fingerprint() == SavedPredictions(prediction_node="Q").fingerprint()
        False
        """
        key = ("saved predictions", self.label, self.prediction_node, self.probability_node)
        return hashlib.blake2b(repr(key).encode(), digest_size=16).hexdigest()

    def _with_node(self, environment: Any, node: str | None) -> tuple[Any, str]:
        """The environment holding the predictions, and their node.

        A view of some nodes of an environment's cases (what
        :class:`~shiftattr.ratios.ImageStatsRatio` hands its ``extra_features``) reads
        the nodes from the environment it was cut from, for the same cases. With saved
        probabilities, the node returned holds each case's label map and probability
        as two channels."""
        node = self.prediction_node if node is None else node
        model = self.model
        model.other = []  # a new call: only its cases can be refused
        model.contrasts = []
        model.paired, model.spatial_dims = False, None
        if not isinstance(environment, Environment):
            return environment, node
        whole, idx = environment._features_origin or (None, None)

        def column(name: str) -> Any:
            if name in environment:
                return environment[name]
            if whole is None or name not in whole:
                return None
            return whole[name] if idx is None else whole[name][idx]

        # the probabilities belong to the predictions' node, not to another one read
        proba_node = self.probability_node if node == self.prediction_node else None
        if node in environment and proba_node is None:
            return environment, node
        labels = column(node)
        if labels is None:
            raise ValueError(
                f"environment {environment.name!r} has no prediction node {node!r} (nodes: "
                f"{list(environment.nodes)}); load the saved predictions with "
                "load_folder(prediction_column=...) or load_nnunet_raw(predictions=...), "
                "or pass prediction_node= naming the node that holds them."
            )
        data = {n: environment[n] for n in environment.nodes}
        data[node] = labels
        view = Environment(
            data,
            name=environment.name,
            case_ids=environment.case_ids,
            metadata=environment.metadata,
        )
        if proba_node is None:
            return view, node
        proba = column(proba_node)
        if proba is None:
            raise ValueError(
                f"environment {environment.name!r} has no probability node {proba_node!r} "
                f"(nodes: {list(environment.nodes)}); load the saved probabilities with "
                "load_folder(probability_column=...) or load_nnunet_raw(probabilities=True), "
                "or pass probability_node=None to score the masks without them."
            )
        sd = self.spatial_dims or self._label_spatial_dims(view, node)
        if sd is None:  # cases of different shapes: channel-first if each is (1, ...)
            shapes = getattr(labels, "item_shapes", None)
            if shapes is None:  # read the first case only, judged alone
                first = np.shape(labels[0]) if len(labels) else (1, 1, 1)
                shapes = [first] if len(first) == 4 else [(0, *first)]
            ndims = {len(sh) for sh in shapes}
            nd = max(ndims)
            leading_one = all(sh[0] == 1 for sh in shapes)
            sd = nd - 1 if len(ndims) == 1 and nd in (3, 4) and leading_one else nd
        shape = view.item_shape(node)
        loader = _WithProbabilities(labels, proba, sd, proba_node, environment.case_ids)
        data[node] = LazyVolumes(
            loader,
            len(loader),
            shape=None if shape is None else (2, *shape[len(shape) - sd :]),
            dtype=np.float32,
        )
        for values in (labels, proba):  # their keys may name a loader by its id
            if isinstance(values, LazyVolumes):
                self._pinned[id(values._loader)] = values._loader
        model.paired, model.spatial_dims = True, sd
        return Environment(
            data,
            name=environment.name,
            case_ids=environment.case_ids,
            metadata=environment.metadata,
        ), node

    def _postprocess(
        self, out: torch.Tensor, spatial: tuple[int, ...], ids: list[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        if not self.model.paired:
            return super()._postprocess(out, spatial, ids)
        out = out.detach().to("cpu", torch.float32)  # (B, 2, *spatial): mask, probability
        mask, proba = out[:, 0] > 0.5, out[:, 1]
        flip = tuple(range(proba.ndim - 1, 0, -1))
        reversible = tuple(proba.shape[1:]) == tuple(proba.shape[:0:-1]) and len(flip) > 1
        contrast, judged = _contrast(mask, proba)
        reversed_contrast = _contrast(mask, proba.permute(0, *flip))[0] if reversible else None
        self.model.contrasts += [
            (
                ids[j],
                float(contrast[j]),
                None if reversed_contrast is None else float(reversed_contrast[j]),
            )
            for j in torch.nonzero(judged).ravel().tolist()
        ]
        return mask.numpy().astype(np.uint8), np.ascontiguousarray(proba.numpy())

    def _read(
        self, method: Callable[..., Any], data: Any, node: str | None, *args: Any, **kwargs: Any
    ) -> Any:
        """The adapter's ``method`` on the environment holding the predictions (and
        probabilities), then the check of the cases it read; if it fails or is refused,
        the cache is dropped, so that no case it stored is served later unchecked."""
        data, node = self._with_node(data, node)
        try:
            out = method(data, node, *args, **kwargs)
            low = self.model.check(node)
        except BaseException:
            self.clear_cache()
            raise
        if low:
            self.low_contrast_cases_ += [c for c in low if c not in self.low_contrast_cases_]
            warnings.warn(
                f"saved predictions {node!r}: the masks of {len(low)} case(s) hold their saved "
                f"probabilities less than {MIN_PROBABILITY_CONTRAST} above the rest of the "
                f"volume: {low[:10]}. A model unsure of an unusual case, or a file mix-up: "
                "look at them (listed in low_contrast_cases_).",
                UserWarning,
                stacklevel=_user_stacklevel(),
            )
        return out

    def predict(
        self, data: Any, image_node: str | None = None, *, label_node: str | None = "Y"
    ) -> np.ndarray | list[np.ndarray]:
        """The saved predictions' binary masks of ``label``
        (:meth:`SegmentationAdapter.predict`, reading ``prediction_node``).

        Parameters
        ----------
        data : Environment, numpy.ndarray or LazyVolumes
            An environment (its prediction node is read), or the predictions themselves.
        image_node : str, optional
            The node to read instead of ``prediction_node``.
        label_node : str or None, default "Y"
            See :meth:`SegmentationAdapter.predict`.

        Returns
        -------
        numpy.ndarray
            uint8 ``(N, *spatial)``; a list of arrays if cases differ in shape.

        Examples
        --------
        >>> SavedPredictions(label=2, progress=False).predict(np.array([[0, 2, 1]])).tolist()
        [[0, 1, 0]]
        """
        return self._read(super().predict, data, image_node, label_node=label_node)

    def predict_proba(
        self, data: Any, image_node: str | None = None, *, label_node: str | None = "Y"
    ) -> np.ndarray | list[np.ndarray]:
        """The saved probabilities of ``label`` when the environment holds them
        (``probability_node``), else the saved masks as probabilities of 0 or 1.

        Parameters
        ----------
        data : Environment, numpy.ndarray or LazyVolumes
            See :meth:`predict`.
        image_node : str, optional
            The node to read instead of ``prediction_node``.
        label_node : str or None, default "Y"
            See :meth:`SegmentationAdapter.predict`.

        Returns
        -------
        numpy.ndarray
            float32 ``(N, *spatial)``; a list of arrays if cases differ in shape.

        Examples
        --------
        >>> SavedPredictions(progress=False).predict_proba(np.array([[0, 1]])).tolist()
        [[0.0, 1.0]]
        """
        return self._read(super().predict_proba, data, image_node, label_node=label_node)

    def score(
        self,
        environment: Environment,
        image_node: str | None = None,
        label_node: str = "Y",
        metric: str | Callable[..., float] | Sequence[str | Callable[..., float]] | None = None,
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Per-case metric of the saved predictions against ``label_node``
        (:meth:`SegmentationAdapter.score`, reading ``prediction_node``).

        Parameters
        ----------
        environment : Environment
            Holds the predictions (``prediction_node``) and the reference masks.
        image_node : str, optional
            The node to read instead of ``prediction_node``.
        label_node : str, default "Y"
            Node holding the reference masks.
        metric : str, callable or list of them, optional
            Overrides the metric; a list returns a dict.

        Returns
        -------
        numpy.ndarray or dict
            float64 ``(N,)`` in case order; ``{metric_name: values}`` for a list.

        Raises
        ------
        ValueError
            If the environment has no prediction node (naming the loaders' options), or
            as :meth:`SegmentationAdapter.score`.

        Examples
        --------
        >>> from shiftattr import Environment
        >>> env = Environment({"Y": np.array([[[0, 1, 1]]]), "P": np.array([[[0, 1, 0]]])})
        >>> SavedPredictions(progress=False).score(env).round(4)
        array([0.6667])
        """
        return self._read(super().score, environment, image_node, label_node, metric)

    def output_features(
        self,
        environment: Environment,
        image_node: str | None = None,
        *,
        label_node: str | None = "Y",
        connectivity: int = 1,
    ) -> np.ndarray:
        """Per-case summary features of the saved predictions
        (:meth:`SegmentationAdapter.output_features`, reading ``prediction_node``).

        The masks are the saved ones; confidence and entropy come from the saved
        probabilities (``probability_node``), or without them are those of a certain
        model (1 inside the mask, 0 entropy).

        Parameters
        ----------
        environment : Environment
            Holds the predictions.
        image_node : str, optional
            The node to read instead of ``prediction_node``.
        label_node : str or None, default "Y"
            See :meth:`SegmentationAdapter.output_features`.
        connectivity : int, default 1
            See :func:`~shiftattr.segmentation.mask_features`.

        Returns
        -------
        numpy.ndarray
            float64 ``(N, len(output_feature_names))``.

        Examples
        --------
        >>> from shiftattr import Environment
        >>> env = Environment({"P": np.array([[[1, 1], [0, 0]]], dtype="uint8")})
        >>> SavedPredictions(progress=False, spatial_dims=2).output_features(env).shape
        (1, 8)
        """
        return self._read(
            super().output_features,
            environment,
            image_node,
            label_node=label_node,
            connectivity=connectivity,
        )

    def agreement_features(
        self, environment: Environment, image_node: str | None = None, *, label_node: str = "Y"
    ) -> np.ndarray:
        """How the reference masks agree with the saved predictions
        (:meth:`SegmentationAdapter.agreement_features`, reading ``prediction_node``).

        Parameters
        ----------
        environment : Environment
            Holds the predictions and the reference masks.
        image_node : str, optional
            The node to read instead of ``prediction_node``.
        label_node : str, default "Y"
            Node holding the reference masks.

        Returns
        -------
        numpy.ndarray
            float64 ``(N, 3)``.

        Examples
        --------
        >>> from shiftattr import Environment
        >>> env = Environment({"Y": np.array([[[1, 1]]]), "P": np.array([[[1, 1]]])})
        >>> SavedPredictions(progress=False).agreement_features(env).round(3)  # 2 / (2 + 1)
        array([[0.   , 0.667, 0.667]])
        """
        return self._read(
            super().agreement_features, environment, image_node, label_node=label_node
        )

    def __repr__(self) -> str:
        return (
            f"SavedPredictions(node={self.prediction_node!r}, label={self.label}, "
            f"metric={self._metric_name(self.metric, 0)!r}, cached_cases={len(self._cache)})"
        )
