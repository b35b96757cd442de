import numpy as np
import pytest

from shiftattr import Environment, LazyVolumes


def test_basic_access_and_subset():
    env = Environment({"D": np.arange(5.0), "X": np.ones((5, 2, 2))}, name="s")
    assert len(env) == 5
    assert env.nodes == ("D", "X")
    assert env.item_shape("X") == (2, 2)
    sub = env.subset([4, 0])
    np.testing.assert_array_equal(sub["D"], [4.0, 0.0])
    assert sub.case_ids == ("s:4", "s:0")
    feats = env.features(["D"], [1, 2])
    np.testing.assert_array_equal(feats["D"], [1.0, 2.0])


def test_bootstrap_subset_keeps_ids_unique():
    env = Environment({"D": np.arange(3.0)}, name="s")
    sub = env.subset([1, 1, 2])
    assert len(set(sub.case_ids)) == 3
    np.testing.assert_array_equal(sub["D"], [1.0, 1.0, 2.0])


def test_length_mismatch_names_nodes():
    with pytest.raises(ValueError, match=r"'D': 3, 'X': 4"):
        Environment({"D": np.zeros(3), "X": np.zeros(4)}, name="bad")


def test_case_ids_validated():
    with pytest.raises(ValueError, match="not unique"):
        Environment({"D": np.zeros(2)}, case_ids=["a", "a"])
    with pytest.raises(ValueError, match="2 case_ids for 3"):
        Environment({"D": np.zeros(3)}, case_ids=["a", "b"])


def test_scalar_and_missing_node_errors():
    with pytest.raises(ValueError, match="scalar"):
        Environment({"D": 3.0})
    env = Environment({"D": np.zeros(2)}, name="e")
    with pytest.raises(KeyError, match="'Q' is not in environment 'e'"):
        env["Q"]
    with pytest.raises(KeyError, match="Q"):
        env.features(["Q"])


def test_pandas_columns_and_frame():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]})
    env = Environment.from_frame(df, name="df")
    assert env.nodes == ("a", "b")
    np.testing.assert_array_equal(env["b"], [3, 4])
    env2 = Environment({"a": df["a"]})
    assert isinstance(env2["a"], np.ndarray)


def test_frame_with_a_repeated_column_name_is_refused():
    # frame["X"] of a repeated name is two columns: the node silently became 2-D and the
    # second column's values were merged into it; 1 and "1" also become one node name
    pd = pytest.importorskip("pandas")
    twice = pd.DataFrame([[1.0, 2.0, 3.0]] * 2, columns=["X", "X", "Y"])
    with pytest.raises(ValueError, match=r"more than one column named \['X'\]"):
        Environment.from_frame(twice)
    with pytest.raises(ValueError, match=r"\['1'\]"):
        Environment.from_frame(pd.DataFrame([[1.0, 2.0]], columns=[1, "1"]))
    ok = Environment.from_frame(pd.DataFrame([[1.0, 2.0]], columns=[1, 2]))
    assert ok.nodes == ("1", "2") and ok["2"].tolist() == [2.0]


def test_lazy_volumes_load_only_what_is_asked():
    calls = []

    def loader(i):
        calls.append(i)
        return np.full((2, 2, 2), float(i))

    vols = LazyVolumes(loader, 6, shape=(2, 2, 2))
    env = Environment({"X": vols, "D": np.arange(6.0)}, name="lazy")
    assert env.is_lazy("X") and not env.is_lazy("D")
    assert calls == []
    sub = env.subset([5, 1])
    assert calls == []
    stack = sub["X"].load()
    assert calls == [5, 1]
    assert stack.shape == (2, 2, 2, 2) and stack[0, 0, 0, 0] == 5.0


def test_list_of_volumes_becomes_lazy():
    env = Environment({"X": [np.zeros((3, 3)), np.ones((3, 3))]})
    assert env.is_lazy("X")
    assert env["X"][1].sum() == 9


def test_counterfactuals_follow_subsets():
    env = Environment(
        {"Y": np.array([0, 1, 0])},
        name="a1",
        counterfactuals={"annotator-4": {"Y": np.array([1, 1, 1])}},
    )
    np.testing.assert_array_equal(env.subset([2]).counterfactual("annotator-4", "Y"), [1])
    with pytest.raises(KeyError, match="no paired value"):
        env.counterfactual("annotator-2", "Y")
    with pytest.raises(ValueError, match="unknown node"):
        Environment({"Y": np.zeros(2)}, counterfactuals={"e": {"Q": np.zeros(2)}})


