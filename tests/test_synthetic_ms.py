"""Tests of the synthetic MS-lesion simulator (ground-truth world of the library)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from shiftattr.datasets.synthetic_ms import (
    ANNOTATOR_PRESETS,
    CENTER_PRESETS,
    NODE_MECHANISMS,
    POPULATION_PRESETS,
    AnnotatorSpec,
    CenterSpec,
    PopulationSpec,
    SyntheticMS,
    TrueAttribution,
)
from shiftattr.datasets.truth import shapley_from_table
from shiftattr.environment import Environment

SHAPE = (16, 16, 16)


@pytest.fixture(scope="module")
def sim() -> SyntheticMS:
    return SyntheticMS(shape=SHAPE, random_state=0)


def _same(a: Environment, b: Environment, nodes=("D", "X", "Y")) -> bool:
    return all(np.array_equal(a[n], b[n]) for n in nodes)


def dice(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    axes = tuple(range(1, pred.ndim))
    p, t = pred.astype(bool), truth.astype(bool)
    denom = p.sum(axes) + t.sum(axes)
    return np.where(denom == 0, 1.0, 2.0 * (p & t).sum(axes) / np.maximum(denom, 1))


def threshold_model_dice(env: Environment) -> np.ndarray:
    """Dice of a fixed thresholding 'model' of X against Y (no training needed)."""
    x = env["X"]
    ref = np.percentile(x.reshape(len(x), -1), 80, axis=1)
    pred = x > 1.35 * ref[:, None, None, None]
    return dice(pred, env["Y"])


# -- sampling -----------------------------------------------------------------------------
def test_same_seed_same_arrays_and_different_seed_differs(sim):
    a = sim.sample(3, center="03", annotator="2", random_state=7)
    b = SyntheticMS(shape=SHAPE, random_state=0).sample(
        3, center="03", annotator="2", random_state=7
    )
    assert _same(a, b)
    assert np.array_equal(a.metadata["lesions"], b.metadata["lesions"])
    c = sim.sample(3, center="03", annotator="2", random_state=8)
    assert not np.array_equal(a["X"], c["X"])
    other_base = SyntheticMS(shape=SHAPE, random_state=1).sample(
        3, center="03", annotator="2", random_state=7
    )
    assert not np.array_equal(a["X"], other_base["X"])


def test_unseeded_samples_are_fresh_but_reproducible_from_the_simulator_seed():
    s1, s2 = SyntheticMS(shape=SHAPE, random_state=5), SyntheticMS(shape=SHAPE, random_state=5)
    a1, a2 = s1.sample(2), s1.sample(2)
    assert not np.array_equal(a1["X"], a2["X"])
    assert _same(a1, s2.sample(2))


def test_a_larger_sample_extends_a_smaller_one(sim):
    small = sim.sample(2, center=["01", "07"], random_state=3)
    large = sim.sample(4, center=["01", "07"], random_state=3)
    assert _same(small, large.subset([0, 1]))


def test_shapes_dtypes_and_metadata(sim):
    env = sim.sample(4, center="01", annotator="1", random_state=0)
    assert env.name == "center-01/annotator-1"
    assert env["D"].shape == (4, 2)
    assert env["X"].shape == (4, *SHAPE) and env["X"].dtype == np.float32
    assert env["Y"].shape == (4, *SHAPE) and env["Y"].dtype == np.uint8
    assert set(np.unique(env["Y"])) <= {0, 1}
    assert np.isfinite(env["X"]).all() and (env["X"] >= 0).all()  # Rician magnitudes
    lesions = env.metadata["lesions"]
    assert lesions.shape == (4, *SHAPE) and lesions.dtype == np.uint8
    assert (lesions.reshape(4, -1).sum(1) > 0).all()  # every case has a lesion
    assert set(env.metadata["acquisition_params"]) >= {"noise_sd", "lesion_contrast"}
    assert len(env.metadata["lesion_params"]) == 4
    assert list(env.metadata["centers"]) == ["01"] * 4
    assert len(set(env.case_ids)) == 4
    # annotations sit on the true lesions: most annotated voxels are lesion or near it
    assert env["Y"].sum() > 0
    assert (env["Y"] & lesions).sum() / env["Y"].sum() > 0.5


def test_two_dimensional_simulator():
    env = SyntheticMS(shape=(24, 24), random_state=0).sample(3, random_state=0)
    assert env["X"].shape == (3, 24, 24) and env["Y"].shape == (3, 24, 24)


def test_presets_exist_and_sample(sim):
    assert set(CENTER_PRESETS) == {"01", "03", "07", "08"}
    assert set(ANNOTATOR_PRESETS) == {str(i) for i in range(1, 8)}
    assert {"default", "young", "high-load"} <= set(POPULATION_PRESETS)
    for center in CENTER_PRESETS:
        assert sim.sample(1, center=center, random_state=0).name.startswith(f"center-{center}/")
    env = sim.sample(1, annotator="7", population="young", random_state=0)
    assert env.name == "center-01/annotator-7/population-young"
    assert sim.sample(1, center=3, random_state=0).metadata["center"] == "03"


def test_center_03_is_harder_and_annotators_differ(sim):
    ref = sim.sample(12, center="01", random_state=1)
    hard = sim.sample(12, center="03", random_state=1)
    vis_ref = np.concatenate(ref.metadata["visibility"])
    vis_hard = np.concatenate(hard.metadata["visibility"])
    assert np.median(vis_hard) < np.median(vis_ref)
    env = sim.sample(12, random_state=1, annotate_all=["3", "5"])
    over = env.counterfactual("annotator-3", "Y").sum()
    under = env.counterfactual("annotator-5", "Y").sum()
    assert over > 1.5 * under


def test_small_grids_measure_every_lesion():
    # At 8³ the white matter's interior vanishes; the visibility used to be NaN for
    # about a quarter of the lesions, so the annotators' detection ran on NaN.
    import warnings

    tiny = SyntheticMS(shape=(8, 8, 8), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        env = tiny.sample(60, center="01", annotator="1", random_state=1)
    vis = np.concatenate(env.metadata["visibility"])
    assert np.isfinite(vis).all()


def test_population_drives_lesion_load(sim):
    high = sim.sample(20, population="high-load", random_state=2)
    low = sim.sample(20, population="low-load", random_state=2)
    count = [[p["n_lesions"] for p in e.metadata["lesion_params"]] for e in (high, low)]
    assert np.mean(count[0]) > np.mean(count[1])
    assert high["D"][:, 1].mean() > low["D"][:, 1].mean()


def test_center_mixture_records_each_case_center(sim):
    env = sim.sample(16, center=["01", "07", "08"], random_state=0)
    assert env.name.startswith("center-01+07+08/")
    centers = env.metadata["centers"]
    assert set(centers) <= {"01", "07", "08"} and len(set(centers)) >= 2
    # the mixture reuses each center's images: a case drawn from 07 equals the 07 sample
    only07 = sim.sample(16, center="07", random_state=0)
    k = int(np.flatnonzero(centers == "07")[0])
    assert np.array_equal(env["X"][k], only07["X"][k])


def test_custom_specs(sim):
    noisy = CenterSpec(name="noisy", noise_sd=(0.3, 0.05))
    env = sim.sample(3, center=noisy, random_state=0)
    assert env.name == "center-noisy/annotator-1"
    assert env.metadata["acquisition_params"]["noise_sd"].min() > 0.2
    custom = SyntheticMS(
        shape=SHAPE,
        centers={"A": CenterSpec(name="A")},
        annotators={"me": AnnotatorSpec(name="me", boundary=(1.0, 0.1))},
        populations={"default": PopulationSpec(name="default")},
        random_state=0,
    )
    env = custom.sample(2, center="A", annotator="me", random_state=0)
    assert env.name == "center-A/annotator-me"
    with pytest.raises(ValueError, match="available"):
        custom.sample(2, center="01")


@pytest.mark.parametrize(
    ("cls", "kwargs", "field"),
    [
        (CenterSpec, {"noise_sd": (-0.1, 0.2)}, "noise_sd"),
        (CenterSpec, {"blur_sigma": (0.5, 9.0)}, "blur_sigma"),
        (CenterSpec, {"lesion_contrast": (float("nan"), 0.1)}, "lesion_contrast"),
        (CenterSpec, {"noise": (0.1, 0.1)}, "noise"),
        (AnnotatorSpec, {"detection_slope": 0.0}, "detection_slope"),
        (AnnotatorSpec, {"boundary": (10.0, 0.1)}, "boundary"),
        (PopulationSpec, {"correlation": 1.0}, "correlation"),
    ],
)
def test_invalid_spec_raises_a_pydantic_error_naming_the_field(cls, kwargs, field):
    with pytest.raises(ValidationError, match=field):
        cls(**kwargs)


def test_specs_are_frozen():
    with pytest.raises(ValidationError):
        CENTER_PRESETS["01"].noise_sd = (1.0, 0.1)  # type: ignore[misc]


def test_bad_arguments_name_the_problem(sim):
    with pytest.raises(ValueError, match="unknown center"):
        sim.sample(2, center="99")
    with pytest.raises(ValueError, match="unknown annotator"):
        sim.sample(2, annotator="9")
    with pytest.raises(ValueError, match="n must be a positive integer"):
        sim.sample(0)
    with pytest.raises(ValueError, match="unknown node"):
        sim.sample_mixed(2, shifted={"Z"})
    with pytest.raises(ValueError, match="unknown key"):
        sim.sample_mixed(2, source={"scanner": "01"})
    with pytest.raises(ValueError, match="shape"):
        SyntheticMS(shape=(4, 4, 4))


# -- mixed distributions and common random numbers -------------------------------------------
SOURCE = {"center": "01", "annotator": "1", "population": "default"}
TARGET = {"center": "03", "annotator": "5", "population": "high-load"}


def test_sample_mixed_endpoints_equal_source_and_target(sim):
    none = sim.sample_mixed(3, SOURCE, TARGET, shifted=set(), random_state=4)
    assert _same(none, sim.sample(3, **SOURCE, random_state=4))
    allm = sim.sample_mixed(3, SOURCE, TARGET, shifted={"D", "X", "Y"}, random_state=4)
    assert _same(allm, sim.sample(3, **TARGET, random_state=4))
    assert allm.metadata["shifted"] == ("D", "X", "Y")


def test_common_random_numbers_keep_unshifted_nodes(sim):
    src = sim.sample(3, **SOURCE, random_state=4)
    only_y = sim.sample_mixed(3, SOURCE, TARGET, shifted={"Y"}, random_state=4)
    assert np.array_equal(only_y["X"], src["X"]) and np.array_equal(only_y["D"], src["D"])
    assert not np.array_equal(only_y["Y"], src["Y"])
    only_x = sim.sample_mixed(3, SOURCE, TARGET, shifted={"X"}, random_state=4)
    assert np.array_equal(only_x["D"], src["D"]) and not np.array_equal(only_x["X"], src["X"])
    assert np.array_equal(only_x.metadata["lesions"], src.metadata["lesions"])
    only_d = sim.sample_mixed(3, SOURCE, TARGET, shifted={"D"}, random_state=4)
    assert not np.array_equal(only_d["D"], src["D"])
    assert NODE_MECHANISMS == {"D": "population", "X": "acquisition", "Y": "annotation"}


def test_annotate_all_gives_paired_counterfactual_annotations(sim):
    env = sim.sample(3, annotator="2", random_state=6, annotate_all=True)
    assert set(env.counterfactuals) == {f"annotator-{a}" for a in ANNOTATOR_PRESETS}
    assert np.array_equal(env.counterfactual("annotator-2", "Y"), env["Y"])
    # annotator 4 reads the very same images, with its own reading noise: the reading
    # does not depend on which other readers are listed
    only_four = sim.sample(3, annotator="2", random_state=6, annotate_all=["4"])
    assert np.array_equal(only_four["X"], env["X"]) and np.array_equal(only_four["Y"], env["Y"])
    cf = env.counterfactual("annotator-4", "Y")
    assert np.array_equal(only_four.counterfactual("annotator-4", "Y"), cf)
    # subsetting keeps the pairing
    sub = env.subset([2, 0])
    assert np.array_equal(sub.counterfactual("annotator-4", "Y"), cf[[2, 0]])


def test_extra_readers_sharing_a_name_or_a_stream_are_refused(sim):
    # readings are stored by name and streams keyed by the name's CRC-32: either clash
    # would make two readers one (the same reading twice, or one silently dropped)
    two = sim.annotators["2"]
    with pytest.raises(ValueError, match="one name"):
        sim.sample(2, annotator="1", annotate_all=[two, AnnotatorSpec(name="2")])
    clash = [two.model_copy(update={"name": n}) for n in ("plumless", "buckeroo")]
    with pytest.raises(ValueError, match="same CRC-32"):
        sim.sample(2, annotator="1", annotate_all=clash)
    ok = sim.sample(2, annotator="1", annotate_all=[*clash[:1], "2"], random_state=0)
    assert sorted(ok.counterfactuals) == ["annotator-2", "annotator-plumless"]


def test_extra_readers_draw_their_own_reading_noise(sim):
    # Version 1 gave every reader of a case the observed annotator's standard normals, so
    # two readers were perfectly comonotone: the per-case difference between them, which
    # paired estimation relies on, was far less noisy than between two people.
    n = 60
    env = sim.sample(n, annotator="1", random_state=2, annotate_all=["2", "4"])
    own = sim.sample(n, annotator="2", random_state=2)
    params = env.metadata["counterfactual_annotation_params"]
    z = {  # the standardised boundary draw of each reading
        name: (np.asarray(p["boundary"]) - sim.annotators[name].boundary[0])
        / sim.annotators[name].boundary[1]
        for name, p in [("1", env.metadata["annotation_params"])]
        + [(k.removeprefix("annotator-"), v) for k, v in params.items()]
    }
    for a, b in [("1", "2"), ("1", "4"), ("2", "4")]:
        assert abs(np.corrcoef(z[a], z[b])[0, 1]) < 0.4, (a, b)
    # the same reader's draws have the same distribution as its own observed readings
    assert not np.array_equal(env.counterfactual("annotator-2", "Y"), own["Y"])
    assert abs(np.mean(z["2"])) < 0.45 and 0.6 < np.std(z["2"]) < 1.4


# -- ground truth attribution ---------------------------------------------------------------
@pytest.fixture(scope="module")
def truth(sim) -> TrueAttribution:
    return sim.true_attribution(
        threshold_model_dice, SOURCE, TARGET, n=24, random_state=0, chunk_size=10, progress=False
    )


def test_true_attribution_efficiency_and_endpoints(sim, truth):
    assert set(truth.values) == {"D", "X", "Y"}
    assert len(truth.delta_m) == 8
    assert np.isclose(sum(truth.values.values()), truth.total)
    assert np.isclose(truth.total, truth.source_metric - truth.target_metric)
    assert truth.delta_m[()] == 0.0
    # the source metric is the metric of the ordinary source sample with the same seed
    src = sim.sample(24, **SOURCE, random_state=0)
    assert np.isclose(truth.source_metric, threshold_model_dice(src).mean())
    tgt = sim.sample(24, **TARGET, random_state=0)
    assert np.isclose(truth.target_metric, threshold_model_dice(tgt).mean())
    for name in "DXY":
        assert np.isfinite(truth.stderr[name]) and truth.stderr[name] > 0
    json.dumps(truth.to_dict())
    assert truth.to_dict()["delta_m"]["∅"] == 0.0
    assert set(truth.extra["delta_m_stderr"]) == set(truth.delta_m)
    per_case = truth.extra["case_metrics"]
    assert len(per_case) == 8 and all(v.shape == (24,) for v in per_case.values())
    # the Shapley values agree with the library's exact solver on the ΔM table
    assert shapley_from_table(truth.mechanisms, truth.delta_m) == pytest.approx(truth.values)


def test_true_attribution_swapping_source_and_target_flips_signs(sim, truth):
    back = sim.true_attribution(
        threshold_model_dice, TARGET, SOURCE, n=24, random_state=0, progress=False
    )
    for name in "DXY":
        # with common random numbers the eight simulated worlds are the same: exact flip
        assert np.isclose(back.values[name], -truth.values[name], atol=1e-12)
        assert np.isclose(back.stderr[name], truth.stderr[name])


def test_true_attribution_mechanism_held_equal_gets_exactly_zero(sim):
    src = {"center": ["01", "07"], "annotator": "1"}
    tgt = {"center": "03", "annotator": "1"}
    res = sim.true_attribution(threshold_model_dice, src, tgt, n=12, random_state=1, progress=False)
    assert res.values["D"] == 0.0 and res.values["Y"] == 0.0
    assert res.stderr["D"] == 0.0 and res.stderr["Y"] == 0.0
    assert np.isclose(res.values["X"], res.total)
    assert res.stderr["X"] > 0


def test_true_attribution_scores_each_distinct_environment_once(sim):
    calls = []

    def counting(env):
        calls.append((env.metadata.get("shifted"), len(env)))
        return threshold_model_dice(env)

    src = {"center": "01", "annotator": "1"}
    tgt = {"center": "01", "annotator": "5"}  # only the annotation differs
    res = sim.true_attribution(
        counting, src, tgt, n=10, chunk_size=5, random_state=1, progress=False
    )
    assert len(calls) == 2 * 2  # source and target annotator, per chunk of 5
    assert res.values["D"] == 0.0 and res.values["X"] == 0.0
    assert np.isclose(res.values["Y"], res.total)
    # the coalitions that were not scored reuse the scored cases exactly
    cm = res.extra["case_metrics"]
    assert np.array_equal(cm[("D", "X")], cm[()]) and np.array_equal(cm[("X", "Y")], cm[("Y",)])


def test_true_attribution_subset_of_players(sim, truth):
    res = sim.true_attribution(
        threshold_model_dice,
        SOURCE,
        TARGET,
        n=24,
        random_state=0,
        mechanisms=["Y", "X"],
        progress=False,
    )
    assert res.mechanisms == ("X", "Y")
    assert np.isclose(sum(res.values.values()), res.delta_m[("X", "Y")])
    # same simulated worlds: ΔM of shared coalitions agree with the three-player game
    assert np.isclose(res.delta_m[("X",)], truth.delta_m[("X",)])


def test_true_attribution_knows_the_metrics_direction(sim, truth):
    # a loss's truth said higher_is_better=True, so its dominant mechanism was wrong
    def loss(env):
        return 1.0 - threshold_model_dice(env)

    kw = dict(n=24, random_state=0, chunk_size=10, progress=False)
    as_loss = sim.true_attribution(loss, SOURCE, TARGET, metric_name="hausdorff95", **kw)
    assert truth.higher_is_better is True and as_loss.higher_is_better is False
    assert as_loss.dominant == truth.dominant  # the same mechanism moved it most
    given = sim.true_attribution(loss, SOURCE, TARGET, metric_name="my loss", **kw)
    assert given.higher_is_better is None
    with pytest.raises(TypeError, match="higher_is_better"):
        sim.true_attribution(loss, SOURCE, TARGET, higher_is_better="no", **kw)


def test_true_attribution_rejects_bad_metric(sim):
    with pytest.raises(ValueError, match="one value per case"):
        sim.true_attribution(lambda env: np.zeros(2), n=4, random_state=0, progress=False)
    with pytest.raises(ValueError, match="non-finite"):
        sim.true_attribution(
            lambda env: np.full(len(env), np.nan), n=4, random_state=0, progress=False
        )


def test_true_attribution_refuses_different_specs_with_one_name(sim):
    a, b = CenterSpec(name="mine"), CenterSpec(name="mine", noise_sd=(0.2, 0.1))
    with pytest.raises(ValueError, match="distinct names"):
        sim.true_attribution(
            threshold_model_dice, {"center": a}, {"center": b}, n=2, progress=False
        )


# -- oracle density ratios ---------------------------------------------------------------
def _lognormal_logpdf(x, spec_field):
    median, spread = spec_field
    return -0.5 * ((np.log(x) - np.log(median)) / spread) ** 2 - np.log(spread)


def test_true_log_ratio_of_acquisition_is_the_parameter_density_ratio(sim):
    env = sim.sample(20, center="07", random_state=3)
    lr = sim.true_log_ratio(env, "X", {"center": "01"}, {"center": "03"})
    params = env.metadata["acquisition_params"]
    expected = sum(
        _lognormal_logpdf(params[k], getattr(CENTER_PRESETS["03"], k))
        - _lognormal_logpdf(params[k], getattr(CENTER_PRESETS["01"], k))
        for k in params
    )
    np.testing.assert_allclose(lr, expected, rtol=1e-10)
    # a mixture of centers is the mean of their densities, on either side
    mix = sim.true_log_ratio(env, "X", {"center": "01"}, {"center": ["01", "03"]})
    np.testing.assert_allclose(mix, np.log((1 + np.exp(lr)) / 2), rtol=1e-10)
    mix_s = sim.true_log_ratio(env, "X", {"center": ["01", "03"]}, {"center": "03"})
    np.testing.assert_allclose(mix_s, lr - np.log((1 + np.exp(lr)) / 2), rtol=1e-10)


def test_true_log_ratio_refuses_a_parameter_fixed_in_one_spec_only(sim):
    fixed = CenterSpec(name="fixed-noise", noise_sd=(0.1, 0.0))
    env = sim.sample(6, center=fixed, random_state=2)
    with pytest.raises(ValueError, match="'noise_sd' is fixed"):
        sim.true_log_ratio(env, "X", {"center": "01"}, {"center": ["01", fixed]})
    with pytest.raises(ValueError, match="'noise_sd' is fixed"):
        sim.true_log_ratio(env, "X", {"center": fixed}, {"center": "01"})
    # fixed alike on both sides, it cancels: only the other parameters count
    other = CenterSpec(name="fixed-noise-2", noise_sd=(0.1, 0.0), blur_sigma=(0.7, 0.3))
    lr = sim.true_log_ratio(env, "X", {"center": fixed}, {"center": other})
    blur = env.metadata["acquisition_params"]["blur_sigma"]
    expected = _lognormal_logpdf(blur, (0.7, 0.3)) - _lognormal_logpdf(blur, fixed.blur_sigma)
    np.testing.assert_allclose(lr, expected, rtol=1e-10)
    # a population with a fixed age: the lesion load's marginal law is what differs
    aged = PopulationSpec(name="aged", age=(1.0, 0.0), lesion_load=(0.5, 1.0))
    aged2 = PopulationSpec(name="aged2", age=(1.0, 0.0), lesion_load=(-0.5, 0.8))
    envd = sim.sample(6, population=aged, random_state=3)
    lr_d = sim.true_log_ratio(envd, "D", {"population": aged}, {"population": aged2})
    load = envd["D"][:, 1]
    expected_d = (-0.5 * ((load + 0.5) / 0.8) ** 2 - np.log(0.8)) - (-0.5 * (load - 0.5) ** 2)
    np.testing.assert_allclose(lr_d, expected_d, rtol=1e-10)
    with pytest.raises(ValueError, match="'age' is fixed"):
        sim.true_log_ratio(envd, "D", {"population": aged}, {"population": "default"})


def test_true_log_ratio_is_zero_for_equal_specs_and_antisymmetric(sim):
    env = sim.sample(15, center="03", annotator="5", population="old", random_state=4)
    for node in ("D", "X", "Y"):
        assert np.all(sim.true_log_ratio(env, node, SOURCE, SOURCE) == 0.0)
        forward = sim.true_log_ratio(env, node, SOURCE, TARGET)
        backward = sim.true_log_ratio(env, node, TARGET, SOURCE)
        np.testing.assert_allclose(forward, -backward, rtol=1e-12, atol=1e-12)
    # only the named mechanism's spec matters
    assert np.all(sim.true_log_ratio(env, "X", SOURCE, {**SOURCE, "annotator": "5"}) == 0.0)


def test_true_log_ratio_of_population_is_the_bivariate_normal_ratio(sim):
    from scipy.stats import multivariate_normal

    env = sim.sample(10, population="old", random_state=5)

    def logpdf(spec):
        (a0, a1), (l0, l1), rho = spec.age, spec.lesion_load, spec.correlation
        cov = [[a1**2, rho * a1 * l1], [rho * a1 * l1, l1**2]]
        return multivariate_normal([a0, l0], cov).logpdf(env["D"])

    lr = sim.true_log_ratio(env, "D", {"population": "default"}, {"population": "old"})
    expected = logpdf(POPULATION_PRESETS["old"]) - logpdf(POPULATION_PRESETS["default"])
    np.testing.assert_allclose(lr, expected, rtol=1e-9)


def test_true_log_ratio_of_annotation_adds_detection_outcomes_when_slopes_differ(sim):
    from scipy.special import expit

    steep = AnnotatorSpec(name="steep", detection_slope=0.2, boundary=(0.05, 0.3))
    env = sim.sample(30, annotator="1", random_state=6)
    lr = sim.true_log_ratio(env, "Y", {"annotator": "1"}, {"annotator": steep})
    meta, one = env.metadata, ANNOTATOR_PRESETS["1"]
    p = meta["annotation_params"]

    def params_logpdf(spec):
        (b0, b1) = spec.boundary
        out = -0.5 * ((p["boundary"] - b0) / b1) ** 2 - np.log(b1)
        for k in ("boundary_noise", "detection_threshold", "min_lesion_volume"):
            out = out + _lognormal_logpdf(p[k], getattr(spec, k))
        return out

    expected = params_logpdf(steep) - params_logpdf(one)
    for i in range(len(env)):
        vis, det = meta["visibility"][i], p["detected"][i]
        seen = meta["lesion_params"][i]["volume"] >= p["min_lesion_volume"][i]
        for spec, sign in ((steep, 1), (one, -1)):
            q = expit((vis - p["detection_threshold"][i]) / spec.detection_slope)
            expected[i] += sign * np.sum(np.where(seen, np.log(np.where(det, q, 1 - q)), 0.0))
    np.testing.assert_allclose(lr, expected, rtol=1e-8, atol=1e-10)
    # equal slopes: the detection terms cancel and only the parameters count
    plain = AnnotatorSpec(name="plain", boundary=(0.05, 0.3))
    lr_plain = sim.true_log_ratio(env, "Y", {"annotator": "1"}, {"annotator": plain})
    np.testing.assert_allclose(lr_plain, params_logpdf(plain) - params_logpdf(one), rtol=1e-10)


def test_oracle_weights_reproduce_target_means(sim):
    """Self-normalised importance weighting with the oracle ratio recovers the target's
    mean of a hidden parameter and of an observed quantity (within 4 standard errors)."""
    n = 600
    source = sim.sample(n, center="01", annotator="1", random_state=7)
    cases = [
        ("X", {"center": "03"}, lambda e: np.log(e.metadata["acquisition_params"]["noise_sd"])),
        ("Y", {"annotator": "2"}, lambda e: e["Y"].reshape(len(e), -1).sum(1).astype(float)),
        ("D", {"population": "old"}, lambda e: e["D"][:, 0]),
    ]
    for node, change, f in cases:
        target = sim.sample(n, **{**SOURCE, **change}, random_state=8)
        lr = sim.true_log_ratio(source, node, SOURCE, {**SOURCE, **change})
        w = np.exp(lr - lr.max())
        w /= w.sum()
        fs, ft = f(source), f(target)
        weighted = float(w @ fs)
        se = np.sqrt(float(w**2 @ (fs - weighted) ** 2) + ft.var() / n)
        assert abs(weighted - ft.mean()) < 4 * se, node
        assert abs(fs.mean() - ft.mean()) > 4 * se, node  # the shift is there to recover


def test_true_log_ratio_follows_subsets_and_rejects_bad_input(sim):
    env = sim.sample(8, center="03", random_state=9)
    lr = sim.true_log_ratio(env, "Y", SOURCE, TARGET)
    sub = env.subset([5, 1, 1])
    np.testing.assert_allclose(sim.true_log_ratio(sub, "Y", SOURCE, TARGET), lr[[5, 1, 1]])
    with pytest.raises(ValueError, match="node must be one of"):
        sim.true_log_ratio(env, "Z", SOURCE, TARGET)
    with pytest.raises(ValueError, match="metadata"):
        sim.true_log_ratio(Environment({"X": env["X"]}), "X", SOURCE, TARGET)


def test_the_world_drawn_is_pinned_to_the_simulator_version():
    """Stored ground truths are keyed by SIMULATOR_VERSION, not by the simulator's code:
    a change to what it draws must raise the version (and then these figures), or the
    benchmarks would score new estimates against an old world's truth."""
    from shiftattr.datasets.synthetic_ms import SIMULATOR_VERSION

    sim = SyntheticMS(shape=(16, 16, 16), random_state=0)
    env = sim.sample(4, center=["01", "03"], annotator="2", random_state=1)
    x = np.asarray(env["X"], dtype=np.float64).reshape(4, -1)
    env_cf = sim.sample(4, center="01", annotator="1", random_state=1, annotate_all=["3"])
    cf = np.asarray(env_cf.counterfactual("annotator-3", "Y")).reshape(4, -1).sum(1).tolist()
    # SIMULATOR_VERSION: (D, mean of X, s.d. of X, lesion voxels of Y) per case, and the
    # lesion voxels an extra reader draws (version 2 gave extra readers their own noise)
    pinned = {
        2: (
            [
                [0.211569, -1.503389],
                [0.338759, -1.489564],
                [-0.210821, 0.646114],
                [-0.232839, 0.180366],
            ],
            [0.286109, 0.288066, 0.30626, 0.243115],
            [0.416169, 0.399689, 0.429807, 0.274965],
            [1, 14, 9, 3],
            [18, 26, 20, 25],
        )
    }
    assert SIMULATOR_VERSION in pinned, "raise SIMULATOR_VERSION's figures here too"
    d, mean, sd, voxels, cf_voxels = pinned[SIMULATOR_VERSION]
    assert cf == cf_voxels
    np.testing.assert_allclose(env["D"], d, atol=1e-6)
    np.testing.assert_allclose(x.mean(1), mean, atol=1e-5)
    np.testing.assert_allclose(x.std(1), sd, atol=1e-5)
    assert np.asarray(env["Y"]).reshape(4, -1).sum(1).tolist() == voxels
