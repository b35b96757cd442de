"""Tests for shiftattr.metrics: overlap, lesion-wise detection, surface distance, policies."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from shiftattr.metrics import (
    METRICS,
    EmptyPolicy,
    LesionCounts,
    as_binary_masks,
    available_metrics,
    check_finite_metric,
    dice,
    get_metric,
    hausdorff95,
    lesion_counts,
    lesion_f1,
    lesion_ppv,
    lesion_sensitivity,
    resolve_empty_policy,
    resolve_layout,
    volume_difference,
)
from shiftattr.metrics.overlap import overlap_counts


def blobs(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    n: int = 1,
    sigma: float = 1.5,
    frac: float = 0.05,
) -> np.ndarray:
    """Lesion-like random masks: thresholded smoothed noise, shape (n, *shape)."""
    out = np.empty((n, *shape), dtype=bool)
    for k in range(n):
        field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
        out[k] = field > np.quantile(field, 1 - frac)
    return out


# --------------------------------------------------------------------------- registry


def test_registry_names_and_lookup():
    assert available_metrics() == sorted(
        [
            "dice",
            "lesion_f1",
            "lesion_sensitivity",
            "lesion_ppv",
            "volume_difference",
            "hausdorff95",
        ]
    )
    assert get_metric("dice") is dice
    assert get_metric("Lesion-F1") is lesion_f1
    assert set(METRICS) == set(available_metrics())
    with pytest.raises(ValueError, match="available metrics: dice, hausdorff95"):
        get_metric("iou")
    with pytest.raises(TypeError):
        METRICS["iou"] = dice  # read-only mapping


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_metric_follows_the_contract(name):
    rng = np.random.default_rng(0)
    fn = get_metric(name)
    batch = blobs(rng, (16, 16, 16), n=3, frac=0.08)
    ref = blobs(rng, (16, 16, 16), n=3, frac=0.08)
    values = fn(batch, ref, spacing=(1.0, 1.0, 2.0), empty="nan")
    assert isinstance(values, np.ndarray) and values.shape == (3,) and values.dtype == np.float64
    single = fn(batch[1], ref[1], spacing=(1.0, 1.0, 2.0), empty="nan")
    assert isinstance(single, float)
    assert single == pytest.approx(values[1], nan_ok=True)
    # batch of 2D cases needs batch=True
    v2d = fn(batch[:, 0], ref[:, 0], batch=True, empty=0.0)
    assert v2d.shape == (3,)


# --------------------------------------------------------------------------- input handling


def test_layout_rules():
    assert resolve_layout(2) == (False, 2)
    assert resolve_layout(3) == (False, 3)
    assert resolve_layout(3, batch=True) == (True, 2)
    assert resolve_layout(4) == (True, 3)
    assert resolve_layout(3, batch=False) == (False, 3)
    with pytest.raises(ValueError, match="channel axis"):
        resolve_layout(5)
    with pytest.raises(ValueError, match="batch=False"):
        resolve_layout(4, batch=False)
    with pytest.raises(ValueError):
        resolve_layout(2, batch=True)
    with pytest.raises(ValueError):
        resolve_layout(1)


def test_non_binary_input_error_counts_voxels():
    ref = np.zeros((6, 6))
    pred = np.zeros((6, 6))
    pred[0, :3] = 0.5
    with pytest.raises(ValueError, match=r"pred is not a binary mask: 3 of 36 voxels"):
        dice(pred, ref)
    pred[0, :3] = np.nan
    with pytest.raises(ValueError, match="3 of 36"):
        dice(ref, pred)  # names ref this time
    with pytest.raises(TypeError, match="dtype"):
        dice(np.array([["a", "b"], ["c", "d"]]), np.zeros((2, 2)))


def test_integer_and_float_binary_input_accepted():
    ref = np.array([[1, 1], [0, 0]], dtype=np.uint8)
    pred = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert dice(pred, ref) == pytest.approx(2 / 3)


def test_shape_mismatch_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"pred \(4, 4, 4\) and ref \(4, 4, 5\)"):
        dice(np.zeros((4, 4, 4)), np.zeros((4, 4, 5)))


def test_spacing_validation():
    m = np.ones((4, 4, 4), dtype=bool)
    with pytest.raises(ValueError, match="positive"):
        hausdorff95(m, m, spacing=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="one per spatial axis"):
        lesion_f1(m, m, spacing=(1.0, 1.0))


def test_bool_numpy_input_is_not_copied():
    p = np.zeros((2, 8, 8, 8), dtype=bool)
    bp, _, is_batch = as_binary_masks(p, p)
    assert is_batch and np.shares_memory(bp, p)


def test_torch_tensor_input():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    p = blobs(rng, (12, 12, 12), n=2, frac=0.1)
    r = blobs(rng, (12, 12, 12), n=2, frac=0.1)
    for name, fn in METRICS.items():
        expected = fn(p, r, empty=0.0)
        got_bool = fn(torch.from_numpy(p), torch.from_numpy(r), empty=0.0)
        got_float = fn(
            torch.from_numpy(p).float().requires_grad_(True),
            torch.from_numpy(r).to(torch.int64),
            empty=0.0,
        )
        np.testing.assert_allclose(got_bool, expected, err_msg=name)
        np.testing.assert_allclose(got_float, expected, err_msg=name)


def test_metrics_modules_do_not_import_torch():
    import ast
    from pathlib import Path

    import shiftattr.metrics

    files = sorted(Path(shiftattr.metrics.__file__).parent.glob("*.py"))
    assert len(files) >= 6
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] in {"torch", "monai"} for n in names), path.name


def test_duck_typed_tensor_input():
    class FakeTensor:  # what the metrics rely on: .detach().cpu().numpy()
        def __init__(self, a):
            self.a = a

        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return self.a

    ref = np.zeros((6, 6), dtype=bool)
    ref[:3] = True
    pred = np.zeros((6, 6), dtype=bool)
    pred[:2] = True
    assert dice(FakeTensor(pred), FakeTensor(ref)) == pytest.approx(0.8)


# --------------------------------------------------------------------------- Dice


def test_dice_known_overlaps():
    ref = np.zeros((10, 10, 10), dtype=bool)
    ref[:4] = True  # 400 voxels
    pred = np.zeros_like(ref)
    pred[2:6] = True  # 400 voxels, 200 shared
    assert dice(pred, ref) == pytest.approx(0.5)
    assert dice(ref, ref) == 1.0
    assert dice(~ref, ref) == 0.0
    assert dice(pred[0, :, :], ref[0, :, :]) == 0.0  # 2D: pred slice 0 empty, ref full -> 0


@pytest.mark.parametrize("shape", [(8, 8, 8), (5, 7, 3), (6, 10)])
def test_dice_batch_equals_single_and_naive(shape):
    rng = np.random.default_rng(2)
    p = rng.random((7, *shape)) < 0.3
    r = rng.random((7, *shape)) < 0.3
    batch_flag = True if len(shape) == 2 else None
    got = dice(p, r, batch=batch_flag)
    naive = np.array([2 * np.sum(a & b) / (np.sum(a) + np.sum(b)) for a, b in zip(p, r)])
    np.testing.assert_allclose(got, naive, rtol=0, atol=1e-15)
    singles = [dice(a, b) for a, b in zip(p, r)]
    np.testing.assert_allclose(got, singles, rtol=0, atol=0)
    # non-contiguous views take the fallback path and agree
    np.testing.assert_allclose(dice(p[:, ::-1], r[:, ::-1], batch=batch_flag), naive)


def test_dice_many_blocks():
    # more cases than fit in one memory block of the vectorised reduction
    from shiftattr.metrics import overlap

    rng = np.random.default_rng(3)
    p = rng.random((5, 16, 16, 16)) < 0.2
    r = rng.random((5, 16, 16, 16)) < 0.2
    expected = dice(p, r)
    old = overlap._BLOCK_BYTES
    try:
        overlap._BLOCK_BYTES = 2 * 16**3
        np.testing.assert_array_equal(dice(p, r), expected)
    finally:
        overlap._BLOCK_BYTES = old


def test_dice_empty_policies():
    z = np.zeros((2, 4, 4, 4), dtype=bool)
    some = z.copy()
    some[:, 0, 0, 0] = True
    # both empty
    assert np.all(np.isnan(dice(z, z)))
    assert dice(z, z, empty="one").tolist() == [1.0, 1.0]
    assert dice(z, z, empty="zero").tolist() == [0.0, 0.0]
    assert dice(z, z, empty="best").tolist() == [1.0, 1.0]
    assert dice(z, z, empty=0.25).tolist() == [0.25, 0.25]
    # reference empty, prediction not: formula gives 0 (nnU-Net, MONAI ignore_empty=False)
    assert dice(some, z).tolist() == [0.0, 0.0]
    assert dice(some, z, empty="one").tolist() == [0.0, 0.0]
    # MONAI ignore_empty=True: NaN whenever the reference is empty
    assert np.all(np.isnan(dice(some, z, empty="ignore")))
    assert dice(some, some, empty="ignore").tolist() == [1.0, 1.0]
    # prediction empty
    assert dice(z, some).tolist() == [0.0, 0.0]
    assert dice(z, some, empty=EmptyPolicy(prediction=-1.0)).tolist() == [-1.0, -1.0]
    assert dice(z, some, empty={"both": 1.0, "prediction": 0.5}).tolist() == [0.5, 0.5]


def test_resolve_empty_policy_errors():
    with pytest.raises(ValueError, match="unknown empty policy 'nope'"):
        resolve_empty_policy("nope")
    with pytest.raises(TypeError):
        resolve_empty_policy(True)
    with pytest.raises(TypeError):
        EmptyPolicy(both="one")  # type: ignore[arg-type]
    assert resolve_empty_policy("best", best=0.0) == EmptyPolicy(both=0.0)


# --------------------------------------------------------------------------- volume difference


def test_volume_difference_values_and_empty():
    ref = np.zeros((2, 10, 10), dtype=bool)
    ref[:, :4] = True
    pred = np.zeros_like(ref)
    pred[0, :5] = True
    pred[1, :2] = True
    np.testing.assert_allclose(volume_difference(pred, ref, batch=True), [0.25, 0.5])
    np.testing.assert_allclose(volume_difference(pred, ref, batch=True, signed=True), [0.25, -0.5])
    z = np.zeros((10, 10), dtype=bool)
    assert math.isnan(volume_difference(z, z))
    assert volume_difference(z, z, empty="best") == 0.0
    assert volume_difference(ref[0], z) == math.inf
    assert volume_difference(ref[0], z, empty=EmptyPolicy(reference=1.0)) == 1.0
    assert volume_difference(z, ref[0]) == 1.0
    assert volume_difference(z, ref[0], signed=True) == -1.0
    # spacing does not change a ratio of volumes
    assert volume_difference(pred[0], ref[0], spacing=(3.0, 0.5)) == pytest.approx(0.25)


# --------------------------------------------------------------------------- Hausdorff 95


def _brute_hd(p, r, spacing, percentile=95.0, mode="max"):
    st = ndimage.generate_binary_structure(p.ndim, 1)
    sp = np.argwhere(p & ~ndimage.binary_erosion(p, st)) * spacing
    sr = np.argwhere(r & ~ndimage.binary_erosion(r, st)) * spacing
    d = np.sqrt(((sp[:, None, :] - sr[None, :, :]) ** 2).sum(-1))
    a, b = d.min(1), d.min(0)
    if mode == "pooled":
        return np.percentile(np.concatenate([a, b]), percentile)
    return max(np.percentile(a, percentile), np.percentile(b, percentile))


def test_hausdorff95_offset_cubes():
    ref = np.zeros((30, 30, 30), dtype=bool)
    ref[5:15, 5:15, 5:15] = True
    pred = np.zeros_like(ref)
    pred[9:19, 5:15, 5:15] = True  # shifted by 4 voxels along axis 0
    assert hausdorff95(pred, ref) == pytest.approx(4.0)
    assert hausdorff95(pred, ref, spacing=(0.5, 1.0, 1.0)) == pytest.approx(2.0)
    assert hausdorff95(pred, ref, spacing=(1.0, 3.0, 3.0)) == pytest.approx(4.0)
    assert hausdorff95(ref, ref) == 0.0
    # same cube shifted along axis 2 with anisotropic spacing
    pred2 = np.roll(ref, 2, axis=2)
    assert hausdorff95(pred2, ref, spacing=(1.0, 1.0, 2.5)) == pytest.approx(5.0)


def test_hausdorff95_matches_brute_force():
    rng = np.random.default_rng(4)
    p = blobs(rng, (14, 14, 14), n=4, sigma=1.0, frac=0.1)
    r = blobs(rng, (14, 14, 14), n=4, sigma=1.0, frac=0.1)
    spacing = np.array([1.0, 0.7, 2.0])
    for mode in ("max", "pooled"):
        got = hausdorff95(p, r, spacing=spacing, mode=mode)
        expected = [_brute_hd(a, b, spacing, mode=mode) for a, b in zip(p, r)]
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    got100 = hausdorff95(p[0], r[0], percentile=100)
    assert got100 == pytest.approx(_brute_hd(p[0], r[0], np.ones(3), percentile=100))


def test_hausdorff95_empty_and_args():
    z = np.zeros((8, 8), dtype=bool)
    m = z.copy()
    m[2:4, 2:4] = True
    assert math.isnan(hausdorff95(z, z))
    assert hausdorff95(z, z, empty="best") == 0.0
    assert hausdorff95(m, z) == math.inf
    assert hausdorff95(z, m) == math.inf
    assert hausdorff95(z, m, empty=EmptyPolicy(prediction=11.3)) == 11.3
    assert math.isnan(hausdorff95(m, z, empty="ignore"))
    with pytest.raises(ValueError, match="mode"):
        hausdorff95(m, m, mode="mean")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- lesion-wise


def _reference_counts(
    pred,
    ref,
    spacing=(1.0, 1.0, 1.0),
    connectivity=1,
    min_volume=3.0,
    alpha=0.1,
    beta=0.7,
    gamma=0.65,
):
    """Straight loop port of animaSegPerfCAnalyzer (overlap table + falsePositiveRatioTester)."""
    st = ndimage.generate_binary_structure(ref.ndim, connectivity)
    max_removed = math.floor(min_volume / np.prod(spacing) * (1 + 1e-9))

    def comps(mask):
        lab, n = ndimage.label(mask, st)
        out = np.zeros_like(lab)
        k = 0
        for i in range(1, n + 1):
            if np.sum(lab == i) > max_removed:
                k += 1
                out[lab == i] = k
        return out, k

    lr, nr = comps(ref)
    lp, npred = comps(pred)
    tab = np.zeros((nr + 1, npred + 1), dtype=np.int64)
    for i in range(nr + 1):
        for j in range(npred + 1):
            tab[i, j] = np.sum((lr == i) & (lp == j))

    def tp_lesions(t):
        n_rows, n_cols = t.shape
        col_sum = t.sum(0)
        detected = 0
        for i in range(1, n_rows):
            tp = t[i, 1:].sum()
            if tp == 0 or tp / (tp + t[i, 0]) <= alpha:
                continue
            order = sorted(range(1, n_cols), key=lambda j: (-t[i, j], j))
            acc, k, fail = 0.0, 0, False
            while acc < gamma and k < len(order) and not fail:
                j = order[k]
                fail = t[0, j] / col_sum[j] > beta
                if not fail:
                    acc += t[i, j] / tp
                k += 1
            detected += not fail
        return detected

    if nr == 0 or npred == 0:
        return nr, 0, npred, 0
    return nr, tp_lesions(tab), npred, tp_lesions(tab.T)


def test_lesion_counts_match_loop_reference_implementation():
    rng = np.random.default_rng(5)
    p = blobs(rng, (20, 20, 20), n=12, sigma=1.2, frac=0.08)
    r = blobs(rng, (20, 20, 20), n=12, sigma=1.2, frac=0.08)
    # make predictions resemble references so that all rules are exercised
    p[:6] = r[:6] ^ (rng.random((6, 20, 20, 20)) < 0.03)
    p[6:9] = ndimage.binary_dilation(r[6:9], iterations=2, structure=np.ones((1, 3, 3, 3)))
    for gamma, beta, conn in [(0.65, 0.7, 1), (0.3, 0.4, 3), (1.0, 0.2, 2)]:
        got = lesion_counts(
            p, r, spacing=(1.0, 1.0, 1.5), connectivity=conn, beta=beta, gamma=gamma
        )
        expected = np.array(
            [
                _reference_counts(a, b, (1.0, 1.0, 1.5), conn, 3.0, 0.1, beta, gamma)
                for a, b in zip(p, r)
            ]
        )
        np.testing.assert_array_equal(np.stack(got, axis=1), expected)
        assert np.stack(got, axis=1)[:, 1].sum() > 0  # something was detected


def _img():
    return np.zeros((40, 40), dtype=bool)


def _ref_lesion():
    ref = _img()
    ref[5:15, 5:15] = True  # 100 px lesion
    return ref


def test_alpha_rule():
    ref = _ref_lesion()
    pred9 = _img()
    pred9[5:8, 5:8] = True  # 9 of 100 px covered
    pred11 = _img()
    pred11[5, 5:15] = True
    pred11[6, 5] = True  # 11 px, connected
    assert lesion_sensitivity(pred9, ref) == 0.0
    assert lesion_sensitivity(pred11, ref) == 1.0
    assert lesion_sensitivity(pred9, ref, alpha=0.08) == 1.0
    # roles swapped (PPV): the predicted lesion is fully covered, but the reference lesion
    # covering it has 89-91% of its voxels outside the prediction (> beta): not a true positive
    assert lesion_ppv(pred11, ref) == 0.0
    assert lesion_ppv(pred11, ref, beta=0.95) == 1.0


def _two_components(inside_first: slice, inside_second: slice):
    """Ref lesion rows/cols 5..14; pred P_a inside it, P_b partly inside and mostly outside."""
    ref = _ref_lesion()
    pred = _img()
    pred[5:15, inside_first] = True  # fully inside the reference lesion
    pred[5:15, inside_second] = True
    pred[5:15, 15:40] = True  # P_b continues to the right: 250 px on background
    return pred, ref


def test_beta_rule_blocks_when_examined_before_gamma():
    # P_a: cols 5..7 (30 px inside); P_b: cols 9..14 inside (60 px) + 250 px outside.
    pred, ref = _two_components(slice(5, 8), slice(9, 15))
    assert lesion_counts(pred, ref).n_pred == 2
    # coverage 90% passes alpha, but P_b (largest overlap, examined first) is 250/310 > 0.7
    # on the reference background
    assert lesion_sensitivity(pred, ref) == 0.0
    assert lesion_sensitivity(pred, ref, beta=0.85) == 1.0


def test_beta_component_after_gamma_does_not_block():
    # P_a: cols 5..11 (70 px inside); P_b: cols 13..14 inside (20 px) + 250 px outside.
    pred, ref = _two_components(slice(5, 12), slice(13, 15))
    # P_a first: 70 / 90 = 0.78 >= gamma, so P_b is never examined
    assert lesion_sensitivity(pred, ref) == 1.0
    # with gamma above 0.78, P_b is examined and blocks
    assert lesion_sensitivity(pred, ref, gamma=0.8) == 0.0


def test_gamma_rule():
    # P_a: cols 5..9 (50 px inside); P_b: cols 11..14 inside (40 px) + outside.
    pred, ref = _two_components(slice(5, 10), slice(11, 15))
    # 50 / 90 = 0.556 < 0.65: P_b is examined next and blocks
    assert lesion_sensitivity(pred, ref) == 0.0
    assert lesion_sensitivity(pred, ref, gamma=0.55) == 1.0
    assert lesion_sensitivity(pred, ref, gamma=0.56) == 0.0


def test_ppv_is_sensitivity_with_roles_swapped():
    ref = _img()
    ref[2:6, 2:6] = True
    ref[20:24, 20:24] = True
    pred = _img()
    pred[2:6, 2:6] = True  # hits the first reference lesion
    pred[30:34, 2:6] = True  # false positive
    pred[30:34, 30:34] = True  # false positive
    assert lesion_sensitivity(pred, ref) == 0.5
    assert lesion_ppv(pred, ref) == pytest.approx(1 / 3)
    assert lesion_f1(pred, ref) == pytest.approx(2 * 0.5 / 3 / (0.5 + 1 / 3))
    assert lesion_counts(pred, ref) == LesionCounts(2, 1, 3, 1)
    # the beta rule applies to reference lesions for PPV: a big reference lesion mostly
    # outside the predicted one blocks the predicted lesion
    big_ref = _img()
    big_ref[5:15, 5:40] = True  # 350 px
    small_pred = _img()
    small_pred[5:15, 5:15] = True  # 100 px, fully inside
    assert lesion_sensitivity(big_ref, small_pred) == 0.0
    assert lesion_ppv(small_pred, big_ref) == 0.0
    assert lesion_sensitivity(small_pred, big_ref) == 1.0  # 100/350 > alpha, nothing outside
    rng = np.random.default_rng(6)
    p = blobs(rng, (18, 18, 18), n=6, sigma=1.0, frac=0.1)
    r = p ^ (rng.random(p.shape) < 0.05)
    np.testing.assert_array_equal(lesion_sensitivity(p, r, empty=0.0), lesion_ppv(r, p, empty=0.0))


def test_f1_edge_cases():
    ref = _img()
    ref[2:6, 2:6] = True
    pred = _img()
    pred[20:24, 20:24] = True  # no overlap: sens 0, ppv 0
    assert lesion_sensitivity(pred, ref) == 0.0
    assert lesion_ppv(pred, ref) == 0.0
    assert lesion_f1(pred, ref) == 0.0
    empty = _img()
    # exactly one mask has lesions: F1 0, the undefined rate NaN
    assert lesion_f1(empty, ref) == 0.0
    assert lesion_f1(pred, empty) == 0.0
    assert math.isnan(lesion_ppv(empty, ref))
    assert lesion_sensitivity(empty, ref) == 0.0
    assert math.isnan(lesion_sensitivity(pred, empty))
    assert lesion_ppv(pred, empty) == 0.0
    # neither has lesions
    assert math.isnan(lesion_f1(empty, empty))
    assert lesion_f1(empty, empty, empty="best") == 1.0
    assert lesion_f1(empty, empty, empty="zero") == 0.0
    assert math.isnan(lesion_f1(pred, empty, empty="ignore"))
    assert lesion_ppv(empty, ref, empty=EmptyPolicy(prediction=0.0)) == 0.0
    # tiny components do not count as lesions
    tiny = _img()
    tiny[0, 0:3] = True  # 3 px <= 3 mm^2
    assert math.isnan(lesion_f1(tiny, tiny))
    assert lesion_counts(tiny, tiny) == LesionCounts(0, 0, 0, 0)


def test_min_volume_removal_uses_anisotropic_spacing():
    ref = np.zeros((12, 12, 12), dtype=bool)
    ref[1, 1, 1:3] = True  # 2 voxels
    ref[8, 8, 8] = True  # 1 voxel
    assert lesion_counts(ref, ref).n_ref == 0  # 2 and 1 mm^3 <= 3 mm^3
    assert lesion_counts(ref, ref, spacing=(1.0, 1.0, 3.0)).n_ref == 1  # 6 kept, 3 removed
    assert lesion_counts(ref, ref, spacing=(1.0, 1.0, 3.0001)).n_ref == 2
    assert lesion_counts(ref, ref, spacing=(1.0, 1.0, 3.0), min_lesion_volume=0).n_ref == 2
    # floating point: 3000 voxels of 0.1^3 mm^3 are exactly 3 mm^3 and are removed
    big = np.zeros((32, 12, 12), dtype=bool)
    big[1:31, 1:11, 1:11] = True
    assert lesion_counts(big, big, spacing=0.1).n_ref == 0
    assert lesion_counts(big, big, spacing=0.1001).n_ref == 1
    # per-case spacing for a batch
    two = np.stack([ref, ref])
    assert lesion_counts(two, two, spacing=[[1, 1, 1], [1, 1, 3]]).n_ref.tolist() == [0, 1]


def test_removed_prediction_components_do_not_detect():
    ref = np.zeros((12, 12, 12), dtype=bool)
    ref[2:6, 2:6, 2:6] = True
    pred = np.zeros_like(ref)
    pred[2, 2, 2:5] = True  # 3 voxels: removed
    assert lesion_sensitivity(pred, ref, min_lesion_volume=0.0, alpha=0.0) == 1.0
    assert lesion_sensitivity(pred, ref, alpha=0.0) == 0.0


def test_connectivity_changes_component_count():
    m = np.zeros((6, 6, 6), dtype=bool)
    m[0:2, 0:2, 0:2] = True
    m[2:4, 2:4, 2:4] = True  # touches the first cube at one corner only
    kw = {"min_lesion_volume": 0.0}
    assert lesion_counts(m, m, connectivity=1, **kw).n_ref == 2  # 6-connectivity
    assert lesion_counts(m, m, connectivity=2, **kw).n_ref == 2  # 18: edges, not corners
    assert lesion_counts(m, m, connectivity=3, **kw).n_ref == 1  # 26-connectivity
    e = np.zeros((6, 6, 6), dtype=bool)
    e[0:2, 0:2, 0:2] = True
    e[2:4, 2:4, 0:2] = True  # shares an edge
    assert lesion_counts(e, e, connectivity=1, **kw).n_ref == 2
    assert lesion_counts(e, e, connectivity=2, **kw).n_ref == 1
    # 2D: 4- versus 8-connectivity
    d = np.eye(4, dtype=bool)
    assert lesion_counts(d, d, connectivity=1, **kw).n_ref == 4
    assert lesion_counts(d, d, connectivity=2, **kw).n_ref == 1
    with pytest.raises(ValueError, match="connectivity"):
        lesion_counts(d, d, connectivity=3)


def test_lesion_parameter_validation():
    m = np.ones((4, 4), dtype=bool)
    for kw in ({"alpha": 1.0}, {"beta": 1.5}, {"gamma": 0.0}, {"min_lesion_volume": -1.0}):
        with pytest.raises(ValueError, match=next(iter(kw))):
            lesion_f1(m, m, **kw)


# --------------------------------------------------------------------------- finiteness check


def test_check_finite_metric_names_cases():
    values = np.array([0.9, np.nan, 0.7, np.inf])
    with pytest.raises(ValueError) as err:
        check_finite_metric(values, case_ids=["c01", "c02", "c03", "c04"], metric_name="dice")
    msg = str(err.value)
    assert "'dice'" in msg and "2 of 4" in msg
    assert "'c02' (nan)" in msg and "'c04' (inf)" in msg and "c01" not in msg
    assert "empty=" in msg
    with pytest.raises(ValueError, match=r"case indices 1 \(nan\), 3 \(inf\)"):
        check_finite_metric(values)
    with pytest.raises(ValueError, match="and 5 more"):
        check_finite_metric(np.full(25, np.nan))
    with pytest.raises(ValueError, match="case_ids has 2 entries"):
        check_finite_metric(values, case_ids=["a", "b"])
    out = check_finite_metric([1, 2])
    assert out.dtype == np.float64 and out.tolist() == [1.0, 2.0]


def test_check_finite_metric_on_metric_output():
    z = np.zeros((3, 6, 6, 6), dtype=bool)
    z[0, :2] = True
    values = dice(z, z)  # cases 1 and 2 are both empty -> NaN
    with pytest.raises(ValueError, match=r"'b' \(nan\), 'c' \(nan\)"):
        check_finite_metric(values, ["a", "b", "c"], metric_name="dice")
    np.testing.assert_array_equal(check_finite_metric(dice(z, z, empty="one")), [1, 1, 1])


def test_empty_one_is_refused_where_lower_is_better():
    # "one" gave a correctly empty case a Hausdorff distance / volume difference of 1
    z = np.zeros((2, 8, 8, 8))
    for fn in (hausdorff95, volume_difference):
        with pytest.raises(ValueError, match="empty='best'"):
            fn(z, z, empty="one")
        assert fn(z, z, empty="best").tolist() == [0.0, 0.0]
    assert lesion_f1(z, z, empty="one").tolist() == [1.0, 1.0]  # best 1: allowed


def test_hausdorff95_leaves_out_axes_of_length_one():
    # a 2D mask with a channel axis, or stored as one slice of 3D: its surface is its
    # contour; along a length-1 axis every voxel would lie on the border
    ref = np.zeros((20, 20), dtype=bool)
    ref[4:16, 4:16] = True
    pred = np.zeros_like(ref)
    pred[7:13, 7:13] = True
    plain = hausdorff95(pred, ref)
    assert plain == pytest.approx(np.hypot(3, 3))
    assert hausdorff95(pred[None], ref[None]) == pytest.approx(plain)
    assert hausdorff95(pred[..., None], ref[..., None], spacing=(1, 1, 5)) == pytest.approx(plain)
    batch = hausdorff95(np.stack([pred[None]] * 2), np.stack([ref[None]] * 2))
    np.testing.assert_allclose(batch, plain)
    one = np.ones((1, 1, 1), dtype=bool)
    assert hausdorff95(one, one) == 0.0


def test_bool_views_of_other_bytes_count_as_voxels():
    # a 0/255 export viewed as bool holds the byte 255: each is one voxel, not eight bits
    raw = np.zeros((4, 4, 8), dtype=np.uint8)
    raw[:2] = 255
    pred = raw.view(bool)
    ref = raw != 0
    assert dice(pred, ref) == 1.0
    assert volume_difference(pred, ref) == 0.0
    assert [int(c[0]) for c in overlap_counts(pred, ref)] == [64, 64, 64]


def test_a_batch_of_no_cases_gives_no_values():
    none = np.zeros((0, 4, 4, 4))
    for metric in (dice, volume_difference, hausdorff95, lesion_f1):
        assert metric(none, none, batch=True).shape == (0,)