def test_range_and_array_of_numbers_are_columns_not_lazy_images():
    # any Sequence but a list or tuple was taken for lazy volumes: a range or an
    # array.array of numbers became a node of 0-d "images" that every estimator refused
    import array
    from collections import UserList, deque

    env = Environment({"D": range(4), "X": array.array("d", [0.5, 1.5, 2.5, 3.5])})
    for numbers in (deque([1.0, 2.0, 3.0, 4.0]), UserList([[1.0, 2.0]] * 4)):
        assert isinstance(Environment({"D": numbers})["D"], np.ndarray)
    volumes = UserList([np.zeros((3, 3))] * 4)  # any sequence of volumes stays lazy
    assert isinstance(Environment({"X": volumes})["X"], LazyVolumes)
    assert isinstance(env["D"], np.ndarray) and env["D"].tolist() == [0, 1, 2, 3]
    assert isinstance(env["X"], np.ndarray) and env["X"].shape == (4,)
    feats = env.features(["D", "X"])
    assert feats["D"].shape == (4,) and feats["X"].dtype == np.float64


def test_counterfactual_cases_must_have_the_nodes_shape():
    # a (n, 1) second reading against a (n,) node broadcast to (n, n) in an error metric
    with pytest.raises(ValueError, match=r"shape \(1,\), the node's are \(\)"):
        Environment({"Y": np.zeros(3)}, counterfactuals={"e": {"Y": np.zeros((3, 1))}})
    with pytest.raises(ValueError, match="reshape"):
        Environment({"Y": np.zeros((2, 4, 4))}, counterfactuals={"e": {"Y": np.zeros((2, 8, 8))}})
    lazy = LazyVolumes(lambda i: np.zeros((4, 4)), 2)  # shape unknown until read: allowed
    env = Environment({"Y": lazy}, counterfactuals={"e": {"Y": np.zeros((2, 4, 4))}})
    assert env.counterfactual("e", "Y").shape == (2, 4, 4)


def test_per_case_metadata_follows_subsets():
    env = Environment(
        {"D": np.arange(3.0)},
        metadata={"center": np.array(["01", "03", "07"]), "site": "x", "rater": [1, 2, 3]},
    )
    sub = env.subset([2, 0])
    assert list(sub.metadata["center"]) == ["07", "01"]
    assert sub.metadata["rater"] == [3, 1]
    assert sub.metadata["site"] == "x"


def test_features_carry_the_cases_metadata_and_ids():
    env = Environment(
        {"X": np.arange(3.0)},
        name="s",
        metadata={"spacing": np.array([[1.0], [2.0], [3.0]]), "site": "x"},
    )
    whole = env.features(["X"])
    assert whole.case_ids == env.case_ids and whole.metadata["site"] == "x"
    some = env.features(["X"], indices=[2, 0, 2])
    assert some.cache is None  # a selection does not share the environment's cache
    view = some.environment()
    assert view["X"].tolist() == [2.0, 0.0, 2.0]
    assert view.metadata["spacing"].ravel().tolist() == [3.0, 1.0, 3.0]
    assert view.metadata["site"] == "x"
    assert view.case_ids == ("s:2#0", "s:0#1", "s:2#2")  # as subset names repeats


def test_per_case_entries_of_a_dict_metadata_entry_follow_subsets():
    params = {"noise": np.array([0.1, 0.2, 0.3]), "hits": [[1], [], [2, 3]]}
    env = Environment({"D": np.arange(3.0)}, metadata={"params": params, "pair": (1, 2)})
    sub = env.subset([2, 2, 0])
    assert sub.metadata["params"]["noise"].tolist() == [0.3, 0.3, 0.1]
    assert sub.metadata["params"]["hits"] == [[2, 3], [2, 3], [1]]
    assert sub.metadata["pair"] == (1, 2)
    assert env.metadata["params"]["noise"].tolist() == [0.1, 0.2, 0.3]  # original untouched


def test_a_dict_metadata_entry_follows_subsets_only_if_every_entry_is_per_case():
    meta = {
        "specs": {"center": ["01", "07"], "annotator": "1"},  # 2 items, but not per case
        "nested": {"a": {"v": np.array([1.0, 2.0])}, "b": [3, 4]},  # per case throughout
    }
    sub = Environment({"D": np.zeros(2)}, metadata=meta).subset([1, 1])
    assert sub.metadata["specs"] == {"center": ["01", "07"], "annotator": "1"}
    assert sub.metadata["nested"]["a"]["v"].tolist() == [2.0, 2.0]
    assert sub.metadata["nested"]["b"] == [4, 4]


