"""Generative value estimator: simulate every mixed distribution and score the model on it.

For a tabular graph (one number per node and case) every mechanism can be fitted as a
*sampler* of its node given its parents, once per environment. The mixed distribution
``P_I`` of a coalition ``I`` is then simulated by ancestral sampling, drawing node ``k``
from the target's sampler when ``k`` is in ``I`` and from the source's otherwise, and
``M(P_I)`` is the mean of the metric callable (the model and its loss) on the simulated
cases. No density ratio enters: the estimate has no weight variance, and the metric is
computed exactly instead of regressed. It is biased where a fitted mechanism is wrong,
which the two anchors show: the simulated source and target metrics against the
measured ones (``diagnostics["estimator"]``, warning ``generative_misfit``).

Mechanism families, chosen per node and environment from the data:

- a **root** node: its empirical distribution in that environment;
- a **discrete** node (booleans or integers with at most :data:`DISCRETE_MAX_LEVELS`
  distinct values across both environments) with parents: the class probabilities of a
  classifier, logistic regression on linear or quadratic features or gradient boosting;
- a **continuous** node with parents: a location-scale noise model
  ``v = f(pa) + s(pa) * e``, with ``f`` a regression
  (:func:`~shiftattr.value.crossfit_regression`'s candidates) refitted on all cases, ``e``
  drawn from its residuals standardised by ``s``, and ``s`` a regression of the
  absolute residual on the parents when it explains at least :data:`SCALE_MIN_R2` of
  its variance out of fold (heteroscedastic noise), else a constant (an additive noise
  model). The residuals are the refitted model's own: out-of-fold residuals add the
  regression's estimation error to the noise (on the benchmark's ``threshold_chain`` SCM
  at N = 500 they doubled the MAE; see :doc:`/estimators`).

Every model is chosen by out-of-fold loss with the one-standard-error rule
(:func:`simplest_within_one_se`): among the candidates within one standard error of the
best, the first in an order of safe extrapolation (ridge, gradient boosting, quadratic
ridge; for classes logistic, quadratic logistic, gradient boosting), since each sampler
is used where the other environment's parents lie.

**Common random numbers.** Each node gets one uniform number per simulated case, shared
by every coalition and mapped through the *sorted* empirical values, the sorted
residuals or the class probabilities: two coalitions that differ in one mechanism draw
quantile-coupled values. Each coalition's distribution is unchanged, but the
differences that Shapley values are made of carry less Monte-Carlo noise than with
independent draws (about half the standard error for a continuous loss in the tests;
little gain for a 0/1 metric under a large shift). The simulation's own standard
error (batch means over :data:`SIMULATION_BATCHES` batches) is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from shiftattr._threads import limit_threads
from shiftattr.environment import Environment
from shiftattr.graph import CausalGraph
from shiftattr.ratios.classifier import BOOSTING_PARAMS
from shiftattr.ratios.crossfit import assign_folds
from shiftattr.shapley import Game, coalition_bitmasks, shapley_from_tables
from shiftattr.value.regressors import candidate_regressors, crossfit_regression

__all__ = [
    "DISCRETE_MAX_LEVELS",
    "SCALE_MIN_R2",
    "SIMULATION_BATCHES",
    "GenerativeValue",
    "MechanismSampler",
    "check_tabular_nodes",
    "fit_sampler",
    "generative_warnings",
    "is_discrete",
    "simplest_within_one_se",
]

#: A node whose values are integers (or booleans) with at most this many distinct values
#: across both environments is sampled from a classifier's class probabilities.
DISCRETE_MAX_LEVELS = 20

#: The absolute-residual regression must explain at least this fraction of the variance
#: of the absolute residuals (out of fold) for the noise scale to depend on the parents.
SCALE_MIN_R2 = 0.02

#: Batches of simulated cases whose means give the simulation's standard error.
SIMULATION_BATCHES = 20

#: The default regressors in the order the one-standard-error rule prefers them: by how
#: safely they extrapolate (a sampler predicts where the other environment's parents
#: lie): a line, then boosting (flat outside the data), then a quadratic. Other names
#: keep their given order, before these.
_EXTRAPOLATION_RANK = {"ridge": 1, "gradient-boosting": 2, "quadratic-ridge": 3}

#: Floor of the noise scale ``s(pa)``, as a fraction of the mean absolute residual.
_SCALE_FLOOR = 0.05

#: Largest number of floats of simulated node values held at once (coalitions are
#: simulated in chunks of this size, sharing the draws they agree on).
_SCORE_CHUNK_FLOATS = 4_000_000


def check_tabular_nodes(nodes: Sequence[str], *envs: Environment) -> dict[str, np.dtype]:
    """Refuse nodes that are not one number per case; return each node's dtype over all
    environments (:func:`numpy.result_type`).

    Parameters
    ----------
    nodes : sequence of str
    *envs : Environment

    Returns
    -------
    dict of str to numpy dtype
        The dtype that holds each node's values in every environment (the simulated
        values of a discrete node are cast to it).

    Raises
    ------
    ValueError
        A node is missing, lazy (images on disk) or has more than one value per case.

    Examples
    --------
    >>> env = Environment({"A": np.zeros(3), "B": np.ones((3, 1), dtype=int)})
    >>> {k: str(v) for k, v in check_tabular_nodes(["A", "B"], env).items()}
    {'A': 'float64', 'B': 'int64'}
    """
    dtypes = {}
    for node in nodes:
        for env in envs:
            if node not in env:
                raise ValueError(
                    f"method='generative' simulates every node of the graph, but environment "
                    f"{env.name!r} lacks {node!r}; it holds {list(env.nodes)}."
                )
            arr = None if env.is_lazy(node) else np.asarray(env[node])
            if arr is None or arr.reshape(len(env), -1).shape[1] != 1:
                shape = "lazy volumes" if arr is None else f"shape {arr.shape}"
                raise ValueError(
                    f"method='generative' simulates tabular nodes (one number per case); node "
                    f"{node!r} of {env.name!r} has {shape}. Images cannot be simulated from a "
                    "fitted mechanism: use method='mr' or 'iw' for graphs with image nodes."
                )
        dtypes[node] = np.result_type(*(np.asarray(env[node]) for env in envs))
    return dtypes


def _column(env: Environment, node: str) -> np.ndarray:
    return np.asarray(env[node], dtype=float).reshape(len(env))


def is_discrete(values: Sequence[np.ndarray]) -> bool:
    """Whether a node is sampled as categorical: integer values, few of them.

    Parameters
    ----------
    values : sequence of ndarray
        The node's values in each environment.

    Returns
    -------
    bool
        True for booleans or integers with at most :data:`DISCRETE_MAX_LEVELS` distinct
        values across all the arrays.

    Examples
    --------
    >>> is_discrete([np.array([0, 1, 1]), np.array([1.0, 0.0])]), is_discrete([np.r_[0.5, 1]])
    (True, False)
    """
    v = np.concatenate([np.asarray(a, dtype=float).ravel() for a in values])
    if not np.all(v == np.round(v)):
        return False
    return len(np.unique(v)) <= DISCRETE_MAX_LEVELS


def _classifiers(random_state: int | None) -> dict[str, Any]:
    return {
        "logistic": make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)),
        "quadratic-logistic": make_pipeline(
            StandardScaler(),
            PolynomialFeatures(2, include_bias=False),
            StandardScaler(),
            LogisticRegression(C=1.0, max_iter=1000),
        ),
        "gradient-boosting": HistGradientBoostingClassifier(
            **BOOSTING_PARAMS, random_state=random_state
        ),
    }


def _probabilities(model: Any, X: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``predict_proba`` laid out on ``classes`` (a fold may lack some of them)."""
    p = model.predict_proba(X)
    out = np.zeros((len(X), len(classes)))
    out[:, np.searchsorted(classes, model.classes_)] = p
    return out


