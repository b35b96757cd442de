"""Saved probability maps: nnU-Net's .npz and NIfTI maps, read and checked, and the loaders'
probability nodes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
pytest.importorskip("torch")

from shiftattr.segmentation import NiftiDataError, load_folder, load_nnunet_raw  # noqa: E402
from shiftattr.segmentation.probability_maps import (  # noqa: E402
    ProbabilityMapLoader,
    class_channel,
    probability_map_info,
)

GRID = (10, 12, 14)  # three different lengths: an axis-order mistake cannot go unseen


def _save_npz(path: Path, proba_xyz: np.ndarray) -> None:
    """Save ``(C, x, y, z)`` probabilities as nnU-Net does: axes in SimpleITK's order."""
    np.savez_compressed(path, probabilities=proba_xyz.transpose(0, 3, 2, 1).astype(np.float16))


def _softmax3(rng: np.random.Generator, shape=GRID) -> np.ndarray:
    logits = rng.normal(0, 2, size=(3, *shape))
    e = np.exp(logits - logits.max(0))
    return e / e.sum(0)


def test_an_npz_header_gives_classes_and_the_grid_in_nibabels_order(tmp_path):
    path = tmp_path / "c.npz"
    _save_npz(path, np.zeros((3, *GRID)))
    assert probability_map_info(path) == (3, GRID)
    nifti = tmp_path / "c.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(GRID, np.float32), np.eye(4)), str(nifti))
    assert probability_map_info(nifti) == (None, GRID)


@pytest.mark.parametrize(
    ("arrays", "pattern"),
    [
        ({"softmax": np.zeros((2, 3, 3, 3), np.float32)}, r"no array 'probabilities'.*\['softmax'\]"),
        ({"probabilities": np.zeros((3, 3), np.float32)}, r"shape \(3, 3\); expected \(classes"),
        ({"probabilities": np.zeros((2, 3, 3, 3), np.uint8)}, r"dtype uint8"),
    ],
)  # fmt: skip
def test_an_npz_that_is_no_probability_map_is_named(tmp_path, arrays, pattern):
    path = tmp_path / "c.npz"
    np.savez(path, **arrays)
    with pytest.raises(NiftiDataError, match=pattern):
        probability_map_info(path)
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(NiftiDataError, match=r"cannot read .*broken\.npz"):
        probability_map_info(tmp_path / "broken.npz")
    with pytest.raises(NiftiDataError, match="probability map not found"):
        probability_map_info(tmp_path / "none.npz")


def test_the_loader_keeps_one_channel_on_nibabels_axes(tmp_path):
    rng = np.random.default_rng(0)
    proba = _softmax3(rng)
    _save_npz(tmp_path / "c.npz", proba)
    for k in range(3):
        got = ProbabilityMapLoader([tmp_path / "c.npz"], [k])(0)
        assert got.shape == GRID and got.dtype == np.float32
        np.testing.assert_allclose(got, proba[k], atol=1e-3)  # float16 storage
    nifti = tmp_path / "c.nii.gz"
    nib.save(nib.Nifti1Image(proba[1].astype(np.float32), np.eye(4)), str(nifti))
    np.testing.assert_array_equal(ProbabilityMapLoader([nifti], [None])(0), proba[1].astype("f4"))


def test_values_that_are_no_probabilities_are_refused_naming_the_case(tmp_path):
    logits = np.zeros((2, 3, 3, 3), np.float32)
    logits[1, 0, 0, 0] = 4.5  # a logit, not a probability
    np.savez(tmp_path / "a.npz", probabilities=logits)
    with pytest.raises(NiftiDataError, match=r"case 'MS_1'.*\[0, 4.5\].*not the logits"):
        ProbabilityMapLoader([tmp_path / "a.npz"], [1], case_ids=["MS_1"])(0)
    nan = np.full((2, 3, 3, 3), 0.5, np.float32)
    nan[0, 1, 1, 1] = np.nan
    np.savez(tmp_path / "b.npz", probabilities=nan)
    with pytest.raises(NiftiDataError, match=r"1 non-finite"):
        ProbabilityMapLoader([tmp_path / "b.npz"], [0])(0)
    # float16 rounding just above 1 is clipped, not refused
    near = np.full((2, 3, 3, 3), 1.0004, np.float32)
    np.savez(tmp_path / "c.npz", probabilities=near)
    assert ProbabilityMapLoader([tmp_path / "c.npz"], [0])(0).max() == 1.0


