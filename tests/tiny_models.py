"""Models small enough to attribute in a test, importable as ``model.factory``."""

from __future__ import annotations

import torch


def threshold_net() -> torch.nn.Module:
    """A 1×1×1 convolution: lesion where the intensity exceeds 1.5 (logit 4·x − 6)."""
    conv = torch.nn.Conv3d(1, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(4.0)
        conv.bias.fill_(-6.0)
    return conv


def zscored_threshold_net() -> torch.nn.Module:
    """Trained on z-scored images: lesion where the z-score exceeds 2 (logit 4·z − 8)."""
    conv = torch.nn.Conv3d(1, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(4.0)
        conv.bias.fill_(-8.0)
    return conv
