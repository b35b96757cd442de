import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from shiftattr.cli import main


def test_demo_tiny_writes_a_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--tiny", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Ground truth" in printed and "report:" in printed
    for name in (
        "attribution.json",
        "attribution.csv",
        "report.html",
        "truth.json",
        "attribution.png",
        "model.pt",
    ):
        assert (out / name).is_file(), name
    saved = json.loads((out / "attribution.json").read_text())
    assert saved["mechanisms"] == ["D", "X", "Y"]
    assert len(saved["bootstrap_values"]) == 20
    assert saved["settings"]["bootstrap"] == "fixed"  # "auto" with the CNN discriminators
    # "auto" gives mis with the CNN discriminators too, with its bias-aware interval
    assert (saved["settings"]["method"], saved["settings"]["interval"]) == ("mis", "bias_aware")
    # rebuild the report from the saved result alone: the same page, title included
    # (the rebuilt title had lost the metric)
    page = (out / "report.html").read_text()
    assert "<title>shiftattr: " in page and " (dice)</title>" in page
    (out / "report.html").unlink()
    assert main(["report", str(out / "attribution.json")]) == 0
    assert (out / "report.html").read_text() == page


def test_bootstrap_options_override_the_configuration(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--tiny", "--quiet", "--out", str(out), "--bootstrap", "refit"]
    assert main([*args, "--n-bootstrap", "3", "--tolerance", "1e-6", "--n-repeats", "2"]) == 0
    saved = json.loads((out / "attribution.json").read_text())
    assert saved["settings"]["bootstrap"] == "refit"
    assert saved["settings"]["n_repeats"] == 2 and saved["diagnostics"]["repeats"]["n_repeats"] == 2
    assert saved["settings"]["n_bootstrap"] == 3 and len(saved["bootstrap_values"]) == 3
    assert saved["settings"]["tolerance"] == 1e-6
    assert any(w["code"] == "imprecise" for w in saved["warnings"])  # no interval is that tight
    with pytest.raises(SystemExit):  # argparse: exit 2 with the option named
        main(["demo", "--tiny", "--n-bootstrap", "-1"])
    assert "--n-bootstrap: must be 0 or more" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--tiny", "--interval", "wide"])
    assert "--interval: invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--tiny", "--n-repeats", "0"])
    assert "--n-repeats: must be 1 or more" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--tiny", "--tolerance", "0"])
    assert "--tolerance: must be a positive number" in capsys.readouterr().err
    # an override that contradicts the rest is refused before any work, the key named
    assert main(["demo", "--tiny", "--tolerance", "0.02", "--n-bootstrap", "0"]) == 2
    assert "attribution.tolerance is judged against" in capsys.readouterr().err


def _small_config(tmp_path, n: int, attribution: str) -> str:
    """A config file's text: annotators 1 -> 5 at centre 01, ``n`` cases each, a
    one-epoch U-Net, and these ``[attribution]`` lines after mechanisms and n_folds."""
    return f"""
[data]
kind = "synthetic"
shape = [16, 16, 16]
source = {{ center = "01", annotator = "1", n = {n} }}
target = {{ center = "01", annotator = "5", n = {n} }}
train_n = 10
truth_n = 0

[model]
epochs = 1
channels = [4, 8]

[attribution]
mechanisms = ["X", "Y"]
n_folds = 2
{attribution}

[output]
folder = "{(tmp_path / "out").as_posix()}"
"""


