"""A plain folder dataset: ``images/`` and ``masks/`` with matching file stems.

Optionally split into ``ROOT/<split>/{images,masks}``, or restricted by a list of stems in
``ROOT/<split>.txt``. Masks are index PNGs (P or L), binary masks (``binary``), or RGB colour masks
converted through ``palette``. Without a palette, class names come from ``ROOT/palette.csv`` /
``palette.yaml`` when present, else the number of classes is read off the masks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segtool.core.conventions import IGNORE_INDEX
from segtool.core.errors import SegtoolError
from segtool.data.images import IMAGE_EXTENSIONS, open_image
from segtool.data.masks import INDEX_MODES, index_array
from segtool.data.palettes import Palette, get_palette, voc_colormap

PALETTE_FILES = ("palette.csv", "palette.yaml", "palette.yml", "class_dict.csv")


def folder_base(root: Path, split: str | None) -> Path:
    if not root.is_dir():
        raise SegtoolError(f"{root}: dataset folder not found")
    if split and (root / split / "images").is_dir():
        return root / split
    if not (root / "images").is_dir() or not (root / "masks").is_dir():
        raise SegtoolError(f"{root}: expected images/ and masks/ folders (or {split}/images and {split}/masks)")
    return root


def folder_samples(root: Path, split: str | None = None) -> list[tuple[Path, Path]]:
    base = folder_base(root, split)
    image_dir, mask_dir = base / "images", base / "masks"
    images = {p.stem: p for p in sorted(image_dir.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS}
    masks = {p.stem: p for p in sorted(mask_dir.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS}
    stems = sorted(images)
    listing = root / f"{split}.txt" if split else None
    if base == root and listing is not None and listing.is_file():
        stems = [s.strip() for s in listing.read_text(encoding="utf-8-sig").splitlines() if s.strip()]
        absent = [s for s in stems if s not in images]
        if absent:
            raise SegtoolError(f"{listing}: {len(absent)} listed stems have no image in {image_dir}, "
                               f"e.g. {absent[0]!r}")
    if not stems:
        raise SegtoolError(f"{image_dir}: directory holds no images")
    unmatched = [s for s in stems if s not in masks]
    if unmatched:
        raise SegtoolError(f"{images[unmatched[0]]}: no mask with the same stem in {mask_dir} "
                           f"({len(unmatched)} images without masks)")
    return [(images[s], masks[s]) for s in stems]


def folder_palette(root: Path, samples: list[tuple[Path, Path]]) -> Palette:
    """Palette from a palette file in the root, else ``class0..classN-1`` sized from the masks."""
    for name in PALETTE_FILES:
        if (root / name).is_file():
            return get_palette(root / name)
    highest = -1
    for _, mask_path in samples:
        img = open_image(mask_path)
        if img.mode not in INDEX_MODES:
            raise SegtoolError(f"{mask_path}: {img.mode} colour mask needs a palette (e.g. --palette voc "
                               "or a palette.csv in the dataset folder)")
        present = np.flatnonzero(np.bincount(index_array(img, mask_path).reshape(-1), minlength=256))
        present = present[present != IGNORE_INDEX]
        if present.size:
            highest = max(highest, int(present.max()))
    count = max(highest + 1, 2)
    colors = voc_colormap(256)
    return Palette("folder", tuple(f"class{i}" for i in range(count)), colors[:count].copy(),
                   tuple(int(v) for v in colors[IGNORE_INDEX]), extended=colors)
