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
node of the graph. What a saved prediction cannot give is a probability: the
confidence and entropy features of :meth:`SavedPredictions.output_features` are those
of a certain model (1 inside the mask, 0 entropy), and only the volume and component
features vary between cases.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from shiftattr.environment import Environment
from shiftattr.segmentation.adapter import SegmentationAdapter

__all__ = ["SavedPredictions"]

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

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        hit = batch == self.label
        for j in range(batch.shape[0]):  # per case of a batch: the tally's unit
            case = batch[j]
            nonzero = torch.unique(case[case != 0]).tolist()  # the voxels of the masks only
            if bool(hit[j].any()):
                self.beside.update(v for v in nonzero if v != self.label)
            elif len(nonzero) == 1:
                self.other.append(nonzero[0])
        return hit.to(torch.float32)

    def check(self, node: str) -> None:
        """Refuse predictions holding one nonzero value other than ``label`` that is
        no other class of a label map (held beside ``label`` in some case)."""
        wrong = [v for v in self.other if v not in self.beside]
        if wrong:
            raise ValueError(
                f"saved predictions {node!r}: {len(wrong)} case(s) hold the values [0, "
                f"{wrong[0]:g}] but label={self.label}, and no case holds {wrong[0]:g} beside "
                f"label {self.label} as another class would be; set label={wrong[0]:g}, or "
                "binarise the predictions (e.g. a 0/255 export)."
            )

    def __repr__(self) -> str:
        return f"saved predictions == {self.label}"


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
        environment it was cut from) has no prediction node, or a case's prediction holds a single
        nonzero value other than ``label`` that is no other class of a label map (a
        0/255 export, or the wrong ``label``), as the adapter refuses such references.

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

    def fingerprint(self) -> str:
        """Hash of what decides the masks read: the class and the node.

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
        key = ("saved predictions", self.label, self.prediction_node)
        return hashlib.blake2b(repr(key).encode(), digest_size=16).hexdigest()

    def _with_node(self, environment: Any, node: str | None) -> tuple[Any, str]:
        """The environment holding the predictions, and their node.

        A view of some nodes of an environment's cases (what
        :class:`~shiftattr.ratios.ImageStatsRatio` hands its ``extra_features``) reads
        the node from the environment it was cut from, for the same cases."""
        node = self.prediction_node if node is None else node
        self.model.other = []  # a new call: only its cases can be refused
        if not isinstance(environment, Environment) or node in environment:
            return environment, node
        origin = environment._features_origin
        if origin is None or node not in origin[0]:
            raise ValueError(
                f"environment {environment.name!r} has no prediction node {node!r} (nodes: "
                f"{list(environment.nodes)}); load the saved predictions with "
                "load_folder(prediction_column=...) or load_nnunet_raw(predictions=...), "
                "or pass prediction_node= naming the node that holds them."
            )
        whole, idx = origin
        data = {n: environment[n] for n in environment.nodes}
        data[node] = whole[node] if idx is None else whole[node][idx]
        view = Environment(
            data,
            name=environment.name,
            case_ids=environment.case_ids,
            metadata=environment.metadata,
        )
        return view, node

    def _checked(self, out: Any, node: str) -> Any:
        try:
            self.model.check(node)
        except ValueError:
            self.clear_cache()  # so that no refused case is served later unchecked
            raise
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
        data, node = self._with_node(data, image_node)
        return self._checked(super().predict(data, node, label_node=label_node), node)

    def predict_proba(
        self, data: Any, image_node: str | None = None, *, label_node: str | None = "Y"
    ) -> np.ndarray | list[np.ndarray]:
        """The saved predictions as probabilities of 0 or 1 (:meth:`predict`, as float32).

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
        data, node = self._with_node(data, image_node)
        return self._checked(super().predict_proba(data, node, label_node=label_node), node)

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
        environment, node = self._with_node(environment, image_node)
        return self._checked(super().score(environment, node, label_node, metric), node)

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

        A saved prediction holds no probabilities: confidence and entropy are those of a
        certain model (1 inside the mask, 0 entropy); volume and components vary.

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
        environment, node = self._with_node(environment, image_node)
        out = super().output_features(
            environment, node, label_node=label_node, connectivity=connectivity
        )
        return self._checked(out, node)

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
        environment, node = self._with_node(environment, image_node)
        return self._checked(
            super().agreement_features(environment, node, label_node=label_node), node
        )

    def __repr__(self) -> str:
        return (
            f"SavedPredictions(node={self.prediction_node!r}, label={self.label}, "
            f"metric={self._metric_name(self.metric, 0)!r}, cached_cases={len(self._cache)})"
        )
