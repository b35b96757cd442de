"""A small U-Net (2D or 3D) and a CPU-friendly training loop for binary segmentation.

Enough model to make the attribution examples real: under 100k parameters; the demo's
15 epochs on 80 synthetic 24³ volumes take about 35 s of one CPU core and reach a source
Dice of about 0.63. Any other torch
model works with :mod:`shiftattr` as well; nothing in the library depends on this one.

On CPU the convolutions run in the channels-last memory format (the model converts its
weights and inputs itself): for few-channel 3D convolutions the default format hits a
oneDNN weight-gradient path that is 10-20 times slower.

Training and :func:`predict_proba` use one intra-op thread by default (``num_threads=1``):
the tensors of this small model are too small for OpenMP parallelism to pay much, and when
other processes share the cores its synchronisation makes two threads 3-5 times *slower*
than one (measured on a busy two-core machine: 24³ volumes, batch 4). Pass
``num_threads=None`` to keep torch's own setting on a dedicated many-core machine.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from shiftattr.environment import Environment, LazyVolumes
from shiftattr.segmentation._threads import intra_op_threads as _intra_op_threads

__all__ = [
    "UNet3D",
    "load_checkpoint",
    "predict_proba",
    "save_checkpoint",
    "segmentation_loss",
    "train_segmentation_model",
]


def _conv(spatial_dims: int) -> type[nn.Module]:
    return nn.Conv3d if spatial_dims == 3 else nn.Conv2d


class _InstanceNorm(nn.Module):
    """Instance normalisation with affine parameters, written with reductions and
    elementwise operations so that it keeps the channels-last memory format (the
    built-in one converts to contiguous and back, which dominates the CPU time)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(2, x.ndim))
        var, mean = torch.var_mean(x, dim=dims, keepdim=True, unbiased=False)
        shape = (1, -1) + (1,) * len(dims)
        scale = self.weight.view(shape) * torch.rsqrt(var + self.eps)
        return x * scale + (self.bias.view(shape) - mean * scale)


class _Block(nn.Sequential):
    """Two (convolution, instance norm, leaky ReLU) layers."""

    def __init__(self, c_in: int, c_out: int, spatial_dims: int, dropout: float) -> None:
        conv = _conv(spatial_dims)
        norm = _InstanceNorm
        layers: list[nn.Module] = [
            conv(c_in, c_out, 3, padding=1),
            norm(c_out),
            nn.LeakyReLU(0.01, inplace=True),
        ]
        if dropout > 0:
            layers.append((nn.Dropout3d if spatial_dims == 3 else nn.Dropout2d)(dropout))
        layers += [
            conv(c_out, c_out, 3, padding=1),
            norm(c_out),
            nn.LeakyReLU(0.01, inplace=True),
        ]
        super().__init__(*layers)


