"""The density-ratio estimator interface shared by every estimator in :mod:`shiftattr.ratios`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

from shiftattr.environment import LazyVolumes

__all__ = ["DensityRatioEstimator", "Features", "check_fitted", "n_cases", "take"]

#: A batch of features: ``{node: array-like with a leading sample axis}``.
Features = Mapping[str, Any]


def n_cases(features: Features) -> int:
    """Number of cases in a features mapping (all nodes must agree).

    Parameters
    ----------
    features : mapping of str to array-like

    Returns
    -------
    int

    Examples
    --------
    >>> n_cases({"a": np.zeros(3), "b": np.zeros((3, 2))})
    3
    """
    if not features:
        raise ValueError("features mapping is empty; pass at least one node.")
    lengths = {k: len(v) for k, v in features.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"features have different numbers of cases: {lengths}")
    return next(iter(lengths.values()))


def check_fitted(estimator: BaseEstimator, attribute: str) -> None:
    """Raise a :class:`~sklearn.exceptions.NotFittedError` naming the estimator if unfitted.

    Parameters
    ----------
    estimator : estimator
        The estimator to check.
    attribute : str
        A fitted attribute (name ending in ``_``) that :meth:`~DensityRatioEstimator.fit`
        sets; its absence means the estimator is not fitted.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``estimator`` has no attribute ``attribute``; the message says to call ``fit``.

    Examples
    --------
    >>> from shiftattr.ratios import ClassifierRatio
    >>> check_fitted(ClassifierRatio(), "classifier_")
    Traceback (most recent call last):
    ...
    sklearn.exceptions.NotFittedError: This ClassifierRatio is not fitted yet; call fit(source_features, target_features) before log_ratio().
    """
    if not hasattr(estimator, attribute):
        raise NotFittedError(
            f"This {type(estimator).__name__} is not fitted yet; call "
            f"fit(source_features, target_features) before log_ratio()."
        )


class DensityRatioEstimator(BaseEstimator, ABC):
    """Estimate ``log p_target(v) / p_source(v)`` for a set of nodes ``v``.

    Subclasses follow scikit-learn conventions: ``__init__`` only stores parameters,
    :meth:`fit` returns ``self``, fitted attributes end with ``_``, and
    :func:`sklearn.base.clone` gives an unfitted copy. To add an estimator, implement
    :meth:`fit` and :meth:`log_ratio`; the engine adds cross-fitting and the
    conditional composition ``log r(v_i, pa_i) - log r(pa_i)`` on top.

    Examples
    --------
    A ratio that is known in closed form (a toy: unit-variance Gaussians whose mean
    moves by ``delta``):

    >>> class ShiftedGaussian(DensityRatioEstimator):
    ...     def __init__(self, delta=1.0):
    ...         self.delta = delta
    ...     def fit(self, source_features, target_features):
    ...         self.fitted_ = True
    ...         return self
    ...     def log_ratio(self, features):
    ...         x = np.asarray(features["x"], dtype=float)
    ...         return self.delta * x - self.delta**2 / 2
    >>> est = ShiftedGaussian(0.5).fit({"x": [0.0]}, {"x": [1.0]})
    >>> est.log_ratio({"x": [0.0, 1.0]}).round(3)
    array([-0.125,  0.375])
    """

    #: True when the estimator consumes image-like nodes (used to pick estimators
    #: for parent sets that contain images).
    handles_images: bool = False

    #: The methods an overriding :meth:`crossfit_log_ratio` stands in for (e.g.
    #: ``("fit", "log_ratio")``): a subclass that changes any of them is fitted per fold
    #: again, so the joint route never bypasses its changes.
    _joint_methods: tuple[str, ...] = ("fit", "log_ratio")

    @property
    def joint_crossfit(self) -> bool:
        """Whether the engine should call :meth:`crossfit_log_ratio` once per node set.

        True when a class overrides :meth:`crossfit_log_ratio` (all the folds at once,
        more cheaply than one independent fit per fold: shared preprocessing, one model
        choice on the pooled out-of-fold predictions) and the estimator still uses that
        class's version of every method in ``_joint_methods``. A subclass can also set
        ``joint_crossfit = True`` outright.

        Returns
        -------
        bool

        Examples
        --------
        >>> from shiftattr.ratios import ClassifierRatio
        >>> ClassifierRatio().joint_crossfit
        True
        >>> class Shifted(ClassifierRatio):
        ...     def log_ratio(self, features):
        ...         return super().log_ratio(features) + 1.0
        >>> Shifted().joint_crossfit          # its log_ratio must not be bypassed
        False
        """
        cls = type(self)
        owner = next(c for c in cls.__mro__ if "crossfit_log_ratio" in vars(c))
        if owner is DensityRatioEstimator:
            return False
        return all(getattr(cls, name) is getattr(owner, name) for name in owner._joint_methods)

    @abstractmethod
    def fit(self, source_features: Features, target_features: Features) -> DensityRatioEstimator:
        """Fit on samples from the source (label 0) and the target (label 1).

        Parameters
        ----------
        source_features, target_features : mapping of str to array-like
            The same nodes in both, one entry per case along axis 0.

        Returns
        -------
        self

        Examples
        --------
        With :class:`~shiftattr.ratios.ClassifierRatio`, one implementation:

        >>> from sklearn.linear_model import LogisticRegression
        >>> from shiftattr.ratios import ClassifierRatio
        >>> rng = np.random.default_rng(0)
        >>> src, tgt = {"x": rng.normal(0, 1, 300)}, {"x": rng.normal(1, 1, 300)}
        >>> est = ClassifierRatio(LogisticRegression(), calibration="none")
        >>> est.fit(src, tgt) is est
        True
        >>> est.nodes_
        ('x',)
        """

    @abstractmethod
    def log_ratio(self, features: Features) -> np.ndarray:
        """Natural log of ``p_target / p_source`` at each case.

        Parameters
        ----------
        features : mapping of str to array-like
            The nodes the estimator was fitted on, one entry per case along axis 0.

        Returns
        -------
        numpy.ndarray of shape (n_cases,)

        Examples
        --------
        With :class:`~shiftattr.ratios.ClassifierRatio`, one implementation (the true
        log-ratio of ``N(1, 1)`` to ``N(0, 1)`` is ``x - 0.5``):

        >>> from sklearn.linear_model import LogisticRegression
        >>> from shiftattr.ratios import ClassifierRatio
        >>> rng = np.random.default_rng(0)
        >>> src, tgt = {"x": rng.normal(0, 1, 300)}, {"x": rng.normal(1, 1, 300)}
        >>> est = ClassifierRatio(LogisticRegression(), calibration="none").fit(src, tgt)
        >>> est.log_ratio({"x": np.array([0.0, 1.0])}).round(1)
        array([-0.5,  0.5])
        """

    def warm_cache(self, features: Features, progress: bool = False) -> None:
        """Compute the per-case summaries this estimator reads, into the features' cache.

        Called by :class:`~shiftattr.ratios.CrossFittedRatios` in the main process
        before any fit of an estimator with :attr:`joint_crossfit` or
        :attr:`handles_images` (an image estimator fitted per fold may check every
        case here, before its first fold trains): the environments
        that worker processes receive (``n_jobs != 1``), and every refit bootstrap
        replicate drawn from them, then carry the summaries instead of recomputing them
        (see
        :func:`~shiftattr.environment.cached_per_case`). The default does nothing; an
        estimator that summarises each case through ``cached_per_case`` overrides it.

        Parameters
        ----------
        features : mapping of str to array-like
            All the cases of one environment, as :meth:`Environment.features` returns
            them.
        progress : bool, default False
            Show a progress bar over the cases (summaries of large scans take minutes).

        Examples
        --------
        >>> from shiftattr.ratios import ClassifierRatio
        >>> ClassifierRatio().warm_cache({"x": np.zeros(3)}) is None   # nothing to cache
        True
        """
        return None

    def fit_report(self) -> dict[str, Any]:
        """What the last fit says about itself, for the result's diagnostics.

        :class:`~shiftattr.ratios.CrossFittedRatios` collects it after each fold's fit
        into ``Attribution.diagnostics["ratio_fits"]`` (by node set, one entry per
        fold, or one for all folds where :attr:`joint_crossfit` fits them in one call). The default reports nothing; an estimator whose training can go wrong
        unseen (a network stopped at its untrained weights) overrides it.

        Returns
        -------
        dict
            Plain values (numbers, strings, None).

        Examples
        --------
        >>> from shiftattr.ratios import ClassifierRatio
        >>> ClassifierRatio().fit_report()
        {}
        """
        return {}

    def ratio_features(self, features: Features) -> np.ndarray | None:
        """The per-case feature matrix this estimator classifies, if it has one.

        :class:`~shiftattr.ratios.CrossFittedRatios` with ``conditional="offset"`` fits a
        mechanism's conditional ratio on these features directly
        (:mod:`shiftattr.ratios.offset`). The default, ``None``, keeps the difference of
        two fitted log-ratios for estimators without such a matrix (a CNN on voxels).

        Parameters
        ----------
        features : mapping of str to array-like

        Returns
        -------
        ndarray of shape (N, d) or None

        Examples
        --------
        >>> from shiftattr.ratios import ClassifierRatio
        >>> ClassifierRatio().ratio_features({"a": np.zeros(3), "b": np.ones((3, 2))}).shape
        (3, 3)
        """
        return None

    def node_features(self, features: Features, node: str) -> np.ndarray | None:
        """The per-case feature matrix of one node of ``features``, if there is one.

        :class:`~shiftattr.ratios.CrossFittedRatios` with ``conditional="offset_child"``
        fits a mechanism's conditional ratio on its own node's features, the parents'
        log-ratio as the offset. The default is :meth:`ratio_features` of that node's
        values alone; an estimator with features that read other nodes of the set (the
        image statistics' ``extra_features``) overrides it.

        Parameters
        ----------
        features : mapping of str to array-like
            The mechanism's joint node set.
        node : str
            The mechanism's node.

        Returns
        -------
        ndarray of shape (N, d) or None

        Examples
        --------
        >>> from shiftattr.ratios import ClassifierRatio
        >>> f = {"a": np.zeros(3), "b": np.ones((3, 2))}
        >>> ClassifierRatio().node_features(f, "b").shape
        (3, 2)
        """
        return self.ratio_features({node: features[node]})

    def crossfit_log_ratio(
        self,
        source_features: Features,
        target_features: Features,
        source_folds: np.ndarray,
        target_folds: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-fold log-ratios at every source and target case.

        Each case's log-ratio comes from a model fitted without the cases of its fold.
        The default fits an unfitted clone per fold; estimators with ``joint_crossfit``
        override it with something cheaper that keeps the fitted model out of fold (a
        few pooled parameters, such as a calibration, may use every case: say so).

        Parameters
        ----------
        source_features, target_features : mapping of str to array-like
            All the cases of each environment, one entry per case along axis 0.
        source_folds, target_folds : ndarray of int
            Fold label per source and per target case (the same labels in both).

        Returns
        -------
        tuple of ndarray
            ``(log_ratio_source, log_ratio_target)``, one value per case.

        Examples
        --------
        >>> from sklearn.linear_model import LogisticRegression
        >>> from shiftattr.ratios import ClassifierRatio
        >>> rng = np.random.default_rng(0)
        >>> src, tgt = {"x": rng.normal(0, 1, 200)}, {"x": rng.normal(1, 1, 200)}
        >>> folds = np.arange(200) % 2
        >>> est = ClassifierRatio(LogisticRegression(), calibration="none")
        >>> lr_s, lr_t = est.crossfit_log_ratio(src, tgt, folds, folds)
        >>> lr_s.shape, bool(lr_s.mean() < 0 < lr_t.mean())
        ((200,), True)
        """
        source_folds, target_folds = np.asarray(source_folds), np.asarray(target_folds)
        out_s = np.empty(len(source_folds))
        out_t = np.empty(len(target_folds))
        for f in np.unique(np.r_[source_folds, target_folds]):
            train_s, train_t = source_folds != f, target_folds != f
            est = clone(self).fit(
                take(source_features, np.flatnonzero(train_s)),
                take(target_features, np.flatnonzero(train_t)),
            )
            if not train_s.all():
                out_s[~train_s] = est.log_ratio(take(source_features, np.flatnonzero(~train_s)))
            if not train_t.all():
                out_t[~train_t] = est.log_ratio(take(target_features, np.flatnonzero(~train_t)))
        return out_s, out_t


def take(features: Features, indices: np.ndarray) -> dict[str, Any]:
    """The cases ``indices`` of every node (arrays and lazy views alike).

    Parameters
    ----------
    features : mapping of str to array-like
    indices : ndarray of int

    Returns
    -------
    dict

    Examples
    --------
    >>> take({"x": np.arange(4)}, np.array([0, 2]))["x"].tolist()
    [0, 2]
    """
    idx = np.asarray(indices, dtype=int)
    return {k: _take_one(v, idx) for k, v in features.items()}


def _take_one(values: Any, idx: np.ndarray) -> Any:
    if isinstance(values, (list, tuple)):
        return [values[i] for i in idx]
    if isinstance(values, (np.ndarray, LazyVolumes)):
        return values[idx]
    return np.asarray(values)[idx]  # e.g. a pandas Series: by position, not by label
