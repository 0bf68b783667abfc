"""The three terms of the Gatys / d2l style-transfer objective.

All work on a batch of one image (``(1, C, H, W)`` activations), as the optimisation does.
"""

from __future__ import annotations

import torch

__all__ = ["content_loss", "gram", "style_loss", "tv_loss"]


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the image's and the content image's activations."""
    return torch.mean((features - target.detach()) ** 2)


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``X X^T / (C*H*W)`` of the ``(C, H*W)`` feature matrix.

    Dividing by the number of elements makes targets comparable across image sizes, which the
    coarse-to-fine schedule and ``--style-scale`` rely on.
    """
    channels = features.shape[1]
    matrix = features.reshape(channels, -1)
    return matrix @ matrix.T / matrix.numel()


def style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the image's Gram matrix and the (blended) style Gram."""
    return torch.mean((gram(features) - target_gram.detach()) ** 2)


def tv_loss(image: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    """Total variation ``0.5 * (mean |dy| + mean |dx|)``: discourages high-frequency noise.

    ``smoothing`` > 0 replaces ``|d|`` by the Charbonnier ``sqrt(d^2 + eps^2) - eps``, which differs
    from ``|d|`` by less than ``eps`` but is differentiable at 0. L-BFGS needs that: TV drives many
    neighbour differences to exactly 0, where the kink of ``|d|`` breaks its curvature estimates.
    """
    dy = image[:, :, 1:, :] - image[:, :, :-1, :]
    dx = image[:, :, :, 1:] - image[:, :, :, :-1]
    if smoothing > 0:
        eps2 = smoothing * smoothing
        return 0.5 * ((dy * dy + eps2).sqrt().mean() + (dx * dx + eps2).sqrt().mean()) - smoothing
    return 0.5 * (dy.abs().mean() + dx.abs().mean())
