"""Bootstrap replicates of an attribution: fixed (fitted models held) or refit.

:func:`shiftattr.attribute` resamples the source and the target cases with replacement
and recomputes the Shapley values on every resample, together with the estimate each
value estimator is compared with (its *twin*: importance weighting with the same
ratios, or for ``"iw"`` its regression cross-check). ``bootstrap="fixed"`` keeps the
fitted ratios and regressions (:func:`fixed_bootstrap`, many replicates solved at once
with the exact solver); ``bootstrap="refit"`` refits the ratios and regressions on every
resample (:func:`refit_bootstrap`, in parallel), which puts the estimators' own noise into
the intervals (the regressions of ``cross_check`` stay fixed even then).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from shiftattr.environment import Environment
from shiftattr.shapley import (
    ExactShapley,
    ShapleySolver,
    ShapleyValues,
    coalition_bitmasks,
    shapley_from_tables,
)
from shiftattr.value.build import FittedValue, fit_value
from shiftattr.value.choice import names_levels
from shiftattr.weighting import resample_counts

__all__ = [
    "Cases",
    "Replicates",
    "fixed_bootstrap",
    "refit_bootstrap",
    "resolve_bootstrap",
    "solve_with_twin",
    "solver_stderr",
    "twin_of",
]


def resolve_bootstrap(
    bootstrap: str,
    estimators: Any = None,
    regressor: Any = None,
    method: str = "iw",
    both_samples: Any = False,
) -> str:
    """The bootstrap :func:`~shiftattr.attribute` runs: ``bootstrap``, or for ``"auto"``
    ``"refit"`` unless an estimator or regressor trains a network or the method is
    ``"mr"`` over each environment's own cases (and the method has a fixed bootstrap:
    ``"generative"`` has none).

    A network (:class:`~shiftattr.ratios.CNNDiscriminator`,
    :class:`~shiftattr.value.CNNRegressor`: ``trains_network = True``) refitted per
    replicate costs ``n_bootstrap`` more trainings of every fold (hours on a CPU), so
    ``"auto"`` holds the fitted ratios and regressions fixed there, as the command line
    does. ``"mr"`` corrects its regressions with the ratios, so the error of either
    enters its estimate only through their product (second order): the fixed bootstrap
    is the standard choice for it, its measured coverage is that of its bias-aware
    intervals on the fixed bootstrap (:doc:`/estimators`), and the refit
    bootstrap would fit every candidate regressor of every level again per replicate.
    Over both samples (``both_samples``) its terms lean on the ratios as ``"mis"`` does,
    and ``"auto"`` refits. Refit intervals are the more honest ones for
    the weighting methods; pass ``bootstrap="refit"`` to pay for them elsewhere.

    Parameters
    ----------
    bootstrap : {"auto", "refit", "fixed"}
    estimators : mapping of str to estimator, optional
    regressor : regressor or mapping of str to regressor, optional
    method : str, default "iw"
    both_samples : bool or sequence of str, default False
        :func:`~shiftattr.attribute`'s argument of that name.

    Returns
    -------
    str
        ``"refit"`` or ``"fixed"``.

    Examples
    --------
    >>> class Net:
    ...     trains_network = True
    >>> resolve_bootstrap("auto"), resolve_bootstrap("auto", {"X": Net()})
    ('refit', 'fixed')
    >>> resolve_bootstrap("refit", {"X": Net()})
    'refit'
    >>> resolve_bootstrap("auto", method="mr"), resolve_bootstrap("auto", method="mr", both_samples=True)
    ('fixed', 'refit')
    """
    if bootstrap != "auto":
        return bootstrap
    if method == "generative":
        return "refit"
    if method == "mr" and not names_levels(both_samples):
        return "fixed"
    regs = regressor.values() if isinstance(regressor, Mapping) else [regressor]
    parts = [*(estimators or {}).values(), *regs]
    return "fixed" if any(getattr(p, "trains_network", False) for p in parts) else "refit"


class Cases(NamedTuple):
    """The cases a value estimator is fitted on, and what was computed on them once.

    Attributes
    ----------
    source, target : Environment
        The two environments.
    metric : ndarray of shape (n_source,)
        The per-case metric at the source cases.
    metric_target : ndarray of shape (n_target,) or None
        The per-case metric at the target cases, if known.
    paired_source, paired_target : dict or None
        ``S -> metric`` per case with the paired nodes in ``S`` substituted, at the
        source and at the target cases (:func:`~shiftattr.value.paired_metrics`);
        ``None`` without paired mechanisms.
    features : (list of ndarray, list of ndarray) or None
        The regressions' per-level features of the source and the target cases.

    Examples
    --------
    >>> import shiftattr as sa
    >>> scm = sa.datasets.LinearGaussianSCM.example()
    >>> s, t = scm.sample(5, "source", random_state=0), scm.sample(4, "target", random_state=1)
    >>> kw = Cases(s, t, scm.metric(s)).resample(np.array([0, 0, 3]), np.array([1, 2]))
    >>> len(kw["source"]), kw["metric"].shape, kw["metric_target"], kw["source_groups"].tolist()
    (3, (3,), None, [0, 0, 3])
    """

    source: Environment
    target: Environment
    metric: np.ndarray
    metric_target: np.ndarray | None = None
    paired_source: dict | None = None
    paired_target: dict | None = None
    features: tuple[list[np.ndarray], list[np.ndarray]] | None = None

    def resample(self, idx_s: np.ndarray, idx_t: np.ndarray) -> dict[str, Any]:
        """The data keywords of :func:`~shiftattr.value.build.fit_value` on a resample.

        Parameters
        ----------
        idx_s, idx_t : ndarray of int
            The source and target cases drawn (repeats allowed).

        Returns
        -------
        dict
            ``source``, ``target``, ``metric``, ``metric_target``, ``paired_source``,
            ``paired_target``, ``features_source``, ``features_target``, and
            ``source_groups`` / ``target_groups`` (the drawn indices: a case drawn twice
            stays in one cross-fitting fold).

        Examples
        --------
        >>> import shiftattr as sa
        >>> scm = sa.datasets.LinearGaussianSCM.example()
        >>> s = scm.sample(3, "source", random_state=0)
        >>> sorted(Cases(s, s, scm.metric(s)).resample(np.arange(3), np.arange(3)))[:3]
        ['features_source', 'features_target', 'metric']
        """
        f = self.features
        return {
            "source": self.source.subset(idx_s),
            "target": self.target.subset(idx_t),
            "metric": self.metric[idx_s],
            "metric_target": None if self.metric_target is None else self.metric_target[idx_t],
            "paired_source": {S: v[idx_s] for S, v in (self.paired_source or {}).items()},
            "paired_target": {S: v[idx_t] for S, v in (self.paired_target or {}).items()},
            "features_source": None if f is None else [F[idx_s] for F in f[0]],
            "features_target": None if f is None else [F[idx_t] for F in f[1]],
            "source_groups": idx_s,
            "target_groups": idx_t,
        }


class Replicates(NamedTuple):
    """The bootstrap replicates of one attribution.

    Attributes
    ----------
    values : ndarray of shape (B, n)
        Shapley values of each replicate, one column per mechanism.
    target : ndarray of shape (B,)
        Estimated target metric of each replicate.
    twin : ndarray of shape (B, n) or None
        Shapley values of the twin estimate (:func:`twin_of`) on the same resamples;
        ``None`` when there is none.

    Examples
    --------
    >>> r = Replicates(np.zeros((4, 2)), np.zeros(4), None)
    >>> r.values.shape, r.twin is None
    ((4, 2), True)
    """

    values: np.ndarray
    target: np.ndarray
    twin: np.ndarray | None


def twin_of(fitted: FittedValue) -> FittedValue | None:
    """The estimate a fitted value estimator is compared with (``methods_disagree``).

    Parameters
    ----------
    fitted : FittedValue
        A value estimator fitted by :func:`~shiftattr.value.build.fit_value`.

    Returns
    -------
    FittedValue or None
        For ``"mis"``, ``"regression"``, ``"mr"`` and ``"generative"``: importance
        weighting with the same fitted ratios (free). For ``"iw"``: its regression
        cross-check, or ``None`` without one.

    Examples
    --------
    >>> from shiftattr.value.build import FittedValue
    >>> log_ratios, metric = np.zeros((2, 6)), np.arange(6.0)
    >>> iw = FittedValue("iw", ("A", "B"), metric, log_ratios)
    >>> twin_of(iw) is None  # "iw" without cross_check
    True
    >>> twin_of(FittedValue("iw", ("A", "B"), metric, log_ratios, check=iw)) is iw
    True
    """
    if fitted.estimator == "iw":
        return fitted.check
    return dataclasses.replace(fitted, estimator="iw", robust=None, generative=None, balanced=None)


def solve_with_twin(
    fitted: FittedValue,
    solver: ShapleySolver,
    idx_s: np.ndarray | None,
    idx_t: np.ndarray | None,
    twins: bool = True,
) -> tuple[ShapleyValues, float, np.ndarray | None]:
    """Shapley values of a fitted estimate on one (re)sample, and those of its twin.

    The estimated target metric is the measured mean source metric minus the estimated
    total drop, so the values always sum to ``source_metric - estimated_target_metric``
    (for "iw" and "mr" the game's ``M(∅)`` is that mean exactly, unless "mr" averages
    over both samples, ``both_samples``; for "regression" this
    anchors its plug-in estimates to the observed source mean).

    Parameters
    ----------
    fitted : FittedValue
        The fitted value estimator.
    solver : ShapleySolver
        Solves the game of each (re)sample.
    idx_s, idx_t : ndarray of int or None
        Source and target cases of a resample (``None``: the cases as they are).
    twins : bool, default True
        Also solve the twin's game (:func:`twin_of`).

    Returns
    -------
    values : ShapleyValues
    target : float
        The estimated target metric.
    twin : ndarray of shape (n,) or None
        The twin's Shapley values (``None`` without a twin or with ``twins=False``).

    Examples
    --------
    >>> from shiftattr.shapley import ExactShapley
    >>> from shiftattr.value.build import FittedValue
    >>> log_ratios = np.log([[1.0, 1.0, 3.0, 3.0], [1.0, 1.0, 1.0, 1.0]])
    >>> fv = FittedValue("iw", ("A", "B"), np.array([0.0, 0.0, 1.0, 1.0]), log_ratios)
    >>> sv, target, twin = solve_with_twin(fv, ExactShapley(), None, None)
    >>> sv.as_dict(), target, twin is None  # A's weights move the mean from 0.5 to 0.75
    ({'A': -0.25, 'B': 0.0}, 0.75, True)
    """
    sv = solver.solve(fitted.game(idx_s, idx_t))
    i = slice(None) if idx_s is None else idx_s
    target = float(np.mean(fitted.metric[i])) - float(sv.total)
    twin = twin_of(fitted) if twins else None
    iw = None if twin is None else solver.solve(twin.game(idx_s, idx_t)).values
    return sv, target, iw


def _replicate(
    fitted: FittedValue,
    solver: ShapleySolver,
    idx_s: np.ndarray | None,
    idx_t: np.ndarray | None,
    twins: bool = True,
) -> tuple[np.ndarray, float, np.ndarray | None]:
    sv, target, iw = solve_with_twin(fitted, solver, idx_s, idx_t, twins)
    return sv.values, target, iw


def solver_stderr(
    mechs: Sequence[str], solutions: Sequence[ShapleyValues]
) -> dict[str, float] | None:
    """The solver's standard error of the mean over the repeats' solutions (sampling solvers).

    The root mean square of the repeats' errors, not divided by the number of repeats: a
    seeded solver samples the same permutations in every repeat, so their errors are not
    independent and averaging need not shrink them.

    Parameters
    ----------
    mechs : sequence of str
        The mechanisms, in the solutions' order.
    solutions : sequence of ShapleyValues
        One solution per cross-fitting repeat.

    Returns
    -------
    dict of str to float, or None
        Per mechanism; ``None`` for an exact solver (no ``stderr``).

    Examples
    --------
    >>> from shiftattr.shapley import ShapleyValues
    >>> sols = [ShapleyValues(("a", "b"), np.zeros(2), total=0.0, stderr=[0.3, 0.4])] * 2
    >>> solver_stderr(["a", "b"], sols)
    {'a': 0.3, 'b': 0.4}
    """
    if solutions[0].stderr is None:
        return None
    if len(solutions) == 1:
        return dict(zip(mechs, map(float, solutions[0].stderr)))
    se = np.sqrt(np.mean([np.square(s.stderr) for s in solutions], axis=0))
    return dict(zip(mechs, map(float, se)))


def _mean_replicate(
    fits: Sequence[FittedValue],
    solver: ShapleySolver,
    idx_s: np.ndarray | None,
    idx_t: np.ndarray | None,
    twins: bool = True,
) -> tuple[np.ndarray, float, np.ndarray | None]:
    """One fixed-bootstrap replicate of the mean over cross-fitting repeats."""
    if len(fits) == 1:
        return _replicate(fits[0], solver, idx_s, idx_t, twins)
    reps = [_replicate(f, solver, idx_s, idx_t, twins) for f in fits]
    iw = None if reps[0][2] is None else np.mean([r[2] for r in reps], axis=0)
    return np.mean([r[0] for r in reps], axis=0), float(np.mean([r[1] for r in reps])), iw


#: Largest number of floats a chunk of fixed-bootstrap replicates holds per array
#: (replicates x cases, or coalitions x replicates): about 32 MB. The regression
#: estimators keep up to ``2**(levels + 1)`` arrays of drawn weights per chunk (a row per
#: replicate whose weights need the cap), within eight times this.
_BOOTSTRAP_CHUNK_FLOATS = 4_000_000


def fixed_bootstrap(
    fits: Sequence[FittedValue],
    solver: ShapleySolver,
    idx_s: np.ndarray,
    idx_t: np.ndarray,
    progress: bool,
    twins: bool = True,
) -> Replicates:
    """Every fixed-bootstrap replicate, the fitted models held.

    The replicates share the fitted models, so with the exact solver a chunk of them is
    solved together: the value estimator gives every coalition's value on all the
    chunk's resamples at once
    (:meth:`~shiftattr.value.build.FittedValue.resampled_values`) and the Shapley values
    of all of them follow from one table (:func:`~shiftattr.shapley.shapley_from_tables`). Other
    solvers get one game per replicate.

    Parameters
    ----------
    fits : sequence of FittedValue
        One fit per cross-fitting repeat; each replicate is the mean over them.
    solver : ShapleySolver
        Solves the game of each (re)sample.
    idx_s, idx_t : ndarray of int, shape (B, n_source) and (B, n_target)
        The resampled source and target cases of each replicate, as many as each
        environment has.
    progress : bool
        Show a progress bar.
    twins : bool, default True
        Also resample the estimate each fit is compared with (:func:`twin_of`).

    Returns
    -------
    Replicates

    Examples
    --------
    >>> import shiftattr as sa
    >>> from shiftattr.value.build import fit_value
    >>> scm = sa.datasets.LinearGaussianSCM.example()
    >>> s, t = scm.sample(200, "source", random_state=0), scm.sample(200, "target", random_state=1)
    >>> fv = fit_value("iw", scm.graph, s, t, scm.graph.mechanisms, scm.metric(s), None,
    ...                n_folds=3, progress=False, random_state=0)
    >>> rng = np.random.default_rng(0)
    >>> idx = rng.integers(0, 200, size=(5, 200))
    >>> rep = fixed_bootstrap([fv], sa.shapley.ExactShapley(), idx, idx, progress=False)
    >>> rep.values.shape, rep.target.shape
    ((5, 3), (5,))
    """
    n_boot = len(idx_s)
    n = len(fits[0].mechanisms)
    bar = tqdm(total=n_boot, desc="bootstrap (fixed)", disable=not progress)
    if type(solver) is not ExactShapley or n > solver.max_players:
        out = []
        for i, j in zip(idx_s, idx_t):
            out.append(_mean_replicate(fits, solver, i, j, twins))
            bar.update()
        bar.close()
        iw = None if out[0][2] is None else np.array([o[2] for o in out])
        return Replicates(np.array([o[0] for o in out]), np.array([o[1] for o in out]), iw)
    C = coalition_bitmasks(n)
    sizes = C.sum(axis=1)
    width = max(idx_s.shape[1], idx_t.shape[1], 2**n)
    chunk = _BOOTSTRAP_CHUNK_FLOATS // width
    robust = [r for f in fits for r in (f.robust, f.check and f.check.robust) if r is not None]
    if robust:  # the shared drawn weights of RobustValue.resampled_values
        cached = 2 ** (len(robust[0].levels) + 1) * max(idx_s.shape[1], idx_t.shape[1])
        chunk = min(chunk, 8 * _BOOTSTRAP_CHUNK_FLOATS // cached)
    chunk = int(max(1, min(n_boot, chunk)))
    values, target = np.empty((n_boot, n)), np.empty(n_boot)
    compared = [twin_of(f) if twins else None for f in fits]
    iw = None if compared[0] is None else np.empty((n_boot, n))
    for start in range(0, n_boot, chunk):
        sl = slice(start, min(start + chunk, n_boot))
        vals, targets, iws = [], [], []
        # each replicate as how often it draws each case, shared by every fit and twin
        draws_s = resample_counts(idx_s[sl], len(fits[0].metric))
        draws_t = resample_counts(idx_t[sl], idx_t.shape[1])
        for f, twin in zip(fits, compared):
            table = f.resampled_values(C, draws_s, draws_t)
            vals.append(shapley_from_tables(table, sizes))
            targets.append(draws_s @ f.metric / idx_s.shape[1] - (table[-1] - table[0]))
            if twin is not None:
                iws.append(shapley_from_tables(twin.resampled_values(C, draws_s, draws_t), sizes))
        values[sl], target[sl] = np.mean(vals, axis=0), np.mean(targets, axis=0)
        if iw is not None:
            iw[sl] = np.mean(iws, axis=0)
        bar.update(sl.stop - sl.start)
    bar.close()
    return Replicates(values, target, iw)


def _refit_replicate(
    fit_kwargs: dict[str, Any],
    solver: ShapleySolver,
    cases: Cases,
    idx_s: np.ndarray,
    idx_t: np.ndarray,
) -> tuple[np.ndarray, float, np.ndarray | None]:
    fitted = fit_value(**cases.resample(idx_s, idx_t), **fit_kwargs)
    return _replicate(fitted, solver, None, None)


def refit_bootstrap(
    fit_kwargs: dict[str, Any],
    solver: ShapleySolver,
    cases: Cases,
    idx_s: np.ndarray,
    idx_t: np.ndarray,
    seeds: np.ndarray,
    n_jobs: int,
    progress: bool,
) -> Replicates:
    """Every refit-bootstrap replicate: the value estimator refitted on each resample.

    Each replicate calls :func:`~shiftattr.value.build.fit_value` with ``fit_kwargs``
    on the resample ``(idx_s[b], idx_t[b])`` of ``cases`` with ``random_state=seeds[b]`` (in
    parallel over ``n_jobs`` processes) and solves it with its twin as
    :func:`solve_with_twin` does.

    Parameters
    ----------
    fit_kwargs : dict
        Keywords of :func:`~shiftattr.value.build.fit_value` other than the data and
        the seed (the estimator, graph, mechanisms, estimators, folds ...).
    solver : ShapleySolver
        Solves the game of each (re)sample.
    cases : Cases
        The two environments' cases and what was computed on them.
    idx_s, idx_t : ndarray of int, shape (B, n_source) and (B, n_target)
        The resampled cases of each replicate.
    seeds : ndarray of int, shape (B,)
        The seed of each replicate's fit.
    n_jobs : int
        Processes (joblib).
    progress : bool
        Show a progress bar.

    Returns
    -------
    Replicates

    Examples
    --------
    >>> import shiftattr as sa
    >>> scm = sa.datasets.LinearGaussianSCM.example()
    >>> s, t = scm.sample(150, "source", random_state=0), scm.sample(150, "target", random_state=1)
    >>> kw = dict(estimator="iw", graph=scm.graph, mechanisms=scm.graph.mechanisms,
    ...           n_folds=3, progress=False)
    >>> idx = np.random.default_rng(0).integers(0, 150, size=(2, 150))
    >>> cases = Cases(s, t, scm.metric(s))
    >>> rep = refit_bootstrap(kw, sa.shapley.ExactShapley(), cases, idx, idx,
    ...                       np.array([1, 2]), 1, False)
    >>> rep.values.shape, rep.twin is None
    ((2, 3), True)
    """
    jobs = (
        delayed(_refit_replicate)({**fit_kwargs, "random_state": int(seed)}, solver, cases, i, j)
        for i, j, seed in zip(idx_s, idx_t, seeds)
    )
    out = []
    bar = tqdm(total=len(idx_s), desc="bootstrap (refit)", disable=not progress)
    for res in Parallel(n_jobs=n_jobs, return_as="generator")(jobs):
        out.append(res)
        bar.update()
    bar.close()
    twin = None if out[0][2] is None else np.array([o[2] for o in out])
    return Replicates(np.array([o[0] for o in out]), np.array([o[1] for o in out]), twin)
