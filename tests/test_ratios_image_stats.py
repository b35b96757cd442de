import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from shiftattr import Environment, LazyVolumes
from shiftattr.ratios import ImageStatsRatio, image_statistics


def _volumes(n, rng, noise=0.3, scale=1.0, shape=(12, 12, 12)):
    from scipy.ndimage import gaussian_filter

    base = gaussian_filter(rng.normal(size=(n, *shape)), sigma=(0, 2, 2, 2)) * 4
    return scale * (base + noise * rng.normal(size=(n, *shape)))


def _held_out_auc(est, src, tgt):
    half = len(src) // 2
    est.fit({"X": src[:half]}, {"X": tgt[:half]})
    lr = est.log_ratio({"X": np.concatenate([src[half:], tgt[half:]])})
    return roc_auc_score(np.r_[np.zeros(len(src) - half), np.ones(len(tgt) - half)], lr)


def test_detects_noise_and_scale_shifts():
    rng = np.random.default_rng(0)
    src = _volumes(80, rng)
    assert _held_out_auc(ImageStatsRatio(random_state=0), src, _volumes(80, rng, noise=0.45)) > 0.9
    assert _held_out_auc(ImageStatsRatio(random_state=0), src, _volumes(80, rng, scale=1.3)) > 0.9


def test_no_shift_gives_chance_auc_and_small_ratios():
    rng = np.random.default_rng(1)
    src, tgt = _volumes(100, rng), _volumes(100, rng)
    est = ImageStatsRatio(random_state=0)
    assert abs(_held_out_auc(est, src, tgt) - 0.5) < 0.15
    # no shift: held-out log-ratios spread far less than under a real shift
    held = est.log_ratio({"X": np.concatenate([src[50:], tgt[50:]])})
    assert held.std() < 1.0


def test_mask_statistics_see_over_segmentation():
    from scipy.ndimage import binary_dilation

    rng = np.random.default_rng(2)
    x = _volumes(120, rng)
    y = (x > 1.0).astype(np.uint8)
    y_over = np.stack([binary_dilation(m) for m in y]).astype(np.uint8)
    est = ImageStatsRatio(random_state=0).fit(
        {"X": x[:60], "Y": y[:60]}, {"X": x[:60], "Y": y_over[:60]}
    )
    lr = est.log_ratio(
        {"X": np.concatenate([x[60:], x[60:]]), "Y": np.concatenate([y[60:], y_over[60:]])}
    )
    assert roc_auc_score(np.r_[np.zeros(60), np.ones(60)], lr) > 0.9


def test_statistics_shapes_lazy_and_vectors():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 8, 8, 8))
    lazy = LazyVolumes(lambda i: x[i], 5, shape=(8, 8, 8))
    np.testing.assert_allclose(
        image_statistics({"X": lazy}, batch_size=2), image_statistics({"X": x})
    )
    both = image_statistics({"X": x, "D": np.arange(10.0).reshape(5, 2)})
    assert both.shape == (5, 2 + 12 + 24)  # extended by default
    basic = image_statistics({"X": x, "D": np.arange(10.0).reshape(5, 2)}, statistics="basic")
    assert basic.shape == (5, 2 + 12)
    masks = (x > 0).astype(np.uint8)
    assert image_statistics({"Y": masks}).shape == (5, 3)
    mic = image_statistics({"Y": masks, "X": x}, mask_image_contrast=True, statistics="basic")
    assert mic.shape == (5, 3 + 3 + 12)


def test_conventions_and_errors():
    est = ImageStatsRatio(spatial_dims=2)
    assert clone(est).get_params()["spatial_dims"] == 2
    with pytest.raises(NotFittedError):
        est.log_ratio({"X": np.zeros((2, 4, 4))})
    with pytest.raises(ValueError, match="different nodes"):
        est.fit({"X": np.zeros((8, 4, 4))}, {"Y": np.zeros((8, 4, 4))})
    rng = np.random.default_rng(4)
    est.fit({"X": rng.normal(size=(20, 6, 6))}, {"X": rng.normal(size=(20, 6, 6))})
    with pytest.raises(ValueError, match="fitted on"):
        est.log_ratio({"Z": np.zeros((2, 6, 6))})
    env = Environment({"X": rng.normal(size=(3, 6, 6))})
    assert est.log_ratio(env.features(["X"])).shape == (3,)


