"""K-fold cross-fitting of density ratios and their composition into mechanism ratios.

For every distinct node set the engine needs (a mechanism's ``{node} ∪ parents`` and
its ``parents``), one estimator is fitted per fold on the other folds of source and
target together; every case's log-ratio comes from a model that did not see it.
Estimators with ``joint_crossfit`` (the classifier and image-statistics ratios) do all
the folds of a node set in one call, sharing their preprocessing and model choice; their
classifiers stay out of fold, while the choice among candidates and the two Platt
parameters are fitted on the pooled out-of-fold log-odds of all the cases.
Mechanism ``i``'s conditional log-ratio is then
``log r(v_i, pa_i) - log r(pa_i)`` (a root's is its marginal ratio). Each node set is
fitted once and reused by every mechanism and every coalition.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from tqdm.auto import tqdm

from shiftattr._clone import derived_seed, with_seed
from shiftattr.environment import Environment
from shiftattr.graph import CausalGraph
from shiftattr.ratios._tabular import image_estimator_hint
from shiftattr.ratios.base import DensityRatioEstimator
from shiftattr.ratios.classifier import ClassifierRatio
from shiftattr.ratios.offset import crossfit_conditional
from shiftattr.ratios.shared_cases import shared_case_groups

__all__ = [
    "CONDITIONAL_RATIOS",
    "CrossFittedRatios",
    "MechanismRatios",
    "assign_folds",
    "choose_estimator",
    "rank_auc",
]


#: How a mechanism's conditional ratio can be formed (``CrossFittedRatios(conditional=...)``,
#: ``attribute(conditional_ratios=...)``).
CONDITIONAL_RATIOS = ("difference", "offset", "offset_child")


def rank_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels``, from mid-ranks.

    The Mann-Whitney form, ``(sum of the positives' ranks - n1 (n1 + 1) / 2) / (n1 n0)``
    with tied scores sharing their mean rank: equal to
    ``sklearn.metrics.roc_auc_score`` (whose input checks cost more than the sort on a
    few thousand cases, once per node set and fit).

    Parameters
    ----------
    labels : ndarray of shape (N,)
        0 (source) or 1 (target); both must occur.
    scores : ndarray of shape (N,)

    Returns
    -------
    float

    Examples
    --------
    >>> rank_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    >>> rank_auc(np.array([0, 1]), np.array([1.0, 1.0]))  # a tie counts one half
    0.5
    """
    from scipy.stats import rankdata

    pos = np.asarray(labels) == 1
    n1 = int(pos.sum())
    n0 = pos.size - n1
    if n1 == 0 or n0 == 0:
        raise ValueError("rank_auc needs cases of both environments (labels 0 and 1).")
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def assign_folds(
    labels: np.ndarray,
    n_folds: int,
    rng: np.random.Generator,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Stratified (and grouped) fold labels.

    Cases sharing a group (a bootstrap duplicate of the same original case, or a case
    and its copy in the other environment) always fall in the same fold, so no model is
    tested on a copy of a case it was trained on. Groups holding cases of several
    classes are dealt to the folds first, then each class's own groups continue the
    rotation, so every class stays spread evenly over the folds.

    Parameters
    ----------
    labels : ndarray of shape (N,)
        Class label (0 source, 1 target) per case.
    n_folds : int
    rng : numpy.random.Generator
    groups : ndarray of shape (N,), optional
        Group id per case; default every case its own group.

    Returns
    -------
    ndarray of int, shape (N,)

    Examples
    --------
    >>> f = assign_folds(np.r_[np.zeros(6), np.ones(4)], 2, np.random.default_rng(0))
    >>> np.bincount(f).tolist()
    [5, 5]

    Cases 0 and 3 (and 1 and 4) are one case seen in both environments:

    >>> f = assign_folds([0, 0, 0, 1, 1, 1], 3, np.random.default_rng(0), [7, 8, 9, 7, 8, 5])
    >>> bool(f[0] == f[3]), bool(f[1] == f[4]), sorted(f[:3].tolist()), sorted(f[3:].tolist())
    (True, True, [0, 1, 2], [0, 1, 2])
    """
    labels = np.asarray(labels)
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    folds = np.empty(len(labels), dtype=int)
    classes = np.unique(labels)
    held = np.concatenate([np.unique(groups[labels == c]) for c in classes])
    ids, n_classes = np.unique(held, return_counts=True)
    mixed = ids[n_classes > 1]
    in_mixed = np.isin(groups, mixed)
    if len(mixed):
        order = rng.permutation(len(mixed))
        mixed_fold = np.empty(len(mixed), dtype=int)
        mixed_fold[order] = np.arange(len(mixed)) % n_folds
        folds[in_mixed] = mixed_fold[np.searchsorted(mixed, groups[in_mixed])]
    for cls in classes:
        idx = np.flatnonzero((labels == cls) & ~in_mixed)
        uniq, inverse = np.unique(groups[idx], return_inverse=True)
        order = rng.permutation(len(uniq))
        group_fold = np.empty(len(uniq), dtype=int)
        group_fold[order] = (len(mixed) + np.arange(len(uniq))) % n_folds
        folds[idx] = group_fold[inverse]
    return folds


def choose_estimator(
    nodes: Sequence[str],
    graph: CausalGraph,
    estimators: Mapping[str, DensityRatioEstimator],
    default: DensityRatioEstimator,
) -> DensityRatioEstimator:
    """The estimator used for a node set.

    The user's estimator of the *last* node of the set in topological order that has
    one, else ``default``. For a mechanism's joint set ``{i} ∪ pa(i)`` that is the
    estimator given for ``i`` (``i`` comes after its parents); a parent set holding an
    image node gets that node's image estimator.

    Parameters
    ----------
    nodes : sequence of str
    graph : CausalGraph
    estimators : mapping of node name to estimator
    default : DensityRatioEstimator

    Returns
    -------
    DensityRatioEstimator
        An unfitted clone.

    Examples
    --------
    >>> g = CausalGraph({"Z": [], "X": ["Z"]})
    >>> for_x, default = ClassifierRatio(random_state=1), ClassifierRatio(random_state=0)
    >>> est = choose_estimator(("Z", "X"), g, {"X": for_x}, default)  # X's joint set
    >>> est.random_state, est is for_x
    (1, False)
    >>> choose_estimator(("Z",), g, {"X": for_x}, default).random_state  # X's parents
    0
    """
    order = graph.topological_order()
    for node in sorted(nodes, key=order.index, reverse=True):
        if node in estimators:
            return clone(estimators[node])
    return clone(default)


def _refuse_default_on_images(
    nodes: tuple[str, ...], estimators: Mapping[str, DensityRatioEstimator], env: Environment
) -> None:
    """The default tabular classifier would expand an image's voxels into quadratic
    features (8.4 million for one 16^3 volume, out of memory): name the estimator to pass.
    An image is a lazy node or one of at least two axes per case with more than 64
    values; a long vector (an embedding, radiomics) stays tabular."""
    from shiftattr.value.features import is_summarised  # value imports this module

    if any(n in estimators for n in nodes):
        return
    for node in nodes:
        shape = env.item_shape(node)
        if is_summarised(env, node) and (env.is_lazy(node) or len(shape or ()) >= 2):
            size = (
                "lazily loaded volumes"
                if env.is_lazy(node)
                else (f"{int(np.prod(env.item_shape(node)))} values per case")
            )
            raise TypeError(
                f"node {node!r} holds images ({size}) and no estimator was given for the "
                f"node set {list(nodes)}, so the default tabular classifier would read every "
                f"voxel as a feature. {image_estimator_hint(node)}"
            )


@dataclass
class MechanismRatios:
    """Cross-fitted log-ratios for every mechanism, at the source cases.

    Attributes
    ----------
    mechanisms : tuple of str
    log_ratios : ndarray of shape (n_mechanisms, N_source)
        Conditional log-ratio ``log p_t(v_i | pa_i) / p_s(v_i | pa_i)`` per mechanism.
    auc_joint, auc_parents : dict
        Out-of-fold ROC AUC of the joint and the parent classifiers (``None`` for a
        root's parents).
    node_sets : dict
        Mechanism -> (joint node set, parent node set).
    log_ratios_target : ndarray of shape (n_mechanisms, N_target) or None
        The same conditional log-ratios at the target cases (out of fold too): the
        multiply-robust estimator reweights target cases as well.
    known : tuple of str
        Mechanisms whose log-ratio was given (``known_ratios``), not estimated.
    offset_penalty : dict
        Mechanisms whose conditional ratio was fitted with the parents' log-ratio as an
        offset (``conditional="offset"``), with the L2 penalty chosen for each.
    shared_cases : int
        Source cases found again in the target (see
        :mod:`~shiftattr.ratios.shared_cases`), each kept in one fold with its copy.
    fit_reports : dict
        Node set (names joined by ",") -> the estimator's
        :meth:`~shiftattr.ratios.DensityRatioEstimator.fit_report` per fold (one for
        an estimator that fits all folds in one call), where it reports anything (a
        CNN's epochs, kept epoch, held-out AUC and temperature).

    Examples
    --------
    >>> r = MechanismRatios(("X",), np.zeros((1, 3)), {"X": 0.5}, {"X": None})
    >>> r.log_ratios.shape, r.log_ratios_target is None
    ((1, 3), True)
    """

    mechanisms: tuple[str, ...]
    log_ratios: np.ndarray
    auc_joint: dict[str, float]
    auc_parents: dict[str, float | None]
    node_sets: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)
    log_ratios_target: np.ndarray | None = None
    known: tuple[str, ...] = ()
    offset_penalty: dict[str, float] = field(default_factory=dict)
    shared_cases: int = 0
    fit_reports: dict[str, list[dict]] = field(default_factory=dict)


def _fit_fold(estimator, source_env, target_env, nodes, train_s, train_t, test_s, test_t):
    est = estimator.fit(source_env.features(nodes, train_s), target_env.features(nodes, train_t))
    lr_s = est.log_ratio(source_env.features(nodes, test_s))
    return lr_s, est.log_ratio(target_env.features(nodes, test_t)), est.fit_report()


def _warm_cache(est: DensityRatioEstimator, features: Mapping, progress: bool) -> None:
    """``est.warm_cache(features)``, with a progress bar where the estimator takes one
    (an estimator written before ``progress`` existed is called without it)."""
    if "progress" in inspect.signature(est.warm_cache).parameters:
        est.warm_cache(features, progress=progress)
    else:
        est.warm_cache(features)


def _fit_all_folds(estimator, source_env, target_env, nodes, fs, ft):
    lr_s, lr_t = estimator.crossfit_log_ratio(
        source_env.features(nodes), target_env.features(nodes), fs, ft
    )
    return lr_s, lr_t, estimator.fit_report()


class CrossFittedRatios:
    """Fit the density ratios a set of mechanisms needs, with K-fold cross-fitting.

    Parameters
    ----------
    graph : CausalGraph
    mechanisms : sequence of str
        Mechanisms whose conditional ratios are needed.
    estimators : mapping of str to DensityRatioEstimator, optional
        Per-node estimators (see :func:`choose_estimator`); default
        :class:`ClassifierRatio` for every node set.
    n_folds : int, default 5
    n_jobs : int, default 1
        Parallel fold fits through joblib.
    progress : bool, default True
        Show a progress bar over the fits.
    random_state : int or numpy.random.Generator, optional
    known_ratios : mapping of str to callable, optional
        Mechanisms whose conditional log-ratio is known rather than estimated:
        ``fn(environment) -> (len(environment),)`` array of ``log p_t(v | pa) / p_s(v |
        pa)`` at its cases (e.g. :meth:`shiftattr.datasets.SyntheticMS.true_log_ratio`,
        or a sampling design's known selection odds). Nothing is fitted for them; their
        ``auc_joint`` is the AUC of the known log-ratio itself and ``auc_parents`` is
        ``None``.
    conditional : {"difference", "offset", "offset_child"}, default "difference"
        How a mechanism with parents gets its conditional ratio. ``"difference"``: the
        joint set's fitted log-ratio minus the parent set's. ``"offset"``: a penalised
        logistic model on the joint set's features whose logit starts from the parent
        set's cross-fitted log-ratio, so it learns only the conditional part and its
        penalty pulls a mechanism that did not shift towards a ratio of one
        (:mod:`shiftattr.ratios.offset`). Used where the joint set's estimator has a
        feature matrix (:meth:`~DensityRatioEstimator.ratio_features`: the tabular
        classifier and the image statistics); others keep the difference.
        ``"offset_child"``: the same model on the mechanism's own node's features only
        (:meth:`~DensityRatioEstimator.node_features`), so its learnt term cannot take
        up what the parents' ratio missed (the image's shift, for the annotation).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = CausalGraph({"Z": [], "X": ["Z"]})
    >>> zs, zt = rng.normal(0, 1, 300), rng.normal(1, 1, 300)
    >>> src = Environment({"Z": zs, "X": zs + rng.normal(0, 1, 300)})
    >>> tgt = Environment({"Z": zt, "X": zt + rng.normal(0, 1, 300)})
    >>> cf = CrossFittedRatios(g, ["Z", "X"], n_folds=3, progress=False, random_state=0)
    >>> r = cf.fit(src, tgt)
    >>> r.log_ratios.shape
    (2, 300)
    >>> bool(r.auc_joint["Z"] > 0.65)
    True
    """

    def __init__(
        self,
        graph: CausalGraph,
        mechanisms: Sequence[str],
        estimators: Mapping[str, DensityRatioEstimator] | None = None,
        n_folds: int = 5,
        n_jobs: int = 1,
        progress: bool = True,
        random_state: int | np.random.Generator | None = None,
        known_ratios: Mapping[str, Callable[[Environment], np.ndarray]] | None = None,
        conditional: str = "difference",
    ) -> None:
        if conditional not in CONDITIONAL_RATIOS:
            raise ValueError(
                f"conditional must be one of {CONDITIONAL_RATIOS}, got {conditional!r}."
            )
        self.conditional = conditional
        self.graph = graph
        self.mechanisms = tuple(mechanisms)
        self.estimators = dict(estimators or {})
        self.known_ratios = dict(known_ratios or {})
        self.n_folds = n_folds
        self.n_jobs = n_jobs
        self.progress = progress
        self.random_state = random_state

    def node_sets(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        """Mechanism -> (joint node set, parent node set), each sorted topologically.

        A root's parent set is empty (its ratio is marginal).

        Returns
        -------
        dict
            ``{mechanism: (joint, parents)}``, both tuples of node names.

        Examples
        --------
        >>> g = CausalGraph({"D": [], "X": ["D"], "Y": ["X", "D"]})
        >>> CrossFittedRatios(g, ["D", "Y"]).node_sets()
        {'D': (('D',), ()), 'Y': (('D', 'X', 'Y'), ('D', 'X'))}
        """
        order = self.graph.topological_order()
        out = {}
        for m in self.mechanisms:
            pas = tuple(sorted(self.graph.parents(m), key=order.index))
            joint = tuple(sorted((m, *pas), key=order.index))
            out[m] = (joint, pas)
        return out

    def _known(
        self, mechanism: str, source: Environment, target: Environment
    ) -> tuple[np.ndarray, np.ndarray]:
        """The known conditional log-ratio of ``mechanism`` at the source and target cases."""
        out = []
        for env in (source, target):
            lr = np.asarray(self.known_ratios[mechanism](env), dtype=float).reshape(-1)
            if lr.shape != (len(env),):
                raise ValueError(
                    f"known_ratios[{mechanism!r}] returned {lr.size} values for the {len(env)} "
                    f"cases of environment {env.name!r}; it must return one log-ratio per case."
                )
            if not np.all(np.isfinite(lr)):
                raise ValueError(
                    f"known_ratios[{mechanism!r}] returned NaN or infinite log-ratios for "
                    f"environment {env.name!r}; the environments must overlap (each case "
                    "possible in both) for importance weights to exist."
                )
            out.append(lr)
        return out[0], out[1]

    def fit(
        self,
        source: Environment,
        target: Environment,
        source_groups: np.ndarray | None = None,
        target_groups: np.ndarray | None = None,
    ) -> MechanismRatios:
        """Cross-fit every needed node set and compose the mechanism ratios.

        Parameters
        ----------
        source, target : Environment
        source_groups, target_groups : ndarray, optional
            Group ids (bootstrap duplicates share one) kept within one fold.

        Returns
        -------
        MechanismRatios

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> g = CausalGraph({"Z": [], "X": ["Z"]})
        >>> zs, zt = rng.normal(0, 1, 100), rng.normal(1, 1, 100)
        >>> src = Environment({"Z": zs, "X": zs + rng.normal(0, 1, 100)}, name="s")
        >>> tgt = Environment({"Z": zt, "X": zt + rng.normal(0, 1, 100)}, name="t")
        >>> from sklearn.linear_model import LogisticRegression
        >>> logistic = ClassifierRatio(LogisticRegression())  # quicker than the default
        >>> cf = CrossFittedRatios(g, ["X"], estimators={"Z": logistic, "X": logistic},
        ...                        n_folds=2, progress=False, random_state=0)
        >>> r = cf.fit(src, tgt)
        >>> r.mechanisms, r.log_ratios.shape, r.log_ratios_target.shape
        (('X',), (1, 100), (1, 100))
        >>> r.node_sets["X"], bool(r.auc_parents["X"] > 0.6)
        ((('Z', 'X'), ('Z',)), True)
        """
        k = int(self.n_folds)
        if k < 2:
            raise ValueError(f"n_folds must be at least 2 for cross-fitting, got {self.n_folds}.")
        for env, grp in ((source, source_groups), (target, target_groups)):
            n_unique = len(env) if grp is None else len(np.unique(grp))
            if n_unique < 2 * k:
                raise ValueError(
                    f"environment {env.name!r} has {n_unique} distinct cases, too few for "
                    f"{k}-fold cross-fitting (need at least {2 * k}: every fold needs cases "
                    "to train and to test on); lower n_folds or add cases."
                )
        rng = np.random.default_rng(self.random_state)
        ns, nt = len(source), len(target)
        labels = np.r_[np.zeros(ns), np.ones(nt)]
        sets = self.node_sets()
        compared = sorted({n for joint, _ in sets.values() for n in joint})
        groups, n_shared = shared_case_groups(
            source, target, compared, source_groups, target_groups
        )
        folds = assign_folds(labels, k, rng, groups)
        fs, ft = folds[:ns], folds[ns:]

        known = {
            m: self._known(m, source, target) for m in self.mechanisms if m in self.known_ratios
        }
        seed = int(rng.integers(2**31 - 1))
        default = ClassifierRatio(random_state=seed)
        offset = {}  # mechanism -> the estimator whose features its offset model reads
        if self.conditional in ("offset", "offset_child"):
            for m, (joint, pas) in sets.items():
                est = choose_estimator(joint, self.graph, self.estimators, default)
                has_matrix = type(est).ratio_features is not DensityRatioEstimator.ratio_features
                if m not in known and pas and est.joint_crossfit and has_matrix:
                    offset[m] = est
        needed = set()
        for m, (joint, pas) in sets.items():
            if m not in known:
                needed.update(s for s in ((pas,) if m in offset else (joint, pas)) if s)
        distinct = sorted(needed, key=lambda s: (len(s), s))
        tasks = []
        for m, (joint, pas) in sets.items():  # offset mechanisms' joint sets included
            for nodes in (joint, pas) if m not in known else ():
                _refuse_default_on_images(nodes, self.estimators, source)
        for nodes in distinct:
            est = choose_estimator(nodes, self.graph, self.estimators, default)
            # a user's unseeded estimator gets a seed of its own from random_state
            with_seed(est, derived_seed(seed, "|".join(nodes)))
            if getattr(est, "joint_crossfit", False):  # all folds in one call (f = None)
                # per-case summaries computed here, before any fit, travel with the
                # environments to worker processes (n_jobs != 1) and to every refit
                # replicate drawn from them; computed in a worker they would be lost
                # with it. Per-fold fits get plain index slices and read no cache.
                for env in (source, target):
                    _warm_cache(est, env.features(list(nodes)), self.progress)
                tasks.append(
                    (nodes, None, delayed(_fit_all_folds)(est, source, target, nodes, fs, ft))
                )
                continue
            if getattr(est, "handles_images", False):  # e.g. a CNN's check of every
                # case's grid, before the first fold trains
                for env in (source, target):
                    _warm_cache(est, env.features(list(nodes)), self.progress)
            for f in range(k):
                tasks.append(
                    (
                        nodes,
                        f,
                        delayed(_fit_fold)(
                            clone(est),
                            source,
                            target,
                            nodes,
                            np.flatnonzero(fs != f),
                            np.flatnonzero(ft != f),
                            np.flatnonzero(fs == f),
                            np.flatnonzero(ft == f),
                        ),
                    )
                )
        bar = tqdm(total=len(tasks), desc="density ratios", disable=not self.progress, leave=False)
        results = []
        # joblib returns results in order; the bar advances as they arrive.
        for res in Parallel(n_jobs=self.n_jobs, return_as="generator")(t[2] for t in tasks):
            results.append(res)
            bar.update()
        bar.close()

        oof_s = {nodes: np.empty(ns) for nodes in distinct}
        oof_t = {nodes: np.empty(nt) for nodes in distinct}
        reports: dict[str, list[dict]] = {}
        for (nodes, f, _), (lr_s, lr_t, report) in zip(tasks, results):
            in_s = slice(None) if f is None else fs == f
            in_t = slice(None) if f is None else ft == f
            oof_s[nodes][in_s] = lr_s
            oof_t[nodes][in_t] = lr_t
            if report:
                reports.setdefault(",".join(nodes), []).append(report)
        auc = {}
        for nodes in distinct:
            scores = np.r_[oof_s[nodes], oof_t[nodes]]
            if not np.all(np.isfinite(scores)):
                raise FloatingPointError(
                    f"the ratio estimator for nodes {list(nodes)} returned non-finite log-ratios; "
                    "the environments may be perfectly separable on these nodes. Check for "
                    "NaN or infinite features, use an estimator whose log-ratios stay finite "
                    "(a penalised one, e.g. StandardisedLogisticRegression), or leave these "
                    "nodes out of the mechanisms if the environments share no cases."
                )
            auc[nodes] = rank_auc(labels, scores)
        L = np.empty((len(self.mechanisms), ns))
        Lt = np.empty((len(self.mechanisms), nt))
        auc_joint, auc_parents, penalties = {}, {}, {}
        for i, m in enumerate(self.mechanisms):
            joint, pas = sets[m]
            if m in offset:
                est = offset[m]
                if self.conditional == "offset_child":
                    zs = est.node_features(source.features(joint), m)
                    zt = est.node_features(target.features(joint), m)
                else:
                    zs = est.ratio_features(source.features(joint))
                    zt = est.ratio_features(target.features(joint))
                for env, z in ((source, zs), (target, zt)):
                    if not np.all(np.isfinite(z)):
                        raise ValueError(
                            f"the features of nodes {list(joint)} in environment "
                            f"{env.name!r} hold non-finite values (NaN/inf); the conditional "
                            f"ratio of {m!r} cannot be fitted. Remove or impute them."
                        )
                L[i], Lt[i], penalties[m] = crossfit_conditional(
                    zs, zt, oof_s[pas], oof_t[pas], fs, ft
                )
                total = np.r_[oof_s[pas] + L[i], oof_t[pas] + Lt[i]]
                auc_joint[m], auc_parents[m] = rank_auc(labels, total), auc[pas]
                continue
            if m in known:
                L[i], Lt[i] = known[m]
                auc_joint[m], auc_parents[m] = (
                    rank_auc(labels, np.r_[L[i], Lt[i]]),
                    None,
                )
                continue
            L[i] = oof_s[joint] - (oof_s[pas] if pas else 0.0)
            Lt[i] = oof_t[joint] - (oof_t[pas] if pas else 0.0)
            auc_joint[m], auc_parents[m] = auc[joint], (auc[pas] if pas else None)
        return MechanismRatios(
            mechanisms=self.mechanisms,
            log_ratios=L,
            auc_joint=auc_joint,
            auc_parents=auc_parents,
            node_sets=sets,
            log_ratios_target=Lt,
            known=tuple(m for m in self.mechanisms if m in known),
            offset_penalty=penalties,
            shared_cases=n_shared,
            fit_reports=reports,
        )
