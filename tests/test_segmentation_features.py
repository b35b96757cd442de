"""Output features: mask_features by hand and SegmentationAdapter.output_features on the cache."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from shiftattr.environment import Environment  # noqa: E402
from shiftattr.segmentation import (  # noqa: E402
    MASK_FEATURE_NAMES,
    SegmentationAdapter,
    mask_features,
)

SHAPE = (8, 8, 8)
NAMES = list(MASK_FEATURE_NAMES)


def col(name: str) -> int:
    return NAMES.index(name)


class CountingThreshold(torch.nn.Module):
    """logit = 10 x - 5 (mask exactly x > 0.5); counts its forward calls."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 1, 1)
        with torch.no_grad():
            self.conv.weight.fill_(10.0)
            self.conv.bias.fill_(-5.0)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.conv(x)


def blob_environment() -> Environment:
    """Case 0: one 8-voxel cube; case 1: two cubes (8 + 27); case 2: nothing predicted."""
    x = np.zeros((3, 1, *SHAPE), dtype=np.float32)
    x[0, 0, 1:3, 1:3, 1:3] = 1.0
    x[1, 0, 1:3, 1:3, 1:3] = 1.0
    x[1, 0, 4:7, 4:7, 4:7] = 1.0
    x[2, 0] = 0.3  # uniform, below threshold: empty prediction
    y = (x[:, 0] > 0.5).astype(np.uint8)
    y[2, 0, 0, 0] = 1  # keep Dice finite for the empty prediction
    return Environment({"X": x, "Y": y}, name="blobs", case_ids=["one", "two", "empty"])


# ---------------------------------------------------------------- mask_features


def test_names_and_shape():
    assert isinstance(MASK_FEATURE_NAMES, tuple)
    assert all(isinstance(n, str) for n in MASK_FEATURE_NAMES)
    assert len(set(MASK_FEATURE_NAMES)) == len(MASK_FEATURE_NAMES) == 8
    out = mask_features(np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.float32))
    assert out.dtype == np.float64 and out.shape == (len(MASK_FEATURE_NAMES),)


def test_two_blobs_by_hand():
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[1:3, 1:3, 1:3] = 1  # 8 voxels
    mask[4:7, 4:7, 4:7] = 1  # 27 voxels, not face-connected to the first
    proba = np.where(mask == 1, 0.8, 0.1)
    f = mask_features(mask, proba)
    assert np.expm1(f[col("log_n_components")]) == pytest.approx(2.0)
    assert np.expm1(f[col("log_volume")]) == pytest.approx(35.0)
    assert f[col("largest_component_fraction")] == pytest.approx(27 / 35)
    assert f[col("mean_confidence")] == pytest.approx(0.8)
    assert np.expm1(f[col("log_expected_volume")]) == pytest.approx(35 * 0.8 + (512 - 35) * 0.1)
    # 0.8 is uncertain (0.1 < p < 0.9), 0.1 is not (strict inequality)
    assert f[col("uncertain_fraction")] == pytest.approx(35 / 512)

    def h(p: float) -> float:
        return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))

    expected_mean = (35 * h(0.8) + (512 - 35) * h(0.1)) / 512
    assert f[col("mean_entropy")] == pytest.approx(expected_mean)
    # shell = dilation minus erosion: the 2-cube erodes to nothing, the 3-cube to its centre
    dil_small = 8 + 6 * 4  # cube plus one face layer on each of 6 faces
    dil_big = 27 + 6 * 9
    shell_in = 8 + (27 - 1)
    shell_out = (dil_small - 8) + (dil_big - 27)
    expected_boundary = (shell_in * h(0.8) + shell_out * h(0.1)) / (shell_in + shell_out)
    assert f[col("boundary_entropy")] == pytest.approx(expected_boundary)


def test_connectivity_joins_diagonal_neighbours():
    mask = np.zeros((4, 4, 4), dtype=np.uint8)
    mask[0, 0, 0] = mask[1, 1, 1] = 1
    proba = mask.astype(float)
    assert np.expm1(mask_features(mask, proba)[col("log_n_components")]) == pytest.approx(2)
    joined = mask_features(mask, proba, connectivity=3)
    assert np.expm1(joined[col("log_n_components")]) == pytest.approx(1)
    assert joined[col("largest_component_fraction")] == pytest.approx(1.0)


def test_empty_and_full_masks_are_finite():
    empty = mask_features(np.zeros(SHAPE, np.uint8), np.full(SHAPE, 0.3))
    assert np.all(np.isfinite(empty))
    for name in ("log_volume", "mean_confidence", "boundary_entropy", "log_n_components"):
        assert empty[col(name)] == 0.0
    assert empty[col("largest_component_fraction")] == 0.0
    assert empty[col("mean_entropy")] > 0  # uncertainty without a prediction still shows
    full = mask_features(np.ones(SHAPE, np.uint8), np.ones(SHAPE))
    assert np.all(np.isfinite(full))
    assert full[col("boundary_entropy")] == 0.0  # the field-of-view edge is no boundary
    assert full[col("mean_entropy")] == 0.0  # p = 1 exactly: no log(0) trouble
    assert full[col("largest_component_fraction")] == 1.0


