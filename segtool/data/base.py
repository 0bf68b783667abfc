"""``SegmentationDataset``: (image, mask) pairs read from files, checked, optionally transformed.

Every dataset format (VOC, CamVid, folder, demo) is this class with a different list of file pairs
and a different way of turning a mask file into labels. Problems with a sample (unreadable file,
image/mask size mismatch, label values outside the palette) raise a SegtoolError naming the file
when that sample is read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from segtool.core.conventions import IGNORE_INDEX
from segtool.core.errors import SegtoolError
from segtool.data.images import image_size, read_image
from segtool.data.mask_decoder import MaskDecoder
from segtool.data.palettes import Palette

SMALL_IMAGE_POLICIES = ("pad", "drop")


class SegmentationDataset(Dataset):
    """A list of (image file, mask file) pairs with a palette; see the module docstring."""

    def __init__(self, samples: Sequence[tuple[Path, Path]], palette: Palette, *,
                 decoder: Callable[[Path], np.ndarray] | None = None, transforms=None, name: str = "dataset"):
        self.samples = [(Path(i), Path(m)) for i, m in samples]
        self.palette = palette
        self.decoder = decoder or MaskDecoder(palette)
        self.transforms = transforms
        self.name = name

    @property
    def num_classes(self) -> int:
        return self.palette.num_classes

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.palette.names)

    def __len__(self) -> int:
        return len(self.samples)

    def sample_paths(self, index: int) -> tuple[Path, Path]:
        return self.samples[index]

    def read_sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(H x W x 3 uint8 image, H x W uint8 labels), checked for size and label range."""
        image_path, mask_path = self.samples[index]
        image = read_image(image_path)
        labels = self.decoder(mask_path)
        if image.shape[:2] != labels.shape:
            raise SegtoolError(f"{mask_path}: mask is {labels.shape[1]}x{labels.shape[0]} but image "
                               f"{image_path} is {image.shape[1]}x{image.shape[0]} (WxH)")
        check_label_range(labels, self.num_classes, mask_path)
        return image, labels

    def __getitem__(self, index: int):
        """Without transforms: (float32 3xHxW image in [0, 1], int64 HxW mask, 255 = ignore).
        With transforms: ``transforms(tv_tensors.Image uint8 3xHxW, tv_tensors.Mask uint8 HxW)``."""
        image, labels = self.read_sample(index)
        if self.transforms is None:
            image_t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255)
            return image_t, torch.from_numpy(labels.astype(np.int64))
        from torchvision import tv_tensors

        image_t = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))))
        mask_t = tv_tensors.Mask(torch.from_numpy(np.array(labels, dtype=np.uint8)))
        return self.transforms(image_t, mask_t)

    def drop_smaller_than(self, crop: tuple[int, int]) -> int:
        """Keep only samples at least ``crop`` (height, width); sizes come from image headers."""
        height, width = crop
        kept = []
        for image_path, mask_path in self.samples:
            w, h = image_size(image_path)
            if h >= height and w >= width:
                kept.append((image_path, mask_path))
        dropped = len(self.samples) - len(kept)
        self.samples = kept
        return dropped

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, {len(self)} samples, {self.num_classes} classes, "
                f"palette={self.palette.name!r})")


def check_label_range(labels: np.ndarray, num_classes: int, source: str | os.PathLike) -> None:
    """Raise if a label is >= num_classes and not the ignore value 255."""
    if labels.size == 0 or int(labels.max()) < num_classes:
        return
    bad = labels[(labels >= num_classes) & (labels != IGNORE_INDEX)]
    if bad.size:
        raise SegtoolError(f"{source}: mask holds label {int(bad.max())} but the dataset has {num_classes} "
                           f"classes (0..{num_classes - 1}, 255 = ignore); {bad.size} such pixels")
