"""``attribute()``: split a performance change among the mechanisms that shifted.

The game is ``v(I) = M(P_source) - M(P_I)`` (positive = performance *drop*), with
``M(P_I)`` estimated on the source cases by self-normalised importance weighting with
the cross-fitted conditional ratios of the mechanisms in ``I``. Shapley values of this
game sum to ``v(all) = M(P_source) - M(P_target)`` as estimated.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

from shiftattr._clone import derived_seed
from shiftattr.bias_aware import bias_aware_interval, resolve_interval
from shiftattr.bootstrap import (
    Cases,
    Replicates,
    fixed_bootstrap,
    refit_bootstrap,
    resolve_bootstrap,
    solve_with_twin,
    solver_stderr,
)
from shiftattr.environment import Environment
from shiftattr.graph import CausalGraph
from shiftattr.metric_range import metric_beyond_source, metric_range, values_beyond_span
from shiftattr.ratios.base import DensityRatioEstimator
from shiftattr.ratios.crossfit import CONDITIONAL_RATIOS, MechanismRatios
from shiftattr.ratios.shared_cases import case_fingerprints
from shiftattr.repeats import repeats_interval, split_unstable_warnings
from shiftattr.results import Attribution, ShiftAttrWarning
from shiftattr.shapley import (
    ExactShapley,
    Game,
    ShapleySolver,
)
from shiftattr.shapley.base import _check_int
from shiftattr.value import (
    ESTIMATORS,
    WEIGHTING_METHODS,
    Featurizer,
    PairedSpec,
    check_paired,
    level_features,
    paired_keys,
    paired_metrics,
)
from shiftattr.value.balance import BalancedValue
from shiftattr.value.build import FittedValue, fit_value, ratio_nodes, value_levels
from shiftattr.value.choice import MANY_REGRESSION_MECHANISMS, resolve_method
from shiftattr.value.features import check_image_regressors, is_summarised
from shiftattr.value.generative import (
    SIMULATION_BATCHES,
    check_tabular_nodes,
    generative_warnings,
    is_discrete,
)
from shiftattr.value.pooling import check_pooled, resolve_pooled
from shiftattr.value.robust import check_correction_cap
from shiftattr.weighting import (
    HEAVY_TAIL_MIN_WEIGHT,
    PARETO_K_THRESHOLD,
    check_precision,
    coalition_log_weights,
    coalition_means,
    coalition_weighted_means,
    pareto_khat,
    resampled_coalition_means,
)

__all__ = [
    "attribute",
    "check_metric",
    "count_warnings",
    "imprecise_mechanisms",
    "iw_game",
    "iw_resampled_values",
    "not_separated_mechanisms",
]

MetricLike = np.ndarray | Sequence[float] | Callable[[Environment], np.ndarray]

#: A known log-ratio whose AUC (target vs source cases) falls below this is flagged
#: ``known_ratio_reversed``: a right log p_t / p_s is higher, on average, at the target
#: cases (its means differ by the two conditional KL divergences).
KNOWN_RATIO_REVERSED_AUC = 0.4


def _in_case_order(index: Any, env: Environment) -> bool:
    """Whether a pandas index reads as the cases' order: the environment's case ids, or
    unique increasing labels (a filtered frame keeps its rows' order)."""
    labels = list(index)
    if [str(v) for v in labels] == [str(c) for c in env.case_ids]:
        return True
    try:
        return bool(index.is_unique and index.is_monotonic_increasing)
    except (AttributeError, TypeError):
        return False


def check_metric(values: Any, env: Environment, what: str = "metric") -> np.ndarray:
    """Validate a per-case metric for ``env``: one finite float per case.

    Parameters
    ----------
    values : array-like or callable
        Per-case values, or a callable ``Environment -> array`` evaluated on ``env``.
    env : Environment
    what : str
        Argument name used in error messages.

    Returns
    -------
    ndarray of float, shape (len(env),)

    Raises
    ------
    ValueError
        Wrong length, wrong shape, or NaN/inf values (the message lists the cases).

    Examples
    --------
    >>> env = Environment({"x": np.zeros(3)}, name="s")
    >>> check_metric([0.5, 0.7, 0.9], env)
    array([0.5, 0.7, 0.9])
    """
    if callable(values):
        values = values(env)
    index = getattr(values, "index", None)  # a pandas Series: read by position, not label
    if callable(index):  # list.index: no labels
        index = None
    if index is not None and not _in_case_order(index, env):
        raise ValueError(
            f"{what} is a pandas object indexed {list(index[:3])}...: it is read by position, "
            f"one value per case of environment {env.name!r} in its order, and its index, "
            "neither increasing nor the environment's case ids, says it is in another "
            "order. Pass it in the environment's case order (sort it, or "
            ".reset_index(drop=True) once it is)."
        )
    m = np.asarray(values, dtype=float)
    if m.ndim != 1:
        m = m.squeeze()
    if m.ndim != 1 or len(m) != len(env):
        raise ValueError(
            f"{what} must hold one value per case of environment {env.name!r} "
            f"({len(env)} cases); got shape {np.shape(values)}."
        )
    bad = np.flatnonzero(~np.isfinite(m))
    if bad.size:
        ids = [env.case_ids[i] for i in bad[:10]]
        more = f" and {bad.size - 10} more" if bad.size > 10 else ""
        raise ValueError(
            f"{what} has {bad.size} non-finite value(s) (NaN/inf) in environment {env.name!r}: "
            f"cases {ids}{more}. For segmentation metrics this usually means an empty reference "
            "and prediction; choose an explicit policy, e.g. dice(..., empty='one'), or drop "
            "those cases from the environment before attributing."
        )
    return m


def iw_game(
    mechanisms: Sequence[str],
    log_ratios: np.ndarray,
    metric: np.ndarray,
    truncate: float | None = None,
    paired: Mapping[frozenset, np.ndarray] | None = None,
    precision: str = "float64",
) -> Game:
    """The importance-weighting game ``v(I) = mean(m) - M_hat_I``.

    Parameters
    ----------
    mechanisms : sequence of str
        Player names, one per row of ``log_ratios``.
    log_ratios : ndarray of shape (n, N)
    metric : ndarray of shape (N,)
    truncate : float, optional
        Cap on normalised weights (see :func:`shiftattr.weighting.coalition_weighted_means`).
    paired : mapping of frozenset to ndarray, optional
        Substituted mechanisms: ``S -> metric`` of the source cases re-scored with the
        nodes in ``S`` taken from the target (see :func:`shiftattr.value.paired_metrics`).
        A coalition ``I`` then weights by the other mechanisms of ``I`` and averages
        the metric of ``S = I ∩ paired``; the rows of ``log_ratios`` of paired
        mechanisms are ignored.
    precision : {"float64", "float32"}, default "float64"
        Arithmetic of the batched split-product kernel
        (:func:`shiftattr.weighting.coalition_means`). ``"float32"`` takes about
        two-thirds of the time of an exact solve with many cases, at a relative error of
        each coalition's mean between 5e-9 and 4e-6 (see there); unused with ``truncate``.

    Returns
    -------
    shiftattr.shapley.Game

    Examples
    --------
    >>> g = iw_game(["X"], np.log([[1.0, 3.0]]), np.array([1.0, 0.0]))
    >>> g(np.array([[True]]))
    array([0.25])
    >>> paired = {frozenset(): np.array([1.0, 0.0]), frozenset({"Y"}): np.array([0.0, 0.0])}
    >>> g = iw_game(["X", "Y"], np.log([[1.0, 3.0], [1.0, 1.0]]), np.array([1.0, 0.0]),
    ...             paired=paired)
    >>> g(np.array([[True, False], [False, True]]))
    array([0.25, 0.5 ])
    """
    check_precision(precision)
    mechanisms = list(mechanisms)
    base = float(np.mean(metric))
    L = _weighted_log_ratios(mechanisms, log_ratios, paired)

    def means(C: np.ndarray, m: np.ndarray) -> np.ndarray:
        if truncate is None:  # the weights factorise: fast split-product path
            return coalition_means(C, L, m, precision=precision)
        return coalition_weighted_means(C, L, m, truncate=truncate).means

    def value(coalitions: np.ndarray) -> np.ndarray:
        return base - _by_substituted(mechanisms, coalitions, metric, paired, means)

    return Game(mechanisms, value)


def iw_resampled_values(
    mechanisms: Sequence[str],
    coalitions: np.ndarray,
    log_ratios: np.ndarray,
    metric: np.ndarray,
    counts: np.ndarray,
    truncate: float | None = None,
    paired: Mapping[frozenset, np.ndarray] | None = None,
) -> np.ndarray:
    """The values of :func:`iw_game` on many resamples of the source cases at once.

    Parameters
    ----------
    mechanisms : sequence of str
    coalitions : bool ndarray of shape (k, n)
    log_ratios, metric, truncate, paired
        As for :func:`iw_game`, on all the source cases.
    counts : ndarray of shape (B, N)
        Draws of every case in each of ``B`` resamples
        (:func:`shiftattr.weighting.resample_counts`).

    Returns
    -------
    ndarray of shape (k, B)
        Column ``b`` equals the game of resample ``b``'s cases on ``coalitions`` (up to
        rounding).

    Examples
    --------
    >>> from shiftattr.weighting import resample_counts
    >>> L, m = np.log([[1.0, 3.0]]), np.array([1.0, 0.0])
    >>> counts = resample_counts(np.array([[0, 1], [0, 0]]), 2)
    >>> iw_resampled_values(["X"], np.array([[True]]), L, m, counts)
    array([[0.25, 0.  ]])
    """
    L = _weighted_log_ratios(mechanisms, log_ratios, paired)
    base = counts @ np.asarray(metric, dtype=float) / counts.sum(axis=1)

    def means(C: np.ndarray, m: np.ndarray) -> np.ndarray:
        return resampled_coalition_means(C, L, m, counts, truncate=truncate)

    return base - _by_substituted(list(mechanisms), coalitions, metric, paired, means)


def _weighted_log_ratios(
    mechanisms: Sequence[str], log_ratios: np.ndarray, paired: Mapping | None
) -> np.ndarray:
    """The log-ratios with the rows of substituted mechanisms zeroed (they carry no weight)."""
    P = _substituted_rows(mechanisms, paired)
    L = np.asarray(log_ratios, dtype=float)  # the kernels check and floor its values
    if P:  # on a copy: the caller's array stays
        L = L.copy()
        L[P] = 0.0
    return L


def _substituted_rows(mechanisms: Sequence[str], paired: Mapping | None) -> list[int]:
    return [i for i, m in enumerate(mechanisms) if paired and frozenset({m}) in paired]


def _by_substituted(
    mechanisms: Sequence[str],
    coalitions: np.ndarray,
    metric: np.ndarray,
    paired: Mapping[frozenset, np.ndarray] | None,
    means: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """``means(rows, metric)`` for every group of coalitions with the same substituted
    mechanisms ``S``, each group averaging the metric re-scored with ``S`` substituted."""
    P = _substituted_rows(mechanisms, paired)
    if not P:
        return means(coalitions, metric)
    keys, inverse = np.unique(coalitions[:, P], axis=0, return_inverse=True)
    out = None
    for j, key in enumerate(keys):
        rows = inverse.ravel() == j
        S = frozenset(mechanisms[P[i]] for i in np.flatnonzero(key))
        part = means(coalitions[rows], paired[S])
        if out is None:
            out = np.empty((len(coalitions), *part.shape[1:]))
        out[rows] = part
    return out


def _validate_inputs(
    graph: CausalGraph,
    source: Environment,
    target: Environment,
    mechanisms: Sequence[str] | None,
    estimators: Mapping[str, DensityRatioEstimator] | None,
) -> tuple[str, ...]:
    if not isinstance(graph, CausalGraph):
        raise TypeError(f"graph must be a CausalGraph, got {type(graph).__name__}.")
    for env, role in ((source, "source"), (target, "target")):
        if not isinstance(env, Environment):
            raise TypeError(f"{role} must be an Environment, got {type(env).__name__}.")
    if mechanisms is None:
        mechs = graph.mechanisms
    else:
        if isinstance(mechanisms, str):
            mechanisms = [mechanisms]
        unknown = [m for m in mechanisms if m not in graph]
        if unknown:
            raise ValueError(
                f"unknown mechanism(s) {unknown}: mechanisms are named after graph nodes "
                f"{list(graph.nodes)}."
            )
        if len(set(mechanisms)) != len(mechanisms):
            raise ValueError(f"mechanisms {list(mechanisms)} lists a mechanism twice.")
        if not mechanisms:
            raise ValueError("mechanisms is empty; name at least one mechanism to attribute to.")
        order = graph.topological_order()
        mechs = tuple(sorted(mechanisms, key=order.index))
    for key, est in (estimators or {}).items():
        if key not in graph:
            raise ValueError(
                f"estimators has a key {key!r} that is not a node of the graph {list(graph.nodes)}."
            )
        if not all(callable(getattr(est, a, None)) for a in ("fit", "log_ratio")):
            # a bare classifier failed deep in the first fit with an unrelated TypeError
            hint = (
                f" It looks like a classifier: wrap it, ClassifierRatio({type(est).__name__}(...))."
                if callable(getattr(est, "predict_proba", None))
                or callable(getattr(est, "decision_function", None))
                else ""
            )
            raise TypeError(
                f"estimators[{key!r}] is a {type(est).__name__}, not a density-ratio "
                "estimator (a shiftattr.ratios.DensityRatioEstimator, with fit and "
                f"log_ratio).{hint}"
            )
    needed = sorted({n for m in mechs for n in (m, *graph.parents(m))})
    for env, role in ((source, "source"), (target, "target")):
        missing = [n for n in needed if n not in env]
        if missing:
            raise ValueError(
                f"{role} environment {env.name!r} lacks node(s) {missing} needed by the "
                f"mechanisms {list(mechs)}; it holds {list(env.nodes)}."
            )
    for n in needed:  # tabular nodes: one column layout on both sides (images may differ)
        shapes = source.item_shape(n), target.item_shape(n)
        # (n,) and (n, 1) are one column alike, and a lazy node's shape may be a list
        if (
            None not in shapes
            and max(map(len, shapes)) <= 1
            and int(np.prod(shapes[0])) != int(np.prod(shapes[1]))
        ):
            raise ValueError(
                f"node {n!r} holds {shapes[0] or 'one value'} per case in the source "
                f"{source.name!r} but {shapes[1] or 'one value'} in the target "
                f"{target.name!r}; give it the same columns on both sides."
            )
    _check_constant_nodes(needed, source, target)
    return mechs


def _plain_params(estimator: Any) -> dict[str, Any]:
    """The parameters of a ratio estimator that are plain values (for the saved settings):
    ``ImageStatsRatio``'s ``statistics``, a CNN's ``epochs``... Objects and callables are
    left out."""
    try:
        params = estimator.get_params(deep=False)
    except Exception:  # no scikit-learn parameters: the class name is recorded already
        return {}
    params = {k: v.item() if isinstance(v, np.generic) else v for k, v in params.items()}
    plain = (str, int, float, bool, type(None))
    shown = {"progress"}  # how a fit displays, not what it computes
    return {k: v for k, v in sorted(params.items()) if isinstance(v, plain) and k not in shown}


def _check_mis(
    graph: CausalGraph,
    source: Environment,
    target: Environment,
    metric_target: np.ndarray | None,
    paired: Any,
    truncate: float | None,
) -> None:
    """Refuse what ``method="mis"`` cannot do, saying what to do instead."""
    if metric_target is None:
        raise ValueError(
            "method='mis' weights the target cases as well as the source ones and needs "
            "the metric at the target cases: pass target_metric=..., or a callable metric."
        )
    if paired:
        raise ValueError(
            "method='mis' does not substitute paired counterfactuals: drop paired, or use "
            "method='iw' or 'mr' to substitute them."
        )
    if truncate is not None:
        raise ValueError(
            "truncate caps the weights of method='iw'; the balance-heuristic weights of "
            "method='mis' are bounded by the other environment's cases: drop truncate."
        )
    missing = [(n, e.name) for e in (source, target) for n in graph.nodes if n not in e]
    if missing:
        raise ValueError(
            "method='mis' weights by the density ratio of whole cases, which needs every "
            f"node of the graph in both environments, but {missing} (node, environment) "
            "are missing; add them or use method='iw'."
        )
    # every node's ratio enters the mixture, attributed or not
    _check_constant_nodes(list(graph.nodes), source, target)


def _check_generative(
    metric: Any,
    paired: Any,
    features: Any,
    bootstrap: str,
    n_bootstrap: int,
    n_simulations: Any,
) -> None:
    """Refuse what ``method="generative"`` cannot do, saying what to do instead."""
    if not callable(metric):
        raise ValueError(
            "method='generative' scores the metric on simulated cases: pass metric as a "
            "callable Environment -> per-case values (e.g. the model's loss on the "
            "environment's nodes), not as an array of values."
        )
    if paired:
        raise ValueError(
            "method='generative' simulates every mechanism and has no use for paired "
            "counterfactuals: drop paired, or use method='iw' or 'mr' to substitute them."
        )
    if features:
        raise ValueError(
            "features are the regression features of method='regression' and 'mr'; "
            "method='generative' fits its mechanisms on the nodes' values: drop features."
        )
    if bootstrap == "fixed" and n_bootstrap:
        raise ValueError(
            "method='generative' has no fixed bootstrap (its estimate is a simulation from "
            "fitted mechanisms, not an average over the observed cases): use "
            "bootstrap='refit', which refits the mechanisms on every resample."
        )
    if (
        isinstance(n_simulations, bool)
        or not isinstance(n_simulations, Integral)
        or n_simulations < SIMULATION_BATCHES
    ):
        raise ValueError(
            f"n_simulations must be an integer of at least {SIMULATION_BATCHES}, got "
            f"{n_simulations!r}."
        )


def _identical_environments(
    graph: CausalGraph, source: Environment, target: Environment
) -> list[dict[str, Any]]:
    """An ``identical_environments`` warning where source and target hold the same cases
    with the same value of every node (in any order): there is nothing to attribute, and
    what the values show is the estimators' noise (the same data passed twice).

    Examples
    --------
    >>> env = Environment({"X": np.arange(4.0)}, name="s")
    >>> g = CausalGraph({"X": []})
    >>> [w["code"] for w in _identical_environments(g, env, env.subset([3, 2, 1, 0]))]
    ['identical_environments']
    >>> _identical_environments(g, env, env.subset([3, 2, 1, 1]))
    []

    Whole cases are compared, not each node's values on their own: the same values of
    ``Y`` joined to other cases' ``X`` (labels joined to the wrong images) are a shift.

    >>> two = Environment({"X": np.arange(4.0), "Y": np.arange(4.0)}, name="s")
    >>> swapped = Environment({"X": np.arange(4.0), "Y": np.arange(4.0)[::-1]}, name="t")
    >>> _identical_environments(CausalGraph({"X": [], "Y": ["X"]}), two, swapped)
    []
    """
    if len(source) != len(target):
        return []
    if any(node not in source or node not in target for node in graph.nodes):
        return []

    def cases(env: Environment) -> np.ndarray:  # one row of node fingerprints per case
        rows = np.column_stack([case_fingerprints(env, node) for node in graph.nodes])
        return rows[np.lexsort(rows.T[::-1])]

    if not np.array_equal(cases(source), cases(target)):
        return []
    return [
        {
            "code": "identical_environments",
            "mechanism": None,
            "message": (
                f"{source.name!r} and {target.name!r} hold the same {len(source)} cases with "
                "the same value of every node: there is no shift to attribute, and any "
                "value is the estimators' noise. Check that the same data were not passed "
                "as both environments."
            ),
        }
    ]


#: A fold's network counts as flat ("no shift") when it kept its untrained weights or
#: when its calibration temperature is at least this (its logits divided by 10 or more;
#: the fit's upper bound is 100, where it lands when the held-out split shows no shift).
FLAT_FOLD_TEMPERATURE = 10.0

#: ``flat_folds`` needs the other folds' mean held-out AUC to reach this: about 2.5
#: standard errors above chance on a held-out split of 50 cases per environment. Below
#: it, the folds that "found" a shift may have fitted noise (the no-shift scenario of the
#: synthetic MS benchmark gave 0.48-0.63), and disagreeing folds say nothing.
FLAT_FOLDS_MIN_AUC = 0.65


def _finite(value: Any, default: float) -> float:
    """``value`` as a float where it is a finite number, else ``default``."""
    ok = isinstance(value, Real) and np.isfinite(float(value))
    return float(value) if ok else default


def _flat_folds(
    fit_reports: Mapping[str, list[dict]],
    node_sets: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]],
) -> list[dict[str, Any]]:
    """``flat_folds`` warnings: a discriminator that found a shift in some folds (held-out
    AUC at least :data:`FLAT_FOLDS_MIN_AUC` on average) and none in others.

    A CNN keeps its untrained weights (``best_epoch`` 0) when no epoch beats "no shift"
    on its held-out split, and its calibration can flatten the logits as much
    (temperature at least :data:`FLAT_FOLD_TEMPERATURE`). Its log-ratios are then flat
    for the cases of that fold, so a shift the other folds found is missing for a share
    of the cases and the mechanism's value is pulled towards 0, while the fixed
    bootstrap (which holds the networks) cannot show it. All folds flat is consistent
    ("no shift found"; ``shift_not_seen`` covers a metric that moved anyway).

    ``node_sets`` maps each mechanism to its (joint, parent) node sets
    (:attr:`~shiftattr.ratios.crossfit.MechanismRatios.node_sets`), to name the
    mechanisms a node set's ratio serves.

    Examples
    --------
    >>> sets = {"X": (("X",), ()), "Y": (("X", "Y"), ("X",))}
    >>> found = {"best_epoch": 6, "val_auc": 0.75, "temperature": 0.8}
    >>> flat = {"best_epoch": 3, "val_auc": 0.5, "temperature": 100.0}
    >>> reports = {"X": [flat, found, found], "X,Y": [found] * 3}
    >>> [(w["code"], w["mechanism"]) for w in _flat_folds(reports, sets)]
    [('flat_folds', None)]
    >>> noise = {"best_epoch": 2, "val_auc": 0.58, "temperature": 1.0}
    >>> _flat_folds({"X": [flat, noise, noise]}, sets)  # the others found noise
    []
    >>> _flat_folds({"X": [{"best_epoch": None}, {**found, "val_auc": float("nan")}]}, sets)
    []
    """
    warns = []
    for key, reports in fit_reports.items():
        fits = [
            r for r in reports if isinstance(r, Mapping) and isinstance(r.get("best_epoch"), Real)
        ]  # a user's estimator may report None, or something else, under these keys
        is_flat = [
            int(r["best_epoch"]) == 0 or _finite(r.get("temperature"), 1.0) >= FLAT_FOLD_TEMPERATURE
            for r in fits
        ]
        aucs = [_finite(r.get("val_auc"), np.nan) for r, f in zip(fits, is_flat) if not f]
        auc = float(np.mean([a for a in aucs if np.isfinite(a)] or [np.nan]))
        n_flat = sum(is_flat)
        if not 0 < n_flat < len(fits) or not auc >= FLAT_FOLDS_MIN_AUC:
            continue
        users = [m for m, sets in node_sets.items() if key in (",".join(s) for s in sets)]
        names = ", ".join(users) if users else "none attributed"
        warns.append(
            {
                "code": "flat_folds",
                "mechanism": users[0] if len(users) == 1 else None,
                "message": (
                    f"the discriminator of {{{key.replace(',', ', ')}}} (the ratio of "
                    f"mechanism(s) {names}) found no shift in {n_flat} of {len(fits)} folds "
                    "(it kept its untrained network, or its calibration flattened it) and "
                    f"one in the others (held-out AUC {auc:.2f}): its log-ratios "
                    "are flat for those folds' cases, which pulls the value towards 0, and "
                    "an interval that holds the networks fixed cannot show it. More epochs "
                    "or cases, or the image statistics (ImageStatsRatio; image_estimator = "
                    "'stats'), may settle it."
                ),
            }
        )
    return warns