def test_the_item_key_changes_with_the_file_and_the_channel(tmp_path):
    path = tmp_path / "c.npz"
    _save_npz(path, np.full((2, *GRID), 0.5))
    loader = ProbabilityMapLoader([path, path], [0, 1])
    before = loader.item_key(0)
    assert before != loader.item_key(1)
    _save_npz(path, np.full((2, 4, 4, 4), 0.5))
    os.utime(path, ns=(1, 1))
    assert loader.item_key(0) != before


def test_the_class_read_is_the_foreground_or_the_only_one():
    assert class_channel(2, None, "f") == 1
    assert class_channel(4, 3, "f") == 3
    assert class_channel(None, 3, "f") is None  # a NIfTI map: one class
    with pytest.raises(NiftiDataError, match=r"4 classes; pass foreground=k"):
        class_channel(4, None, "f")
    with pytest.raises(NiftiDataError, match=r"labels 0 to 1\) but foreground=2"):
        class_channel(2, 2, "f")


# ------------------------------------------------------------------------ the loaders
def _nnunet(root: Path, n: int = 3, labels: dict | None = None) -> tuple[Path, Path, list]:
    """A dataset of ``n`` cases on GRID, its predictions and probabilities (3 classes)."""
    rng = np.random.default_rng(1)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    preds = root.parent / "predictions"
    preds.mkdir()
    probas = []
    for i in range(n):
        proba = _softmax3(rng)
        seg = proba.argmax(0).astype(np.uint8)
        name = f"MS_{i:03d}"
        nib.save(nib.Nifti1Image(rng.normal(size=GRID).astype("f4"), np.eye(4)), str(root / f"imagesTr/{name}_0000.nii.gz"))  # fmt: skip
        nib.save(nib.Nifti1Image(seg, np.eye(4)), str(root / f"labelsTr/{name}.nii.gz"))
        nib.save(nib.Nifti1Image(seg, np.eye(4)), str(preds / f"{name}.nii.gz"))
        _save_npz(preds / f"{name}.npz", proba)
        probas.append(proba)
    labels = labels or {"background": 0, "lesion": 1, "edema": 2}
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "FLAIR"}, "labels": labels}))  # fmt: skip
    return root, preds, probas


def test_load_nnunet_raw_reads_the_probabilities_of_the_class_scored(tmp_path):
    root, preds, probas = _nnunet(tmp_path / "Dataset001_MS")
    env = load_nnunet_raw(root, predictions=preds, probabilities=True, foreground=2)
    assert env.item_shape("P_proba") == GRID
    for i in range(3):
        np.testing.assert_allclose(env["P_proba"][i], probas[i][2], atol=1e-3)
    assert list(env.metadata["probability_paths"]) == [
        str(preds / f"MS_{i:03d}.npz") for i in range(3)
    ]
    assert "P_proba" not in load_nnunet_raw(root, predictions=preds)
    with pytest.raises(NiftiDataError, match=r"3 classes; pass foreground=k"):
        load_nnunet_raw(root, predictions=preds, probabilities=True)
    with pytest.raises(ValueError, match=r"probabilities=True reads .* pass predictions="):
        load_nnunet_raw(root, probabilities=True)
    with pytest.raises(ValueError, match=r"probability_node='P' would replace"):
        load_nnunet_raw(
            root, predictions=preds, probabilities=True, foreground=1, probability_node="P"
        )
    (preds / "MS_001.npz").unlink()
    with pytest.raises(NiftiDataError, match=r"case 'MS_001'.*--save_probabilities"):
        load_nnunet_raw(root, predictions=preds, probabilities=True, foreground=1)


def test_probabilities_on_another_grid_or_axis_order_are_named(tmp_path):
    root, preds, probas = _nnunet(tmp_path / "Dataset001_MS")
    # saved in nibabel's order instead of nnU-Net's: the grid reads reversed
    np.savez_compressed(preds / "MS_002.npz", probabilities=probas[2].astype(np.float16))
    with pytest.raises(NiftiDataError, match=r"case 'MS_002'.*\(14, 12, 10\).*reverse"):
        load_nnunet_raw(root, predictions=preds, probabilities=True, foreground=1)


