"""End-to-end runs behind the ``shiftattr`` command: data -> model -> metric -> attribution.

:func:`run` executes a validated :class:`~shiftattr.config.RunConfig` and writes a
report folder; :func:`demo_config` is the synthetic experiment B the README's main
command runs.
"""

from __future__ import annotations

import importlib
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shiftattr.attribution import attribute, count_warnings
from shiftattr.config import (
    ConfigError,
    NiftiData,
    NiftiSelection,
    RunConfig,
    SyntheticData,
    load_config,
)
from shiftattr.environment import Environment
from shiftattr.graph import CausalGraph
from shiftattr.ratios.image_stats import ImageStatsRatio
from shiftattr.report import write_report
from shiftattr.results import Attribution, ShiftAttrWarning, dominant_mechanism
from shiftattr.shapley import ExactShapley, PermutationShapley

__all__ = ["RunOutcome", "demo_config", "run", "segmentation_graph", "truth_table"]


@dataclass
class RunOutcome:
    """What :func:`run` produced.

    Attributes
    ----------
    result : Attribution
    truth : dict or None
        Ground truth (``TrueAttribution.to_dict()``) for synthetic data.
    report : pathlib.Path
        The HTML report.
    seconds : dict
        Wall time per stage.

    Examples
    --------
    >>> res = Attribution(("X", "Y"), {"X": 0.10, "Y": 0.02}, {}, {}, 0.8, 0.68)
    >>> out = RunOutcome(result=res, truth=None, report=Path("demo/report.html"),
    ...                  seconds={"model": 3.0, "attribution": 2.5})
    >>> out.result.dominant, out.report.name, round(sum(out.seconds.values()), 1)
    ('X', 'report.html', 5.5)
    """

    result: Attribution
    truth: dict[str, Any] | None
    report: Path
    seconds: dict[str, float]


def segmentation_graph(with_covariates: bool = True) -> CausalGraph:
    """The segmentation data-generating process ``D -> X -> Y`` (and ``D -> Y``).

    ``D`` are observed patient covariates (population), ``X`` the image
    (acquisition), ``Y`` the reference mask (annotation). ``Y`` keeps ``D`` as a
    parent: the annotator sees the lesions, which depend on ``D`` beyond what ``X``
    shows, and the extra parent costs nothing (its parent set ``{D, X}`` is also
    ``X``'s joint set, so no discriminator is added).

    Parameters
    ----------
    with_covariates : bool, default True
        Without ``D`` the graph is ``X -> Y``.

    Returns
    -------
    CausalGraph

    Examples
    --------
    >>> segmentation_graph().parents("Y")
    ('X', 'D')
    """
    if with_covariates:
        return CausalGraph({"D": [], "X": ["D"], "Y": ["X", "D"]})
    return CausalGraph({"X": [], "Y": ["X"]})