class UNet3D(nn.Module):
    """A compact U-Net for 3D (or 2D) binary or multi-class segmentation.

    Each level has two 3×3(×3) convolutions with instance norm and leaky ReLU; the
    encoder downsamples by max-pooling, the decoder upsamples by transposed convolution
    and concatenates the skip connection. Inputs whose size is not a multiple of
    ``2 ** (len(channels) - 1)`` are padded and the output cropped back.

    Parameters
    ----------
    in_channels : int, default 1
        Image channels.
    out_channels : int, default 1
        Output channels (one logit map per channel; 1 for binary segmentation).
    channels : sequence of int, default (8, 16, 32)
        Feature channels per resolution level (its length is the depth).
    spatial_dims : {3, 2}, default 3
        3 for volumes ``(B, C, D, H, W)``, 2 for images ``(B, C, H, W)``.
    normalize_input : bool, default True
        Standardise every input (per sample and channel, over space) inside
        :meth:`forward`, so the model is invariant to the global intensity scale.
    dropout : float, default 0.0
        Channel dropout inside every block.
    foreground_prior : float or None, default 0.01
        Initial foreground probability: the output bias starts at its logit, so that
        training on sparse lesions does not spend its first hundreds of steps
        learning that almost every voxel is background. ``None`` keeps torch's default.
    random_state : int, optional
        Seed of the weight initialisation (the global torch RNG is left untouched).

    Examples
    --------
    >>> net = UNet3D(channels=(4, 8), random_state=0)
    >>> net(torch.zeros(2, 1, 12, 16, 16)).shape
    torch.Size([2, 1, 12, 16, 16])
    >>> UNet3D(spatial_dims=2, channels=(4, 8))(torch.zeros(1, 1, 20, 20)).shape
    torch.Size([1, 1, 20, 20])
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: Sequence[int] = (8, 16, 32),
        spatial_dims: int = 3,
        normalize_input: bool = True,
        dropout: float = 0.0,
        foreground_prior: float | None = 0.01,
        random_state: int | None = None,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
        channels = tuple(int(c) for c in channels)
        if not channels or min(channels) < 1:
            raise ValueError(
                f"channels must be a non-empty sequence of positive ints, got {channels}"
            )
        if in_channels < 1 or out_channels < 1:
            raise ValueError(
                f"in_channels and out_channels must be positive, got {in_channels} and "
                f"{out_channels}."
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        if foreground_prior is not None and not 0.0 < foreground_prior < 1.0:
            raise ValueError(f"foreground_prior must lie in (0, 1), got {foreground_prior}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.channels = channels
        self.spatial_dims = int(spatial_dims)
        self.normalize_input = bool(normalize_input)
        with torch.random.fork_rng(devices=[], enabled=random_state is not None):
            if random_state is not None:
                torch.manual_seed(int(random_state))
            self.encoders = nn.ModuleList()
            c_prev = self.in_channels
            for c in channels:
                self.encoders.append(_Block(c_prev, c, spatial_dims, dropout))
                c_prev = c
            up = nn.ConvTranspose3d if spatial_dims == 3 else nn.ConvTranspose2d
            self.ups = nn.ModuleList()
            self.decoders = nn.ModuleList()
            for c_hi, c_lo in zip(channels[::-1][:-1], channels[::-1][1:]):
                self.ups.append(up(c_hi, c_lo, 2, stride=2))
                self.decoders.append(_Block(2 * c_lo, c_lo, spatial_dims, dropout))
            self.head = _conv(spatial_dims)(channels[0], self.out_channels, 1)
        if foreground_prior is not None:
            with torch.no_grad():
                self.head.bias.fill_(float(np.log(foreground_prior / (1.0 - foreground_prior))))
        self._memory_format = torch.channels_last_3d if spatial_dims == 3 else torch.channels_last
        self.to(memory_format=self._memory_format)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, out_channels, *spatial)`` for inputs ``(B, in_channels, *spatial)``.

        Call the module (``net(x)``) rather than this method, as for any torch module.

        Parameters
        ----------
        x : torch.Tensor of shape ``(B, in_channels, *spatial)``
            Any spatial size: it is padded to a multiple of ``2 ** (depth - 1)`` and the
            output cropped back.

        Returns
        -------
        torch.Tensor of shape ``(B, out_channels, *spatial)``
            Logits (apply a sigmoid or softmax for probabilities).

        Raises
        ------
        ValueError
            If ``x`` does not have ``spatial_dims + 2`` axes and ``in_channels`` channels.

        Examples
        --------
        >>> net = UNet3D(in_channels=2, channels=(2, 4), random_state=0).eval()
        >>> with torch.no_grad():
        ...     logits = net(torch.zeros(1, 2, 5, 6, 7))
        >>> logits.shape
        torch.Size([1, 1, 5, 6, 7])
        """
        if x.ndim != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            if x.ndim == self.spatial_dims + 1 and self.in_channels == 1:
                hint = "add the channel axis with x[:, None]"
            elif x.ndim == self.spatial_dims + 1 and x.shape[0] == self.in_channels:
                hint = "add the batch axis with x[None] (one case of shape (C, ...))"
            elif x.ndim == self.spatial_dims + 2:
                hint = (
                    f"give {self.in_channels} channel(s) on axis 1, or build the network "
                    f"with in_channels={x.shape[1]}"
                )
            else:
                hint = f"give a batch of {self.spatial_dims}D volumes with a channel axis"
            raise ValueError(
                f"UNet3D(spatial_dims={self.spatial_dims}, in_channels={self.in_channels}) "
                f"expects input (B, {self.in_channels}, "
                f"{', '.join(['...'] * self.spatial_dims)}), got shape {tuple(x.shape)}; "
                f"{hint}."
            )
        if self.normalize_input:
            dims = tuple(range(2, x.ndim))
            mean = x.mean(dim=dims, keepdim=True)
            std = x.std(dim=dims, keepdim=True)
            x = (x - mean) / (std + 1e-6)
        size = x.shape[2:]
        mult = 2 ** (len(self.channels) - 1)
        pad = [(-s) % mult for s in size]
        if any(pad):
            spec: list[int] = []
            for p in reversed(pad):
                spec += [0, p]
            x = F.pad(x, spec, mode="replicate")
        # channels-last is several times faster on CPU for few-channel 3D convolutions
        x = x.contiguous(memory_format=self._memory_format)
        skips = []
        for i, enc in enumerate(self.encoders):
            x = enc(x)
            if i < len(self.encoders) - 1:
                skips.append(x)
                # chosen here, not kept as an attribute: torch's pooling functions are
                # local objects that pickle cannot hold (torch.save(net) failed)
                x = (F.max_pool3d if self.spatial_dims == 3 else F.max_pool2d)(x, 2)
        for up, dec in zip(self.ups, self.decoders):
            x = up(x)
            x = dec(torch.cat([x, skips.pop()], dim=1))
        x = self.head(x).contiguous()
        if any(pad):
            x = x[(slice(None), slice(None), *(slice(0, s) for s in size))]
        return x

    def extra_repr(self) -> str:
        """The arguments shown in the module's ``repr`` (a :class:`torch.nn.Module` hook).

        Returns
        -------
        str

        Examples
        --------
        >>> UNet3D(channels=(4, 8)).extra_repr()
        'in_channels=1, out_channels=1, channels=(4, 8), spatial_dims=3'
        """
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"channels={self.channels}, spatial_dims={self.spatial_dims}"
        )


