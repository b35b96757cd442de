"""A linear-Gaussian structural causal model whose attribution truth is closed-form.

Every node is scalar: ``V_i = a_i + sum_j B_ij V_j + s_i * eps_i`` with standard
normal noise. A fixed linear model predicts the outcome node; the per-case metric is its squared
error, its absolute error, or a hit (the prediction within a tolerance of the truth: a
bounded performance metric, like Dice). Under any mixed distribution ``P_I`` the
variables stay jointly Gaussian, so the residual ``r = Y - f(V)`` is
``N(g'mu - b0, g' Sigma g)`` and the expected metric is closed-form: the coalition
table and the Shapley values need no simulation at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

from shiftattr.datasets.truth import TrueAttribution, all_coalitions, shapley_from_table
from shiftattr.environment import Environment
from shiftattr.graph import CausalGraph
from shiftattr.metrics import metric_direction

__all__ = ["LinearGaussianSCM", "LinearMechanism"]


@dataclass(frozen=True)
class LinearMechanism:
    """``V = intercept + sum(coefs[p] * parent_p) + noise * eps``.

    Parameters
    ----------
    intercept : float, default 0.0
        Constant term.
    coefs : dict, default {}
        Parent name -> coefficient (parents must match the graph).
    noise : float, default 1.0
        Standard deviation of the Gaussian noise (> 0).

    Examples
    --------
    >>> LinearMechanism(0.5, {"Z": 0.8}, noise=1.2)
    LinearMechanism(intercept=0.5, coefs={'Z': 0.8}, noise=1.2)
    >>> LinearMechanism(noise=0.0)
    Traceback (most recent call last):
    ...
    ValueError: noise must be positive, got 0.0
    """

    intercept: float = 0.0
    coefs: Mapping[str, float] = field(default_factory=dict)
    noise: float = 1.0

    def __post_init__(self) -> None:
        if not self.noise > 0:
            raise ValueError(f"noise must be positive, got {self.noise}")


class LinearGaussianSCM:
    """Linear-Gaussian SCM with source and target mechanisms and a fixed linear model.

    Parameters
    ----------
    graph : CausalGraph or mapping
        Scalar nodes and their parents.
    source, target : mapping of str to LinearMechanism
        Mechanism of every node in each environment.
    outcome : str
        The node the model predicts.
    model_coefs : mapping of str to float
        The fixed model ``f(V) = model_intercept + sum(model_coefs[j] * V_j)``.
    model_intercept : float, default 0.0
    metric : {"hit", "squared_error", "absolute_error"}, default "squared_error"
        Per-case metric of the model. ``"hit"`` is 1 when ``|Y - f(V)| < tolerance``
        (higher is better, bounded like Dice); the two errors are losses (higher is
        worse, so a loss that rises shows as *negative* attributions).
    tolerance : float, default 0.75
        Half-width of a hit.

    Examples
    --------
    >>> scm = LinearGaussianSCM.example()
    >>> truth = scm.true_attribution()
    >>> round(sum(truth.values.values()), 10) == round(truth.total, 10)
    True
    >>> env = scm.sample(5, "source", random_state=0)
    >>> scm.metric(env).shape
    (5,)
    """

    def __init__(
        self,
        graph: CausalGraph | Mapping[str, Sequence[str]],
        source: Mapping[str, LinearMechanism],
        target: Mapping[str, LinearMechanism],
        outcome: str,
        model_coefs: Mapping[str, float],
        model_intercept: float = 0.0,
        metric: str = "squared_error",
        tolerance: float = 0.75,
    ) -> None:
        if metric not in ("hit", "squared_error", "absolute_error"):
            raise ValueError(
                f"metric must be 'hit', 'squared_error' or 'absolute_error', got {metric!r}"
            )
        if not tolerance > 0:
            raise ValueError(f"tolerance must be positive, got {tolerance}")
        self.metric_name = metric
        self.tolerance = float(tolerance)
        self.graph = graph if isinstance(graph, CausalGraph) else CausalGraph(graph)
        self.nodes = self.graph.topological_order()
        for env, name in ((source, "source"), (target, "target")):
            missing = [n for n in self.nodes if n not in env]
            if missing:
                raise ValueError(f"{name} lacks mechanisms for node(s) {missing}")
            for n in self.nodes:
                extra = set(env[n].coefs) - set(self.graph.parents(n))
                if extra:
                    raise ValueError(
                        f"{name} mechanism of {n!r} has coefficients for non-parents {sorted(extra)}"
                    )
        if outcome not in self.graph:
            raise ValueError(f"outcome {outcome!r} is not a node")
        if outcome in model_coefs:
            raise ValueError("the model cannot use the outcome as a feature")
        self.source = dict(source)
        self.target = dict(target)
        self.outcome = outcome
        self.model_coefs = dict(model_coefs)
        self.model_intercept = float(model_intercept)

    # -- construction helpers -----------------------------------------------------------
    @classmethod
    def example(
        cls, shifted: Iterable[str] = ("Z", "X", "Y"), metric: str = "hit"
    ) -> LinearGaussianSCM:
        """A 3-node SCM ``Z -> X -> Y <- Z`` with a model that ignores ``Z``.

        Parameters
        ----------
        shifted : iterable of str
            Mechanisms that differ in the target (any of ``"Z"``, ``"X"``, ``"Y"``).
            Shifted mechanisms move means *and* spreads, so the game is non-additive.
        metric : str, default "hit"
            See :class:`LinearGaussianSCM`. The hit rate (prediction within 0.75 of
            ``Y``) is about 0.76 on the source.

        Returns
        -------
        LinearGaussianSCM

        Examples
        --------
        >>> scm = LinearGaussianSCM.example(shifted=["X"])
        >>> scm.nodes, scm.outcome, scm.metric_name
        (('Z', 'X', 'Y'), 'Y', 'hit')
        >>> scm.source["Z"] == scm.target["Z"], scm.source["X"] == scm.target["X"]
        (True, False)
        """
        shifted = set(shifted)
        unknown = shifted - {"Z", "X", "Y"}
        if unknown:
            raise ValueError(f"example() knows mechanisms Z, X, Y; got {sorted(unknown)}")
        src = {
            "Z": LinearMechanism(0.0, {}, 1.0),
            "X": LinearMechanism(0.0, {"Z": 0.8}, 1.0),
            "Y": LinearMechanism(0.0, {"X": 1.0, "Z": 0.5}, 0.5),
        }
        tgt = {
            "Z": LinearMechanism(0.5, {}, 1.1),
            "X": LinearMechanism(-0.4, {"Z": 0.8}, 1.15),
            "Y": LinearMechanism(0.25, {"X": 1.1, "Z": 0.5}, 0.6),
        }
        target = {k: (tgt[k] if k in shifted else src[k]) for k in src}
        return cls(
            {"Z": [], "X": ["Z"], "Y": ["X", "Z"]},
            src,
            target,
            outcome="Y",
            model_coefs={"X": 1.2},
            metric=metric,
        )

    # -- sampling ---------------------------------------------------------------------
    def _mechanisms(self, shifted: Iterable[str]) -> dict[str, LinearMechanism]:
        shifted = set(shifted)
        unknown = shifted - set(self.nodes)
        if unknown:
            raise ValueError(
                f"unknown mechanism(s) {sorted(unknown)}; nodes are {list(self.nodes)}"
            )
        return {n: (self.target[n] if n in shifted else self.source[n]) for n in self.nodes}

    def sample_mixed(
        self,
        n: int,
        shifted: Iterable[str],
        random_state: int | np.random.Generator | None = None,
        name: str | None = None,
    ) -> Environment:
        """Draw ``n`` cases from the mixed distribution ``P_I`` with ``I = shifted``.

        The noise is drawn once per seed and pushed through the mechanisms, so two
        calls with the same seed share their noise (common random numbers).

        Parameters
        ----------
        n : int
            Number of cases.
        shifted : iterable of str
            Mechanisms taken from the target.
        random_state : int or Generator, optional
            Seed of the noise.
        name : str, optional
            Name of the environment; default ``"mixed[A,B]"`` from ``shifted``.

        Returns
        -------
        Environment
            One scalar array per node; ``metadata["shifted"]`` lists ``shifted``.

        Examples
        --------
        >>> scm = LinearGaussianSCM.example()
        >>> env = scm.sample_mixed(3, ["X"], random_state=0)
        >>> env.name, env.metadata, len(env)
        ('mixed[X]', {'shifted': ['X']}, 3)

        Common random numbers: with the same seed, a node whose mechanism and parents
        are unshifted takes the same values.

        >>> src = scm.sample_mixed(3, [], random_state=0)
        >>> bool(np.array_equal(env["Z"], src["Z"]))
        True
        """
        shifted = set(shifted)
        mech = self._mechanisms(shifted)
        rng = np.random.default_rng(random_state)
        eps = rng.standard_normal((len(self.nodes), n))
        values: dict[str, np.ndarray] = {}
        for i, node in enumerate(self.nodes):
            m = mech[node]
            v = m.intercept + m.noise * eps[i]
            for p, c in m.coefs.items():
                v = v + c * values[p]
            values[node] = v
        label = name or ("mixed[" + ",".join(sorted(shifted)) + "]")
        return Environment(values, name=label, metadata={"shifted": sorted(shifted)})

    def sample(
        self,
        n: int,
        environment: str = "source",
        random_state: int | np.random.Generator | None = None,
    ) -> Environment:
        """Draw ``n`` cases from the source or the target.

        Parameters
        ----------
        n : int
            Number of cases.
        environment : {"source", "target"}
            ``"target"`` shifts every mechanism.
        random_state : int or Generator, optional
            Seed of the noise.

        Returns
        -------
        Environment
            Named ``environment``, one scalar array per node.

        Examples
        --------
        >>> scm = LinearGaussianSCM.example()
        >>> env = scm.sample(4, "target", random_state=0)
        >>> env.name, env.nodes, env["Y"].shape
        ('target', ('Z', 'X', 'Y'), (4,))
        """
        if environment not in ("source", "target"):
            raise ValueError(f"environment must be 'source' or 'target', got {environment!r}")
        shifted = self.nodes if environment == "target" else ()
        return self.sample_mixed(n, shifted, random_state, name=environment)

    # -- the model and its metric -------------------------------------------------------
    def predict(self, env: Environment) -> np.ndarray:
        """The fixed linear model's prediction of the outcome.

        Parameters
        ----------
        env : Environment
            Holds (at least) the nodes the model uses.

        Returns
        -------
        numpy.ndarray of shape (len(env),)
            ``model_intercept + sum(model_coefs[j] * env[j])``.

        Examples
        --------
        >>> scm = LinearGaussianSCM.example()   # f(V) = 1.2 * X
        >>> env = scm.sample(3, random_state=0)
        >>> bool(np.allclose(scm.predict(env), 1.2 * env["X"]))
        True
        """
        out = np.full(len(env), self.model_intercept)
        for j, c in self.model_coefs.items():
            out = out + c * np.asarray(env[j], dtype=float)
        return out

    def metric(self, env: Environment) -> np.ndarray:
        """Per-case metric of the fixed model (see the ``metric`` parameter).

        Parameters
        ----------
        env : Environment
            Holds the outcome and the nodes the model uses.

        Returns
        -------
        numpy.ndarray of shape (len(env),)
            Hit (0 or 1), squared error or absolute error of each case.

        Examples
        --------
        >>> scm = LinearGaussianSCM.example(metric="squared_error")
        >>> env = scm.sample(3, random_state=0)
        >>> bool(np.allclose(scm.metric(env), (env["Y"] - scm.predict(env)) ** 2))
        True
        >>> hits = LinearGaussianSCM.example(metric="hit").metric(env)
        >>> set(hits.tolist()) <= {0.0, 1.0}
        True
        """
        r = np.asarray(env[self.outcome], dtype=float) - self.predict(env)
        if self.metric_name == "hit":
            return (np.abs(r) < self.tolerance).astype(float)
        if self.metric_name == "absolute_error":
            return np.abs(r)
        return r**2

    def true_log_ratio(self, env: Environment, mechanism: str) -> np.ndarray:
        """Exact ``log p_t(v_i | pa_i) - log p_s(v_i | pa_i)`` at the cases of ``env``.

        The oracle density ratio: what a perfect estimator would return. Useful to
        separate the error of the weighting from the error of the ratio estimators.

        Parameters
        ----------
        env : Environment
            Holds ``mechanism`` and its parents.
        mechanism : str
            The node whose conditional density ratio is wanted.

        Returns
        -------
        numpy.ndarray of shape (len(env),)

        Examples
        --------
        >>> scm = LinearGaussianSCM.example(shifted=["X"])
        >>> env = scm.sample(3, random_state=0)
        >>> scm.true_log_ratio(env, "X").shape
        (3,)
        >>> bool(np.all(scm.true_log_ratio(env, "Z") == 0))   # Z is not shifted
        True
        """
        v = np.asarray(env[mechanism], dtype=float)
        out = np.zeros(len(env))
        for mech, sign in ((self.target[mechanism], 1.0), (self.source[mechanism], -1.0)):
            mean = mech.intercept + sum(
                c * np.asarray(env[p], dtype=float) for p, c in mech.coefs.items()
            )
            out += sign * (-0.5 * ((v - mean) / mech.noise) ** 2 - np.log(mech.noise))
        return out

    # -- exact truth ------------------------------------------------------------------
    def expected_metric(self, shifted: Iterable[str] = ()) -> float:
        """Exact expected metric under ``P_I`` with ``I = shifted``.

        Parameters
        ----------
        shifted : iterable of str, default ()
            Mechanisms taken from the target; ``()`` is the source.

        Returns
        -------
        float

        Examples
        --------
        >>> scm = LinearGaussianSCM.example()
        >>> round(scm.expected_metric(), 4), round(scm.expected_metric(scm.nodes), 4)
        (0.7611, 0.5766)
        """
        mech = self._mechanisms(shifted)
        k = len(self.nodes)
        pos = {n: i for i, n in enumerate(self.nodes)}
        B = np.zeros((k, k))
        a = np.zeros(k)
        s = np.zeros(k)
        for n in self.nodes:
            m = mech[n]
            a[pos[n]] = m.intercept
            s[pos[n]] = m.noise
            for p, c in m.coefs.items():
                B[pos[n], pos[p]] = c
        T = np.linalg.inv(np.eye(k) - B)
        mu = T @ a
        cov = T @ np.diag(s**2) @ T.T
        g = np.zeros(k)
        g[pos[self.outcome]] = 1.0
        for j, c in self.model_coefs.items():
            g[pos[j]] -= c
        m, sd = float(g @ mu - self.model_intercept), float(np.sqrt(g @ cov @ g))
        if self.metric_name == "hit":
            t = self.tolerance
            return float(norm.cdf((t - m) / sd) - norm.cdf((-t - m) / sd))
        if self.metric_name == "absolute_error":  # folded normal mean
            return float(
                sd * np.sqrt(2 / np.pi) * np.exp(-(m**2) / (2 * sd**2))
                + m * (1 - 2 * norm.cdf(-m / sd))
            )
        return m**2 + sd**2

    def true_attribution(self, mechanisms: Sequence[str] | None = None) -> TrueAttribution:
        """Exact ``ΔM_I`` for every coalition and the exact Shapley values.

        Sign convention as everywhere in the library: ``ΔM_I = M(source) - M(P_I)``,
        so for a loss that rises the values are negative.

        Parameters
        ----------
        mechanisms : sequence of str, optional
            Players; default every node. Others stay at the source.

        Returns
        -------
        TrueAttribution

        Examples
        --------
        >>> truth = LinearGaussianSCM.example().true_attribution()
        >>> {k: round(v, 4) for k, v in truth.values.items()}
        {'Z': 0.054, 'X': 0.0143, 'Y': 0.1161}
        >>> truth.dominant, round(truth.total, 4)
        ('Y', 0.1845)
        """
        mechs = tuple(self.nodes if mechanisms is None else mechanisms)
        base = self.expected_metric(())
        table = {c: base - self.expected_metric(c) for c in all_coalitions(mechs)}
        return TrueAttribution(
            mechanisms=mechs,
            values=shapley_from_table(mechs, table),
            delta_m=table,
            source_metric=base,
            target_metric=self.expected_metric(mechs),
            higher_is_better=metric_direction(self.metric_name),
        )
