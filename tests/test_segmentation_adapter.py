"""SegmentationAdapter: known Dice from toy models, activations, caching, modes, laziness."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from shiftattr.environment import Environment, LazyVolumes  # noqa: E402
from shiftattr.segmentation.adapter import SegmentationAdapter  # noqa: E402
from tiny_models import threshold_conv  # noqa: E402

SHAPE = (6, 6, 6)


def threshold_model() -> torch.nn.Module:
    """1x1x1 conv with fixed weights: logit = 10 x - 5, so the mask is exactly x > 0.5."""
    return threshold_conv(10.0, -5.0)


def toy_environment(channel_axis: bool = True) -> tuple[Environment, np.ndarray]:
    """Three cases with hand-computed Dice 1, 2/3 and 0."""
    x = np.zeros((3, *SHAPE), dtype=np.float32)
    x[:, :2, :2, :2] = 1.0  # every prediction: an 8-voxel cube
    x[:, 5, 5, 5] = [0.1, 0.2, 0.3]  # distinct images (below threshold: no effect)
    y = np.zeros((3, *SHAPE), dtype=np.uint8)
    y[0, :2, :2, :2] = 1  # same cube -> Dice 1
    y[1, :2, :2, :1] = 1  # half of it -> 2 * 4 / (8 + 4)
    y[2, 4:, 4:, 4:] = 1  # disjoint -> 0
    expected = np.array([1.0, 2 * 4 / 12, 0.0])
    images = x[:, None] if channel_axis else x
    return Environment({"X": images, "Y": y}, name="toy", case_ids=["a", "b", "c"]), expected


@pytest.mark.parametrize("channel_axis", [True, False])
def test_known_dice_with_a_torch_module(channel_axis):
    env, expected = toy_environment(channel_axis)
    adapter = SegmentationAdapter(threshold_model(), metric="dice", progress=False)
    values = adapter.score(env)
    assert values.dtype == np.float64 and values.shape == (3,)
    np.testing.assert_allclose(values, expected)
    assert adapter.activation_ == "sigmoid"  # resolved from logits
    masks = adapter.predict(env)
    assert masks.dtype == np.uint8 and masks.shape == (3, *SHAPE)
    np.testing.assert_array_equal(masks, (env["X"].reshape(3, *SHAPE) > 0.5).astype(np.uint8))
    proba = adapter.predict_proba(env)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba[0, 0, 0, 0], 1 / (1 + np.exp(-5.0)), rtol=1e-5)


def test_callable_model_gives_the_same_scores():
    env, expected = toy_environment()
    adapter = SegmentationAdapter(lambda b: 10 * b - 5, progress=False)
    np.testing.assert_allclose(adapter.score(env), expected)
    numpy_model = SegmentationAdapter(
        lambda b: (b.numpy() > 0.5).astype("float32"), activation="none", progress=False
    )
    np.testing.assert_allclose(numpy_model.score(env), expected)


def three_class_model() -> torch.nn.Module:
    """x = 0 -> class 0, x = 0.5 -> class 1, x = 1 -> class 2 (argmax of fixed logits)."""
    conv = torch.nn.Conv3d(1, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([-10.0, 0.0, 20.0]).view(3, 1, 1, 1, 1))
        conv.bias.copy_(torch.tensor([5.0, 2.0, -15.0]))
    return conv


def three_class_scene() -> tuple[np.ndarray, np.ndarray]:
    """Two cases that :func:`three_class_model` segments exactly: images and label maps
    (class 2 in the first slab, class 1 in the next two)."""
    x = np.zeros((2, 1, *SHAPE), dtype=np.float32)
    x[:, 0, :3] = 0.5
    x[:, 0, :1] = 1.0
    labels = np.zeros((2, *SHAPE), dtype=np.uint8)
    labels[:, :3] = 1
    labels[:, :1] = 2
    return x, labels


def test_softmax_argmax_with_label_of_interest():
    x, labels = three_class_scene()
    labels[1, 5] = 2  # case 1: 36 extra label-2 voxels the model misses
    env = Environment({"X": x, "Y": labels})
    for label in (1, 2):
        adapter = SegmentationAdapter(
            three_class_model(), activation="softmax", label=label, progress=False
        )
        masks = adapter.predict(env)
        np.testing.assert_array_equal(masks[0], (labels[0] == label).astype(np.uint8))
        dice = adapter.score(env)
        assert dice[0] == pytest.approx(1.0)
        if label == 2:
            assert dice[1] == pytest.approx(2 * 36 / (36 + 72))
        else:
            assert dice[1] == pytest.approx(1.0)
        proba = adapter.predict_proba(env)
        with torch.no_grad():
            ref = torch.softmax(three_class_model()(torch.from_numpy(x)), 1)[:, label].numpy()
        np.testing.assert_allclose(proba, ref, rtol=1e-5, atol=1e-6)
    auto = SegmentationAdapter(three_class_model(), label=2, progress=False)
    np.testing.assert_allclose(
        auto.score(env),
        SegmentationAdapter(
            three_class_model(), activation="softmax", label=2, progress=False
        ).score(env),
    )
    assert auto.activation_ == "softmax"


def test_auto_detects_probabilities_and_wrong_label_errors():
    env, expected = toy_environment()
    adapter = SegmentationAdapter(lambda b: b * 0.9, progress=False)  # already probabilities
    np.testing.assert_allclose(adapter.score(env), expected)
    assert adapter.activation_ == "none"
    bad = SegmentationAdapter(three_class_model(), label=3, progress=False)
    with pytest.raises(ValueError, match="3 channel"):
        bad.predict(env)
    y255 = Environment({"X": env["X"], "Y": env["Y"] * 255}, case_ids=env.case_ids)
    with pytest.raises(ValueError, match=r"case 'a'.*label=255"):
        SegmentationAdapter(threshold_model(), progress=False).score(y255)


def test_cache_second_metric_does_not_rerun_the_model():
    env, _ = toy_environment()
    model = threshold_model()
    adapter = SegmentationAdapter(model, batch_size=2, progress=False)
    adapter.score(env, metric="dice")
    calls = adapter.n_model_calls_
    assert calls == 2  # 3 cases in batches of 2
    f1 = adapter.score(env, metric="lesion_f1")
    adapter.score(env, metric="volume_difference")
    adapter.predict(env)
    adapter.predict_proba(env)
    assert adapter.n_model_calls_ == calls
    assert f1.shape == (3,)
    assert adapter.cache_bytes_ == 3 * np.prod(SHAPE) * 5
    # a copy of the data with other ids is the same data: still cached
    adapter.score(Environment({"X": env["X"].copy(), "Y": env["Y"]}, name="other"))
    assert adapter.n_model_calls_ == calls
    # changed weights -> new fingerprint -> the model runs again, with new results
    with torch.no_grad():
        model.bias.fill_(-15.0)  # threshold moves to x > 1.5: nothing predicted
    masks = adapter.predict(env)
    assert adapter.n_model_calls_ == calls + 2
    assert masks.sum() == 0
    # a different option (threshold) also changes the fingerprint
    fp = adapter.fingerprint()
    adapter.threshold = 0.3
    assert adapter.fingerprint() != fp


@pytest.mark.parametrize("images", ["array", "lazy", "lazy-ragged"])
@pytest.mark.parametrize("channel_axis", [True, False])
def test_images_without_masks_reuse_the_cache_of_score(channel_axis, images):
    # score() learns the spatial axes from the masks; an environment of the images alone
    # (what an extra-features callable of a ratio estimator gets) must hit the same cache.
    # With lazy (NIfTI) volumes it missed: the model ran a second time on every case.
    env, _ = toy_environment(channel_axis)
    x = env["X"]
    if images != "array":
        shape = None if images == "lazy-ragged" else x.shape[1:]
        x = LazyVolumes(lambda i, a=x: a[i], len(x), shape=shape, dtype=np.float32)
    env = Environment({"X": x, "Y": env["Y"]}, case_ids=env.case_ids)
    adapter = SegmentationAdapter(threshold_model(), batch_size=2, progress=False)
    adapter.score(env)
    calls = adapter.n_model_calls_
    features = adapter.output_features(Environment({"X": x}, case_ids=env.case_ids))
    assert adapter.n_model_calls_ == calls and adapter.n_cache_hits_ == 3
    np.testing.assert_array_equal(features, adapter.output_features(env))


def test_identical_images_are_predicted_once():
    x = np.ones((4, 1, *SHAPE), dtype=np.float32)
    y = np.ones((4, *SHAPE), dtype=np.uint8)
    adapter = SegmentationAdapter(threshold_model(), batch_size=1, progress=False)
    np.testing.assert_allclose(adapter.score(Environment({"X": x, "Y": y})), 1.0)
    assert adapter.n_model_calls_ == 1 and adapter.n_cache_hits_ == 3


def test_same_ids_different_data_are_not_confused():
    env, _ = toy_environment()
    adapter = SegmentationAdapter(threshold_model(), progress=False)
    first = adapter.predict(env)
    other = Environment({"X": 1.0 - env["X"], "Y": env["Y"]}, name="toy", case_ids=["a", "b", "c"])
    second = adapter.predict(other)
    np.testing.assert_array_equal(second, 1 - first)


def test_no_cache_reruns_and_cache_limit_evicts():
    env, _ = toy_environment()
    adapter = SegmentationAdapter(threshold_model(), batch_size=3, progress=False, cache=False)
    adapter.score(env)
    adapter.score(env, metric="lesion_f1")
    assert adapter.n_model_calls_ == 2
    assert adapter.cache_bytes_ == 0
    one_case = int(np.prod(SHAPE)) * 5
    small = SegmentationAdapter(
        threshold_model(), batch_size=3, progress=False, cache_max_bytes=2 * one_case
    )
    with pytest.warns(UserWarning, match=r"the prediction cache reached its bound .* Raise "
                      r"cache_max_bytes \(model\.cache_gb"):  # fmt: skip
        small.predict(env)
    assert small.cache_bytes_ == 2 * one_case
    small.predict(env)  # the first case was evicted
    assert small.n_model_calls_ == 2
    assert small.n_cache_evictions_ >= len(env) - 2


def test_the_cache_is_bounded_by_default_at_a_quarter_of_the_machines_memory(monkeypatch):
    # it was unbounded: 600 cases of 256x256x180 would have held 35 GB of predictions
    from shiftattr.segmentation import adapter as module

    env, _ = toy_environment()
    one_case = int(np.prod(SHAPE)) * 5
    monkeypatch.setattr(module, "_physical_memory", lambda: 4 * 2 * one_case)
    adapter = SegmentationAdapter(threshold_model(), batch_size=3, progress=False)
    assert adapter.cache_max_bytes == "auto"
    with pytest.warns(UserWarning, match="the prediction cache reached its bound"):
        adapter.predict(env)
    assert adapter.cache_bytes_ == 2 * one_case
    unbounded = SegmentationAdapter(
        threshold_model(), batch_size=3, progress=False, cache_max_bytes=None
    )
    unbounded.predict(env)
    assert unbounded.cache_bytes_ == len(env) * one_case and unbounded.n_cache_evictions_ == 0
    monkeypatch.setattr(module, "_physical_memory", lambda: None)  # platform does not say
    assert SegmentationAdapter(threshold_model())._cache_limit() is None
    with pytest.raises(ValueError, match="cache_max_bytes must be a number of bytes, 'auto'"):
        SegmentationAdapter(threshold_model(), cache_max_bytes="4GB")


def test_eval_mode_and_no_grad_during_inference_restored_after():
    seen = {}

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = threshold_model()
            self.drop = torch.nn.Dropout(0.5)

        def forward(self, x):
            seen["training"] = self.training
            seen["drop_training"] = self.drop.training
            seen["grad"] = torch.is_grad_enabled()
            return self.drop(self.conv(x))

    net = Net()
    net.train()
    net.conv.eval()  # mixed flags must come back exactly as they were
    env, expected = toy_environment()
    adapter = SegmentationAdapter(net, progress=False)
    np.testing.assert_allclose(adapter.score(env), expected)  # dropout off -> deterministic
    assert seen == {"training": False, "drop_training": False, "grad": False}
    assert net.training and net.drop.training and not net.conv.training


def test_sliding_window_matches_full_volume():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(2, 1, 13, 10, 9)).astype(np.float32)
    y = (rng.uniform(size=(2, 13, 10, 9)) > 0.5).astype(np.uint8)
    env = Environment({"X": x, "Y": y})
    full = SegmentationAdapter(threshold_model(), progress=False)
    windowed = SegmentationAdapter(
        threshold_model(), patch_size=(8, 8, 8), overlap=0.5, blending="constant", progress=False
    )
    np.testing.assert_allclose(windowed.predict_proba(env), full.predict_proba(env), atol=1e-5)
    np.testing.assert_allclose(windowed.score(env), full.score(env))
    assert windowed.n_model_calls_ > full.n_model_calls_


def test_lazy_environment_loads_one_batch_at_a_time():
    env, expected = toy_environment()
    x = env["X"]
    loads: list[int] = []
    in_memory = []

    def loader(i):
        loads.append(i)
        return x[i]

    lazy = LazyVolumes(loader, 3, shape=x.shape[1:], dtype=np.float32)

    def model(batch):
        in_memory.append(len(loads))
        return 10 * batch - 5

    lazy_env = Environment({"X": lazy, "Y": env["Y"]}, case_ids=env.case_ids)
    adapter = SegmentationAdapter(model, batch_size=2, progress=False)
    np.testing.assert_allclose(adapter.score(lazy_env), expected)
    assert in_memory == [2, 3]  # at the first call only the first batch had been read
    assert sorted(loads) == [0, 1, 2]
    adapter.score(lazy_env, metric="lesion_f1")
    assert sorted(loads) == [0, 1, 2]  # cached: lazy volumes are not even read again


def test_empty_masks_are_reported_with_case_ids():
    x = np.zeros((2, 1, *SHAPE), dtype=np.float32)
    y = np.zeros((2, *SHAPE), dtype=np.uint8)
    x[0, 0, 0, 0, 0] = 1.0
    y[0, 0, 0, 0] = 1
    env = Environment({"X": x, "Y": y}, case_ids=["full", "empty-case"])
    adapter = SegmentationAdapter(threshold_model(), progress=False)
    with pytest.raises(ValueError, match=r"'empty-case'.*empty="):
        adapter.score(env)
    ok = SegmentationAdapter(threshold_model(), metric_params={"empty": "one"}, progress=False)
    np.testing.assert_allclose(ok.score(env), [1.0, 1.0])


def test_several_metrics_spacing_and_callable_metric():
    env, expected = toy_environment()
    env.metadata["spacing"] = np.array([[1.0, 1.0, 2.0], [1.0, 1.0, 3.0], [0.5, 0.5, 0.5]])
    received = []

    def volume(pred, ref, spacing=None):
        received.append(tuple(spacing))
        return float(pred.sum() * np.prod(spacing))

    adapter = SegmentationAdapter(threshold_model(), spacing="metadata", progress=False)
    out = adapter.score(env, metric=["dice", volume, "hausdorff95"])
    assert list(out) == ["dice", "volume", "hausdorff95"]
    np.testing.assert_allclose(out["dice"], expected)
    np.testing.assert_allclose(out["volume"], [16.0, 24.0, 1.0])
    assert received[1] == (1.0, 1.0, 3.0)
    assert out["hausdorff95"][0] == 0.0
    assert adapter.n_model_calls_ == 2


def test_joblib_workers_give_the_same_values():
    joblib = pytest.importorskip("joblib")
    env, expected = toy_environment()
    with joblib.parallel_config(backend="threading"):
        values = SegmentationAdapter(threshold_model(), n_jobs=2, progress=False).score(env)
    np.testing.assert_allclose(values, expected)


def test_numpy_and_ragged_inputs():
    adapter = SegmentationAdapter(lambda b: 10 * b - 5, progress=False)
    arr = np.zeros((2, 4, 5, 6), dtype=np.float32)
    arr[1, 0] = 1.0
    masks = adapter.predict(arr)
    assert masks.shape == (2, 4, 5, 6) and masks[1, 0].all() and masks.sum() == 30
    ragged = LazyVolumes(lambda i: np.ones((4 + i, 4, 4), dtype=np.float32), 2)
    out = adapter.predict(ragged)
    assert isinstance(out, list) and [o.shape for o in out] == [(4, 4, 4), (5, 4, 4)]
    assert all(o.all() for o in out)


def test_progress_bar_can_be_silenced(capsys):
    env, _ = toy_environment()
    SegmentationAdapter(threshold_model(), progress=True).score(env)
    assert "segmentation" in capsys.readouterr().err
    SegmentationAdapter(threshold_model(), progress=False).score(env)
    assert capsys.readouterr().err == ""


def test_bad_outputs_and_arguments():
    env, _ = toy_environment()
    with pytest.raises(ValueError, match="model output has shape"):
        SegmentationAdapter(lambda b: b[..., :2], progress=False).predict(env)
    with pytest.raises(ValueError, match="activation"):
        SegmentationAdapter(threshold_model(), activation="relu")
    with pytest.raises(TypeError, match="callable"):
        SegmentationAdapter("not a model")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown metric"):
        SegmentationAdapter(threshold_model(), metric="jaccard", progress=False).score(env)
    with pytest.raises(TypeError, match="Environment"):
        SegmentationAdapter(threshold_model(), progress=False).score(env["X"])


def test_works_with_the_reference_unet_and_sliding_window():
    from shiftattr.segmentation import UNet3D

    net = UNet3D(channels=(4, 8), random_state=0)
    net.train()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 12, 16, 10)).astype(np.float32)  # no channel axis
    y = (x > 1.0).astype(np.uint8)
    env = Environment({"X": x, "Y": y})
    adapter = SegmentationAdapter(
        net, patch_size=(8, 8, 8), metric_params={"empty": "one"}, progress=False
    )
    masks = adapter.predict(env)
    assert masks.shape == (2, 12, 16, 10) and set(np.unique(masks)) <= {0, 1}
    calls = adapter.n_model_calls_
    dice = adapter.score(env)
    assert adapter.n_model_calls_ == calls
    assert dice.shape == (2,) and np.all((dice >= 0) & (dice <= 1))
    assert net.training  # restored


def test_preprocess_reaches_the_model_only_and_keys_the_cache():
    from shiftattr.segmentation import PREPROCESSORS, zscore

    env, expected = toy_environment()
    doubled = Environment(
        {"X": env["X"] * 100.0, "Y": env["Y"]}, name="raw", case_ids=["a", "b", "c"]
    )
    plain = SegmentationAdapter(threshold_model(), progress=False, metric_params={"empty": "one"})
    assert plain.score(doubled)[0] < 0.95  # the faint voxel is now above the threshold too
    seen = []

    def rescale(x):
        seen.append(x.shape)
        return x / 100.0  # back to the range the model was trained on

    adapter = SegmentationAdapter(
        threshold_model(), preprocess=rescale, progress=False, metric_params={"empty": "one"}
    )
    np.testing.assert_allclose(adapter.score(doubled), expected)
    assert seen == [(1, *SHAPE)] * 3  # channels first, one case at a time
    assert doubled["X"].max() == 100.0  # the environment is untouched
    assert adapter.fingerprint() != plain.fingerprint()
    assert SegmentationAdapter(threshold_model(), preprocess=zscore).fingerprint() == (
        SegmentationAdapter(threshold_model(), preprocess=PREPROCESSORS["zscore"]).fingerprint()
    )

    class Scale:
        def __init__(self, factor):
            self.factor = factor

        def __call__(self, x):
            return x * self.factor

        def apply(self, x):
            return x * self.factor

    one, two = Scale(1.0), Scale(2.0)  # same names, other parameters: other cache keys
    for a, b in ((one, two), (one.apply, two.apply)):
        fa = SegmentationAdapter(threshold_model(), preprocess=a).fingerprint()
        assert fa != SegmentationAdapter(threshold_model(), preprocess=b).fingerprint()
    crop = SegmentationAdapter(threshold_model(), preprocess=lambda x: x[..., :3], progress=False)
    with pytest.raises(ValueError, match=r"preprocess changed case 'a' from shape"):
        crop.predict(doubled)
    with pytest.raises(TypeError, match="preprocess must be a function"):
        SegmentationAdapter(threshold_model(), preprocess="zscore")


def test_label_maps_where_some_cases_lack_the_class_score_as_empty_references():
    # a three-class model (background, organ 1, tumour 2) scored on the tumour: cases
    # 2 and 3 hold the organ only, which is an empty tumour reference, not an error
    # (it raised "holds the values [0, 1] but label=2; set label=1")
    x = np.zeros((4, 1, 6, 6, 6), dtype=np.float32)
    x[:, 0, 1:5, 1:5, 1:5] = 1.0  # organ
    x[:2, 0, 2:4, 2:4, 2:4] = 2.0  # tumour in cases 0 and 1
    y = np.rint(x[:, 0]).astype(np.uint8)

    def three_classes(b: torch.Tensor) -> torch.Tensor:
        return torch.cat([1.0 - b, 1.0 - (b - 1.0).abs(), b - 1.5], dim=1) * 10

    env = Environment({"X": x, "Y": y}, name="multi")
    adapter = SegmentationAdapter(
        three_classes,
        activation="softmax",
        label=2,
        metric_params={"empty": "best"},
        progress=False,
    )
    np.testing.assert_array_equal(adapter.score(env), [1.0, 1.0, 1.0, 1.0])
    assert adapter.agreement_features(env).shape == (4, 3)
    # binary masks scored with the wrong label are still refused, naming the fix
    binary = Environment({"X": x, "Y": (y > 0).astype(np.uint8)}, name="binary")
    with pytest.raises(ValueError, match=r"holds the values \[0, 1\] but label=2.*set label=1"):
        adapter.score(binary)
    with pytest.raises(ValueError, match=r"but label=2"):
        adapter.agreement_features(binary)
    # and so is one binary mask exported as 0/255 among 0/1 ones (it scored as empty)
    exported = (y > 0).astype(np.uint8)
    exported[3] *= 255
    one = SegmentationAdapter(lambda b: 10 * b - 5, metric_params={"empty": "best"}, progress=False)
    with pytest.raises(ValueError, match=r"case 'mixed:3'.*\[0, 255\].*0/255"):
        one.score(Environment({"X": x, "Y": exported}, name="mixed"))


def test_dict_outputs_channel_first_2d_masks_and_metric_params_per_metric():
    x = np.zeros((2, 1, 8, 8), dtype=np.float32)
    x[:, 0, 2:5, 2:5] = 1.0
    y = (x > 0.5).astype(np.uint8)  # (N, 1, H, W): MONAI's channel-first masks

    def torchvision_like(b: torch.Tensor) -> dict:
        return {"out": 10 * b - 5, "aux": torch.zeros_like(b)}

    # a dict output (torchvision) is read through its "out" entry; the masks' leading
    # 1 is a channel, so the model is 2D (it used to be taken for a 3D volume)
    adapter = SegmentationAdapter(torchvision_like, progress=False)
    np.testing.assert_array_equal(adapter.score(Environment({"X": x, "Y": y})), [1.0, 1.0])
    two_heads = SegmentationAdapter(lambda b: {"a": b, "b": b}, progress=False)
    with pytest.raises(TypeError, match=r"dict with keys \['a', 'b'\]"):
        two_heads.score(Environment({"X": x, "Y": y}))
    # each metric gets the metric_params its signature takes (dice has no
    # min_lesion_volume; a callable (pred, ref) none); a misspelt one is refused
    env = Environment({"X": x[:, 0], "Y": y[:, 0]})
    lesion = SegmentationAdapter(
        torchvision_like,
        metric=["lesion_f1", "dice"],
        metric_params={"min_lesion_volume": 2.0, "empty": "best"},
        progress=False,
        spatial_dims=2,
    )
    scores = lesion.score(env)
    assert set(scores) == {"lesion_f1", "dice"}
    np.testing.assert_array_equal(lesion.score(env, metric=lambda p, r: float(p.sum())), [9, 9])
    typo = SegmentationAdapter(torchvision_like, metric_params={"emtpy": "best"}, progress=False)
    with pytest.raises(ValueError, match=r"\['emtpy'\] are taken by none"):
        typo.score(env)


def test_a_bound_method_of_a_module_is_fingerprinted_by_its_weights():
    # SegmentationAdapter(net.forward) served the old predictions after the weights
    # changed: the fingerprint held the instance's id only
    net = threshold_conv(10.0, -5.0)
    x = np.zeros((2, 1, 4, 4, 4), dtype=np.float32)
    x[:, 0, 1:3, 1:3, 1:3] = 1.0
    env = Environment({"X": x, "Y": (x[:, 0] > 0.5).astype(np.uint8)})
    adapter = SegmentationAdapter(net.forward, metric_params={"empty": "best"}, progress=False)
    np.testing.assert_array_equal(adapter.score(env), [1.0, 1.0])
    with torch.no_grad():
        net.bias.fill_(-50.0)  # nothing is foreground now
    np.testing.assert_array_equal(adapter.score(env), [0.0, 0.0])


def test_a_model_declaring_3d_reads_single_slice_volumes_as_3d():
    # masks (1, H, W) are read channel-first 2D unless the model says it is 3D: a 3D
    # model on single-slice volumes got 4D input after that reading was added
    class Slice3D(torch.nn.Module):
        spatial_dims = 3

        def __init__(self) -> None:
            super().__init__()
            self.conv = threshold_conv(10.0, -5.0)

        def forward(self, b: torch.Tensor) -> torch.Tensor:
            assert b.ndim == 5, b.shape
            return self.conv(b)

    x = np.zeros((2, 1, 6, 6), dtype=np.float32)  # (N, D=1, H, W)
    x[:, 0, 1:4, 1:4] = 1.0
    env = Environment({"X": x, "Y": (x > 0.5).astype(np.uint8)})
    adapter = SegmentationAdapter(Slice3D(), progress=False)
    np.testing.assert_array_equal(adapter.score(env), [1.0, 1.0])


def test_auto_bound_respects_a_container_memory_limit(monkeypatch, tmp_path):
    # a quarter of the host's memory can exceed a Docker or Slurm job's whole allowance
    from shiftattr.segmentation import adapter as module

    v2, v1 = tmp_path / "memory.max", tmp_path / "limit_in_bytes"
    v2.write_text("max\n")  # cgroup v2 without a limit
    v1.write_text(f"{2**30}\n")
    monkeypatch.setattr(module, "_CGROUP_LIMITS", (str(v2), str(tmp_path / "none")))
    host = module._physical_memory()
    assert host > 2**30  # this machine's memory: no limit read
    monkeypatch.setattr(module, "_CGROUP_LIMITS", (str(v2), str(v1)))
    assert module._physical_memory() == 2**30
    assert SegmentationAdapter(threshold_model())._cache_limit() == 2**28


def test_eviction_warning_points_at_the_users_call_and_auto_reads_memory_once(monkeypatch):
    # it pointed into adapter.py or joblib; "auto" read sysconf and the cgroup files at
    # every case stored
    from shiftattr.segmentation import adapter as module

    env, _ = toy_environment()
    one_case = int(np.prod(SHAPE)) * 5
    reads = []
    monkeypatch.setattr(module, "_physical_memory", lambda: reads.append(1) or 4 * one_case)
    for method in ("predict", "score", "output_features"):
        adapter = SegmentationAdapter(threshold_model(), batch_size=3, progress=False)
        with pytest.warns(UserWarning, match="the prediction cache reached its bound") as rec:
            getattr(adapter, method)(env)
        assert [w.filename for w in rec] == [__file__], method
    assert len(reads) == 3  # once per adapter, not once per case


def test_masks_cut_from_another_class_need_the_models_channel_of_that_class():
    # a loader's foreground=2 stores class 2 as 1: channel 1 of a three-class model (the
    # default, from label=1) would be class 1, compared with class 2's masks
    x, labels = three_class_scene()
    cut = Environment({"X": x, "Y": (labels == 2).astype(np.uint8)}, metadata={"foreground": 2})
    model = three_class_model()
    with pytest.raises(
        ValueError, match=r"foreground=2.*outputs 3 channels.*class 2: 2 for a softmax"
    ):
        SegmentationAdapter(model, activation="softmax", progress=False).score(cut)
    right = SegmentationAdapter(model, activation="softmax", channel=2, progress=False)
    np.testing.assert_allclose(right.score(cut), 1.0)
    np.testing.assert_array_equal(right.predict(cut), cut["Y"])
    # label=2 finds no 2 in masks stored as 0/1: the error says why, and what to set
    with pytest.raises(
        ValueError,
        match=r"loaded with foreground=2.*Keep label=1.*channel of class 2 \(2 for a softmax",
    ):
        SegmentationAdapter(model, activation="softmax", label=2, progress=False).score(cut)
    # class 1, or a one-channel model of the class, needs nothing
    one = Environment({"X": x, "Y": (labels == 1).astype(np.uint8)}, metadata={"foreground": 1})
    assert SegmentationAdapter(model, activation="softmax", progress=False).score(one)[0] == 1.0
    binary = SegmentationAdapter(lambda b: (b > 0.75).float(), activation="none", progress=False)
    np.testing.assert_allclose(binary.score(cut), 1.0)
    # two channels are a background and a foreground: channel 1 is class 2's
    pair = SegmentationAdapter(
        lambda b: torch.cat([(b <= 0.75).float(), (b > 0.75).float()], 1) * 10,
        activation="softmax",
        progress=False,
    )
    np.testing.assert_allclose(pair.score(cut), 1.0)


def test_soft_or_interpolated_references_are_refused():
    env, _ = toy_environment()
    soft = env["Y"].astype(np.float32) * 0.99  # no voxel equals 1: every case empty
    adapter = SegmentationAdapter(threshold_model(), progress=False)
    with pytest.raises(ValueError, match=r"case 'a'.*not class labels.*0\.99"):
        adapter.score(Environment({"X": env["X"], "Y": soft}, case_ids=env.case_ids))
    nan = env["Y"].astype(np.float32)
    nan[0].flat[0] = np.nan
    with pytest.raises(ValueError, match="not class labels"):
        adapter.score(Environment({"X": env["X"], "Y": nan}, case_ids=env.case_ids))
    whole = Environment({"X": env["X"], "Y": env["Y"].astype(np.float64)}, case_ids=env.case_ids)
    np.testing.assert_allclose(adapter.score(whole), adapter.score(env))


def test_per_case_spacing_rows_belong_to_one_environment():
    env, _ = toy_environment()
    rows = np.ones((len(env), 3))
    adapter = SegmentationAdapter(
        threshold_model(), metric="hausdorff95", spacing=rows, progress=False
    )
    adapter.score(env)
    adapter.score(env)  # the same cases again
    other = Environment({"X": env["X"], "Y": env["Y"]}, case_ids=[f"z{i}" for i in range(len(env))])
    with pytest.raises(ValueError, match=r"one row per case.*matched by position.*metadata"):
        adapter.score(other)


def test_metadata_spacing_follows_a_subset_of_a_subset():
    """A bootstrap of a bootstrap ("a#1#0") found no spacing row."""
    env, _ = toy_environment()
    spacing = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 2.0], [3.0, 1.0, 1.0]])
    env = Environment(
        {"X": env["X"], "Y": env["Y"]},
        case_ids=env.case_ids,
        metadata={"spacing": spacing, "case_id": np.array(env.case_ids)},
    )
    nested = env.subset([2, 2, 1]).subset([0, 0, 2])
    assert nested.case_ids == ("c#0#0", "c#0#1", "b#2#2")
    adapter = SegmentationAdapter(threshold_model(), spacing="metadata", progress=False)
    np.testing.assert_array_equal(adapter._spacing_for(nested), spacing[[2, 2, 1]])


def test_cached_predictions_own_their_memory_and_cannot_be_changed_by_callers():
    """A cached case was a slice of its batch (a softmax's every channel kept alive: 52
    times the bytes the cache bound counted), and ragged results were the cache's own
    arrays, so a caller's edit changed later scores."""
    model = three_class_model()
    x, _ = three_class_scene()
    adapter = SegmentationAdapter(model, activation="softmax", progress=False, batch_size=2)
    adapter.predict(x)
    for mask, proba in adapter._cache.values():
        assert mask.base is None and proba.base is None
        assert not mask.flags.writeable and not proba.flags.writeable
    assert adapter.cache_bytes_ == sum(m.nbytes + p.nbytes for m, p in adapter._cache.values())
    ragged = [np.ones((1, 4, 5, 6), np.float32), np.ones((1, 5, 4, 6), np.float32)]
    out = SegmentationAdapter(threshold_model(), progress=False)
    first = out.predict_proba(ragged)
    first[0][:] = 0.0
    assert float(out.predict_proba(ragged)[0].min()) > 0.5