def test_region_based_datasets_are_refused(tmp_path):
    labels = {"background": 0, "whole": [1, 2], "core": [2]}  # a list of one: a label
    root, preds, _ = _nnunet(tmp_path / "Dataset002_BraTS", labels=labels)
    with pytest.raises(NiftiDataError, match=r"region-based labels \['whole'\]"):
        load_nnunet_raw(root, predictions=preds, probabilities=True, foreground=2)
    labels = {"background": 0, "lesion": [1], "edema": [2]}
    root, preds, _ = _nnunet(tmp_path / "one" / "Dataset003", labels=labels)
    env = load_nnunet_raw(root, predictions=preds, probabilities=True, foreground=2)
    assert env.item_shape("P_proba") == GRID


def test_a_2d_case_is_read_on_the_images_grid(tmp_path):
    # nnU-Net reads a 2D image as (1, 1, y, x) and saves its probabilities as (C, 1, y, x)
    root = tmp_path / "Dataset004_2D"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    preds = tmp_path / "predictions"
    preds.mkdir()
    p = np.random.default_rng(0).uniform(size=(10, 12)).astype("f4")  # (x, y)
    nib.save(nib.Nifti1Image(p, np.eye(4)), str(root / "imagesTr/c_0000.nii.gz"))
    seg = (p > 0.5).astype(np.uint8)
    for path in (root / "labelsTr/c.nii.gz", preds / "c.nii.gz"):
        nib.save(nib.Nifti1Image(seg, np.eye(4)), str(path))
    stack = np.stack([1 - p, p])[:, None].transpose(0, 1, 3, 2)  # (C, 1, y, x)
    np.savez_compressed(preds / "c.npz", probabilities=stack.astype(np.float16))
    labels = {"background": 0, "lesion": 1}
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": labels}))  # fmt: skip
    env = load_nnunet_raw(root, predictions=preds, probabilities=True)
    assert env["P"][0].shape == env["P_proba"][0].shape == (10, 12)
    np.testing.assert_allclose(env["P_proba"][0], p, atol=1e-3)


def test_load_folder_reads_npz_or_nifti_maps_from_a_column(tmp_path):
    root, preds, probas = _nnunet(tmp_path / "D")
    nifti = []
    for i in range(3):
        path = preds / f"MS_{i:03d}_p.nii.gz"
        nib.save(nib.Nifti1Image(probas[i][1].astype("f4"), np.eye(4)), str(path))
        nifti.append(path)
    rows = ["case_id,image,label,prediction,npz,nifti"]
    for i in range(3):
        name = f"MS_{i:03d}"
        rows.append(
            f"{name},{root}/imagesTr/{name}_0000.nii.gz,{root}/labelsTr/{name}.nii.gz,"
            f"{preds}/{name}.nii.gz,{preds}/{name}.npz,{nifti[i]}"
        )
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    kw = {"binary_labels": False, "prediction_column": "prediction"}
    from_npz = load_folder(tmp_path, probability_column="npz", foreground=1, **kw)
    from_nifti = load_folder(tmp_path, probability_column="nifti", **kw)
    for i in range(3):
        np.testing.assert_allclose(from_npz["P_proba"][i], probas[i][1], atol=1e-3)
        np.testing.assert_allclose(from_nifti["P_proba"][i], probas[i][1], atol=1e-6)
    assert "npz" not in from_npz.metadata  # the column is the node
    with pytest.raises(ValueError, match="probability_column is read beside prediction_column"):
        load_folder(tmp_path, probability_column="npz", binary_labels=False)
    # a NIfTI map on another affine is named as any file of the case
    nib.save(nib.Nifti1Image(probas[0][1].astype("f4"), 2 * np.eye(4)), str(nifti[0]))
    with pytest.raises(NiftiDataError, match=r"case 'MS_000': the affine of .*MS_000_p"):
        load_folder(tmp_path, probability_column="nifti", **kw)