def test_an_integer_image_is_one_kind_whatever_its_batches_hold():
    # a dark uint8 image whose first batch is all 0/1 once got mask statistics there
    # and image statistics elsewhere, and np.vstack failed without naming the node
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, size=(6, 8, 8, 8)).astype(np.uint8)
    x[3:] = rng.integers(0, 200, size=(3, 8, 8, 8))
    F = image_statistics({"X": x}, batch_size=3)
    assert F.shape == image_statistics({"X": x.astype(np.float32)}, batch_size=3).shape
    assert np.isfinite(F).all()


def test_image_statistics_errors_name_the_problem():
    with pytest.raises(ValueError, match="at least one case"):
        image_statistics({"X": np.zeros((0, 4, 4, 4))})
    with pytest.raises(ValueError, match="batch_size"):
        image_statistics({"X": np.zeros((2, 4, 4, 4))}, batch_size=0)
    lazy = LazyVolumes(lambda i: np.full((4, 4, 4), 0 if i == 0 else 7, np.uint8), 4)
    with pytest.raises(ValueError, match="node 'Y' looked like a binary mask"):
        image_statistics({"Y": lazy}, batch_size=1)


class _Corner:
    """A featurizer that counts its calls: the value of one voxel of the image."""

    def __init__(self):
        self.calls = 0

    def __call__(self, environment):
        self.calls += 1
        x = np.asarray(environment["X"])
        return x[:, 0, 0, 0, None]


def test_extra_features_see_a_shift_the_statistics_miss():
    # the target moves one bright voxel to a fixed corner: the intensity histogram, the
    # noise and the sharpness are those of the source, but a featurizer reading that
    # corner separates the environments
    rng = np.random.default_rng(7)

    def volumes(n, corner):
        x = rng.normal(size=(n, 6, 6, 6))
        flat = x.reshape(n, -1)
        where = np.zeros(n, dtype=int) if corner else rng.integers(1, 216, size=n)
        flat[np.arange(n), where] = 6.0
        return x

    src, tgt = volumes(120, corner=False), volumes(120, corner=True)
    # (the extended statistics' sharpness per axis sees the corner: basic ones here)
    assert _held_out_auc(ImageStatsRatio(statistics="basic", random_state=0), src, tgt) < 0.7
    corner = _Corner()
    est = ImageStatsRatio(extra_features={"X": corner}, statistics="basic", random_state=0)
    assert _held_out_auc(est, src, tgt) > 0.95
    assert corner.calls == 3  # fit (source, target) and the held-out log_ratio
    # cross-fitting computes every case's features once, through the same callable
    folds = np.arange(120) % 3
    lr_s, lr_t = est.crossfit_log_ratio({"X": src}, {"X": tgt}, folds, folds)
    assert lr_t.mean() - lr_s.mean() > 2.0 and corner.calls == 5
    # a node set without X (the parents of the acquisition) gets no extra columns
    assert est._stats({"D": np.arange(4.0)}).shape == (4, 1)


def test_extra_features_are_shared_by_clones_and_checked():
    corner = _Corner()
    est = ImageStatsRatio(extra_features={"X": corner}, random_state=3)
    twin = clone(est)
    assert twin.extra_features["X"] is corner and twin.random_state == 3
    rng = np.random.default_rng(0)
    src, tgt = {"X": rng.normal(size=(10, 4, 4, 4))}, {"X": rng.normal(size=(10, 4, 4, 4))}
    bad = ImageStatsRatio(extra_features={"X": lambda env: np.zeros((3, 2))})
    with pytest.raises(ValueError, match=r"extra_features\['X'\] must return 10 rows"):
        bad.fit(src, tgt)
    nan = ImageStatsRatio(extra_features={"X": lambda env: np.full(10, np.nan)})
    with pytest.raises(ValueError, match="non-finite"):
        nan.fit(src, tgt)