def _unseen_levels(
    nodes: Sequence[str], source: Environment, target: Environment
) -> list[dict[str, Any]]:
    """``unseen_levels`` warnings: discrete values the target holds and the source never does.

    A density ratio ``p_target / p_source`` is infinite where the source has no case,
    and a classifier cannot learn what it has never seen: a category that exists only at
    the target (a new scanner model, a new site code) gets a finite, small weight, and
    the change it brings is missed or put on another mechanism, with AUC and ESS that
    look fine. A column counts as discrete when it holds whole numbers (booleans,
    integers, or floats such as 2.0, whose values must then repeat: at most one
    distinct value per two cases) and takes at most 20 distinct values over both
    environments (:func:`~shiftattr.value.generative.is_discrete`); one warning per
    node. Image nodes are skipped.

    Parameters
    ----------
    nodes : sequence of str
        The nodes to check.
    source, target : Environment

    Returns
    -------
    list of dict
        One warning per node with unseen levels (``code``, ``mechanism``, ``message``,
        ``levels``: the unseen values of its first such column, ``columns``: the columns
        holding some, ``target_fraction``: the share of target cases holding any).

    Examples
    --------
    >>> src = Environment({"site": np.array([0, 1, 0, 1])})
    >>> tgt = Environment({"site": np.array([0, 2, 2, 1])})
    >>> [(w["code"], w["levels"], w["target_fraction"]) for w in _unseen_levels(["site"], src, tgt)]
    [('unseen_levels', [2], 0.5)]
    >>> tgt = Environment({"site": np.array([0.0, 2.0, 2.0, 0.0])})  # codes as floats
    >>> [w["levels"] for w in _unseen_levels(["site"], src, tgt)]
    [[2.0]]
    """
    warns = []
    for node in nodes:
        if is_summarised(source, node) or is_summarised(target, node):
            continue
        a = np.asarray(source[node]).reshape(len(source), -1)
        b = np.asarray(target[node]).reshape(len(target), -1)
        if a.dtype.kind not in "biuf" or b.dtype.kind not in "biuf":
            continue
        columns, levels, unseen = [], None, np.zeros(len(target), dtype=bool)
        for col in range(a.shape[1]):
            both = np.concatenate([a[:, col], b[:, col]])
            if not np.isfinite(both).all() or not is_discrete([both]):
                continue
            # categories stored as floats (after numpy or pandas) count too, when their
            # values repeat: a few whole-number ages, each seen once, are no categories
            if both.dtype.kind == "f" and 2 * len(np.unique(both)) > len(both):
                continue
            new = np.setdiff1d(np.unique(b[:, col]), np.unique(a[:, col]))
            if new.size:
                columns.append(col)
                levels = new.tolist() if levels is None else levels
                unseen |= np.isin(b[:, col], new)
        if not columns:
            continue
        share = float(unseen.mean())
        where = f" (columns {columns})" if a.shape[1] > 1 else ""
        warns.append(
            {
                "code": "unseen_levels",
                "mechanism": node,
                "levels": levels,
                "columns": columns,
                "target_fraction": share,
                "message": (
                    f"node {node!r}{where} takes value(s) such as {levels} in {share:.0%} of "
                    "the target's cases and never in the source's: no density ratio can "
                    "weight source cases into them, so whatever those cases change is "
                    "missed or put on another mechanism (AUC and ESS do not show it). "
                    "Compare only the levels both environments hold (subset the target), "
                    "or collect source cases of those levels."
                ),
            }
        )
    return warns


