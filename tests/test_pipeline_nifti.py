"""``shiftattr run`` end to end on NIfTI folders: what a user with two hospitals' files
does, on 16³ volumes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
torch = pytest.importorskip("torch")

from shiftattr.cli import main  # noqa: E402

SHAPE = (16, 16, 16)


def _spheres(n: int, seed: int, contrast: float, scale: float = 1.0):
    """``n`` (image, mask) pairs: a bright sphere in noise."""
    rng = np.random.default_rng(seed)
    grid = np.indices(SHAPE).astype(np.float32)
    for _ in range(n):
        centre = rng.uniform(5, 11, size=3)
        radius = rng.uniform(2, 4)
        mask = ((grid - centre[:, None, None, None]) ** 2).sum(0) <= radius**2
        img = scale * (1.0 + contrast * mask + rng.normal(0, 0.3, SHAPE))
        yield img.astype(np.float32), mask.astype(np.uint8)


def _site(
    folder: Path, n: int, seed: int, contrast: float, affine: np.ndarray, scale: float = 1.0
) -> None:
    """``n`` cases of a bright sphere in noise, with its mask, and a manifest."""
    folder.mkdir(parents=True)
    rows = ["case_id,image,label"]
    for i, (img, mask) in enumerate(_spheres(n, seed, contrast, scale)):
        nib.save(nib.Nifti1Image(img, affine), str(folder / f"c{i}.nii.gz"))
        nib.save(nib.Nifti1Image(mask, affine), str(folder / f"c{i}_seg.nii.gz"))
        rows.append(f"c{i},c{i}.nii.gz,c{i}_seg.nii.gz")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")


def _nnunet(folder: Path, contrasts: list[float], split: str = "Tr", first: int = 0) -> list[str]:
    """An nnU-Net raw dataset (one FLAIR channel), one case ``MS_<i>`` per contrast
    (``i`` from ``first``), in ``images<split>`` / ``labels<split>``; returns the ids."""
    ids = []
    for i, c in enumerate(contrasts, start=first):
        case = f"MS_{i:03d}"
        img, mask = next(_spheres(1, seed=i, contrast=c))
        for sub, name, data in (("images", f"{case}_0000", img), ("labels", case, mask)):
            (folder / f"{sub}{split}").mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(data, np.eye(4)), str(folder / f"{sub}{split}/{name}.nii.gz"))
        ids.append(case)
    (folder / "dataset.json").write_text(
        json.dumps({"channel_names": {"0": "FLAIR"}, "labels": {"background": 0, "lesion": 1}})
    )
    return ids


def _config(
    tmp_path: Path,
    model: str = "",
    factory: str = "threshold_net",
    data: str = 'kind = "folder"\nsource = { folder = "site-A" }\ntarget = { folder = "site-B" }\n',
    **attribution: str,
) -> Path:
    """A configuration next to its data, with relative paths (read from its folder);
    ``model``, ``data`` and ``attribution``: more keys of those tables, as TOML
    lines/values (``data`` replaces the two sites of the folder layout)."""
    import tiny_models

    torch.save(getattr(tiny_models, factory)().state_dict(), tmp_path / "net.pt")
    attribution.setdefault("ratio_outputs", "false")
    attribution.setdefault("image_statistics", '"basic"')
    extra = "".join(f"{k} = {v}\n" for k, v in attribution.items())
    cfg = tmp_path / "exp.toml"
    cfg.write_text(
        f"[data]\n{data}"
        '[model]\nkind = "checkpoint"\n'
        f'factory = "tiny_models:{factory}"\ncheckpoint = "net.pt"\n{model}'
        '[attribution]\nn_folds = 2\nn_bootstrap = 5\nbootstrap = "fixed"\n'
        f"{extra}"
        '[output]\nfolder = "report"\n'
    )
    return cfg


def test_run_on_two_sites_with_other_orientation_and_voxel_size(tmp_path, monkeypatch):
    ras = np.diag([1.0, 1.0, 1.0, 1.0])
    lps = np.diag([-1.0, -1.0, 3.0, 1.0])  # another export convention, 3 mm slices
    _site(tmp_path / "site-A", 24, seed=0, contrast=1.5, affine=ras)
    _site(tmp_path / "site-B", 24, seed=1, contrast=0.9, affine=lps)  # fainter lesions
    # the defaults (extended statistics, ratio_outputs "auto"): the image ratio reads the
    # model's output summaries,
    # whose volumes need each case's voxel spacing (this crashed every NIfTI run with
    # the defaults: the estimator called them on cases stripped of their metadata)
    cfg = _config(
        tmp_path,
        metric='"hausdorff95"',
        empty='"best"',
        ratio_outputs='"auto"',
        image_statistics='"extended"',
    )
    monkeypatch.chdir(tmp_path.parent)  # the paths are read from the file's folder
    with pytest.warns(UserWarning, match="orientation"):
        assert main(["run", str(cfg), "--quiet"]) == 0
    out = json.loads((tmp_path / "report" / "attribution.json").read_text())
    codes = [w["code"] for w in out["warnings"]]
    assert codes.count("orientation_differs") == 1
    assert out["diagnostics"]["overall"]["warning_counts"]["orientation_differs"] == 1
    assert out["diagnostics"]["overall"]["n_warnings"] == len(out["warnings"])
    assert set(out["values"]) == {"X", "Y"}
    assert out["settings"]["distance_units"] == "physical (the NIfTI headers' voxel spacing)"


def test_run_refuses_sites_whose_channels_differ(tmp_path, capsys):
    affine = np.eye(4)
    for site, seed in (("site-A", 0), ("site-B", 1)):
        _site(tmp_path / site, 4, seed=seed, contrast=1.0, affine=affine)
    for site, order in (("site-A", "image_flair,image_t1"), ("site-B", "image_t1,image_flair")):
        lines = (tmp_path / site / "manifest.csv").read_text().splitlines()
        rows = [f"{order},label,case_id"]
        for line in lines[1:]:
            case, img, seg = line.split(",")
            rows.append(f"{img},{img},{seg},{case}")  # the same file twice: two channels
        (tmp_path / site / "manifest.csv").write_text("\n".join(rows) + "\n")
    assert main(["run", str(_config(tmp_path)), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "image_flair" in err and "image_t1" in err and "Traceback" not in err


def test_run_names_a_missing_folder_and_mechanism_without_a_traceback(tmp_path, capsys):
    cfg = _config(tmp_path)
    assert main(["run", str(cfg), "--quiet"]) == 2  # site-A does not exist
    err = capsys.readouterr().err
    assert "site-A" in err and "Traceback" not in err
    _site(tmp_path / "site-A", 4, seed=0, contrast=1.0, affine=np.eye(4))
    _site(tmp_path / "site-B", 4, seed=1, contrast=1.0, affine=np.eye(4))
    text = cfg.read_text().replace("[attribution]\n", '[attribution]\nmechanisms = ["D", "X"]\n')
    cfg.write_text(text)
    assert main(["run", str(cfg), "--quiet"]) == 2  # no covariates in the manifests: no D
    assert "attribution.mechanisms names ['D']" in capsys.readouterr().err
    cfg.write_text(text.replace('mechanisms = ["D", "X"]\n', ""))
    (tmp_path / "net.pt").write_bytes(b"not a checkpoint")
    assert main(["run", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "net.pt" in err and "Traceback" not in err


def test_run_scores_the_models_channel_of_the_class_the_masks_were_cut_from(tmp_path, capsys):
    """Label maps whose class 2 is the lesion and class 1 a cube elsewhere, loaded with
    ``data.foreground = 2``; a three-class model. Its channel 1 (the default) would be
    compared with class 2's masks: refused, and ``model.output_channel = 2`` scores it."""
    for site, seed in (("site-A", 0), ("site-B", 1)):
        _site(tmp_path / site, 8, seed=seed, contrast=1.5, affine=np.eye(4))
        for seg in (tmp_path / site).glob("*_seg.nii.gz"):
            labels = 2 * np.asarray(nib.load(str(seg)).dataobj)
            labels[:2, :2, :2] = 1
            nib.save(nib.Nifti1Image(labels.astype(np.uint8), np.eye(4)), str(seg))
    fg = 'kind = "folder"\nforeground = 2\nsource = { folder = "site-A" }\n'
    fg += 'target = { folder = "site-B" }\n'
    cfg = _config(tmp_path, factory="three_class_net", data=fg)
    with pytest.raises(ValueError, match=r"foreground=2.*model\.output_channel in a configuration"):
        main(["run", str(cfg), "--quiet"])
    cfg = _config(tmp_path, model="output_channel = 2\n", factory="three_class_net", data=fg)
    assert main(["run", str(cfg), "--quiet"]) == 0
    three = json.loads((tmp_path / "report" / "attribution.json").read_text())
    cfg = _config(tmp_path, data=fg)  # the same lesions from a one-channel model
    assert main(["run", str(cfg), "--quiet"]) == 0
    one = json.loads((tmp_path / "report" / "attribution.json").read_text())
    assert three["source_metric"] == one["source_metric"] > 0.5


