"""Reading, sizing and (de)normalising the images of a style transfer.

Decoding and its errors come from ``segtool.data.images``; on top, style inputs get their EXIF rotation
applied, transparency composited on white, and 32-bit int / float greyscale rescaled.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from segtool.core.conventions import IMAGENET_MEAN, IMAGENET_STD, parse_hw
from segtool.data.images import open_image, to_rgb

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Size", "fit_longest_side", "from_tensor", "load_rgb",
           "parse_size", "resize", "resolve_size", "to_tensor"]

Size = tuple[int, int]  # (height, width), as torch orders them
MIN_SIDE = 16  # VGG pools four times


def parse_size(text: str) -> int | Size:
    """``"512"`` -> 512 (longest side, aspect kept); ``"300x450"`` -> (300, 450) (height x width)."""
    text = str(text).strip()
    if text.isdigit():  # one number means the longest side here, not a square
        if int(text) < MIN_SIDE:
            raise ValueError(f"{text!r}: sides must be at least {MIN_SIDE} pixels (VGG pools four times)")
        return int(text)
    return parse_hw(text, what="size", square=False, minimum=MIN_SIDE)


def fit_longest_side(longest: int, aspect_hw: Size) -> Size:
    """The (H, W) with the given longest side and the aspect of ``aspect_hw``."""
    height, width = aspect_hw
    if height >= width:
        return longest, max(1, round(longest * width / height))
    return max(1, round(longest * height / width)), longest


def resolve_size(spec: int | Size, image_hw: Size) -> Size:
    """Apply a ``--size`` value to an image of size ``image_hw``."""
    return fit_longest_side(spec, image_hw) if isinstance(spec, int) else (int(spec[0]), int(spec[1]))


def _int_to_8bit(image: Image.Image) -> Image.Image:
    """32-bit int / float greyscale -> 8 bits, using the range the values imply (16-bit or [0, 1])."""
    values = np.asarray(image, dtype=np.float64)
    top = values.max(initial=0.0)
    if image.mode == "F" and top <= 1.0:
        top = 1.0
    elif top <= 255:
        top = 255.0
    elif top <= 65535:
        top = 65535.0
    return Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8))


def _rgb(image: Image.Image, path: Path) -> Image.Image:
    image = ImageOps.exif_transpose(image)  # phone photos: upright as the user sees them
    if image.mode in ("I", "F"):
        image = _int_to_8bit(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Artwork often has transparency; white is what a viewer shows behind it.
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return to_rgb(image, path)


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Open any image file as 8-bit RGB; unreadable or non-image files are a SegtoolError."""
    path = Path(path)
    return _rgb(open_image(path), path)


def resize(image: Image.Image, size: Size) -> Image.Image:
    height, width = size
    if image.size == (width, height):
        return image
    return image.resize((width, height), Image.Resampling.BICUBIC)


def to_tensor(image: Image.Image, device: torch.device | str = "cpu") -> torch.Tensor:
    """PIL RGB -> ``(1, 3, H, W)`` float tensor normalised with the ImageNet mean/std."""
    array = torch.from_numpy(np.asarray(image, dtype=np.float32).copy()).permute(2, 0, 1) / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return ((array - mean) / std).unsqueeze(0).contiguous().to(device)


def from_tensor(tensor: torch.Tensor) -> Image.Image:
    """Undo ``to_tensor``: un-normalise, clamp to [0, 1], 8-bit RGB PIL image."""
    image = tensor.detach().squeeze(0).float().cpu()
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    pixels = (image * std + mean).clamp(0, 1).mul(255).round().to(torch.uint8)
    return Image.fromarray(pixels.permute(1, 2, 0).contiguous().numpy())