def _check_offset_child(
    graph: CausalGraph,
    mechs: Sequence[str],
    estimators: Mapping[str, Any] | None,
    known_ratios: Mapping[str, Any] | None,
    paired: PairedSpec | None,
) -> None:
    """Refuse ``conditional_ratios="offset_child"`` for a mechanism with parents whose
    estimator (the one cross-fitting uses for its joint set) reads the node's values
    alone (:meth:`DensityRatioEstimator.node_features` not overridden, as for the
    default tabular classifier): those cannot show a change in how the node depends on
    its parents, and the mechanism's share was erased (measured: a drop of 0.18
    estimated as 0.02 on ``LinearGaussianSCM.example()``)."""
    from shiftattr.ratios.base import DensityRatioEstimator
    from shiftattr.ratios.classifier import ClassifierRatio
    from shiftattr.ratios.crossfit import choose_estimator

    given = set(known_ratios or ()) | set(paired or ())
    own_values_only = [
        m
        for m in mechs
        if graph.parents(m)
        and m not in given
        and type(
            choose_estimator((*graph.parents(m), m), graph, estimators or {}, ClassifierRatio())
        ).node_features
        is DensityRatioEstimator.node_features
    ]
    if own_values_only:
        raise ValueError(
            f"conditional_ratios='offset_child' fits each conditional ratio on the node's "
            f"own features only; for the mechanism(s) {own_values_only} (their estimator "
            "reads the node's values alone, as the default tabular classifier does) that "
            "cannot show a change in how the node depends on its parents, so their share "
            "is lost. Use 'offset' (or the default 'difference') for tabular nodes; "
            "'offset_child' is for image nodes whose estimator gives them their own "
            "features (ImageStatsRatio with extra_features), or an estimator that "
            "overrides node_features."
        )


def _check_constant_nodes(nodes: Sequence[str], source: Environment, target: Environment) -> None:
    """Refuse tabular nodes that are constant within an environment but not shared.

    Such a node (an environment indicator, a site-specific default value) separates
    the environments perfectly: its density ratio is infinite or zero, and every
    weight built from it is meaningless.
    """
    for node in nodes:
        # images (on disk or in memory): left to the image estimator, and not copied here
        if is_summarised(source, node) or is_summarised(target, node):
            continue
        a = np.asarray(source[node], dtype=float).reshape(len(source), -1)
        b = np.asarray(target[node], dtype=float).reshape(len(target), -1)
        const_a = np.all(a == a[:1], axis=0)
        const_b = np.all(b == b[:1], axis=0)
        for col in np.flatnonzero(const_a | const_b):
            if const_a[col] and const_b[col] and a[0, col] == b[0, col]:
                continue
            which = []
            if const_a[col]:
                which.append(f"source {source.name!r} (always {a[0, col]:g})")
            if const_b[col]:
                which.append(f"target {target.name!r} (always {b[0, col]:g})")
            column = f" column {col}" if a.shape[1] > 1 else ""
            # one side constant at a value the other side also holds: not separable, but
            # the other side's other values have no counterpart (positivity fails)
            for const, here, other, name in ((const_a, a, b, "target"), (const_b, b, a, "source")):
                if const[col] and not (const_a[col] and const_b[col]):
                    k = int(np.sum(other[:, col] != here[0, col]))
                    if k < len(other):
                        raise ValueError(
                            f"node {node!r}{column} is constant in {which[0]}, while {k} of "
                            f"the {len(other)} {name} cases hold other values, which the "
                            "other environment never has: their density ratio is infinite "
                            "or zero, not a weight. Compare only the cases both hold "
                            f"(subset the {name} to {here[0, col]:g}), or remove the node from "
                            "the graph."
                        )
            raise ValueError(
                f"node {node!r}{column} is constant in {' and '.join(which)} but not identical "
                "across environments: the environments are perfectly separable on it and its "
                "density ratio is degenerate. Remove the node from the graph (an environment "
                "indicator is not a variable to reweight), or check the data."
            )


def _both_samples_levels(
    both_samples: bool | Sequence[str],
    method: str,
    graph: CausalGraph,
    paired: Sequence[str],
) -> tuple[str, ...]:
    """The levels ``both_samples`` names, in causal order (``True``: every node that is
    not ``paired``); refuse what cannot use it."""
    order, paired = graph.topological_order(), set(paired)
    if isinstance(both_samples, (bool, np.bool_)):
        names = tuple(n for n in order if n not in paired) if both_samples else ()
    elif isinstance(both_samples, str) or not isinstance(both_samples, Sequence):
        raise ValueError(
            f"both_samples must be True, False or a list of node names, got {both_samples!r}."
        )
    else:
        unknown = sorted(set(both_samples) - set(graph.nodes))
        if unknown:
            raise ValueError(
                f"both_samples names {unknown}, which are not nodes of the graph "
                f"{sorted(graph.nodes)}."
            )
        names = tuple(n for n in order if n in set(both_samples))
    if names and method != "mr":
        raise ValueError(
            f"both_samples changes how method='mr' averages its terms; method={method!r} "
            "has none to change (method='mis' weights both samples already): use "
            "method='mr' or drop both_samples."
        )
    clash = sorted(set(names) & paired)
    if clash:
        raise ValueError(
            f"both_samples names {clash}, which are paired: their counterfactuals are "
            "substituted, not averaged over both samples; drop them from both_samples."
        )
    return names


def _bootstrap_intervals(
    mechs: Sequence[str],
    point_values: np.ndarray,
    repeat_values: np.ndarray,
    boot_values: np.ndarray,
    bootstrap: str,
    confidence: float,
) -> tuple[dict, dict, dict[str, Any] | None, list[dict[str, Any]]]:
    """Percentile intervals and standard errors from the bootstrap replicates (NaN
    without any), widened by the spread between cross-fitting repeats with the fixed
    bootstrap (:func:`~shiftattr.repeats.repeats_interval`); with repeats also their
    record and ``split_unstable`` warnings."""
    n_repeats, n_bootstrap = len(repeat_values), len(boot_values)
    repeat_warns: list[dict[str, Any]] = []
    repeats_info: dict[str, Any] | None = None
    iv = None
    if n_repeats > 1:
        repeats_info = {
            "n_repeats": int(n_repeats),
            "values": {k: repeat_values[:, i].tolist() for i, k in enumerate(mechs)},
            "sd": dict(zip(mechs, map(float, repeat_values.std(axis=0, ddof=1)))),
        }
        if n_bootstrap:
            iv = repeats_interval(point_values, repeat_values, boot_values, confidence)
            repeat_warns = split_unstable_warnings(mechs, iv.between_sd, iv.boot_sd, n_repeats)
    if iv is not None and bootstrap == "fixed":
        ci = {k: (float(a), float(b)) for k, a, b in zip(mechs, iv.low, iv.high)}
        stderr = dict(zip(mechs, map(float, iv.stderr)))
        repeats_info["interval_factor"] = dict(zip(mechs, map(float, iv.factor)))
    elif n_bootstrap:
        alpha = (1 - confidence) / 2
        lo, hi = np.quantile(boot_values, [alpha, 1 - alpha], axis=0)
        ci = {k: (float(a), float(b)) for k, a, b in zip(mechs, lo, hi)}
        stderr = dict(zip(mechs, map(float, boot_values.std(axis=0, ddof=1))))
    else:
        ci = {k: (float("nan"), float("nan")) for k in mechs}
        stderr = {k: float("nan") for k in mechs}
    return ci, stderr, repeats_info, repeat_warns