def test_run_normalises_the_images_on_their_way_to_the_model(tmp_path):
    """Raw intensities in the hundreds, a model trained on z-scored images:
    ``model.preprocess = "zscore"`` gives it what it expects."""
    for site, seed in (("site-A", 0), ("site-B", 1)):
        _site(tmp_path / site, 8, seed=seed, contrast=1.5, affine=np.eye(4), scale=100.0)
    cfg = _config(tmp_path, model='preprocess = "zscore"\n', factory="zscored_threshold_net")
    assert main(["run", str(cfg), "--quiet"]) == 0
    out = json.loads((tmp_path / "report" / "attribution.json").read_text())
    assert out["settings"]["preprocess"] == "zscore"
    assert out["source_metric"] > 0.6
    from shiftattr.segmentation import SegmentationAdapter, load_folder
    from tiny_models import zscored_threshold_net

    raw = SegmentationAdapter(
        zscored_threshold_net(), metric_params={"empty": "one"}, progress=False
    )
    assert raw.score(load_folder(tmp_path / "site-A")).mean() < 0.2  # every voxel a lesion


def test_a_manifest_column_named_labels_is_not_a_label_map(tmp_path):
    """Only nnU-Net's dataset.json declares labels; a manifest's "labels" column is a
    per-case covariate and must not stop the run."""
    from shiftattr.config import load_config
    from shiftattr.pipeline import _nifti_environments

    for site, seed in (("site-A", 0), ("site-B", 1)):
        _site(tmp_path / site, 3, seed=seed, contrast=1.0, affine=np.eye(4))
        manifest = tmp_path / site / "manifest.csv"
        lines = manifest.read_text().splitlines()
        rows = [lines[0] + ",labels"] + [f"{line},rater{k}" for k, line in enumerate(lines[1:])]
        manifest.write_text("\n".join(rows) + "\n")
    source, _ = _nifti_environments(load_config(_config(tmp_path)).data)
    assert source.metadata["labels"].tolist() == ["rater0", "rater1", "rater2"]


