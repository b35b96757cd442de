"""node_features: what the nested regressions see of each node."""

import numpy as np
import pytest

from shiftattr.environment import Environment, LazyVolumes
from shiftattr.ratios import image_statistics
from shiftattr.value import node_features, raw_features


def _env():
    rng = np.random.default_rng(0)
    return Environment(
        {
            "age": rng.normal(50, 10, 6),
            "D": rng.normal(size=(6, 3)),
            "X": rng.normal(size=(6, 8, 8, 8)).astype(np.float32),
            "Y": (rng.random((6, 8, 8, 8)) > 0.9).astype(np.uint8),
        },
        name="site-A",
    )


def test_tabular_nodes_are_their_own_features():
    env = _env()
    F = node_features(env, "age")
    assert F.shape == (6, 1) and F.dtype == np.float64
    np.testing.assert_array_equal(F[:, 0], env["age"])
    np.testing.assert_array_equal(node_features(env, "D"), env["D"])


def test_images_and_masks_are_summarised_by_image_statistics():
    env = _env()
    for node in ("X", "Y"):
        F = node_features(env, node)
        expected = image_statistics({node: env[node]}, statistics="basic")
        assert F.shape == expected.shape
        np.testing.assert_allclose(F, expected)
    # images: 12 intensity statistics (mean first, the median fifth); masks: log volume,
    # surface/volume, emptiness (never the 512 raw voxels)
    FX, FY = node_features(env, "X"), node_features(env, "Y")
    assert FX.shape == (6, 12) and FY.shape == (6, 3)
    flat = env["X"].reshape(6, -1).astype(np.float64)
    np.testing.assert_allclose(FX[:, 0], flat.mean(1), rtol=1e-6)
    np.testing.assert_allclose(FX[:, 4], np.median(flat, axis=1), rtol=1e-6)
    np.testing.assert_allclose(np.expm1(FY[:, 0]), env["Y"].reshape(6, -1).sum(1))
    np.testing.assert_array_equal(FY[:, 2], env["Y"].reshape(6, -1).sum(1) == 0)
    # a lazy node (read on access) is summarised too, to the same numbers
    x = env["X"]
    lazy = Environment({"X": LazyVolumes(lambda i: x[i], 6, shape=(8, 8, 8))}, name="lazy")
    np.testing.assert_allclose(node_features(lazy, "X"), node_features(env, "X"), rtol=1e-6)


def test_a_featurizer_replaces_the_default():
    env = _env()
    seen = []

    def featurizer(e):
        seen.append(e.name)
        return np.column_stack([e["X"].mean(axis=(1, 2, 3)), e["Y"].sum(axis=(1, 2, 3))])

    F = node_features(env, "X", {"X": featurizer})
    assert seen == ["site-A"] and F.shape == (6, 2)
    np.testing.assert_allclose(F[:, 1], env["Y"].sum(axis=(1, 2, 3)))
    # other nodes keep their defaults; a 1-D output is one feature per case
    np.testing.assert_array_equal(node_features(env, "age", {"X": featurizer}), env["age"][:, None])
    assert node_features(env, "X", {"X": lambda e: np.arange(6.0)}).shape == (6, 1)


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda e: np.ones((5, 2)), r"node 'X'.*shape \(5, 2\).*6 cases.*'site-A'"),
        (lambda e: np.full((6, 2), np.nan), r"node 'X'.*'site-A'.*NaN or inf"),
        # one value per case and feature, flattened: not silently read as (6, 2)
        (lambda e: np.ones(12), r"node 'X'.*shape \(12,\).*6 cases"),
        (lambda e: np.ones(7), r"node 'X'.*shape \(7,\).*6 cases"),
        (lambda e: 1.0, r"node 'X'.*shape \(\).*6 cases"),
    ],
)
def test_a_bad_featurizer_is_refused_naming_the_node(bad, match):
    with pytest.raises(ValueError, match=match):
        node_features(_env(), "X", {"X": bad})


def test_an_image_regressor_refuses_levels_after_its_raw_image():
    """The regression of Y after D, X, W put W after X's voxels: the network read W as
    the last voxel and the first voxel as a covariate, without a word."""
    from shiftattr.value.features import check_image_regressors

    class Reader:
        image_shape = (4, 4)

    env = Environment({"D": np.zeros(3), "X": np.zeros((3, 4, 4)), "W": np.zeros(3)})
    raw = {"X": raw_features("X")}
    check_image_regressors(Reader(), raw, env, levels=("D", "W", "X", "Y"))  # X last: fine
    with pytest.raises(ValueError, match=r"features of \['W'\] after its voxels"):
        check_image_regressors(Reader(), raw, env, levels=("D", "X", "W", "Y"))
    both = {"X": raw_features("X"), "W": raw_features("W")}
    with pytest.raises(ValueError, match=r"nodes \['X', 'W'\] all have raw features"):
        check_image_regressors(Reader(), both, env, levels=("D", "X", "W", "Y"))
