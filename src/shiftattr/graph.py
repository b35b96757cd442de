"""The causal graph: nodes, their parent sets and the mechanisms ``P(node | parents)``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import networkx as nx

__all__ = ["CausalGraph", "GraphError"]


class GraphError(ValueError):
    """Raised when a causal graph is malformed (cycle, unknown parent, bad name).

    A subclass of :class:`ValueError`; the message names the offending node and says
    how to fix the graph.

    Examples
    --------
    >>> try:
    ...     CausalGraph({"X": ["Y"], "Y": ["X"]})
    ... except GraphError as err:
    ...     print(err)
    the graph has a cycle: X -> Y -> X. A causal graph must be acyclic.
    """


class CausalGraph:
    """A directed acyclic graph of observed variables and their mechanisms.

    Each node ``V_i`` has a *mechanism* ``P(V_i | PA_i)``. Source and target
    environments share the graph; some mechanisms differ between them.

    Parameters
    ----------
    parents : mapping of str to sequence of str
        ``{"node": ["parent", ...]}``. Every node must appear as a key (roots map to an
        empty list); every parent must itself be a node.

    Raises
    ------
    GraphError
        On a cycle (the cycle is printed), a self-loop, a parent that is not a node,
        or a name that is not a non-empty string.

    Examples
    --------
    >>> g = CausalGraph({"D": [], "X": ["D"], "Y": ["X"]})
    >>> g.parents("X")
    ('D',)
    >>> g.topological_order()
    ('D', 'X', 'Y')
    >>> g
    CausalGraph({'D': [], 'X': ['D'], 'Y': ['X']})
    """

    def __init__(self, parents: Mapping[str, Sequence[str]]) -> None:
        if not isinstance(parents, Mapping):
            raise GraphError(
                "CausalGraph expects a mapping {node: [parents...]}, got "
                f"{type(parents).__name__}; use CausalGraph.from_edges() for an edge list."
            )
        if not parents:
            raise GraphError("CausalGraph needs at least one node; got an empty mapping.")
        table: dict[str, tuple[str, ...]] = {}
        for node, pas in parents.items():
            _check_name(node, "node")
            if isinstance(pas, str):
                raise GraphError(
                    f"parents of node {node!r} must be a list of names, got the string {pas!r}; "
                    f"write [{pas!r}]."
                )
            if pas is None or not isinstance(pas, Iterable):
                raise GraphError(
                    f"parents of node {node!r} must be a list of names, got {pas!r}; write "
                    f"[] for a root node."
                )
            pas = tuple(pas)
            for p in pas:
                _check_name(p, f"parent of {node!r}")
            if node in pas:
                raise GraphError(f"node {node!r} lists itself as a parent (self-loop); remove it.")
            if len(set(pas)) != len(pas):
                dup = sorted({p for p in pas if pas.count(p) > 1})
                raise GraphError(f"node {node!r} lists parent(s) {dup} more than once.")
            table[node] = pas
        for node, pas in table.items():
            unknown = [p for p in pas if p not in table]
            if unknown:
                raise GraphError(
                    f"parent(s) {unknown} of node {node!r} are not nodes of the graph; "
                    f"add them as keys (roots map to []). Nodes: {sorted(table)}."
                )
        g = nx.DiGraph()
        g.add_nodes_from(table)
        g.add_edges_from((p, n) for n, pas in table.items() for p in pas)
        if not nx.is_directed_acyclic_graph(g):
            cycle = nx.find_cycle(g)
            path = " -> ".join([e[0] for e in cycle] + [cycle[0][0]])
            raise GraphError(f"the graph has a cycle: {path}. A causal graph must be acyclic.")
        self._parents = table
        self._graph = g
        self._order = tuple(nx.lexicographical_topological_sort(g, key=list(table).index))

    @classmethod
    def from_edges(
        cls, edges: Iterable[tuple[str, str]], nodes: Iterable[str] | None = None
    ) -> CausalGraph:
        """Build a graph from ``(parent, child)`` edges.

        Parameters
        ----------
        edges : iterable of (str, str)
            Directed edges ``parent -> child``.
        nodes : iterable of str, optional
            Extra isolated nodes (nodes with no edge at all).

        Returns
        -------
        CausalGraph

        Examples
        --------
        >>> CausalGraph.from_edges([("S", "X"), ("X", "Y")]).mechanisms
        ('S', 'X', 'Y')
        """
        table: dict[str, list[str]] = {}
        if isinstance(nodes, str) or isinstance(edges, str):  # "ZW" is not nodes Z and W
            raise GraphError(
                "nodes and edges must be collections of names and of (parent, child) pairs, "
                f"not strings: got nodes={nodes!r}, edges={edges!r}; e.g. nodes=['Z']."
            )
        names = list(nodes) if nodes is not None else []
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise GraphError(f"duplicate node name(s) {dup} in `nodes`.")
        for n in names:
            _check_name(n, "node")
            table.setdefault(n, [])
        for edge in edges:
            if isinstance(edge, str) or len(edge) != 2:  # "XY" would read as X -> Y
                raise GraphError(f"an edge must be a (parent, child) pair, got {edge!r}.")
            p, c = edge
            _check_name(p, "edge parent")
            _check_name(c, "edge child")
            table.setdefault(p, [])
            table.setdefault(c, [])
            if p in table[c]:
                raise GraphError(f"duplicate edge {p!r} -> {c!r}.")
            table[c].append(p)
        return cls(table)

    @property
    def nodes(self) -> tuple[str, ...]:
        """All node names, in insertion order.

        Examples
        --------
        >>> CausalGraph({"Y": ["X"], "X": []}).nodes
        ('Y', 'X')
        """
        return tuple(self._parents)

    @property
    def mechanisms(self) -> tuple[str, ...]:
        """Mechanism names (one per node, named after the node), in topological order.

        Examples
        --------
        >>> CausalGraph({"Y": ["X"], "X": []}).mechanisms
        ('X', 'Y')
        """
        return self._order

    def parents(self, node: str) -> tuple[str, ...]:
        """Parents of ``node``.

        Parameters
        ----------
        node : str
            A node of the graph.

        Returns
        -------
        tuple of str
            Its parents, in the order they were given (empty for a root).

        Raises
        ------
        GraphError
            If ``node`` is not a node of the graph.

        Examples
        --------
        >>> g = CausalGraph({"D": [], "X": ["D"], "Y": ["D", "X"]})
        >>> g.parents("Y")
        ('D', 'X')
        >>> g.parents("D")
        ()
        """
        try:
            return self._parents[node]
        except KeyError:
            raise GraphError(
                f"{node!r} is not a node of the graph; nodes are {list(self._parents)}."
            ) from None

    def topological_order(self) -> tuple[str, ...]:
        """Nodes in a topological order (ties broken by insertion order).

        Returns
        -------
        tuple of str
            Every node after all of its parents.

        Examples
        --------
        >>> CausalGraph({"Y": ["X"], "X": ["D"], "D": []}).topological_order()
        ('D', 'X', 'Y')
        """
        return self._order

    def to_networkx(self) -> nx.DiGraph:
        """A fresh :class:`networkx.DiGraph` copy (mutating it never changes this graph).

        Returns
        -------
        networkx.DiGraph
            Edges point from parent to child.

        Examples
        --------
        >>> g = CausalGraph({"D": [], "X": ["D"]}).to_networkx()
        >>> sorted(g.edges)
        [('D', 'X')]
        """
        return self._graph.copy()

    def to_dict(self) -> dict[str, list[str]]:
        """The ``{node: [parents]}`` mapping (a copy).

        Returns
        -------
        dict of str to list of str
            Accepted by :class:`CausalGraph` to rebuild an equal graph.

        Examples
        --------
        >>> g = CausalGraph({"D": [], "X": ["D"]})
        >>> g.to_dict()
        {'D': [], 'X': ['D']}
        >>> CausalGraph(g.to_dict()) == g
        True
        """
        return {n: list(p) for n, p in self._parents.items()}

    def __contains__(self, node: object) -> bool:
        return node in self._parents

    def __len__(self) -> int:
        return len(self._parents)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CausalGraph):
            return NotImplemented
        return {n: set(p) for n, p in self._parents.items()} == {
            n: set(p) for n, p in other._parents.items()
        }

    def __hash__(self) -> int:
        return hash(tuple(sorted((n, tuple(sorted(p))) for n, p in self._parents.items())))

    def __repr__(self) -> str:
        return f"CausalGraph({self.to_dict()!r})"


def _check_name(name: object, what: str) -> None:
    if not isinstance(name, str) or not name:
        raise GraphError(f"{what} name must be a non-empty string, got {name!r}.")