def test_spacing_gives_physical_volumes_and_2d_works():
    mask = np.zeros((5, 5), dtype=np.uint8)
    mask[1:3, 1:4] = 1
    proba = mask * 0.75
    voxels = mask_features(mask, proba)
    mm = mask_features(mask, proba, spacing=(0.5, 2.0))  # voxel area 1
    np.testing.assert_allclose(mm, voxels)
    mm = mask_features(mask, proba, spacing=(1.0, 3.0))
    assert np.expm1(mm[col("log_volume")]) == pytest.approx(18.0)
    assert np.expm1(mm[col("log_expected_volume")]) == pytest.approx(6 * 0.75 * 3)


def test_bad_inputs_fail_with_clear_errors():
    m = np.zeros(SHAPE, np.uint8)
    with pytest.raises(ValueError, match="shape"):
        mask_features(m, np.zeros((8, 8)))
    bad = np.zeros(SHAPE)
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        mask_features(m, bad)
    with pytest.raises(ValueError, match="spacing"):
        mask_features(m, np.zeros(SHAPE), spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match="connectivity"):
        mask_features(m, np.zeros(SHAPE), connectivity=4)
    with pytest.raises(ValueError, match="non-empty"):
        mask_features(np.zeros((0,)), np.zeros((0,)))


# ---------------------------------------------------------------- adapter


def test_adapter_features_shape_names_and_values():
    env = blob_environment()
    adapter = SegmentationAdapter(CountingThreshold(), progress=False)
    assert adapter.output_feature_names == MASK_FEATURE_NAMES
    assert SegmentationAdapter.output_feature_names == MASK_FEATURE_NAMES
    feats = adapter.output_features(env)
    assert feats.dtype == np.float64
    assert feats.shape == (3, len(adapter.output_feature_names))
    assert np.all(np.isfinite(feats))
    np.testing.assert_allclose(np.expm1(feats[:, col("log_n_components")]), [1, 2, 0], atol=1e-12)
    np.testing.assert_allclose(np.expm1(feats[:, col("log_volume")]), [8, 35, 0], atol=1e-9)
    # the empty prediction: finite, zero volume, but uncertainty (p = sigmoid(-2)) shows
    assert feats[2, col("mean_confidence")] == 0.0
    assert feats[2, col("mean_entropy")] > 0.5
    # matches mask_features on the adapter's own predictions
    masks, probas = adapter.predict(env), adapter.predict_proba(env)
    for i in range(3):
        np.testing.assert_array_equal(feats[i], mask_features(masks[i], probas[i]))


def test_score_then_features_reuses_the_cache():
    env = blob_environment()
    model = CountingThreshold()
    adapter = SegmentationAdapter(model, batch_size=2, progress=False)
    adapter.score(env)
    calls, model_calls, hits = model.calls, adapter.n_model_calls_, adapter.n_cache_hits_
    assert calls == 2  # 3 cases, batches of 2
    feats = adapter.output_features(env)
    assert model.calls == calls and adapter.n_model_calls_ == model_calls
    assert adapter.n_cache_hits_ == hits + 3
    # and the other way round, on a fresh adapter
    model2 = CountingThreshold()
    adapter2 = SegmentationAdapter(model2, batch_size=2, progress=False)
    again = adapter2.output_features(env)
    adapter2.score(env)
    assert model2.calls == 2 and adapter2.n_cache_hits_ == 3
    np.testing.assert_array_equal(again, feats)


def test_features_without_labels_and_a_named_image_node():
    env = blob_environment()
    unlabelled = Environment({"img": env["X"]}, name="target", case_ids=list(env.case_ids))
    adapter = SegmentationAdapter(CountingThreshold(), progress=False)
    feats = adapter.output_features(unlabelled, image_node="img")
    np.testing.assert_array_equal(feats, adapter.output_features(env))
    with pytest.raises(ValueError, match="no image node 'X'"):
        adapter.output_features(unlabelled)
    with pytest.raises(TypeError, match="Environment"):
        adapter.output_features(env["X"])  # type: ignore[arg-type]


def test_features_are_deterministic_and_parallel_safe():
    env = blob_environment()
    first = SegmentationAdapter(CountingThreshold(), progress=False).output_features(env)
    second = SegmentationAdapter(CountingThreshold(), progress=False, cache=False)
    np.testing.assert_array_equal(second.output_features(env), first)
    np.testing.assert_array_equal(second.output_features(env), first)
    workers = SegmentationAdapter(CountingThreshold(), progress=False, n_jobs=2)
    np.testing.assert_array_equal(workers.output_features(env), first)