def test_run_small_config(tmp_path, capsys):
    cfg = tmp_path / "exp.toml"
    cfg.write_text(
        _small_config(
            tmp_path,
            20,
            "n_bootstrap = 5\ndiscriminator = { epochs = 1, channels = [4], tta = false }",
        )
    )
    assert main(["run", str(cfg), "--quiet"]) == 0
    saved = json.loads((tmp_path / "out" / "attribution.json").read_text())
    assert saved["mechanisms"] == ["X", "Y"]
    assert saved["settings"]["target"] == "center-01/annotator-5"
    assert "Ground truth" not in capsys.readouterr().out
    # paired annotations: "auto" runs mr over both samples on every unpaired level, the
    # image ratios seeing the model's outputs (as measured); --no-both-samples undoes it
    paired = cfg.read_text().replace("n_folds = 2", 'n_folds = 2\npaired = ["Y"]')
    cfg.write_text(paired.replace("n_bootstrap = 5", 'n_bootstrap = 3\nbootstrap = "fixed"'))
    assert main(["run", str(cfg), "--quiet"]) == 0
    settings = json.loads((tmp_path / "out" / "attribution.json").read_text())["settings"]
    assert (settings["method"], settings["both_samples"]) == ("mr", ["D", "X"])
    assert settings["ratio_outputs"] is True and settings["interval"] == "bias_aware"
    assert main(["run", str(cfg), "--quiet", "--no-both-samples"]) == 0
    settings = json.loads((tmp_path / "out" / "attribution.json").read_text())["settings"]
    assert (settings["method"], settings["both_samples"]) == ("mr", [])


def test_offset_child_gives_the_annotation_ratio_the_masks_agreement(tmp_path):
    """``conditional_ratios = "offset_child"`` with the image statistics: the annotation's
    conditional ratio is the offset model on Y's own features, the agreement among them."""
    cfg = tmp_path / "exp.toml"
    text = _small_config(tmp_path, 24, 'n_bootstrap = 2\nbootstrap = "fixed"')
    cfg.write_text(text)
    assert main(["run", str(cfg), "--quiet"]) == 0
    plain = json.loads((tmp_path / "out" / "attribution.json").read_text())
    assert plain["settings"]["ratio_agreement"] is False
    cfg.write_text(text.replace("n_folds = 2", 'n_folds = 2\nconditional_ratios = "offset_child"'))
    assert main(["run", str(cfg), "--quiet"]) == 0
    child = json.loads((tmp_path / "out" / "attribution.json").read_text())
    assert child["settings"]["conditional_ratios"] == "offset_child"
    assert child["settings"]["ratio_agreement"] is True
    per = child["diagnostics"]["mechanisms"]
    assert per["Y"]["offset_penalty"] is not None
    # the annotation's ratio is another one: its separability moves
    assert per["Y"]["auc_joint"] != plain["diagnostics"]["mechanisms"]["Y"]["auc_joint"]