def demo_config(out: str | Path = "shiftattr-demo", tiny: bool = False) -> RunConfig:
    """The synthetic experiment B: centers 01, 07, 08 -> center 03, one annotator.

    Parameters
    ----------
    out : str or Path
        Report folder.
    tiny : bool, default False
        A seconds-long version for tests (16³ volumes, few cases and epochs).

    Returns
    -------
    RunConfig

    Examples
    --------
    >>> cfg = demo_config("my-demo", tiny=True)
    >>> isinstance(cfg, RunConfig), cfg.data.kind, str(cfg.output.folder)
    (True, 'synthetic', 'my-demo')
    >>> cfg.data.source.center, cfg.data.target.center
    (['01', '07', '08'], '03')
    """
    if tiny:
        data = {
            "kind": "synthetic",
            "shape": [16, 16, 16],
            "source": {"center": ["01", "07", "08"], "n": 24},
            "target": {"center": "03", "n": 24},
            "train_n": 12,
            "truth_n": 24,
        }
        model = {"epochs": 2, "channels": [4, 8]}
        attr = {
            "n_folds": 2,
            "n_bootstrap": 20,
            "discriminator": {"epochs": 2, "channels": [4, 8], "tta": False},
            "image_estimator": "cnn",
        }
    else:
        # Sized to stay well under three minutes on two shared CPU cores (measured
        # 72 s with method "mis": U-Net training ~20 s, ground truth ~4 s, attribution with
        # 50 refit replicates in two processes ~40 s; 1.5 GB peak over the three
        # processes; with "iw" 66 s, its attribution 58 s in one process). 80 training
        # cases x 15 epochs reach a source Dice of about 0.63; 40 x 10 stopped at 0.54.
        # truth_n = 200 keeps the truth's Monte Carlo error (~0.012) well below the CI
        # half-width (~0.1).
        data = {
            "kind": "synthetic",
            "shape": [24, 24, 24],
            "source": {"center": ["01", "07", "08"], "n": 100},
            "target": {"center": "03", "n": 100},
            "train_n": 80,
            "truth_n": 200,
        }
        model = {"epochs": 15, "channels": [8, 16, 32]}
        # refit intervals (bootstrap "auto" with the image statistics), 50 replicates, in
        # two processes (the machine it is sized for has two cores)
        attr = {"n_folds": 5, "n_bootstrap": 50, "n_jobs": 2}
    return load_config(
        {"data": data, "model": model, "attribution": attr, "output": {"folder": str(out)}}
    )


def _import_factory(spec: str, key: str = "model.factory"):
    module, _, name = spec.partition(":")  # the config checked the form
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import {key} {spec!r}: {exc}") from exc


def _selected_cases(sel: NiftiSelection, side: str) -> list[str] | None:
    """The nnU-Net case ids ``data.<side>`` selects: its ``cases``, or the lines of its
    ``cases_file`` (stripped; blank lines and lines starting with ``#`` skipped); None
    (neither given) selects every case of the split."""
    if sel.cases_file is None:
        ids, where = sel.cases, f"data.{side}.cases"
    else:
        path = sel.cases_file
        where = f"data.{side}.cases_file {str(path)!r}"
        try:
            text = path.read_text(encoding="utf-8-sig")  # a BOM (Windows editors) is not an id
        except FileNotFoundError:
            raise ConfigError(f"{where} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where} cannot be read: {exc}") from None
        ids = [s for line in text.splitlines() if (s := line.strip()) and not s.startswith("#")]
        if not ids:
            raise ConfigError(
                f"{where} selects no case: write one case identifier per line (blank lines "
                "and lines starting with '#' are skipped)"
            )
    if ids is not None:
        twice = sorted(c for c, k in Counter(ids).items() if k > 1)
        if twice:
            raise ConfigError(f"{where} lists {_some(twice)} more than once")
    return ids


def _some(ids: list[str], k: int = 5) -> str:
    """``ids`` for a message: the first ``k``, and how many more there are."""
    shown = ", ".join(map(repr, ids[:k]))
    return shown + (f" and {len(ids) - k} more" if len(ids) > k else "")


def _check_disjoint(cfg: NiftiData, source: Environment, target: Environment) -> None:
    """Refuse two nnU-Net sides reading the same folder and split that share cases: a
    case on both sides belongs to neither site, and two sides that select nothing compare
    the dataset with itself."""
    src, tgt = cfg.source, cfg.target
    if src.split != tgt.split or Path(src.folder).resolve() != Path(tgt.folder).resolve():
        return
    shared = sorted(set(source.case_ids) & set(target.case_ids))
    if not shared:
        return
    if all(s.cases is None and s.cases_file is None for s in (src, tgt)):
        what = f"neither selects cases, so both hold all {len(shared)}"
    else:
        what = f"{len(shared)} case(s) are on both sides"
    raise ConfigError(
        f"data.source and data.target read the same folder {str(src.folder)!r} (split "
        f"{src.split!r}), and {what}: {_some(shared)}; give each side its own cases or "
        "cases_file, with no case on both sides"
    )


