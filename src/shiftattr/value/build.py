"""Fit what one value estimator needs and hand back its game, for any resample of the cases.

:func:`fit_value` is the single place where the density ratios, the nested regressions,
the mechanism samplers and the paired metrics are put together for ``"iw"``,
``"regression"``, ``"mr"`` or ``"generative"``;
:func:`shiftattr.attribute` calls it once for the point estimate and once per replicate
of a refit bootstrap, and a fixed bootstrap reuses one fit through
:meth:`FittedValue.game` with resampled case indices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shiftattr.environment import Environment
from shiftattr.graph import CausalGraph
from shiftattr.ratios.base import DensityRatioEstimator
from shiftattr.ratios.crossfit import CrossFittedRatios, MechanismRatios, assign_folds
from shiftattr.ratios.shared_cases import shared_case_groups
from shiftattr.shapley import Game
from shiftattr.value.balance import BalancedValue
from shiftattr.value.generative import (
    GenerativeValue,
    check_tabular_nodes,
    fit_sampler,
    is_discrete,
)
from shiftattr.value.nested import NestedRegressions
from shiftattr.value.robust import RobustValue

__all__ = ["FittedValue", "fit_value", "ratio_nodes", "value_levels"]


def value_levels(graph: CausalGraph, paired: Sequence[str]) -> tuple[str, ...]:
    """The graph's nodes in topological order with the paired sinks moved last.

    Moving sinks to the end keeps the order topological.

    Parameters
    ----------
    graph : CausalGraph
    paired : sequence of str

    Returns
    -------
    tuple of str

    Examples
    --------
    >>> g = CausalGraph({"D": [], "Y": ["D"], "X": ["D"]})
    >>> value_levels(g, ["Y"])
    ('D', 'X', 'Y')
    """
    order = graph.topological_order()
    return tuple(n for n in order if n not in paired) + tuple(n for n in order if n in paired)


def ratio_nodes(
    estimator: str,
    levels: Sequence[str],
    mechanisms: Sequence[str],
    paired: Sequence[str],
    both_samples: Sequence[str] = (),
) -> tuple[str, ...]:
    """The nodes whose conditional density ratios a value estimator fits.

    Every attributed mechanism that is not paired; for ``"mr"`` also every earlier level
    that is not paired, attributed or not (the corrections at a later level reweight it),
    and every level up to the last of ``both_samples``; for ``"mis"`` every level (the
    mixture of both environments involves all of them).

    Parameters
    ----------
    estimator : str
    levels : sequence of str
        The value levels (:func:`value_levels`).
    mechanisms : sequence of str
        The attributed mechanisms.
    paired : sequence of str
        The paired (substituted) mechanisms.
    both_samples : sequence of str, default ()
        ``"mr"``: the levels whose terms are taken over both environments' cases
        (:class:`~shiftattr.value.RobustValue`).

    Returns
    -------
    tuple of str

    Examples
    --------
    >>> ratio_nodes("mr", ("D", "X", "Y"), ["X"], [])
    ('D', 'X')
    >>> ratio_nodes("iw", ("D", "X", "Y"), ["X", "Y"], ["Y"])
    ('X',)
    >>> ratio_nodes("mis", ("D", "X", "Y"), ["X"], [])
    ('D', 'X', 'Y')
    >>> ratio_nodes("mr", ("D", "X", "Y"), ["X"], [], both_samples=["Y"])
    ('D', 'X', 'Y')
    """
    if estimator == "mis":
        return tuple(n for n in levels if n not in paired)
    free = [m for m in mechanisms if m not in paired]
    if estimator != "mr" or not (free or both_samples):
        return tuple(free)
    last = max(levels.index(m) for m in [*free, *both_samples])
    # the corrections at a target-side level reweight every earlier level that stays
    # at the source, attributed or not
    return tuple(n for n in levels[: last + 1] if n not in paired)


#: Why the generative estimator has no game on resampled cases.
_NO_RESAMPLED_GAME = (
    "the generative estimator simulates from its fitted mechanisms and has no game on "
    "resampled cases: bootstrap it by refitting (bootstrap='refit')."
)


@dataclass
class FittedValue:
    """The fitted pieces of one value estimator.

    Attributes
    ----------
    estimator : str
    mechanisms : tuple of str
    metric : ndarray
        Per-case metric at the source cases.
    log_ratios : ndarray of shape (n_mechanisms, N_source)
        Conditional log-ratios of the mechanisms (zero rows for paired ones).
    ratios : MechanismRatios or None
        Every ratio that was fitted (mechanisms and, for ``"mr"``, earlier levels).
    paired_source : dict
        ``S -> metric`` with the paired nodes in ``S`` substituted.
    robust : RobustValue or None
        The regression / multiply-robust value function.
    truncate : float or None
    check : FittedValue or None
        For ``"iw"`` with ``cross_check=True``: the plain regression estimate on the
        same cases, an independent estimate to compare with.
    generative : GenerativeValue or None
        For ``"generative"``: the fitted mechanism samplers and their simulation.
    balanced : BalancedValue or None
        For ``"mis"``: balance-heuristic weighting of both environments' cases.

    Examples
    --------
    >>> fv = FittedValue("iw", ("X",), np.array([1.0, 0.0]), np.log([[1.0, 3.0]]))
    >>> fv.game()(np.array([[True]]))
    array([0.25])
    """

    estimator: str
    mechanisms: tuple[str, ...]
    metric: np.ndarray
    log_ratios: np.ndarray
    ratios: MechanismRatios | None = None
    paired_source: dict = field(default_factory=dict)
    robust: RobustValue | None = None
    truncate: float | None = None
    check: FittedValue | None = None
    generative: GenerativeValue | None = None
    balanced: BalancedValue | None = None

    def _cases_value(self) -> RobustValue | BalancedValue | None:
        """The value function that averages over both environments' cases, if any."""
        return self.robust if self.robust is not None else self.balanced

    def game(
        self, idx_source: np.ndarray | None = None, idx_target: np.ndarray | None = None
    ) -> Game:
        """The attribution game on (a resample of) the cases.

        Parameters
        ----------
        idx_source, idx_target : ndarray of int, optional
            Resampled case indices (``"iw"`` uses only the source ones).

        Returns
        -------
        shiftattr.shapley.Game

        Examples
        --------
        >>> fv = FittedValue("iw", ("X",), np.array([1.0, 0.0]), np.log([[1.0, 3.0]]))
        >>> fv.game(np.array([0, 0]))(np.array([[True]]))   # a resample of case 0 only
        array([0.])
        """
        if self._cases_value() is not None:
            return self._cases_value().game(idx_source, idx_target)
        if self.generative is not None:
            if idx_source is not None or idx_target is not None:
                raise ValueError(_NO_RESAMPLED_GAME)
            return self.generative.game()
        from shiftattr.attribution import iw_game  # attribution imports this module

        i = slice(None) if idx_source is None else idx_source
        paired = {S: v[i] for S, v in self.paired_source.items()} or None
        return iw_game(
            self.mechanisms, self.log_ratios[:, i], self.metric[i], self.truncate, paired
        )

    def resampled_values(
        self, coalitions: np.ndarray, draws_source: np.ndarray, draws_target: np.ndarray
    ) -> np.ndarray:
        """The game's values on many resamples at once (the fixed bootstrap's replicates).

        Parameters
        ----------
        coalitions : bool ndarray of shape (k, n_mechanisms)
        draws_source, draws_target : ndarray of shape (B, N_source) and (B, N_target)
            How often each replicate draws each source and each target case
            (:func:`shiftattr.weighting.resample_counts` of its case indices; ``"iw"``
            uses only the source ones).

        Returns
        -------
        ndarray of shape (k, B)
            Column ``b`` equals :meth:`game` on ``coalitions`` for the case indices whose
            counts are ``draws_source[b]`` and ``draws_target[b]``, up to rounding,
            without a loop over the replicates.

        Examples
        --------
        >>> from shiftattr.weighting import resample_counts
        >>> fv = FittedValue("iw", ("X",), np.array([1.0, 0.0]), np.log([[1.0, 3.0]]))
        >>> draws = resample_counts(np.array([[0, 1], [0, 0]]), 2)
        >>> fv.resampled_values(np.array([[True]]), draws, draws)
        array([[0.25, 0.  ]])
        """
        if self._cases_value() is not None:
            return self._cases_value().resampled_values(coalitions, draws_source, draws_target)
        if self.generative is not None:
            raise ValueError(_NO_RESAMPLED_GAME)
        from shiftattr.attribution import iw_resampled_values

        return iw_resampled_values(
            self.mechanisms,
            coalitions,
            self.log_ratios,
            self.metric,
            draws_source,
            self.truncate,
            self.paired_source or None,
        )

    def mechanism_ratios(self) -> MechanismRatios | None:
        """The fitted ratios restricted to the weighted (non-paired) mechanisms.

        Returns
        -------
        MechanismRatios or None
            None when every mechanism is substituted.

        Examples
        --------
        >>> FittedValue("iw", ("X",), np.zeros(2), np.zeros((1, 2))).mechanism_ratios() is None
        True
        """
        if self.ratios is None:
            return None
        keep = [m for m in self.mechanisms if m in self.ratios.mechanisms]
        if not keep:
            return None
        rows = [self.ratios.mechanisms.index(m) for m in keep]
        r = self.ratios
        return MechanismRatios(
            mechanisms=tuple(keep),
            log_ratios=r.log_ratios[rows],
            auc_joint={m: r.auc_joint[m] for m in keep},
            auc_parents={m: r.auc_parents[m] for m in keep},
            node_sets={m: r.node_sets[m] for m in keep if m in r.node_sets},
            log_ratios_target=None if r.log_ratios_target is None else r.log_ratios_target[rows],
            known=tuple(m for m in keep if m in r.known),
            offset_penalty={m: p for m, p in r.offset_penalty.items() if m in keep},
            shared_cases=r.shared_cases,
            fit_reports=r.fit_reports,
        )

    def details(self) -> dict[str, Any]:
        """Estimator diagnostics: regression fits, corrections, correction-weight ESS.

        Returns
        -------
        dict
            ``name``, ``paired``; for regressions also every fit's out-of-fold R², the
            spread of its fitted values (``outcome_sd``: an R² far below zero on a
            near-constant outcome is harmless) and chosen regressor; for ``"mr"`` the
            correction at the full coalition, the largest correction over the
            coalitions evaluated, and the smallest effective-sample-size fraction of
            the correction weights.

        Examples
        --------
        >>> FittedValue("iw", ("X",), np.zeros(2), np.zeros((1, 2))).details()
        {'name': 'iw', 'paired': []}
        """
        out: dict[str, Any] = {
            "name": self.estimator,
            "paired": sorted({n for S in self.paired_source for n in S}),
        }
        if self.check is not None:
            out["check"] = self.check.details()
        if self.generative is not None:
            out.update(self.generative.details())
        if self.balanced is not None:
            out.update(self.balanced.details())
        if self.robust is None:
            return out
        full = frozenset(self.mechanisms)
        est = self.robust.estimate(full)
        out["regressions"] = [
            {
                "level": self.robust.levels[f.level],
                "target_nodes": sorted(f.target_nodes),
                "fitted_on": f.fitted_on,
                "pooled": f.pooled,
                "r2": f.r2,
                "outcome_sd": float(np.std(f.source if f.fitted_on == "source" else f.target)),
                "regressor": f.chosen,
            }
            for f in self.robust.regressions.fits
        ]
        r2 = [f.r2 for f in self.robust.regressions.fits if f.r2 is not None]
        out["min_r2"] = min(r2) if r2 else None
        if self.estimator == "mr":
            out["both_samples"] = list(self.robust.both_levels)
            out["correction_all"] = est["value"] - est["regression"]
            out["max_abs_correction"] = self.robust.max_abs_correction_
            out["min_correction_ess_fraction"] = self.robust.min_ess_fraction_
            out["max_correction_truncated_fraction"] = self.robust.max_truncated_fraction_
        return out


