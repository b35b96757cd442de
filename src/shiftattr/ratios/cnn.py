"""A small convolutional discriminator that estimates density ratios between image sets.

:class:`CNNDiscriminator` is the image counterpart of the tabular
:class:`~shiftattr.ratios.ClassifierRatio`: it is trained to tell source cases
(label 0) from target cases (label 1) on balanced batches, so that its calibrated
logit *is* ``log p_target(v) / p_source(v)`` (see the class notes for the prior
correction, the temperature and the test-time augmentation). It is the only module
of :mod:`shiftattr` that imports torch (the ``images`` extra);
:mod:`shiftattr.ratios` imports it on first use.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.metrics import roc_auc_score
from sklearn.utils import check_random_state
from torch import nn
from tqdm.auto import tqdm

from shiftattr.environment import LazyVolumes
from shiftattr.ratios.base import DensityRatioEstimator, Features, check_fitted, n_cases
from shiftattr.ratios.image_axes import check_image_axes
from shiftattr.segmentation._threads import intra_op_threads

__all__ = ["AUTO_GRID_SIZE", "CNNDiscriminator"]

#: ``downsample="auto"`` average-pools every spatial axis longer than this many voxels
#: by the smallest integer factor that brings it to at most this size.
AUTO_GRID_SIZE = 48

#: During ``fit``, the network inputs of pooled or lazily read images are kept in memory
#: (read and pooled once, not once per epoch) when all the cases' inputs fit in this
#: many bytes.
INPUT_CACHE_BYTES = 2**30

_EPS = 1e-5  # variance floor of the instance normalisation
_LEAK = 0.2  # LeakyReLU slope
_LOG_T_BOUNDS = (math.log(0.05), math.log(100.0))


# ---------------------------------------------------------------------------------------
# Features: node layout and batch loading
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    """How a features mapping maps onto the network inputs (nodes sorted by name)."""

    nodes: tuple[str, ...]
    image_nodes: tuple[tuple[str, tuple[int, ...]], ...]  # (node, item shape)
    vector_nodes: tuple[tuple[str, tuple[int, ...]], ...]  # (node, item shape)
    spatial_shape: tuple[int, ...] | None
    n_channels: int
    n_vector: int


def _as_column(node: str, values: Any) -> Any:
    """A numpy array, or a lazy sequence kept as is (loaded batch by batch)."""
    if isinstance(values, (np.ndarray, LazyVolumes)):
        return values
    if hasattr(values, "to_numpy"):  # pandas
        return values.to_numpy()
    if isinstance(values, Sequence) and not isinstance(values, (list, tuple, str, bytes)):
        return values  # some other lazy sequence: indexed one item at a time
    try:
        arr = np.asarray(values)
    except ValueError as exc:
        raise ValueError(
            f"node {node!r}: cannot stack its cases into one array ({exc}); pass a numpy array "
            "or a LazyVolumes."
        ) from exc
    if arr.ndim == 0:
        raise ValueError(f"node {node!r} is a scalar; it needs a leading sample axis.")
    return arr


def _item_shape(node: str, values: Any) -> tuple[int, ...]:
    """The shape of a case; lazy cases whose shapes are known without reading them
    (NIfTI headers) must all share it, else the odd ones are named before training."""
    if isinstance(values, np.ndarray):
        return tuple(values.shape[1:])
    if isinstance(values, LazyVolumes) and values.shape_item is not None:
        return tuple(values.shape_item)
    shapes = values.item_shapes if isinstance(values, LazyVolumes) else None
    if shapes:
        common = Counter(shapes).most_common(1)[0][0]
        odd = [(i, sh) for i, sh in enumerate(shapes) if sh != common]
        if odd:
            raise ValueError(_grid_message(node, odd, common))
        return common
    if len(values) == 0:
        raise ValueError(f"node {node!r} has no cases.")
    return tuple(np.shape(values[0]))


def _layout(features: Features, spatial_dims: int) -> tuple[_Layout, dict[str, Any]]:
    if not isinstance(features, Mapping):
        raise TypeError(
            f"features must be a mapping {{node: values}}, got {type(features).__name__}."
        )
    n_cases(features)
    columns = {str(k): _as_column(str(k), v) for k, v in features.items()}
    nodes = tuple(sorted(columns))
    images, vectors = [], []
    for node in nodes:
        shape = _item_shape(node, columns[node])
        if len(shape) >= 2:
            check_image_axes(node, shape, spatial_dims)
        if len(shape) in (spatial_dims, spatial_dims + 1):
            images.append((node, shape))
        elif len(shape) <= 1:
            vectors.append((node, shape))
        else:
            raise ValueError(
                f"node {node!r} has cases of shape {shape}: neither an image with "
                f"spatial_dims={spatial_dims} (shape (*spatial) or (channels, *spatial)) nor a "
                "scalar / vector; check spatial_dims."
            )
    spatial = {n: (s if len(s) == spatial_dims else s[1:]) for n, s in images}
    if len(set(spatial.values())) > 1:
        raise ValueError(
            "image nodes are stacked as channels and need the same spatial shape, got "
            + ", ".join(f"{n!r}: {s}" for n, s in spatial.items())
            + "; resample them to a common grid."
        )
    layout = _Layout(
        nodes=nodes,
        image_nodes=tuple(images),
        vector_nodes=tuple(vectors),
        spatial_shape=next(iter(spatial.values())) if spatial else None,
        n_channels=sum(1 if len(s) == spatial_dims else s[0] for _, s in images),
        n_vector=sum(int(np.prod(s)) for _, s in vectors),
    )
    return layout, columns


def _grid_message(node: str, odd: list, shape: tuple[int, ...]) -> str:
    """The error for cases whose shape is not the grid the network was built for."""
    listed = ", ".join(
        f"{'a case' if i is None else f'case {i}'} has shape {tuple(sh)}" for i, sh in odd[:3]
    ) + (f" (and {len(odd) - 3} more)" if len(odd) > 3 else "")
    return (
        f"node {node!r}: {listed}, not {shape} like the others (positions among the cases "
        "given). The CNN discriminator needs one grid for every case of both environments: "
        "resample them to a common grid, or use ImageStatsRatio, which summarises each grid."
    )


def _take(node: str, values: Any, idx: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Load the cases ``idx`` of one node as float32 (only these cases are read)."""
    if isinstance(values, np.ndarray):
        batch = np.asarray(values[idx], dtype=np.float32)
    elif isinstance(values, LazyVolumes) and values.shape_item is not None:  # one grid
        batch = np.asarray(values.load(idx), dtype=np.float32)
    else:  # lazy volumes on several grids, or a list: case by case, naming an odd one
        items = [np.asarray(values[int(i)]) for i in idx]
        odd = [(int(i), a.shape) for i, a in zip(idx, items) if a.shape != shape]
        if odd:
            raise ValueError(_grid_message(node, odd, shape))
        batch = np.stack(items).astype(np.float32, copy=False)
    if batch.shape[1:] != shape:
        raise ValueError(_grid_message(node, [(None, batch.shape[1:])], shape))
    if not np.isfinite(batch).all():
        raise ValueError(f"node {node!r} contains NaN or infinite values; clean or impute them.")
    return batch


