"""Tests of the CNN discriminator density-ratio estimator (tiny volumes, few epochs)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scipy.ndimage import gaussian_filter  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from shiftattr.environment import LazyVolumes  # noqa: E402
from shiftattr.ratios.cnn import CNNDiscriminator  # noqa: E402

FAST = dict(channels=(4, 8), epochs=15, patience=5, head_units=16, lr=3e-3, num_threads=1)


def blobs(rng, n, shape, scale=1.0, noise=0.3):
    """Smooth random blobs (unit variance per case) plus white noise, times ``scale``."""
    x = gaussian_filter(rng.normal(size=(n, *shape)), sigma=(0,) + (1.5,) * len(shape))
    x /= x.std(axis=tuple(range(1, x.ndim)), keepdims=True)
    return (scale * (x + noise * rng.normal(size=x.shape))).astype(np.float32)


def held_out(est, source, target, n_fit):
    """Fit on the first ``n_fit`` cases of each environment, score the rest."""
    fit_s = {k: v[:n_fit] for k, v in source.items()}
    fit_t = {k: v[:n_fit] for k, v in target.items()}
    est.fit(fit_s, fit_t)
    ls = est.log_ratio({k: v[n_fit:] for k, v in source.items()})
    lt = est.log_ratio({k: v[n_fit:] for k, v in target.items()})
    y = np.r_[np.zeros(len(ls)), np.ones(len(lt))]
    scores = np.r_[ls, lt]
    return roc_auc_score(y, scores), scores


@pytest.mark.parametrize(
    ("shape", "shift"),
    [((16, 16), {"scale": 1.3}), ((12, 12, 12), {"noise": 0.6})],
    ids=["2d-intensity-scale", "3d-noise-level"],
)
def test_detects_acquisition_shift(shape, shift):
    rng = np.random.default_rng(1)
    source = {"img": blobs(rng, 80, shape)}
    target = {"img": blobs(rng, 80, shape, **shift)}
    est = CNNDiscriminator(spatial_dims=len(shape), random_state=0, **FAST)
    auc, scores = held_out(est, source, target, 40)
    assert auc > 0.9
    assert np.all(np.isfinite(scores))
    assert est.val_auc_ > 0.8
    # the target half gets larger ratios than the source half, on average
    assert scores[40:].mean() > scores[:40].mean() + 1.0


def test_no_shift_gives_chance_auc_and_near_zero_log_ratios():
    rng = np.random.default_rng(2)
    source = {"img": blobs(rng, 190, (16, 16))}
    target = {"img": blobs(rng, 190, (16, 16))}
    est = CNNDiscriminator(spatial_dims=2, random_state=0, **FAST)
    auc, scores = held_out(est, source, target, 40)  # scored on 150 + 150 held-out cases
    assert abs(auc - 0.5) < 0.15
    assert abs(scores.mean()) < 0.25
    assert scores.std() < 0.5


def test_case_normalisation_hides_a_pure_intensity_scale_shift():
    # the default global standardisation keeps a x1.3 scale visible (tested above);
    # z-scoring every case removes exactly that information.
    rng = np.random.default_rng(12)
    source = {"img": blobs(rng, 160, (12, 12))}
    target = {"img": blobs(rng, 160, (12, 12), scale=1.3)}
    est = CNNDiscriminator(spatial_dims=2, intensity_norm="case", random_state=0, **FAST)
    auc, _ = held_out(est, source, target, 40)
    assert abs(auc - 0.5) < 0.15


def test_prior_correction_for_unequal_environment_sizes():
    # 30 source vs 90 target cases, same distribution. Without early stopping or
    # calibration (which could hide a wrong offset), balanced batches give log-ratios
    # near 0 directly; natural-frequency batches give logits near log(90/30) = 1.1
    # that the prior correction brings back to 0.
    rng = np.random.default_rng(3)
    source = {"img": blobs(rng, 30, (12, 12))}
    target = {"img": blobs(rng, 90, (12, 12))}
    test = {"img": blobs(rng, 60, (12, 12))}
    plain = dict(validation_fraction=0.0, temperature_scaling=False, random_state=0)
    est = CNNDiscriminator(spatial_dims=2, **plain, **FAST).fit(source, target)
    assert est.log_prior_correction_ == 0.0
    assert abs(est.log_ratio(test).mean()) < 0.4

    unbal = CNNDiscriminator(spatial_dims=2, balanced=False, **plain, **FAST)
    lr = unbal.fit(source, target).log_ratio(test)
    assert unbal.log_prior_correction_ == pytest.approx(-math.log(3.0))
    assert abs(lr.mean()) < 0.4
    assert (lr - unbal.log_prior_correction_).mean() > 0.7  # the raw logit carries the prior


def test_vector_node_shift_is_detected_through_the_head():
    rng = np.random.default_rng(4)
    n = 100
    source = {"img": blobs(rng, n, (12, 12)), "age": rng.normal(0.0, 1.0, n)}
    target = {"img": blobs(rng, n, (12, 12)), "age": rng.normal(3.0, 1.0, n)}
    est = CNNDiscriminator(spatial_dims=2, random_state=0, **{**FAST, "epochs": 30})
    auc, _ = held_out(est, source, target, 50)
    assert auc > 0.85  # Bayes AUC is Phi(3 / sqrt 2) = 0.98; images carry no signal
    assert est._layout_.n_vector == 1 and est._layout_.n_channels == 1


def test_vector_only_features_work():
    rng = np.random.default_rng(5)
    source = {"z": rng.normal(0.0, 1.0, (80, 2))}
    target = {"z": rng.normal(0.0, 1.0, (80, 2)) + np.array([2.0, 0.0])}
    est = CNNDiscriminator(spatial_dims=3, random_state=0, **{**FAST, "epochs": 30})
    auc, _ = held_out(est, source, target, 40)
    assert auc > 0.8


def test_channel_axis_and_several_image_nodes_are_stacked():
    rng = np.random.default_rng(6)
    n = 12
    source = {"b": rng.normal(size=(n, 2, 8, 8)), "a": rng.normal(size=(n, 8, 8))}
    target = {"b": rng.normal(size=(n, 2, 8, 8)), "a": rng.normal(size=(n, 8, 8))}
    est = CNNDiscriminator(spatial_dims=2, random_state=0, **{**FAST, "epochs": 1})
    est.fit(source, target)
    assert est.nodes_ == ("a", "b")
    assert est._layout_.n_channels == 3
    assert est.channel_mean_.shape == (3,)
    # node order in the mapping does not matter
    np.testing.assert_array_equal(
        est.log_ratio(source), est.log_ratio({"a": source["a"], "b": source["b"]})
    )


def test_mismatched_spatial_shapes_name_the_nodes():
    rng = np.random.default_rng(7)
    bad = {"flair": rng.normal(size=(6, 8, 8)), "mask": rng.normal(size=(6, 8, 9))}
    est = CNNDiscriminator(spatial_dims=2, **FAST)
    with pytest.raises(ValueError, match=r"'flair'.*\(8, 8\).*'mask'.*\(8, 9\)"):
        est.fit(bad, bad)


def test_wrong_dimensionality_is_reported():
    est = CNNDiscriminator(spatial_dims=3, **FAST)
    feats = {"x": np.zeros((6, 4, 4))}  # 2-d cases with spatial_dims=3
    with pytest.raises(ValueError, match=r"'x'.*spatial_dims=3"):
        est.fit(feats, feats)


def test_unfitted_log_ratio_raises_not_fitted():
    est = CNNDiscriminator(spatial_dims=2)
    with pytest.raises(NotFittedError, match="CNNDiscriminator"):
        est.log_ratio({"x": np.zeros((3, 8, 8))})


def test_different_nodes_at_prediction_raise():
    rng = np.random.default_rng(8)
    feats = {"x": rng.normal(size=(10, 8, 8)), "age": rng.normal(size=10)}
    est = CNNDiscriminator(spatial_dims=2, random_state=0, **{**FAST, "epochs": 1})
    est.fit(feats, feats)
    with pytest.raises(ValueError, match="fitted on"):
        est.log_ratio({"x": feats["x"]})
    with pytest.raises(ValueError, match="differ from fit"):
        est.log_ratio({"x": rng.normal(size=(10, 6, 6)), "age": feats["age"]})
    with pytest.raises(ValueError, match="different nodes"):
        est.fit(feats, {"x": feats["x"]})


def test_same_random_state_is_deterministic_and_clone_is_unfitted():
    rng = np.random.default_rng(9)
    source = {"img": blobs(rng, 30, (12, 12))}
    target = {"img": blobs(rng, 30, (12, 12), scale=1.3)}
    est = CNNDiscriminator(spatial_dims=2, random_state=11, **{**FAST, "epochs": 4})
    first = est.fit(source, target).log_ratio(source)

    copy = clone(est)
    assert not hasattr(copy, "module_")
    assert copy.get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        copy.log_ratio(source)
    second = copy.fit(source, target).log_ratio(source)
    np.testing.assert_array_equal(first, second)
    for key in ("train_loss", "train_penalty", "val_loss", "val_auc"):
        np.testing.assert_array_equal(copy.history_[key], est.history_[key])
    assert (copy.temperature_, copy.best_epoch_) == (est.temperature_, est.best_epoch_)

    other = CNNDiscriminator(spatial_dims=2, random_state=12, **{**FAST, "epochs": 4})
    assert not np.array_equal(first, other.fit(source, target).log_ratio(source))


class _RecordingVolumes(LazyVolumes):
    """LazyVolumes that records how many volumes each ``load`` call reads."""

    def __init__(self, array, calls):
        super().__init__(lambda i: array[i], len(array), shape=array.shape[1:])
        self.calls = calls

    def load(self, indices=None):
        self.calls.append(len(self) if indices is None else len(indices))
        return super().load(indices)


def test_lazy_volumes_match_arrays_and_load_in_batches():
    rng = np.random.default_rng(10)
    s_arr, t_arr = blobs(rng, 30, (12, 12)), blobs(rng, 30, (12, 12), scale=1.3)
    est = CNNDiscriminator(spatial_dims=2, random_state=0, batch_size=8, **{**FAST, "epochs": 3})
    eager = est.fit({"img": s_arr}, {"img": t_arr}).log_ratio({"img": s_arr})

    calls: list[int] = []
    lazy_s, lazy_t = _RecordingVolumes(s_arr, calls), _RecordingVolumes(t_arr, calls)
    lazy = clone(est).fit({"img": lazy_s}, {"img": lazy_t}).log_ratio({"img": lazy_s})
    np.testing.assert_allclose(lazy, eager, rtol=1e-6, atol=1e-6)
    assert calls and max(calls) <= 8  # never the whole set at once


def test_history_temperature_and_tta_options():
    rng = np.random.default_rng(11)
    source = {"img": blobs(rng, 24, (8, 8))}
    target = {"img": blobs(rng, 24, (8, 8), scale=1.5)}
    est = CNNDiscriminator(spatial_dims=2, random_state=0, tta=3, **{**FAST, "epochs": 3})
    est.fit(source, target)
    assert len(est._views()) == 3
    assert set(est.history_) == {"train_loss", "train_penalty", "val_loss", "val_auc", "seconds"}
    assert all(len(v) == est.n_epochs_ for v in est.history_.values())
    assert 0 <= est.best_epoch_ <= est.n_epochs_
    assert 0.05 <= est.temperature_ <= 100

    plain = clone(est).set_params(tta=False, temperature_scaling=False).fit(source, target)
    assert len(plain._views()) == 1
    assert plain.temperature_ == 1.0 and plain.calibration_bias_ == 0.0
    assert np.all(np.isfinite(plain.log_ratio(target)))

    with pytest.warns(UserWarning, match="validation_fraction=0"):
        none = clone(est).set_params(validation_fraction=0.0).fit(source, target)
    assert none.n_epochs_ == 3 and none.val_auc_ is None and none.temperature_ == 1.0
    assert set(none.history_) == {"train_loss", "train_penalty", "seconds"}


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("spatial_dims", 4),
        ("channels", ()),
        ("batch_size", 1),
        ("flip_axes", (2,)),
        ("intensity_norm", "zscore"),
        ("tta", -1),
    ],
)
def test_bad_parameters_fail_at_fit(param, value):
    est = CNNDiscriminator(spatial_dims=2, **FAST).set_params(**{param: value})
    feats = {"x": np.zeros((6, 4, 4))}
    with pytest.raises(ValueError, match=param):
        est.fit(feats, feats)


def test_attribute_reports_each_folds_training_and_holds_the_network_fixed():
    # the networks' training (epoch kept, held-out AUC, temperature) was thrown away by
    # cross-fitting, and the default refit bootstrap retrained them per replicate
    import warnings

    import shiftattr as sa

    rng = np.random.default_rng(0)
    src = sa.Environment({"X": rng.normal(0, 1, (20, 8, 8)).astype("float32")}, name="s")
    tgt = sa.Environment({"X": rng.normal(0, 1.5, (20, 8, 8)).astype("float32")}, name="t")
    cnn = CNNDiscriminator(spatial_dims=2, channels=(4,), epochs=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sa.attribute(
            sa.CausalGraph({"X": []}), src, tgt, metric=np.ones(20), estimators={"X": cnn},
            n_folds=2, n_bootstrap=2, progress=False, random_state=0,
        )  # fmt: skip
    folds = res.diagnostics["ratio_fits"]["X"]
    assert len(folds) == 2 and {f["n_epochs"] for f in folds} <= {1, 2}
    assert all(0 <= f["best_epoch"] <= f["n_epochs"] and f["temperature"] > 0 for f in folds)
    assert all(f["input_shape"] == [8, 8] for f in folds)  # a small grid: not pooled
    assert res.settings["bootstrap"] == "fixed"
    assert (
        sa.Attribution.from_json(res.to_json()).diagnostics["ratio_fits"]
        == res.diagnostics["ratio_fits"]
    )


@pytest.mark.parametrize(
    ("spatial_dims", "shape", "match"),
    [  # the CNN ran on these with no word: slices as channels, channels as slices
        (2, (16, 16, 16), r"with spatial_dims=2 that is 16 channels of 16×16 images\. If its "
         r"cases are 3D volumes, pass spatial_dims=3"),
        (3, (2, 16, 16), r"volumes only 2 voxel\(s\) deep\. If they are 2D images with 2 "
         r"channel\(s\), pass spatial_dims=2"),
        (3, (1, 24, 24), r"pass spatial_dims=2"),  # MONAI's channel-first 2D image
    ],
)  # fmt: skip
def test_a_likely_misread_spatial_dims_is_refused_with_the_value_to_pass(
    spatial_dims, shape, match
):
    rng = np.random.default_rng(0)
    src, tgt = ({"X": rng.normal(size=(12, *shape)).astype(np.float32)} for _ in range(2))
    est = CNNDiscriminator(spatial_dims=spatial_dims, **FAST)
    with pytest.raises(ValueError, match=match):
        est.fit(src, tgt)


def test_real_multichannel_images_and_thin_but_wide_volumes_are_read():
    rng = np.random.default_rng(0)
    for spatial_dims, shape in ((2, (4, 16, 16)), (3, (6, 16, 16)), (3, (2, 4, 4, 4))):
        src, tgt = ({"X": rng.normal(size=(12, *shape)).astype(np.float32)} for _ in range(2))
        CNNDiscriminator(spatial_dims=spatial_dims, **{**FAST, "epochs": 1}).fit(src, tgt)


def test_a_case_on_another_grid_is_named_with_what_to_do():
    """One 45x48x48 case among 48^3 ones (NIfTI cases on different grids) failed with
    "case shapes differ from fit", naming neither the case nor a remedy."""
    rng = np.random.default_rng(0)
    cases = [rng.normal(size=(12, 12)).astype(np.float32) for _ in range(16)]
    cases[5] = rng.normal(size=(11, 12)).astype(np.float32)
    ragged = LazyVolumes(lambda i: cases[i], len(cases))  # no declared shape
    target = {"img": blobs(rng, 16, (12, 12))}
    est = CNNDiscriminator(spatial_dims=2, **{**FAST, "epochs": 1})
    with pytest.raises(ValueError, match=r"node 'img': case 5 has shape \(11, 12\), not "
                       r"\(12, 12\).*resample them to a common grid, or use ImageStatsRatio"):  # fmt: skip
        est.fit({"img": ragged}, target)


@pytest.mark.parametrize(
    ("downsample", "shape", "factors", "pooled"),
    [
        ("auto", (32, 32, 32), (1, 1, 1), (32, 32, 32)),  # the simulator's grid: unchanged
        ("auto", (64, 64, 64), (2, 2, 2), (32, 32, 32)),
        ("auto", (128, 128, 96), (3, 3, 2), (43, 43, 48)),
        ("auto", (256, 256, 180), (6, 6, 4), (43, 43, 45)),
        (1, (128, 128, 96), (1, 1, 1), (128, 128, 96)),
        ((2, 2, 1), (64, 64, 5), (2, 2, 1), (32, 32, 5)),
    ],
)
def test_downsample_factors_bring_large_grids_to_a_trainable_size(
    downsample, shape, factors, pooled
):
    from shiftattr.ratios.cnn import _pooled_shape

    est = CNNDiscriminator(downsample=downsample)
    assert est._downsample_factors(shape) == factors
    assert _pooled_shape(shape, factors) == pooled


@pytest.mark.parametrize("value", [0, "half", (2, 2), (2, 0, 2), 1.5, True])
def test_a_bad_downsample_is_refused_at_fit(value):
    est = CNNDiscriminator(spatial_dims=3, downsample=value, **FAST)
    feats = {"x": np.zeros((6, 4, 4, 4), np.float32)}
    with pytest.raises(ValueError, match="downsample must be 'auto', a positive int"):
        est.fit(feats, feats)


def test_pooling_averages_blocks_and_keeps_every_voxel_where_a_factor_does_not_divide():
    from shiftattr.ratios.cnn import _pool

    rng = np.random.default_rng(0)
    img = rng.normal(size=(3, 2, 8, 6)).astype(np.float32)
    blocks = img.reshape(3, 2, 4, 2, 3, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(_pool(img, (4, 3)), blocks, rtol=1e-5, atol=1e-6)
    odd = _pool(img[:, :, :7], (4, 3))  # 7 rows into 4 cells: the last cell is rows 5-6
    np.testing.assert_allclose(odd[:, :, -1, 0], img[:, :, 5:7, 0:2].mean(axis=(2, 3)), rtol=1e-5)
    assert _pool(img, (8, 6)) is img


def test_a_downsampled_discriminator_still_sees_a_scanner_shift_and_predicts_on_the_fit_grid():
    # 2D 96x96 images: "auto" trains on 48x48; an intensity-scale and noise shift
    # survive the averaging, and log_ratio pools new cases the same way
    rng = np.random.default_rng(3)
    shape = (96, 96)
    source = {"img": blobs(rng, 60, shape)}
    target = {"img": blobs(rng, 60, shape, scale=1.25, noise=0.6)}
    est = CNNDiscriminator(spatial_dims=2, random_state=0, **{**FAST, "epochs": 6})
    auc, scores = held_out(est, source, target, 30)
    assert est.downsample_ == (2, 2) and est.input_shape_ == (48, 48)
    assert auc > 0.9 and np.all(np.isfinite(scores))
    with pytest.raises(ValueError, match="case shapes differ from fit"):
        est.log_ratio({"img": blobs(rng, 4, (48, 48))})  # the pooled grid is not the input grid


def test_cases_on_another_grid_are_named_before_any_volume_is_read():
    """NIfTI cases whose headers give another grid failed only when training reached
    the fold that held one, after minutes of training on the others."""
    rng = np.random.default_rng(0)
    shapes = [(12, 12)] * 16
    shapes[0], shapes[9] = (11, 12), (12, 10)  # the first case is odd too: not the reference
    reads: list[int] = []

    def loader(i):
        reads.append(i)
        return rng.normal(size=shapes[i]).astype(np.float32)

    source = {"img": LazyVolumes(loader, 16, item_shapes=shapes)}
    target = {"img": blobs(rng, 16, (12, 12))}
    est = CNNDiscriminator(spatial_dims=2, **{**FAST, "epochs": 1})
    with pytest.raises(ValueError, match=r"case 0 has shape \(11, 12\), case 9 has shape "
                       r"\(12, 10\), not \(12, 12\) like the others"):  # fmt: skip
        est.fit(source, target)
    assert reads == []
    # a fold without the odd cases trains
    est.fit({"img": source["img"][1:9]}, {"img": target["img"][:8]})


@pytest.mark.parametrize("shape", [(12, 12), (100, 12)], ids=["lazy", "lazy-and-pooled"])
def test_fit_reads_each_lazy_case_once_and_gives_the_same_ratios_as_without_the_cache(
    shape, monkeypatch
):
    """Every epoch read (and pooled) every training volume again: with NIfTI files at
    256x256x180 the reads cost several times the network's own time."""
    from shiftattr.ratios import cnn as module

    rng = np.random.default_rng(4)
    arrays = (blobs(rng, 20, shape), blobs(rng, 20, shape, scale=1.3))
    reads: list[int] = []

    def lazy(a):
        return LazyVolumes(lambda i: reads.append(i) or a[i], len(a), shape=a.shape[1:])

    est = CNNDiscriminator(spatial_dims=2, random_state=0, **{**FAST, "epochs": 4})
    cached = est.fit({"img": lazy(arrays[0])}, {"img": lazy(arrays[1])})
    assert sorted(reads) == sorted(list(range(20)) * 2)  # each case of each side, once
    assert cached.n_epochs_ == 4 and cached._inputs is None  # the cache ends with the fit
    lr_cached = cached.log_ratio({"img": arrays[0]})
    monkeypatch.setattr(module, "INPUT_CACHE_BYTES", 0)
    reads.clear()
    uncached = clone(est).fit({"img": lazy(arrays[0])}, {"img": lazy(arrays[1])})
    assert len(reads) > 4 * 40
    np.testing.assert_allclose(uncached.log_ratio({"img": arrays[0]}), lr_cached, rtol=1e-5)


