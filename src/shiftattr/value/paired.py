"""Paired counterfactual substitution: observed target values of a mechanism need no weights.

When every source case also carries the value a node would take under the target's
mechanism (every scan read by every annotator, a travelling subject scanned at both
sites), the counterfactual of that mechanism is observed: swap the value in and
re-score the case. Substitution composes with the other estimators in one game:
for ``I = {acquisition, annotation}`` the acquisition is reweighted (or regressed) and
the annotation substituted.

Only sink nodes (no children in the graph) can be substituted: a child would have to
be regenerated from the new value, which nothing observed tells us.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import combinations

import numpy as np

from shiftattr.environment import Environment
from shiftattr.graph import CausalGraph

__all__ = ["check_paired", "paired_keys", "paired_metrics"]

#: ``paired`` as given to :func:`shiftattr.attribute`: node names (counterfactuals keyed
#: by the other environment's name), or ``{node: key}`` / ``{node: (key_in_source,
#: key_in_target)}`` naming the counterfactual entries explicitly.
PairedSpec = Sequence[str] | Mapping[str, str | tuple[str, str]]


def paired_keys(
    paired: PairedSpec | None, source: Environment, target: Environment
) -> dict[str, tuple[str, str]]:
    """Resolve where each paired node's counterfactual values are stored.

    Parameters
    ----------
    paired : sequence of str or mapping, optional
        Node names, or ``{node: key}`` (the key under which the *source* holds the
        target's values), or ``{node: (key_in_source, key_in_target)}`` where the
        second key holds the source's values for the target cases.
    source, target : Environment

    Returns
    -------
    dict
        ``node -> (key in source.counterfactuals, key in target.counterfactuals)``;
        by default the other environment's name.

    Examples
    --------
    >>> s, t = Environment({"Y": np.zeros(1)}, name="a"), Environment({"Y": np.zeros(1)}, name="b")
    >>> paired_keys(["Y"], s, t)
    {'Y': ('b', 'a')}
    >>> paired_keys({"Y": "annotator-4"}, s, t)
    {'Y': ('annotator-4', 'a')}
    """
    if not paired:
        return {}
    if isinstance(paired, str):
        paired = [paired]
    if not isinstance(paired, Mapping):
        return {n: (target.name, source.name) for n in paired}
    out = {}
    for node, key in paired.items():
        out[node] = (key, source.name) if isinstance(key, str) else tuple(key)
    return out


def check_paired(
    graph: CausalGraph,
    paired: Sequence[str],
    mechanisms: Sequence[str],
    source: Environment,
    target: Environment,
    metric: object,
) -> tuple[str, ...]:
    """Validate the mechanisms declared paired.

    Parameters
    ----------
    graph : CausalGraph
    paired : sequence of str or mapping
        See :func:`paired_keys`.
    mechanisms : sequence of str
    source, target : Environment
    metric : object
        Must be a callable ``Environment -> array`` (cases are re-scored).

    Returns
    -------
    tuple of str
        The paired nodes, in the order of ``mechanisms``.

    Raises
    ------
    ValueError
        A paired node is not a mechanism or has children, or the metric is an array.
    KeyError
        The source lacks a paired node's counterfactual values (the message lists the
        keys it holds).

    Examples
    --------
    >>> g = CausalGraph({"X": [], "Y": ["X"]})
    >>> s = Environment({"X": np.zeros(2), "Y": np.zeros(2)}, name="s",
    ...                 counterfactuals={"t": {"Y": np.ones(2)}})
    >>> t = Environment({"X": np.zeros(2), "Y": np.ones(2)}, name="t")
    >>> check_paired(g, ["Y"], ["X", "Y"], s, t, lambda env: env["Y"])
    ('Y',)
    """
    keys = paired_keys(paired, source, target)
    paired = list(keys)
    if not paired:
        return ()
    if not callable(metric):
        raise ValueError(
            "paired substitution re-scores the source cases with the target's values of "
            f"{paired}, so metric must be a callable Environment -> array (e.g. "
            "SegmentationAdapter(...).score), not precomputed values."
        )
    for node in paired:
        if node not in mechanisms:
            raise ValueError(
                f"paired node {node!r} is not among the mechanisms {list(mechanisms)}."
            )
        children = [c for c in graph.nodes if node in graph.parents(c)]
        if children:
            raise ValueError(
                f"paired node {node!r} has children {children}: substituting its value "
                "would require regenerating them. Only sink nodes (e.g. the annotation Y) "
                "can be substituted; estimate this mechanism with weights instead."
            )
        source.counterfactual(keys[node][0], node)  # raises a KeyError naming what exists
    return tuple(m for m in mechanisms if m in paired)


def _subsets(nodes: Sequence[str]):
    for r in range(len(nodes) + 1):
        yield from (frozenset(c) for c in combinations(nodes, r))


def paired_metrics(
    metric: Callable[[Environment], np.ndarray],
    source: Environment,
    target: Environment,
    paired: Sequence[str],
    metric_source: np.ndarray,
    metric_target: np.ndarray | None,
    check: Callable[[object, Environment, str], np.ndarray],
    keys: Mapping[str, tuple[str, str]] | None = None,
) -> tuple[dict[frozenset, np.ndarray], dict[frozenset, np.ndarray]]:
    """Re-score the cases with every subset of the paired nodes swapped.

    Parameters
    ----------
    metric : callable
        ``Environment -> array`` per-case metric.
    source, target : Environment
    paired : sequence of str
    metric_source : ndarray
        The metric of the unchanged source cases.
    metric_target : ndarray or None
        The metric of the unchanged target cases.
    check : callable
        Validator ``(values, env, what) -> ndarray`` (:func:`shiftattr.attribution.check_metric`).
    keys : mapping, optional
        From :func:`paired_keys`; default the other environment's name.

    Returns
    -------
    (dict, dict)
        ``S -> metric`` at the source cases with the nodes in ``S`` taken from the
        target's counterfactual values, and at the target cases with the nodes in
        ``S`` taken from the source's (only for subsets whose values the target holds).

    Examples
    --------
    >>> s = Environment({"Y": np.zeros(2)}, name="s", counterfactuals={"t": {"Y": np.ones(2)}})
    >>> t = Environment({"Y": np.ones(2)}, name="t")
    >>> from shiftattr.attribution import check_metric
    >>> ps, pt = paired_metrics(lambda e: e["Y"] + 0.5, s, t, ["Y"], np.full(2, 0.5),
    ...                         np.full(2, 1.5), check_metric)
    >>> ps[frozenset({"Y"})].tolist(), sorted(map(sorted, pt))
    ([1.5, 1.5], [[]])
    """
    keys = dict(keys or paired_keys(list(paired), source, target))
    out_s: dict[frozenset, np.ndarray] = {frozenset(): metric_source}
    out_t: dict[frozenset, np.ndarray] = {}
    if metric_target is not None:
        out_t[frozenset()] = metric_target
    for S in _subsets(paired):
        if not S:
            continue
        swapped = source.with_nodes(**{n: source.counterfactual(keys[n][0], n) for n in S})
        out_s[S] = check(metric, swapped, f"metric with {sorted(S)} from {target.name!r}")
        try:
            values = {n: target.counterfactual(keys[n][1], n) for n in S}
        except KeyError:
            continue
        out_t[S] = check(
            metric, target.with_nodes(**values), f"metric with {sorted(S)} from {source.name!r}"
        )
    return out_s, out_t
