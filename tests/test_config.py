import re

import pytest

from shiftattr.config import AttributionConfig, ConfigError, load_config


def test_defaults_and_toml(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        '[data]\nkind = "synthetic"\nshape = [16, 16, 16]\n'
        'target = { center = "03", annotator = "4", n = 30 }\n'
        '[attribution]\nn_bootstrap = 10\nbootstrap = "refit"\n'
    )
    cfg = load_config(path)
    assert cfg.data.target.annotator == "4" and cfg.data.target.n == 30
    assert cfg.data.source.center == ["01", "07", "08"]
    assert cfg.attribution.bootstrap == "refit"
    assert cfg.attribution.image_statistics is None  # unset: ImageStatsRatio's default
    # CNN discriminators with the statistics left unset are no conflict, and a dumped
    # configuration validates again (the CLI's overrides round-trip through a dump)
    cnn = load_config({"data": {"kind": "synthetic"}, "attribution": {"image_estimator": "cnn"}})
    assert load_config(cnn.model_dump()).attribution.image_estimator == "cnn"
    # the bootstrap: refit with the image statistics, fixed with the CNN discriminators,
    # whatever is set explicitly otherwise
    plain = load_config({"data": {"kind": "synthetic"}})
    assert plain.attribution.bootstrap == "auto" and plain.attribution.bootstrap_mode == "refit"
    assert cnn.attribution.bootstrap_mode == "fixed"
    assert cfg.attribution.bootstrap_mode == "refit"
    fixed = load_config({"data": {"kind": "synthetic"}, "attribution": {"bootstrap": "fixed"}})
    assert fixed.attribution.bootstrap_mode == "fixed"