# ----------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------
def save_checkpoint(model: nn.Module, path: str | os.PathLike) -> None:
    """Save a model's weights (``state_dict``) to ``path`` with :func:`torch.save`.

    Parameters
    ----------
    model : torch.nn.Module
    path : str or path-like

    Examples
    --------
    >>> import tempfile, pathlib
    >>> net = UNet3D(channels=(4,), random_state=0)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     save_checkpoint(net, pathlib.Path(tmp) / "net.pt")
    ...     other = load_checkpoint(UNet3D(channels=(4,)), pathlib.Path(tmp) / "net.pt")
    >>> all(torch.equal(a, b) for a, b in zip(net.parameters(), other.parameters()))
    True
    """
    torch.save(model.state_dict(), os.fspath(path))


def load_checkpoint(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load weights saved by :func:`save_checkpoint` into ``model`` (safely).

    The file is read with ``torch.load(path, weights_only=True, map_location="cpu")``:
    only tensors are unpickled, never arbitrary code.

    Parameters
    ----------
    model : torch.nn.Module
        A model of the same architecture as the saved one.
    path : str or path-like
        File written by :func:`save_checkpoint`.

    Returns
    -------
    torch.nn.Module
        ``model``, with the loaded weights, in eval mode.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CheckpointError
        If the file is no readable torch checkpoint (named), or holds more than
        tensors.
    RuntimeError
        If the saved weights do not fit ``model`` (names the mismatching keys).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp) / "net.pt"
    ...     save_checkpoint(UNet3D(channels=(2,), random_state=0), path)
    ...     net = load_checkpoint(UNet3D(channels=(2,)), path)
    ...     try:
    ...         load_checkpoint(UNet3D(channels=(4,)), path)
    ...     except RuntimeError:
    ...         print("different architecture refused")
    different architecture refused
    >>> net.training
    False
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    from shiftattr.segmentation.checkpoint import _torch_load  # names an unreadable file

    state = _torch_load(path, "cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise RuntimeError(
            f"checkpoint {path!r} does not fit {type(model).__name__}: {exc}; build the model "
            "with the same arguments as the one that was saved."
        ) from exc
    model.eval()
    return model


