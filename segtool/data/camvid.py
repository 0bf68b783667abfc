"""CamVid in its two common layouts.

- SegNet 11-class: ``{train,val,test}/*.png`` images, ``{split}annot/*.png`` grey label PNGs
  (0..10, 11 = void -> 255), and list files ``{split}.txt`` with lines
  ``/SegNet/CamVid/train/X.png /SegNet/CamVid/trainannot/X.png`` (only the last two path parts
  are used, relative to the root).
- 32-class: ``{split}/X.png`` images, ``{split}_labels/X_L.png`` RGB colour labels and
  ``class_dict.csv`` (name,r,g,b; parsed by ``get_palette``; ``Void`` becomes 255).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segtool.core.conventions import IGNORE_INDEX
from segtool.core.errors import SegtoolError
from segtool.data.images import IMAGE_EXTENSIONS
from segtool.data.palettes import Palette, get_palette
from segtool.data.voc import check_files_exist

SEGNET_VOID = 11


def segnet_value_map() -> np.ndarray:
    """Stored value -> label: 0..10 unchanged, 11 (void) -> 255."""
    table = np.arange(256, dtype=np.uint8)
    table[SEGNET_VOID] = IGNORE_INDEX
    return table


def detect_layout(root: Path, split: str) -> str:
    """'segnet11' or 'camvid32' from the files present."""
    if not root.is_dir():
        raise SegtoolError(f"{root}: CamVid root not found")
    if (root / f"{split}.txt").is_file() or (root / f"{split}annot").is_dir() or Path(split).is_file():
        return "segnet11"
    if (root / "class_dict.csv").is_file() or (root / f"{split}_labels").is_dir():
        return "camvid32"
    raise SegtoolError(f"{root}: not a CamVid layout (expected {split}.txt or {split}annot/ for SegNet's "
                       f"11 classes, or class_dict.csv and {split}_labels/ for 32 classes)")


def segnet_samples(root: Path, split: str, *, check: bool = True) -> list[tuple[Path, Path]]:
    listing = Path(split) if Path(split).is_file() else root / f"{split}.txt"
    if listing.is_file():
        pairs = []
        for lineno, line in enumerate(listing.read_text(encoding="utf-8-sig").splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise SegtoolError(f"{listing}: line {lineno}: expected 'image label' paths, got {line.strip()!r}")
            pairs.append(tuple(root / Path(*Path(f).parts[-2:]) for f in fields))
        source: Path | str = listing
    else:
        image_dir, label_dir = root / split, root / f"{split}annot"
        if not image_dir.is_dir():
            raise SegtoolError(f"{image_dir}: CamVid split folder not found (and no {listing.name})")
        pairs = [(p, label_dir / p.name) for p in sorted(image_dir.iterdir())
                 if p.suffix.lower() in IMAGE_EXTENSIONS]
        source = image_dir
    if not pairs:
        raise SegtoolError(f"{source}: no samples listed")
    if check:
        check_files_exist(pairs, source)
    return pairs


def camvid32_samples(root: Path, split: str, *, check: bool = True) -> list[tuple[Path, Path]]:
    image_dir, label_dir = root / split, root / f"{split}_labels"
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise SegtoolError(f"{folder}: CamVid folder not found")
    pairs = [(p, label_dir / f"{p.stem}_L.png") for p in sorted(image_dir.iterdir())
             if p.suffix.lower() in IMAGE_EXTENSIONS]
    if not pairs:
        raise SegtoolError(f"{image_dir}: directory holds no images")
    if check:
        check_files_exist(pairs, image_dir)
    return pairs


def camvid32_palette(root: Path) -> Palette:
    table = root / "class_dict.csv"
    return get_palette(table) if table.is_file() else get_palette("camvid32")