def test_spacing_option_scales_volumes():
    env = blob_environment()
    plain = SegmentationAdapter(CountingThreshold(), progress=False).output_features(env)
    scaled = SegmentationAdapter(
        CountingThreshold(), progress=False, spacing=(1.0, 1.0, 2.0)
    ).output_features(env)
    np.testing.assert_allclose(
        np.expm1(scaled[:, col("log_volume")]), 2 * np.expm1(plain[:, col("log_volume")])
    )
    same = [n for n in NAMES if n not in ("log_volume", "log_expected_volume")]
    np.testing.assert_array_equal(
        scaled[:, [col(n) for n in same]], plain[:, [col(n) for n in same]]
    )


def test_multiclass_foreground_is_the_label_of_interest():
    """Softmax over 3 classes: features describe class ``label`` only."""
    conv = torch.nn.Conv3d(1, 3, 1)
    with torch.no_grad():  # x = 0 -> class 0, x = 0.5 -> class 1, x = 1 -> class 2
        conv.weight.copy_(torch.tensor([-10.0, 0.0, 20.0]).view(3, 1, 1, 1, 1))
        conv.bias.copy_(torch.tensor([5.0, 2.0, -15.0]))
    x = np.zeros((1, 1, *SHAPE), dtype=np.float32)
    x[0, 0, :2] = 0.5  # 128 voxels of class 1
    x[0, 0, 6:] = 1.0  # 128 voxels of class 2
    env = Environment({"X": x})
    for label in (1, 2):
        adapter = SegmentationAdapter(conv, label=label, progress=False)
        feats = adapter.output_features(env)
        assert adapter.activation_ == "softmax"
        assert np.expm1(feats[0, col("log_volume")]) == pytest.approx(128)
        assert np.expm1(feats[0, col("log_n_components")]) == pytest.approx(1)
        assert 0.5 < feats[0, col("mean_confidence")] <= 1.0


def test_non_finite_output_names_the_case():
    def model(b: torch.Tensor) -> torch.Tensor:
        out = 10 * b - 5
        out[1, 0, 0, 0, 0] = float("nan")
        return out

    adapter = SegmentationAdapter(model, activation="sigmoid", progress=False)
    with pytest.raises(ValueError, match=r"non-finite.*case\(s\) \['two'\]"):
        adapter.output_features(blob_environment())
    # scoring refuses it too, every time: a NaN voxel counted as background gave a
    # confident Dice, with a warning on the first call only (not on cached cases)
    for _ in range(2):
        with pytest.raises(ValueError, match=r"\['two'\].*preprocess"):
            adapter.score(blob_environment())


# ---------------------------------------------------------------- mask_agreement


def test_mask_agreement_by_hand_and_symmetry():
    from shiftattr.segmentation import AGREEMENT_FEATURE_NAMES, mask_agreement

    assert AGREEMENT_FEATURE_NAMES == (
        "log_volume_ratio",
        "overlap_of_reference",
        "overlap_of_prediction",
    )
    p = np.zeros(SHAPE, dtype=bool)
    p[:2] = True  # 128 voxels
    r = np.zeros(SHAPE, dtype=np.uint8)
    r[1:3] = 1  # 128 voxels, 64 of them inside p
    np.testing.assert_allclose(mask_agreement(p, r), [0.0, 64 / 129, 64 / 129])
    r2 = np.zeros(SHAPE, dtype=np.uint8)
    r2[0] = 1  # 64 voxels, all inside p
    got = mask_agreement(p, r2)
    np.testing.assert_allclose(got, [np.log(65 / 129), 64 / 65, 64 / 129])
    # swapping reference and prediction negates the volume ratio and swaps the overlaps
    np.testing.assert_allclose(mask_agreement(r2, p), [-got[0], got[2], got[1]])
    # empty masks stay finite
    np.testing.assert_array_equal(mask_agreement(np.zeros(SHAPE), np.zeros(SHAPE)), [0, 0, 0])
    with pytest.raises(ValueError, match=r"prediction has shape \(8, 8, 8\) and reference"):
        mask_agreement(p, r[:4])


def test_adapter_agreement_features_use_the_cached_predictions():
    env = blob_environment()
    model = CountingThreshold()
    adapter = SegmentationAdapter(model, batch_size=2, progress=False)
    adapter.score(env)
    calls = model.calls
    feats = adapter.agreement_features(env)
    assert model.calls == calls  # served from the cache of score
    assert feats.shape == (3, 3) and feats.dtype == np.float64
    # cases 0 and 1: the masks are the predictions; case 2: one annotated voxel, none
    # predicted
    np.testing.assert_allclose(feats[0], [0.0, 8 / 9, 8 / 9])
    np.testing.assert_allclose(feats[1], [0.0, 35 / 36, 35 / 36])
    np.testing.assert_allclose(feats[2], [np.log(2.0), 0.0, 0.0])
    with pytest.raises(ValueError, match="has no node 'Y'"):
        adapter.agreement_features(Environment({"X": env["X"]}))
    with pytest.raises(TypeError, match="Environment"):
        adapter.agreement_features(env["X"])  # type: ignore[arg-type]
    bad = Environment({"X": env["X"], "Y": np.zeros((3, 4, 4, 4), dtype=np.uint8)})
    with pytest.raises(ValueError, match="share their spatial grid"):
        adapter.agreement_features(bad)
