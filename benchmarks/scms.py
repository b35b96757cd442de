"""Tabular data-generating processes with a known attribution truth.

Each SCM has source and target mechanisms (several shift at once), a fixed model of the
outcome trained once on a source sample, a per-case loss of that model, the exact
conditional log density ratio of every mechanism (the oracle a perfect ratio estimator
would return), and the ground-truth attribution:

- :class:`LinearGaussianBench` wraps :class:`shiftattr.datasets.LinearGaussianSCM`
  (closed-form truth);
- :class:`SimulatedSCM` holds nonlinear mechanisms given as sampling functions of
  common random numbers plus their log densities. Its truth simulates every
  coalition's mixed distribution ``P_I`` with the *same* noise draws (common random
  numbers), evaluates the model's mean loss under each and takes exact Shapley values
  with :func:`shiftattr.datasets.shapley_from_table`; the Monte-Carlo standard error of
  each value comes from the per-case Shapley contributions.

Three nonlinear processes are defined (:func:`threshold_chain`, :func:`hetero_mixture`,
:func:`logistic_interaction`); :func:`all_scms` lists them with the linear-Gaussian one.
Sign convention as in the library: ``v(I) = M(source) - M(P_I)`` with ``M`` the mean
loss, so a loss that rises gives negative values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from math import comb
from typing import Any

import numpy as np
from scipy.special import expit, log_expit, logsumexp
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from shiftattr import CausalGraph, Environment
from shiftattr.datasets import (
    LinearGaussianSCM,
    TrueAttribution,
    all_coalitions,
    shapley_from_table,
)

Values = dict[str, np.ndarray]
_LOG_2PI = float(np.log(2 * np.pi))


def normal_logpdf(x: np.ndarray, mean: np.ndarray | float, sd: np.ndarray | float) -> np.ndarray:
    """Log density of ``N(mean, sd**2)`` at ``x``."""
    z = (x - mean) / sd
    return -0.5 * z**2 - np.log(sd) - 0.5 * _LOG_2PI


def bernoulli_logpmf(x: np.ndarray, logit: np.ndarray) -> np.ndarray:
    """Log probability of the binary ``x`` when ``P(x = 1) = sigmoid(logit)``."""
    return log_expit(np.where(x > 0.5, logit, -logit))


def shapley_weight_matrix(n: int, coalitions: Sequence[Sequence[str]], players: Sequence[str]):
    """Matrix ``W`` (n, 2**n) with ``phi = W @ v`` for a table ``v`` in ``coalitions`` order."""
    w = np.array([1.0 / (n * comb(n - 1, s)) for s in range(n)])
    W = np.zeros((n, len(coalitions)))
    for k, c in enumerate(coalitions):
        members = set(c)
        s = len(members)
        for i, p in enumerate(players):
            if p in members:
                W[i, k] += w[s - 1]
            elif s < n:
                W[i, k] -= w[s]
    return W


@dataclass(frozen=True)
class Mechanism:
    """One mechanism ``P(node | parents)``: a sampler of common noise and its log density.

    Parameters
    ----------
    sample : callable
        ``(noise, parents) -> values``; ``noise`` is the node's entry of the common
        random numbers, ``parents`` maps parent names to arrays.
    log_density : callable
        ``(values, parents) -> log p(values | parents)`` (a log pmf for binary nodes).
    """

    sample: Callable[[np.ndarray, Values], np.ndarray]
    log_density: Callable[[np.ndarray, Values], np.ndarray]


def _gaussian(
    mean: Callable[[Values], np.ndarray | float], sd: Callable[[Values], np.ndarray | float]
) -> Mechanism:
    """``V = mean(pa) + sd(pa) * eps`` with standard-normal noise ``eps``."""
    return Mechanism(
        sample=lambda eps, pa: mean(pa) + sd(pa) * eps,
        log_density=lambda v, pa: normal_logpdf(v, mean(pa), sd(pa)),
    )


def _binary(logit: Callable[[Values], np.ndarray]) -> Mechanism:
    """``V = 1[u < sigmoid(logit(pa))]`` with uniform noise ``u``."""
    return Mechanism(
        sample=lambda u, pa: (u < expit(logit(pa))).astype(float),
        log_density=lambda v, pa: bernoulli_logpmf(v, logit(pa)),
    )


def _mixture(weight: float, means: tuple[float, float], sds: tuple[float, float]) -> Mechanism:
    """Two-component Gaussian mixture; noise rows are (uniform for the component, normal)."""

    def sample(noise: np.ndarray, pa: Values) -> np.ndarray:
        second = noise[0] < weight
        return np.where(second, means[1] + sds[1] * noise[1], means[0] + sds[0] * noise[1])

    def log_density(v: np.ndarray, pa: Values) -> np.ndarray:
        return logsumexp(
            [
                np.log1p(-weight) + normal_logpdf(v, means[0], sds[0]),
                np.log(weight) + normal_logpdf(v, means[1], sds[1]),
            ],
            axis=0,
        )

    return Mechanism(sample, log_density)


def _loss(kind: str, y: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    if kind == "squared_error":
        return (y - prediction) ** 2
    if kind == "absolute_error":
        return np.abs(y - prediction)
    if kind == "log_loss":  # prediction is the model's logit of P(y = 1)
        return -log_expit(np.where(y > 0.5, prediction, -prediction))
    raise ValueError(f"unknown loss {kind!r}")


@dataclass
class SimulatedSCM:
    """A nonlinear SCM with simulated ground truth (see the module docstring).

    Parameters
    ----------
    name, description : str
    parents : mapping of str to list of str
        The DAG; insertion order must be topological.
    noise : mapping of str to callable
        ``(rng, n) -> array``: the common random numbers of each node (last axis ``n``).
    source, target : mapping of str to Mechanism
        Mechanisms that differ between the two are the shifted ones.
    model_inputs : tuple of str
    outcome : str
    loss_kind : {"squared_error", "absolute_error", "log_loss"}
    model : scikit-learn estimator
        Unfitted; fitted once on ``n_train`` source cases (``model_seed``).
    binary : tuple of str
        Binary (0/1) nodes.
    """

    name: str
    description: str
    parents: Mapping[str, list[str]]
    noise: Mapping[str, Callable[[np.random.Generator, int], np.ndarray]]
    source: Mapping[str, Mechanism]
    target: Mapping[str, Mechanism]
    model_inputs: tuple[str, ...]
    outcome: str
    loss_kind: str
    model: Any
    binary: tuple[str, ...] = ()
    n_train: int = 5000
    model_seed: int = 12345
    _fitted: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.graph = CausalGraph({k: list(v) for k, v in self.parents.items()})
        self.nodes = tuple(self.parents)
        self.mechanisms = self.nodes

    @property
    def shifted(self) -> tuple[str, ...]:
        """Mechanisms that differ between source and target."""
        return tuple(n for n in self.nodes if self.source[n] is not self.target[n])

    # -- sampling ----------------------------------------------------------------------
    def draw_noise(self, n: int, rng: np.random.Generator) -> Values:
        """Common random numbers for ``n`` cases."""
        return {node: self.noise[node](rng, n) for node in self.nodes}

    def push(self, noise: Values, shifted: Sequence[str]) -> Values:
        """Values of every node under ``P_I`` (``I = shifted``) for the given noise."""
        shifted = set(shifted)
        values: Values = {}
        for node in self.nodes:
            mech = (self.target if node in shifted else self.source)[node]
            values[node] = mech.sample(noise[node], {p: values[p] for p in self.parents[node]})
        return values

    def sample(
        self, n: int, shifted: Sequence[str] | str = (), random_state: Any = None
    ) -> Environment:
        """``n`` cases of ``P_I``; ``shifted`` may be ``"source"`` or ``"target"``."""
        name = shifted if isinstance(shifted, str) else "mixed"
        if shifted == "source":
            shifted = ()
        elif shifted == "target":
            shifted = self.nodes
        values = self.push(self.draw_noise(n, np.random.default_rng(random_state)), shifted)
        return Environment(values, name=name)

    # -- the fixed model ------------------------------------------------------------------
    def _design(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.column_stack([np.asarray(values[k], dtype=float) for k in self.model_inputs])

    @property
    def fitted_model(self) -> Any:
        """The model, fitted once on ``n_train`` source cases."""
        if self._fitted is None:
            train = self.push(
                self.draw_noise(self.n_train, np.random.default_rng(self.model_seed)), ()
            )
            self._fitted = clone(self.model).fit(self._design(train), train[self.outcome])
        return self._fitted

    def predict(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """The model's prediction (a logit for classifiers)."""
        X = self._design(values)
        model = self.fitted_model
        if hasattr(model, "decision_function"):
            return model.decision_function(X)
        return model.predict(X)

    def loss(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """Per-case loss of the fixed model."""
        y = np.asarray(values[self.outcome], dtype=float)
        return _loss(self.loss_kind, y, self.predict(values))

    def metric(self, env: Environment) -> np.ndarray:
        """Per-case loss on an environment (the metric given to ``attribute``)."""
        return self.loss({n: env[n] for n in self.nodes})

    def true_log_ratio(self, env: Environment, mechanism: str) -> np.ndarray:
        """Exact ``log p_t(v_i | pa_i) - log p_s(v_i | pa_i)`` at the cases of ``env``."""
        v = np.asarray(env[mechanism], dtype=float)
        pa = {p: np.asarray(env[p], dtype=float) for p in self.parents[mechanism]}
        if self.source[mechanism] is self.target[mechanism]:
            return np.zeros(len(v))
        return self.target[mechanism].log_density(v, pa) - self.source[mechanism].log_density(v, pa)

    # -- ground truth ------------------------------------------------------------------
    def _input_ancestors(self) -> set[str]:
        g = self.graph.to_networkx()
        out = set(self.model_inputs)
        for node in self.model_inputs:
            out |= _ancestors(g, node)
        return out

    def truth(
        self, n: int = 1_000_000, random_state: int = 2024, chunk: int = 250_000
    ) -> TrueAttribution:
        """Ground truth by simulating every coalition with common random numbers.

        Parameters
        ----------
        n : int
            Simulated cases per coalition.
        random_state : int
        chunk : int
            Cases simulated at once (bounds memory).

        Returns
        -------
        TrueAttribution
            With Monte-Carlo standard errors of the values in ``stderr``.
        """
        mechs = self.mechanisms
        coalitions = all_coalitions(mechs)
        W = shapley_weight_matrix(len(mechs), coalitions, mechs)
        relevant = self._input_ancestors()
        rng = np.random.default_rng(random_state)
        sums = np.zeros(len(coalitions))
        phi_sum = np.zeros(len(mechs))
        phi_sq = np.zeros(len(mechs))
        done = 0
        while done < n:
            size = min(chunk, n - done)
            noise = self.draw_noise(size, rng)
            losses = np.empty((len(coalitions), size))
            predictions: dict[frozenset[str], np.ndarray] = {}
            for k, c in enumerate(coalitions):
                values = self.push(noise, c)
                key = frozenset(c) & relevant
                if key not in predictions:
                    predictions[key] = self.predict(values)
                y = np.asarray(values[self.outcome], dtype=float)
                losses[k] = _loss(self.loss_kind, y, predictions[key])
            sums += losses.sum(axis=1)
            # per-case Shapley contributions of the game base - loss
            phi = W @ (losses[0] - losses)
            phi_sum += phi.sum(axis=1)
            phi_sq += (phi**2).sum(axis=1)
            done += size
        means = sums / n
        table = {c: float(means[0] - means[k]) for k, c in enumerate(coalitions)}
        values = shapley_from_table(mechs, table)
        var = np.maximum(phi_sq / n - (phi_sum / n) ** 2, 0.0)
        stderr = dict(zip(mechs, map(float, np.sqrt(var / n))))
        return TrueAttribution(
            mechanisms=tuple(mechs),
            values=values,
            delta_m=table,
            source_metric=float(means[0]),
            target_metric=float(means[-1]),
            stderr=stderr,
            n=n,
            extra={"method": "simulation with common random numbers"},
        )


def _ancestors(g: Any, node: str) -> set[str]:
    import networkx as nx

    return set(nx.ancestors(g, node))


class LinearGaussianBench:
    """:class:`~shiftattr.datasets.LinearGaussianSCM` under the benchmark interface.

    ``Z -> X -> Y <- Z``, every mechanism shifted (mean and spread), model
    ``f = 1.2 X``, squared-error loss; the truth is closed-form.
    """

    name = "linear_gaussian"
    description = (
        "LinearGaussianSCM.example: Z -> X -> Y <- Z, all three mechanisms shift (mean and "
        "spread), model 1.2 X ignores Z, squared error; closed-form truth"
    )
    binary: tuple[str, ...] = ()
    loss_kind = "squared_error"

    def __init__(self) -> None:
        self.scm = LinearGaussianSCM.example(metric="squared_error")
        self.graph = self.scm.graph
        self.nodes = self.scm.nodes
        self.mechanisms = self.nodes
        self.parents = {n: list(self.graph.parents(n)) for n in self.nodes}
        self.model_inputs = tuple(self.scm.model_coefs)
        self.outcome = self.scm.outcome

    @property
    def shifted(self) -> tuple[str, ...]:
        return self.nodes

    def sample(
        self, n: int, shifted: Sequence[str] | str = (), random_state: Any = None
    ) -> Environment:
        if isinstance(shifted, str):
            return self.scm.sample(n, shifted, random_state=random_state)
        return self.scm.sample_mixed(n, shifted, random_state=random_state)

    def loss(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.scm.metric(Environment(dict(values), name="values"))

    def metric(self, env: Environment) -> np.ndarray:
        return self.scm.metric(env)

    def true_log_ratio(self, env: Environment, mechanism: str) -> np.ndarray:
        return self.scm.true_log_ratio(env, mechanism)

    def truth(self, n: int | None = None, random_state: int | None = None) -> TrueAttribution:
        """Closed form (``n`` and ``random_state`` are ignored)."""
        return self.scm.true_attribution()


def _std_normal(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal(n)


def _uniform(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random(n)


def threshold_chain() -> SimulatedSCM:
    """``A -> B``, ``(A, B) -> S`` (threshold), ``(A, B, S) -> Y`` with a ``S * B`` interaction.

    Shifted: ``A`` (mean), ``S`` (the threshold drops from 1 to 0), ``Y``
    (the interaction weakens, noise grows). ``B`` is unshifted (true value 0).
    Model: gradient-boosted trees on ``(A, B, S)``; loss: squared error.
    """
    b_mech = _gaussian(lambda pa: np.tanh(1.5 * pa["A"]), lambda pa: 0.5)

    def s_logit(t: float) -> Callable[[Values], np.ndarray]:
        return lambda pa: (pa["A"] + pa["B"] - t) / 0.5

    def y_mean(c: float) -> Callable[[Values], np.ndarray]:
        return lambda pa: np.sin(2 * pa["A"]) + pa["B"] + c * pa["S"] * pa["B"]

    return SimulatedSCM(
        name="threshold_chain",
        description=(
            "A -> B -> S <- A, Y <- (A, B, S): root shift of A, threshold shift of the binary S, "
            "interaction shift in Y (S*B weakens, noise grows); B unshifted; "
            "gradient-boosting model, squared error"
        ),
        parents={"A": [], "B": ["A"], "S": ["A", "B"], "Y": ["A", "B", "S"]},
        noise={"A": _std_normal, "B": _std_normal, "S": _uniform, "Y": _std_normal},
        source={
            "A": _gaussian(lambda pa: 0.0, lambda pa: 1.0),
            "B": b_mech,
            "S": _binary(s_logit(1.0)),
            "Y": _gaussian(y_mean(1.5), lambda pa: 0.5),
        },
        target={
            "A": _gaussian(lambda pa: 0.6, lambda pa: 1.0),
            "B": b_mech,
            "S": _binary(s_logit(0.0)),
            "Y": _gaussian(y_mean(1.0), lambda pa: 0.55),
        },
        model_inputs=("A", "B", "S"),
        outcome="Y",
        loss_kind="squared_error",
        model=HistGradientBoostingRegressor(max_iter=60, max_depth=4, random_state=0),
        binary=("S",),
    )


def hetero_mixture() -> SimulatedSCM:
    """Mixture root ``U``, heteroscedastic ``V | U``, root ``W``, ``Y = 2 tanh(UV/2) + ...``.

    Shifted: all four: the mixture weight of ``U`` (0.3 -> 0.65), the spread of
    ``V | U`` (``0.2 + 0.3|U|`` -> ``0.2 + 0.45|U|``), the mean of ``W``, and a
    ``U``-dependent concept shift in ``Y``. Model: degree-2 polynomial ridge on
    ``(U, V, W)``; loss: absolute error.
    """

    def y_mean(b: float) -> Callable[[Values], np.ndarray]:
        return lambda pa: 2 * np.tanh(pa["U"] * pa["V"] / 2) + 0.5 * pa["W"] + b * pa["U"]

    def v_sd(a: float) -> Callable[[Values], np.ndarray]:
        return lambda pa: 0.2 + a * np.abs(pa["U"])

    return SimulatedSCM(
        name="hetero_mixture",
        description=(
            "U (two-component mixture) -> V (heteroscedastic), W root, Y <- (U, V, W) with "
            "tanh(UV) interaction: mixture-weight, noise-scale, mean and U-dependent concept "
            "shifts at once; polynomial-ridge model, absolute error"
        ),
        parents={"U": [], "V": ["U"], "W": [], "Y": ["U", "V", "W"]},
        noise={
            "U": lambda rng, n: np.stack([rng.random(n), rng.standard_normal(n)]),
            "V": _std_normal,
            "W": _std_normal,
            "Y": _std_normal,
        },
        source={
            "U": _mixture(0.3, (-1.0, 1.5), (0.5, 0.7)),
            "V": _gaussian(lambda pa: 0.5 * pa["U"] ** 2, v_sd(0.3)),
            "W": _gaussian(lambda pa: 0.0, lambda pa: 1.0),
            "Y": _gaussian(y_mean(0.0), lambda pa: 0.5),
        },
        target={
            "U": _mixture(0.65, (-1.0, 1.5), (0.5, 0.7)),
            "V": _gaussian(lambda pa: 0.5 * pa["U"] ** 2, v_sd(0.45)),
            "W": _gaussian(lambda pa: 0.8, lambda pa: 1.0),
            "Y": _gaussian(y_mean(0.4), lambda pa: 0.5),
        },
        model_inputs=("U", "V", "W"),
        outcome="Y",
        loss_kind="absolute_error",
        model=make_pipeline(PolynomialFeatures(2), StandardScaler(), Ridge(alpha=1.0)),
    )


def logistic_interaction() -> SimulatedSCM:
    """Binary outcome with an ``X1 * X2`` interaction a linear logistic model misses.

    Shifted: ``X1`` (mean), ``X2 | X1`` (intercept and spread), ``Y`` (prior shift of
    the logit by -1). ``X3`` is unshifted (true value 0). Model: logistic regression on
    ``(X1, X2, X3)``; loss: log-loss.
    """

    def y_logit(delta: float) -> Callable[[Values], np.ndarray]:
        return lambda pa: 1.5 * pa["X1"] - pa["X2"] + pa["X1"] * pa["X2"] + 0.5 * pa["X3"] + delta

    x3 = _gaussian(lambda pa: 0.0, lambda pa: 1.0)
    return SimulatedSCM(
        name="logistic_interaction",
        description=(
            "X1 -> X2, X3 root, binary Y <- (X1, X2, X3) with an X1*X2 interaction: covariate "
            "shifts of X1 and X2|X1 plus a label-prior shift of Y; X3 unshifted; linear "
            "logistic model, log-loss"
        ),
        parents={"X1": [], "X2": ["X1"], "X3": [], "Y": ["X1", "X2", "X3"]},
        noise={"X1": _std_normal, "X2": _std_normal, "X3": _std_normal, "Y": _uniform},
        source={
            "X1": _gaussian(lambda pa: 0.0, lambda pa: 1.0),
            "X2": _gaussian(lambda pa: 0.5 * pa["X1"], lambda pa: 1.0),
            "X3": x3,
            "Y": _binary(y_logit(0.0)),
        },
        target={
            "X1": _gaussian(lambda pa: 0.7, lambda pa: 1.0),
            "X2": _gaussian(lambda pa: 0.5 * pa["X1"] - 0.5, lambda pa: 1.3),
            "X3": x3,
            "Y": _binary(y_logit(-1.0)),
        },
        model_inputs=("X1", "X2", "X3"),
        outcome="Y",
        loss_kind="log_loss",
        model=LogisticRegression(C=1.0, max_iter=1000),
        binary=("Y",),
    )


def all_scms() -> dict[str, Any]:
    """Name -> SCM of every data-generating process of the accuracy benchmark."""
    scms = [LinearGaussianBench(), threshold_chain(), hetero_mixture(), logistic_interaction()]
    return {s.name: s for s in scms}
