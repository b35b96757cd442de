"""Models small enough to attribute in a test, importable as ``model.factory``."""

from __future__ import annotations

import torch


def threshold_conv(slope: float, offset: float) -> torch.nn.Module:
    """A 1×1×1 convolution with logit ``slope · x + offset``: lesion where it is > 0."""
    conv = torch.nn.Conv3d(1, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(slope)
        conv.bias.fill_(offset)
    return conv


def threshold_net() -> torch.nn.Module:
    """Lesion where the intensity exceeds 1.5 (logit 4·x − 6)."""
    return threshold_conv(4.0, -6.0)


def zscored_threshold_net() -> torch.nn.Module:
    """Trained on z-scored images: lesion where the z-score exceeds 2 (logit 4·z − 8)."""
    return threshold_conv(4.0, -8.0)


def three_class_net() -> torch.nn.Module:
    """Softmax logits of three classes: 2 where the intensity exceeds 1.5 (as
    :func:`threshold_net`), class 1 nowhere."""
    conv = torch.nn.Conv3d(1, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([0.0, 0.0, 4.0]).view(3, 1, 1, 1, 1))
        conv.bias.copy_(torch.tensor([0.0, -100.0, -6.0]))
    return conv