def _nifti_environments(cfg: NiftiData, pair: bool = False) -> tuple[Environment, Environment]:
    """The source and target of NIfTI data; ``pair``: MSSEG-2016 with every rater's masks
    as counterfactuals of ``Y`` (``load_msseg2016(pair_annotators=True)``). nnU-Net sides
    load their ``split`` and selected cases, and may not share cases (see
    :func:`_check_disjoint`)."""
    from shiftattr import segmentation as seg

    envs = []
    # label maps scored on one label: Y is the binary mask label == foreground
    fg = {} if cfg.foreground is None else {"foreground": cfg.foreground}
    # nnU-Net: the case lists first, so that a bad one fails before any header is read
    selected = (
        {s: _selected_cases(getattr(cfg, s), s) for s in ("source", "target")}
        if cfg.kind == "nnunet"
        else {}
    )
    for side in ("source", "target"):
        sel = getattr(cfg, side)
        if cfg.kind == "folder":
            kw = {} if sel.manifest is None else {"manifest": sel.manifest}
            if sel.prediction_column is not None:
                kw["prediction_column"] = sel.prediction_column
            if sel.probability_column is not None:
                kw["probability_column"] = sel.probability_column
            envs.append(seg.load_folder(sel.folder, name=side, **kw, **fg))
        elif cfg.kind == "nnunet":
            envs.append(
                seg.load_nnunet_raw(
                    sel.folder,
                    split=sel.split,
                    cases=selected[side],
                    name=side,
                    predictions=sel.predictions,
                    probabilities=sel.probabilities,
                    **fg,
                )
            )
        else:
            envs.append(
                seg.load_msseg2016(
                    cfg.root,
                    centers=sel.centers,
                    annotators=sel.annotators,
                    patients=sel.patients,
                    label=sel.label,  # "4", "04", "consensus": the loader normalises
                    modalities=tuple(cfg.modalities),
                    pair_annotators=pair,
                    name=side,
                    **fg,
                )
            )
    if cfg.kind == "nnunet":
        _check_disjoint(cfg, envs[0], envs[1])
        for side, env in zip(("source", "target"), envs):
            if "Y" not in env:  # imagesTs without labelsTs: nothing to score against
                sel = getattr(cfg, side)
                raise ConfigError(
                    f"data.{side} reads split {sel.split!r} of {str(sel.folder)!r}, which has "
                    f"no labels{sel.split} folder: the metric needs the reference masks; add "
                    "them, or read split 'Tr'"
                )
    for env in envs:
        labels = env.metadata.get("labels") if cfg.kind == "nnunet" else None  # dataset.json
        if cfg.foreground is None and isinstance(labels, dict) and len(labels) > 2:
            raise ConfigError(
                f"the masks of {env.name!r} are label maps ({env.metadata.get('dataset_json')} "
                f"declares labels {dict(labels)}): set data.foreground to the label to score"
            )
    return envs[0], envs[1]


def _rater_pairing(source_rater: str, target_rater: str) -> dict[str, tuple[str, str]]:
    """``attribute``'s ``paired`` for the annotation: the source's cases as the target's
    rater read them, and the target's as the source's rater did (the counterfactual keys
    of :class:`~shiftattr.datasets.SyntheticMS` and of ``load_msseg2016``)."""
    return {"Y": (f"annotator-{target_rater}", f"annotator-{source_rater}")}


def _nifti_data(cfg: NiftiData, paired: list[str] | dict[str, Any]) -> tuple[Any, Any, Any]:
    """Source, target and ``attribute``'s ``paired`` of NIfTI data. With pairing, every
    rater's masks are loaded; ``["Y"]`` pairs each side with the rater the other side was
    loaded with (its ``metadata["annotator"]``: one per side, the configuration checks),
    a mapping names the keys itself."""
    source, target = _nifti_environments(cfg, pair=bool(paired))
    if isinstance(paired, list) and paired:
        source_rater, target_rater = (str(env.metadata["annotator"][0]) for env in (source, target))
        paired = _rater_pairing(source_rater, target_rater)
    return source, target, dict(paired) if isinstance(paired, dict) else []