@pytest.mark.parametrize(
    ("raw", "pattern"),
    [
        ({"data": {"kind": "synthetic"}, "atribution": {}}, r"atribution: Extra inputs"),
        ({"data": {"kind": "synthetic", "source": {"n": 2}}}, r"  data\.source\.n: "),
        ({"data": {"kind": "synthetic"}, "attribution": {"n_folds": 1}}, r"attribution\.n_folds"),
        (
            {"data": {"kind": "synthetic"}, "attribution": {"n_repeats": 0}},
            r"attribution\.n_repeats",
        ),
        (
            {
                "data": {"kind": "synthetic"},
                "attribution": {"interval": "bias_aware", "method": "iw"},
            },
            r"attribution\.interval = 'bias_aware': .* needs method='mr', 'regression', 'generative' or 'mis'",
        ),
        (
            {
                "data": {"kind": "synthetic"},
                "attribution": {"interval": "bias_aware", "method": "mr", "n_bootstrap": 0},
            },
            r"attribution\.interval = 'bias_aware': .* n_bootstrap of 2 or more \(got 0\)",
        ),
        (
            {"data": {"kind": "synthetic"}, "attribution": {"interval": "wide"}},
            r"attribution\.interval",
        ),
        (
            {"data": {"kind": "synthetic"}, "attribution": {"pooled_regressions": True}},
            r"attribution\.pooled_regressions = true needs attribution\.method 'mr'",
        ),
        (
            {
                "data": {"kind": "synthetic"},
                "attribution": {"image_estimator": "cnn", "image_statistics": "basic"},
            },
            r"attribution\.image_statistics sets the image-statistics ratio estimator, but "
            r"attribution\.image_estimator = 'cnn': remove it",
        ),
        (
            {
                "data": {"kind": "synthetic"},
                "attribution": {
                    "image_estimator": "cnn",
                    "image_statistics": "extended",
                    "ratio_outputs": True,
                },
            },
            r"attribution\.image_statistics and attribution\.ratio_outputs set the "
            r"image-statistics ratio estimator, .* remove them",
        ),
        (
            {"data": {"kind": "synthetic"}, "attribution": {"image_statistics": "full"}},
            r"attribution\.image_statistics",
        ),
        (
            {"data": {"kind": "synthetic"}, "attribution": {"both_samples": True}},
            r"attribution\.both_samples needs attribution\.method 'mr' \(got 'mis' "
            r"\(attribution\.method = 'auto' resolves to 'mis'",
        ),
        (
            {
                "data": {"kind": "synthetic"},
                "attribution": {"method": "mr", "both_samples": ["X", "S"]},
            },
            r"attribution\.both_samples must name nodes among D, X, Y, got \['X', 'S'\]",
        ),
        (
            {
                "data": {"kind": "synthetic"},
                "attribution": {"method": "mr", "both_samples": ["X", "Y"], "paired": ["Y"]},
            },
            r"attribution\.both_samples names \['Y'\], which attribution\.paired substitutes",
        ),
        (
            {"data": {"kind": "synthetic"}, "attribution": {"cross_check": True, "method": "mr"}},
            r"attribution\.cross_check = true is for attribution\.method 'iw'",
        ),
        ({"data": {"kind": "msseg2016", "source": {}, "target": {}}}, r"data\.root is required"),
        ({"data": {"kind": "weird"}}, r"data: Input tag 'weird'"),
        ({"data": {"kind": "synthetic"}, "model": {"kind": "checkpoint"}}, r"model\.factory"),
        # semantic errors: caught before any data is read
        (
            {"data": {"kind": "folder", "source": {"folder": "a"}, "target": {"folder": "b"}}},
            r"model\.kind = 'train-unet' needs data\.kind = 'synthetic' \(got 'folder'\)",
        ),
        (
            {
                "data": {"kind": "synthetic"},
                "model": {"kind": "checkpoint", "factory": "no_colon", "checkpoint": "c.pt"},
            },
            r"model: .*model\.factory must look like 'package\.module:function'",
        ),
        (
            {"data": {"kind": "synthetic"}, "attribution": {"metric": "jaccard"}},
            r"attribution: .*unknown metric 'jaccard'; available metrics: dice",
        ),
        ({"data": {"kind": "synthetic"}, "attribution": {"empty": "zeros"}}, r"attribution\.empty"),
        (
            {"data": {"kind": "synthetic"}, "attribution": {"mechanisms": ["X", "Z"]}},
            r"attribution\.mechanisms must name distinct nodes among D, X, Y",
        ),
        (
            {"data": {"kind": "synthetic"}, "attribution": {"mechanisms": ["X", "X"]}},
            r"attribution\.mechanisms must name distinct",
        ),
        (
            {"data": {"kind": "synthetic"}, "attribution": {"mechanisms": ["X"], "paired": ["Y"]}},
            r"attribution\.paired names \['Y'\], which are not attributed mechanisms \(X\)",
        ),
        (
            {
                "data": {"kind": "folder", "source": {"folder": "a"}, "target": {"folder": "b"}},
                "model": {"kind": "checkpoint", "factory": "m:f", "checkpoint": "c.pt"},
                "attribution": {"paired": ["Y"]},
            },
            r"attribution\.paired = \['Y'\] needs readings of the same cases by both sides, "
            r"which data\.kind = 'folder' does not load",
        ),
        (
            {"data": {"kind": "synthetic"}, "attribution": {"paired": ["X", "Y"]}},
            r"attribution\.paired = \['X', 'Y'\]: only the annotation Y can be paired",
        ),
        (
            {"data": {"kind": "synthetic"}, "attribution": {"tolerance": 0.02, "n_bootstrap": 0}},
            r"attribution\.tolerance is judged against the bootstrap intervals",
        ),
        (
            {"data": {"kind": "synthetic"}, "attribution": {"tolerance": -0.1}},
            r"attribution\.tolerance",
        ),
        (
            {"data": {"kind": "synthetic"}, "attribution": {"tolerance": float("inf")}},
            r"attribution\.tolerance",
        ),
        (
            {"data": {"kind": "synthetic"}, "attribution": {"correction_cap": 0.5}},
            r"attribution\.correction_cap",
        ),
        (
            {"data": {"kind": "synthetic"}, "attribution": {"n_jobs": 0}},
            r"attribution\.n_jobs must be a number of processes",
        ),
        ({"data": {"kind": "synthetic"}, "attribution": {"n_jobs": -2}}, r"attribution\.n_jobs"),
        (  # attribute() refuses an infinite cap: the configuration says so before any data
            {"data": {"kind": "synthetic"}, "attribution": {"correction_cap": float("inf")}},
            r"attribution\.correction_cap",
        ),
    ],
)
def test_errors_name_the_key(raw, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(raw)


def test_empty_policy_is_read_as_the_metrics_read_it():
    cfg = load_config({"data": {"kind": "synthetic"}, "attribution": {"empty": " One "}})
    assert cfg.attribution.empty == "one"


def test_empty_policy_default_scores_a_correctly_empty_case_as_perfect_for_any_metric():
    # the default was "one", which gave a case with both masks empty a Hausdorff
    # distance of 1 (as bad as missing a lesion) when the metric was hausdorff95
    for metric in ("dice", "hausdorff95", "volume_difference", "lesion_f1"):
        cfg = load_config({"data": {"kind": "synthetic"}, "attribution": {"metric": metric}})
        assert cfg.attribution.empty == "best"
    for name in ("hausdorff95", " Hausdorff95", "volume-difference"):  # as get_metric reads
        with pytest.raises(ConfigError, match=r"attribution.*empty = 'one'.*'best'"):
            load_config(
                {"data": {"kind": "synthetic"}, "attribution": {"metric": name, "empty": "one"}}
            )


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


@pytest.mark.parametrize("cap, expected", [("sqrt", "sqrt"), ("none", "none"), (20, 20.0)])
def test_correction_cap_values(cap, expected):
    raw = {"data": {"kind": "synthetic"}, "attribution": {"correction_cap": cap, "method": "mr"}}
    assert load_config(raw).attribution.correction_cap == expected


@pytest.mark.parametrize(
    ("raw", "pattern"),
    [  # each was accepted and failed at run time with a traceback, or was ignored
        (
            {"data": {"kind": "synthetic", "target": {"center": "99"}}},
            r"data\.target.*unknown center '99'; available: \['01', '03'",
        ),
        (
            {"data": {"kind": "synthetic", "source": {"center": ["01", "7"]}}},
            r"data\.source.*unknown center '7'; available",
        ),
        (
            {"data": {"kind": "synthetic", "source": {"population": "olderr"}}},
            r"data\.source.*unknown population 'olderr'; available",
        ),
        (
            {"data": {"kind": "synthetic", "target": {"annotator": "8"}}},
            r"data\.target.*unknown annotator '8'; available",
        ),
        ({"data": {"kind": "synthetic"}, "model": {"channels": []}}, r"model\.channels"),
        ({"data": {"kind": "synthetic"}, "model": {"channels": [8, 0]}}, r"model\.channels"),
        (  # mis (what 'auto' is here) has no corrections to cap: it was silently ignored
            {"data": {"kind": "synthetic"}, "attribution": {"correction_cap": 2.0}},
            r"attribution\.correction_cap caps .* 'mis' has none \(attribution\.method = 'auto'",
        ),
        (
            {"data": {"kind": "synthetic"}, "attribution": {"empty": {"neither": 1.0}}},
            r"attribution\.empty = \{'neither': 1\.0\}",
        ),
    ],
)
def test_values_the_run_cannot_use_are_errors_naming_the_key(raw, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(raw)


@pytest.mark.parametrize(("value", "expected"), [("auto", "auto"), (1, 1), ([2, 2, 1], (2, 2, 1))])
def test_discriminator_downsample_reaches_the_cnn(value, expected):
    pytest.importorskip("torch")
    raw = {"data": {"kind": "synthetic"}, "attribution": {"discriminator": {"downsample": value}}}
    cnn = load_config(raw).attribution.discriminator.build(spatial_dims=3)
    assert cnn.downsample == expected


@pytest.mark.parametrize("value", ["half", 0, [2, 0, 2], True, [2], [2, 2, 2, 2]])
def test_a_bad_discriminator_downsample_names_the_key(value):
    raw = {"data": {"kind": "synthetic"}, "attribution": {"discriminator": {"downsample": value}}}
    with pytest.raises(ConfigError, match=r"discriminator\.downsample"):
        load_config(raw)


def test_empty_policy_can_be_a_number_or_a_table():
    """A distance is infinite where exactly one mask is empty; the error told the user to
    pass empty=0.0 or an EmptyPolicy, which the configuration did not accept."""
    from shiftattr.metrics import EmptyPolicy, resolve_empty_policy

    table = {"both": 0, "reference": 40, "prediction": 40.0}
    for empty, policy in ((0.0, EmptyPolicy(both=0.0)), (table, EmptyPolicy(0.0, 40.0, 40.0))):
        raw = {"data": {"kind": "synthetic"}, "attribution": {"metric": "hausdorff95"}}
        raw["attribution"]["empty"] = empty
        assert resolve_empty_policy(load_config(raw).attribution.empty) == policy


@pytest.mark.parametrize(
    ("data", "ignored"),
    [
        (
            {"kind": "folder", "source": {"folder": "a", "centers": ["01"]}, "target": {"folder": "b"}},
            "data.source.centers",
        ),
        (
            {"kind": "nnunet", "modalities": ["T1"], "source": {"folder": "a"}, "target": {"folder": "b"}},
            "data.modalities",
        ),
        (
            {"kind": "nnunet", "source": {"folder": "a"}, "target": {"folder": "b", "manifest": "m.csv"}},
            "data.target.manifest",
        ),
        ({"kind": "msseg2016", "root": "r", "source": {"folder": "a"}, "target": {}}, "data.source.folder"),
        (
            {"kind": "folder", "source": {"folder": "a", "cases": ["c0"]}, "target": {"folder": "b"}},
            "data.source.cases",
        ),
        (
            {"kind": "folder", "source": {"folder": "a"}, "target": {"folder": "b", "split": "Ts"}},
            "data.target.split",
        ),
        (
            {"kind": "msseg2016", "root": "r", "source": {"cases": ["c0"]}, "target": {}},
            "data.source.cases",
        ),
        (
            {"kind": "msseg2016", "root": "r", "source": {}, "target": {"cases_file": "t.txt"}},
            "data.target.cases_file",
        ),
    ],
)  # fmt: skip
def test_nifti_keys_the_kind_does_not_read_are_errors(data, ignored):
    """A key another NIfTI kind reads would otherwise be ignored without a word."""
    model = {"kind": "checkpoint", "factory": "m:f", "checkpoint": "c.pt"}
    with pytest.raises(ConfigError, match=rf"{re.escape(ignored)} not read with data\.kind"):
        load_config({"data": data, "model": model})


def test_nifti_keys_the_kind_reads_are_accepted():
    model = {"kind": "checkpoint", "factory": "m:f", "checkpoint": "c.pt"}
    msseg = {
        "kind": "msseg2016",
        "root": "r",
        "modalities": ["FLAIR", "T1"],
        "source": {"centers": ["01"], "annotators": ["1", "4"], "patients": ["01"]},
        "target": {"centers": ["03"], "label": "4"},
    }
    folder = {
        "kind": "folder",
        "source": {"folder": "a", "manifest": "m.csv"},
        "target": {"folder": "b"},
    }
    for data in (msseg, folder):
        assert load_config({"data": data, "model": model}).data.kind == data["kind"]


def test_nifti_configs_survive_a_command_line_override():
    """``shiftattr run FILE --method mr`` dumps the whole configuration and validates it
    again: defaults written out must not count as keys the kind does not read."""
    import argparse

    from shiftattr.cli import _override

    model = {"kind": "checkpoint", "factory": "m:f", "checkpoint": "c.pt"}
    for data in (
        {"kind": "msseg2016", "root": "r", "source": {"centers": ["01"]}, "target": {"label": "4"}},
        {"kind": "folder", "source": {"folder": "a"}, "target": {"folder": "b"}},
        {"kind": "nnunet", "source": {"folder": "a"}, "target": {"folder": "b"}},
    ):
        cfg = load_config({"data": data, "model": model})
        assert load_config(cfg.model_dump()).data == cfg.data  # the round trip
        new = _override(cfg, argparse.Namespace(method="mr"))
        assert new.attribution.method == "mr" and new.data == cfg.data


def test_msseg2016_pairing_needs_one_rater_per_side():
    model = {"kind": "checkpoint", "factory": "m:f", "checkpoint": "c.pt"}
    data = {"kind": "msseg2016", "root": "r", "source": {"annotators": ["1", "2"]}, "target": {}}
    with pytest.raises(ConfigError, match=r"lists several raters per side"):
        load_config({"data": data, "model": model, "attribution": {"paired": ["Y"]}})
    named = {"paired": {"Y": "annotator-4"}}  # explicit keys: the user's choice
    assert load_config({"data": data, "model": model, "attribution": named}).attribution.paired


def test_method_auto_is_mis_unless_an_option_rules_it_out():
    """``method = "auto"`` resolves to what was measured best, and never to an estimator
    the other settings rule out."""
    from shiftattr.config import AttributionConfig

    assert AttributionConfig().method == "auto"
    assert AttributionConfig().method_mode == "mis"
    # measured with the CNN discriminators too (benchmarks: mis+cnnratio against iw+cnnratio)
    assert AttributionConfig(image_estimator="cnn").method_mode == "mis"
    for blocking in ({"truncate": 20.0}, {"cross_check": True}):
        cfg = AttributionConfig(**blocking)  # valid: 'mis' takes none of these
        assert cfg.method_mode == "iw", blocking
    # paired: mr over both samples, the most accurate setting measured with pairs
    paired = AttributionConfig(paired=["Y"])
    assert (paired.method_mode, paired.both_samples_mode) == ("mr", True)
    assert paired.ratio_outputs_mode  # as measured (mr+pooled+ext+outputs+both+paired)
    assert AttributionConfig(paired=["Y"], truncate=20.0).method_mode == "iw"
    assert AttributionConfig(method="mr").method_mode == "mr"
    assert AttributionConfig(method="iw").method_mode == "iw"
    # the checks judge the resolved method
    with pytest.raises(ValueError, match=r"'mis' fits no regressions.*'auto' resolves to 'mis'"):
        AttributionConfig(pooled_regressions=True)
    with pytest.raises(ValueError, match=r"got method='iw'.*'auto' resolves to 'iw' here"):
        AttributionConfig(truncate=20.0, interval="bias_aware")
    cnn = AttributionConfig(image_estimator="cnn", interval="bias_aware")  # auto -> mis
    assert (cnn.method_mode, cnn.bootstrap_mode) == ("mis", "fixed")
    # the demo's own configuration runs mis
    from shiftattr.pipeline import demo_config

    assert demo_config().attribution.method_mode == "mis"
    with pytest.raises(ValueError, match=r"attribution\.method 'mis' takes neither"):
        AttributionConfig(method="mis", paired=["Y"])
    with pytest.raises(ValueError, match="needs method='mr', 'regression', 'generative' or 'mis'"):
        AttributionConfig(interval="bias_aware", cross_check=True)  # auto -> iw


def test_both_samples_with_paired_nodes_is_valid():
    cfg = AttributionConfig(method="mr", both_samples=True, paired=["Y"])
    assert cfg.both_samples_mode is True and cfg.method_mode == "mr"
    assert AttributionConfig(method="mr").both_samples_mode is False  # auto: no pairs
    assert AttributionConfig(both_samples=["X"], method="mr").both_samples_mode == ["X"]


def test_paths_in_a_file_are_read_from_its_folder(tmp_path, monkeypatch):
    """A configuration runs the same from any working directory: its relative paths are
    the file's neighbours, ``~`` is the home folder; a dict keeps its paths as given."""
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "exp.toml"
    path.write_text(
        '[data]\nkind = "folder"\nsource = { folder = "../data/site-A" }\n'
        'target = { folder = "~/site-B" }\n'
        '[model]\nkind = "checkpoint"\nfactory = "m:f"\ncheckpoint = "/models/net.pt"\n'
        '[output]\nfolder = "reports/exp"\n'
    )
    monkeypatch.chdir(tmp_path.parent)  # anywhere but the file's folder
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cfg = load_config(path)
    assert cfg.data.source.folder == folder / "../data/site-A"
    assert cfg.data.target.folder == tmp_path / "home" / "site-B"
    assert str(cfg.model.checkpoint) == "/models/net.pt"  # absolute: untouched
    assert cfg.output.folder == folder / "reports/exp"
    as_dict = load_config({"data": {"kind": "synthetic"}, "output": {"folder": "rel"}})
    assert str(as_dict.output.folder) == "rel"
    path.write_text(path.read_text().replace('[output]\nfolder = "reports/exp"\n', ""))
    assert str(load_config(path).output.folder) == "shiftattr-report"  # the default: cwd


def test_nnunet_sides_select_cases_of_a_split(tmp_path, monkeypatch):
    """One nnU-Net dataset split into two sites: ``cases``, ``cases_file`` (a path read
    from the file's folder, as ``folder`` is) and ``split``, one selection per side."""
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "exp.toml"
    path.write_text(
        '[data]\nkind = "nnunet"\n'
        'source = { folder = "../Dataset001_MS", cases = ["MS_000", "MS_001"] }\n'
        'target = { folder = "../Dataset001_MS", cases_file = "lists/site-B.txt", '
        'split = "Ts" }\n'
        '[model]\nkind = "checkpoint"\nfactory = "m:f"\ncheckpoint = "net.pt"\n'
    )
    monkeypatch.chdir(tmp_path.parent)  # anywhere but the file's folder
    cfg = load_config(path)
    source, target = cfg.data.source, cfg.data.target
    assert source.cases == ["MS_000", "MS_001"] and source.cases_file is None
    assert source.split == "Tr"  # the default: imagesTr / labelsTr
    assert target.cases is None and target.split == "Ts"
    assert target.cases_file == folder / "lists/site-B.txt"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path.write_text(path.read_text().replace("lists/site-B.txt", "~/site-B.txt"))
    assert load_config(path).data.target.cases_file == tmp_path / "home" / "site-B.txt"
    assert load_config(cfg.model_dump()).data == cfg.data  # the command line's round trip

    model = {"kind": "checkpoint", "factory": "m:f", "checkpoint": "c.pt"}
    both = {"folder": "a", "cases": ["MS_000"], "cases_file": "a.txt"}
    data = {"kind": "nnunet", "source": {"folder": "a"}, "target": both}
    with pytest.raises(ConfigError, match=r"data\.target\.cases and data\.target\.cases_file"):
        load_config({"data": data, "model": model})
    for bad, pattern in (
        ({"folder": "a", "split": "Val"}, r"data\.source\.split: Input should be 'Tr' or 'Ts'"),
        ({"folder": "a", "cases": []}, r"data\.source\.cases: List should have at least 1"),
    ):
        with pytest.raises(ConfigError, match=pattern):
            load_config(
                {"data": {**data, "source": bad, "target": {"folder": "b"}}, "model": model}
            )


def test_error_locations_name_the_key_not_the_kind():
    model = {"kind": "checkpoint", "factory": "m:f", "checkpoint": "c.pt"}
    data = {"kind": "folder", "source": {"folder": "a", "labl": "x"}, "target": {"folder": "b"}}
    with pytest.raises(ConfigError) as err:
        load_config({"data": data, "model": model})
    assert "  data.source.labl: Extra inputs are not permitted" in str(err.value)
    with pytest.raises(ConfigError, match=r"  data\.shape\.0: "):
        load_config({"data": {"kind": "synthetic", "shape": ["x"]}})


def test_foreground_picks_one_label_of_label_maps():
    model = {"kind": "checkpoint", "factory": "m:f", "checkpoint": "c.pt"}
    data = {"kind": "nnunet", "source": {"folder": "a"}, "target": {"folder": "b"}}
    assert load_config({"data": data, "model": model}).data.foreground is None
    cfg = load_config({"data": {**data, "foreground": 2}, "model": model})
    assert cfg.data.foreground == 2
    with pytest.raises(ConfigError, match=r"data\.foreground: Input should be greater"):
        load_config({"data": {**data, "foreground": 0}, "model": model})
    for loose in (True, "2", 1.0):  # not silently 1 or 2
        with pytest.raises(ConfigError, match=r"data\.foreground: Input should be a valid int"):
            load_config({"data": {**data, "foreground": loose}, "model": model})
    with pytest.raises(ConfigError, match=r"data\.foreground: Extra inputs"):
        load_config({"data": {"kind": "synthetic", "foreground": 1}})


def test_model_preprocess_names_a_known_function_for_a_loaded_model():
    from shiftattr.config import _PREPROCESSORS

    segmentation = pytest.importorskip("shiftattr.segmentation")
    assert tuple(segmentation.PREPROCESSORS) == _PREPROCESSORS  # validated without torch
    data = {"kind": "folder", "source": {"folder": "a"}, "target": {"folder": "b"}}
    model = {"kind": "checkpoint", "factory": "m:f", "checkpoint": "c.pt"}
    for spec in ("zscore", "my_project.norm:nnunet_ct"):
        cfg = load_config({"data": data, "model": {**model, "preprocess": spec}})
        assert cfg.model.preprocess == spec
    with pytest.raises(ConfigError, match=r"model: .*one of 'zscore' or look like"):
        load_config({"data": data, "model": {**model, "preprocess": "minmax"}})
    with pytest.raises(
        ConfigError,
        match=r"model\.preprocess not read with model\.kind = 'train-unet'.*read with model\.kind = 'checkpoint'",
    ):
        load_config({"data": {"kind": "synthetic"}, "model": {"preprocess": "zscore"}})


def test_model_output_channel_is_for_a_loaded_model():
    data = {"kind": "folder", "source": {"folder": "a"}, "target": {"folder": "b"}}
    model = {"kind": "checkpoint", "factory": "m:f", "checkpoint": "c.pt"}
    assert load_config({"data": data, "model": model}).model.output_channel is None
    cfg = load_config({"data": data, "model": {**model, "output_channel": 2}})
    assert cfg.model.output_channel == 2
    with pytest.raises(ConfigError, match=r"model\.output_channel: Input should be greater"):
        load_config({"data": data, "model": {**model, "output_channel": -1}})
    with pytest.raises(
        ConfigError,
        match=r"model\.output_channel not read with model\.kind = 'train-unet'.*read with model\.kind = 'checkpoint'",
    ):
        load_config({"data": data, "model": {"output_channel": 2}})
    saved = {"kind": "folder", "source": {"folder": "a", "prediction_column": "p"}}
    saved["target"] = {"folder": "b", "prediction_column": "p"}
    with pytest.raises(ConfigError, match=r"model\.output_channel not read"):
        load_config({"data": saved, "model": {"kind": "predictions", "output_channel": 2}})


def test_the_prediction_cache_can_be_bounded_from_the_configuration(monkeypatch, tmp_path):
    """It took N x voxels x 5 bytes with no key to bound it (35 GB for 600 cases of
    256x256x180; scaling review)."""
    raw = {"data": {"kind": "synthetic"}, "model": {"cache_gb": 0.5}}
    assert load_config(raw).model.cache_gb == 0.5
    with pytest.raises(ConfigError, match=r"model\.cache_gb"):
        load_config({"data": {"kind": "synthetic"}, "model": {"cache_gb": 0}})


def test_the_run_passes_the_cache_bound_to_the_adapter(monkeypatch, tmp_path):
    import shiftattr.pipeline as pipeline

    seen = {}

    class Stop(Exception):
        pass

    def adapter(*args, **kwargs):
        seen.update(kwargs)
        raise Stop

    import shiftattr.segmentation

    monkeypatch.setattr(shiftattr.segmentation, "SegmentationAdapter", adapter)
    cfg = pipeline.demo_config(tmp_path, tiny=True)
    with pytest.raises(Stop):
        pipeline.run(cfg, progress=False)
    assert seen["cache_max_bytes"] == "auto"  # a quarter of the machine's memory
    cfg.model.cache_gb = 0.5
    with pytest.raises(Stop):
        pipeline.run(cfg, progress=False)
    assert seen["cache_max_bytes"] == 2**29


def test_a_downsample_for_the_wrong_number_of_axes_is_refused_before_the_model_runs(tmp_path):
    # [2, 2] for 3D volumes failed at the discriminator's fit, after every case had
    # been scored, naming the estimator's parameter rather than the key
    import shiftattr.pipeline as pipeline

    cfg = pipeline.demo_config(tmp_path, tiny=True)
    cfg.attribution.image_estimator = "cnn"
    cfg.attribution.discriminator.downsample = [2, 2]
    with pytest.raises(ConfigError, match=r"attribution\.discriminator\.downsample = \[2, 2\] "
                       r"gives 2 factors for 3D images"):  # fmt: skip
        pipeline.run(cfg, progress=False)
    assert not (tmp_path / "model.pt").exists()  # nothing trained


def test_model_keys_of_another_kind_are_refused():
    """A checkpoint's keys with the default kind trained a fresh U-Net instead."""
    data = {"kind": "synthetic"}
    with pytest.raises(
        ConfigError, match=r"model\.checkpoint, model\.factory not read .*'train-unet'"
    ):
        load_config({"data": data, "model": {"factory": "m:f", "checkpoint": "c.pt"}})
    model = {"kind": "checkpoint", "factory": "m:f", "checkpoint": "c.pt"}
    with pytest.raises(
        ConfigError, match=r"model\.epochs not read with model\.kind = 'checkpoint'"
    ):
        load_config({"data": data, "model": {**model, "epochs": 3}})
    assert load_config({"data": data, "model": {"epochs": 3}}).model.epochs == 3


def test_the_synthetic_grid_is_checked_with_the_configuration():
    for shape in ([], [16], [4, 4, 4], [0, 16, 16], [16, 16, 16, 16]):
        with pytest.raises(ConfigError, match=r"data\.shape must have 2 or 3 sides"):
            load_config({"data": {"kind": "synthetic", "shape": shape}})
    assert load_config({"data": {"kind": "synthetic", "shape": [8, 16]}}).data.shape == (8, 16)


def test_truncate_is_refused_with_methods_it_does_not_act_on():
    for method in ("mr", "regression"):
        with pytest.raises(
            ConfigError, match=rf"truncate caps the weights of method 'iw'; '{method}'"
        ):
            load_config(
                {"data": {"kind": "synthetic"}, "attribution": {"method": method, "truncate": 20.0}}
            )


def test_every_model_key_is_read_by_some_kind():
    """The table of what each model.kind reads must name every [model] key: a key no
    kind reads would be refused with every kind."""
    from shiftattr.config import _MODEL_READS, ModelConfig

    assert set().union(*_MODEL_READS.values()) == set(ModelConfig.model_fields) - {"kind"}
    assert set(_MODEL_READS) == set(ModelConfig.model_fields["kind"].annotation.__args__)
