import numpy as np
import pytest
from scipy import ndimage
from sklearn.base import clone

from shiftattr.ratios import ImageStatsRatio, image_statistics
from shiftattr.ratios.classifier import LINEAR_PENALTIES, default_candidates
from shiftattr.ratios.image_quality import (
    QUALITY_STATISTICS,
    otsu_thresholds,
    quality_statistics,
)

SHAPE = (16, 16, 16)


def _phantom(n, rng, noise=0.05, blur=(0.6, 0.6, 0.6), bias=0.0, blob=0.8, shape=SHAPE):
    """Heads: a bright ellipsoid on a dark background, a darker core, a bright blob,
    then blur (per axis), a smooth multiplicative bias and noise."""
    u = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    head = (((u / np.array([0.85, 0.75, 0.7])[:, None, None, None]) ** 2).sum(0) < 1) * 1.0
    core = (((u / 0.35) ** 2).sum(0) < 1) * -0.4
    out = np.empty((n, *shape))
    for i in range(n):
        c = rng.uniform(-0.3, 0.3, size=3)
        spot = (((u - c[:, None, None, None]) / 0.18) ** 2).sum(0) < 1
        img = head + core + blob * spot * head
        img = ndimage.gaussian_filter(img, blur)
        img = img * np.exp(bias * (u[0] + 0.5 * u[1] * u[2]))
        out[i] = img + noise * rng.normal(size=shape)
    return out


def _col(stats, name):
    return stats[:, QUALITY_STATISTICS.index(name)]