def test_inside_attribute_an_odd_grid_is_named_by_its_place_in_the_environment_before_training():
    # each fold checked only its own cases: an odd case held out in the first fold was
    # met after that fold's network had trained, and named by its place in the fold
    import warnings

    import shiftattr as sa

    rng = np.random.default_rng(0)
    shapes = [(12, 12)] * 20
    shapes[18] = (11, 12)
    vols = [rng.normal(size=sh).astype(np.float32) for sh in shapes]
    src = sa.Environment({"X": LazyVolumes(lambda i: vols[i], 20, item_shapes=shapes)}, name="s")
    tgt = sa.Environment({"X": blobs(rng, 20, (12, 12))}, name="t")
    fits: list[int] = []

    class Counting(CNNDiscriminator):
        def fit(self, source_features, target_features):
            fits.append(1)
            return super().fit(source_features, target_features)

    est = Counting(spatial_dims=2, **{**FAST, "epochs": 1})
    with warnings.catch_warnings(), pytest.raises(ValueError, match=r"case 18 has shape"):
        warnings.simplefilter("ignore")
        sa.attribute(
            sa.CausalGraph({"X": []}), src, tgt, metric=np.ones(20), estimators={"X": est},
            n_folds=5, n_bootstrap=0, progress=False, random_state=0,
        )  # fmt: skip
    assert fits == []