def _load(
    layout: _Layout, columns: Mapping[str, Any], idx: np.ndarray, spatial_dims: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Images stacked as channels ``(B, C, *spatial)`` and vectors ``(B, F)``."""
    img = vec = None
    if layout.image_nodes:
        parts = []
        for node, shape in layout.image_nodes:
            a = _take(node, columns[node], idx, shape)
            parts.append(a[:, None] if len(shape) == spatial_dims else a)
        img = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
    if layout.vector_nodes:
        parts = [
            _take(node, columns[node], idx, shape).reshape(len(idx), -1)
            for node, shape in layout.vector_nodes
        ]
        vec = np.concatenate(parts, axis=1)
    return img, vec


def _pooled_shape(shape: tuple[int, ...], factors: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(-(-int(s) // int(f)) for s, f in zip(shape, factors))


def _pool(img: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Average ``(B, C, *spatial)`` images down to ``size`` (every voxel counted once or
    in two neighbouring cells where a factor does not divide the axis)."""
    if tuple(img.shape[2:]) == tuple(size):
        return img
    pool = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}
    with torch.no_grad():
        return pool[len(size)](torch.from_numpy(img), size).numpy()


def _chunks(n: int, size: int) -> Iterator[np.ndarray]:
    for start in range(0, n, size):
        yield np.arange(start, min(start + size, n))


class _Stream:
    """Endless shuffled passes over a set of indices (without replacement within a pass)."""

    def __init__(self, indices: np.ndarray, rng: np.random.Generator) -> None:
        self._indices = np.asarray(indices)
        self._rng = rng
        self._order = rng.permutation(self._indices)
        self._pos = 0

    def next(self, k: int) -> np.ndarray:
        out = []
        while k > 0:
            if self._pos == len(self._order):
                self._order = self._rng.permutation(self._indices)
                self._pos = 0
            take = min(k, len(self._order) - self._pos)
            out.append(self._order[self._pos : self._pos + take])
            self._pos += take
            k -= take
        return np.concatenate(out)


# ---------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------
class _InstanceNormAct(nn.Module):
    """Instance norm + LeakyReLU that also returns the statistics it removes.

    Per-sample normalisation erases a volume's global intensity scale, which is
    precisely an acquisition shift; the log standard deviation it divides by is
    therefore handed to the head as a pooled feature.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dims = tuple(range(2, x.ndim))
        var, mean = torch.var_mean(x, dim=dims, keepdim=True, correction=0)
        log_std = 0.5 * torch.log(var + _EPS)
        shape = (1, -1) + (1,) * len(dims)
        # one fused full-size op: x * scale + shift, with per-case-and-channel scale/shift
        scale = self.weight.view(shape) * torch.exp(-log_std)
        y = torch.addcmul(self.bias.view(shape) - mean * scale, x, scale)
        return F.leaky_relu(y, _LEAK), log_std.flatten(1)


class _Discriminator(nn.Module):
    """Multi-scale conv net + MLP head returning one logit per case."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        n_vector: int,
        channels: Sequence[int],
        head_units: int,
    ) -> None:
        super().__init__()
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[spatial_dims]
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.stage_ends: list[int] = []  # index of the last layer of each resolution
        n_pooled = 0
        if in_channels > 0:
            n_pooled += 2 * in_channels  # input mean and log-std per channel
            prev = in_channels
            for s, ch in enumerate(channels):
                # stage 0 keeps full resolution; later stages halve it then refine
                specs = [(prev, ch, 1)] if s == 0 else [(prev, ch, 2), (ch, ch, 1)]
                for cin, cout, stride in specs:
                    self.convs.append(conv(cin, cout, 3, stride=stride, padding=1))
                    self.norms.append(_InstanceNormAct(cout))
                    n_pooled += cout  # log-std removed by the norm
                self.stage_ends.append(len(self.convs) - 1)
                n_pooled += ch  # global average of the stage output
                prev = ch
        n_in = n_pooled + n_vector
        # fixed standardisation of the head input, set from data before training
        self.register_buffer("feat_mean", torch.zeros(n_in))
        self.register_buffer("feat_std", torch.ones(n_in))
        self.head = nn.Sequential(
            nn.Linear(n_in, head_units),
            nn.LeakyReLU(_LEAK),
            nn.Linear(head_units, 1),
        )
        nn.init.normal_(self.head[-1].weight, std=1e-2)
        nn.init.zeros_(self.head[-1].bias)

    def features(self, img: torch.Tensor | None, vec: torch.Tensor | None) -> torch.Tensor:
        """Pooled multi-scale features and vector inputs, before standardisation."""
        feats = []
        if img is not None:
            dims = tuple(range(2, img.ndim))
            var, mean = torch.var_mean(img, dim=dims, correction=0)
            feats += [mean, 0.5 * torch.log(var + _EPS)]
            h = img
            ends = set(self.stage_ends)
            for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
                h, log_std = norm(conv(h))
                feats.append(log_std)
                if i in ends:
                    feats.append(h.mean(dim=dims))
        if vec is not None:
            feats.append(vec)
        return torch.cat(feats, dim=1)

    @torch.no_grad()
    def init_feature_scaling(self, feats: torch.Tensor) -> None:
        """Data-dependent initialisation: standardise each head input on a sample.

        Pooled statistics such as a log-scale differ between environments by
        fractions of a unit; standardising them lets a small head reach a confident
        logit within a few hundred steps.
        """
        self.feat_mean.copy_(feats.mean(0))
        self.feat_std.copy_(feats.std(0).clamp_min(1e-3) if len(feats) > 1 else 1.0)

    def forward(self, img: torch.Tensor | None, vec: torch.Tensor | None) -> torch.Tensor:
        feats = (self.features(img, vec) - self.feat_mean) / self.feat_std
        return self.head(feats).squeeze(1)


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def _torch_settings(num_threads: int | None) -> Iterator[None]:
    """Thread count and deterministic algorithms for the duration of a call, then restore."""
    det = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    with intra_op_threads(num_threads):
        try:
            torch.use_deterministic_algorithms(True, warn_only=True)
            yield
        finally:
            torch.use_deterministic_algorithms(det, warn_only=warn_only)


def _seed(random_state: Any) -> int:
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31 - 1))
    return int(check_random_state(random_state).randint(2**31 - 1))


