"""Sliding-window inference: grid, importance map, equivalence with full-volume inference."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from shiftattr.segmentation.sliding_window import (  # noqa: E402
    gaussian_importance_map,
    sliding_window_inference,
    window_starts,
)


def pointwise_model(in_ch: int, out_ch: int, dims: int, seed: int = 0) -> torch.nn.Module:
    """A 1x1(x1) convolution: translation-equivariant and local, so patches change nothing."""
    conv = (torch.nn.Conv2d if dims == 2 else torch.nn.Conv3d)(in_ch, out_ch, 1)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen))
        conv.bias.copy_(torch.randn(conv.bias.shape, generator=gen))
    return conv.eval()


@pytest.mark.parametrize("blending", ["constant", "gaussian"])
def test_equals_full_volume_3d_non_divisible(blending):
    model = pointwise_model(2, 3, dims=3)
    image = np.random.default_rng(0).normal(size=(2, 23, 17, 11)).astype(np.float32)
    with torch.no_grad():
        full = model(torch.from_numpy(image)[None])[0].numpy()
    out = sliding_window_inference(
        model, image, (8, 8, 8), overlap=0.5, blending=blending, batch_size=3
    )
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert out.shape == (3, 23, 17, 11)
    np.testing.assert_allclose(out, full, atol=1e-5)


def test_equals_full_volume_2d_batched_and_torch_input():
    model = pointwise_model(1, 2, dims=2)
    image = torch.randn(3, 1, 30, 19, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(image)
    out = sliding_window_inference(model, image, (16, 16), overlap=0.25, blending="constant")
    assert isinstance(out, torch.Tensor)
    assert out.shape == (3, 2, 30, 19)
    np.testing.assert_allclose(out.numpy(), full.numpy(), atol=1e-5, rtol=1e-5)


def test_pads_volumes_smaller_than_the_patch():
    model = pointwise_model(1, 1, dims=3)
    image = np.random.default_rng(2).normal(size=(1, 5, 9, 3)).astype(np.float32)
    seen = []

    def predictor(x):
        seen.append(tuple(x.shape))
        return model(x)

    out = sliding_window_inference(predictor, image, (8, 8, 8), blending="constant")
    with torch.no_grad():
        full = model(torch.from_numpy(image)[None])[0].numpy()
    assert seen[0][2:] == (8, 8, 8)  # the network always sees full patches
    assert out.shape == (1, 5, 9, 3)
    np.testing.assert_allclose(out, full, atol=1e-5)


def test_number_of_windows_and_calls():
    calls = []

    def predictor(x):
        calls.append(x.shape[0])
        return x

    image = np.zeros((1, 110, 64), dtype=np.float32)
    sliding_window_inference(predictor, image, (64, 64), overlap=0.5, batch_size=2)
    # nnU-Net grid: 3 windows along the first axis (0, 23, 46), 1 along the second
    assert sum(calls) == 3
    assert calls == [2, 1]


def test_output_without_channel_axis_and_none_patch_entries():
    image = np.arange(2 * 12 * 7, dtype=np.float32).reshape(2, 12, 7)
    out = sliding_window_inference(lambda x: x.sum(1), image, (5, None), blending="gaussian")
    assert out.shape == (12, 7)
    np.testing.assert_allclose(out, image.sum(0), rtol=1e-5)


def test_window_starts_cover_the_axis():
    assert window_starts(110, 64, 0.5) == [0, 23, 46]
    assert window_starts(64, 64, 0.5) == [0]
    for size in range(8, 60):
        for overlap in (0.0, 0.25, 0.5, 0.75):
            st = window_starts(size, 8, overlap)
            assert st[0] == 0 and st[-1] + 8 == size
            steps = np.diff(st)
            assert np.all(steps > 0)
            assert np.all(steps <= math.ceil(8 * (1 - overlap)))
    with pytest.raises(ValueError, match="overlap"):
        window_starts(10, 4, 1.0)


def test_gaussian_importance_map_shape_peak_symmetry():
    w = gaussian_importance_map((9, 9, 9))
    assert w.shape == (9, 9, 9)
    assert float(w[4, 4, 4]) == pytest.approx(1.0)
    assert float(w.min()) > 0
    np.testing.assert_allclose(w.numpy(), w.flip(0).numpy())
    # sigma = 9 / 8 voxels: one sigma away the weight is exp(-1/2)
    assert float(w[4, 4, 4 + 1]) == pytest.approx(math.exp(-0.5 / (9 / 8) ** 2), rel=1e-5)


def test_gaussian_blending_favours_window_centres():
    # predictor whose output depends on the window (not equivariant): window k outputs k
    counter = {"k": 0}

    def predictor(x):
        out = torch.empty(x.shape[0], 1, *x.shape[2:])
        for j in range(x.shape[0]):
            out[j] = counter["k"]
            counter["k"] += 1
        return out

    image = np.zeros((1, 24), dtype=np.float32)  # windows start at 0, 8, 16 (patch 16, overlap .5)
    gauss = sliding_window_inference(predictor, image, (16,), blending="gaussian", batch_size=1)
    counter["k"] = 0
    const = sliding_window_inference(predictor, image, (16,), blending="constant", batch_size=1)
    # voxel 10 lies in windows 0 (offset 10) and 1 (offset 2): constant averages to 0.5,
    # gaussian weights window 0 (nearer its centre 8) more
    assert const[0, 10] == pytest.approx(0.5)
    assert gauss[0, 10] < 0.5
    assert np.all((gauss >= 0) & (gauss <= 2))


def test_errors():
    image = np.zeros((1, 8, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="axes"):
        sliding_window_inference(lambda x: x, image, (4, 4, 4))
    with pytest.raises(ValueError, match="blending"):
        sliding_window_inference(lambda x: x, image, (4, 4), blending="mean")
    with pytest.raises(ValueError, match="spatial size"):
        sliding_window_inference(lambda x: x[..., ::2, ::2], image, (4, 4))


def test_deep_supervision_and_dict_predictors_give_their_full_resolution_head():
    x = torch.rand(1, 1, 10, 12)

    def heads(p: torch.Tensor) -> tuple:  # nnU-Net / MONAI DynUNet style in training
        return (2 * p, p[..., ::2, ::2])

    expected = sliding_window_inference(lambda p: 2 * p, x, (6, 6), overlap=0.5)
    for predictor in (heads, lambda p: {"out": 2 * p, "aux": p}):
        got = sliding_window_inference(predictor, x, (6, 6), overlap=0.5)
        torch.testing.assert_close(got, expected)
