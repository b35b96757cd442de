"""Saved predictions scored instead of a model: the scorer, the loaders, ``shiftattr run``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
torch = pytest.importorskip("torch")

from shiftattr import Environment  # noqa: E402
from shiftattr.cli import main  # noqa: E402
from shiftattr.config import ConfigError, load_config  # noqa: E402
from shiftattr.metrics import dice  # noqa: E402
from shiftattr.segmentation import (  # noqa: E402
    NiftiDataError,
    SavedPredictions,
    SegmentationAdapter,
    load_folder,
    load_nnunet_raw,
)

SHAPE = (12, 12, 12)


def _cases(n: int, seed: int, contrast: float = 1.5):
    """``n`` (image, mask) pairs of a bright ball in noise."""
    rng = np.random.default_rng(seed)
    grid = np.indices(SHAPE).astype(np.float32)
    for _ in range(n):
        centre = rng.uniform(4, 8, size=3)
        mask = ((grid - centre[:, None, None, None]) ** 2).sum(0) <= rng.uniform(1.5, 3.5) ** 2
        img = 1.0 + contrast * mask + rng.normal(0, 0.3, SHAPE)
        yield img.astype(np.float32), mask.astype(np.uint8)


def _threshold(batch):
    """A model: lesion where the intensity exceeds 1.5 (probability)."""
    return (batch > 1.5).to(torch.float32)


def _soft(batch):
    """A model: the probability of lesion rises with the intensity, around 1.5."""
    return torch.sigmoid(4.0 * (batch - 1.5))


def _in_memory(n=6, seed=0):
    imgs, masks = map(np.stack, zip(*_cases(n, seed)))
    return Environment({"X": imgs, "Y": masks}, name="site")


def test_saved_predictions_score_as_the_model_that_made_them():
    env = _in_memory()
    model = SegmentationAdapter(_threshold, activation="none", progress=False)
    saved = Environment({"X": env["X"], "Y": env["Y"], "P": model.predict(env)}, name="site")
    scorer = SavedPredictions("dice", progress=False)
    np.testing.assert_array_equal(scorer.score(saved), model.score(env))
    both = scorer.score(saved, metric=["dice", "hausdorff95"])
    np.testing.assert_array_equal(
        both["hausdorff95"], model.score(env, metric="hausdorff95"), strict=True
    )
    np.testing.assert_array_equal(scorer.agreement_features(saved), model.agreement_features(env))
    # volume and components as the model's; a saved mask is certain (no probabilities)
    names = list(SavedPredictions.output_feature_names)
    ours, theirs = scorer.output_features(saved), model.output_features(env)
    for col in ("log_volume", "log_n_components", "largest_component_fraction"):
        j = names.index(col)
        np.testing.assert_allclose(ours[:, j], theirs[:, j])
    assert np.all(ours[:, names.index("mean_entropy")] == 0)
    # the second call is served by the cache
    hits = scorer.n_cache_hits_
    scorer.score(saved)
    assert scorer.n_cache_hits_ == hits + len(saved)


def test_a_label_map_is_scored_on_its_class_and_references_follow():
    env = _in_memory()
    pred = SegmentationAdapter(_threshold, activation="none", progress=False).predict(env)
    labels = Environment(
        {"X": env["X"], "Y": 3 * env["Y"], "P": np.where(pred == 1, 3, 1).astype(np.uint8)}
    )
    binary = Environment({"X": env["X"], "Y": env["Y"], "P": pred})
    np.testing.assert_array_equal(
        SavedPredictions(label=3, progress=False).score(labels),
        SavedPredictions(progress=False).score(binary),
    )


def test_options_of_a_model_are_refused_and_a_missing_node_is_named():
    with pytest.raises(TypeError, match=r"\['patch_size', 'threshold'\].*saved predictions"):
        SavedPredictions(threshold=0.3, patch_size=(8, 8, 8))
    with pytest.raises(ValueError, match=r"no prediction node 'P'.*prediction_column"):
        SavedPredictions(progress=False).score(_in_memory())
    env = _in_memory()
    pred = SegmentationAdapter(_threshold, activation="none", progress=False).predict(env)
    other = Environment({"X": env["X"], "Y": env["Y"], "seg": pred})
    assert SavedPredictions(prediction_node="seg", progress=False).score(other).shape == (6,)


def test_a_prediction_exported_as_0_255_is_refused_not_scored_as_empty():
    env = _in_memory()
    pred = SegmentationAdapter(_threshold, activation="none", progress=False).predict(env)
    exported = Environment({"X": env["X"], "Y": env["Y"], "P": 255 * pred})
    with pytest.raises(ValueError, match=r"hold the values \[0, 255\] but label=1.*label=255"):
        SavedPredictions(progress=False).score(exported)
    # classes of a label map beside the one scored are no such case
    other = np.where(pred == 1, 1, 2).astype(np.uint8)
    other[0] = 2  # a case without the class of interest
    labels = Environment({"X": env["X"], "Y": env["Y"], "P": other})
    assert SavedPredictions(progress=False).score(labels).shape == (6,)


def test_a_refused_call_leaves_no_trace_on_the_next_ones():
    env = _in_memory()
    pred = SegmentationAdapter(_threshold, activation="none", progress=False).predict(env)
    good = Environment({"X": env["X"], "Y": env["Y"], "P": pred})
    bad = Environment({"X": env["X"], "Y": env["Y"], "P": 255 * pred})
    scorer = SavedPredictions(progress=False)
    with pytest.raises(ValueError, match="0/255"):
        scorer.score(bad)
    np.testing.assert_array_equal(scorer.score(good), SavedPredictions(progress=False).score(good))
    with pytest.raises(ValueError, match="0/255"):  # refused again: nothing was kept of it
        scorer.score(bad)
    # a label map whose case 0 lacks the class scored: alone it cannot be told from a
    # 0/2 export (refused, as the adapter refuses such masks); beside the other cases,
    # which hold class 2 with class 1, it is fine, whatever was asked before
    labels = np.where(pred == 1, 1, 2).astype(np.uint8)
    labels[0] = 2 * (env["X"][0] > 1.0)
    lab = Environment({"X": env["X"], "Y": env["Y"], "P": labels})
    fresh = SavedPredictions(progress=False)
    with pytest.raises(ValueError, match=r"label=1"):
        fresh.score(lab.subset([0]))
    expected = SavedPredictions(progress=False).score(lab)
    np.testing.assert_array_equal(fresh.score(lab), expected)
    np.testing.assert_array_equal(fresh.score(lab.subset([0])), expected[[0]])


def _with_probabilities(env: Environment) -> tuple[SegmentationAdapter, Environment]:
    """The soft model and its saved masks (case 0's removed by post-processing) and
    probabilities."""
    model = SegmentationAdapter(_soft, activation="none", progress=False)
    masks = model.predict(env)
    masks[0] = 0
    saved = Environment(
        {"X": env["X"], "Y": env["Y"], "P": masks, "P_proba": model.predict_proba(env)}
    )
    return model, saved


#: A scorer of saved masks reading their saved probabilities.
WITH_PROBA = {"probability_node": "P_proba", "progress": False}


def test_saved_probabilities_give_the_models_confidence_and_entropy_and_the_masks_stay_saved():
    env = _in_memory()
    model, saved = _with_probabilities(env)
    scorer = SavedPredictions(**WITH_PROBA)
    names = list(SavedPredictions.output_feature_names)
    ours, theirs = scorer.output_features(saved), model.output_features(env)
    # the masks scored are the saved ones: case 0 is empty, the others are the model's
    np.testing.assert_array_equal(ours[1:], theirs[1:])
    assert ours[0, names.index("log_volume")] == 0 < theirs[0, names.index("log_volume")]
    # the entropy of the probabilities, which the masks alone do not have
    for col in ("mean_entropy", "log_expected_volume"):
        np.testing.assert_array_equal(ours[:, names.index(col)], theirs[:, names.index(col)])
    assert np.all(ours[:, names.index("mean_entropy")] > 0)
    np.testing.assert_array_equal(scorer.predict_proba(saved), saved["P_proba"])
    np.testing.assert_array_equal(scorer.predict(saved), saved["P"])
    expected = model.score(env)
    expected[0] = 0.0  # an empty prediction of a case with a lesion
    np.testing.assert_array_equal(scorer.score(saved), expected)
    # by default, the masks alone: their features are a certain model's
    plain = SavedPredictions(progress=False).output_features(saved)
    assert np.all(plain[:, names.index("mean_entropy")] == 0)
    # a site without the probabilities is refused by a scorer reading them: the
    # features would differ in kind between the sites, which the ratios read as a shift
    masks_only = Environment({n: saved[n] for n in ("X", "Y", "P")}, name="other site")
    with pytest.raises(ValueError, match=r"'other site' has no probability node 'P_proba'"):
        scorer.output_features(masks_only)
    hits = scorer.n_cache_hits_
    np.testing.assert_array_equal(scorer.output_features(saved), ours)
    assert scorer.n_cache_hits_ == hits + len(saved)


def test_a_site_without_probabilities_is_refused_even_beside_stored_features():
    # an image ratio stores each environment's output features; a second analysis with a
    # fresh scorer must still refuse a site whose features would differ in kind
    from shiftattr.ratios import ImageStatsRatio

    _, saved = _with_probabilities(_in_memory())
    site_c = Environment({n: saved[n] for n in ("X", "Y", "P")}, name="site C")

    def ratio():
        extra = {"X": SavedPredictions(**WITH_PROBA).output_features}
        return ImageStatsRatio(statistics="basic", extra_features=extra)

    ratio().fit(saved.features(["X"]), saved.subset([5, 4, 3, 2, 1, 0]).features(["X"]))
    with pytest.raises(ValueError, match=r"'site C' has no probability node 'P_proba'"):
        ratio().fit(saved.features(["X"]), site_c.features(["X"]))


def test_saved_probabilities_that_do_not_fit_the_masks_are_refused():
    env = _in_memory()
    _, saved = _with_probabilities(env)
    scorer = SavedPredictions(**WITH_PROBA)
    background = saved.with_nodes(P_proba=1.0 - saved["P_proba"])  # the other channel
    with pytest.raises(ValueError, match=r"in 5 of the 5 cases .* \(not the background"):
        scorer.output_features(background)
    with pytest.raises(ValueError, match=r"background"):  # nothing of it was kept
        scorer.score(background)
    assert scorer.score(saved).shape == (6,)
    # every case's probabilities transposed, on a grid whose shape hides it
    transposed = saved.with_nodes(P_proba=saved["P_proba"].transpose(0, 3, 2, 1))
    with pytest.raises(ValueError, match=r"better with their axes reversed"):
        scorer.score(transposed)
    logits = saved.with_nodes(P_proba=8.0 * saved["P_proba"] - 4.0)
    with pytest.raises(NiftiDataError, match=r"case 'environment:0': node 'P_proba' holds"):
        scorer.score(logits)
    with pytest.raises(ValueError, match=r"no probability node 'Q'.*probabilities=True"):
        SavedPredictions(progress=False, probability_node="Q").score(saved)


def test_probabilities_in_memory_are_clipped_for_the_features_but_never_modified():
    _, saved = _with_probabilities(_in_memory())
    proba = saved["P_proba"].astype(np.float32)
    proba[saved["P"] == 1] = 1.0004  # float16 rounding above 1
    before = proba.copy()
    features = SavedPredictions(**WITH_PROBA).output_features(saved.with_nodes(P_proba=proba))
    np.testing.assert_array_equal(proba, before)
    names = list(SavedPredictions.output_feature_names)
    assert features[1:, names.index("mean_confidence")].max() == 1.0  # clipped


def test_a_few_cases_whose_masks_do_not_hold_their_probabilities_are_named_not_refused():
    env = _in_memory()
    _, saved = _with_probabilities(env)
    proba = saved["P_proba"].copy()
    proba[4] = 0.5 + 0.01 * np.sign(saved["P"][4] - 0.5)  # a model unsure everywhere
    scorer = SavedPredictions(**WITH_PROBA)
    with pytest.warns(UserWarning, match=r"masks of 1 case\(s\) hold .*\['environment:4'\]"):
        features = scorer.output_features(saved.with_nodes(P_proba=proba))
    assert features.shape == (6, 8) and scorer.low_contrast_cases_ == ["environment:4"]


def test_masks_emptied_by_post_processing_or_argmax_masks_are_no_disagreement():
    env = _in_memory()
    _, saved = _with_probabilities(env)  # case 0's mask removed by post-processing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert SavedPredictions(**WITH_PROBA).score(saved.subset([0])).shape == (1,)
        # a healthy site: every mask empty, a voxel at 0.5 after float16 rounding
        healthy = saved.with_nodes(P=np.zeros_like(saved["P"]), P_proba=np.full((6, *SHAPE), 0.01))  # fmt: skip
        healthy["P_proba"][2, 0, 0, 0] = 0.5
        assert SavedPredictions(**WITH_PROBA).score(healthy).shape == (6,)
        # three classes, the mask their argmax: class 2 wins with probabilities under 0.5
        rng = np.random.default_rng(0)
        logits = rng.normal(0, 0.3, size=(3, 6, *SHAPE))
        proba = np.exp(logits) / np.exp(logits).sum(0)
        argmax = Environment({"Y": saved["Y"], "P": (proba.argmax(0) == 2).astype(np.uint8), "P_proba": proba[2]})  # fmt: skip
        assert (argmax["P_proba"][argmax["P"] == 1] < 0.5).mean() > 0.5
        assert SavedPredictions(**WITH_PROBA).score(argmax).shape == (6,)
        # a ring whose hole the post-processing filled: most of the mask is unlikely voxels
        grid = np.indices(SHAPE) - 5.5
        radius = np.sqrt((grid**2).sum(0))
        ring = np.where(radius <= 5, np.where(radius > 4, 0.9, 0.05), 0.001)
        filled = Environment({"P": (radius <= 5)[None].astype(np.uint8), "P_proba": ring[None]})
        assert filled["P_proba"][filled["P"] == 1].mean() < 0.5
        assert SavedPredictions(**WITH_PROBA).output_features(filled).shape == (1, 8)


def test_a_failed_call_leaves_no_case_to_be_served_unchecked():
    env = _in_memory()
    _, saved = _with_probabilities(env)
    proba = saved["P_proba"].copy()
    proba[[1, 2]] = 1.0 - proba[[1, 2]]  # the background channel
    proba[3] = 8.0 * proba[3] - 4.0  # and a case of logits, which stops the call
    bad = saved.with_nodes(P_proba=proba)
    scorer = SavedPredictions(batch_size=1, **WITH_PROBA)
    with pytest.raises(NiftiDataError, match="environment:3"):
        scorer.output_features(bad)
    # cases 1 and 2 were read before the call stopped: they are judged when read again
    with pytest.raises(ValueError, match="background"):
        scorer.output_features(bad.subset([1, 2]))  # as a fresh scorer would


def test_probabilities_are_read_beside_the_prediction_node_only():
    env = _in_memory()
    _, saved = _with_probabilities(env)
    other = saved.with_nodes(P2=saved["P"])
    scorer = SavedPredictions(**WITH_PROBA)
    assert np.all(scorer.output_features(other, image_node="P2")[:, 2] == 0)
    assert np.all(scorer.output_features(other)[:, 2] > 0)


def test_channel_first_predictions_of_different_shapes_pair_with_their_probabilities():
    imgs = [np.random.default_rng(i).normal(size=s).astype("f4") for i, s in enumerate([(8, 8, 8), (8, 8, 6)])]  # fmt: skip
    masks = [(x > 0.5).astype(np.uint8) for x in imgs]
    proba = [1 / (1 + np.exp(-4 * (x - 0.5))) for x in imgs]
    env = Environment({"X": imgs, "Y": masks, "P": [m[None] for m in masks], "P_proba": proba})
    with_p = SavedPredictions(**WITH_PROBA).score(env)
    np.testing.assert_array_equal(with_p, [1.0, 1.0])
    np.testing.assert_array_equal(with_p, SavedPredictions(progress=False).score(env))
    # volumes one slice thick among thicker ones are volumes, not channel-first slices
    thin = [np.random.default_rng(i).normal(size=s).astype("f4") for i, s in enumerate([(1, 8, 8), (4, 8, 8)])]  # fmt: skip
    masks = [(x > 0.5).astype(np.uint8) for x in thin]
    proba = [1 / (1 + np.exp(-4 * (x - 0.5))) for x in thin]
    env = Environment({"X": thin, "Y": masks, "P": masks, "P_proba": proba})
    np.testing.assert_array_equal(SavedPredictions(**WITH_PROBA).score(env), [1.0, 1.0])


def test_the_fingerprint_is_the_same_in_every_process_and_tells_nodes_apart():
    import pickle

    a = SavedPredictions(label=2, progress=False)
    assert pickle.loads(pickle.dumps(a)).fingerprint() == a.fingerprint()
    assert a.fingerprint() != SavedPredictions(label=1).fingerprint()
    assert a.fingerprint() != SavedPredictions(label=2, prediction_node="Q").fingerprint()


def _folder(root: Path, n: int = 8, seed: int = 0, contrast: float = 1.5) -> Path:
    """A site with images, masks, the threshold model's saved predictions, a manifest."""
    root.mkdir(parents=True)
    rows = ["case_id,image,label,prediction"]
    for i, (img, mask) in enumerate(_cases(n, seed, contrast)):
        pred = (img > 1.5).astype(np.uint8)  # the threshold model's output, as saved
        for name, data in ((f"c{i}", img), (f"c{i}_seg", mask), (f"c{i}_pred", pred)):
            nib.save(nib.Nifti1Image(data, np.eye(4)), str(root / f"{name}.nii.gz"))
        rows.append(f"c{i},c{i}.nii.gz,c{i}_seg.nii.gz,c{i}_pred.nii.gz")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


def _dice_of_files(env: Environment) -> np.ndarray:
    return np.array(
        [
            dice(np.asarray(nib.load(p).dataobj), np.asarray(nib.load(r).dataobj), empty=1.0)
            for p, r in zip(env.metadata["prediction_paths"], env.metadata["label_paths"])
        ]
    )


def test_load_folder_reads_a_prediction_column_as_node_p(tmp_path):
    env = load_folder(_folder(tmp_path / "site"), prediction_column="prediction")
    assert "P" in env and env["P"][0].shape == SHAPE
    assert "prediction" not in env.metadata  # the column is the node, not metadata
    np.testing.assert_allclose(
        SavedPredictions(progress=False, metric_params={"empty": 1.0}).score(env),
        _dice_of_files(env),
    )
    plain = load_folder(tmp_path / "site")
    assert "P" not in plain and "prediction" in plain.metadata


def test_a_prediction_on_another_grid_or_missing_is_named(tmp_path):
    root = _folder(tmp_path / "site")
    nib.save(nib.Nifti1Image(np.zeros((12, 12, 11), np.uint8), np.eye(4)), str(root / "c3_pred.nii.gz"))  # fmt: skip
    with pytest.raises(NiftiDataError, match="c3"):
        load_folder(root, prediction_column="prediction")
    (root / "c3_pred.nii.gz").unlink()
    with pytest.raises(
        NiftiDataError, match=r"case 'c3': prediction \(prediction\) file not found"
    ):
        load_folder(root, prediction_column="prediction")
    with pytest.raises(NiftiDataError, match="no prediction column 'pred'"):
        load_folder(root, prediction_column="pred")


def test_a_view_of_some_nodes_reads_the_predictions_of_the_environment_it_was_cut_from(tmp_path):
    # ImageStatsRatio hands its extra_features a view holding the node set's nodes only
    # (no P): the scorer reads P of the environment the view was cut from
    from shiftattr.ratios import ImageStatsRatio

    env = load_folder(_folder(tmp_path / "site", n=10), prediction_column="prediction")
    other = load_folder(_folder(tmp_path / "other", n=10, seed=1, contrast=0.9), prediction_column="prediction")  # fmt: skip
    scorer = SavedPredictions(progress=False, metric_params={"empty": 1.0})
    whole = scorer.output_features(env)
    view = env.features(["X"], indices=[7, 2, 5]).environment()
    assert "P" not in view
    np.testing.assert_array_equal(scorer.output_features(view), whole[[7, 2, 5]])
    both = env.features(["X", "Y"], indices=[7, 2, 5]).environment()
    np.testing.assert_array_equal(scorer.score(both), scorer.score(env)[[7, 2, 5]])
    # read from the environment the view was cut from: no file is read again
    reads = env["P"]._loader.n_reads
    scorer.output_features(env.features(["X"], indices=[1, 1, 4]).environment())
    assert env["P"]._loader.n_reads == reads
    est = ImageStatsRatio(statistics="basic", extra_features={"X": scorer.output_features})
    est.fit(env.features(["X"]), other.features(["X"]))
    assert np.isfinite(est.log_ratio(env.features(["X"]))).all()
    # predictions replaced in memory are what a view reads, not the files
    grown = (np.stack(list(env["P"])) | np.roll(np.stack(list(env["P"])), 1, axis=1)).astype(
        np.uint8
    )
    replaced = env.with_nodes(P=grown)
    np.testing.assert_array_equal(
        scorer.output_features(replaced.features(["X"], indices=[0, 3]).environment()),
        scorer.output_features(replaced)[[0, 3]],
    )
    assert not np.array_equal(scorer.output_features(replaced), whole)
    with pytest.raises(ValueError, match=r"no prediction node 'P'.*prediction_column"):
        scorer.score(_in_memory())


def test_a_prediction_node_may_not_replace_the_loaders_nodes(tmp_path):
    root = _folder(tmp_path / "site", n=3)
    with pytest.raises(ValueError, match=r"prediction_node='Y' would replace"):
        load_folder(root, prediction_column="prediction", prediction_node="Y")


def _nnunet_with_predictions(root: Path, n: int = 6) -> tuple[Path, Path]:
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    preds = root.parent / "predictions"
    preds.mkdir()
    for i, (img, mask) in enumerate(_cases(n, 3)):
        nib.save(nib.Nifti1Image(img, np.eye(4)), str(root / f"imagesTr/MS_{i:03d}_0000.nii.gz"))
        nib.save(nib.Nifti1Image(mask, np.eye(4)), str(root / f"labelsTr/MS_{i:03d}.nii.gz"))
        pred = (img > 1.5).astype(np.uint8)
        nib.save(nib.Nifti1Image(pred, np.eye(4)), str(preds / f"MS_{i:03d}.nii.gz"))
        p = _soft(torch.from_numpy(img)).numpy()  # nnU-Net's .npz: (classes, z, y, x)
        proba = np.stack([1 - p, p]).transpose(0, 3, 2, 1)
        np.savez_compressed(preds / f"MS_{i:03d}.npz", probabilities=proba)
    (root / "dataset.json").write_text(
        json.dumps({"channel_names": {"0": "FLAIR"}, "labels": {"background": 0, "lesion": 1}})
    )
    return root, preds


def test_load_nnunet_raw_reads_the_predict_output_folder(tmp_path):
    root, preds = _nnunet_with_predictions(tmp_path / "Dataset001_MS")
    env = load_nnunet_raw(root, predictions=preds)
    assert env["P"][0].shape == SHAPE and len(env.metadata["prediction_paths"]) == 6
    np.testing.assert_allclose(
        SavedPredictions(progress=False, metric_params={"empty": 1.0}).score(env),
        _dice_of_files(env),
    )
    (preds / "MS_004.nii.gz").unlink()
    with pytest.raises(NiftiDataError, match=r"case 'MS_004': prediction file not found.*nnUNetv2"):
        load_nnunet_raw(root, predictions=preds)
    with pytest.raises(NiftiDataError, match="predictions folder not found"):
        load_nnunet_raw(root, predictions=tmp_path / "nowhere")


def test_saved_probabilities_from_nnunet_files_are_read_for_views_of_some_nodes_too(tmp_path):
    from shiftattr.ratios import ImageStatsRatio

    root, preds = _nnunet_with_predictions(tmp_path / "Dataset001_MS", n=12)
    env = load_nnunet_raw(root, predictions=preds, probabilities=True)
    model = SegmentationAdapter(_soft, activation="none", progress=False)
    scorer = SavedPredictions(**WITH_PROBA)
    whole = scorer.output_features(env)
    np.testing.assert_allclose(whole, model.output_features(env), atol=2e-3)  # float16 files
    view = env.features(["X"], indices=[6, 1, 3]).environment()
    assert "P_proba" not in view
    np.testing.assert_array_equal(scorer.output_features(view), whole[[6, 1, 3]])
    reads = env["P_proba"]._loader.n_reads  # served from the cache: no file read again
    scorer.output_features(env.features(["X"], indices=[2, 2]).environment())
    assert env["P_proba"]._loader.n_reads == reads
    other = load_nnunet_raw(root, predictions=preds, probabilities=True, cases=["MS_000"])
    est = ImageStatsRatio(statistics="basic", extra_features={"X": scorer.output_features})
    est.fit(env.subset(range(6)).features(["X"]), env.subset(range(6, 12)).features(["X"]))
    assert np.isfinite(est.log_ratio(other.features(["X"]))).all()


def _predictions_config(tmp_path: Path, **attribution: str) -> Path:
    _folder(tmp_path / "site-A", n=16, seed=0, contrast=1.5)
    _folder(tmp_path / "site-B", n=16, seed=1, contrast=0.9)  # fainter lesions
    extra = "".join(f"{k} = {v}\n" for k, v in attribution.items())
    cfg = tmp_path / "exp.toml"
    cfg.write_text(
        '[data]\nkind = "folder"\n'
        'source = { folder = "site-A", prediction_column = "prediction" }\n'
        'target = { folder = "site-B", prediction_column = "prediction" }\n'
        '[model]\nkind = "predictions"\n'
        '[attribution]\nn_folds = 2\nn_bootstrap = 5\nbootstrap = "fixed"\n'
        f"{extra}"
        '[output]\nfolder = "report"\n'
    )
    return cfg


@pytest.mark.parametrize(
    "settings",
    [
        {},  # the defaults: extended statistics, the outputs' summaries in the image ratio
        {"conditional_ratios": '"offset_child"'},  # and the masks' agreement in Y's
    ],
)
def test_run_attributes_the_saved_predictions_dice(tmp_path, settings):
    cfg = _predictions_config(tmp_path, **settings)
    assert main(["run", str(cfg), "--quiet"]) == 0
    out = json.loads((tmp_path / "report" / "attribution.json").read_text())
    assert out["settings"]["model_kind"] == "predictions"
    assert set(out["values"]) == {"X", "Y"}
    for side, key in (("site-A", "source_metric"), ("site-B", "measured_target_metric")):
        env = load_folder(tmp_path / side, prediction_column="prediction")
        assert out[key] == pytest.approx(_dice_of_files(env).mean())


@pytest.mark.parametrize("probabilities", [False, True])
def test_run_reads_an_nnunet_predictions_folder_per_side(tmp_path, probabilities):
    root, preds = _nnunet_with_predictions(tmp_path / "Dataset001_MS", n=12)
    ids = sorted({p.name.split(".")[0] for p in preds.iterdir()})
    proba = ", probabilities = true" if probabilities else ""
    cfg = tmp_path / "exp.toml"
    cfg.write_text(
        '[data]\nkind = "nnunet"\n'
        f'source = {{ folder = "Dataset001_MS", cases = {json.dumps(ids[:6])}, '
        f'predictions = "predictions"{proba} }}\n'
        f'target = {{ folder = "Dataset001_MS", cases = {json.dumps(ids[6:])}, '
        f'predictions = "predictions"{proba} }}\n'
        '[model]\nkind = "predictions"\n'
        '[attribution]\nn_folds = 2\nn_bootstrap = 5\nbootstrap = "fixed"\n'
        '[output]\nfolder = "report"\n'
    )
    assert main(["run", str(cfg), "--quiet"]) == 0
    out = json.loads((tmp_path / "report" / "attribution.json").read_text())
    env = load_nnunet_raw(root, cases=ids[:6], predictions=preds)
    assert out["source_metric"] == pytest.approx(_dice_of_files(env).mean())
    assert (out["settings"]["n_source"], out["settings"]["n_target"]) == (6, 6)
    assert out["settings"]["saved_probabilities"] is probabilities
    assert out["settings"]["low_contrast_cases"] == []  # the model's own masks hold them


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        # a prediction key without the model kind that reads it
        (lambda c: c["model"].update(kind="checkpoint", factory="m:f", checkpoint="n.pt"),
         r"data.source.prediction_column, data.target.prediction_column name saved"),
        # the kind without each side's key
        (lambda c: c["data"]["target"].pop("prediction_column"),
         r"needs data.target.prediction_column"),
        # what runs a model
        (lambda c: c["model"].update(patch_size=[8, 8, 8]), r"model.patch_size not read"),
        # nnU-Net reads a folder, not a column
        (lambda c: c["data"].update(kind="nnunet"), r"prediction_column not read"),
        (lambda c: c.update(data={"kind": "synthetic"}), r"'folder'.*'nnunet'.*not 'synthetic'"),
        # saved probabilities: on both sides, with the predictions, of the kind that reads them
        (lambda c: c["data"]["source"].update(probability_column="npz"),
         r"one side only: set data.target.probability_column"),
        (lambda c: (c["data"]["source"].update(probability_column="npz"),
                    c["model"].update(kind="checkpoint", factory="m:f", checkpoint="n.pt")),
         r"data.source.probability_column, data.target.prediction_column name saved"),
        (lambda c: c["data"]["source"].update(probabilities=True),
         r"data.source.probabilities not read with data.kind = 'folder'"),
    ],
)  # fmt: skip
def test_prediction_settings_that_do_not_fit_are_errors_naming_the_key(edit, pattern):
    raw = {
        "data": {
            "kind": "folder",
            "source": {"folder": "a", "prediction_column": "prediction"},
            "target": {"folder": "b", "prediction_column": "prediction"},
        },
        "model": {"kind": "predictions"},
    }
    edit(raw)
    with pytest.raises(ConfigError, match=pattern):
        load_config(raw)


def test_the_predictions_folder_is_read_from_the_configuration_folder(tmp_path):
    (tmp_path / "exp.toml").write_text(
        '[data]\nkind = "nnunet"\n'
        'source = { folder = "D1", cases = ["a"], predictions = "pred" }\n'
        'target = { folder = "D1", cases = ["b"], predictions = "~/pred" }\n'
        '[model]\nkind = "predictions"\n'
    )
    cfg = load_config(tmp_path / "exp.toml")
    assert cfg.data.source.predictions == tmp_path / "pred"
    assert cfg.data.target.predictions == Path("~/pred").expanduser()