def test_bad_config_is_readable(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(
        '[data]\nkind = "synthetic"\n[attribution]\nn_bootstrap = -3\nsolver = "magic"\n'
    )
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "attribution.n_bootstrap" in err and "attribution.solver" in err


def test_config_contradiction_fails_before_loading_data(tmp_path, capsys):
    # NIfTI folders that do not exist: reading them would fail with a traceback, so an
    # exit status 2 with the key named shows the config was rejected first
    cfg = tmp_path / "nifti.toml"
    cfg.write_text(
        '[data]\nkind = "folder"\nsource = { folder = "nowhere-a" }\n'
        'target = { folder = "nowhere-b" }\n'
    )
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "model.kind = 'train-unet' needs data.kind = 'synthetic'" in err
    assert "Traceback" not in err


def test_report_of_missing_file(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_report_of_a_file_that_is_not_an_attribution(tmp_path, capsys):
    """Were raw JSONDecodeError and KeyError tracebacks."""
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["report", str(bad)]) == 2
    assert "is not JSON as Attribution.to_json writes it" in capsys.readouterr().err
    sweep = tmp_path / "pairs.json"
    sweep.write_text(json.dumps({"environments": ["a", "b"], "mechanisms": ["X"]}))
    assert main(["report", str(sweep)]) == 2
    assert "a pairwise sweep: read it with PairwiseAttribution" in capsys.readouterr().err


def test_an_option_contradicting_the_file_names_both(tmp_path, capsys):
    """The error said "invalid configuration <dict>", naming neither."""
    config = tmp_path / "run.toml"
    config.write_text('[data]\nkind = "synthetic"\n[attribution]\ntruncate = 20.0\n')
    assert main(["run", str(config), "--method", "mis"]) == 2
    err = capsys.readouterr().err
    assert f"{config} with the command-line options --method mis" in err
    assert "<dict>" not in err and "attribution.truncate" in err


def test_bias_aware_interval_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--tiny", "--quiet", "--out", str(out), "--method", "mr"]
    assert main([*args, "--interval", "bias_aware", "--n-bootstrap", "5"]) == 0
    saved = json.loads((out / "attribution.json").read_text())
    assert saved["settings"]["interval"] == "bias_aware"
    assert saved["ci"] == saved["diagnostics"]["estimator"]["bias_aware_ci"]
    assert saved["ci"] != saved["diagnostics"]["estimator"]["bootstrap_ci"]
    assert main([*args, "--interval", "bootstrap", "--n-bootstrap", "5"]) == 0
    saved = json.loads((out / "attribution.json").read_text())
    assert saved["settings"]["interval"] == "bootstrap"
    assert saved["ci"] == saved["diagnostics"]["estimator"]["bootstrap_ci"]
    # importance weighting alone has no second estimator to measure the bias with
    assert main([*args[:-1], "iw", "--interval", "bias_aware"]) == 2
    assert "attribution.interval = 'bias_aware'" in capsys.readouterr().err


def test_pooled_regressions_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--tiny", "--quiet", "--out", str(out), "--n-bootstrap", "3"]
    assert main([*args, "--method", "mr", "--pooled-regressions"]) == 0
    saved = json.loads((out / "attribution.json").read_text())
    assert saved["settings"]["pooled_regressions"] is True
    assert all(f["pooled"] for f in saved["diagnostics"]["estimator"]["regressions"])
    # absent: the configuration's default, "auto", which pools mr on the demo's images
    assert main([*args, "--method", "mr"]) == 0
    settings = json.loads((out / "attribution.json").read_text())["settings"]
    assert settings["pooled_regressions"] is True
    assert settings["pooled_regressions_requested"] == "auto"
    assert "images" in settings["pooled_regressions_reason"]
    assert main([*args, "--method", "mr", "--no-pooled-regressions"]) == 0
    saved = json.loads((out / "attribution.json").read_text())
    assert saved["settings"]["pooled_regressions"] is False
    assert not any(f["pooled"] for f in saved["diagnostics"]["estimator"]["regressions"])
    assert main([*args, "--pooled-regressions"]) == 2  # auto -> mis, which fits no regressions
    assert "attribution.pooled_regressions = true" in capsys.readouterr().err


def test_both_samples_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--tiny", "--quiet", "--out", str(out), "--n-bootstrap", "3"]
    assert main([*args, "--method", "mr", "--both-samples"]) == 0
    saved = json.loads((out / "attribution.json").read_text())
    assert saved["settings"]["both_samples"] == ["D", "X", "Y"]
    est = saved["diagnostics"]["estimator"]
    assert est["both_samples"] == ["D", "X", "Y"] and set(est["own_samples_values"]) == {
        "D",
        "X",
        "Y",
    }
    assert main([*args, "--both-samples"]) == 2  # auto -> mis, which has no terms to pool
    assert "attribution.both_samples needs attribution.method 'mr'" in capsys.readouterr().err


def test_cross_check_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--tiny", "--quiet", "--out", str(out), "--n-bootstrap", "3"]
    assert main([*args, "--cross-check"]) == 0
    saved = json.loads((out / "attribution.json").read_text())
    assert saved["settings"]["cross_check"] is True
    est = saved["diagnostics"]["estimator"]
    assert set(est["check_values"]) == set(saved["values"]) and "difference_ci" in est
    assert est["check"]["name"] == "regression" and est["check"]["regressions"]
    assert main([*args, "--method", "mr", "--cross-check"]) == 2
    assert "attribution.cross_check = true" in capsys.readouterr().err


def test_extended_statistics_and_ratio_outputs_from_the_command_line(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--tiny", "--quiet", "--out", str(out), "--n-bootstrap", "3"]
    args += ["--image-estimator", "stats"]  # the tiny demo tests the CNN discriminators
    assert main([*args, "--image-statistics", "basic", "--no-ratio-outputs"]) == 0
    basic = json.loads((out / "attribution.json").read_text())
    assert basic["settings"]["estimator_params"]["X"]["statistics"] == "basic"
    assert basic["settings"]["ratio_outputs"] is False
    assert main([*args, "--no-ratio-outputs"]) == 0  # extended by default
    ext = json.loads((out / "attribution.json").read_text())
    assert ext["settings"]["bootstrap"] == "refit"  # "auto" with the image statistics
    params = ext["settings"]["estimator_params"]
    assert params["X"]["statistics"] == params["Y"]["statistics"] == "extended"
    assert main(args) == 0  # "auto": the outputs, with the image statistics and "mis"
    outs = json.loads((out / "attribution.json").read_text())
    assert outs["settings"]["ratio_outputs"] is True
    # what was built: extra_features is kept in the parameters only when it is None
    assert "extra_features" not in outs["settings"]["estimator_params"]["X"]
    assert "extra_features" in ext["settings"]["estimator_params"]["X"]
    assert main([*args, "--method", "mr", "--n-bootstrap", "2"]) == 0  # "auto": not for mr
    mr = json.loads((out / "attribution.json").read_text())["settings"]
    assert mr["ratio_outputs"] is False and "extra_features" in mr["estimator_params"]["X"]
    # other features, other ratios: the acquisition mechanism's AUC moves at each step
    auc = [r["diagnostics"]["mechanisms"]["X"]["auc_joint"] for r in (basic, ext, outs)]
    assert len(set(auc)) == 3, auc
    assert main([*args, "--image-estimator", "cnn", "--image-statistics", "extended"]) == 2


def test_overrides_keep_the_rest_of_the_configuration():
    """An override re-validates a dump of the whole configuration: the tiny demo's CNN
    discriminators must survive it, and so must a folder set after loading (``--out``)."""
    import argparse

    from shiftattr.cli import _override
    from shiftattr.config import load_config
    from shiftattr.pipeline import demo_config

    cfg = _override(demo_config("x", tiny=True), argparse.Namespace(method="mis"))
    assert (cfg.attribution.method, cfg.attribution.image_estimator) == ("mis", "cnn")
    assert cfg.model.epochs == 2 and cfg.data.shape == (16, 16, 16)
    assert cfg.attribution.image_statistics is None
    loaded = load_config({"data": {"kind": "synthetic"}})  # no [output] table
    loaded.output.folder = Path("elsewhere")
    assert _override(loaded, argparse.Namespace(method="mr")).output.folder == Path("elsewhere")


def test_n_jobs_runs_the_fits_in_processes_with_the_same_numbers(tmp_path, monkeypatch):
    import shiftattr.pipeline as pipeline

    passed = []
    real = pipeline.attribute
    monkeypatch.setattr(
        pipeline, "attribute", lambda *a, **kw: passed.append(kw["n_jobs"]) or real(*a, **kw)
    )
    args = ["demo", "--tiny", "--quiet", "--n-bootstrap", "3", "--image-estimator", "stats"]
    results = {}
    for jobs in ("1", "2"):
        out = tmp_path / jobs
        assert main([*args, "--out", str(out), "--n-jobs", jobs]) == 0
        results[jobs] = json.loads((out / "attribution.json").read_text())
    assert results["2"]["settings"]["bootstrap"] == "refit"
    # with the image statistics the command line's defaults are mis with bias-aware intervals
    assert results["1"]["settings"]["method"] == "mis"
    assert results["1"]["settings"]["interval"] == "bias_aware"
    assert [results[j]["settings"]["n_jobs"] for j in ("1", "2")] == [1, 2] == passed
    assert results["2"]["values"] == pytest.approx(results["1"]["values"], abs=1e-12)
    for m, ci in results["1"]["ci"].items():
        assert results["2"]["ci"][m] == pytest.approx(ci, abs=1e-12), m
    with pytest.raises(SystemExit):  # argparse: "must be 1 or more, or -1"
        main([*args, "--out", str(tmp_path / "0"), "--n-jobs", "0"])


def test_the_demo_runs_two_processes_with_the_outputs_in_its_ratios():
    from shiftattr.pipeline import demo_config

    a = demo_config("x").attribution
    assert (a.n_jobs, a.ratio_outputs, a.ratio_outputs_mode, a.bootstrap_mode) == (
        2,
        "auto",
        True,
        "refit",
    )
    tiny = demo_config("x", tiny=True).attribution  # CNN discriminators: no outputs
    assert (tiny.n_jobs, tiny.ratio_outputs_mode, tiny.bootstrap_mode) == (1, False, "fixed")


def test_a_metric_the_empty_policy_leaves_infinite_is_a_data_error_with_the_key(
    tmp_path, monkeypatch, capsys
):
    """hausdorff95 is infinite where exactly one mask is empty: the run ended in a
    traceback whose advice (empty=0.0, an EmptyPolicy) named no configuration key."""
    import shiftattr.pipeline as pipeline
    from shiftattr.metrics import check_finite_metric

    def infinite(*args, **kwargs):
        check_finite_metric([0.5, float("inf")], metric_name="hausdorff95")

    monkeypatch.setattr(pipeline, "attribute", infinite)
    args = ["demo", "--tiny", "--quiet", "--n-bootstrap", "0", "--out", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "not finite for 1 of 2 cases" in err and "attribution.empty" in err


def _saved(folder: Path, value: float) -> Path:
    """A small saved result, as ``shiftattr run`` writes it."""
    import shiftattr as sa

    folder.mkdir(parents=True, exist_ok=True)
    res = sa.Attribution(("X",), {"X": value}, {"X": (value - 0.1, value + 0.1)}, {}, 0.8, 0.7)
    path = folder / "attribution.json"
    res.to_json(path)
    return path


def test_report_replaces_no_other_result_and_keeps_a_truth_it_cannot_use(tmp_path, capsys):
    """It wrote attribution.json beside its input, replacing another run's, and deleted
    a truth.json whose stamp did not match: a costly ground truth lost."""
    mine = _saved(tmp_path / "mine", 0.1)
    other = tmp_path / "mine" / "other.json"
    other.write_text(_saved(tmp_path / "o", 0.3).read_text())
    before = mine.read_text()
    assert main(["report", str(other)]) == 2
    assert "would replace" in capsys.readouterr().err and mine.read_text() == before
    assert main(["report", str(other), "--out", str(tmp_path / "other-report")]) == 0
    assert json.loads((tmp_path / "other-report" / "attribution.json").read_text())["values"] == {
        "X": 0.3
    }
    truth = tmp_path / "mine" / "truth.json"
    truth.write_text(json.dumps({"values": {"X": 0.1}}))  # not stamped: not used, kept
    assert main(["report", str(mine)]) == 0
    assert "was not used" in capsys.readouterr().err
    assert json.loads(truth.read_text()) == {"values": {"X": 0.1}}
    assert main(["report", str(tmp_path / "mine")]) == 2
    assert "is not a file" in capsys.readouterr().err


def test_a_config_that_is_a_folder_or_not_utf8_is_a_readable_error(tmp_path, capsys):
    assert main(["run", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    bad = tmp_path / "run.toml"
    bad.write_bytes(b'[data]\nkind = "synth\xe9tic"\n')  # Latin-1, not UTF-8
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "cannot be read as TOML" in err and "Traceback" not in err


def test_report_may_rewrite_its_own_output_folder(tmp_path, capsys):
    mine = _saved(tmp_path / "run", 0.1)
    out = tmp_path / "html"
    assert main(["report", str(mine), "--out", str(out)]) == 0
    assert main(["report", str(mine), "--out", str(out)]) == 0  # the same result again
    (tmp_path / "afile").write_text("x")
    assert main(["report", str(mine), "--out", str(tmp_path / "afile")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
