"""DoWhy's change attribution on a benchmark SCM, set up to answer shiftattr's question.

DoWhy attributes the change of a *node's* distribution, so the model's per-case loss is
added to the graph as an extra node ``loss`` whose parents are the model's inputs and
the outcome. Three variants are run:

- ``dowhy_mr_gb``: :func:`dowhy.gcm.distribution_change_robust` (multiply-robust,
  ``method="MR"``, 5-fold cross-fitting) with DoWhy's histogram gradient-boosting
  regressor and classifier;
- ``dowhy_mr_default``: the same with its default learners (linear regression,
  logistic regression);
- ``dowhy_graphs``: :func:`dowhy.gcm.distribution_change_of_graphs`: one generative
  model fitted on each environment (mechanisms chosen by
  :func:`dowhy.gcm.auto.assign_causal_mechanisms`), the ``loss`` node given the exact
  loss function as a deterministic mechanism, the change in ``mean(loss)`` measured on
  ``num_samples`` simulated cases per coalition.

``distribution_change_robust`` factorises the joint in topological order (each variable
given *all* earlier ones); for a DAG that holds in both environments these are the same
mechanisms as ``P(v_i | pa_i)``. DoWhy's values are for ``mean_new - mean_old``; they are
negated to shiftattr's ``M(source) - M(P_I)``. The ``loss`` node's own mechanism
(deterministic, unshifted, true value 0) also receives a value; it is reported as
``loss_node`` and counts as an error in the MAE.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from shiftattr import Environment

LOSS = "loss"
METHODS = ("dowhy_mr_gb", "dowhy_mr_default", "dowhy_graphs")


def _graph(scm: Any) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from([*scm.nodes, LOSS])
    for node in scm.nodes:
        g.add_edges_from((p, node) for p in scm.parents[node])
    g.add_edges_from((p, LOSS) for p in (*scm.model_inputs, scm.outcome))
    return g


def _frame(scm: Any, env: Environment, categorical: bool) -> pd.DataFrame:
    cols = {n: np.asarray(env[n], dtype=float) for n in scm.nodes}
    cols[LOSS] = scm.metric(env)
    frame = pd.DataFrame(cols)
    if categorical:  # DoWhy models bool columns as categorical (a classifier mechanism)
        for n in scm.binary:
            frame[n] = frame[n] > 0.5
    return frame


def _loss_mechanism(scm: Any):
    from dowhy.gcm.causal_mechanisms import ConditionalStochasticModel

    parents = sorted({*scm.model_inputs, scm.outcome})  # DoWhy orders parents by name

    class DeterministicLoss(ConditionalStochasticModel):
        """The model's loss as an exact function of its parents."""

        def fit(self, X: np.ndarray, Y: np.ndarray) -> None:
            return None

        def draw_samples(self, parent_samples: np.ndarray) -> np.ndarray:
            P = np.asarray(parent_samples, dtype=float).reshape(len(parent_samples), -1)
            values = {p: P[:, j] for j, p in enumerate(parents)}
            return scm.loss(values).reshape(-1, 1)

        def clone(self):
            return DeterministicLoss()

    return DeterministicLoss()


def _shapley_config():
    from dowhy.gcm.shapley import ShapleyApproximationMethods, ShapleyConfig

    return ShapleyConfig(approximation_method=ShapleyApproximationMethods.EXACT, n_jobs=1)


def _robust(scm: Any, source: Environment, target: Environment, learners: str) -> dict:
    from dowhy import gcm
    from dowhy.gcm.ml.classification import (
        create_hist_gradient_boost_classifier,
        create_logistic_regression_classifier,
    )
    from dowhy.gcm.ml.regression import (
        create_hist_gradient_boost_regressor,
        create_linear_regressor,
    )

    if learners == "gb":
        regressor, classifier = (
            create_hist_gradient_boost_regressor,
            create_hist_gradient_boost_classifier,
        )
    else:
        regressor, classifier = create_linear_regressor, create_logistic_regression_classifier
    model = gcm.ProbabilisticCausalModel(_graph(scm))
    return gcm.distribution_change_robust(
        model,
        _frame(scm, source, False),
        _frame(scm, target, False),
        LOSS,
        method="MR",
        regressor=regressor,
        classifier=classifier,
        xfit_folds=5,
        shapley_config=_shapley_config(),
    )


def _graphs(scm: Any, source: Environment, target: Environment, num_samples: int) -> dict:
    from dowhy import gcm

    fitted = []
    for env in (source, target):
        frame = _frame(scm, env, True)
        model = gcm.ProbabilisticCausalModel(_graph(scm))
        model.set_causal_mechanism(LOSS, _loss_mechanism(scm))
        gcm.auto.assign_causal_mechanisms(model, frame)
        gcm.fit(model, frame)
        fitted.append(model)
    return gcm.distribution_change_of_graphs(
        fitted[0],
        fitted[1],
        LOSS,
        num_samples=num_samples,
        difference_estimation_func=lambda old, new: float(np.mean(new) - np.mean(old)),
        shapley_config=_shapley_config(),
    )


def dowhy_attribute(
    method: str,
    scm: Any,
    source: Environment,
    target: Environment,
    seed: int,
    num_samples: int = 20_000,
) -> dict[str, Any]:
    """Run one DoWhy variant; values in shiftattr's sign convention.

    Parameters
    ----------
    method : {"dowhy_mr_gb", "dowhy_mr_default", "dowhy_graphs"}
    scm : benchmark SCM (see :mod:`benchmarks.scms`)
    source, target : Environment
    seed : int
        Seeds DoWhy's global numpy random state (its sampling and permutations).
    num_samples : int, default 20000
        Simulated cases per coalition for ``dowhy_graphs`` (DoWhy's default is 2000;
        raised to cut the Monte-Carlo noise of the set function).

    Returns
    -------
    dict
        ``{"values": {mechanism: value}, "loss_node": value}``.
    """
    from dowhy.gcm import config

    config.disable_progress_bars()
    np.random.seed(seed)  # noqa: NPY002 (DoWhy samples from the global state)
    if method == "dowhy_mr_gb":
        raw = _robust(scm, source, target, "gb")
    elif method == "dowhy_mr_default":
        raw = _robust(scm, source, target, "default")
    elif method == "dowhy_graphs":
        raw = _graphs(scm, source, target, num_samples)
    else:
        raise ValueError(f"unknown DoWhy method {method!r}; choose from {METHODS}")
    values = {m: -float(raw.get(m, 0.0)) for m in scm.mechanisms}
    return {"values": values, "loss_node": -float(raw.get(LOSS, 0.0))}
