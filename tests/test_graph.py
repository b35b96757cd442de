import networkx as nx
import pytest

from shiftattr import CausalGraph, GraphError


def test_parents_mechanisms_and_order():
    g = CausalGraph({"Y": ["X"], "X": ["D"], "D": []})
    assert g.parents("Y") == ("X",)
    assert g.parents("D") == ()
    assert g.topological_order() == ("D", "X", "Y")
    assert g.mechanisms == ("D", "X", "Y")
    assert set(g.nodes) == {"D", "X", "Y"}
    assert "X" in g and "Q" not in g
    assert len(g) == 3


def test_from_edges_matches_mapping():
    g = CausalGraph.from_edges([("D", "X"), ("X", "Y"), ("D", "Y")], nodes=["A"])
    assert g == CausalGraph({"A": [], "D": [], "X": ["D"], "Y": ["X", "D"]})
    assert g.parents("Y") == ("X", "D")


def test_to_networkx_is_a_copy():
    g = CausalGraph({"D": [], "X": ["D"]})
    nxg = g.to_networkx()
    nxg.add_edge("X", "D")
    assert nx.is_directed_acyclic_graph(g.to_networkx())
    assert g.parents("D") == ()


def test_repr_roundtrip():
    g = CausalGraph({"D": [], "X": ["D"]})
    assert repr(g) == "CausalGraph({'D': [], 'X': ['D']})"
    assert eval(repr(g), {"CausalGraph": CausalGraph}) == g


def test_cycle_is_printed():
    with pytest.raises(GraphError, match=r"cycle: .*A -> B -> C -> A|cycle: .*B -> C -> A -> B"):
        CausalGraph({"A": ["C"], "B": ["A"], "C": ["B"]})


@pytest.mark.parametrize(
    ("parents", "pattern"),
    [
        ({"A": ["A"]}, "self-loop"),
        ({"A": ["Q"]}, r"\['Q'\].*not nodes"),
        ({"A": [], 3: []}, "non-empty string"),
        ({"A": [], "": []}, "non-empty string"),
        ({"A": [], "B": ["A", "A"]}, "more than once"),
        ({"A": [], "B": "A"}, "list of names"),
        ({"A": None}, r"got None; write \[\] for a root"),  # was a bare TypeError
        ({"A": [], "B": 3}, "list of names, got 3"),
        ({}, "at least one node"),
    ],
)
def test_bad_graphs_name_the_problem(parents, pattern):
    with pytest.raises(GraphError, match=pattern):
        CausalGraph(parents)


def test_from_edges_errors():
    with pytest.raises(GraphError, match="duplicate node"):
        CausalGraph.from_edges([], nodes=["A", "A"])
    with pytest.raises(GraphError, match="duplicate edge"):
        CausalGraph.from_edges([("A", "B"), ("A", "B")])
    with pytest.raises(GraphError, match="cycle"):
        CausalGraph.from_edges([("A", "B"), ("B", "A")])


def test_unknown_parent_lookup():
    g = CausalGraph({"A": []})
    with pytest.raises(GraphError, match="not a node"):
        g.parents("B")


def test_from_edges_refuses_strings_for_collections():
    with pytest.raises(GraphError, match="not strings"):
        CausalGraph.from_edges([("X", "Y")], nodes="ZW")
    with pytest.raises(GraphError, match="parent, child"):
        CausalGraph.from_edges(["XY"])