def test_extra_features_see_the_cases_metadata_in_every_fold():
    # an adapter with spacing="metadata" reads each case's voxel spacing from the
    # environment it is given: the estimator must pass the cases' metadata along (it
    # passed bare arrays, and every NIfTI run of the command line crashed)
    rng = np.random.default_rng(0)

    def env(name: str, scale: float) -> Environment:
        spacing = np.tile([1.0, 1.0, 3.0 if name == "t" else 1.0], (20, 1))
        return Environment(
            {"X": rng.normal(0, scale, size=(20, 4, 4, 4))},
            name=name,
            metadata={"spacing": spacing},
        )

    seen = []

    def voxel_volume(environment: Environment) -> np.ndarray:
        spacing = environment.metadata["spacing"]  # KeyError without the metadata
        assert len(spacing) == len(environment)
        seen.append(len(environment))
        return np.prod(spacing, axis=1)

    est = ImageStatsRatio(extra_features={"X": voxel_volume}, random_state=0)
    src, tgt = env("s", 1.0), env("t", 1.0)
    ls, lt = est.crossfit_log_ratio(
        src.features(["X"]), tgt.features(["X"]), np.arange(20) % 2, np.arange(20) % 2
    )
    assert seen and np.isfinite(ls).all() and np.isfinite(lt).all()
    # the voxel volume tells the two environments apart
    assert lt.mean() > ls.mean() + 1.0
    # a selection of cases (a fold, a resample) carries its cases' rows of the metadata
    seen.clear()
    half = np.arange(0, 20, 2)
    est.fit(src.features(["X"], half), tgt.features(["X"], half))
    assert seen and set(seen) == {10}


def test_statistics_are_computed_once_per_case_across_bootstrap_resamples(monkeypatch):
    # a refit bootstrap replicate refits on a resample of the same cases: their
    # statistics come from the environment's cache, with the same numbers
    import shiftattr.ratios.image_stats as module

    rng = np.random.default_rng(0)
    src = Environment({"X": rng.normal(0, 1.0, size=(30, 8, 8, 8))}, name="s")
    tgt = Environment({"X": rng.normal(0, 1.03, size=(30, 8, 8, 8))}, name="t")
    calls = []
    real = module.image_statistics
    monkeypatch.setattr(
        module, "image_statistics", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    folds = np.arange(30) % 3
    est = ImageStatsRatio(random_state=0)
    first = est.crossfit_log_ratio(src.features(["X"]), tgt.features(["X"]), folds, folds)
    assert len(calls) == 2
    idx = rng.integers(0, 30, size=30)
    bs, bt = src.subset(idx), tgt.subset(idx)
    cached = est.crossfit_log_ratio(bs.features(["X"]), bt.features(["X"]), folds, folds)
    assert len(calls) == 2  # nothing recomputed
    fresh = est.crossfit_log_ratio(
        dict(bs.features(["X"])), dict(bt.features(["X"])), folds, folds
    )  # plain mappings: computed again, the same log-ratios
    assert len(calls) == 4
    np.testing.assert_array_equal(cached[0], fresh[0])
    np.testing.assert_array_equal(cached[1], fresh[1])
    assert not np.array_equal(first[0], cached[0])
    # another setting is another summary
    ImageStatsRatio(statistics="basic", random_state=0).crossfit_log_ratio(
        src.features(["X"]), tgt.features(["X"]), folds, folds
    )
    assert len(calls) == 4 + 2


def test_node_sets_share_the_statistics_of_their_common_nodes(monkeypatch):
    """{X} and {X, Y} each computed X's statistics: half of an attribution's time at
    128x128x96, where they cost about 2 s per case (scaling review)."""
    import shiftattr.ratios.image_stats as module

    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 8, 8, 8))
    env = Environment({"X": x, "Y": x > 1.5}, name="s")
    computed = []
    real = module.image_statistics
    monkeypatch.setattr(
        module, "image_statistics", lambda f, *a, **k: computed.append(tuple(f)) or real(f, *a, **k)
    )
    est = ImageStatsRatio()
    joint = est.ratio_features(env.features(["X", "Y"]))
    assert est.ratio_features(env.features(["X"])).shape[1] < joint.shape[1]
    assert computed == [("X",), ("Y",)]  # each node once, whatever the sets
    np.testing.assert_array_equal(joint, real({"X": x, "Y": x > 1.5}))  # same columns
    # a mask's contrast with the images depends on its set: there the set is computed
    contrast = ImageStatsRatio(mask_image_contrast=True)
    contrast.ratio_features(env.features(["X", "Y"]))
    assert computed[-1] == ("X", "Y")