def fit_value(
    estimator: str,
    graph: CausalGraph,
    source: Environment,
    target: Environment,
    mechanisms: Sequence[str],
    metric: np.ndarray,
    metric_target: np.ndarray | None,
    *,
    paired: Sequence[str] = (),
    paired_source: Mapping[frozenset, np.ndarray] | None = None,
    paired_target: Mapping[frozenset, np.ndarray] | None = None,
    features_source: Sequence[np.ndarray] | None = None,
    features_target: Sequence[np.ndarray] | None = None,
    estimators: Mapping[str, DensityRatioEstimator] | None = None,
    regressors: Any = None,
    n_folds: int = 5,
    truncate: float | None = None,
    correction_cap: str | float | None = "sqrt",
    n_jobs: int = 1,
    progress: bool = True,
    random_state: int | None = None,
    source_groups: np.ndarray | None = None,
    target_groups: np.ndarray | None = None,
    pooled_regressions: bool = False,
    known_ratios: Mapping[str, Any] | None = None,
    conditional_ratios: str = "difference",
    cross_check: bool = False,
    metric_fn: Any = None,
    n_simulations: int = 20_000,
    both_samples: Sequence[str] = (),
) -> FittedValue:
    """Fit the ratios (and regressions) of one value estimator.

    Parameters
    ----------
    estimator : {"iw", "mis", "regression", "mr", "generative"}
    graph : CausalGraph
    source, target : Environment
    mechanisms : sequence of str
        Players, in topological order.
    metric : ndarray of shape (N_source,)
    metric_target : ndarray of shape (N_target,) or None
    paired : sequence of str, optional
        Substituted mechanisms (sinks).
    paired_source, paired_target : mapping, optional
        From :func:`~shiftattr.value.paired_metrics`.
    features_source, features_target : sequence of ndarray, optional
        Per level of :func:`value_levels`, the regression features (needed by
        ``"regression"`` and ``"mr"``).
    estimators : mapping, optional
        Per-node density-ratio estimators.
    regressors : estimator or mapping, optional
        Regressor(s) of the nested regressions, or of the ``"generative"`` noise models.
    n_folds : int, default 5
    truncate : float, optional
    correction_cap : "sqrt", float or None, default "sqrt"
        Cap on the normalised weights of the ``"mr"`` corrections
        (see :class:`~shiftattr.value.RobustValue`).
    n_jobs : int, default 1
    progress : bool, default True
    random_state : int, optional
    source_groups, target_groups : ndarray, optional
        Bootstrap duplicates sharing a group stay in one fold.
    pooled_regressions : bool, default False
        Fit every regression of a level with a ratio on both environments' cases
        (see :class:`~shiftattr.value.NestedRegressions`, ``pool_log_ratios``).
    known_ratios : mapping of str to callable, optional
        Mechanisms whose conditional log-ratio is known, not estimated (see
        :class:`~shiftattr.ratios.CrossFittedRatios`).
    conditional_ratios : {"difference", "offset", "offset_child"}, default "difference"
        How conditional ratios are formed (``conditional`` of
        :class:`~shiftattr.ratios.CrossFittedRatios`).
    cross_check : bool, default False
        With ``"iw"``: also fit the plain regression estimate (no ratios) as
        :attr:`FittedValue.check`; needs the regression features and ``metric_target``.
    metric_fn : callable, optional
        ``"generative"``: the metric callable, scored on the simulated cases.
    n_simulations : int, default 20000
        ``"generative"``: simulated cases per coalition.
    both_samples : sequence of str, default ()
        ``"mr"``: levels whose terms are taken over both environments' cases
        (see :class:`~shiftattr.value.RobustValue`).

    Returns
    -------
    FittedValue

    Examples
    --------
    >>> import shiftattr as sa
    >>> scm = sa.datasets.LinearGaussianSCM.example()
    >>> s, t = scm.sample(300, "source", random_state=0), scm.sample(300, "target", random_state=1)
    >>> fv = fit_value("iw", scm.graph, s, t, scm.graph.mechanisms, scm.metric(s), None,
    ...                n_folds=3, progress=False, random_state=0)
    >>> fv.log_ratios.shape
    (3, 300)
    """
    # the ratios get the seed itself (so "iw" results do not depend on the regressions)
    rng = np.random.default_rng(None if random_state is None else [random_state, 7])
    mechanisms = tuple(mechanisms)
    paired = tuple(paired)
    levels = value_levels(graph, paired)
    both_samples = tuple(both_samples)
    nodes = ratio_nodes(estimator, levels, mechanisms, paired, both_samples)
    # pooled regressions use the ratios mr fits anyway, not those only both_samples needs
    pool_nodes = ratio_nodes(estimator, levels, mechanisms, paired)
    ratios = None
    L = np.zeros((len(mechanisms), len(source)))
    if nodes:
        cf = CrossFittedRatios(
            graph,
            nodes,
            estimators,
            n_folds,
            n_jobs,
            progress,
            random_state=random_state,
            known_ratios=known_ratios,
            conditional=conditional_ratios,
        )
        ratios = cf.fit(source, target, source_groups, target_groups)
        for i, m in enumerate(mechanisms):
            if m in ratios.mechanisms:
                L[i] = ratios.log_ratios[ratios.mechanisms.index(m)]
    fitted = FittedValue(
        estimator,
        mechanisms,
        np.asarray(metric, dtype=float),
        L,
        ratios,
        dict(paired_source or {}),
        None,
        truncate,
    )
    if estimator == "generative":
        fitted.generative = _fit_generative(
            graph,
            source,
            target,
            mechanisms,
            metric_fn,
            metric,
            metric_target,
            n_simulations,
            regressors,
            n_folds,
            rng,
            source_groups,
            target_groups,
        )
        return fitted
    if estimator == "iw" and not cross_check:
        return fitted
    if estimator == "mis":
        if metric_target is None or ratios is None or paired:
            raise ValueError(
                "estimator 'mis' weights the source and the target cases: it needs the "
                "metric at the target cases, the ratio of every node, and no paired node."
            )
        fitted.balanced = BalancedValue(
            mechanisms,
            ratios.mechanisms,
            ratios.log_ratios,
            ratios.log_ratios_target,
            metric,
            metric_target,
        )
        return fitted
    if features_source is None or features_target is None:
        needs = "cross_check" if estimator == "iw" else f"estimator {estimator!r}"
        raise ValueError(f"{needs} needs the regression features of every level.")
    # one assignment over both sides, so that a case the target shares with the source
    # falls in one fold: pooled regressions stack both sides, and a source case's
    # out-of-fold prediction must not come from a fit on its copy (the same folds as two
    # separate assignments where nothing is shared)
    groups, _ = shared_case_groups(source, target, graph.nodes, source_groups, target_groups)
    labels = np.r_[np.zeros(len(source)), np.ones(len(target))]
    folds = assign_folds(labels, n_folds, rng, groups)
    fold_s, fold_t = folds[: len(source)], folds[len(source) :]
    lr_s, lr_t = {}, {}
    if ratios is not None:
        for i, n in enumerate(ratios.mechanisms):
            lr_s[n] = ratios.log_ratios[i]
            lr_t[n] = ratios.log_ratios_target[i]
    nested = NestedRegressions(
        levels,
        features_source,
        features_target,
        metric,
        metric_target,
        fold_s,
        fold_t,
        paired_source if paired else None,
        paired_target if paired else None,
        regressors,
        random_state=int(rng.integers(2**31 - 1)),
        pool_log_ratios=_pool_ratios(lr_s, lr_t, pool_nodes) if pooled_regressions else None,
    )
    robust = RobustValue(
        nested,
        mechanisms,
        lr_s,
        lr_t,
        robust=estimator == "mr",
        correction_cap=correction_cap,
        both_samples=both_samples,
    )
    if estimator == "iw":  # the cross-check: regressions only, on the same cases
        fitted.check = FittedValue(
            "regression", mechanisms, fitted.metric, L, ratios, fitted.paired_source, robust
        )
    else:
        fitted.robust = robust
    return fitted