def run(config: RunConfig | str | Path, progress: bool = True) -> RunOutcome:
    """Run a configuration end to end and write its report folder.

    Parameters
    ----------
    config : RunConfig, or path to a TOML file
    progress : bool, default True
        Progress bars; ``False`` is quiet.

    Returns
    -------
    RunOutcome

    Examples
    --------
    Running trains a model (tens of seconds even for the tiny demo), so this example
    only prepares the configuration; ``run(cfg, progress=False)`` would write the
    report folder ``cfg.output.folder`` and return a :class:`RunOutcome`.

    >>> cfg = demo_config("shiftattr-demo", tiny=True)
    >>> cfg.attribution.n_folds >= 2, str(cfg.output.folder)
    (True, 'shiftattr-demo')
    >>> import dataclasses
    >>> [f.name for f in dataclasses.fields(RunOutcome)]
    ['result', 'truth', 'report', 'seconds']
    """
    import torch

    from shiftattr.segmentation import (
        SavedPredictions,
        SegmentationAdapter,
        UNet3D,
        load_torch_checkpoint,
        save_checkpoint,
        train_segmentation_model,
    )

    cfg = config if isinstance(config, RunConfig) else load_config(config)
    folder = Path(cfg.output.folder)
    folder.mkdir(parents=True, exist_ok=True)
    a = cfg.attribution
    seconds: dict[str, float] = {}
    t = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal t
        now = time.perf_counter()
        seconds[stage] = now - t
        t = now

    data = cfg.data
    sim = None
    data_warnings: list[dict[str, Any]] = []
    paired: Any = dict(a.paired) if isinstance(a.paired, dict) else list(a.paired)
    if isinstance(data, SyntheticData):
        from shiftattr.datasets import SyntheticMS

        sim = SyntheticMS(shape=data.shape, random_state=data.random_state)
        src_kw = data.source.model_dump(exclude={"n"})
        tgt_kw = data.target.model_dump(exclude={"n"})
        train_env = sim.sample(data.train_n, **src_kw, random_state=1, progress=progress)
        # paired annotation: every case is also read by the other side's annotator,
        # stored under the simulator's own keys (no other key can exist here)
        both = "Y" in a.paired
        source = sim.sample(
            data.source.n,
            **src_kw,
            random_state=2,
            progress=progress,
            annotate_all=[tgt_kw["annotator"]] if both else False,
        )
        target = sim.sample(
            data.target.n,
            **tgt_kw,
            random_state=3,
            progress=progress,
            annotate_all=[src_kw["annotator"]] if both else False,
        )
        if both:
            paired = _rater_pairing(src_kw["annotator"], tgt_kw["annotator"])
        spatial_dims = len(data.shape)
    else:
        from shiftattr.segmentation import check_comparable

        source, target, paired = _nifti_data(data, a.paired)
        # raises on channels that differ; warns on orientations that differ, now (before
        # the long part) and in the result's diagnostics
        data_warnings = check_comparable(source, target)
        for w in data_warnings:
            warnings.warn(w["message"], ShiftAttrWarning, stacklevel=2)
        train_env = None
        spatial_dims = 3
    missing = sorted(set(a.mechanisms or ()) - (set(source.nodes) & set(target.nodes)))
    if missing:
        raise ConfigError(
            f"attribution.mechanisms names {missing}, which the data do not hold (nodes "
            f"{sorted(set(source.nodes) & set(target.nodes))}); remove them from "
            "attribution.mechanisms"
        )
    # built now, so that settings the data's dimensions rule out fail before scoring
    cnn = (
        a.discriminator.build(spatial_dims, a.random_state, progress)
        if a.image_estimator == "cnn"
        else None
    )
    lap("data")

    net = None
    if cfg.model.kind == "train-unet":  # the config guarantees synthetic data here
        torch.manual_seed(a.random_state)
        net = UNet3D(
            in_channels=1,
            out_channels=1,
            channels=tuple(cfg.model.channels),
            spatial_dims=spatial_dims,
        )
        train_segmentation_model(
            net,
            train_env,
            epochs=cfg.model.epochs,
            random_state=a.random_state,
            progress=progress,
        )
        save_checkpoint(net, folder / "model.pt")
    elif cfg.model.kind == "checkpoint":
        net = _import_factory(cfg.model.factory)()
        load_torch_checkpoint(net, cfg.model.checkpoint)
    preprocess = cfg.model.preprocess
    if preprocess is not None:
        from shiftattr.segmentation import PREPROCESSORS

        preprocess = PREPROCESSORS.get(preprocess) or _import_factory(
            preprocess, "model.preprocess"
        )
    lap("model")

    common = {
        "metric": a.metric,
        "metric_params": {"empty": a.empty},
        "cache_max_bytes": (
            "auto" if cfg.model.cache_gb is None else int(cfg.model.cache_gb * 2**30)
        ),
        # NIfTI headers give the voxel size: distances and volumes in physical units,
        # comparable between scanners of different resolution
        "spacing": None if sim is not None else "metadata",
        "progress": progress,
    }
    if cfg.model.kind == "predictions":  # node P of both environments, no model
        # and their saved probabilities, which the configuration requires on both sides
        proba = "P_proba" if "P_proba" in source else None
        adapter = SavedPredictions(probability_node=proba, **common)
    else:
        adapter = SegmentationAdapter(
            net,
            patch_size=cfg.model.patch_size,
            preprocess=preprocess,
            channel=cfg.model.output_channel,
            **common,
        )
    m_s = adapter.score(source)
    m_t = adapter.score(target)
    lap("scoring")

    with_d = "D" in source and "D" in target
    graph = segmentation_graph(with_d)
    agreement = False  # the annotation's ratio reads the mask's agreement with the model
    if cnn is not None:
        image_est = cnn
    else:
        stats = {} if a.image_statistics is None else {"statistics": a.image_statistics}
        extra = {"X": adapter.output_features} if a.ratio_outputs_mode else {}
        if a.conditional_ratios == "offset_child":  # the annotation's own features: its
            # mask statistics and how the mask agrees with the prediction
            extra["Y"] = adapter.agreement_features
            agreement = True
        image_est = ImageStatsRatio(
            spatial_dims=spatial_dims,
            **stats,  # unset: the estimator's own default
            # one estimator object for X and Y: both see the same outputs (see
            # ImageStatsRatio's extra_features)
            extra_features=extra or None,
            random_state=a.random_state,
        )
    solver = (
        ExactShapley()
        if a.solver == "exact"
        else PermutationShapley(tol=0.002, random_state=a.random_state)
    )

    # regression features of the image: the model's own output summaries. Intensity
    # statistics move with the scanner, so a Dice regression on them fitted in one
    # environment extrapolates in the other; measured on the demo with method="regression":
    # MAE 0.005 with output summaries alone, 0.026 with image statistics added.
    features = {"X": adapter.output_features}

    result = attribute(
        graph,
        source,
        target,
        metric=adapter.score if paired else m_s,
        target_metric=m_t,
        mechanisms=a.mechanisms,
        estimators={"X": image_est, "Y": image_est},
        method=a.method_mode,
        features=features,
        paired=paired or None,
        solver=solver,
        n_folds=a.n_folds,
        n_repeats=a.n_repeats,
        n_bootstrap=a.n_bootstrap,
        bootstrap=a.bootstrap_mode,
        interval=a.interval,
        pooled_regressions=a.pooled_regressions,
        both_samples=a.both_samples_mode,
        conditional_ratios=a.conditional_ratios,
        cross_check=a.cross_check,
        truncate=a.truncate,
        tolerance=a.tolerance,
        correction_cap=None if a.correction_cap == "none" else a.correction_cap,
        metric_name=a.metric,
        n_jobs=a.n_jobs,
        progress=progress,
        random_state=a.random_state,
    )
    lap("attribution")
    if data_warnings:
        result.warnings.extend(data_warnings)
        count_warnings(result.diagnostics, result.warnings)

    truth = None
    if sim is not None and data.truth_n:
        truth_obj = sim.true_attribution(
            adapter.score,
            src_kw,
            tgt_kw,
            n=data.truth_n,
            random_state=4,
            mechanisms=result.mechanisms,
            progress=progress,
            metric_name=result.metric_name,
            higher_is_better=result.higher_is_better,
        )
        truth = truth_obj.to_dict()
        lap("ground truth")
    result.settings["stage_seconds"] = dict(seconds)
    result.settings["ratio_outputs"] = a.ratio_outputs_mode
    result.settings["ratio_agreement"] = agreement
    result.settings["n_jobs"] = a.n_jobs
    result.settings["preprocess"] = cfg.model.preprocess
    result.settings["model_kind"] = cfg.model.kind  # "predictions": the saved ones scored
    if cfg.model.kind == "predictions":  # their output features: with the probabilities?
        result.settings["saved_probabilities"] = adapter.probability_node is not None
        # cases whose masks hold their probabilities little (warned of as the run went)
        result.settings["low_contrast_cases"] = list(adapter.low_contrast_cases_)
    result.settings["distance_units"] = (
        "voxels" if sim is not None else "physical (the NIfTI headers' voxel spacing)"
    )
    page = write_report(result, folder, truth=truth)  # titled from the result's settings
    lap("report")
    return RunOutcome(result=result, truth=truth, report=page, seconds=seconds)


