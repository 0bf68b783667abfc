"""A plain folder dataset: one folder of images, one of masks, paired by file stem.

The two folders are ``--images DIR --masks DIR``, or detected under the root (or ``ROOT/<split>/``):
``images/`` + ``masks/``, ``img/`` + ``ann/``, ``X/`` + ``X_msk/`` (the bag set's ``bag_data/`` +
``bag_data_msk/``) and the like. Masks may have another extension than their image (``x.jpg`` ->
``x.png``). Splits come from ``ROOT/<split>/`` folders, from lists of stems in ``ROOT/<split>.txt``,
or, when there are none, from a seeded ``val_fraction`` split of the pairs (the same every time).
Masks are index PNGs (P or L), binary masks (``binary``), or RGB colour masks converted through
``palette``. Without a palette, class names come from ``ROOT/palette.csv`` / ``palette.yaml`` when
present, else the number of classes is read off the masks.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segtool.core.conventions import IGNORE_INDEX
from segtool.core.errors import SegtoolError
from segtool.data.images import IMAGE_EXTENSIONS, open_image
from segtool.data.masks import INDEX_MODES, index_array
from segtool.data.palettes import Palette, get_palette, voc_colormap

PALETTE_FILES = ("palette.csv", "palette.yaml", "palette.yml", "class_dict.csv")
# (image folder, mask folder) names tried in this order; then X/ + X<suffix>/ for any folder X.
PAIR_NAMES = (("images", "masks"), ("img", "ann"), ("images", "labels"), ("image", "mask"), ("imgs", "masks"),
              ("images", "annotations"))
MASK_SUFFIXES = ("_msk", "_mask", "_masks", "_labels", "_annot", "annot")
MASK_STEM_SUFFIXES = ("", "_mask", "_msk", "_L", "_label")  # x.jpg pairs with x.png, x_mask.png, ...
SPLITS = ("train", "val")


@dataclass(frozen=True)
class FolderLayout:
    """How a folder dataset is laid out: explicit folders and/or a generated split (plain types)."""

    images: str | None = None
    masks: str | None = None
    val_fraction: float | None = None
    split_seed: int = 0

    @classmethod
    def from_config(cls, config: dict | None) -> FolderLayout:
        """From a TrainConfig dict (a checkpoint's ``config``); missing keys keep the defaults."""
        config = config or {}
        return cls(config.get("images"), config.get("masks"), config.get("val_fraction"),
                   int(config.get("split_seed") or 0))


def _resolve(root: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() or path.is_dir() or not (root / path).is_dir() else root / path


def detect_pair(base: Path) -> tuple[Path, Path] | None:
    """The (image folder, mask folder) under ``base``, or None when no known pair is there."""
    if not base.is_dir():
        return None
    for image_name, mask_name in PAIR_NAMES:
        if (base / image_name).is_dir() and (base / mask_name).is_dir():
            return base / image_name, base / mask_name
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        for suffix in MASK_SUFFIXES:
            if (base / f"{folder.name}{suffix}").is_dir():
                return folder, base / f"{folder.name}{suffix}"
    for suffix in MASK_SUFFIXES:  # ROOT is itself the image folder: bag_data/ beside bag_data_msk/
        sibling = base.parent / f"{base.name}{suffix}"
        if sibling.is_dir():
            return base, sibling
    return None


def find_folders(root: Path, split: str | None, layout: FolderLayout) -> tuple[Path, Path, bool]:
    """(image folder, mask folder, per-split folders?) for ``split``."""
    if not root.is_dir():
        raise SegtoolError(f"{root}: dataset folder not found")
    if layout.images or layout.masks:
        if not (layout.images and layout.masks):
            raise SegtoolError("--images and --masks go together")
        image_dir, mask_dir = _resolve(root, layout.images), _resolve(root, layout.masks)
        for what, folder in (("--images", image_dir), ("--masks", mask_dir)):
            if not folder.is_dir():
                raise SegtoolError(f"{folder}: {what} folder not found")
        return image_dir, mask_dir, False
    if split and (pair := detect_pair(root / split)) is not None and (root / split) != pair[0]:
        return pair[0], pair[1], True
    pair = detect_pair(root)
    if pair is None:
        names = ", ".join(f"{a}/ + {b}/" for a, b in PAIR_NAMES[:3])
        raise SegtoolError(f"{root}: no image and mask folders found (expected {names}, X/ + X_msk/, "
                           "or --images DIR --masks DIR)")
    return pair[0], pair[1], False


def _files(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]


def pair_files(image_dir: Path, mask_dir: Path) -> tuple[list[tuple[Path, Path]], list[Path], list[Path]]:
    """(pairs, images without a mask, masks without an image); masks match by stem, any extension."""
    masks: dict[str, Path] = {}
    for path in _files(mask_dir):
        masks.setdefault(path.stem, path)
    pairs, lonely = [], []
    used: set[str] = set()
    for image in _files(image_dir):
        stem = next((image.stem + s for s in MASK_STEM_SUFFIXES if image.stem + s in masks), None)
        if stem is None:
            lonely.append(image)
        else:
            pairs.append((image, masks[stem]))
            used.add(stem)
    return pairs, lonely, [p for s, p in masks.items() if s not in used]


def split_pairs(pairs: list, fraction: float, seed: int) -> dict[str, list]:
    """A seeded train/val split: the same pairs whatever the order the files were listed in."""
    if not 0 < fraction < 1:
        raise SegtoolError(f"--val-fraction must be between 0 and 1 (exclusive), got {fraction}")
    ordered = sorted(pairs, key=lambda pair: pair[0].name)
    random.Random(seed).shuffle(ordered)
    count = min(len(ordered) - 1, max(1, math.floor(len(ordered) * fraction + 0.5)))
    if count < 1:
        raise SegtoolError(f"{ordered[0][0].parent if ordered else 'dataset'}: --val-fraction needs at least "
                           "2 images")
    val = set(map(tuple, ordered[:count]))
    return {"train": [p for p in pairs if tuple(p) not in val], "val": [p for p in pairs if tuple(p) in val]}


def folder_samples(root: Path, split: str | None = None, layout: FolderLayout | None = None) -> list[tuple[Path, Path]]:
    """The (image, mask) pairs of ``split``; see the module docstring for where they come from."""
    layout = layout or FolderLayout()
    image_dir, mask_dir, per_split = find_folders(root, split, layout)
    pairs, lonely, _ = pair_files(image_dir, mask_dir)
    if not pairs and not lonely:
        raise SegtoolError(f"{image_dir}: directory holds no images")
    if not pairs:
        raise SegtoolError(f"{image_dir}: no image has a mask with the same name in {mask_dir} "
                           f"(e.g. {lonely[0].name}); the folders do not pair up")
    listing = root / f"{split}.txt" if split else None
    if not per_split and listing is not None and listing.is_file():
        if layout.val_fraction is not None:
            raise SegtoolError(f"{listing}: the dataset has split lists; drop --val-fraction")
        by_stem = {image.stem: (image, mask) for image, mask in pairs}
        stems = [s.strip() for s in listing.read_text(encoding="utf-8-sig").splitlines() if s.strip()]
        absent = [s for s in stems if s not in by_stem]
        if absent:
            where = image_dir if not any(i.stem == absent[0] for i in lonely) else mask_dir
            raise SegtoolError(f"{listing}: {len(absent)} listed stems have no image+mask pair in {where}, "
                               f"e.g. {absent[0]!r}")
        return [by_stem[s] for s in stems]
    if lonely:
        raise SegtoolError(f"{lonely[0]}: no mask with the same stem in {mask_dir} "
                           f"({len(lonely)} images without masks)")
    if layout.val_fraction is not None and not per_split:
        if split not in SPLITS:
            raise SegtoolError(f"split {split!r}: a --val-fraction split has only train and val")
        return split_pairs(pairs, layout.val_fraction, layout.split_seed)[split]
    return pairs


def has_split_lists(root: Path, split: str, layout: FolderLayout | None = None) -> bool:
    """True when ``split`` has its own folder or list (so train and val differ without --val-fraction)."""
    if (layout and layout.val_fraction is not None) or (root / f"{split}.txt").is_file():
        return True
    return (root / split).is_dir() and detect_pair(root / split) is not None


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
