"""Safe checkpoint loading: weights_only by default, explicit opt-in for full pickles."""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from shiftattr.segmentation.checkpoint import (  # noqa: E402
    CheckpointError,
    load_state_dict,
    load_torch_checkpoint,
)


def make_net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(4, 2, 1)
    )


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        assert torch.equal(va, vb)


def test_plain_state_dict_roundtrip(tmp_path):
    net = make_net(0)
    path = tmp_path / "w.pt"
    torch.save(net.state_dict(), path)
    other = make_net(1)
    out = load_torch_checkpoint(other, path)
    assert out is other
    assert_same_weights(net, other)


@pytest.mark.parametrize("key", ["state_dict", "network_weights", "model_state_dict"])
def test_nested_checkpoints_are_detected(tmp_path, key):
    net = make_net(0)
    path = tmp_path / "ckpt.pth"
    # nnU-Net style extras: numpy scalars / arrays next to the weights are data, allowed
    torch.save(
        {
            key: net.state_dict(),
            "optimizer_state": {"lr": 0.01},
            "_best_ema": np.float64(0.71),
            "logging": {"dice": [np.float32(0.5), np.float32(0.6)], "arr": np.arange(3)},
            "current_epoch": 12,
            "trainer_name": "nnUNetTrainer",
        },
        path,
    )
    other = load_torch_checkpoint(make_net(1), path)
    assert_same_weights(net, other)


def test_explicit_dotted_key(tmp_path):
    net = make_net(0)
    path = tmp_path / "ema.pt"
    torch.save({"ema": {"weights": net.state_dict()}, "raw": make_net(3).state_dict()}, path)
    other = load_torch_checkpoint(make_net(1), path, key="ema.weights")
    assert_same_weights(net, other)
    with pytest.raises(CheckpointError, match=r"no entry 'ema.missing'.*\['weights'\]"):
        load_torch_checkpoint(make_net(1), path, key="ema.missing")


def test_ambiguous_dict_lists_keys(tmp_path):
    path = tmp_path / "odd.pt"
    torch.save({"generator": make_net(0).state_dict(), "epoch": 3}, path)
    with pytest.raises(CheckpointError, match=r"keys \['generator', 'epoch'\].*key="):
        load_torch_checkpoint(make_net(1), path)


def test_full_pickle_refused_without_opt_in(tmp_path):
    net = make_net(0)
    path = tmp_path / "full.pt"
    torch.save(net, path)  # a whole pickled module
    with pytest.raises(CheckpointError, match="weights_only=False") as err:
        load_torch_checkpoint(make_net(1), path)
    assert str(path) in str(err.value)
    with pytest.warns(UserWarning, match="arbitrary code"):
        other = load_torch_checkpoint(make_net(1), path, weights_only=False)
    assert_same_weights(net, other)


class _Exploit:
    """Unpickling this object would create a file (stands for arbitrary code execution)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_malicious_pickle_does_not_run(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": make_net(0).state_dict(), "payload": _Exploit(str(marker))}, path)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="arbitrary code"):
        load_torch_checkpoint(make_net(1), path)
    assert not marker.exists()


def test_missing_and_unexpected_keys_are_named(tmp_path):
    sd = make_net(0).state_dict()
    sd["extra.weight"] = torch.zeros(1)
    del sd["2.bias"]
    path = tmp_path / "partial.pt"
    torch.save(sd, path)
    with pytest.raises(
        CheckpointError, match=r"missing keys \['2.bias'\].*unexpected keys \['extra.weight'\]"
    ):
        load_torch_checkpoint(make_net(1), path)
    net = make_net(1)
    load_torch_checkpoint(net, path, strict=False)
    assert torch.equal(net.state_dict()["0.weight"], sd["0.weight"])


def test_wrapper_prefixes_are_stripped(tmp_path):
    net = make_net(0)
    sd = {f"module._orig_mod.{k}": v for k, v in net.state_dict().items()}  # DDP + compile
    path = tmp_path / "ddp.pt"
    torch.save({"network_weights": sd}, path)
    assert_same_weights(net, load_torch_checkpoint(make_net(1), path))


def test_shape_mismatch_is_named(tmp_path):
    path = tmp_path / "wide.pt"
    wide = torch.nn.Sequential(
        torch.nn.Conv3d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(8, 2, 1)
    )
    torch.save(wide.state_dict(), path)
    with pytest.raises(
        CheckpointError, match=r"0.weight: checkpoint \(8, 1, 3, 3, 3\) vs model \(4, 1, 3, 3, 3\)"
    ):
        load_torch_checkpoint(make_net(1), path)


def test_missing_and_truncated_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pt"):
        load_torch_checkpoint(make_net(0), tmp_path / "nope.pt")
    path = tmp_path / "cut.pt"
    torch.save(make_net(0).state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pt"):
        load_torch_checkpoint(make_net(0), path)


def test_load_state_dict_returns_tensors(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"state_dict": make_net(0).state_dict()}, path)
    sd = load_state_dict(os.fspath(path))
    assert set(sd) == set(make_net(0).state_dict())
    with pytest.raises(TypeError):
        load_torch_checkpoint(lambda x: x, path)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "content",
    [
        b"<html>403 Forbidden</html>",
        b"version https://git-lfs.github.com/spec/v1\n",
        b"hello\n",
        bytes(64),
    ],
)
def test_a_file_that_is_no_checkpoint_is_named_as_such(tmp_path, content):
    """A web page or an LFS pointer was diagnosed as a pickled full model, with the
    advice to load it with weights_only=False; text starting with "h" raised KeyError."""
    from shiftattr.segmentation import (
        CheckpointError,
        UNet3D,
        load_checkpoint,
        load_torch_checkpoint,
    )

    path = tmp_path / "net.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"net\.pt") as err:
        load_torch_checkpoint(UNet3D(channels=(2,)), path)
    assert "weights_only=False" not in str(err.value)
    with pytest.raises(CheckpointError, match=r"net\.pt"):
        load_checkpoint(UNet3D(channels=(2,)), path)