@dataclass
class MechanismSampler:
    """One fitted mechanism of one environment: draws its node given its parents.

    Attributes
    ----------
    node : str
    parents : tuple of str
    kind : {"empirical", "categorical", "additive_noise", "location_scale", "constant"}
    support : ndarray
        Sorted observed values (``"empirical"``), classes (``"categorical"``), sorted
        residuals (``"additive_noise"``), sorted standardised residuals
        (``"location_scale"``) or the one value (``"constant"``).
    model : estimator, optional
        The fitted regression ``f`` or classifier.
    scale_model : estimator, optional
        The fitted regression of ``|residual|`` (``"location_scale"``).
    scale : float
        The constant noise scale (additive noise), or the floor of ``s(pa)``.
    info : dict
        Fit diagnostics: the chosen model, out-of-fold R² or log-loss.

    Examples
    --------
    >>> s = MechanismSampler("A", (), "empirical", np.array([1.0, 2.0, 3.0, 4.0]))
    >>> s.sample(np.empty((2, 0)), np.array([0.1, 0.9]))
    array([1., 4.])
    """

    node: str
    parents: tuple[str, ...]
    kind: str
    support: np.ndarray
    model: Any = None
    scale_model: Any = None
    scale: float = 1.0
    info: dict[str, Any] = field(default_factory=dict)

    def sample(self, parents: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Draw the node for each row of ``parents`` from its uniform number ``u``.

        Parameters
        ----------
        parents : ndarray of shape (m, n_parents)
        u : ndarray of shape (m,)
            Uniform numbers in [0, 1): equal numbers give quantile-coupled draws
            across environments and coalitions.

        Returns
        -------
        ndarray of shape (m,)

        Examples
        --------
        >>> coin = MechanismSampler("S", ("A",), "constant", np.array([1]))
        >>> coin.sample(np.zeros((3, 1)), np.array([0.1, 0.5, 0.9]))
        array([1., 1., 1.])
        """
        if self.kind == "constant":
            return np.full(len(u), float(self.support[0]))
        if self.kind == "empirical":
            return self.support[_quantile_index(u, len(self.support))]
        if self.kind == "categorical":
            with limit_threads(1):
                p = _probabilities(self.model, parents, self.support)
            k = (u[:, None] >= np.cumsum(p, axis=1)[:, :-1]).sum(axis=1)
            return self.support[k]
        with limit_threads(1):
            mean = self.model.predict(parents)
            s = self.scale
            if self.kind == "location_scale":
                s = np.maximum(self.scale_model.predict(parents), self.scale)
        return mean + s * self.support[_quantile_index(u, len(self.support))]


def _quantile_index(u: np.ndarray, n: int) -> np.ndarray:
    return np.minimum((u * n).astype(np.int64), n - 1)


def fit_sampler(
    node: str,
    parents: Sequence[str],
    env: Environment,
    discrete: bool,
    n_folds: int = 5,
    regressors: Any = None,
    groups: np.ndarray | None = None,
    random_state: int | None = None,
) -> MechanismSampler:
    """Fit one mechanism's sampler on one environment's cases.

    Parameters
    ----------
    node : str
    parents : sequence of str
    env : Environment
    discrete : bool
        Sample from a classifier's class probabilities (else a noise model).
    n_folds : int, default 5
        Folds of the out-of-fold choice of model and of the residuals.
    regressors : estimator or mapping, optional
        Candidates for ``f`` and ``s`` (default
        :func:`~shiftattr.value.default_regressors`).
    groups : ndarray, optional
        Bootstrap duplicates sharing a group stay in one fold.
    random_state : int, optional

    Returns
    -------
    MechanismSampler

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=500)
    >>> env = Environment({"A": a, "B": 2 * a + 0.1 * rng.normal(size=500)})
    >>> s = fit_sampler("B", ["A"], env, discrete=False, random_state=0)
    >>> s.kind, round(float(s.sample(np.array([[1.0]]), np.array([0.5]))[0]), 1)
    ('additive_noise', 2.0)
    """
    rng = np.random.default_rng(random_state)
    y = _column(env, node)
    parents = tuple(parents)
    if not parents:
        return MechanismSampler(node, (), "empirical", np.sort(y), info={"n": len(y)})
    X = np.column_stack([_column(env, p) for p in parents])
    folds = assign_folds(np.zeros(len(y)), n_folds, rng, groups)
    seed = int(rng.integers(2**31 - 1))
    if discrete:
        classes = np.unique(y)
        if len(classes) == 1:
            return MechanismSampler(node, parents, "constant", classes, info={"n": len(y)})
        return _fit_categorical(node, parents, X, y, classes, folds, seed)
    if np.ptp(y) == 0:
        return MechanismSampler(node, parents, "constant", y[:1], info={"n": len(y)})
    loc = crossfit_regression(X, y, folds, X[:0], regressors, random_state=seed)
    chosen, r2 = _simplest_regression(loc, y)
    model = _refit(chosen, regressors, seed, X, y)
    with limit_threads(1):
        resid = y - model.predict(X)
    info: dict[str, Any] = {"n": len(y), "regressor": chosen, "r2": r2}
    mean_abs = float(np.mean(np.abs(resid)))
    if mean_abs == 0:
        return MechanismSampler(
            node, parents, "additive_noise", np.zeros(1), model, None, 0.0, info
        )
    spread = crossfit_regression(X, np.abs(resid), folds, X[:0], regressors, random_state=seed)
    scale_chosen, scale_r2 = _simplest_regression(spread, np.abs(resid))
    info["scale_r2"] = scale_r2
    floor = _SCALE_FLOOR * mean_abs
    if scale_r2 >= SCALE_MIN_R2:
        scale_model = _refit(scale_chosen, regressors, seed, X, np.abs(resid))
        with limit_threads(1):
            s_fit = np.maximum(scale_model.predict(X), floor)
        info["scale_regressor"] = scale_chosen
        return MechanismSampler(
            node, parents, "location_scale", np.sort(resid / s_fit), model, scale_model, floor, info
        )
    return MechanismSampler(node, parents, "additive_noise", np.sort(resid), model, None, 1.0, info)


def simplest_within_one_se(losses: Mapping[str, np.ndarray]) -> str:
    """The first candidate whose mean loss is within one standard error of the best's.

    The one-standard-error rule (Breiman et al. 1984; Hastie, Tibshirani and Friedman,
    *Elements of Statistical Learning*, 7.10), on the paired per-case differences: a
    sampler is evaluated where the *other* environment's parents lie, and a flexible
    model that won on held-out source cases by noise extrapolates worse than the simpler
    one (a quadratic picked by chance on linear data bent the simulated outcome of the
    benchmark's linear-Gaussian SCM under the target's shifted parents).

    Parameters
    ----------
    losses : mapping of str to ndarray
        Per-case out-of-fold loss of every candidate, simplest first.

    Returns
    -------
    str

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> e = rng.normal(size=400) ** 2
    >>> noise = rng.normal(scale=0.1, size=400)
    >>> simplest_within_one_se({"linear": e + noise - noise.mean() + 0.001, "flexible": e})
    'linear'
    >>> simplest_within_one_se({"linear": e + noise + 0.5, "flexible": e})
    'flexible'
    """
    names = list(losses)
    best = min(names, key=lambda k: float(np.mean(losses[k])))
    for name in names:
        diff = np.asarray(losses[name]) - np.asarray(losses[best])
        se = float(np.std(diff, ddof=1)) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
        if float(np.mean(diff)) <= se:
            return name
    return best


def _simplest_regression(fit: Any, y: np.ndarray) -> tuple[str, float]:
    """:func:`simplest_within_one_se` on a cross-fitted regression: the name and its R²."""
    if not fit.candidates_oof:
        return fit.chosen, fit.r2
    order = sorted(fit.candidates_oof, key=lambda k: _EXTRAPOLATION_RANK.get(k, 0))
    losses = {k: (fit.candidates_oof[k] - y) ** 2 for k in order}
    name = simplest_within_one_se(losses)
    return name, float(1.0 - np.mean(losses[name]) / np.var(y))


def _refit(chosen: str, regressors: Any, seed: int, X: np.ndarray, y: np.ndarray) -> Any:
    """The chosen regressor refitted on every case (the samplers predict on new ones)."""
    with limit_threads(1):
        return clone(candidate_regressors(regressors, seed)[chosen]).fit(X, y)


def _fit_categorical(
    node: str,
    parents: tuple[str, ...],
    X: np.ndarray,
    y: np.ndarray,
    classes: np.ndarray,
    folds: np.ndarray,
    seed: int,
) -> MechanismSampler:
    candidates = _classifiers(seed)
    code = np.searchsorted(classes, y)
    loss = {}
    with limit_threads(1):
        for name, clf in candidates.items():
            p = np.empty((len(y), len(classes)))
            for f in np.unique(folds):
                train, test = folds != f, folds == f
                if len(np.unique(y[train])) == 1:  # a fold with one class: predict it
                    p[test] = 0.0
                    p[test, np.searchsorted(classes, y[train][0])] = 1.0
                    continue
                model = clone(clf).fit(X[train], y[train])
                p[test] = _probabilities(model, X[test], classes)
            picked = np.clip(p[np.arange(len(y)), code], 1e-12, 1.0)
            loss[name] = -np.log(picked)
        best = simplest_within_one_se(loss)
        model = clone(candidates[best]).fit(X, y)
    prior = np.bincount(code, minlength=len(classes)) / len(y)
    base = float(-np.sum(prior[prior > 0] * np.log(prior[prior > 0])))
    info = {
        "n": len(y),
        "classifier": best,
        "log_loss": float(np.mean(loss[best])),
        "prior_log_loss": base,
    }
    return MechanismSampler(node, parents, "categorical", classes, model, info=info)


class GenerativeValue:
    """The generative value function: ``M(P_I)`` by simulating ``P_I`` and scoring it.

    Parameters
    ----------
    graph : CausalGraph
    mechanisms : sequence of str
        Players, in topological order.
    samplers : mapping of (str, bool) to MechanismSampler
        ``(node, False)`` the source's sampler of every node, ``(node, True)`` the
        target's of every mechanism.
    metric_fn : callable
        ``Environment -> array``: the per-case metric of simulated cases.
    n_simulations : int
        Simulated cases per coalition.
    random_state : int, optional
        Seed of the common random numbers.
    dtypes : mapping of str to dtype, optional
        The dtypes of the discrete nodes: their simulated values (observed classes) are
        cast to them before scoring. Other nodes are simulated as float.
    shapes : mapping of str to tuple, optional
        Per-case shape of a node stored as a column, e.g. ``(1,)`` for an ``(N, 1)``
        array: the simulated values get the same layout.
    measured : (float, float or None), optional
        The measured mean metric of the source and target cases, the anchors the
        simulated ones are compared with in :meth:`details`.

    Examples
    --------
    One root node ``A``, a fair coin at the source and always 1 at the target, and ``A``
    itself as the per-case metric:

    >>> import numpy as np
    >>> from shiftattr import CausalGraph, Environment
    >>> from shiftattr.value.generative import GenerativeValue, fit_sampler
    >>> source = Environment({"A": np.tile([0.0, 1.0], 50)})  # A: a fair coin
    >>> target = Environment({"A": np.ones(100)})  # A: always 1
    >>> samplers = {("A", False): fit_sampler("A", [], source, discrete=True),
    ...             ("A", True): fit_sampler("A", [], target, discrete=True)}
    >>> gv = GenerativeValue(CausalGraph({"A": []}), ["A"], samplers,
    ...                      metric_fn=lambda env: env["A"], n_simulations=2000,
    ...                      random_state=0, measured=(0.5, 1.0))
    >>> g = gv.game()
    >>> round(float(g(np.array([[True]]))[0]), 1)     # M(source) - M(target) = 0.5 - 1
    -0.5
    """

    def __init__(
        self,
        graph: CausalGraph,
        mechanisms: Sequence[str],
        samplers: Mapping[tuple[str, bool], MechanismSampler],
        metric_fn: Callable[[Environment], Any],
        n_simulations: int,
        random_state: int | None = None,
        dtypes: Mapping[str, Any] | None = None,
        measured: tuple[float, float | None] | None = None,
        shapes: Mapping[str, tuple[int, ...]] | None = None,
    ) -> None:
        self.graph = graph
        self.mechanisms = tuple(mechanisms)
        self.samplers = dict(samplers)
        self.metric_fn = metric_fn
        self.n_simulations = int(n_simulations)
        self.dtypes = dict(dtypes or {})
        self.shapes = dict(shapes or {})
        self.measured = measured
        self.levels = tuple(graph.topological_order())
        rng = np.random.default_rng(random_state)
        if self.n_simulations < SIMULATION_BATCHES:
            raise ValueError(
                f"n_simulations must be at least {SIMULATION_BATCHES} (its batches give the "
                f"simulation's standard error), got {n_simulations}."
            )
        self._u = rng.random((len(self.levels), self.n_simulations))
        self._starts = np.arange(SIMULATION_BATCHES) * self.n_simulations // SIMULATION_BATCHES
        self._sizes = np.diff(np.r_[self._starts, self.n_simulations])
        # the attributed ancestors (and self) of each node: its draw depends on their sides
        nx_graph = graph.to_networkx()
        self._deps = {}
        for node in self.levels:
            anc = nx.ancestors(nx_graph, node) | {node}
            self._deps[node] = [i for i, m in enumerate(self.mechanisms) if m in anc]
        self._batches: dict[bytes, np.ndarray] = {}  # coalition -> per-batch metric means

    def _simulate(self, coalitions: np.ndarray) -> list[dict[str, np.ndarray]]:
        """Every coalition's simulated cases, sharing the draws their nodes agree on."""
        drawn: dict[tuple[str, bytes], np.ndarray] = {}
        for j, node in enumerate(self.levels):
            cols = self._deps[node]
            parents = self.graph.parents(node)
            for key in np.unique(coalitions[:, cols], axis=0):
                side = node in self.mechanisms and bool(
                    key[cols.index(self.mechanisms.index(node))]
                )
                pa = (
                    np.column_stack(
                        [drawn[(p, _sub_key(key, cols, self._deps[p]))] for p in parents]
                    )
                    if parents
                    else np.empty((self.n_simulations, 0))
                )
                drawn[(node, key.tobytes())] = self.samplers[(node, side)].sample(pa, self._u[j])
        return [
            {n: drawn[(n, c[self._deps[n]].tobytes())] for n in self.levels} for c in coalitions
        ]

    def batch_means(self, coalitions: np.ndarray) -> np.ndarray:
        """Per-batch mean metric of every coalition's simulated cases.

        Parameters
        ----------
        coalitions : bool ndarray of shape (k, n_mechanisms)

        Returns
        -------
        ndarray of shape (k, SIMULATION_BATCHES)

        Examples
        --------
        >>> gv = _coin_example()  # the class example's gv (see GenerativeValue)
        >>> gv.batch_means(np.array([[True]]))[0, :3]  # A = 1 at the target
        array([1., 1., 1.])
        """
        coalitions = np.asarray(coalitions, dtype=bool)
        new = [c for c in np.unique(coalitions, axis=0) if c.tobytes() not in self._batches]
        # a few coalitions' draws at a time (shared draws are reused within a chunk)
        per = max(1, _SCORE_CHUNK_FLOATS // (self.n_simulations * len(self.levels)))
        for start in range(0, len(new), per):
            chunk = np.array(new[start : start + per])
            for c, sim in zip(chunk, self._simulate(chunk)):
                m = self._score(sim)
                self._batches[c.tobytes()] = np.add.reduceat(m, self._starts) / self._sizes
        return np.array([self._batches[c.tobytes()] for c in coalitions])

    def _score(self, sim: Mapping[str, np.ndarray]) -> np.ndarray:
        """The metric of one coalition's simulated cases (one call per coalition, so a
        metric that looks at its whole environment never mixes coalitions)."""
        data = {}
        for n in self.levels:
            v = sim[n]
            if n in self.dtypes:
                v = v.astype(self.dtypes[n])
            data[n] = v.reshape(-1, *self.shapes.get(n, ()))
        env = Environment(data, name="simulated")
        try:
            m = np.asarray(self.metric_fn(env), dtype=float)
        except Exception as err:  # the user's metric on cases it did not expect
            raise ValueError(
                "method='generative' scores the metric callable on simulated cases that hold "
                f"only the graph's nodes {list(self.levels)} (continuous nodes as floats); it "
                f"failed ({type(err).__name__}: {err}). Make the metric depend on those nodes "
                "only."
            ) from err
        if m.ndim != 1:
            m = m.squeeze()
        if m.shape != (len(env),) or not np.all(np.isfinite(m)):
            raise ValueError(
                "the metric callable must return one finite value per simulated case "
                f"({len(env)}); got shape {m.shape} with {int(np.sum(~np.isfinite(m)))} "
                "non-finite values."
            )
        return m

    def means(self, coalitions: np.ndarray) -> np.ndarray:
        """Simulated ``M(P_I)`` of every coalition.

        Parameters
        ----------
        coalitions : bool ndarray of shape (k, n_mechanisms)

        Returns
        -------
        ndarray of shape (k,)

        Examples
        --------
        >>> gv = _coin_example()  # the class example's gv (see GenerativeValue)
        >>> gv.means(np.array([[False], [True]])).round(1)
        array([0.5, 1. ])
        """
        return self.batch_means(coalitions) @ self._sizes / self.n_simulations

    def game(self) -> Game:
        """The game ``v(I) = M_sim(P_∅) - M_sim(P_I)``.

        Returns
        -------
        shiftattr.shapley.Game

        Examples
        --------
        >>> gv = _coin_example()  # the class example's gv (see GenerativeValue)
        >>> gv.game().players
        ('A',)
        """
        empty = np.zeros((1, len(self.mechanisms)), dtype=bool)
        base = float(self.means(empty)[0])
        return Game(self.mechanisms, lambda C: base - self.means(C))

    def details(self) -> dict[str, Any]:
        """The fits, the simulation's standard error and the two anchors.

        Returns
        -------
        dict
            ``n_simulations``; ``mechanism_fits`` (``"node@source"`` /
            ``"node@target"``: the family, the chosen model, its out-of-fold R² or
            log-loss); the simulated source and target metrics with their simulation
            standard errors and, with ``measured``, their gaps to the measured ones;
            ``simulation_stderr`` per mechanism when every coalition was simulated (the
            exact solver).

        Examples
        --------
        >>> gv = _coin_example()  # the class example's gv (see GenerativeValue)
        >>> d = gv.details()
        >>> d["mechanism_fits"]["A@target"]["kind"], abs(d["source_gap"]) < 0.05
        ('empirical', True)
        """
        source_metric, target_metric = self.measured or (None, None)
        n = len(self.mechanisms)
        out: dict[str, Any] = {
            "n_simulations": self.n_simulations,
            "mechanism_fits": {
                f"{node}@{'target' if side else 'source'}": {"kind": s.kind, **s.info}
                for (node, side), s in self.samplers.items()
            },
        }
        ends = np.array([np.zeros(n, bool), np.ones(n, bool)])
        b = self.batch_means(ends)
        se = b.std(axis=1, ddof=1) / np.sqrt(SIMULATION_BATCHES)
        sim = b @ self._sizes / self.n_simulations
        out["simulated_source_metric"] = float(sim[0])
        out["simulated_source_se"] = float(se[0])
        out["source_gap"] = None if source_metric is None else float(sim[0]) - source_metric
        out["simulated_target_metric"] = float(sim[1])
        out["simulated_target_se"] = float(se[1])
        out["target_gap"] = None if target_metric is None else float(sim[1]) - target_metric
        if n <= 20 and len(self._batches) == 2**n:  # every coalition simulated (exact solver)
            # the simulation's standard error of every Shapley value, from batch means
            phi = shapley_from_tables(-self.batch_means(coalition_bitmasks(n)))
            sd = phi.std(axis=0, ddof=1) / np.sqrt(SIMULATION_BATCHES)
            out["simulation_stderr"] = dict(zip(self.mechanisms, map(float, sd)))
        return out


def _sub_key(key: np.ndarray, cols: list[int], sub: list[int]) -> bytes:
    """The part of ``key`` (a row over ``cols``) over ``sub``, a subset of ``cols``."""
    return key[[cols.index(i) for i in sub]].tobytes()


def generative_warnings(
    details: Mapping[str, Any],
    source_metric: np.ndarray,
    target_metric: np.ndarray | None,
    metric_name: str = "metric",
) -> list[dict[str, Any]]:
    """``generative_misfit``: a simulated anchor far from the measured metric.

    The fitted mechanisms, simulated all at the source (or all at the target), should
    reproduce the measured mean metric up to its sampling error and the simulation's.
    A gap beyond three combined standard errors means some mechanism family does not
    fit, and every coalition's value inherits its bias (in part: the values are
    differences, so a bias shared by all coalitions cancels).

    Parameters
    ----------
    details : mapping
        :meth:`GenerativeValue.details`.
    source_metric, target_metric : ndarray
        The measured per-case metrics.
    metric_name : str

    Returns
    -------
    list of dict

    Examples
    --------
    >>> d = {"source_gap": 0.2, "simulated_source_se": 0.01, "simulated_source_metric": 0.7}
    >>> [w["code"] for w in generative_warnings(d, np.full(100, 0.5), None)]
    ['generative_misfit']
    """
    warns = []
    for side, measured in (("source", source_metric), ("target", target_metric)):
        gap = details.get(f"{side}_gap")
        if measured is None or gap is None:
            continue
        se = np.hypot(
            np.std(measured, ddof=1) / np.sqrt(len(measured)), details[f"simulated_{side}_se"]
        )
        if abs(gap) > 3 * se:
            warns.append(
                {
                    "code": "generative_misfit",
                    "mechanism": None,
                    "message": (
                        f"the fitted mechanisms, all at the {side}, simulate a {metric_name} "
                        f"of {details[f'simulated_{side}_metric']:.4f} where the {side} cases "
                        f"measure {float(np.mean(measured)):.4f} (gap {gap:+.4f}, more than "
                        f"three standard errors {se:.4f}): a mechanism's family misfits "
                        "(see diagnostics['estimator']['mechanism_fits']), or a mechanism "
                        "that shifted is left out of `mechanisms`, and the values may be "
                        "biased; compare with method='mr'."
                    ),
                }
            )
    return warns


def _coin_example() -> GenerativeValue:
    """The class example's ``gv``, for the methods' examples: one root ``A``, a fair coin
    at the source, always 1 at the target, ``A`` itself as the metric."""
    source = Environment({"A": np.tile([0.0, 1.0], 50)})
    target = Environment({"A": np.ones(100)})
    samplers = {
        ("A", False): fit_sampler("A", [], source, discrete=True),
        ("A", True): fit_sampler("A", [], target, discrete=True),
    }
    return GenerativeValue(
        CausalGraph({"A": []}), ["A"], samplers, lambda env: env["A"], 2000, 0, measured=(0.5, 1.0)
    )