def test_parallel_fits_leave_the_statistics_in_the_parents_cache(monkeypatch):
    # with n_jobs=2 the fits run in worker processes; the statistics are computed in
    # the parent first, so the environments the workers (and refit replicates) get
    # carry them, and the log-ratios are those of the in-process fit
    import shiftattr.ratios.crossfit as crossfit
    from shiftattr import CausalGraph
    from shiftattr.ratios import CrossFittedRatios

    rng = np.random.default_rng(1)
    graph = CausalGraph({"X": []})
    src = Environment({"X": rng.normal(0, 1.0, size=(24, 6, 6, 6))}, name="s")
    tgt = Environment({"X": rng.normal(0, 1.2, size=(24, 6, 6, 6))}, name="t")
    cached_at_dispatch = []

    class Recording(crossfit.Parallel):  # what the environments hold when fits go out
        def __call__(self, tasks):
            cached_at_dispatch.append(len(s._summaries) + len(t._summaries))
            return super().__call__(tasks)

    monkeypatch.setattr(crossfit, "Parallel", Recording)
    fitted = {}
    for n_jobs in (1, 2):
        s, t = src.subset(np.arange(24)), tgt.subset(np.arange(24))  # empty caches
        est = ImageStatsRatio(statistics="basic", random_state=0)
        cf = CrossFittedRatios(graph, ["X"], {"X": est}, 3, n_jobs, False, random_state=0)
        fitted[n_jobs] = cf.fit(s, t)
        # the statistics, and the fingerprints that find cases shared by both sides
        kinds = {"case_fingerprint", "image_statistics"}
        assert sorted(k[0] for k in s._summaries) == sorted(kinds), n_jobs
        assert sorted(k[0] for k in t._summaries) == sorted(kinds), n_jobs
    # filled before any fit goes out, in process or to workers
    assert cached_at_dispatch == [4, 4]
    np.testing.assert_allclose(fitted[2].log_ratios, fitted[1].log_ratios)
    # the cache travels with a pickled environment and its resamples
    import pickle

    (key,) = [k for k in s._summaries if k[0] == "image_statistics"]
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(s))._summaries[key], s._summaries[key])


def test_lazy_cases_of_different_shapes_give_per_case_statistics():
    """NIfTI cases on different grids: statistics per case, equal to each case alone."""
    rng = np.random.default_rng(5)
    shapes = [(8, 8, 8), (8, 8, 6), (8, 8, 8), (7, 8, 6)]
    images = [rng.normal(size=s) for s in shapes]
    masks = [rng.random(s) > 0.8 for s in shapes]
    feats = {
        "X": LazyVolumes(lambda i: images[i], len(shapes)),  # shape unknown: not checked
        "Y": LazyVolumes(lambda i: masks[i], len(shapes)),
    }
    for statistics in ("basic", "extended"):
        for batch_size in (1, 3, 32):
            out = image_statistics(feats, batch_size=batch_size, statistics=statistics)
            assert out.shape == (4, (15 if statistics == "basic" else 39))
            for i in range(len(shapes)):
                alone = {"X": images[i][None], "Y": masks[i][None]}
                np.testing.assert_allclose(
                    out[i], image_statistics(alone, statistics=statistics)[0]
                )


def test_large_volumes_are_summarised_a_few_cases_at_a_time(monkeypatch):
    """A batch of 32 cases of 256x256x180 needed about 15 GB (the statistics take about
    nine float64 copies); batches are now bounded in bytes, with the same numbers."""
    import shiftattr.ratios.image_stats as module

    rng = np.random.default_rng(0)
    feats = {"X": rng.normal(size=(10, 8, 8, 8)), "D": np.arange(10.0)}
    whole = module.image_statistics(feats)
    sizes = []
    real = module._batch_statistics
    monkeypatch.setattr(
        module,
        "_batch_statistics",
        lambda b, idx, *a, **k: sizes.append(len(idx)) or real(b, idx, *a, **k),
    )
    monkeypatch.setattr(module, "BATCH_BYTES", 3 * 8 * 8**3)  # three cases' float64 voxels
    np.testing.assert_array_equal(module.image_statistics(feats), whole)
    assert sizes == [3, 3, 3, 1]
    sizes.clear()
    monkeypatch.setattr(module, "BATCH_BYTES", 1)  # never fewer than one case
    np.testing.assert_array_equal(module.image_statistics(feats, batch_size=4), whole)
    assert sizes == [1] * 10


