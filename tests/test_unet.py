"""Tests of the small U-Net, its checkpoints and its training loop."""

from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from shiftattr.environment import Environment  # noqa: E402
from shiftattr.segmentation.unet import (  # noqa: E402
    UNet3D,
    load_checkpoint,
    predict_proba,
    save_checkpoint,
    segmentation_loss,
    train_segmentation_model,
)


def dice(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    axes = tuple(range(1, pred.ndim))
    p, t = pred.astype(bool), truth.astype(bool)
    denom = p.sum(axes) + t.sum(axes)
    return np.where(denom == 0, 1.0, 2.0 * (p & t).sum(axes) / np.maximum(denom, 1))


@pytest.mark.parametrize(
    ("spatial_dims", "size"), [(3, (16, 16, 16)), (3, (10, 12, 18)), (2, (32, 32)), (2, (15, 9))]
)
def test_forward_shapes(spatial_dims, size):
    net = UNet3D(channels=(4, 8, 16), spatial_dims=spatial_dims, random_state=0)
    out = net(torch.randn(2, 1, *size))
    assert out.shape == (2, 1, *size)
    assert torch.isfinite(out).all()


def test_multichannel_and_bad_input():
    net = UNet3D(in_channels=2, out_channels=3, channels=(4, 8), random_state=0)
    assert net(torch.randn(1, 2, 8, 8, 8)).shape == (1, 3, 8, 8, 8)
    with pytest.raises(ValueError, match="channel axis"):
        net(torch.randn(1, 8, 8, 8))
    with pytest.raises(ValueError, match="spatial_dims"):
        UNet3D(spatial_dims=4)


def test_same_seed_same_weights_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = UNet3D(channels=(4, 8), random_state=1)
    after = torch.rand(1)
    assert torch.equal(before, after)  # the seeded initialisation left the global RNG alone
    b = UNet3D(channels=(4, 8), random_state=1)
    c = UNet3D(channels=(4, 8), random_state=2)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_input_normalisation_makes_the_model_scale_invariant():
    net = UNet3D(channels=(4, 8), random_state=0).eval()
    x = torch.rand(1, 1, 8, 8, 8)
    with torch.no_grad():
        assert torch.allclose(net(x), net(3.0 * x + 5.0), atol=1e-4)


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    net = UNet3D(channels=(4, 8), random_state=0)
    with torch.no_grad():  # make the weights differ from any fresh initialisation
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = tmp_path / "unet.pt"
    save_checkpoint(net, path)
    # the file holds plain tensors only: loadable with weights_only=True
    state = torch.load(path, weights_only=True, map_location="cpu")
    assert set(state) == set(net.state_dict())
    other = load_checkpoint(UNet3D(channels=(4, 8), random_state=5), path)
    x = torch.randn(2, 1, 8, 8, 8)
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), other(x))
    with pytest.raises(RuntimeError, match="does not fit"):
        load_checkpoint(UNet3D(channels=(4, 16)), path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(net, tmp_path / "missing.pt")


def test_segmentation_loss_prefers_the_right_answer():
    t = torch.zeros(2, 1, 6, 6, 6)
    t[:, :, 2:4, 2:4, 2:4] = 1
    good = segmentation_loss(10 * (2 * t - 1), t)
    half = segmentation_loss(torch.zeros_like(t), t)
    bad = segmentation_loss(-10 * (2 * t - 1), t)
    assert good < half < bad


def _blob_environment(n: int, size: int = 16, seed: int = 0) -> Environment:
    """Bright spheres in noise: an easy segmentation task."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij"))
    x = rng.normal(size=(n, size, size, size)).astype(np.float32)
    y = np.zeros_like(x, dtype=np.uint8)
    for i in range(n):
        c = rng.uniform(4, size - 4, size=3)
        r = rng.uniform(2, 3.5)
        y[i] = (((grid - c[:, None, None, None]) ** 2).sum(0) <= r**2).astype(np.uint8)
    x += 2.5 * y
    return Environment({"X": x, "Y": y}, name="blobs")


def test_tiny_training_lowers_the_loss_and_is_deterministic():
    env = _blob_environment(6)
    kwargs = {"epochs": 2, "batch_size": 2, "lr": 1e-2, "random_state": 0, "progress": False}
    net = train_segmentation_model(UNet3D(channels=(4, 8), random_state=0), env, **kwargs)
    loss = net.history_["loss"]
    assert len(loss) == 2 and loss[-1] < loss[0]
    assert not net.training
    again = train_segmentation_model(UNet3D(channels=(4, 8), random_state=0), env, **kwargs)
    assert np.allclose(again.history_["loss"], loss)
    prob = predict_proba(net, env["X"])
    assert prob.shape == env["X"].shape and prob.dtype == np.float32
    assert prob.min() >= 0.0 and prob.max() <= 1.0


def test_training_validates_its_input():
    env = _blob_environment(2)
    net = UNet3D(channels=(4,), random_state=0)
    with pytest.raises(KeyError, match="Z"):
        train_segmentation_model(net, env, label_node="Z", progress=False)
    bad = env.with_nodes(Y=env["Y"] * 2)
    with pytest.raises(ValueError, match="binary"):
        train_segmentation_model(net, bad, epochs=1, progress=False)
    short = env.with_nodes(Y=env["Y"][:, :8])
    with pytest.raises(ValueError, match="shape"):
        train_segmentation_model(net, short, epochs=1, progress=False)


@pytest.mark.slow
def test_realistic_training_on_synthetic_ms_reaches_a_sensible_dice():
    """~100 volumes of 32³ from centers 01/07/08: about a minute or two on two CPU cores."""
    from shiftattr.datasets.synthetic_ms import SyntheticMS

    sim = SyntheticMS(shape=(32, 32, 32), random_state=0)
    source = {"center": ["01", "07", "08"], "annotator": "1"}
    train = sim.sample(100, **source, random_state=1)
    net = UNet3D(channels=(4, 16, 32), random_state=0)
    start = time.perf_counter()
    train_segmentation_model(net, train, epochs=15, random_state=0, progress=False)
    elapsed = time.perf_counter() - start
    held_out = sim.sample(60, **source, random_state=2)
    # the same cases scanned at center 03 (common random numbers): a paired comparison
    center03 = sim.sample_mixed(
        60, source, {"center": "03", "annotator": "1"}, shifted={"X"}, random_state=2
    )
    d_in = dice(predict_proba(net, held_out["X"]) > 0.5, held_out["Y"]).mean()
    d_03 = dice(predict_proba(net, center03["X"]) > 0.5, center03["Y"]).mean()
    print(f"training {elapsed:.0f}s, Dice in-distribution {d_in:.3f}, center 03 {d_03:.3f}")
    assert d_in > 0.55
    assert d_03 < d_in - 0.03  # the acquisition shift costs Dice (paired cases)


def test_unet_input_shape_errors_say_what_to_change():
    net = UNet3D(in_channels=1, channels=(2, 4))
    with pytest.raises(
        ValueError,
        match=r"expects input \(B, 1, \.\.\., \.\.\., \.\.\.\), got "
        r"shape \(2, 8, 8, 8\); add the channel axis with x\[:, None\]",
    ):
        net(torch.zeros(2, 8, 8, 8))
    with pytest.raises(
        ValueError,
        match=r"give 1 channel\(s\) on axis 1, or build the network "
        r"with in_channels=3",
    ):
        net(torch.zeros(2, 3, 8, 8, 8))
    with pytest.raises(ValueError, match=r"give a batch of 3D volumes with a channel axis"):
        net(torch.zeros(8, 8, 8))
    two = UNet3D(in_channels=2, channels=(2, 4))
    with pytest.raises(ValueError, match=r"add the batch axis with x\[None\]"):
        two(torch.zeros(2, 8, 8, 8))  # one two-channel case, not a batch of two


def test_the_unet_pickles():
    """A torch pooling function kept as an attribute made pickle.dumps (and
    torch.save of the whole module, and process pools) fail."""
    import pickle

    net = UNet3D(channels=(4, 8), random_state=0)
    again = pickle.loads(pickle.dumps(net))
    x = torch.zeros(1, 1, 8, 8, 8)
    with torch.no_grad():
        assert torch.equal(again(x), net(x))