def _regression_cost_warnings(method: str, n_mechanisms: int, n_folds: int) -> list[dict]:
    """A ``costly_regressions`` warning for ``"mr"`` / ``"regression"`` with more than
    :data:`MANY_REGRESSION_MECHANISMS` weighted mechanisms."""
    if method not in ("mr", "regression") or n_mechanisms <= MANY_REGRESSION_MECHANISMS:
        return []
    fits = 2 ** (n_mechanisms + 1) - 2
    return [
        {
            "code": "costly_regressions",
            "mechanism": None,
            "message": (
                f"method={method!r} with {n_mechanisms} mechanisms fits up to {fits} nested "
                f"regressions, each cross-fitted over {n_folds} folds per candidate regressor, and "
                "again in every refit bootstrap replicate: the cost doubles with every "
                "mechanism (about 6 minutes at 9 mechanisms and N = 400 with 20 fixed "
                "replicates on 2 cores). method='mis' or 'iw' fits one ratio per mechanism; "
                "or attribute fewer mechanisms (mechanisms=...)."
            ),
        }
    ]


def count_warnings(diagnostics: dict[str, Any], warns: list[dict[str, Any]]) -> None:
    """Record how many warnings of each code a result carries, in
    ``diagnostics["overall"]`` (``n_warnings``, ``warning_counts``).

    Parameters
    ----------
    diagnostics : dict
        A result's diagnostics; its ``"overall"`` entry is created if missing and
        updated in place.
    warns : list of dict
        The result's warnings, each with a ``"code"``.

    Examples
    --------
    >>> d = {"overall": {}}
    >>> count_warnings(d, [{"code": "low_ess"}, {"code": "separable"}, {"code": "low_ess"}])
    >>> d["overall"]
    {'n_warnings': 3, 'warning_counts': {'low_ess': 2, 'separable': 1}}
    """
    overall = diagnostics.setdefault("overall", {})
    overall["n_warnings"] = len(warns)
    codes = sorted({w["code"] for w in warns})
    overall["warning_counts"] = {c: sum(w["code"] == c for w in warns) for c in codes}


def _closure_warning(
    estimated: float,
    measured: float,
    closure_ci: tuple[float, float] | None,
    method: str,
    metric_name: str,
    se: float | None = None,
) -> dict[str, Any]:
    """The ``closure_error`` warning: the estimated target metric misses the measured one
    beyond bootstrap noise (``closure_ci``, of their difference, excludes 0), or, with no
    bootstrap, by more than 3 of the cases' standard errors ``se``."""
    cause = (
        "fitted mechanisms misfit" if method == "generative" else "ratios are off, overlap is poor"
    )
    if closure_ci is not None:
        noise = (
            f"beyond bootstrap noise (closure error {estimated - measured:+.4f}, "
            f"CI [{_bound(closure_ci[0])}, {_bound(closure_ci[1])}])"
        )
    else:
        noise = (
            f"by more than 3 standard errors (closure error {estimated - measured:+.4f}, "
            f"SE {se:.4f} from the cases' noise alone: with n_bootstrap=0 the ratios' own "
            "error is not measured)"
        )
    return {
        "code": "closure_error",
        "mechanism": None,
        "message": (
            f"the estimate of the target {metric_name} ({estimated:.4f}) differs from the "
            f"measured one ({measured:.4f}) {noise}: {cause}, or a shifted mechanism is "
            "missing from `mechanisms`."
        ),
    }


def _check_options(
    graph: CausalGraph,
    known_ratios: Mapping[str, Callable] | None,
    paired: PairedSpec | None,
    conditional_ratios: str,
    bootstrap: str,
    cross_check: bool,
    method: str,
    interval: str,
    n_repeats: int,
    confidence: float,
    truncate: float | None,
    tolerance: float | None,
    n_bootstrap: int,
    n_folds: int,
    min_ess_fraction: float = 0.1,
    separable_auc: float = 0.95,
) -> str:
    """Check :func:`attribute`'s options that need no data (a ``ValueError`` naming the
    first one wrong and how to fix it); returns the resolved ``interval``."""
    _check_int("n_folds", n_folds, 2)
    if _check_int("n_bootstrap", n_bootstrap, 0) == 1:
        raise ValueError(
            "n_bootstrap must be 0 (no intervals) or 2 or more (200 recommended), got 1: "
            "one replicate gives a zero-width interval that need not hold even the estimate."
        )
    for key, fn in (known_ratios or {}).items():
        if key not in graph or not callable(fn):
            raise ValueError(
                f"known_ratios maps graph nodes {list(graph.nodes)} to callables "
                f"environment -> log-ratio per case; got {key!r}: {type(fn).__name__}."
            )
        if key in (paired or ()):
            raise ValueError(
                f"mechanism {key!r} is paired (substituted by its observed counterfactual) "
                "and needs no ratio: drop it from known_ratios or from paired."
            )
    if conditional_ratios not in CONDITIONAL_RATIOS:
        raise ValueError(
            f"conditional_ratios must be one of {CONDITIONAL_RATIOS}, got {conditional_ratios!r}."
        )
    if bootstrap not in ("auto", "refit", "fixed"):
        raise ValueError(f"bootstrap must be 'auto', 'refit' or 'fixed', got {bootstrap!r}.")
    if cross_check and method != "iw":
        raise ValueError(
            f"cross_check=True is for method='iw'; method={method!r} is always compared "
            "with importance weighting on the same ratios (methods_disagree). Leave "
            "cross_check out."
        )
    interval = resolve_interval(interval, method, n_bootstrap)
    if isinstance(n_repeats, bool) or not isinstance(n_repeats, Integral) or n_repeats < 1:
        raise ValueError(
            f"n_repeats must be a positive integer (1 = one fold assignment), got {n_repeats!r}."
        )
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}.")
    if truncate is not None and not (
        isinstance(truncate, Real) and not isinstance(truncate, bool) and truncate > 1
    ):  # NaN compares False: `truncate <= 1` let it through
        raise ValueError(
            f"truncate caps w / mean(w) and must be a number above 1, got {truncate!r}."
        )
    if truncate is not None and method in ("mr", "regression", "generative"):
        # it truncated only the importance-weighting twin: a warning that the estimate
        # is biased towards the source, and a wider bias-aware interval, for nothing
        raise ValueError(
            f"truncate caps the importance weights of method='iw'; method={method!r} does "
            "not weight its estimate by them: drop truncate (method='mr' caps its "
            "corrections with correction_cap)."
        )
    if tolerance is not None and not (
        isinstance(tolerance, Real) and not isinstance(tolerance, bool) and 0 < tolerance < np.inf
    ):
        raise ValueError(f"tolerance must be a positive number (metric units), got {tolerance}.")
    if tolerance is not None and not n_bootstrap:
        raise ValueError(
            "tolerance is judged against the bootstrap intervals (or the bias-aware ones "
            "built on them), but n_bootstrap=0: set n_bootstrap (e.g. 200) or leave "
            "tolerance out."
        )
    if method not in ESTIMATORS:
        raise ValueError(f"method must be one of {list(ESTIMATORS)}, got {method!r}.")
    # NaN compares False with every threshold: it would silence the warning for good
    if not (_is_number(min_ess_fraction) and 0 <= min_ess_fraction <= 1):
        raise ValueError(
            "min_ess_fraction is a share of the source cases in [0, 1] (0 turns the low_ess "
            f"warning off; default 0.1), got {min_ess_fraction!r}."
        )
    if not (_is_number(separable_auc) and 0.5 <= separable_auc <= 1):
        raise ValueError(
            "separable_auc is a discriminator AUC in [0.5, 1] (1 turns the separable warning "
            f"off; default 0.95), got {separable_auc!r}: below 0.5 every mechanism would "
            "count as separable."
        )
    return interval


