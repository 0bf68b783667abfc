"""Joint image + mask augmentation built from torchvision.transforms.v2.

Inputs are ``(tv_tensors.Image uint8 3xHxW, tv_tensors.Mask HxW)``; v2 applies every geometric
transform identically to both, always with nearest interpolation for the mask, and photometric
transforms to the image only. Padding fills the image with 0 and the mask with 255 (ignore), so
small images are padded to the crop instead of being dropped. Outputs are plain tensors:
image float32 3xHxW (in [0, 1], or ImageNet-normalised), mask int64 HxW.
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from segtool.core.conventions import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD

NORMALIZATIONS = ("imagenet", "none")

FILL = {tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX}


class RandomScale(v2.Transform):
    """Resize by a factor drawn uniformly from ``scale`` (v2 has no relative-factor resize)."""

    def __init__(self, scale: tuple[float, float]):
        super().__init__()
        low, high = float(scale[0]), float(scale[1])
        if not 0 < low <= high:
            raise ValueError(f"scale range must satisfy 0 < low <= high, got {scale}")
        self.scale = (low, high)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        factor = float(torch.empty(1).uniform_(*self.scale))
        return {"size": [max(1, round(height * factor)), max(1, round(width * factor))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        # F.resize dispatches on type: bilinear for images, nearest for tv_tensors.Mask.
        return F.resize(inpt, params["size"], antialias=True)


def _finish(normalize: str | None) -> list[v2.Transform]:
    steps: list[v2.Transform] = [v2.ToDtype({tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64,
                                             "others": None}, scale=True)]
    if normalize not in (None, "none"):
        if normalize != "imagenet":
            raise ValueError(f"normalize must be one of {NORMALIZATIONS} or None, got {normalize!r}")
        steps.append(v2.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD))
    steps.append(v2.ToPureTensor())
    return steps


def train_transforms(crop: tuple[int, int], normalize: str | None = None, hflip: bool = True,
                     vflip: bool = False, scale: tuple[float, float] | None = None, rotation: float = 0.0,
                     color_jitter: float = 0.0, resize: tuple[int, int] | None = None) -> v2.Compose:
    """(Resize) -> random scale -> rotation -> random crop (padding small images) -> flips -> colour jitter."""
    steps: list[v2.Transform] = []
    if resize is not None:
        steps.append(v2.Resize(tuple(resize), antialias=True))
    if scale is not None:
        steps.append(RandomScale(scale))
    if rotation:
        steps.append(v2.RandomRotation(rotation, interpolation=v2.InterpolationMode.BILINEAR, fill=FILL))
    steps.append(v2.RandomCrop(tuple(crop), pad_if_needed=True, fill=FILL))
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    if vflip:
        steps.append(v2.RandomVerticalFlip())
    if color_jitter:
        jitter = float(color_jitter)
        steps.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter,
                                    hue=min(0.5, jitter / 2)))
    return v2.Compose(steps + _finish(normalize))


def eval_transforms(normalize: str | None = None, resize: tuple[int, int] | None = None) -> v2.Compose:
    """Convert (and optionally normalise) the full image; the mask is kept as is unless ``resize``
    (height, width) scales both (mask with nearest interpolation)."""
    steps: list[v2.Transform] = [v2.Resize(tuple(resize), antialias=True)] if resize is not None else []
    return v2.Compose(steps + _finish(normalize))
