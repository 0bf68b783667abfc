"""``--preserve-colors``: keep the content image's colours, take only the luminance of the result.

The luminance swap of neural-style's ``-original_colors 1``, done in YCbCr (ITU-R BT.601 full
range, the JPEG convention) with float arithmetic so the chroma survives unrounded.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["preserve_colors", "rgb_to_ycbcr", "ycbcr_to_rgb"]

_RGB_TO_YCBCR = np.array([[0.299, 0.587, 0.114],
                          [-0.168736, -0.331264, 0.5],
                          [0.5, -0.418688, -0.081312]])
_OFFSET = np.array([0.0, 128.0, 128.0])


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """``(..., 3)`` RGB in [0, 255] -> YCbCr in [0, 255] (float)."""
    return np.asarray(rgb, dtype=np.float64) @ _RGB_TO_YCBCR.T + _OFFSET


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Inverse of ``rgb_to_ycbcr`` (float, not clipped)."""
    return (np.asarray(ycbcr, dtype=np.float64) - _OFFSET) @ np.linalg.inv(_RGB_TO_YCBCR).T


def preserve_colors(stylized: Image.Image, content: Image.Image) -> Image.Image:
    """The stylized image's luminance with the content image's chroma (Cb, Cr)."""
    if content.size != stylized.size:
        content = content.resize(stylized.size, Image.Resampling.BICUBIC)
    luma = rgb_to_ycbcr(np.asarray(stylized.convert("RGB")))[..., :1]
    chroma = rgb_to_ycbcr(np.asarray(content.convert("RGB")))[..., 1:]
    rgb = ycbcr_to_rgb(np.concatenate([luma, chroma], axis=-1))
    return Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))