def test_run_splits_one_nnunet_dataset_into_two_sites(tmp_path):
    """One nnU-Net dataset, two sites chosen in the configuration: the source by
    ``cases``, the target by a ``cases_file`` (comments and blank lines skipped) next to
    the configuration; each environment holds exactly its side's cases."""
    from shiftattr.config import load_config
    from shiftattr.pipeline import _nifti_environments

    ids = _nnunet(tmp_path / "Dataset001_MS", [1.5, 0.9] * 6)  # site B (odd ids): fainter
    site_a, site_b = ids[::2], ids[1::2]
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "site-B.txt").write_text(
        "# site B's cases\n\n" + "".join(f"  {c}\n" for c in site_b)
    )
    data = (
        f'kind = "nnunet"\nsource = {{ folder = "Dataset001_MS", cases = {json.dumps(site_a)} }}\n'
        'target = { folder = "Dataset001_MS", cases_file = "lists/site-B.txt" }\n'
    )
    cfg = _config(tmp_path, data=data)
    source, target = _nifti_environments(load_config(cfg).data)
    assert (source.case_ids, target.case_ids) == (tuple(site_a), tuple(site_b))
    assert main(["run", str(cfg), "--quiet"]) == 0
    out = json.loads((tmp_path / "report" / "attribution.json").read_text())
    assert set(out["values"]) == {"X", "Y"}
    assert (out["settings"]["n_source"], out["settings"]["n_target"]) == (6, 6)