def _pool_ratios(
    lr_s: dict[str, np.ndarray], lr_t: dict[str, np.ndarray], nodes: Sequence[str]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The log-ratios of ``nodes`` only."""
    return {n: lr_s[n] for n in nodes if n in lr_s}, {n: lr_t[n] for n in nodes if n in lr_t}


def _fit_generative(
    graph: CausalGraph,
    source: Environment,
    target: Environment,
    mechanisms: Sequence[str],
    metric_fn: Any,
    metric: np.ndarray,
    metric_target: np.ndarray | None,
    n_simulations: int,
    regressors: Any,
    n_folds: int,
    rng: np.random.Generator,
    source_groups: np.ndarray | None,
    target_groups: np.ndarray | None,
) -> GenerativeValue:
    """Every node's source sampler and every mechanism's target sampler, and their game."""
    if not callable(metric_fn):
        raise ValueError(
            "the generative estimator scores the metric on simulated cases and needs it as "
            "a callable Environment -> per-case values, not as an array."
        )
    dtypes = check_tabular_nodes(graph.nodes, source, target)
    shapes = {n: np.shape(source[n])[1:] for n in graph.nodes}
    discrete = {n: is_discrete([source[n], target[n]]) for n in graph.nodes}
    samplers = {}
    for node in graph.topological_order():
        sides = [(False, source, source_groups)]
        if node in mechanisms:
            sides.append((True, target, target_groups))
        for side, env, groups in sides:
            samplers[(node, side)] = fit_sampler(
                node,
                graph.parents(node),
                env,
                discrete[node],
                n_folds,
                regressors,
                groups,
                random_state=int(rng.integers(2**31 - 1)),
            )
    return GenerativeValue(
        graph,
        mechanisms,
        samplers,
        metric_fn,
        n_simulations,
        random_state=int(rng.integers(2**31 - 1)),
        dtypes={n: dt for n, dt in dtypes.items() if discrete[n]},
        shapes=shapes,
        measured=(
            float(np.mean(metric)),
            None if metric_target is None else float(np.mean(metric_target)),
        ),
    )