def test_the_statistics_show_their_progress_when_asked(capsys):
    """At 128x128x96 they took 300 s before the first progress bar (scaling review)."""
    from shiftattr import CausalGraph
    from shiftattr.ratios import CrossFittedRatios

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 20, 8, 8, 8))
    g = CausalGraph({"X": []})
    est = {"X": ImageStatsRatio(random_state=0)}
    for progress in (True, False):  # new environments: nothing cached
        src, tgt = (Environment({"X": x[i]}, name=f"e{i}") for i in range(2))
        CrossFittedRatios(g, ["X"], est, n_folds=2, progress=progress).fit(src, tgt)
        shown = "image statistics (X)" in capsys.readouterr().err
        assert shown is progress


def test_a_fingerprinted_objects_extra_features_are_computed_once_per_case():
    """An adapter's output summaries were recomputed for every case in every refit
    replicate (0.13 s per case at 128x128x96: hours over 200 replicates); a plain
    callable is still called every time."""

    class Summaries:  # the adapter's shape: a method and a fingerprint of the model
        def __init__(self):
            self.calls, self.version = 0, "a"

        def fingerprint(self):
            return self.version

        def output_features(self, env):
            self.calls += 1
            return env["X"].reshape(len(env["X"]), -1).std(axis=1)

    rng = np.random.default_rng(0)
    env = Environment({"X": rng.normal(size=(12, 8, 8, 8))}, name="s")
    summaries, plain = Summaries(), []
    est = ImageStatsRatio(extra_features={"X": summaries.output_features})
    first = est.ratio_features(env.features(["X"]))
    boot = env.subset(rng.integers(0, 12, size=12))
    resampled = est.ratio_features(boot.features(["X"]))
    assert summaries.calls == 1  # the replicate took its cases' rows
    np.testing.assert_array_equal(resampled[:, -1], first[_rows_of(env, boot), -1])
    summaries.version = "b"  # another model: computed again
    est.ratio_features(env.features(["X"]))
    assert summaries.calls == 2
    other = ImageStatsRatio(extra_features={"X": lambda e: plain.append(1) or e["X"][:, 0, 0, 0]})
    other.ratio_features(env.features(["X"]))
    other.ratio_features(env.features(["X"]))
    assert len(plain) == 2


def _rows_of(env, boot):
    """Positions in ``env`` of the cases of its subset ``boot``."""
    ids = list(env.case_ids)
    return [ids.index(c.split("#")[0]) for c in boot.case_ids]


def test_a_classifier_subclass_is_not_bypassed_by_the_joint_route():
    """All folds at once called the inner classifier's own cross-fitting, dropping a
    subclass's log_ratio."""
    from sklearn.linear_model import LogisticRegression

    from shiftattr.ratios import ClassifierRatio

    class Shifted(ClassifierRatio):
        def log_ratio(self, features):
            return super().log_ratio(features) + 100.0

    rng = np.random.default_rng(0)
    src = {"X": rng.normal(0, 1.0, size=(20, 8, 8, 8))}
    tgt = {"X": rng.normal(0, 1.5, size=(20, 8, 8, 8))}
    folds = np.arange(20) % 2
    plain = ImageStatsRatio(ClassifierRatio(LogisticRegression(), calibration="none"))
    shifted = ImageStatsRatio(Shifted(LogisticRegression(), calibration="none"))
    base = plain.crossfit_log_ratio(src, tgt, folds, folds)
    moved = shifted.crossfit_log_ratio(src, tgt, folds, folds)
    np.testing.assert_allclose(moved[0], base[0] + 100.0, atol=1e-6)


def test_nan_voxels_are_named_by_node_and_case():
    x = np.ones((3, 8, 8, 8))
    x[1, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"node 'X': cases \[1\].*NaN or infinite"):
        image_statistics({"X": x}, statistics="basic")