def test_a_discriminator_pickled_before_pooling_still_predicts():
    rng = np.random.default_rng(0)
    src, tgt = {"x": rng.normal(size=(12, 8, 8))}, {"x": rng.normal(size=(12, 8, 8))}
    est = CNNDiscriminator(spatial_dims=2, channels=(2,), epochs=1, num_threads=1)
    est.fit(src, tgt)
    expected = est.log_ratio(src)
    del est.input_shape_, est.downsample_  # as unpickled from an older version
    np.testing.assert_allclose(est.log_ratio(src), expected)
    assert est.fit_report()["input_shape"] is None


def test_the_untrained_network_of_unbalanced_batches_is_no_shift(monkeypatch):
    """With natural-frequency batches the untrained network scored log-ratio -log(3),
    not 0, so any epoch that learnt the class prior beat "no shift" on held-out data."""
    rng = np.random.default_rng(3)
    source = {"img": blobs(rng, 20, (12, 12))}
    target = {"img": blobs(rng, 60, (12, 12))}
    monkeypatch.setattr(CNNDiscriminator, "_train", lambda self, *args: None)  # untrained
    plain = dict(validation_fraction=0.0, temperature_scaling=False, random_state=0)
    est = CNNDiscriminator(spatial_dims=2, balanced=False, **plain, **FAST).fit(source, target)
    assert est.log_prior_correction_ == pytest.approx(-math.log(3.0))
    assert abs(est.log_ratio(source).mean()) < 0.05