def _is_number(value: Any) -> bool:
    """A real number (a numpy scalar or 0-d array included) that is not a bool and not NaN."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if not isinstance(value, Real) or isinstance(value, (bool, np.bool_)):
        return False
    return not math.isnan(float(value))


def attribute(
    graph: CausalGraph,
    source: Environment,
    target: Environment,
    metric: MetricLike,
    *,
    target_metric: MetricLike | None = None,
    mechanisms: Sequence[str] | None = None,
    estimators: Mapping[str, DensityRatioEstimator] | None = None,
    known_ratios: Mapping[str, Callable[[Environment], np.ndarray]] | None = None,
    conditional_ratios: str = "difference",
    method: str = "auto",
    features: Mapping[str, Featurizer] | None = None,
    regressor: Any = None,
    paired: PairedSpec | None = None,
    correction_cap: str | float | None = "sqrt",
    pooled_regressions: bool | str = "auto",
    both_samples: bool | Sequence[str] = False,
    cross_check: bool = False,
    n_simulations: int = 20_000,
    solver: ShapleySolver | None = None,
    n_folds: int = 5,
    n_repeats: int = 1,
    n_bootstrap: int = 200,
    bootstrap: str = "auto",
    interval: str = "auto",
    confidence: float = 0.95,
    tolerance: float | None = None,
    truncate: float | None = None,
    metric_name: str = "metric",
    higher_is_better: bool | None = None,
    min_ess_fraction: float = 0.1,
    separable_auc: float = 0.95,
    n_jobs: int = 1,
    progress: bool = True,
    random_state: int | None = None,
) -> Attribution:
    """Attribute the change of a model's metric between two environments to mechanisms.

    Parameters
    ----------
    graph : CausalGraph
        The data-generating process shared by both environments.
    source, target : Environment
        Training (source) and deployment (target) data.
    metric : array-like of shape (len(source),) or callable
        Per-case metric of the fixed model on the source cases (Dice, loss, accuracy),
        or a callable ``Environment -> array`` evaluated on ``source``.
    target_metric : array-like or callable, optional
        Measured per-case metric on the target (needs target labels). Reported beside
        the importance-weighted estimate of ``M(P_target)``; their difference is the
        closure error.
    mechanisms : sequence of str, optional
        Mechanisms (graph nodes) to attribute to; default every node. Mechanisms left
        out are held at the source.
    estimators : mapping of str to DensityRatioEstimator, optional
        Per-node estimators, e.g. ``{"X": CNNDiscriminator(spatial_dims=3)}``. A node
        set is estimated by the estimator of its last node (in topological order) that
        has one, so a mechanism's joint set uses its own node's and a parent set holding
        an image uses the image's (:func:`~shiftattr.ratios.crossfit.choose_estimator`);
        a set with none uses :class:`~shiftattr.ratios.ClassifierRatio`.
    known_ratios : mapping of str to callable, optional
        Mechanisms whose conditional log density ratio ``log p_t(v | pa) / p_s(v | pa)``
        is known rather than estimated, as ``fn(environment) -> (len(environment),)``
        evaluated on the source and the target cases (and on every resample of the
        refit bootstrap): a sampling design's known selection odds, or a simulator's
        oracle (:meth:`shiftattr.datasets.SyntheticMS.true_log_ratio`), which measures
        what perfect ratio estimators would give. No estimator is fitted for these
        mechanisms; their ``auc_joint`` diagnostic is the AUC of the known log-ratio.
        Not available through :func:`attribute_pairs`, the config file or the CLI
        (a ratio is specific to one pair of environments).
    conditional_ratios : {"difference", "offset", "offset_child"}, default "difference"
        How the conditional ratio of a mechanism with parents is estimated.
        ``"difference"``: the log-ratio of a classifier on the node and its parents
        minus that of one on the parents alone; where the parents shifted and the node's
        mechanism did not, the two classifiers' errors do not cancel and the unchanged
        mechanism gets noisy weights. ``"offset"``: one penalised logistic model on the
        joint set's features (the tabular values, or the image statistics) whose logit
        starts from the parents' cross-fitted log-ratio, so it learns only the
        conditional part and its penalty pulls an unchanged mechanism towards a ratio of
        one (:mod:`shiftattr.ratios.offset`); estimators without a feature matrix (a
        CNN discriminator) keep the difference. The chosen penalties are in
        ``diagnostics["mechanisms"][m]["offset_penalty"]``. ``"offset_child"``: the
        same model on the node's own features only
        (:meth:`~shiftattr.ratios.DensityRatioEstimator.node_features`), so it cannot
        take up what the parents' ratio missed; for the annotation of a segmentation,
        give its estimator the mask's agreement with the prediction
        (``extra_features={"Y": adapter.agreement_features}``), which is what lets it
        see an annotator shift.
    method : {"auto", "iw", "mis", "regression", "mr", "generative"}, default "auto"
        How ``M(P_I)`` is estimated (see :mod:`shiftattr.value`). ``"auto"``
        (:func:`~shiftattr.value.choice.resolve_method`): ``"mr"`` when the metric at
        the target cases is known (``target_metric``, or a callable ``metric``, which is
        then also run on the target), every graph node is in both environments and
        attributed, at most 8 mechanisms are weighted, and among the nodes seen
        through summaries (images, masks, more than 64 values per case), if any, one
        has a featurizer in ``features`` (e.g. ``{"X": adapter.output_features}``);
        ``"iw"`` otherwise, or with ``truncate`` or ``cross_check``, and then options
        only ``"mr"`` takes (``features``, ``regressor``, ``both_samples``...; with
        ``cross_check`` its own regressions take the first two) are refused with the
        reason. The measurements behind the choice (``"mr"`` erred less than ``"iw"``
        in every cell of the tabular benchmark and its intervals held the truth far more
        often) are in :doc:`/estimators` and :mod:`shiftattr.value.choice`.
        ``settings["method"]`` is the method that ran and ``settings["method_reason"]``
        says why; the default was ``"iw"`` until 2026-12-02; ``method="iw"`` still
        gives it. ``"iw"``:
        self-normalised importance weighting of the source cases. ``"mis"``: the same
        ratios weighting the source and the target cases together (multiple importance
        sampling with balance-heuristic weights, :class:`~shiftattr.value.BalancedValue`):
        a coalition close to the target finds its cases among the target's, so a strong
        shift no longer rests on a few source cases; it needs the metric at the target
        cases and every graph node in both environments, fits the ratio of every node,
        and takes no ``paired`` or ``truncate`` (``features``, as for ``"iw"``, are
        unused). ``"regression"``:
        nested regressions of the metric along the causal order. ``"mr"``: the
        regressions corrected by the ratios (multiply robust: consistent if, per
        mechanism, the regression or the ratio is right; far lower variance than
        ``"iw"`` under strong shifts). ``"regression"`` and ``"mr"`` need the metric
        at the target cases (``target_metric``, or a callable ``metric``) and every
        graph node in both environments. ``"generative"`` (tabular graphs): every
        mechanism fitted as a sampler of its node given its parents in each
        environment, every coalition's mixed distribution simulated and the callable
        ``metric`` scored on it (no weights; biased where a fitted mechanism family is
        wrong, which its anchors ``generative_misfit`` check); it needs a callable
        ``metric`` that depends on the graph's nodes only, one number per node and
        case, and ``bootstrap="refit"`` (see :mod:`shiftattr.value.generative`).
    features : mapping of str to callable, optional
        Regression features per node, ``featurizer(environment) -> (N, p)``, e.g.
        ``{"X": adapter.output_features}``; default raw values for tabular nodes and
        the basic :func:`~shiftattr.ratios.image_statistics` for images and masks.
    regressor : scikit-learn regressor or mapping of str to regressor, optional
        Regressor(s) of the nested regressions (or of the noise models of
        ``"generative"``), chosen by out-of-fold squared error; default
        :func:`~shiftattr.value.default_regressors`.
    paired : sequence of str, optional
        Mechanisms whose target value is observed for the source cases (paired
        counterfactual substitution): each must be a sink node, ``source`` must hold
        its values under ``target.name`` (:meth:`Environment.counterfactual`) or
        under the key given as ``{node: key}`` (e.g. ``{"Y": "annotator-4"}``; see
        :func:`~shiftattr.value.paired_keys`), and ``metric`` must be callable. These mechanisms get no weights and no
        regression: their counterfactual is re-scored directly.
    correction_cap : "sqrt", float or None, default "sqrt"
        ``method="mr"`` only: cap on the weights of its corrections, normalised to mean
        one. ``"sqrt"`` caps them at ``sqrt(n)`` for ``n`` cases (truncated importance
        sampling, Ionides 2008): a correction has mean zero where the regression is
        right, so the cap costs no bias there, and it grows with ``n``, so the estimate
        stays consistent where the regression is wrong. A number ``c > 1`` caps at
        ``c``; ``None`` leaves the weights as they are. The largest capped fraction is
        ``diagnostics["estimator"]["max_correction_truncated_fraction"]``.
    pooled_regressions : bool or "auto", default "auto"
        ``method="mr"`` or ``"regression"``: fit each nested regression on the cases of
        both environments, those of the other one weighted by the conditional density
        ratio of the regression's level (capped at ``sqrt(n)`` times the mean, then
        renormalised), instead of on one environment's cases only; levels without a
        ratio, paired levels and a last level without the target metric keep their
        own environment. The regressors must accept ``sample_weight``. A regression
        fitted on one scanner's images and predicted on another's extrapolates; pooled,
        it has seen both. It then relies
        on that level's ratio too (see :mod:`shiftattr.value.nested`). ``"auto"`` pools
        for ``method="mr"`` when a regression that can be pooled (its level has a ratio
        and is not paired) sees an image (a node with more than 64 values per case, on
        disk, or with a featurizer in ``features``) and every candidate regressor takes
        ``sample_weight``: on the synthetic MS benchmark that
        lowered ``"mr"``'s error at every N, on the tabular SCMs it did not
        (:mod:`shiftattr.value.pooling`, :doc:`/estimators`). The decision and its
        reason are in ``result.settings`` (``pooled_regressions``,
        ``pooled_regressions_reason``).
    both_samples : bool or sequence of str, default False
        ``method="mr"`` only: take the terms of these levels (``True``: every level)
        over the cases of both environments, as draws from their mixture with the
        balance-heuristic weights of ``method="mis"``, instead of over one environment's
        cases (:mod:`shiftattr.value.robust`). Needs ``target_metric`` (or a callable
        metric) and the ratio of every level up to the last one named (fitted for
        it); ``paired`` nodes stay substituted (``True`` names every other node).
        A level's term then leans on that level's ratio as ``"mis"`` does, where the
        default needs none; what it buys is that no value is tied to the two samples'
        means. Measured on the synthetic MS benchmark it had the lowest error of the
        unpaired estimators when the image ratios also saw the model's outputs (as on
        the command line), erred more than plain ``"mr"`` without them (MAE 0.019
        against 0.017 at N = 300), and was worse where only the annotator changed
        (:doc:`/estimators`). Its bias-aware interval takes the larger
        of its distances to importance weighting and to ``"mr"`` over each
        environment's own cases (``diagnostics["estimator"]["own_samples_values"]``).
    cross_check : bool, default False
        ``method="iw"``: also fit the plain regression estimate on the same cases (no
        ratios; needs ``target_metric`` and every graph node) and raise
        ``methods_disagree`` for a mechanism where the two differ beyond the bootstrap
        interval of their difference, as ``"regression"`` and ``"mr"`` always do against
        importance weighting. The two fail differently: weights too flat or too
        concentrated, regressions extrapolating across the shift. Its values and the
        difference's interval are in ``diagnostics["estimator"]`` (``check_values``,
        ``difference_ci``; the regressions' fits under ``check``). Costs one fit of the
        nested regressions: with ``bootstrap="refit"`` the cross-check's replicates keep
        them fixed (only importance weighting's ratios are refitted), which narrows the
        difference's interval, so errs towards warning.
    n_simulations : int, default 20000
        ``method="generative"``: simulated cases per coalition. All coalitions share
        their random numbers (quantile-coupled draws), which lowers the Monte-Carlo
        error of the values below that of independent draws; it is
        ``diagnostics["estimator"]["simulation_stderr"]``.
    solver : ShapleySolver, optional
        Default :class:`~shiftattr.shapley.ExactShapley`.
    n_folds : int, default 5
        Cross-fitting folds.
    n_repeats : int, default 1
        Cross-fitting repeated on this many independent fold assignments (repeated
        sample splitting, as in double machine learning): the values are the mean over
        the repeats, and ``diagnostics["repeats"]`` holds each repeat's values and their
        standard deviation. With ``bootstrap="fixed"`` every replicate averages the
        same repeats (``bootstrap_values`` holds these replicates), and the interval and
        standard error are widened by the variance between repeats: the part of the
        fitted models' variance that shows as dependence on the fold split, which a fixed
        bootstrap leaves out (see :mod:`shiftattr.repeats`; the factor is
        ``diagnostics["repeats"]["interval_factor"]``; the closure interval is not
        widened). With ``n_bootstrap > 0``, a mechanism whose repeats differ by more than
        its bootstrap standard error gets a ``split_unstable`` warning. With ``"refit"``
        each replicate is fitted once (its folds are drawn anew anyway). The weight
        diagnostics (ESS, AUC, maximum weight and their warnings) and the regression
        diagnostics of ``"mr"`` are those of the first repeat. Costs ``n_repeats`` times
        the fitting. Measured on
        the synthetic MS benchmark (N = 300, fixed bootstrap, ``n_repeats=5``): with
        ``method="iw"`` the repeats differed by more than the bootstrap standard error
        for 121 of 165 (run, mechanism) pairs, and coverage rose from 68 % to 80 %; with
        ``"mr"`` for 13 of 165, coverage 77 % to 79 % (see :doc:`/estimators`).
    n_bootstrap : int, default 200
        Bootstrap replicates for confidence intervals (0 disables them).
    bootstrap : {"auto", "refit", "fixed"}, default "auto"
        ``"refit"`` resamples source and target cases and refits every ratio estimator
        per replicate: honest, and the right default for small N, but costs
        ``n_bootstrap`` times the fitting. ``"auto"``: ``"fixed"`` for ``"mr"`` over
        each environment's own cases (no ``both_samples``; what ``method="auto"``
        runs where the target metric is known) and when an estimator or the regressor
        trains a network (``CNNDiscriminator``, ``CNNRegressor``: 200 refits of every
        fold's network take hours on a CPU), as the command line does, else
        ``"refit"``; ``method="generative"`` has no fixed bootstrap
        (:func:`~shiftattr.bootstrap.resolve_bootstrap`);
        ``settings["bootstrap"]`` records which ran. ``"fixed"`` resamples the cases with the
        point estimate's cross-fitted ratios (and regressions) held fixed: fast; for
        ``"iw"`` it ignores the ratio estimators' own variance, so its intervals are
        narrower than the truth, while for ``"mr"`` the nuisance error is of second
        order and the fixed bootstrap is the standard choice.
    interval : {"auto", "bootstrap", "bias_aware"}, default "auto"
        What ``ci`` holds; ``settings["interval"]`` says which. ``"auto"``:
        ``"bias_aware"`` for ``method="mr"``, ``"mis"`` and ``"generative"`` (with
        ``n_bootstrap >= 2``), else ``"bootstrap"``. ``"bootstrap"``: the bootstrap percentile interval (widened
        by the repeats' spread with ``n_repeats > 1``): sampling noise only.
        ``"bias_aware"`` (not ``"iw"``; ``n_bootstrap >= 2``):
        ``value ± se * cv(b / se)``, which also covers a bias up to
        ``b = |value - iw_value|``, the distance to importance weighting with the
        same ratios (see :mod:`shiftattr.bias_aware`; Armstrong and Kolesár 2020).
        The two estimators fail differently, so their distance is a data-driven scale
        of the error the bootstrap cannot see. Both intervals are always in
        ``diagnostics["estimator"]`` (``bootstrap_ci``, ``bias_aware_ci``, ``bias_bound``).
        Measured on the synthetic MS benchmark (``method="mr"``, fixed bootstrap), it
        held the truth for 95-98 % of (run, mechanism) pairs at N = 100-1000 where the
        bootstrap interval held it for 77-80 %, at about twice the width (see
        :doc:`/estimators`): hence the default for ``"mr"``. For ``"mis"`` (refit
        bootstrap, extended image statistics with the model's outputs) 92-94 % against
        76-88 %, and 73-91 % against 64-67 % on the tabular SCMs.
    confidence : float, default 0.95
        Level of the intervals.
    tolerance : float, optional
        The precision you need, in the metric's units (e.g. ``0.02`` Dice). A mechanism
        whose interval (``ci``: the bias-aware one with ``interval="bias_aware"``) is
        wider than ``value ± tolerance`` gets an ``imprecise`` warning:
        its value is not pinned down to the precision asked for, whatever the estimate.
        Needs ``n_bootstrap > 0``.
    truncate : float, optional
        Cap on normalised weights ``w / mean(w)`` of ``method="iw"``; the truncated
        fraction is reported. Refused with the other methods.
    metric_name : str, default "metric"
        Shown in tables and plots, e.g. ``"Dice"``; unless ``higher_is_better`` is
        given, it also says which direction of the metric is better (the default name
        says nothing, and the results describe values neutrally).
    higher_is_better : bool, optional
        The metric's direction: ``True`` where a higher metric is better (Dice,
        accuracy: positive values are drops in performance), ``False`` where lower is
        better (a loss, a distance such as ``"hausdorff95"``: positive values are
        improvements). Default: ``metric_name`` looked up in
        :data:`shiftattr.metrics.HIGHER_IS_BETTER` (case-insensitive, see
        :func:`shiftattr.metrics.metric_direction`); a name it does not know leaves the
        direction unknown (``None``). It changes no number: it decides the wording and
        colours of the summary, plot and report and which mechanism is
        :attr:`~shiftattr.Attribution.dominant`. Recorded as
        ``settings["higher_is_better"]`` (True, False or None).
    min_ess_fraction : float in [0, 1], default 0.1
        A coalition whose Kish effective sample size falls below this fraction of the
        source size raises a ``low_ess`` warning (0: never).
    separable_auc : float in [0.5, 1], default 0.95
        A mechanism whose out-of-fold discriminator AUC exceeds this raises a
        ``separable`` warning (overlap is doubtful; 1: never).
    n_jobs : int, default 1
        joblib workers for fold fits and bootstrap replicates.
    progress : bool, default True
        Progress bars; ``False`` is quiet.
    random_state : int, optional
        Seed: same seed, same numbers.

    Returns
    -------
    Attribution
        Values (positive = the metric fell from source to target: a performance drop
        where higher is better), intervals, diagnostics, warnings.

    Examples
    --------
    >>> import shiftattr as sa
    >>> scm = sa.datasets.LinearGaussianSCM.example()
    >>> src = scm.sample(400, "source", random_state=0)
    >>> tgt = scm.sample(400, "target", random_state=1)
    >>> res = sa.attribute(scm.graph, src, tgt, metric=scm.metric(src),
    ...                    n_bootstrap=0, n_folds=3, progress=False, random_state=0)
    >>> sorted(res.values)
    ['X', 'Y', 'Z']
    >>> mr = sa.attribute(scm.graph, src, tgt, metric=scm.metric(src),
    ...                   target_metric=scm.metric(tgt), method="mr",
    ...                   n_bootstrap=0, n_folds=3, progress=False, random_state=0)
    >>> mr.settings["method"]
    'mr'
    >>> res.settings["higher_is_better"] is None  # "metric" names no known direction
    True
    >>> loss = sa.datasets.LinearGaussianSCM.example(metric="squared_error")
    >>> res = sa.attribute(loss.graph, src, tgt, metric=loss.metric(src),
    ...                    metric_name="squared_error", n_bootstrap=0, n_folds=3,
    ...                    progress=False, random_state=0)
    >>> res.settings["higher_is_better"]
    False
    """
    t0 = time.perf_counter()
    from shiftattr.metrics import resolve_direction

    higher_is_better = resolve_direction(higher_is_better, metric_name)
    mechs = _validate_inputs(graph, source, target, mechanisms, estimators)
    method, method_reason = resolve_method(
        method,
        graph,
        (source, target),
        target_metric_known=target_metric is not None or callable(metric),
        mechanisms=mechs,
        paired=paired,
        truncate=truncate,
        cross_check=cross_check,
        both_samples=both_samples,
        pooled_regressions=pooled_regressions,
        correction_cap=correction_cap,
        regressor=regressor,
        features=features,
        interval=interval,
    )
    interval = _check_options(
        graph,
        known_ratios,
        paired,
        conditional_ratios,
        bootstrap,
        cross_check,
        method,
        interval,
        n_repeats,
        confidence,
        truncate,
        tolerance,
        n_bootstrap,
        n_folds,
        min_ess_fraction,
        separable_auc,
    )
    min_ess_fraction, separable_auc = float(min_ess_fraction), float(separable_auc)
    bootstrap = resolve_bootstrap(bootstrap, estimators, regressor, method, both_samples)
    if conditional_ratios == "offset_child":
        _check_offset_child(graph, mechs, estimators, known_ratios, paired)
    check_correction_cap(correction_cap)
    check_pooled(pooled_regressions, method)
    if method == "generative":
        _check_generative(metric, paired, features, bootstrap, n_bootstrap, n_simulations)
        check_tabular_nodes(graph.nodes, source, target)  # before any fitting
    m = check_metric(metric, source, "metric")
    mt = None if target_metric is None else check_metric(target_metric, target, "target_metric")
    regresses = method in ("regression", "mr") or cross_check
    what = "cross_check=True" if method == "iw" else f"method={method!r}"
    if mt is None and (regresses or method in ("generative", "mis")) and callable(metric):
        try:
            mt = check_metric(metric, target, "metric at the target cases")
        except ValueError as err:
            if not method_reason.startswith("auto"):
                raise
            raise ValueError(
                f"{err} (method='auto' chose {method!r}, which also scores the target cases "
                "with the callable metric; method='iw' scores the source cases only)"
            ) from err
    if method == "mis":
        _check_mis(graph, source, target, mt, paired, truncate)
    if mt is None and regresses:
        raise ValueError(
            f"{what} regresses the metric in both environments and needs it at "
            "the target cases: pass target_metric=..., or a callable metric."
        )
    pairs = check_paired(graph, paired or (), mechs, source, target, metric)
    both_levels = _both_samples_levels(both_samples, method, graph, pairs)
    # said before the fitting starts, which it may not end for hours
    preflight = _regression_cost_warnings(method, len(mechs) - len(pairs), n_folds)
    for w in preflight:
        warnings.warn(w["message"], ShiftAttrWarning, stacklevel=2)
    paired_s: dict = {}
    paired_t: dict = {}
    if pairs:
        keys = paired_keys(paired, source, target)
        paired_s, paired_t = paired_metrics(
            metric, source, target, pairs, m, mt, check_metric, keys
        )
    feats = None
    pooled, pooled_reason = False, "no nested regressions"
    if regresses:
        levels = value_levels(graph, pairs)
        pooled, pooled_reason = resolve_pooled(
            pooled_regressions,
            method,
            levels,
            (source, target),
            ratio_nodes=ratio_nodes(method, levels, mechs, pairs),  # those pooling uses
            n_paired=len(pairs),
            regressors=regressor,
            featurizers=features,
        )
        missing = [(n, e.name) for e in (source, target) for n in levels if n not in e]
        if missing:
            raise ValueError(
                f"{what} regresses along every node of the graph, but "
                f"{missing} (node, environment) are missing; add them or use method='iw'"
                f"{' without cross_check' if cross_check else ''}."
            )
        check_image_regressors(regressor, features, source, target, levels=levels)
        feats = tuple(level_features(env, levels, features) for env in (source, target))
    solver = ExactShapley() if solver is None else solver
    rng = np.random.default_rng(random_state)

    fit_kwargs: dict[str, Any] = {
        "estimator": method,
        "graph": graph,
        "mechanisms": mechs,
        "paired": pairs,
        "estimators": estimators,
        "regressors": regressor,
        "n_folds": n_folds,
        "truncate": truncate,
        "correction_cap": correction_cap,
        "pooled_regressions": pooled,
        "both_samples": both_levels,
        "cross_check": bool(cross_check),
        "known_ratios": dict(known_ratios or {}),
        "conditional_ratios": conditional_ratios,
        "metric_fn": metric if method == "generative" else None,
        "n_simulations": int(n_simulations),
    }
    seeds = [int(rng.integers(2**31 - 1)) for _ in range(int(n_repeats))]
    if getattr(solver, "random_state", 0) is None:  # an unseeded sampling solver
        solver = copy.copy(solver)
        solver.random_state = derived_seed(seeds[0], "solver")
    fits = [
        fit_value(
            source=source,
            target=target,
            metric=m,
            metric_target=mt,
            paired_source=paired_s,
            paired_target=paired_t,
            features_source=None if feats is None else feats[0],
            features_target=None if feats is None else feats[1],
            n_jobs=n_jobs,
            progress=progress,
            random_state=seed,
            **fit_kwargs,
        )
        for seed in seeds
    ]
    fitted = fits[0]  # its ratios give the weight diagnostics
    points = [solve_with_twin(f, solver, None, None) for f in fits]
    repeat_values = np.array([p[0].values for p in points])
    point_values = repeat_values.mean(axis=0)
    estimated_target = float(np.mean([p[1] for p in points]))
    iw_point = None if points[0][2] is None else np.mean([p[2] for p in points], axis=0)
    own_point = None  # "mr" over each environment's own cases, beside both_samples
    if both_levels:
        own_point = np.mean(
            [
                solver.solve(dataclasses.replace(f, robust=f.robust.own_samples()).game()).values
                for f in fits
            ],
            axis=0,
        )
    source_metric = float(np.mean(m))

    # -- bootstrap -------------------------------------------------------------------
    boot = Replicates(np.empty((0, len(mechs))), np.empty(0), None)
    boot_measured = np.empty(0)
    if n_bootstrap:
        ns, nt = len(source), len(target)
        idx_s = rng.integers(0, ns, size=(n_bootstrap, ns))
        idx_t = rng.integers(0, nt, size=(n_bootstrap, nt))
        if bootstrap == "fixed":
            # replicates share the fitted models (and their lazily filled caches): in process
            boot = fixed_bootstrap(fits, solver, idx_s, idx_t, progress)
        else:
            quiet = {**fit_kwargs, "n_jobs": 1, "progress": False, "cross_check": False}
            boot_seeds = rng.integers(2**31 - 1, size=n_bootstrap)
            cases = Cases(source, target, m, mt, paired_s, paired_t, feats)
            boot = refit_bootstrap(quiet, solver, cases, idx_s, idx_t, boot_seeds, n_jobs, progress)
            if cross_check:  # its regressions held fixed: refitting them costs too much
                checks = [f.check for f in fits]
                twin = fixed_bootstrap(checks, solver, idx_s, idx_t, False, False).values
                boot = boot._replace(twin=twin)
        if mt is not None:
            boot_measured = mt[idx_t].mean(axis=1)
    boot_values, boot_target = boot.values, boot.target
    boot_iw = np.empty((0, len(mechs))) if boot.twin is None else boot.twin

    alpha = (1 - confidence) / 2
    values = dict(zip(mechs, map(float, point_values)))
    ci, stderr, repeats_info, repeat_warns = _bootstrap_intervals(
        mechs, point_values, repeat_values, boot_values, bootstrap, confidence
    )

    # -- diagnostics -----------------------------------------------------------------
    diagnostics, warns = _diagnostics(
        fitted.mechanism_ratios(),
        m,
        truncate,
        min_ess_fraction,
        separable_auc,
        mt,
        source_metric,
        fitted.balanced,
        any_paired=bool(pairs),
    )
    for mech in pairs:  # substituted: no weights, no discriminator
        diagnostics["mechanisms"][mech] = {
            "paired": True,
            "auc_joint": float("nan"),
            "auc_parents": None,  # no discriminator: as for a root (NaN read back as None)
            "ess": float(len(source)),
            "ess_fraction": 1.0,
            "max_weight": 1.0,
            "frac_truncated": 0.0,
            "log_ratio_sd": 0.0,
        }
    diagnostics["mechanisms"] = {k: diagnostics["mechanisms"][k] for k in mechs}
    if fitted.ratios is not None and fitted.ratios.fit_reports:
        diagnostics["ratio_fits"] = fitted.ratios.fit_reports
        warns += _flat_folds(fitted.ratios.fit_reports, fitted.ratios.node_sets)
    diagnostics["estimator"] = fitted.details()
    if fitted.generative is not None:
        warns += generative_warnings(diagnostics["estimator"], m, mt, metric_name)
    if repeats_info is not None:
        diagnostics["repeats"] = repeats_info
    warns += repeat_warns
    held = [n for n in graph.nodes if n not in pairs and n in source and n in target]
    warns += _unseen_levels(held, source, target)
    if mt is not None:
        diagnostics["metric_range"] = metric_range(m, mt)
        if method == "iw" and not pairs:  # the one method averaging source values only
            warns += metric_beyond_source(diagnostics["metric_range"], metric_name)
    warns += _identical_environments(graph, source, target)
    # re-scored paired cases are per-case values of the metric too
    substituted = [*paired_s.values(), *paired_t.values()]
    warns += values_beyond_span(values, [m, mt, *substituted], metric_name)
    if iw_point is not None:
        warns += _compare_with_twin(
            diagnostics["estimator"], fitted, mechs, values, iw_point, boot_values, boot_iw, alpha
        )
    if own_point is not None:
        diagnostics["estimator"]["own_samples_values"] = dict(zip(mechs, map(float, own_point)))
    if method != "iw" and n_bootstrap:
        bound = np.abs(point_values - iw_point)
        if own_point is not None:  # both_samples leans on ratios the own-cases mr needs not
            bound = np.maximum(bound, np.abs(point_values - own_point))
        ba = bias_aware_interval(
            point_values, bound, np.array([stderr[k] for k in mechs]), confidence
        )
        est = diagnostics["estimator"]
        est["bootstrap_ci"] = dict(ci)
        est["bias_bound"] = dict(zip(mechs, map(float, ba.bound)))
        est["bias_aware_ci"] = {k: (float(a), float(b)) for k, a, b in zip(mechs, ba.low, ba.high)}
        if interval == "bias_aware":
            ci = dict(est["bias_aware_ci"])
    if method == "regression" and bootstrap == "fixed" and n_bootstrap:
        warns.append(
            {
                "code": "narrow_interval",
                "mechanism": None,
                "message": (
                    "method='regression' with bootstrap='fixed' holds the regressions "
                    "fixed, so its intervals leave out their error and are far too narrow "
                    "(they covered the truth in 33-36% of the synthetic-MS benchmark runs): "
                    "use bootstrap='refit', or method='mr'."
                ),
            }
        )
    if method in WEIGHTING_METHODS and bootstrap == "fixed" and n_bootstrap >= 2:
        # measured with fixed-ratio intervals only (refit puts the ratios' noise back)
        warns += _not_separated(values, ci, diagnostics["mechanisms"])
    if tolerance is not None:
        warns += _imprecise(values, ci, tolerance, confidence, method, bool(pairs))
    measured = None if mt is None else float(mt.mean())
    closure = None if measured is None else estimated_target - measured
    closure_ci = None
    if measured is not None:
        # "mr" reproduces the measured metric by construction (its replicates differ from
        # it by rounding), and "mis" up to the weight its balance heuristic leaves on the
        # source under strong separation (~1e-8 Dice): a discrepancy below a ten-thousandth
        # of the per-case metric's spread (over both environments) is no misfit.
        spread = float(np.std(np.concatenate([np.ravel(m), np.ravel(mt)])))
        negligible = max(1e-9 * max(1.0, abs(measured)), 1e-4 * spread)
    every_node = set(mechs) == set(graph.nodes)
    if measured is not None and method == "mr" and every_node and abs(closure) <= negligible:
        # every node attributed: the estimate telescopes to the measured metric, so the
        # printed zero would read as a passed check; say it is none
        diagnostics["overall"]["closure_by_construction"] = True
    if measured is not None and n_bootstrap:
        closure_ci = tuple(map(float, np.quantile(boot_target - boot_measured, [alpha, 1 - alpha])))
        if closure_ci[0] > negligible or closure_ci[1] < -negligible:
            warns.append(
                _closure_warning(estimated_target, measured, closure_ci, method, metric_name)
            )
    elif measured is not None:
        # no replicates: the estimate's sampling error from the all-shifted weights' ESS
        # and the measured metric's; the ratios' own error is left out, hence 3 SE
        ess = diagnostics.get("overall", {}).get("ess_all", len(m))
        se = float(np.sqrt(np.var(m, ddof=1) / max(ess, 1.0) + np.var(mt, ddof=1) / len(mt)))
        if abs(closure) > max(3 * se, negligible):
            warns.append(
                _closure_warning(estimated_target, measured, None, method, metric_name, se)
            )
    count_warnings(diagnostics, preflight + warns)
    for w in warns:
        warnings.warn(w["message"], ShiftAttrWarning, stacklevel=2)
    warns = preflight + warns

    settings = {
        "source": source.name,
        "target": target.name,
        "n_source": len(source),
        "n_target": len(target),
        "metric_name": metric_name,
        "higher_is_better": higher_is_better,
        "estimators": {m_: type(_est).__name__ for m_, _est in (estimators or {}).items()},
        "estimator_params": {m_: _plain_params(_est) for m_, _est in (estimators or {}).items()},
        "default_estimator": "ClassifierRatio",
        "method": method,
        "method_reason": method_reason,
        "paired": {n: list(k) for n, k in paired_keys(paired, source, target).items()},
        "features": sorted(features or {}),
        "regressor": (
            None
            if regressor is None
            else sorted(regressor)
            if isinstance(regressor, Mapping)
            else type(regressor).__name__
        ),
        "solver": type(solver).__name__,
        "n_evaluations": int(sum(p[0].n_evaluations for p in points)),
        "n_folds": int(n_folds),
        "n_repeats": int(n_repeats),
        "n_bootstrap": int(n_bootstrap),
        "bootstrap": bootstrap,
        "interval": interval,
        "confidence": float(confidence),
        "tolerance": tolerance,
        "truncate": truncate,
        "correction_cap": correction_cap if method == "mr" else None,
        "pooled_regressions": pooled,
        "pooled_regressions_requested": pooled_regressions,
        "pooled_regressions_reason": pooled_reason,
        "both_samples": list(both_levels),
        "cross_check": bool(cross_check),
        "n_simulations": int(n_simulations) if method == "generative" else None,
        "known_ratios": sorted(known_ratios or {}),
        "conditional_ratios": conditional_ratios,
        "random_state": random_state,
        "seconds": time.perf_counter() - t0,
        "graph": graph.to_dict(),
    }
    return Attribution(
        mechanisms=mechs,
        values=values,
        ci=ci,
        stderr=stderr,
        solver_stderr=solver_stderr(mechs, [p[0] for p in points]),
        source_metric=source_metric,
        estimated_target_metric=estimated_target,
        measured_target_metric=measured,
        closure_error=closure,
        closure_ci=closure_ci,
        diagnostics=diagnostics,
        warnings=warns,
        settings=settings,
        bootstrap_values=boot_values,
    )


def imprecise_mechanisms(
    values: Mapping[str, float],
    ci: Mapping[str, Sequence[float]],
    tolerance: float,
) -> dict[str, float]:
    """The mechanisms whose interval reaches further than ``tolerance`` from their value.

    The rule of ``attribute(..., tolerance=...)``'s ``imprecise`` warning. A missing
    (NaN) interval reaches nowhere.

    Parameters
    ----------
    values : mapping of str to float
        Point estimates per mechanism.
    ci : mapping of str to (low, high)
        Their intervals.
    tolerance : float
        The precision asked for, in the metric's units.

    Returns
    -------
    dict of str to float
        For each such mechanism, how far its interval reaches from its value.

    Examples
    --------
    >>> imprecise_mechanisms({"X": 0.5, "Y": 0.25}, {"X": (0.25, 0.875), "Y": (0.0, 0.5)}, 0.3)
    {'X': 0.375}
    """
    out = {}
    for k, (lo, hi) in ci.items():
        reach = float(np.maximum(values[k] - lo, hi - values[k]))  # NaN if no interval
        if reach > tolerance:
            out[k] = reach
    return out


def not_separated_mechanisms(
    ci: Mapping[str, tuple[float, float]],
    mechanisms: Mapping[str, Mapping[str, Any]],
) -> dict[str, tuple[float, float]]:
    """Mechanisms whose interval excludes 0 although their node set tells the
    environments apart no better than its parents do.

    A conditional log-ratio is the difference of two fitted log-ratios, the node set's
    and its parents'. When the node set's out-of-fold AUC is not above the parents',
    the classifiers show no shift of the mechanism beyond its parents', and the
    difference may hold only their noise; a fixed-ratio interval holds that noise fixed
    and can exclude 0 around it. The comparison has no margin: AUCs a few thousandths
    apart decide it. Root mechanisms (no parents), substituted ones, known ratios and
    offset-fitted conditional ratios (whose joint AUC is pulled towards the parents' by
    the offset's penalty) are never listed, nor mechanisms missing from ``ci``.

    Parameters
    ----------
    ci : mapping of str to (float, float)
    mechanisms : mapping of str to dict
        ``Attribution.diagnostics["mechanisms"]`` (``auc_joint``, ``auc_parents``,
        ``known_ratio``, ``paired``, ``offset_penalty``).

    Returns
    -------
    dict
        Mechanism -> ``(auc_joint, auc_parents)``.

    Examples
    --------
    >>> diag = {"X": {"auc_joint": 0.81, "auc_parents": 0.58},
    ...         "Y": {"auc_joint": 0.808, "auc_parents": 0.811}}
    >>> not_separated_mechanisms({"X": (0.01, 0.17), "Y": (-0.045, -0.012)}, diag)
    {'Y': (0.808, 0.811)}
    """
    out = {}
    for k, d in mechanisms.items():
        joint, parents = d.get("auc_joint"), d.get("auc_parents")
        skip = d.get("known_ratio") or d.get("paired") or d.get("offset_penalty") is not None
        if skip or joint is None or parents is None or k not in ci:
            continue
        if not (np.isfinite(joint) and np.isfinite(parents)) or joint > parents:
            continue
        lo, hi = ci[k]
        if lo > 0 or hi < 0:
            out[k] = (float(joint), float(parents))
    return out


def _bound(x: float) -> str:
    """An interval bound for a message saying the interval excludes 0: four decimals,
    or two significant digits where four would print it as a signed zero."""
    return f"{x:+.4f}" if abs(x) >= 5e-5 else f"{x:+.1e}"


def _not_separated(
    values: dict[str, float],
    ci: dict[str, tuple[float, float]],
    mechanisms: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    """A ``shift_not_separated`` warning per mechanism of :func:`not_separated_mechanisms`."""
    return [
        {
            "code": "shift_not_separated",
            "mechanism": k,
            "message": (
                f"mechanism {k!r}: {values[k]:+.4f} with an interval [{_bound(ci[k][0])}, "
                f"{_bound(ci[k][1])}] that excludes 0, but its node set separates the "
                f"environments no better than its parents (AUC {joint:.3f} vs {parents:.3f}): "
                "the classifiers show no shift of this mechanism beyond its parents', so "
                "its value may be the noise of the difference of two fitted log-ratios, "
                "which the fixed-ratio interval holds fixed. Check it with a second "
                "estimate (method='mr', or cross_check=True with method='iw') before "
                "reading it as an effect."
            ),
        }
        for k, (joint, parents) in not_separated_mechanisms(ci, mechanisms).items()
    ]


def _imprecise(
    values: dict[str, float],
    ci: dict[str, tuple[float, float]],
    tolerance: float,
    confidence: float,
    method: str = "iw",
    paired: bool = False,
) -> list[dict[str, Any]]:
    """An ``imprecise`` warning per mechanism whose interval reaches beyond ± tolerance;
    its advice leaves out what the run already uses (``method="mr"``, paired data)."""
    remedies = ["more cases"]
    remedies += [] if method == "mr" else ["method='mr'"]
    remedies += [] if paired else ["paired data"]
    advice = (
        remedies[0] if len(remedies) == 1 else f"{remedies[0]}, or " + " or ".join(remedies[1:])
    )
    return [
        {
            "code": "imprecise",
            "mechanism": k,
            "message": (
                f"mechanism {k!r}: {values[k]:+.4f} with a {100 * confidence:.0f}% interval "
                f"[{ci[k][0]:+.4f}, {ci[k][1]:+.4f}] that reaches {reach:.4f} from it, beyond "
                f"the tolerance {tolerance}: the data do not pin this value down to the "
                f"precision asked for ({advice})."
            ),
        }
        for k, reach in imprecise_mechanisms(values, ci, tolerance).items()
    ]


def _compare_with_twin(
    details: dict[str, Any],
    fitted: FittedValue,
    mechs: tuple[str, ...],
    values: dict[str, float],
    twin: np.ndarray,
    boot_values: np.ndarray,
    boot_twin: np.ndarray,
    alpha: float,
) -> list[dict[str, Any]]:
    """The estimate beside its twin: importance weighting from the same ratios beside a
    regression-based estimate, or the regression cross-check beside importance weighting.

    The two estimators fail differently (weights: few cases carry the estimate, or the
    ratio is too flat; regressions: extrapolation across the shift), so a difference
    beyond the bootstrap noise of the difference is a warning sign for both.
    """
    check = fitted.estimator == "iw"
    details["check_values" if check else "iw_values"] = dict(zip(mechs, map(float, twin)))
    if not len(boot_twin):
        return []
    lo, hi = np.quantile(boot_values - boot_twin, [alpha, 1 - alpha], axis=0)
    details["difference_ci"] = {k: (float(a), float(b)) for k, a, b in zip(mechs, lo, hi)}
    other = (
        "the regression estimate (cross_check)"
        if check
        else "importance weighting with the same ratios"
    )
    # where the two agree in most replicates a bound is 0 up to rounding (3.6e-15 was
    # read as excluding 0): it must clear the values' own rounding
    tol = 1e-9 * max(float(np.nanmax(np.abs(boot_values))), float(np.nanmax(np.abs(boot_twin))))
    warns = []
    for k, a, b, v_twin in zip(mechs, lo, hi, twin):
        if a > tol or b < -tol:
            point = values[k] - v_twin
            outside = (
                ""
                if a <= point <= b
                else f"The point difference ({point:+.4f}) lies outside that interval: the "
                "bootstrap replicates disagree more than the point estimates do, so read "
                "this as estimators unstable under resampling rather than as a measured gap. "
            )
            warns.append(
                {
                    "code": "methods_disagree",
                    "mechanism": k,
                    "message": (
                        f"mechanism {k!r}: {fitted.estimator} gives {values[k]:+.4f} but "
                        f"{other} gives {v_twin:+.4f}; the "
                        f"difference's interval [{_bound(a)}, {_bound(b)}] excludes 0. "
                        + outside
                        + _disagreement_causes(fitted.estimator)
                    ),
                }
            )
    return warns


def _disagreement_causes(estimator: str) -> str:
    """What usually makes an estimator and its twin disagree, for the warning's message."""
    if estimator == "mis":
        return (
            "Either the source-only weights of importance weighting rest on few cases (a "
            "strong shift), or the ratios are too flat or off by a constant, which moves "
            "'mis' towards the pooled mean of both environments (see ESS and AUC): trust "
            "neither blindly."
        )
    model = (
        "the fitted mechanisms misfit where the other environment's parents lie (see "
        "mechanism_fits and the anchors)"
        if estimator == "generative"
        else "the regressions extrapolate across the shift"
    )
    return (
        f"Either {model}, or the weights rest on few cases or are too flat (see ESS, AUC"
        + (")" if estimator == "generative" else " and regression R²)")
        + ": trust neither blindly."
    )


def _diagnostics(
    mr: MechanismRatios | None,
    m: np.ndarray,
    truncate: float | None,
    min_ess_fraction: float,
    separable_auc: float,
    mt: np.ndarray | None,
    source_metric: float,
    balanced: BalancedValue | None = None,
    any_paired: bool = False,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Per-mechanism and overall weight diagnostics, and the warnings they raise.

    The weights are those of each mechanism shifted alone and of all shifted: importance
    weights of the source cases, or with ``balanced`` (``method="mis"``) the
    balance-heuristic weights of the source and the target cases it averages with.
    """
    if mr is None:  # every mechanism substituted: nothing is weighted
        return {"mechanisms": {}, "overall": {"n_source": len(m)}}, []
    n = len(mr.mechanisms)
    C = np.vstack([np.eye(n, dtype=bool), np.ones((1, n), dtype=bool)])
    if balanced is None:
        N, cases = mr.log_ratios.shape[1], "source cases"
        wm = coalition_weighted_means(C, mr.log_ratios, m, truncate=truncate)
        khat = pareto_khat(coalition_log_weights(C, mr.log_ratios))
    else:
        # "mis" weights every mechanism (no paired ones): its players are mr's, in order
        N, cases = balanced.n_source + balanced.n_target, "source and target cases"
        wm = balanced.weighted_means(C)
        khat = pareto_khat(balanced.log_weights(C))
    per = {}
    warns: list[dict[str, Any]] = []
    for i, mech in enumerate(mr.mechanisms):
        per[mech] = {
            "auc_joint": mr.auc_joint[mech],
            "auc_parents": mr.auc_parents[mech],
            "ess": float(wm.ess[i]),
            "ess_fraction": float(wm.ess[i] / N),
            "max_weight": float(wm.max_weight[i]),
            "frac_truncated": float(wm.frac_truncated[i]),
            "log_ratio_sd": float(mr.log_ratios[i].std()),
            "pareto_k": float(khat[i]),
            "known_ratio": mech in mr.known,
            "offset_penalty": mr.offset_penalty.get(mech),
        }
        if mech in mr.known and mr.auc_joint[mech] < KNOWN_RATIO_REVERSED_AUC:
            warns.append(
                {
                    "code": "known_ratio_reversed",
                    "mechanism": mech,
                    "message": (
                        f"mechanism {mech!r}: its known log-ratio is lower at the target "
                        f"cases than at the source cases (AUC {mr.auc_joint[mech]:.3f}); "
                        "known_ratios expects log p_target / p_source: is the sign reversed?"
                    ),
                }
            )
        if mr.auc_joint[mech] > separable_auc:
            auc = "AUC of its known log-ratio" if mech in mr.known else "out-of-fold AUC"
            warns.append(
                {
                    "code": "separable",
                    "mechanism": mech,
                    "message": (
                        f"mechanism {mech!r}: the environments are nearly separable "
                        f"({auc} {mr.auc_joint[mech]:.3f} > {separable_auc}); "
                        "overlap is doubtful and importance weights unreliable."
                    ),
                }
            )
    overall = {
        "ess_all": float(wm.ess[-1]),
        "ess_all_fraction": float(wm.ess[-1] / N),
        "pareto_k_all": float(khat[-1]),
        "max_weight_all": float(wm.max_weight[-1]),
        "frac_truncated_all": float(wm.frac_truncated[-1]),
        "n_source": len(m),
        "n_weighted": N,
        "shared_cases": mr.shared_cases,
    }
    # one row per mechanism shifted alone, then all of them shifted
    rows = [(mech, mech) for mech in mr.mechanisms] + [("all mechanisms", None)]
    for (label, mech), ess in zip(rows, wm.ess):
        if ess < min_ess_fraction * N:
            warns.append(
                {
                    "code": "low_ess",
                    "mechanism": mech,
                    "message": (
                        f"{label}: effective sample size {ess:.1f} of {N} {cases} "
                        f"({100 * ess / N:.1f}% < {100 * min_ess_fraction:.0f}%); the "
                        "estimate rests on a few heavily weighted cases."
                    ),
                }
            )
    for (label, mech), k, wmax, capped in zip(rows, khat, wm.max_weight, wm.frac_truncated):
        # a capped weight (truncate below 2) reached the cap: its tail rose beyond it
        if k > PARETO_K_THRESHOLD and (wmax >= HEAVY_TAIL_MIN_WEIGHT or capped > 0):
            warns.append(
                {
                    "code": "heavy_tailed_weights",
                    "mechanism": mech,
                    "message": (
                        f"{label}: the importance weights have a heavy upper tail (Pareto "
                        f"k {k:.2f} > {PARETO_K_THRESHOLD}); a few cases decide the "
                        "weighted means, and their bootstrap intervals cannot show it."
                    ),
                }
            )
    if truncate is not None and wm.frac_truncated.max() > 0:
        warns.append(
            {
                "code": "truncated",
                "mechanism": None,
                "message": (
                    f"{100 * wm.frac_truncated.max():.2f}% of weights were truncated at "
                    f"{truncate} x mean; the estimate is biased towards the source."
                ),
            }
        )
    # ``any_paired``: a mechanism substituted from paired readings has no discriminator;
    # its shift is read from the paired cases and may carry the whole change.
    if mt is not None and not any_paired and max(mr.auc_joint.values()) < 0.55:
        se = float(np.sqrt(m.var(ddof=1) / len(m) + mt.var(ddof=1) / len(mt)))
        gap = source_metric - float(mt.mean())
        if abs(gap) > 3 * se:
            warns.append(
                {
                    "code": "shift_not_seen",
                    "mechanism": None,
                    "message": (
                        f"the measured metric changed by {-gap:+.4f} from source to target "
                        "(> 3 SE) but no "
                        "discriminator tells the environments apart (all AUC < 0.55): a "
                        "shifted variable may be missing from the graph or the estimators "
                        "are too weak."
                    ),
                }
            )
    return {"mechanisms": per, "overall": overall}, warns