def test_shape_names_and_affine_invariance():
    rng = np.random.default_rng(0)
    x = _phantom(6, rng)
    s = quality_statistics(x)
    assert s.shape == (6, len(QUALITY_STATISTICS)) and np.isfinite(s).all()
    assert len(set(QUALITY_STATISTICS)) == len(QUALITY_STATISTICS)
    # scanner units and z-scoring change nothing
    np.testing.assert_allclose(quality_statistics(250.0 * x + 40.0), s, atol=1e-8)
    z = (x - x.mean(axis=(1, 2, 3), keepdims=True)) / x.std(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(quality_statistics(z), s, atol=1e-8)
    # any number of spatial axes
    assert quality_statistics(x[:, :, :, 8]).shape == (6, len(QUALITY_STATISTICS) - 2)


def test_each_measure_follows_its_cause():
    rng = np.random.default_rng(1)
    ref = quality_statistics(_phantom(20, rng))
    noisy = quality_statistics(_phantom(20, rng, noise=0.15))
    assert _col(noisy, "log_noise_rel").min() > _col(ref, "log_noise_rel").max()
    assert _col(noisy, "log_snr").max() < _col(ref, "log_snr").min()
    # thick slices: only the last axis loses sharpness
    thick = quality_statistics(_phantom(20, rng, blur=(0.6, 0.6, 1.6)))
    d_last = _col(ref, "log_edge99_axis2").mean() - _col(thick, "log_edge99_axis2").mean()
    d_first = _col(ref, "log_edge99_axis0").mean() - _col(thick, "log_edge99_axis0").mean()
    assert d_last > 0.3 and abs(d_first) < 0.5 * d_last
    biased = quality_statistics(_phantom(20, rng, bias=0.4))
    assert _col(biased, "log_nonuniformity").mean() > _col(ref, "log_nonuniformity").mean() + 0.2
    faint = quality_statistics(_phantom(20, rng, blob=0.3))
    for name in ("top1_rel", "top4_cnr"):
        assert np.median(_col(faint, name)) < 0.6 * np.median(_col(ref, name))


def test_integer_images_and_plateaus_keep_the_invariance():
    rng = np.random.default_rng(7)
    # scanner integers: voxels fall exactly on the bright thresholds
    ints = np.round(100 * _phantom(6, rng) + 20)
    s = quality_statistics(ints)
    for a, b in ((0.1, 0.0), (0.01, 3.0), (7.0, -40.0)):
        np.testing.assert_allclose(quality_statistics(a * ints + b), s, atol=1e-7)
    z = (ints - ints.mean(axis=(1, 2, 3), keepdims=True)) / ints.std(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(quality_statistics(z), s, atol=1e-7)
    # noise-free piecewise-constant heads: no inter-quartile range in the foreground
    flat = _phantom(3, rng, noise=0.0, blur=(0, 0, 0))
    s = quality_statistics(flat)
    assert np.isfinite(s).all() and np.abs(s).max() < 1e4
    np.testing.assert_allclose(quality_statistics(flat + 100.0), s, atol=1e-6)
    np.testing.assert_allclose(quality_statistics(5.0 * flat - 1.0), s, atol=1e-6)
    # a huge offset (floors proportional to |x| would swamp the spread)
    noisy = _phantom(3, rng)
    np.testing.assert_allclose(
        quality_statistics(noisy + 1e6), quality_statistics(noisy), atol=1e-4
    )


def test_degenerate_images_stay_finite_and_bad_voxels_are_named():
    const = np.full((2, 6, 6, 6), 3.0)
    tiny = np.random.default_rng(2).normal(size=(3, 2, 2, 2))
    for x in (const, tiny, np.zeros((1, 4, 4, 4))):
        assert np.isfinite(quality_statistics(x)).all()
    with pytest.raises(ValueError, match="needs images"):
        quality_statistics(np.ones(4))
    x = _phantom(5, np.random.default_rng(8))
    x[3, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"cases \[3\] hold NaN or infinite voxels"):
        quality_statistics(x)


def test_cases_are_independent_of_their_batch():
    x = _phantom(9, np.random.default_rng(9))
    whole = quality_statistics(x)
    one_by_one = np.vstack([quality_statistics(x[i : i + 1]) for i in range(9)])
    np.testing.assert_array_equal(whole, one_by_one)


def test_otsu_splits_two_levels():
    rng = np.random.default_rng(3)
    high = rng.uniform(size=(5, 500)) < 0.3
    rows = np.where(high, 10.0, 2.0) + rng.normal(0, 0.3, (5, 500))
    t = otsu_thresholds(rows)
    np.testing.assert_array_equal(rows > t[:, None], high)
    assert otsu_thresholds(np.full((1, 9), -2.0))[0] == -2.0


def test_image_statistics_extended_adds_the_quality_columns():
    rng = np.random.default_rng(4)
    x = _phantom(4, rng)
    feats = {"X": x, "Y": (x > 1.2).astype(np.uint8), "D": np.arange(4.0)}
    basic = image_statistics(feats, statistics="basic")
    ext = image_statistics(feats)  # the default
    assert basic.shape == (4, 1 + 12 + 3) and ext.shape == (4, 1 + 12 + 24 + 3)
    n_x = 12  # basic image columns, after D (1) and before the mask's (3), in name order
    np.testing.assert_array_equal(ext[:, : 1 + n_x], basic[:, : 1 + n_x])
    np.testing.assert_allclose(ext[:, 1 + n_x : 1 + n_x + 24], quality_statistics(x))
    np.testing.assert_array_equal(ext[:, -3:], basic[:, -3:])
    # channels first: one block per channel
    two = np.stack([x, 2 * x + 1], axis=1)
    assert image_statistics({"X": two}, statistics="extended").shape == (4, 2 * (12 + 24))
    with pytest.raises(ValueError, match="'basic', 'extended'"):
        image_statistics(feats, statistics="full")
    with pytest.raises(ValueError, match="'basic', 'extended'"):
        ImageStatsRatio(statistics="full").ratio_features({"X": x})


def test_extended_estimator_competes_linear_models_and_clones():
    names = set(default_candidates(linear=True)) - set(default_candidates())
    assert names == {f"linear-logistic-C{c:g}" for c in LINEAR_PENALTIES}
    ext = ImageStatsRatio(statistics="extended", random_state=0)
    assert set(ext._classifier()._candidates()) == set(default_candidates(linear=True))
    basic = ImageStatsRatio(statistics="basic")
    assert set(basic._classifier()._candidates()) == set(default_candidates())
    assert set(ImageStatsRatio()._classifier()._candidates()) == set(
        default_candidates(linear=True)
    )
    assert clone(ext).statistics == "extended"
    rng = np.random.default_rng(5)
    assert ext.ratio_features({"X": _phantom(3, rng)}).shape == (3, 12 + 24)


def test_extended_weights_balance_lesion_visibility_better_on_a_scanner_shift():
    # center 01 -> 03: fainter lesions, more noise and blur. Weighting the source cases
    # should recover the target's mean lesion contrast-to-noise (what a segmentation
    # model's Dice depends on); the extended statistics should get much closer.
    from shiftattr.datasets import SyntheticMS

    sim = SyntheticMS(shape=SHAPE, random_state=0)

    def visibility(env):
        return np.array([np.mean(v) for v in env.metadata["visibility"]])

    pairs = [
        (
            sim.sample(200, center="01", random_state=2 * s),
            sim.sample(200, center="03", random_state=2 * s + 1),
        )
        for s in range(3)
    ]
    # the target's mean over the three target samples (600 cases; s.e. about 0.1 against
    # errors of 0.7 to 1.8): a separate truth sample cost a third of the test's time
    truth = np.concatenate([visibility(tgt) for _, tgt in pairs]).mean()
    folds = np.arange(200) % 5
    errors = {"none": [], "basic": [], "extended": []}
    for src, tgt in pairs:
        v = visibility(src)
        errors["none"].append(abs(v.mean() - truth))
        for statistics in ("basic", "extended"):
            est = ImageStatsRatio(statistics=statistics, random_state=0)
            lr, _ = est.crossfit_log_ratio({"X": src["X"]}, {"X": tgt["X"]}, folds, folds)
            w = np.exp(lr - lr.max())
            errors[statistics].append(abs(w @ v / w.sum() - truth))
    mean = {k: np.mean(e) for k, e in errors.items()}
    assert mean["extended"] < 0.8 * mean["basic"] < 0.8 * mean["none"], mean