def _balanced_bce(z: np.ndarray, y: np.ndarray) -> float:
    """Binary cross-entropy with both classes weighted equally (prior-free)."""
    loss = np.logaddexp(0.0, np.where(y == 1, -z, z))
    return float(0.5 * loss[y == 1].mean() + 0.5 * loss[y == 0].mean())


def _fit_temperature(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Fit ``T, b`` of ``z / T + b`` by class-balanced NLL with L-BFGS.

    A weak Gaussian prior on ``b`` and on ``log T`` *below zero* (sharpening) keeps
    the fit finite when the validation split is separable; softening (``T > 1``)
    is free, as it moves weights towards one.
    """
    z = np.asarray(z, dtype=float)
    sign = np.where(y == 1, 1.0, -1.0)
    n1, n0 = int((y == 1).sum()), int((y == 0).sum())
    w = np.where(y == 1, len(y) / (2.0 * n1), len(y) / (2.0 * n0))

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        log_t, b = theta
        inv_t = math.exp(-log_t)
        m = sign * (z * inv_t + b)
        loss = np.logaddexp(0.0, -m)
        dm = -w * sign * expit(-m)  # d loss / d (z / T + b), weighted
        sharp = min(log_t, 0.0)
        value = float(np.sum(w * loss) + 0.5 * sharp**2 + 0.5 * b**2)
        grad = np.array([float(np.sum(dm * z) * -inv_t) + sharp, float(np.sum(dm)) + b])
        return value, grad

    res = minimize(
        objective, np.zeros(2), jac=True, method="L-BFGS-B", bounds=[_LOG_T_BOUNDS, (None, None)]
    )
    return float(math.exp(res.x[0])), float(res.x[1])


# ---------------------------------------------------------------------------------------
# Estimator
# ---------------------------------------------------------------------------------------
class CNNDiscriminator(DensityRatioEstimator):
    """Density ratio of image (and covariate) nodes from a small CNN discriminator.

    Image-like nodes (cases of shape ``spatial`` or ``(channels, *spatial)``, all on
    the same grid) are stacked as input channels, in node-name order; scalar and
    vector nodes are standardised and fed to the head. The network is a small conv
    net (instance norm, LeakyReLU, strided downsampling) whose multi-scale features
    — the global average of every resolution's activations plus the per-channel
    log-scales the normalisation layers remove, so that a global intensity change
    stays visible — feed an MLP head that outputs one logit. Training uses balanced
    batches, a zero-centred gradient penalty on the logits w.r.t. the inputs (R1,
    in the spirit of Gulrajani et al. 2017), flip and intensity augmentation, AdamW
    and early stopping on a stratified held-out split whose best weights are kept.
    The held-out split then fits a temperature and bias (calibration), and
    predictions average the logits over test-time augmentations.

    Parameters
    ----------
    spatial_dims : {2, 3}, default 3
        Number of spatial axes of an image case. Cases it most likely misreads are
        refused, with the value to pass (:func:`~shiftattr.ratios.image_axes.check_image_axes`).
    channels : sequence of int, default (8, 16, 32)
        Feature channels per resolution; each entry after the first halves the
        resolution.
    epochs : int, default 40
        Maximum number of epochs (one epoch draws as many cases as the training split).
    batch_size : int, default 16
        Cases per batch (half source, half target when ``balanced``). Also bounds the
        number of volumes held in memory when loading lazily.
    lr : float, default 3e-3
        AdamW learning rate.
    weight_decay : float, default 1e-2
        AdamW (decoupled) weight decay.
    gradient_penalty : float, default 1.0
        Weight ``gamma`` of the penalty ``gamma / 2 * E ||d logit / d input||^2`` over
        both classes (images after standardisation and vector features); 0 turns it off.
    penalty_interval : int, default 4
        Compute the penalty every ``penalty_interval`` steps only, weighted by
        ``penalty_interval`` ("lazy regularisation", Karras et al. 2020): the double
        backward pass triples the cost of a step, the regulariser moves slowly.
    validation_fraction : float, default 0.2
        Fraction of each environment held out (stratified) for early stopping and
        temperature scaling; 0 trains for ``epochs`` epochs without calibration.
    patience : int, default 8
        Epochs without improvement of the held-out loss before stopping.
    tta : bool or int, default True
        Test-time augmentation: ``True`` averages the logits over ``2**len(flip_axes)``
        views (every flip combination, intensity factors spread over
        ``1 ± intensity_jitter``), an int sets the number of views, ``False`` (or 1)
        predicts on the original case only.
    temperature_scaling : bool, default True
        Fit ``log_ratio = logit / T + b`` on the held-out split.
    flip_axes : sequence of int, optional
        Spatial axes (0-based) along which training augmentation and TTA flip the
        images; ``None`` means all, ``()`` none. Flips assume the shift does not
        depend on orientation (true of scanner-type shifts); restrict them otherwise.
    intensity_jitter : float, default 0.05
        Half-width of the multiplicative intensity factor ``U(1 - j, 1 + j)`` of the
        augmentation; keep it well below the intensity shifts you want to detect.
    balanced : bool, default True
        Draw equal numbers of source and target cases per batch (no prior correction
        needed); ``False`` uses the natural frequencies and subtracts ``log(n_t/n_s)``.
    intensity_norm : {"global", "case"}, default "global"
        ``"global"`` standardises every channel with one mean and std computed over
        the training data, so that an intensity-scale shift stays detectable.
        ``"case"`` z-scores every case and channel on its own, which hides global
        intensity differences on purpose (to look at other shifts only).
    head_units : int, default 32
        Hidden units of the MLP head.
    downsample : "auto", int or sequence of int, default "auto"
        Average-pool the images by this factor per spatial axis before the network
        (after loading, before augmentation and standardisation). ``"auto"`` pools
        every axis longer than :data:`AUTO_GRID_SIZE` (48) voxels by the smallest
        factor that brings it to at most 48, and leaves smaller grids alone; 1 never
        pools. The cost of a step grows with the voxel count: a factor 2 on every
        axis makes training about 8 times faster (see the notes).
    device : str, default "cpu"
        Torch device.
    random_state : int, numpy Generator or RandomState, optional
        Seeds weight initialisation, the split, batch sampling and augmentation.
    progress : bool, default False
        Show a tqdm bar over epochs (the cross-fitting engine shows its own bar).
    num_threads : int, optional
        Torch CPU threads during ``fit`` / ``log_ratio`` (restored afterwards);
        default leaves torch's setting. Set 1 when folds run in parallel processes.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network (best held-out epoch), in eval mode.
    temperature_ : float
        Calibration temperature ``T`` (1.0 without calibration).
    calibration_bias_ : float
        Calibration bias ``b`` (0.0 without calibration).
    log_prior_correction_ : float
        Added to the raw logit before calibration: 0 with balanced batches, else
        ``-log(n_t / n_s)`` of the training split.
    history_ : dict of list of float
        Per epoch: ``train_loss`` (cross-entropy), ``train_penalty`` (mean squared
        gradient norm over the steps that computed it, else NaN), ``seconds``
        (wall time, validation included) and, with a held-out split, ``val_loss``
        (class-balanced cross-entropy, no TTA) and ``val_auc``.
    n_epochs_ : int
        Epochs run.
    best_epoch_ : int
        Epoch (1-based) whose weights were kept; 0 when no epoch beat the untrained
        network (whose logits are ~0) on the held-out split, i.e. no detectable shift.
    val_auc_ : float or None
        Held-out AUC of the kept weights with TTA (None without a held-out split).
    nodes_ : tuple of str
        Nodes seen in ``fit`` (sorted).
    channel_mean_, channel_std_ : numpy.ndarray
        Global intensity standardisation per input channel (training split).
    n_source_, n_target_ : int
        Cases given to ``fit`` per environment.
    downsample_ : tuple of int
        Pooling factor per spatial axis used (empty without image nodes).
    input_shape_ : tuple of int or None
        Spatial shape the network saw after pooling (None without image nodes).

    Notes
    -----
    *Prior correction.* With priors ``pi_t, pi_s`` the Bayes logit is
    ``log p_t(v) / p_s(v) + log(pi_t / pi_s)``. Balanced batches make the training
    prior 1/2 : 1/2, so the logit *is* the log density ratio and no
    ``log(n_t / n_s)`` is subtracted, whatever the environment sizes. With
    ``balanced=False`` the natural frequencies are the prior and
    ``log(n_t / n_s)`` of the training split is subtracted
    (:attr:`log_prior_correction_`). The held-out loss and the temperature fit weight
    both classes equally, so they target the same prior-free quantity.

    *Temperature.* ``T`` and ``b`` minimise the class-balanced cross-entropy of
    ``logit / T + b`` on the held-out split (L-BFGS), with a weak Gaussian prior on
    ``b`` and on ``log T < 0`` so that a separable held-out split cannot send ``T``
    to 0 (``T`` is kept in [0.05, 100]). The same split chose the epoch, which makes
    the calibration slightly optimistic; with tiny splits expect ``T`` to be noisy.
    A constant added to every log-ratio (such as ``b``) cancels in self-normalised
    importance weights; ``T`` does not.

    *Why average logits over TTA views, not probabilities?* The target quantity is a
    log-ratio. If each view's logit is the log-ratio plus noise, their mean is an
    unbiased, lower-variance estimate of it, while the mean of sigmoids is shrunk
    towards 1/2 (Jensen), dominated by saturated views, and would need clipping to be
    turned back into a logit. Temperature and bias are fitted on the TTA-averaged
    held-out logits, i.e. on exactly what :meth:`log_ratio` returns. Training uses
    the same flips and intensity factors as augmentation, so the views are inputs
    the network has seen; the estimate is then the ratio of the flip-symmetrised
    densities, which equals the ratio itself when the shift does not depend on
    orientation (restrict ``flip_axes`` otherwise).

    *Intensities.* By default volumes are standardised with one mean/std per channel
    computed over the training data, not per volume: a per-volume z-score would
    remove an intensity-scale shift, which is what the discriminator must see. For
    the same reason the head receives the log-scales that the instance
    normalisation layers divide out.

    *Gradient penalty.* The squared gradient norm sums over voxels, so for a global
    feature (mean intensity, noise level) it shrinks as volumes grow, while a
    dependence on a few voxels (memorising cases) is penalised at any size. On very
    small images (toy examples) a lower ``gradient_penalty`` may be needed.

    *Resolution.* On one CPU core an epoch costs about 0.08 s per case at 32³,
    0.6 s (2.2 GB) at 64³ and 5 s (12 GB) at 128×128×96 without pooling
    (``benchmarks/bench_volume_scaling.py``): a fit of a few hundred cases for tens of
    epochs is minutes at 32³ and hours at 128×128×96. Hence ``downsample="auto"``,
    which trains at most 48 voxels per axis (0.2 s per case and 0.9 GB at
    128×128×96). Averaging keeps
    the shifts a scanner makes at the scale of the pooled voxel (intensity scale and
    contrast, bias field, a noise level, which pooling divides by the same factor in
    both environments) and weakens those below it (a blur or sharpening of one or
    two voxels): pass ``downsample=1`` when such a shift is the one to detect and
    the time is there.

    *Memory and speed.* Lazy inputs are read ``batch_size`` cases at a time. During
    ``fit`` the network inputs of lazy or pooled images are kept in memory when all of
    them fit in 1 GB (``INPUT_CACHE_BYTES``), so each case is read once; otherwise
    (full-resolution in-memory arrays, or too many cases) every epoch reads them
    again. Prediction runs under ``torch.no_grad`` in batches of ``batch_size``. On
    small volumes or a busy machine ``num_threads=1`` is often faster than several
    threads.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> source = {"x": rng.normal(size=(24, 8, 8))}
    >>> target = {"x": 2.0 * rng.normal(size=(24, 8, 8))}
    >>> est = CNNDiscriminator(
    ...     spatial_dims=2, channels=(4, 8), epochs=2, random_state=0, num_threads=1
    ... )
    >>> est = est.fit(source, target)
    >>> est.log_ratio(target).shape
    (24,)
    >>> est.n_epochs_
    2
    """

    handles_images = True

    #: Refitting it per bootstrap replicate retrains a network: ``bootstrap="auto"``
    #: holds it fixed (:func:`~shiftattr.bootstrap.resolve_bootstrap`).
    trains_network = True

    def __init__(
        self,
        spatial_dims: int = 3,
        channels: Sequence[int] = (8, 16, 32),
        epochs: int = 40,
        batch_size: int = 16,
        lr: float = 3e-3,
        weight_decay: float = 1e-2,
        gradient_penalty: float = 1.0,
        penalty_interval: int = 4,
        validation_fraction: float = 0.2,
        patience: int = 8,
        tta: bool | int = True,
        temperature_scaling: bool = True,
        flip_axes: Sequence[int] | None = None,
        intensity_jitter: float = 0.05,
        balanced: bool = True,
        intensity_norm: str = "global",
        head_units: int = 32,
        downsample: str | int | Sequence[int] = "auto",
        device: str = "cpu",
        random_state: int | np.random.Generator | np.random.RandomState | None = None,
        progress: bool = False,
        num_threads: int | None = None,
    ) -> None:
        self.spatial_dims = spatial_dims
        self.channels = channels
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.gradient_penalty = gradient_penalty
        self.penalty_interval = penalty_interval
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.tta = tta
        self.temperature_scaling = temperature_scaling
        self.flip_axes = flip_axes
        self.intensity_jitter = intensity_jitter
        self.balanced = balanced
        self.intensity_norm = intensity_norm
        self.head_units = head_units
        self.downsample = downsample
        self.device = device
        self.random_state = random_state
        self.progress = progress
        self.num_threads = num_threads

    # -- validation ---------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {self.spatial_dims!r}.")
        chans = tuple(self.channels)
        if not chans or any(int(c) != c or c < 1 for c in chans):
            raise ValueError(f"channels must be positive integers, got {self.channels!r}.")
        for name in ("epochs", "patience", "head_units", "penalty_interval"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}.")
        if int(self.batch_size) < 2:
            raise ValueError(f"batch_size must be at least 2, got {self.batch_size!r}.")
        if not 0.0 <= float(self.validation_fraction) < 1.0:
            raise ValueError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}."
            )
        if self.intensity_norm not in ("global", "case"):
            raise ValueError(
                f"intensity_norm must be 'global' or 'case', got {self.intensity_norm!r}."
            )
        if float(self.gradient_penalty) < 0:
            raise ValueError(f"gradient_penalty must be >= 0, got {self.gradient_penalty!r}.")
        if not 0 <= float(self.intensity_jitter) < 1:
            raise ValueError(f"intensity_jitter must be in [0, 1), got {self.intensity_jitter!r}.")
        if not isinstance(self.tta, (bool, np.bool_)) and int(self.tta) < 0:
            raise ValueError(f"tta must be a bool or a non-negative int, got {self.tta!r}.")
        self._downsample_factors((AUTO_GRID_SIZE,) * int(self.spatial_dims))
        for ax in self._flip_axes():
            if not 0 <= ax < self.spatial_dims:
                raise ValueError(
                    f"flip_axes entries must be spatial axes in [0, {self.spatial_dims}), "
                    f"got {self.flip_axes!r}."
                )

    def _downsample_factors(self, spatial_shape: tuple[int, ...] | None) -> tuple[int, ...]:
        """The pooling factor per spatial axis of images on ``spatial_shape``."""
        if spatial_shape is None:
            return ()
        d = self.downsample
        if isinstance(d, str):
            if d != "auto":
                raise ValueError(
                    f"downsample must be 'auto', a positive int or one per spatial axis, got {d!r}."
                )
            return tuple(max(1, -(-int(s) // AUTO_GRID_SIZE)) for s in spatial_shape)
        factors = (d,) * len(spatial_shape) if np.ndim(d) == 0 else tuple(d)
        if len(factors) != len(spatial_shape) or any(
            isinstance(f, (bool, np.bool_)) or int(f) != f or f < 1 for f in factors
        ):
            raise ValueError(
                f"downsample must be 'auto', a positive int or {len(spatial_shape)} positive "
                f"ints (one per spatial axis), got {d!r}."
            )
        return tuple(int(f) for f in factors)

    def _load(
        self, layout: _Layout, columns: Mapping[str, Any], idx: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """A batch as :func:`_load` reads it, images pooled to :attr:`input_shape_`;
        during ``fit``, cases read before come from the input cache."""
        cache = getattr(self, "_inputs", None)
        # a discriminator fitted before pooling existed has no input_shape_: its grid
        size = getattr(self, "input_shape_", None) or layout.spatial_shape
        if cache is None:
            img, vec = _load(layout, columns, idx, self.spatial_dims)
            return (None if img is None else _pool(img, size)), vec
        side = cache.setdefault(id(columns), {})
        missing = np.array([i for i in idx if int(i) not in side], dtype=int)
        if len(missing):
            img, vec = _load(layout, columns, missing, self.spatial_dims)
            img = None if img is None else _pool(img, size)
            for k, i in enumerate(missing):
                side[int(i)] = (
                    None if img is None else img[k].copy(),
                    None if vec is None else vec[k].copy(),
                )
        rows = [side[int(i)] for i in idx]
        img = None if rows[0][0] is None else np.stack([r[0] for r in rows])
        vec = None if rows[0][1] is None else np.stack([r[1] for r in rows])
        return img, vec

    def _caches_inputs(self, layout: _Layout, columns: Sequence[Mapping[str, Any]]) -> bool:
        """Whether ``fit`` keeps the network inputs: images pooled or read lazily (read
        again every epoch otherwise), and every case's input within
        :data:`INPUT_CACHE_BYTES`."""
        if not layout.image_nodes:
            return False
        lazy = any(
            not isinstance(cols[node], np.ndarray)
            for cols in columns
            for node, _ in layout.image_nodes
        )
        if not lazy and all(f == 1 for f in self.downsample_):
            return False
        per_case = 4 * (layout.n_channels * math.prod(self.input_shape_) + layout.n_vector)
        n = sum(n_cases(dict(cols)) for cols in columns)
        return per_case * n <= INPUT_CACHE_BYTES

    def warm_cache(self, features: Features, progress: bool = False) -> None:
        """Check every case of one environment before any fold trains.

        Nothing is cached: the inputs are kept during each fit only. The shapes of lazy
        cases known from their headers (:attr:`~shiftattr.LazyVolumes.item_shapes`)
        must share one grid, so that a case on another grid is named, by its position
        in the environment, before the first fold trains rather than when the fold
        holding it reaches it.

        Parameters
        ----------
        features : mapping of str to array-like
            All the cases of one environment.
        progress : bool, default False
            Unused (nothing is read).

        Examples
        --------
        >>> from shiftattr import LazyVolumes
        >>> odd = LazyVolumes(np.zeros, length=3, item_shapes=[(8, 8), (8, 8), (7, 8)])
        >>> CNNDiscriminator(spatial_dims=2).warm_cache({"x": odd})
        Traceback (most recent call last):
        ...
        ValueError: node 'x': case 2 has shape (7, 8), not (8, 8) like the others ...
        """
        _layout(features, int(self.spatial_dims))

    def _flip_axes(self) -> tuple[int, ...]:
        if self.flip_axes is None:
            return tuple(range(int(self.spatial_dims)))
        return tuple(int(a) for a in self.flip_axes)

    def _n_views(self) -> int:
        if not self._flip_axes() and float(self.intensity_jitter) == 0:
            return 1  # nothing to vary: every view would be the original case
        if isinstance(self.tta, (bool, np.bool_)):
            if not self.tta:
                return 1
            n = 2 ** len(self._flip_axes())
            return max(n, 2 if self.intensity_jitter > 0 else 1)
        return max(int(self.tta), 1)

    # -- tensors --------------------------------------------------------------------------
    def _to_tensors(
        self, img: np.ndarray | None, vec: np.ndarray | None, device: torch.device
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        ti = tv = None
        if img is not None:
            ti = torch.from_numpy(img).to(device)
        if vec is not None:
            tv = (torch.from_numpy(vec).to(device) - self._vec_mean) / self._vec_std
        return ti, tv

    def _standardise(self, img: torch.Tensor) -> torch.Tensor:
        if self.intensity_norm == "case":
            dims = tuple(range(2, img.ndim))
            var, mean = torch.var_mean(img, dim=dims, keepdim=True, correction=0)
            return (img - mean) / torch.sqrt(var + _EPS)
        return (img - self._img_mean) / self._img_std

    def _augment(self, img: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Random flips and intensity factor per case (on raw intensities)."""
        b = img.shape[0]
        bshape = (b,) + (1,) * (img.ndim - 1)
        for ax in self._flip_axes():
            mask = (torch.rand(b, generator=gen) < 0.5).to(img.device).view(bshape)
            img = torch.where(mask, img.flip(2 + ax), img)
        j = float(self.intensity_jitter)
        if j > 0:
            f = 1.0 + j * (2.0 * torch.rand(b, generator=gen) - 1.0)
            img = img * f.to(img.device).view(bshape)
        return img

    def _views(self) -> list[tuple[tuple[int, ...], float]]:
        """Deterministic TTA views: (flip axes, intensity factor)."""
        n = self._n_views()
        axes = self._flip_axes()
        j = float(self.intensity_jitter)
        factors = np.linspace(-j, j, n) + 1.0 if n > 1 else np.ones(1)
        views = []
        for k in range(n):
            combo = k % (2 ** len(axes))
            flips = tuple(2 + a for i, a in enumerate(axes) if combo >> i & 1)
            views.append((flips, float(factors[k])))
        return views

    def _logits(
        self,
        layout: _Layout,
        columns: Mapping[str, Any],
        indices: np.ndarray,
        views: list[tuple[tuple[int, ...], float]],
    ) -> np.ndarray:
        """Raw network logits averaged over ``views``, in batches, without gradients."""
        device = torch.device(self.device)
        self.module_.eval()
        out = np.empty(len(indices))
        with torch.no_grad():
            for chunk in _chunks(len(indices), int(self.batch_size)):
                img, vec = self._load(layout, columns, indices[chunk])
                ti, tv = self._to_tensors(img, vec, device)
                acc = torch.zeros(len(chunk), dtype=torch.float64, device=device)
                for flips, factor in views if ti is not None else views[:1]:
                    x = None
                    if ti is not None:
                        x = ti.flip(flips) if flips else ti
                        x = self._standardise(x * factor)
                    acc += self.module_(x, tv).double()
                n_used = len(views) if ti is not None else 1
                out[chunk] = (acc / n_used).cpu().numpy()
        return out

    # -- fit ------------------------------------------------------------------------------
    def fit(self, source_features: Features, target_features: Features) -> CNNDiscriminator:
        """Train the discriminator on source (label 0) and target (label 1) cases.

        Parameters
        ----------
        source_features, target_features : mapping of str to array-like
            The same nodes in both; numpy arrays or :class:`~shiftattr.LazyVolumes`
            (read batch by batch, never all at once).

        Returns
        -------
        self : CNNDiscriminator

        Examples
        --------
        An image node and a scalar covariate (fed to the head):

        >>> rng = np.random.default_rng(1)
        >>> src = {"img": rng.normal(size=(16, 8, 8)), "age": rng.normal(60, 9, 16)}
        >>> tgt = {"img": rng.normal(size=(16, 8, 8)), "age": rng.normal(70, 9, 16)}
        >>> est = CNNDiscriminator(spatial_dims=2, channels=(4,), epochs=1, num_threads=1)
        >>> est.fit(src, tgt).nodes_
        ('age', 'img')
        """
        self._check_params()
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("__")]:
            delattr(self, attr)  # a failed refit must not look fitted
        sd = int(self.spatial_dims)
        lay_s, col_s = _layout(source_features, sd)
        lay_t, col_t = _layout(target_features, sd)
        if lay_s.nodes != lay_t.nodes:
            raise ValueError(
                f"source and target features hold different nodes: {list(lay_s.nodes)} vs "
                f"{list(lay_t.nodes)}."
            )
        if lay_s != lay_t:
            shapes_s = dict(lay_s.image_nodes + lay_s.vector_nodes)
            shapes_t = dict(lay_t.image_nodes + lay_t.vector_nodes)
            diff = {n: (shapes_s[n], shapes_t[n]) for n in shapes_s if shapes_s[n] != shapes_t[n]}
            raise ValueError(
                f"source and target cases differ in shape (source, target): {diff}; put both "
                "environments on the same grid."
            )
        layout = lay_s
        columns = (col_s, col_t)
        n = (n_cases(source_features), n_cases(target_features))

        seed = _seed(self.random_state)
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(seed)
        device = torch.device(self.device)

        # stratified held-out split
        frac = float(self.validation_fraction)
        train, val = [], []
        for c in (0, 1):
            perm = rng.permutation(n[c])
            n_val = 0
            if frac > 0:
                if n[c] < 2:
                    raise ValueError(
                        f"{('source', 'target')[c]} has {n[c]} case(s); a held-out split needs at "
                        "least 2 per environment (or set validation_fraction=0)."
                    )
                n_val = int(np.clip(round(frac * n[c]), 1, n[c] - 1))
            val.append(np.sort(perm[:n_val]))
            train.append(np.sort(perm[n_val:]))
        has_val = frac > 0
        if not has_val and self.temperature_scaling:
            warnings.warn(
                "validation_fraction=0: no held-out split, so no early stopping and no "
                "temperature scaling (temperature_=1).",
                UserWarning,
                stacklevel=2,
            )

        self.downsample_ = self._downsample_factors(layout.spatial_shape)
        self.input_shape_ = (
            None
            if layout.spatial_shape is None
            else _pooled_shape(layout.spatial_shape, self.downsample_)
        )
        with self._keeping_inputs(layout, columns), _torch_settings(self.num_threads):
            self._fit_standardisation(layout, columns, train, device)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.module_ = _Discriminator(
                    sd,
                    layout.n_channels,
                    layout.n_vector,
                    tuple(int(c) for c in self.channels),
                    int(self.head_units),
                ).to(device)
            self._layout_ = layout
            self.log_prior_correction_ = (
                0.0 if self.balanced else -math.log(len(train[1]) / len(train[0]))
            )
            # the untrained network is "no shift": with unbalanced batches its logits
            # start at the class prior, so that the corrected log-ratio starts at 0 (it
            # started at the correction, a baseline any epoch learning the prior beat)
            with torch.no_grad():
                self.module_.head[-1].bias.fill_(-self.log_prior_correction_)
            self._train(layout, columns, train, val, rng, gen, device)

            self.temperature_, self.calibration_bias_ = 1.0, 0.0
            self.val_auc_ = None
            if has_val:
                z, y = self._split_logits(layout, columns, val, self._views())
                z = z + self.log_prior_correction_
                self.val_auc_ = float(roc_auc_score(y, z))
                if self.temperature_scaling:
                    self.temperature_, self.calibration_bias_ = _fit_temperature(z, y)
        self.nodes_ = layout.nodes
        self.n_source_, self.n_target_ = n
        return self

    @contextlib.contextmanager
    def _keeping_inputs(
        self, layout: _Layout, columns: tuple[Mapping[str, Any], Mapping[str, Any]]
    ) -> Iterator[None]:
        """The input cache of one fit (see :meth:`_caches_inputs`), dropped after it."""
        self._inputs = {} if self._caches_inputs(layout, columns) else None
        try:
            yield
        finally:
            self._inputs = None

    def _fit_standardisation(
        self,
        layout: _Layout,
        columns: tuple[Mapping[str, Any], Mapping[str, Any]],
        train: list[np.ndarray],
        device: torch.device,
    ) -> None:
        """Per-channel mean/std of images and per-feature mean/std of vectors (training split)."""
        c, f = layout.n_channels, layout.n_vector
        s1, s2, cnt = np.zeros(c), np.zeros(c), 0
        v1, v2, vcnt = np.zeros(f), np.zeros(f), 0
        for cls in (0, 1):
            for chunk in _chunks(len(train[cls]), int(self.batch_size)):
                img, vec = self._load(layout, columns[cls], train[cls][chunk])
                if img is not None:
                    flat = img.astype(np.float64).swapaxes(0, 1).reshape(c, -1)
                    s1 += flat.sum(1)
                    s2 += (flat**2).sum(1)
                    cnt += flat.shape[1]
                if vec is not None:
                    v1 += vec.sum(0, dtype=np.float64)
                    v2 += (vec.astype(np.float64) ** 2).sum(0)
                    vcnt += len(vec)

        def finish(a: np.ndarray, b: np.ndarray, k: int, ndim: int) -> tuple:
            if a.size == 0:
                return None, None
            mean = a / k
            std = np.sqrt(np.maximum(b / k - mean**2, 0.0))
            std = np.where(std > 1e-8 * np.maximum(1.0, np.abs(mean)), std, 1.0)
            shape = (1, -1) + (1,) * ndim
            as_t = lambda x: torch.tensor(x, dtype=torch.float32, device=device).view(shape)  # noqa: E731
            return as_t(mean), as_t(std)

        self._img_mean, self._img_std = finish(s1, s2, cnt, self.spatial_dims)
        self._vec_mean, self._vec_std = finish(v1, v2, vcnt, 0)
        self.channel_mean_ = (s1 / cnt) if c else np.zeros(0)
        self.channel_std_ = (
            self._img_std.flatten().cpu().numpy().astype(float) if c else np.zeros(0)
        )

    def _split_logits(
        self,
        layout: _Layout,
        columns: tuple[Mapping[str, Any], Mapping[str, Any]],
        split: list[np.ndarray],
        views: list[tuple[tuple[int, ...], float]],
    ) -> tuple[np.ndarray, np.ndarray]:
        z = [self._logits(layout, columns[c], split[c], views) for c in (0, 1)]
        y = np.r_[np.zeros(len(z[0])), np.ones(len(z[1]))]
        return np.concatenate(z), y

    def _init_feature_scaling(
        self,
        layout: _Layout,
        columns: tuple[Mapping[str, Any], Mapping[str, Any]],
        train: list[np.ndarray],
        rng: np.random.Generator,
        device: torch.device,
    ) -> None:
        """Standardise the head inputs on up to ``4 * batch_size`` training cases."""
        bs = int(self.batch_size)
        feats = []
        model = self.module_
        model.eval()
        with torch.no_grad():
            for c in (0, 1):
                sample = np.sort(rng.permutation(train[c])[: 2 * bs])
                for chunk in _chunks(len(sample), bs):
                    img, vec = self._load(layout, columns[c], sample[chunk])
                    ti, tv = self._to_tensors(img, vec, device)
                    feats.append(model.features(None if ti is None else self._standardise(ti), tv))
        model.init_feature_scaling(torch.cat(feats))

    def _batches(
        self, train: list[np.ndarray], streams: list[_Stream], rng: np.random.Generator
    ) -> Iterator[list[tuple[int, np.ndarray]]]:
        """One epoch of batches as ``[(class, indices), ...]``.

        An epoch draws as many cases as the training split holds. Balanced: every
        batch takes ``batch_size // 2`` cases of each class from its own endless
        shuffled stream (the smaller class is revisited, the larger one subsampled
        per epoch). Unbalanced: one shuffled pass with the natural class frequencies.
        """
        bs = int(self.batch_size)
        n_train = len(train[0]) + len(train[1])
        steps = max(1, math.ceil(n_train / bs))
        if self.balanced:
            for _ in range(steps):
                yield [(c, streams[c].next(bs // 2)) for c in (0, 1)]
            return
        labels = np.r_[np.zeros(len(train[0]), int), np.ones(len(train[1]), int)]
        flat = np.r_[train[0], train[1]]
        order = rng.permutation(n_train)
        for step in range(steps):
            sel = order[step * bs : (step + 1) * bs]
            yield [(c, flat[sel][labels[sel] == c]) for c in (0, 1) if (labels[sel] == c).any()]

    def _step(
        self,
        layout: _Layout,
        columns: tuple[Mapping[str, Any], Mapping[str, Any]],
        parts: list[tuple[int, np.ndarray]],
        opt: torch.optim.Optimizer,
        gen: torch.Generator,
        device: torch.device,
        gp: float,
    ) -> tuple[float, float]:
        """One optimisation step with penalty weight ``gp``; returns (cross-entropy, penalty)."""
        loaded = [self._load(layout, columns[c], idx) for c, idx in parts]
        img = None if layout.n_channels == 0 else np.concatenate([a for a, _ in loaded])
        vec = None if layout.n_vector == 0 else np.concatenate([v for _, v in loaded])
        y = torch.from_numpy(np.concatenate([np.full(len(i), c, np.float32) for c, i in parts]))
        ti, tv = self._to_tensors(img, vec, device)
        inputs = []
        if ti is not None:
            ti = self._standardise(self._augment(ti, gen)).requires_grad_(gp > 0)
            inputs.append(ti)
        if tv is not None:
            inputs.append(tv.requires_grad_(gp > 0))
        logits = self.module_(ti, tv)
        loss = F.binary_cross_entropy_with_logits(logits, y.to(device))
        penalty = torch.zeros((), device=device)
        if gp > 0:
            # R1-style, zero-centred: E ||d logit / d input||^2 over both classes; cases
            # are independent (no batch norm), so d sum(logits) gives per-case gradients.
            grads = torch.autograd.grad(logits.sum(), inputs, create_graph=True)
            penalty = torch.stack([g.pow(2).flatten(1).sum(1) for g in grads]).sum(0).mean()
        opt.zero_grad(set_to_none=True)
        (loss + 0.5 * gp * penalty).backward()
        opt.step()
        return float(loss.detach()), (float(penalty.detach()) if gp > 0 else math.nan)

    def _train(
        self,
        layout: _Layout,
        columns: tuple[Mapping[str, Any], Mapping[str, Any]],
        train: list[np.ndarray],
        val: list[np.ndarray],
        rng: np.random.Generator,
        gen: torch.Generator,
        device: torch.device,
    ) -> None:
        """Train with early stopping on ``val`` (if any); keep the best weights."""
        model = self.module_
        self._init_feature_scaling(layout, columns, train, rng, device)
        opt = torch.optim.AdamW(
            model.parameters(), lr=float(self.lr), weight_decay=float(self.weight_decay)
        )
        streams = [_Stream(train[c], rng) for c in (0, 1)]
        interval = int(self.penalty_interval)
        gp = float(self.gradient_penalty) * interval
        step = 0
        has_val = len(val[0]) > 0
        keys = ("train_loss", "train_penalty", "val_loss", "val_auc", "seconds")
        history: dict[str, list[float]] = {k: [] for k in keys}
        best_loss, best_epoch, best_state = math.inf, 0, None
        if has_val:
            # the untrained network (logits ~ 0: "no shift") is a candidate too, so
            # that an epoch must beat it on held-out data to be kept
            z, y = self._split_logits(layout, columns, val, [((), 1.0)])
            best_loss = _balanced_bce(z + self.log_prior_correction_, y)
            best_state = copy.deepcopy(model.state_dict())
        wait = 0
        bar = tqdm(
            range(1, int(self.epochs) + 1),
            desc=type(self).__name__,
            unit="epoch",
            disable=not self.progress,
            leave=False,
        )
        for epoch in bar:
            tic = time.perf_counter()
            model.train()
            losses = []
            for parts in self._batches(train, streams, rng):
                penalise = step % interval == 0
                losses.append(
                    self._step(layout, columns, parts, opt, gen, device, gp if penalise else 0.0)
                )
                step += 1
            pens = [b for _, b in losses if not math.isnan(b)]
            history["train_loss"].append(float(np.mean([a for a, _ in losses])))
            history["train_penalty"].append(float(np.mean(pens)) if pens else math.nan)
            if not has_val:
                best_epoch = epoch
                history["seconds"].append(time.perf_counter() - tic)
                continue
            z, y = self._split_logits(layout, columns, val, [((), 1.0)])
            z = z + self.log_prior_correction_
            history["val_loss"].append(_balanced_bce(z, y))
            history["val_auc"].append(float(roc_auc_score(y, z)))
            history["seconds"].append(time.perf_counter() - tic)
            bar.set_postfix(
                train=f"{history['train_loss'][-1]:.3f}",
                val=f"{history['val_loss'][-1]:.3f}",
                auc=f"{history['val_auc'][-1]:.3f}",
            )
            if history["val_loss"][-1] < best_loss - 1e-4:
                best_loss, best_epoch = history["val_loss"][-1], epoch
                best_state = copy.deepcopy(model.state_dict())
                wait = 0
            else:
                wait += 1
                if wait >= int(self.patience):
                    break
        bar.close()
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        if not has_val:
            del history["val_loss"], history["val_auc"]
        self.history_ = history
        self.n_epochs_ = len(history["train_loss"])
        self.best_epoch_ = best_epoch

    # -- predict --------------------------------------------------------------------------
    def fit_report(self) -> dict[str, Any]:
        """The training of the last fit: epochs run, the epoch kept (0: the untrained
        network, i.e. no shift detected on the held-out split), its held-out AUC, the
        calibration temperature and the grid the network saw (after ``downsample``).

        Returns
        -------
        dict
            ``{"n_epochs", "best_epoch", "val_auc", "temperature", "input_shape"}``
            (``input_shape`` a list of int, or None without image nodes).

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> src = {"X": rng.normal(0, 1, (24, 8, 8)).astype("float32")}
        >>> tgt = {"X": rng.normal(0, 2, (24, 8, 8)).astype("float32")}
        >>> est = CNNDiscriminator(spatial_dims=2, channels=(4,), epochs=2, random_state=0)
        >>> sorted(est.fit(src, tgt).fit_report())
        ['best_epoch', 'input_shape', 'n_epochs', 'temperature', 'val_auc']
        """
        return {
            "n_epochs": int(self.n_epochs_),
            "best_epoch": int(self.best_epoch_),
            "val_auc": self.val_auc_,
            "temperature": float(self.temperature_),
            "input_shape": (
                None if getattr(self, "input_shape_", None) is None else list(self.input_shape_)
            ),
        }

    def log_ratio(self, features: Features) -> np.ndarray:
        """Calibrated ``log p_target / p_source`` at each case.

        ``(logit + log_prior_correction_) / temperature_ + calibration_bias_``, with
        the logit averaged over the test-time augmentation views.

        Parameters
        ----------
        features : mapping of str to array-like
            The nodes given to :meth:`fit`, with the same case shapes.

        Returns
        -------
        numpy.ndarray of shape (n_cases,)

        Examples
        --------
        >>> rng = np.random.default_rng(2)
        >>> src, tgt = {"x": rng.normal(size=(16, 8, 8))}, {"x": rng.normal(size=(16, 8, 8))}
        >>> est = CNNDiscriminator(spatial_dims=2, channels=(4,), epochs=1, num_threads=1)
        >>> lr = est.fit(src, tgt).log_ratio({"x": rng.normal(size=(5, 8, 8))})
        >>> lr.shape, lr.dtype
        ((5,), dtype('float64'))
        """
        check_fitted(self, "module_")
        layout, columns = _layout(features, int(self.spatial_dims))
        if layout.nodes != self.nodes_:
            raise ValueError(
                f"log_ratio got nodes {list(layout.nodes)} but the discriminator was fitted on "
                f"{list(self.nodes_)}; pass the same nodes."
            )
        if layout != self._layout_:
            fitted = dict(self._layout_.image_nodes + self._layout_.vector_nodes)
            now = dict(layout.image_nodes + layout.vector_nodes)
            diff = {k: (fitted[k], now[k]) for k in fitted if fitted[k] != now[k]}
            raise ValueError(
                f"case shapes differ from fit (fit, now): {diff}. The CNN discriminator needs "
                "one grid for every case of both environments: resample them to a common "
                "grid, or use ImageStatsRatio, which summarises each grid."
            )
        with _torch_settings(self.num_threads):
            z = self._logits(layout, columns, np.arange(n_cases(features)), self._views())
        return (z + self.log_prior_correction_) / self.temperature_ + self.calibration_bias_
