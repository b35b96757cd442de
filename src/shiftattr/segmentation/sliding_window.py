"""Patch-wise (sliding-window) inference for volumes larger than a network's patch.

The window grid and the Gaussian importance map follow nnU-Net: windows step by
``(1 - overlap) * patch_size`` voxels at most, the grid is spread evenly so the last
window ends exactly at the border, and every window's output is weighted by a
Gaussian centred on the patch (``sigma = sigma_scale * patch_size``, peak 1; at voxel
``p // 2``, as nnU-Net places it, so for an even patch size it sits half a voxel past
the middle) before the weighted outputs are averaged. Images smaller than the patch
are padded (symmetrically, with ``pad_value``) and the output is cropped back.

MONAI's ``sliding_window_inference`` steps by ``int(patch_size * (1 - overlap))``
and clamps the last window instead, and centres its Gaussian at ``(p - 1) / 2``: the
two agree exactly only where their grids coincide (constant blending, or an odd patch
covering the volume), and otherwise differ where windows overlap.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["gaussian_importance_map", "sliding_window_inference", "window_starts"]

ArrayLike = Any


def window_starts(image_size: int, patch_size: int, overlap: float) -> list[int]:
    """Start offsets of the windows along one axis (nnU-Net's rule).

    The number of windows is the smallest that keeps the step at most
    ``(1 - overlap) * patch_size``; the windows are then spread evenly so that the
    first starts at 0 and the last ends at ``image_size``.

    Parameters
    ----------
    image_size : int
        Length of the (padded) axis, at least ``patch_size``.
    patch_size : int
        Window length along the axis.
    overlap : float
        Fraction of overlap between neighbouring windows, in ``[0, 1)``.

    Returns
    -------
    list of int
        Window start offsets, increasing, first 0, last ``image_size - patch_size``.

    Examples
    --------
    >>> window_starts(110, 64, 0.5)
    [0, 23, 46]
    >>> window_starts(64, 64, 0.5)
    [0]
    """
    if image_size < patch_size:
        raise ValueError(f"image size {image_size} is smaller than the patch size {patch_size}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    target_step = max(patch_size * (1.0 - overlap), 1.0)
    n_steps = math.ceil((image_size - patch_size) / target_step) + 1
    if n_steps == 1:
        return [0]
    step = (image_size - patch_size) / (n_steps - 1)
    return [round(step * i) for i in range(n_steps)]


def gaussian_importance_map(
    patch_size: Sequence[int],
    sigma_scale: float = 0.125,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Gaussian weights over a patch, peak 1 at the centre, strictly positive.

    Parameters
    ----------
    patch_size : sequence of int
        Patch shape.
    sigma_scale : float, default 0.125
        Standard deviation as a fraction of the patch size along each axis
        (nnU-Net and MONAI use 1/8).
    dtype : torch.dtype, default torch.float32
        Dtype of the weights.
    device : torch device, optional
        Device of the weights.

    Returns
    -------
    torch.Tensor
        Shape ``patch_size``.

    Examples
    --------
    >>> w = gaussian_importance_map((8, 8))
    >>> float(w[4, 4]), bool((w > 0).all()), float(w[0, 0]) < 0.01
    (1.0, True, True)
    """
    if sigma_scale <= 0:
        raise ValueError(f"sigma_scale must be positive, got {sigma_scale}")
    weights = torch.ones((), dtype=torch.float64)
    for p in patch_size:
        coords = torch.arange(int(p), dtype=torch.float64) - (int(p) // 2)
        sigma = max(float(p) * sigma_scale, 1e-6)
        g = torch.exp(-0.5 * (coords / sigma) ** 2)
        weights = weights.unsqueeze(-1) * g
    weights = weights / weights.max()
    weights = weights.to(dtype)
    # zeros would give 0/0 in regions covered only by patch borders
    tiny = weights[weights > 0].min()
    weights = torch.clamp(weights, min=float(tiny))
    return weights.to(device) if device is not None else weights


def _output_tensor(out: Any) -> torch.Tensor:
    """A model's output as one tensor: deep-supervision lists and tuples give their first
    (full-resolution) head, a dict its ``"out"`` entry (torchvision's segmentation models)
    or its only entry; arrays are converted. Anything else is an error naming its type."""
    if isinstance(out, (list, tuple)):
        if not out:
            raise TypeError("the model returned an empty list; it must return logits.")
        out = out[0]
    elif isinstance(out, dict):
        if "out" in out:
            out = out["out"]
        elif len(out) == 1:
            out = next(iter(out.values()))
        else:
            raise TypeError(
                f"the model returned a dict with keys {sorted(map(str, out))}; wrap it so it "
                "returns the segmentation logits as one tensor (N, C, *spatial), e.g. "
                "SegmentationAdapter(lambda x: model(x)['<key>'])."
            )
    if isinstance(out, torch.Tensor):
        return out
    try:
        return torch.as_tensor(np.asarray(out))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(
            f"the model returned a {type(out).__name__}, not a tensor of logits or "
            f"probabilities (N, C, *spatial) that could be read: {exc}"
        ) from None


def _resolve_patch(patch_size: Sequence[int | None], spatial: Sequence[int]) -> tuple[int, ...]:
    out = []
    for p, s in zip(patch_size, spatial):
        out.append(int(s) if p is None or int(p) <= 0 else int(p))
    return tuple(out)


def sliding_window_inference(
    predictor: Callable[[torch.Tensor], Any],
    image: ArrayLike,
    patch_size: Sequence[int | None],
    overlap: float = 0.5,
    blending: str = "gaussian",
    batch_size: int = 4,
    sigma_scale: float = 0.125,
    *,
    pad_value: float = 0.0,
    device: torch.device | str | None = None,
    output_device: torch.device | str | None = None,
    progress: bool = False,
) -> ArrayLike:
    """Run ``predictor`` on overlapping patches and blend the outputs.

    Works for 2D and 3D (any number of spatial axes: ``len(patch_size)``). Runs
    under :func:`torch.no_grad`; putting a module in eval mode is the caller's job.

    Parameters
    ----------
    predictor : callable
        Maps a batch of patches ``(n, C, *patch_size)`` (a float tensor on
        ``device``) to outputs ``(n, K, *patch_size)`` or ``(n, *patch_size)``
        (tensor or numpy array), e.g. a ``torch.nn.Module`` returning logits. A list or
        tuple is read as deep-supervision heads (the first, full-resolution one is
        used), a dict by its ``"out"`` entry or its only one.
    image : numpy.ndarray or torch.Tensor
        ``(C, *spatial)`` or ``(B, C, *spatial)``.
    patch_size : sequence of int
        Window size, one entry per spatial axis; ``None`` or a non-positive entry
        means the whole axis.
    overlap : float, default 0.5
        Overlap fraction between neighbouring windows, in ``[0, 1)``.
    blending : {"gaussian", "constant"}, default "gaussian"
        Weight of each window's voxels: a Gaussian centred on the patch (outputs
        near patch borders count less, as in nnU-Net) or uniform averaging.
    batch_size : int, default 4
        Windows per predictor call (windows of several images are batched together).
    sigma_scale : float, default 0.125
        Gaussian standard deviation as a fraction of the patch size.
    pad_value : float, default 0.0
        Value used to pad axes shorter than the patch.
    device : torch device, optional
        Where patches are sent for the predictor (default: the image's device).
    output_device : torch device, optional
        Where outputs are accumulated (default: the image's device, CPU for numpy).
    progress : bool, default False
        Show a tqdm progress bar over predictor calls.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        Blended outputs, float32, ``(K, *spatial)`` / ``(B, K, *spatial)`` —
        without the ``K`` axis when the predictor returns none. Same type as
        ``image``.

    Raises
    ------
    ValueError
        If the image has the wrong number of axes, an option is out of range, or
        the predictor changes the spatial size of a patch.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).normal(size=(1, 20, 17)).astype("float32")
    >>> out = sliding_window_inference(lambda x: 2 * x, image, (8, 8), blending="constant")
    >>> out.shape, bool(np.allclose(out, 2 * image, atol=1e-5))
    ((1, 20, 17), True)
    """
    if blending not in ("gaussian", "constant"):
        raise ValueError(f"blending must be 'gaussian' or 'constant', got {blending!r}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not 0.0 <= float(overlap) < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    nd = len(patch_size)
    if nd < 1:
        raise ValueError("patch_size needs at least one spatial axis")

    was_numpy = not isinstance(image, torch.Tensor)
    x = torch.as_tensor(np.asarray(image)) if was_numpy else image
    if not torch.is_floating_point(x):
        x = x.to(torch.float32)
    if x.ndim == nd + 1:
        x = x.unsqueeze(0)
        unbatched = True
    elif x.ndim == nd + 2:
        unbatched = False
    else:
        raise ValueError(
            f"image has shape {tuple(x.shape)}; with a {nd}-D patch_size it must be "
            f"(C, *spatial) ({nd + 1} axes) or (B, C, *spatial) ({nd + 2} axes)."
        )
    in_device = x.device
    device = torch.device(device) if device is not None else in_device
    out_device = torch.device(output_device) if output_device is not None else in_device

    spatial = tuple(int(s) for s in x.shape[2:])
    patch = _resolve_patch(patch_size, spatial)  # every entry >= 1 by construction

    # pad axes shorter than the patch, symmetrically (nnU-Net style)
    pad_before = [max(p - s, 0) // 2 for p, s in zip(patch, spatial)]
    pad_after = [max(p - s, 0) - b for p, s, b in zip(patch, spatial, pad_before)]
    if any(pad_before) or any(pad_after):
        pads: list[int] = []
        for b, a in zip(reversed(pad_before), reversed(pad_after)):
            pads.extend([b, a])
        x = torch.nn.functional.pad(x, pads, mode="constant", value=float(pad_value))
    padded = tuple(int(s) for s in x.shape[2:])

    grid = [window_starts(s, p, float(overlap)) for s, p in zip(padded, patch)]
    starts = list(itertools.product(*grid))
    windows = [(b, st) for b in range(x.shape[0]) for st in starts]

    if blending == "gaussian":
        importance = gaussian_importance_map(patch, sigma_scale, device=out_device)
    else:
        importance = torch.ones(patch, dtype=torch.float32, device=out_device)
    # same grid for every image: one normaliser shared by the batch
    norm = torch.zeros(padded, dtype=torch.float32, device=out_device)
    for st in starts:
        norm[tuple(slice(s, s + p) for s, p in zip(st, patch))] += importance

    acc: torch.Tensor | None = None
    has_channel = True
    chunks = [windows[i : i + int(batch_size)] for i in range(0, len(windows), int(batch_size))]
    iterator: Any = chunks
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(chunks, desc="sliding window", unit="batch")
    with torch.no_grad():
        for chunk in iterator:
            patches = torch.stack(
                [
                    x[(b, slice(None), *(slice(s, s + p) for s, p in zip(st, patch)))]
                    for b, st in chunk
                ]
            ).to(device)
            out = predictor(patches)
            out = _output_tensor(out)
            if out.ndim == nd + 1:
                has_channel = False
                out = out.unsqueeze(1)
            if out.ndim != nd + 2 or tuple(out.shape[2:]) != patch or out.shape[0] != len(chunk):
                raise ValueError(
                    f"predictor returned shape {tuple(out.shape)} for patches of shape "
                    f"{tuple(patches.shape)}; expected ({len(chunk)}, K, *{patch}) or "
                    f"({len(chunk)}, *{patch}). Sliding-window inference needs a model whose "
                    "output has the spatial size of its input."
                )
            out = out.to(device=out_device, dtype=torch.float32)
            if acc is None:
                acc = torch.zeros(
                    (x.shape[0], out.shape[1], *padded), dtype=torch.float32, device=out_device
                )
            for j, (b, st) in enumerate(chunk):
                region = (b, slice(None), *(slice(s, s + p) for s, p in zip(st, patch)))
                acc[region] += out[j] * importance
    assert acc is not None  # at least one window always exists
    result = acc / norm
    crop = tuple(slice(b, b + s) for b, s in zip(pad_before, spatial))
    result = result[(slice(None), slice(None), *crop)]
    if not has_channel:
        result = result[:, 0]
    if unbatched:
        result = result[0]
    result = result.contiguous()
    return result.cpu().numpy() if was_numpy else result