def truth_table(result: Attribution, truth: dict[str, Any]) -> str:
    """Estimates beside the ground truth and the error, as text.

    Parameters
    ----------
    result : Attribution
    truth : dict
        ``TrueAttribution.to_dict()``.

    Returns
    -------
    str

    Examples
    --------
    >>> res = Attribution(("X", "Y"), {"X": 0.10, "Y": 0.02}, {}, {}, 0.8, 0.68)
    >>> truth = {"values": {"X": 0.09, "Y": 0.03}, "stderr": {"X": 0.005, "Y": 0.004}}
    >>> print(truth_table(res, truth))
    mechanism   estimate     truth  ± MC se    error
    X            +0.1000   +0.0900   0.0050  +0.0100
    Y            +0.0200   +0.0300   0.0040  -0.0100
    mean absolute error 0.0100; dominant: estimated X, true X

    Where the true values tie (nothing shifted), no mechanism is named:

    >>> print(truth_table(res, {"values": {"X": 0.0, "Y": 0.0}}).splitlines()[-1])
    mean absolute error 0.0600; dominant: estimated X, true none (a tie of X, Y at +0.0000)
    """
    tv = truth["values"]
    se = truth.get("stderr") or {}
    lines = [f"{'mechanism':<10}{'estimate':>10}{'truth':>10}{'± MC se':>9}{'error':>9}"]
    errs = []
    for m in result.mechanisms:
        err = result.values[m] - tv[m]
        errs.append(abs(err))
        lines.append(
            f"{m:<10}{result.values[m]:>+10.4f}{tv[m]:>+10.4f}{se.get(m, float('nan')):>9.4f}{err:>+9.4f}"
        )
    true_top = dominant_mechanism(tv, result.higher_is_better)
    tied = [m for m in result.mechanisms if tv[m] == tv[true_top]]
    if len(tied) > 1:  # e.g. nothing shifted: every true value 0
        true_top = f"none (a tie of {', '.join(tied)} at {tv[true_top]:+.4f})"
    lines.append(
        f"mean absolute error {np.mean(errs):.4f}; dominant: estimated "
        f"{result.dominant}, true {true_top}"
    )
    return "\n".join(lines)
