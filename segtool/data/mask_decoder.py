"""How a dataset turns a mask file into labels (torch-free, so voc-stats workers stay light).

``MaskDecoder`` reads P / L masks as indices, converts colour masks through the palette, applies
a value map (e.g. CamVid SegNet's 11 -> 255) or reads binary masks as {0, 1}. It is small and
picklable, so DataLoader and voc-stats worker processes get their own copy cheaply.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segtool.core.conventions import IGNORE_INDEX
from segtool.data.color_labels import ColorToLabel
from segtool.data.images import open_image
from segtool.data.masks import index_array, read_label_mask
from segtool.data.palettes import Palette


class MaskDecoder:
    """Turns a mask file into H x W uint8 labels (0..num_classes-1, 255 = ignore).

    ``value_map`` is a 256-entry table applied to stored values (e.g. CamVid SegNet's 11 -> 255);
    colour masks go through the palette; ``binary`` maps 0/255 or 0/1 masks to {0, 1}.
    """

    def __init__(self, palette: Palette, *, value_map: np.ndarray | None = None, binary: bool = False,
                 unknown: str = "ignore"):
        self.palette = palette
        self.value_map = value_map
        self.binary = binary
        self.unknown = unknown
        self._converter: ColorToLabel | None = None  # built on first colour mask (a few hundred bytes)

    def __call__(self, path: Path) -> np.ndarray:
        if self.binary:
            return binary_labels(path)
        if self._converter is None:
            self._converter = ColorToLabel(self.palette)
        labels = read_label_mask(path, self.palette, unknown=self.unknown, converter=self._converter).labels
        if self.value_map is not None:
            labels = self.value_map[labels]
        return labels


def binary_labels(path: Path) -> np.ndarray:
    """{0, 1} labels of a binary mask: 0/1 (255 kept as ignore) or 0/255 (threshold at 128)."""
    img = open_image(path)
    if img.mode not in ("P", "L", "1") and not img.mode.startswith("I"):
        img = img.convert("L")  # white-on-black masks saved as RGB
    values = index_array(img, path)
    present = np.bincount(values.reshape(-1), minlength=256) > 0
    if present[1] and not present[2:IGNORE_INDEX].any():
        return values  # 0/1 mask, possibly with a 255 ignore band
    return (values >= 128).astype(np.uint8)
