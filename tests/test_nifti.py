"""NIfTI loaders: plain folder + manifest, nnU-Net raw, MSSEG-2016; laziness and checks."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
torch = pytest.importorskip("torch")

from shiftattr.environment import Environment, case_key  # noqa: E402
from shiftattr.segmentation import nifti  # noqa: E402
from shiftattr.segmentation.adapter import SegmentationAdapter  # noqa: E402
from shiftattr.segmentation.nifti import (  # noqa: E402
    NiftiDataError,
    load_folder,
    load_msseg2016,
    load_nnunet_raw,
    msseg2016_environments,
    select_cases,
)

SHAPE = (6, 5, 4)
AFFINE = np.diag([1.0, 1.0, 2.5, 1.0])


def save(path: Path, data: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data), affine), str(path))
    return path


def image(value: float) -> np.ndarray:
    out = np.full(SHAPE, value, dtype=np.float32)
    out[0, 0, 0] = value + 0.5
    return out


def mask(n_voxels: int) -> np.ndarray:
    out = np.zeros(SHAPE, dtype=np.uint8)
    out.reshape(-1)[:n_voxels] = 1
    return out


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def count_reads(monkeypatch):
    """Count voxel-data reads (header reads do not count)."""
    reads: list[str] = []
    original = nifti._read_data

    def counting(path):
        reads.append(os.path.basename(path))
        return original(path)

    monkeypatch.setattr(nifti, "_read_data", counting)
    return reads


# --------------------------------------------------------------------------- plain folder
def make_folder(root: Path) -> Path:
    for i, cid in enumerate(["c1", "c2", "c3"]):
        save(root / "img" / f"{cid}_flair.nii.gz", image(10.0 * i))
        save(root / "img" / f"{cid}_t1.nii.gz", image(10.0 * i + 1))
        save(root / "seg" / f"{cid}.nii.gz", mask(i + 1))
    rows = [
        "case_id,image_flair,image_t1,label,age,lesion_load,sex,site",
        "c1,img/c1_flair.nii.gz,img/c1_t1.nii.gz,seg/c1.nii.gz,41,0.5,F,A",
        "c2,img/c2_flair.nii.gz,img/c2_t1.nii.gz,seg/c2.nii.gz,52,1.5,M,B",
        f"c3,{root}/img/c3_flair.nii.gz,img/c3_t1.nii.gz,seg/c3.nii.gz,63,2.5,F,A",
    ]
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


def test_load_folder_csv_lazy_channels_covariates(tmp_path, count_reads):
    root = make_folder(tmp_path / "data")
    before = snapshot(root)
    with pytest.warns(UserWarning, match=r"'sex' .* not numeric"):
        env = load_folder(root, covariate_columns=["age", "lesion_load", "sex"], name="site-A")
    assert count_reads == []  # headers only at load time
    assert env.name == "site-A" and env.case_ids == ("c1", "c2", "c3")
    assert env.is_lazy("X") and env.is_lazy("Y")
    assert env.item_shape("X") == (2, *SHAPE) and env.item_shape("Y") == SHAPE
    x1 = env["X"][1]
    assert count_reads == ["c2_flair.nii.gz", "c2_t1.nii.gz"]  # only the requested case
    assert x1.dtype == np.float32 and x1.shape == (2, *SHAPE)
    assert x1[0, 1, 1, 1] == 10.0 and x1[1, 1, 1, 1] == 11.0
    y2 = env["Y"][2]
    assert y2.dtype == np.uint8 and int(y2.sum()) == 3
    np.testing.assert_array_equal(env["D"], [[41, 0.5], [52, 1.5], [63, 2.5]])
    assert env.metadata["D_columns"] == ("age", "lesion_load")
    # two cases, two columns: the names are not per case, so a subset keeps their order
    two = env.subset([0, 1])
    assert two.subset([1, 0]).metadata["D_columns"] == ("age", "lesion_load")
    assert env.metadata["sex"].tolist() == ["F", "M", "F"]
    assert env.metadata["site"].tolist() == ["A", "B", "A"]
    np.testing.assert_allclose(env.metadata["spacing"], [[1.0, 1.0, 2.5]] * 3)
    assert env.metadata["affine"].shape == (3, 4, 4)
    assert snapshot(root) == before


def test_spacing_from_metadata_follows_subsets(tmp_path):
    root = tmp_path / "data"
    for i, z in enumerate((1.0, 2.0, 3.0)):
        aff = np.diag([1.0, 1.0, z, 1.0])
        save(root / f"c{i}.nii.gz", image(1.0), affine=aff)
        save(root / f"c{i}_seg.nii.gz", mask(3), affine=aff)
    (root / "m.csv").write_text(
        "case_id,image,label\n" + "".join(f"c{i},c{i}.nii.gz,c{i}_seg.nii.gz\n" for i in range(3))
    )
    env = load_folder(root, "m.csv")
    seen = []

    def metric(pred, ref, spacing=None):
        seen.append(float(spacing[2]))
        return 1.0

    adapter = SegmentationAdapter(
        lambda b: b, activation="none", metric=metric, spacing="metadata", progress=False
    )
    adapter.score(env.subset([2, 0, 2]))  # Environment.subset keeps metadata as is
    assert seen == [3.0, 1.0, 3.0]


def test_load_folder_json_manifest_named_nodes(tmp_path):
    root = make_folder(tmp_path / "data")
    records = [
        {
            "id": "c1",
            "images": ["img/c1_flair.nii.gz"],
            "mask": "seg/c1.nii.gz",
            "age": 41,
            "tiv": 1.2,
            "score": 3,
            "spacing": "iso",
        },
        {
            "id": "c2",
            "images": ["img/c2_flair.nii.gz"],
            "mask": "seg/c2.nii.gz",
            "age": 52,
            "tiv": 1.4,
            "score": 7,
            "spacing": "aniso",
        },
    ]
    (root / "cases.json").write_text(json.dumps({"cases": records}))
    env = load_folder(
        root,
        "cases.json",
        image_columns="images",
        label_column="mask",
        id_column="id",
        covariate_columns={"A": "age", "V": ["age", "tiv"]},
    )
    assert env.case_ids == ("c1", "c2")
    assert env["X"][0].shape == SHAPE  # one channel: no channel axis
    np.testing.assert_array_equal(env["A"], [41.0, 52.0])
    assert env["V"].shape == (2, 2)
    assert env.metadata["manifest_spacing"].tolist() == ["iso", "aniso"]  # header spacing kept
    assert env.metadata["spacing"].shape == (2, 3)
    picked = select_cases(env, score=7)
    assert picked.case_ids == ("c2",) and picked["A"].tolist() == [52.0]
    assert picked.metadata["manifest_spacing"].tolist() == ["aniso"]
    unlabeled = load_folder(
        root, "cases.json", image_columns="images", label_column=None, id_column="id"
    )
    assert "Y" not in unlabeled


def test_load_folder_errors_name_files_and_columns(tmp_path):
    root = make_folder(tmp_path / "data")
    with pytest.raises(NiftiDataError, match=r"no label column 'seg'.*case_id"):
        load_folder(root, label_column="seg")
    with pytest.raises(NiftiDataError, match="no manifest"):
        load_folder(tmp_path)
    os.remove(root / "img" / "c2_t1.nii.gz")
    with pytest.raises(NiftiDataError, match=r"case 'c2'.*c2_t1.nii.gz"):
        load_folder(root)


def test_shape_and_affine_mismatch_are_named(tmp_path):
    root = tmp_path / "data"
    save(root / "a.nii.gz", image(1.0))
    save(root / "a_seg.nii.gz", np.zeros((6, 5, 3), dtype=np.uint8))
    save(root / "b.nii.gz", image(1.0))
    save(root / "b_seg.nii.gz", mask(2), affine=np.diag([1.0, 1.0, 3.0, 1.0]))
    (root / "m.csv").write_text("case_id,image,label\na,a.nii.gz,a_seg.nii.gz\n")
    with pytest.raises(
        NiftiDataError,
        match=r"a_seg.nii.gz' has shape \(6, 5, 3\).*a.nii.gz' has shape \(6, 5, 4\)",
    ):
        load_folder(root, "m.csv")
    (root / "m.csv").write_text("case_id,image,label\nb,b.nii.gz,b_seg.nii.gz\n")
    with pytest.raises(NiftiDataError, match=r"affine of '.*b_seg.nii.gz' differs"):
        load_folder(root, "m.csv")
    env = load_folder(root, "m.csv", check_affine=False)
    assert int(env["Y"][0].sum()) == 2


def test_truncated_and_non_binary_files_fail_lazily_naming_the_file(tmp_path):
    root = tmp_path / "data"
    save(
        root / "a.nii.gz",
        np.random.default_rng(0).normal(size=(30, 30, 30)).astype(np.float32),
        affine=np.eye(4),
    )
    save(root / "a_seg.nii.gz", np.zeros((30, 30, 30), dtype=np.uint8), affine=np.eye(4))
    save(root / "b.nii.gz", np.zeros((30, 30, 30), dtype=np.float32), affine=np.eye(4))
    labels = np.zeros((30, 30, 30), dtype=np.uint8)
    labels[0, 0, :3] = [1, 2, 255]
    save(root / "b_seg.nii.gz", labels, affine=np.eye(4))
    data = (root / "a.nii.gz").read_bytes()
    (root / "a.nii.gz").write_bytes(data[: len(data) // 2])  # header intact, data cut
    (root / "m.csv").write_text(
        "case_id,image,label\na,a.nii.gz,a_seg.nii.gz\nb,b.nii.gz,b_seg.nii.gz\n"
    )
    env = load_folder(root, "m.csv")  # headers are fine: loading succeeds
    with pytest.raises(NiftiDataError, match=r"a\.nii\.gz.*truncated"):
        env["X"][0]
    with pytest.raises(NiftiDataError, match=r"b_seg.nii.gz' is not binary.*\[0, 1, 2, 255\]"):
        env["Y"][1]
    multi = load_folder(root, "m.csv", binary_labels=False)
    assert sorted(np.unique(multi["Y"][1]).tolist()) == [0, 1, 2, 255]
    (root / "a_seg.nii.gz").write_bytes(b"not a nifti file")
    with pytest.raises(NiftiDataError, match=r"header of '.*a_seg.nii.gz'"):
        load_folder(root, "m.csv")


# --------------------------------------------------------------------------- nnU-Net raw
def make_nnunet(root: Path, n_cases: int = 3, num_training: int | None = None) -> Path:
    for i in range(n_cases):
        case = f"MS_{i:03d}"
        save(root / "imagesTr" / f"{case}_0000.nii.gz", image(100.0 + i))
        save(root / "imagesTr" / f"{case}_0001.nii.gz", image(200.0 + i))
        save(root / "labelsTr" / f"{case}.nii.gz", mask(i + 2))
    save(root / "imagesTs" / "MS_900_0000.nii.gz", image(1.0))
    save(root / "imagesTs" / "MS_900_0001.nii.gz", image(2.0))
    (root / "dataset.json").write_text(
        json.dumps(
            {
                "channel_names": {"0": "FLAIR", "1": "T1"},
                "labels": {"background": 0, "lesion": 1},
                "numTraining": n_cases if num_training is None else num_training,
                "file_ending": ".nii.gz",
            }
        )
    )
    return root


def test_load_nnunet_raw_two_channels(tmp_path, count_reads):
    root = make_nnunet(tmp_path / "Dataset001_MS")
    before = snapshot(root)
    env = load_nnunet_raw(root)
    assert count_reads == []
    assert env.case_ids == ("MS_000", "MS_001", "MS_002")
    assert env.name == "Dataset001_MS/imagesTr"
    x = env["X"][2]
    assert x.shape == (2, *SHAPE)
    assert x[0, 1, 1, 1] == 102.0 and x[1, 1, 1, 1] == 202.0  # channel order from _XXXX
    assert int(env["Y"][2].sum()) == 4
    assert env.metadata["channel_names"] == {"0": "FLAIR", "1": "T1"}
    sub = load_nnunet_raw(root, cases=["MS_001"])
    assert sub.case_ids == ("MS_001",)
    test = load_nnunet_raw(root, split="Ts")
    assert "Y" not in test and test.case_ids == ("MS_900",)
    assert snapshot(root) == before


def test_load_nnunet_raw_errors(tmp_path):
    root = make_nnunet(tmp_path / "Dataset002", num_training=5)
    with pytest.warns(UserWarning, match="numTraining=5"):
        load_nnunet_raw(root)
    os.remove(root / "imagesTr" / "MS_001_0001.nii.gz")
    with pytest.raises(
        NiftiDataError, match=r"case 'MS_001': missing channel 1 \(T1\).*MS_001_0001.nii.gz"
    ):
        load_nnunet_raw(root, cases=["MS_001"])
    with pytest.raises(NiftiDataError, match=r"MS_404") as err:
        load_nnunet_raw(root, cases=["MS_404"])
    # how many ids are missing, where, and which ids the folder does hold (a typo shows)
    assert re.search(
        r"^1 requested case\(s\) have no image in '.*imagesTr': \['MS_404'\] \(expected "
        r"files like MS_404_0000\.nii\.gz\); it holds 3 case\(s\), e.g\. \['MS_000', 'MS_001', "
        r"'MS_002'\]$",
        str(err.value),
    )
    many = [f"MS_{i}" for i in range(100, 112)]
    with pytest.raises(NiftiDataError, match=r"^12 requested .*'MS_109'\] and 2 more \("):
        load_nnunet_raw(root, cases=["MS_000", *many])
    os.remove(root / "labelsTr" / "MS_000.nii.gz")
    with pytest.raises(NiftiDataError, match=r"label file not found.*MS_000.nii.gz"):
        load_nnunet_raw(root, cases=["MS_000"])
    save(root / "imagesTr" / "stray.nii.gz", image(0.0))
    with pytest.raises(NiftiDataError, match=r"stray\.nii\.gz' does not follow"):
        load_nnunet_raw(root)
    with pytest.raises(NiftiDataError, match=r"dataset\.json not found"):
        load_nnunet_raw(tmp_path)


# --------------------------------------------------------------------------- MSSEG-2016
def make_msseg(root: Path, centers=("01", "03"), patients=("01", "02")) -> Path:
    for ci, center in enumerate(centers):
        for pi, patient in enumerate(patients):
            base = root / f"Center_{center}" / f"Patient_{patient}"
            value = 10 * ci + pi
            for mod, offset in (("FLAIR", 0.0), ("T1", 1000.0)):
                save(
                    base / "Preprocessed_Data" / f"{mod}_preprocessed.nii.gz", image(value + offset)
                )
                save(base / "Raw_Data" / f"{mod}.nii.gz", image(-value - offset))
            for k in range(1, 8):  # annotator k marks k voxels (+ patient offset)
                save(base / "Masks" / f"ManualSegmentation_{k}.nii.gz", mask(k + pi))
            save(base / "Masks" / "Consensus.nii.gz", mask(20 + pi))
    return root


def test_load_msseg2016_consensus_metadata_and_laziness(tmp_path, count_reads):
    root = make_msseg(tmp_path / "msseg")
    before = snapshot(root)
    env = load_msseg2016(root)
    assert count_reads == []
    assert len(env) == 4
    assert env.case_ids[0] == "Center_01/Patient_01"
    assert env.name == "center-all/annotator-consensus"
    assert env.metadata["center"].tolist() == ["01", "01", "03", "03"]
    assert env.metadata["patient"].tolist() == ["01", "02", "01", "02"]
    assert env.metadata["annotator"].tolist() == ["consensus"] * 4
    assert int(env["Y"][1].sum()) == 21  # consensus of patient 02
    assert env["X"][2][1, 1, 1] == 10.0  # center 03, patient 01, FLAIR only
    assert count_reads == ["Consensus.nii.gz", "FLAIR_preprocessed.nii.gz"]
    assert snapshot(root) == before


def test_load_msseg2016_filters_annotators_modalities(tmp_path):
    root = make_msseg(tmp_path / "msseg")
    src = load_msseg2016(root, centers=["01"], label=4)
    assert src.name == "center-01/annotator-4"
    assert [int(src["Y"][i].sum()) for i in range(2)] == [4, 5]
    tgt = load_msseg2016(root, centers=[3], patients=["Patient_02"], modalities=("FLAIR", "T1"))
    assert tgt.case_ids == ("Center_03/Patient_02",) and tgt["X"][0].shape == (2, *SHAPE)
    assert tgt["X"][0][1, 1, 1, 1] == 1011.0
    raw = load_msseg2016(root, centers=["01"], preprocessed=False)
    assert raw["X"][0][1, 1, 1] == -0.0
    stacked = load_msseg2016(root, annotators=[1, 4, "consensus"], patients=["01"])
    assert len(stacked) == 6
    assert stacked.metadata["annotator"].tolist() == ["1", "4", "consensus"] * 2
    assert [int(stacked["Y"][i].sum()) for i in range(3)] == [1, 4, 20]
    with pytest.raises(ValueError, match=r"annotators 1\.\.7"):
        load_msseg2016(root, label=8)
    with pytest.raises(ValueError, match="either label"):
        load_msseg2016(root, label=2, annotators=[1])


def test_msseg2016_paired_annotators_environments_and_selection(tmp_path):
    root = make_msseg(tmp_path / "msseg")
    src, tgt = msseg2016_environments(
        root, source=dict(label=1), target=dict(label=4), pair_annotators=True
    )
    assert sorted(src.counterfactuals) == sorted(
        [f"annotator-{k}" for k in range(1, 8)] + ["annotator-consensus"]
    )
    paired = src.counterfactual(tgt.name.split("/")[-1], "Y")
    for i in range(len(src)):
        np.testing.assert_array_equal(paired[i], tgt["Y"][i])  # same images, annotator 4
    a, b = msseg2016_environments(root, source=dict(centers=["01"]), target=dict(centers=["03"]))
    assert set(a.metadata["center"]) == {"01"} and set(b.metadata["center"]) == {"03"}
    everything = load_msseg2016(root)
    only03 = select_cases(everything, center="03")
    assert only03.case_ids == b.case_ids
    assert only03.metadata["patient"].tolist() == ["01", "02"]
    with pytest.raises(KeyError, match="per-case keys"):
        select_cases(everything, scanner="x")


def test_msseg2016_training_testing_layout_and_missing_files(tmp_path):
    root = tmp_path / "msseg"
    make_msseg(root / "Training", centers=("01",))
    make_msseg(root / "Testing", centers=("01",), patients=("01",))
    env = load_msseg2016(root)
    assert env.case_ids == (  # Training first, then Testing: patient numbers restart
        "Training/Center_01/Patient_01",
        "Training/Center_01/Patient_02",
        "Testing/Center_01/Patient_01",
    )
    assert env.metadata["split"].tolist() == ["Training", "Training", "Testing"]
    os.remove(
        root / "Training" / "Center_01" / "Patient_02" / "Masks" / "ManualSegmentation_6.nii.gz"
    )
    with pytest.raises(NiftiDataError, match=r"ManualSegmentation_6\.nii\.gz"):
        load_msseg2016(root, pair_annotators=True)
    with pytest.raises(NiftiDataError, match=r"T2_preprocessed\.nii\.gz"):
        load_msseg2016(root, modalities=("FLAIR", "T2"))


def test_adapter_on_nifti_environment_caches_and_leaves_data_untouched(tmp_path, count_reads):
    root = make_msseg(tmp_path / "msseg")
    before = snapshot(root)
    env = load_msseg2016(root, label=1)
    conv = torch.nn.Conv3d(1, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(0.0)
        conv.bias.fill_(-1.0)  # predicts nothing
    adapter = SegmentationAdapter(
        conv, metric="dice", metric_params={"empty": "one"}, progress=False
    )
    np.testing.assert_allclose(adapter.score(env), 0.0)
    n_image_reads = sum(r.startswith("FLAIR") for r in count_reads)
    assert n_image_reads == 4
    tgt = load_msseg2016(root, label=4)  # same images, other annotator: no new inference
    adapter.score(tgt)
    assert sum(r.startswith("FLAIR") for r in count_reads) == 4
    assert adapter.n_model_calls_ == 2
    assert isinstance(env, Environment)
    assert snapshot(root) == before


def test_run_config_pairs_msseg2016_raters(tmp_path):
    """``shiftattr run`` on MSSEG-2016 with ``attribution.paired = ["Y"]`` loads every
    rater's masks and pairs each side with the other side's rater."""
    from shiftattr.config import load_config
    from shiftattr.pipeline import _nifti_data, _nifti_environments

    root = make_msseg(tmp_path / "msseg")
    cfg = load_config(
        {
            "data": {
                "kind": "msseg2016",
                "root": str(root),
                "source": {"centers": ["01"], "label": "1"},
                "target": {"centers": ["03"], "label": "4"},
            },
            "model": {"kind": "checkpoint", "factory": "m:f", "checkpoint": "c.pt"},
            "attribution": {"paired": ["Y"]},
        }
    )
    src, tgt, paired = _nifti_data(cfg.data, cfg.attribution.paired)
    assert paired == {"Y": ("annotator-4", "annotator-1")}
    for env, other in ((src, "4"), (tgt, "1")):
        readings = env.counterfactual(f"annotator-{other}", "Y")
        own = load_msseg2016(root, centers=[env.metadata["center"][0]], label=int(other))
        for i in range(len(env)):
            np.testing.assert_array_equal(readings[i], own["Y"][i])  # same scans, other rater
    plain, _ = _nifti_environments(cfg.data)
    assert not plain.counterfactuals
    assert _nifti_data(cfg.data, {"Y": "annotator-7"})[2] == {"Y": "annotator-7"}
    assert _nifti_data(cfg.data, [])[2] == []
    # labels as a user may write them: the keys are those the loader gives the readings
    for source_label, target_label in (("01", "04"), ("Consensus", "7")):
        raw = cfg.model_dump()
        raw["data"]["source"]["label"], raw["data"]["target"]["label"] = source_label, target_label
        src, tgt, paired = _nifti_data(load_config(raw).data, ["Y"])
        key_in_source, key_in_target = paired["Y"]
        src.counterfactual(key_in_source, "Y")  # raises a KeyError on a wrong key
        tgt.counterfactual(key_in_target, "Y")
        assert key_in_target == f"annotator-{source_label.lstrip('0').lower()}"


# --------------------------------------------------------------------------- review fixes
CUBE = (8, 8, 8)
LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
RAS = np.eye(4)


def write_site(root: Path, columns=("image_flair", "image_t1"), affine=RAS, n=2) -> Path:
    """A folder of ``n`` 8³ cases with one image per column of ``columns``."""
    rows = ["case_id," + ",".join(columns) + ",label"]
    for i in range(n):
        files = []
        for col in columns:
            save(root / f"c{i}_{col}.nii.gz", np.full(CUBE, float(i), np.float32), affine)
            files.append(f"c{i}_{col}.nii.gz")
        save(root / f"c{i}_seg.nii.gz", np.zeros(CUBE, np.uint8), affine)
        rows.append(f"c{i}," + ",".join(files) + f",c{i}_seg.nii.gz")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


def test_every_loader_records_channel_names_kept_by_subsets(tmp_path):
    env = load_folder(make_folder(tmp_path / "data"))
    assert env.metadata["channel_names"] == {"0": "image_flair", "1": "image_t1"}
    picked = select_cases(env, site="A")  # not per case: kept whole
    assert picked.metadata["channel_names"] == {"0": "image_flair", "1": "image_t1"}
    assert env.subset([1]).metadata["channel_names"] == {"0": "image_flair", "1": "image_t1"}
    root = make_folder(tmp_path / "json")
    records = [
        {"case_id": c, "images": [f"img/{c}_flair.nii.gz", f"img/{c}_t1.nii.gz"], "label": s}
        for c, s in (("c1", "seg/c1.nii.gz"), ("c2", "seg/c2.nii.gz"))
    ]
    (root / "cases.json").write_text(json.dumps(records))
    listed = load_folder(root, "cases.json", image_columns="images")
    assert listed.metadata["channel_names"] == {"0": "images[0]", "1": "images[1]"}
    records[1]["images"] = records[1]["images"][:1]
    (root / "cases.json").write_text(json.dumps(records))
    with pytest.raises(NiftiDataError, match=r"'images'.*different numbers of paths"):
        load_folder(root, "cases.json", image_columns="images")
    msseg = load_msseg2016(make_msseg(tmp_path / "msseg"), modalities=("FLAIR", "T1"))
    assert msseg.metadata["channel_names"] == {"0": "FLAIR", "1": "T1"}
    assert msseg.metadata["modalities"] == ("FLAIR", "T1")


def test_check_comparable_raises_on_channels_that_differ(tmp_path):
    from shiftattr.segmentation import check_comparable

    src = load_folder(write_site(tmp_path / "A"), name="source")
    swapped = load_folder(write_site(tmp_path / "B", ("image_t1", "image_flair")), name="target")
    with pytest.raises(
        NiftiDataError,
        match=r"source 'source' has \['image_flair', 'image_t1'\], target 'target' has "
        r"\['image_t1', 'image_flair'\] \(the same channels in another order\).*same order in "
        r"both manifests",
    ):
        check_comparable(src, swapped)
    one = load_folder(write_site(tmp_path / "C", ("image_flair",)), name="target")
    with pytest.raises(NiftiDataError, match=r"\['image_flair', 'image_t1'\].*\['image_flair'\]"):
        check_comparable(src, one)
    upper = load_folder(write_site(tmp_path / "D", ("image_FLAIR", "image_T1")), name="target")
    assert check_comparable(src, upper) == []  # the same channels, spelt in capitals
    one.metadata.pop("channel_names")  # unnamed: the number of channels still counts
    with pytest.raises(NiftiDataError, match=r"numbers of image channels differ.*2 .*1 \("):
        check_comparable(src, one)


def test_check_comparable_warns_on_orientation_not_on_spacing(tmp_path):
    from shiftattr.segmentation import check_comparable

    ras = load_folder(write_site(tmp_path / "ras"), name="source")
    lps = load_folder(write_site(tmp_path / "lps", affine=LPS), name="target")
    (warning,) = check_comparable(ras, lps)
    assert warning["code"] == "orientation_differs" and warning["mechanism"] is None
    msg = warning["message"]
    assert "'source': RAS (2 cases)" in msg and "'target': LPS (2 cases)" in msg
    assert "mirrored or permuted" in msg and "as_closest_canonical" in msg
    aniso = load_folder(write_site(tmp_path / "aniso", affine=np.diag([0.5, 0.5, 3.0, 1])))
    assert check_comparable(ras, aniso) == []  # spacing is a real scanner difference
    assert check_comparable(ras, load_folder(write_site(tmp_path / "ras2"))) == []
    mixed = Environment({"D": np.zeros(2)}, metadata={"affine": np.stack([np.eye(4), LPS])})
    (within,) = check_comparable(mixed, Environment({"D": np.zeros(2)}))
    assert "RAS (1 case), LPS (1 case)" in within["message"]
    synthetic = Environment({"X": np.zeros((2, *CUBE))})
    assert check_comparable(synthetic, synthetic) == []


def make_multilabel_nnunet(root: Path) -> tuple[Path, list[np.ndarray]]:
    labels = []
    for i in range(2):
        y = np.zeros(CUBE, np.uint8)
        y[1:4, 1:4, 1:4] = 1
        y[5:7, 5:7, 5 + i : 7] = 2
        save(root / "imagesTr" / f"ML_{i:03d}_0000.nii.gz", np.ones(CUBE, np.float32), np.eye(4))
        save(root / "labelsTr" / f"ML_{i:03d}.nii.gz", y, np.eye(4))
        labels.append(y)
    (root / "dataset.json").write_text(
        json.dumps(
            {
                "channel_names": {"0": "FLAIR"},
                "labels": {"background": 0, "edema": 1, "tumour": 2},
                "numTraining": 2,
                "file_ending": ".nii.gz",
            }
        )
    )
    return root, labels


def test_foreground_scores_one_label_of_a_label_map(tmp_path):
    root, labels = make_multilabel_nnunet(tmp_path / "Dataset003_ML")
    env = load_nnunet_raw(root, foreground=2)
    assert env.metadata["foreground"] == 2
    for i, y in enumerate(labels):
        got = env["Y"][i]
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, (y == 2).astype(np.uint8))
    assert load_nnunet_raw(root).metadata["foreground"] is None
    for bad in (3, 0, "2", True, 1.0):
        with pytest.raises(NiftiDataError, match=r"foreground.*'edema': 1, 'tumour': 2"):
            load_nnunet_raw(root, foreground=bad)
    folder = tmp_path / "folder"
    save(folder / "a.nii.gz", np.ones(CUBE, np.float32), np.eye(4))
    save(folder / "a_seg.nii.gz", labels[0], np.eye(4))
    (folder / "manifest.csv").write_text("case_id,image,label\na,a.nii.gz,a_seg.nii.gz\n")
    np.testing.assert_array_equal(load_folder(folder, foreground=1)["Y"][0], labels[0] == 1)
    with pytest.raises(NiftiDataError, match="positive int"):
        load_folder(folder, foreground=-1)
    with pytest.raises(NiftiDataError, match=r"foreground=2 .*'lesion': 1"):
        load_msseg2016(make_msseg(tmp_path / "msseg"), foreground=2)


def test_cases_of_different_shapes_load_and_give_image_statistics(tmp_path):
    from shiftattr.ratios.image_stats import image_statistics

    root = tmp_path / "shapes"
    rng = np.random.default_rng(0)
    for cid, shape in (("c1", CUBE), ("c2", (8, 8, 6)), ("c3", CUBE)):
        save(root / f"{cid}.nii.gz", rng.normal(size=shape).astype(np.float32), np.eye(4))
        seg = np.zeros(shape, np.uint8)
        seg[2:5, 2:5, 2:4] = 1
        save(root / f"{cid}_seg.nii.gz", seg, np.eye(4))
    (root / "manifest.csv").write_text(
        "case_id,image,label\n"
        + "".join(f"{c},{c}.nii.gz,{c}_seg.nii.gz\n" for c in ["c1", "c2", "c3"])
    )
    env = load_folder(root)
    stats = image_statistics({"X": env["X"], "Y": env["Y"]}, statistics="basic")
    assert stats.shape == (3, 15) and np.isfinite(stats).all()
    alone = image_statistics({"X": env["X"][1][None], "Y": env["Y"][1][None]}, statistics="basic")
    np.testing.assert_allclose(stats[1], alone[0])


def test_nnunet_file_ending_and_4d_image_errors_say_what_to_do(tmp_path):
    root = make_nnunet(tmp_path / "Dataset004")
    dj = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps({**dj, "file_ending": ".nii"}))
    with pytest.raises(
        NiftiDataError,
        match=r"no image file ending in '\.nii' .*imagesTr'.*6 file\(s\).*MS_000_0000\.nii\.gz"
        r".*Fix file_ending",
    ) as info:
        load_nnunet_raw(root)
    assert "MS_002_0001" not in str(info.value)  # up to 5 files named
    (root / "dataset.json").write_text(json.dumps(dj))
    for f in (root / "imagesTr").iterdir():
        f.unlink()
    with pytest.raises(NiftiDataError, match=r"imagesTr'.*the folder is empty"):
        load_nnunet_raw(root)
    folder = tmp_path / "four"
    save(folder / "c1.nii.gz", np.ones((*CUBE, 2), np.float32), np.eye(4))
    save(folder / "c1_seg.nii.gz", np.zeros(CUBE, np.uint8), np.eye(4))
    (folder / "manifest.csv").write_text("case_id,image,label\nc1,c1.nii.gz,c1_seg.nii.gz\n")
    with pytest.raises(
        NiftiDataError, match=r"c1\.nii\.gz' is a 4D image.*one 3D file per channel"
    ):
        load_folder(folder)


def test_cases_on_several_grids_carry_their_header_shapes(tmp_path, count_reads):
    # the CNN discriminator needs one grid and can now name an odd case before training
    root = make_folder(tmp_path / "data")
    odd = np.zeros((6, 5, 3), np.float32)
    for name in ("c2_flair", "c2_t1"):
        save(root / "img" / f"{name}.nii.gz", odd)
    save(root / "seg" / "c2.nii.gz", odd.astype(np.uint8))
    env = load_folder(root)
    assert env.item_shape("X") is None and env.item_shape("Y") is None
    assert env["X"].item_shapes == [(2, *SHAPE), (2, 6, 5, 3), (2, *SHAPE)]
    assert env.subset([1, 2])["Y"].item_shapes == [(6, 5, 3), SHAPE]
    pytest.importorskip("torch")
    from shiftattr.ratios import CNNDiscriminator

    cnn = CNNDiscriminator(channels=(2,), epochs=1, num_threads=1)
    with pytest.raises(ValueError, match=r"node 'X': case 1 has shape \(2, 6, 5, 3\)"):
        cnn.fit({"X": env["X"]}, {"X": env["X"]})
    assert count_reads == []


def test_select_cases_restricts_per_case_lists_and_dicts():
    """It rebuilt the metadata from numpy arrays only, undoing subset's restriction of
    lists and dicts (the simulator's acquisition parameters stayed whole)."""
    env = Environment(
        {"D": np.arange(4.0)},
        metadata={
            "center": np.array(["01", "03", "01", "07"]),
            "notes": ["a", "b", "c", "d"],
            "params": {"noise": np.arange(4.0)},
        },
    )
    sub = select_cases(env, center="01")
    assert sub.metadata["notes"] == ["a", "c"]
    assert sub.metadata["params"]["noise"].tolist() == [0.0, 2.0]


def _manifest(root: Path, text: str) -> Path:
    for cid in ("a", "b"):
        save(root / f"{cid}.nii.gz", image(1.0))
        save(root / f"{cid}_seg.nii.gz", mask(2))
    (root / "manifest.csv").write_text(text)
    return root


def test_manifest_rows_must_fill_the_columns_once(tmp_path):
    """A decimal comma shifted the covariates by one column without a word, and a
    column named twice kept only its last file."""
    head = "case_id,image,label,lesion_load,age\na,a.nii.gz,a_seg.nii.gz,2.1,34\n"
    root = _manifest(tmp_path / "m1", head + "b,b.nii.gz,b_seg.nii.gz,0,7,51\n")
    with pytest.raises(NiftiDataError, match=r"line 3: 6 cells for 5 columns.*decimal comma"):
        load_folder(root, covariate_columns=["lesion_load", "age"])
    root = _manifest(tmp_path / "m2", head + "b,b.nii.gz,b_seg.nii.gz,0\n")
    with pytest.raises(NiftiDataError, match=r"line 3: 4 cells for 5 columns"):
        load_folder(root, covariate_columns=["lesion_load", "age"])
    root = _manifest(
        tmp_path / "m3", "case_id,image,image,label\na,a.nii.gz,b.nii.gz,a_seg.nii.gz\n"
    )
    with pytest.raises(NiftiDataError, match=r"names the column\(s\) \['image'\] more than once"):
        load_folder(root)
    # a spreadsheet's empty trailing columns and cells are no cells
    root = _manifest(
        tmp_path / "m5",
        "case_id,image,label,age,,\na,a.nii.gz,a_seg.nii.gz,50,,\nb,b.nii.gz,b_seg.nii.gz,60,\n",
    )
    assert load_folder(root, covariate_columns=["age"])["D"].ravel().tolist() == [50.0, 60.0]
    root = _manifest(tmp_path / "m6", "case_id,image,label,age\na,a.nii.gz,a_seg.nii.gz,50,\n")
    assert load_folder(root, covariate_columns=["age"])["D"].ravel().tolist() == [50.0]
    # a quoted cell after a space, and codes that float() reads, stay as written
    root = _manifest(
        tmp_path / "m4",
        'case_id,image,label,site,visit\na, "a.nii.gz",a_seg.nii.gz,007,2020_01\n'
        "b,b.nii.gz,b_seg.nii.gz,7,2021_02\n",
    )
    env = load_folder(root)
    assert env.metadata["site"].tolist() == ["007", "7"]
    assert env.metadata["visit"].tolist() == ["2020_01", "2021_02"]


def test_a_json_manifest_may_start_with_a_byte_order_mark(tmp_path):
    root = _manifest(tmp_path, "")
    records = [{"case_id": c, "image": f"{c}.nii.gz", "label": f"{c}_seg.nii.gz"} for c in "ab"]
    (root / "manifest.json").write_text("\ufeff" + json.dumps(records), encoding="utf-8")
    assert load_folder(root, manifest="manifest.json").case_ids == ("a", "b")


def test_nnunet_ignore_label_is_refused(tmp_path):
    """nnU-Net leaves 'ignore' voxels out; scored, they counted as background."""
    root = tmp_path / "Dataset001"
    save(root / "imagesTr" / "MS_000_0000.nii.gz", image(1.0))
    save(root / "labelsTr" / "MS_000.nii.gz", mask(3))
    labels = {"background": 0, "lesion": 1, "ignore": 2}
    (root / "dataset.json").write_text(
        json.dumps({"channel_names": {"0": "FLAIR"}, "labels": labels, "file_ending": ".nii.gz"})
    )
    with pytest.raises(NiftiDataError, match=r"declares an 'ignore' label \(2\)"):
        load_nnunet_raw(root, foreground=1)


def test_a_file_reached_through_a_link_is_the_same_case(tmp_path):
    root = _manifest(tmp_path / "a", "case_id,image,label\na,a.nii.gz,a_seg.nii.gz\n")
    other = tmp_path / "b"
    other.mkdir()
    os.symlink(root / "a.nii.gz", other / "linked.nii.gz")
    os.symlink(root / "a_seg.nii.gz", other / "linked_seg.nii.gz")
    (other / "manifest.csv").write_text("case_id,image,label\nx,linked.nii.gz,linked_seg.nii.gz\n")
    first, second = load_folder(root), load_folder(other)
    assert case_key(first["X"], 0) == case_key(second["X"], 0)


def test_raw_msseg2016_scans_are_read_by_the_release_names(tmp_path):
    root = make_msseg(tmp_path / "msseg", centers=("01",), patients=("01",))
    raw = root / "Center_01" / "Patient_01" / "Raw_Data"
    os.rename(raw / "FLAIR.nii.gz", raw / "3DFLAIR.nii.gz")
    env = load_msseg2016(root, preprocessed=False)
    assert env["X"][0][1, 1, 1] == -0.0


def test_a_covariate_named_by_the_user_is_read_as_numbers_even_zero_padded(tmp_path):
    root = _manifest(
        tmp_path / "z",
        "case_id,image,label,age,visits\na,a.nii.gz,a_seg.nii.gz,00,inf\n"
        "b,b.nii.gz,b_seg.nii.gz,07,2\n",
    )
    assert load_folder(root, covariate_columns=["age"])["D"].ravel().tolist() == [0.0, 7.0]
    with pytest.raises(NiftiDataError, match=r"covariate column 'visits'.*infinite.*\['a'\]"):
        load_folder(root, covariate_columns=["visits"])