# ----------------------------------------------------------------------------------------
# Training and inference
# ----------------------------------------------------------------------------------------
def segmentation_loss(
    logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0
) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice loss (Dice pooled over the batch).

    Parameters
    ----------
    logits : torch.Tensor
        ``(B, 1, *spatial)`` logits.
    target : torch.Tensor
        Same shape, values in ``{0, 1}``.
    smooth : float, default 1.0
        Additive smoothing of the soft Dice.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Examples
    --------
    >>> t = torch.zeros(1, 1, 4, 4); t[..., 1:3, 1:3] = 1
    >>> good, bad = segmentation_loss(20 * (2 * t - 1), t), segmentation_loss(-20 * (2 * t - 1), t)
    >>> bool(good < 0.01 < bad)
    True
    """
    bce = F.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum()
    dice = (2 * inter + smooth) / (prob.sum() + target.sum() + smooth)
    return bce + (1 - dice)


def _as_array(values: Any) -> np.ndarray:
    if isinstance(values, LazyVolumes):
        return values.load()
    return np.asarray(values)


def _image_tensor(values: Any, model: nn.Module, what: str) -> torch.Tensor:
    arr = _as_array(values).astype(np.float32, copy=False)
    sd = getattr(model, "spatial_dims", arr.ndim - 1)
    if arr.ndim == sd + 1:
        arr = arr[:, None]
    if arr.ndim != sd + 2:
        raise ValueError(
            f"{what} must have shape (N, *spatial) or (N, C, *spatial) with {sd} spatial "
            f"dimensions, got {arr.shape}"
        )
    return torch.from_numpy(np.ascontiguousarray(arr))


def predict_proba(
    model: nn.Module,
    images: Any,
    batch_size: int = 8,
    progress: bool = False,
    num_threads: int | None = 1,
) -> np.ndarray:
    """Foreground probabilities of a binary segmentation model, batch by batch.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(B, C, *spatial)`` to logits ``(B, 1, *spatial)``.
    images : array-like or LazyVolumes
        ``(N, *spatial)`` (single channel) or ``(N, C, *spatial)``.
    batch_size : int, default 8
    progress : bool, default False
        Show a progress bar.
    num_threads : int or None, default 1
        Torch intra-op threads during the call (restored afterwards); ``None`` keeps
        torch's setting. See the module notes for why one is the default.

    Returns
    -------
    numpy.ndarray
        ``(N, *spatial)`` float32 probabilities.

    Examples
    --------
    >>> net = UNet3D(channels=(4, 8), random_state=0)
    >>> predict_proba(net, np.zeros((3, 8, 8, 8))).shape
    (3, 8, 8, 8)
    """
    x = _image_tensor(images, model, "images")
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad(), _intra_op_threads(num_threads):
            for start in tqdm(
                range(0, len(x), batch_size), desc="predicting", disable=not progress, leave=False
            ):
                out.append(torch.sigmoid(model(x[start : start + batch_size]))[:, 0].numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out).astype(np.float32, copy=False)


def train_segmentation_model(
    model: nn.Module,
    environment: Environment,
    image_node: str = "X",
    label_node: str = "Y",
    epochs: int = 20,
    batch_size: int = 4,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    augment: bool = True,
    random_state: int | None = 0,
    progress: bool = True,
    num_threads: int | None = 1,
) -> nn.Module:
    """Train a binary segmentation model with Dice + BCE loss, Adam and random flips.

    The learning rate follows a cosine schedule to zero. Training is deterministic for a
    given ``random_state`` (shuffling and augmentation use their own generator; the
    global torch RNG is restored afterwards). The mean training loss of every epoch is
    stored in ``model.history_["loss"]``.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(B, C, *spatial)`` to logits ``(B, 1, *spatial)`` (e.g. :class:`UNet3D`).
    environment : Environment
        Training cases.
    image_node, label_node : str, default "X", "Y"
        Nodes holding the images ``(N, *spatial)`` or ``(N, C, *spatial)`` and the binary
        masks ``(N, *spatial)``.
    epochs : int, default 20
    batch_size : int, default 4
    lr : float, default 3e-3
        Initial Adam learning rate.
    weight_decay : float, default 0.0
    augment : bool, default True
        Flip every case along each spatial axis with probability 1/2.
    random_state : int or None, default 0
        Seed of shuffling, augmentation and dropout; ``None`` is seed 0 (training is
        always reproducible).
    progress : bool, default True
        Show a progress bar over epochs.
    num_threads : int or None, default 1
        Torch intra-op threads while training (restored afterwards); ``None`` keeps
        torch's setting. One thread is the robust choice for this small model on a
        shared CPU (see the module notes); a dedicated many-core machine or a larger
        model may train faster with ``None``.

    Returns
    -------
    torch.nn.Module
        ``model``, trained, in eval mode.

    Raises
    ------
    KeyError
        If a node is missing from ``environment``.
    ValueError
        If images and masks disagree in shape or the masks are not binary.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(4, 8, 8, 8)).astype(np.float32)
    >>> env = Environment({"X": x, "Y": (x > 1).astype(np.uint8)})
    >>> net = train_segmentation_model(UNet3D(channels=(4,), random_state=0), env,
    ...                                epochs=2, progress=False)
    >>> len(net.history_["loss"])
    2
    """
    if not isinstance(environment, Environment):
        raise TypeError(
            f"environment must be a shiftattr Environment, got {type(environment).__name__}"
        )
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be positive, got {epochs}, {batch_size}")
    x = _image_tensor(environment[image_node], model, f"node {image_node!r}")
    y_arr = _as_array(environment[label_node])
    if y_arr.shape != (x.shape[0], *x.shape[2:]):
        raise ValueError(
            f"node {label_node!r} has shape {y_arr.shape}, expected {(x.shape[0], *x.shape[2:])} "
            f"to match images {tuple(x.shape)} in environment {environment.name!r}"
        )
    if not np.isin(np.unique(y_arr), (0, 1)).all():
        raise ValueError(f"node {label_node!r} must be a binary mask (values 0 and 1)")
    y = torch.from_numpy(np.ascontiguousarray(y_arr, dtype=np.float32))[:, None]
    n = len(x)
    spatial = tuple(range(2, x.ndim))
    gen = torch.Generator().manual_seed(0 if random_state is None else int(random_state))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = -(-n // batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch)
    history: list[float] = []
    model.train()
    with torch.random.fork_rng(devices=[]), _intra_op_threads(num_threads):
        torch.manual_seed(0 if random_state is None else int(random_state))
        bar = tqdm(range(epochs), desc="training", disable=not progress)
        for _ in bar:
            order = torch.randperm(n, generator=gen)
            total = 0.0
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                xb, yb = x[idx], y[idx]
                if augment:
                    flips = torch.rand(len(idx), len(spatial), generator=gen) < 0.5
                    xb, yb = xb.clone(), yb.clone()
                    for b in range(len(idx)):
                        dims = [d for d, f in zip(spatial, flips[b]) if f]
                        if dims:
                            xb[b] = torch.flip(xb[b], [d - 1 for d in dims])
                            yb[b] = torch.flip(yb[b], [d - 1 for d in dims])
                optimizer.zero_grad()
                loss = segmentation_loss(model(xb), yb)
                loss.backward()
                optimizer.step()
                scheduler.step()
                total += loss.item() * len(idx)
            history.append(total / n)
            bar.set_postfix(loss=f"{history[-1]:.4f}")
    model.eval()
    model.history_ = {"loss": history}
    return model