def test_per_case_summaries_are_computed_once_and_follow_subsets():
    from shiftattr.environment import NodeFeatures, cached_per_case

    env = Environment({"X": np.arange(12.0).reshape(4, 3), "D": np.zeros(4)}, name="s")
    calls = []

    def sums(features):
        def compute():
            calls.append(1)
            return features["X"].sum(axis=1)

        return compute

    feats = env.features(["X"])
    assert isinstance(feats, NodeFeatures) and feats == {"X": env["X"]}
    first = cached_per_case(feats, "sum", sums(feats))
    assert first.tolist() == [3.0, 12.0, 21.0, 30.0] and not first.flags.writeable
    again = env.features(["X"])
    assert cached_per_case(again, "sum", sums(again)) is first and len(calls) == 1
    boot = env.subset([3, 3, 1])  # bootstrap repeats take the stored rows
    got = cached_per_case(boot.features(["X"]), "sum", sums(boot.features(["X"])))
    assert got.tolist() == [30.0, 30.0, 12.0] and len(calls) == 1
    with pytest.raises(ValueError, match="read-only"):
        got[0] = 0.0
    # a different key, a subset of rows by index, a plain dict: computed, not taken
    cached_per_case(feats, "other", sums(feats))
    rows = env.features(["X"], indices=[0, 1])
    assert cached_per_case(rows, "sum", sums(rows)).tolist() == [3.0, 12.0]
    assert len(calls) == 3
    # replacing nodes drops the summaries: they may depend on the replaced values
    changed = env.with_nodes(X=np.ones((4, 3)))
    cf = changed.features(["X"])
    assert cached_per_case(cf, "sum", sums(cf)).tolist() == [3.0] * 4 and len(calls) == 4
    with pytest.raises(ValueError, match="one row per case"):
        cached_per_case(env.features(["X"]), "bad", lambda: np.zeros(3))


def test_ragged_lazy_volumes_keep_every_shape_and_a_list_is_not_declared_on_its_first_grid():
    # a list of arrays on two grids was declared to have the first one's shape, so a
    # consumer read it as one grid and failed inside numpy
    vols = [np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((3, 4))]
    env = Environment({"X": vols, "D": np.zeros(3)})
    assert env.item_shape("X") is None
    assert env["X"].item_shapes == [(4, 4), (4, 4), (3, 4)]
    assert env.subset([2, 0])["X"].item_shapes == [(3, 4), (4, 4)]
    same = Environment({"X": [np.zeros((4, 4))] * 3})
    assert same.item_shape("X") == (4, 4) and same["X"].item_shapes == [(4, 4)] * 3
    assert LazyVolumes(np.zeros, length=2).item_shapes is None
    with pytest.raises(ValueError, match="item_shapes has 1 entries for 2 items"):
        LazyVolumes(np.zeros, length=2, item_shapes=[(2, 2)])


def test_lazy_volumes_pickled_before_item_shapes_still_slice():
    vols = LazyVolumes(lambda i: np.full((2, 2), i), length=3, shape=(2, 2))
    del vols.__dict__["_shapes"]  # as unpickled from an older version
    assert vols[[2, 0]].item_shapes == [(2, 2), (2, 2)]


def test_repr_says_when_lazy_cases_lie_on_several_grids():
    # a ragged node printed as "X(lazy)()", the way a scalar node prints
    env = Environment({"X": [np.zeros((4, 4)), np.zeros((3, 4))], "D": np.zeros(2)}, name="s")
    assert repr(env) == "Environment('s', n=2, nodes=[X(lazy, 2 grids), D()])"
    unknown = Environment({"X": LazyVolumes(np.zeros, length=2)}, name="u")
    assert repr(unknown) == "Environment('u', n=2, nodes=[X(lazy, shape unknown)])"


def test_a_boolean_mask_selects_cases():
    """``np.asarray(mask, dtype=int)`` read a mask as the positions 0 and 1: the
    numpy idiom ``env.subset(env.metadata["center"] == "01")`` took four cases."""
    env = Environment(
        {"D": np.arange(4.0)}, name="s", metadata={"center": np.array(["01", "03", "01", "07"])}
    )
    sub = env.subset(env.metadata["center"] == "01")
    assert sub["D"].tolist() == [0.0, 2.0] and sub.case_ids == ("s:0", "s:2")
    assert sub.metadata["center"].tolist() == ["01", "01"]
    assert env.features(["D"], indices=env["D"] > 2)["D"].tolist() == [3.0]
    with pytest.raises(ValueError, match="one entry per case"):
        env.subset([True, False])
    with pytest.raises(TypeError, match="integers or a boolean mask"):
        env.subset([0.0, 1.5])
    vols = LazyVolumes(lambda i: np.full((2,), i), length=3)
    assert vols.load(np.array([False, True, True]))[:, 0].tolist() == [1, 2]


def test_lazy_volumes_refuse_a_mask_of_another_length():
    vols = LazyVolumes(lambda i: np.full((2,), i), length=4)
    with pytest.raises(ValueError, match="one entry per item"):
        vols.load(np.array([False, True]))
