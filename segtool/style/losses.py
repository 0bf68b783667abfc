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


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation ``0.5 * (mean |dy| + mean |dx|)``: discourages high-frequency noise."""
    dy = (image[:, :, 1:, :] - image[:, :, :-1, :]).abs().mean()
    dx = (image[:, :, :, 1:] - image[:, :, :, :-1]).abs().mean()
    return 0.5 * (dy + dx)
