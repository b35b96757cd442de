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


def _site(
    folder: Path, n: int, seed: int, contrast: float, affine: np.ndarray, scale: float = 1.0
) -> None:
    """``n`` cases of a bright sphere in noise, with its mask, and a manifest."""
    rng = np.random.default_rng(seed)
    grid = np.indices(SHAPE).astype(np.float32)
    folder.mkdir(parents=True)
    rows = ["case_id,image,label"]
    for i in range(n):
        centre = rng.uniform(5, 11, size=3)
        radius = rng.uniform(2, 4)
        mask = ((grid - centre[:, None, None, None]) ** 2).sum(0) <= radius**2
        img = scale * (1.0 + contrast * mask + rng.normal(0, 0.3, SHAPE))
        nib.save(nib.Nifti1Image(img.astype(np.float32), affine), str(folder / f"c{i}.nii.gz"))
        nib.save(nib.Nifti1Image(mask.astype(np.uint8), affine), str(folder / f"c{i}_seg.nii.gz"))
        rows.append(f"c{i},c{i}.nii.gz,c{i}_seg.nii.gz")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")


def _config(
    tmp_path: Path, model: str = "", factory: str = "threshold_net", **attribution: str
) -> Path:
    """A configuration next to its data, with relative paths (read from its folder);
    ``model`` and ``attribution``: more keys of those tables, as TOML lines/values."""
    import tiny_models

    torch.save(getattr(tiny_models, factory)().state_dict(), tmp_path / "net.pt")
    extra = "".join(f"{k} = {v}\n" for k, v in attribution.items())
    cfg = tmp_path / "exp.toml"
    cfg.write_text(
        '[data]\nkind = "folder"\nsource = { folder = "site-A" }\n'
        'target = { folder = "site-B" }\n'
        '[model]\nkind = "checkpoint"\n'
        f'factory = "tiny_models:{factory}"\ncheckpoint = "net.pt"\n{model}'
        '[attribution]\nn_folds = 2\nn_bootstrap = 5\nbootstrap = "fixed"\n'
        f'image_statistics = "basic"\nratio_outputs = false\n{extra}'
        '[output]\nfolder = "report"\n'
    )
    return cfg


def test_run_on_two_sites_with_other_orientation_and_voxel_size(tmp_path, monkeypatch):
    ras = np.diag([1.0, 1.0, 1.0, 1.0])
    lps = np.diag([-1.0, -1.0, 3.0, 1.0])  # another export convention, 3 mm slices
    _site(tmp_path / "site-A", 24, seed=0, contrast=1.5, affine=ras)
    _site(tmp_path / "site-B", 24, seed=1, contrast=0.9, affine=lps)  # fainter lesions
    cfg = _config(tmp_path, metric='"hausdorff95"', empty='"best"')
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