def test_nnunet_case_selections_that_overlap_or_miss_fail_before_scoring(tmp_path, capsys):
    """Sides reading the same folder and split may not share a case (nor both take every
    case); unknown ids and bad case lists end in one line, before any model runs."""
    from shiftattr.config import ConfigError, load_config
    from shiftattr.pipeline import _nifti_environments

    ids = _nnunet(tmp_path / "ds", [1.0] * 4)
    test_ids = _nnunet(tmp_path / "ds", [1.0] * 2, split="Ts", first=900)
    (tmp_path / "b.txt").write_text(f"\ufeff{ids[1]}\n{ids[2]}\n")  # with a BOM

    def config(source: str, target: str) -> Path:
        data = f'kind = "nnunet"\nsource = {{ {source} }}\ntarget = {{ {target} }}\n'
        return _config(tmp_path, data=data)

    def fails(cfg: Path) -> str:
        assert main(["run", str(cfg), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.count("\n") == 1, err  # one line
        assert not (tmp_path / "report" / "attribution.json").exists()
        return err

    ds, b_file = 'folder = "ds"', 'folder = "ds", cases_file = "b.txt"'
    overlap = config(f'{ds}, cases = ["{ids[0]}", "{ids[1]}"]', b_file)
    shared = rf"1 case\(s\) are on both sides: '{ids[1]}'; give each side its own cases or "
    with pytest.raises(ConfigError, match=shared + "cases_file"):
        _nifti_environments(load_config(overlap).data)
    assert f"'{ids[1]}'" in fails(overlap)
    # neither side selects: both hold every case of ds/imagesTr
    err = fails(config(ds, 'folder = "./ds"'))
    assert "neither selects cases, so both hold all 4" in err and f"'{ids[3]}'" in err
    # one side every case, the other some of them
    assert "2 case(s) are on both sides" in fails(config(ds, b_file))
    # the same folder's two splits are different cases
    ts = f'{ds}, split = "Ts"'
    train, test = _nifti_environments(load_config(config(ds, ts)).data)
    assert (train.case_ids, test.case_ids) == (tuple(ids), tuple(test_ids))

    err = fails(config(f'{ds}, cases = ["MS_404"]', ts))
    assert "['MS_404']" in err and str(tmp_path / "ds" / "imagesTr") in err
    err = fails(config(ds, f'{ds}, cases_file = "missing.txt"'))
    assert f"data.target.cases_file '{tmp_path / 'missing.txt'}' does not exist" in err
    err = fails(config(f'{ds}, cases = ["{ids[0]}", "{ids[0]}"]', ts))
    assert f"data.source.cases lists '{ids[0]}' more than once" in err
    (tmp_path / "empty.txt").write_text("# none yet\n\n")
    assert "selects no case" in fails(config(f'{ds}, cases_file = "empty.txt"', ts))
    # a test split without its masks: nothing to score against (a KeyError traceback)
    import shutil

    shutil.rmtree(tmp_path / "ds" / "labelsTs")
    assert "has no labelsTs folder" in fails(config(ds, ts))
