"""Built-in synthetic data in the VOC layout, small and learnable in minutes on a CPU.

Each image shows 1-4 objects on a mildly textured background. Object class k (VOC index k, so the
VOC palette and names apply: 1 aeroplane, 2 bicycle, ...) always has the same shape and a saturated
colour of its own, is 20-50 % of the image side, and objects may overlap. Masks are palette PNGs
with a thin 255 band along object edges, as in real VOC. Each image depends only on (seed, index),
so a set is deterministic for a seed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from segtool.core.conventions import DEMO_SET, IGNORE_INDEX
from segtool.core.errors import SegtoolError
from segtool.core.paths import cache_home
from segtool.data.masks import label_image
from segtool.data.palettes import VOC_CLASSES, Palette, voc_colormap

GENERATOR_VERSION = 1  # bump when the images change, so cached sets are regenerated
DEFAULTS = DEMO_SET  # train, val, size, classes, seed
MANIFEST = "demo.json"

# One shape and one saturated colour per class (index 1..8).
SHAPES = ("circle", "square", "triangle", "ellipse", "cross", "diamond", "ring", "bar")
COLORS = ((225, 40, 40), (40, 200, 60), (45, 85, 235), (240, 215, 35), (215, 50, 215), (35, 210, 225),
          (250, 135, 25), (120, 55, 200))
MAX_CLASSES = len(SHAPES)


def demo_palette(classes: int) -> Palette:
    """VOC names and colours for background + the first ``classes`` VOC object classes."""
    full = voc_colormap(256)
    return Palette("demo", VOC_CLASSES[: classes + 1], full[: classes + 1].copy(), (224, 224, 192),
                   extended=full)


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    """Muted, low-saturation colour blobs plus fine grain: texture without object-like colours."""
    base = rng.uniform(70, 170, size=3)
    coarse = base + rng.normal(0, 18, size=(6, 6, 1)) + rng.normal(0, 6, size=(6, 6, 3))
    img = Image.fromarray(np.clip(coarse, 0, 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.int16) + rng.integers(-8, 9, size=(size, size, 1), dtype=np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _shape_polygons(shape: str, cx: float, cy: float, r: float, angle: float):
    """('ellipse', bbox) or ('polygon', points) pieces drawing ``shape`` of radius ``r``."""
    def rotated(points):
        c, s = math.cos(angle), math.sin(angle)
        return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]

    if shape == "circle":
        return [("ellipse", (cx - r, cy - r, cx + r, cy + r))]
    if shape == "ellipse":
        return [("ellipse", (cx - r, cy - 0.55 * r, cx + r, cy + 0.55 * r))]
    if shape == "ring":
        return [("ellipse", (cx - r, cy - r, cx + r, cy + r)), ("hole", (cx - 0.5 * r, cy - 0.5 * r,
                                                                        cx + 0.5 * r, cy + 0.5 * r))]
    if shape == "square":
        q = 0.8 * r
        return [("polygon", rotated([(-q, -q), (q, -q), (q, q), (-q, q)]))]
    if shape == "diamond":
        return [("polygon", [(cx, cy - r), (cx + 0.7 * r, cy), (cx, cy + r), (cx - 0.7 * r, cy)])]
    if shape == "triangle":
        return [("polygon", rotated([(0, -r), (0.87 * r, 0.5 * r), (-0.87 * r, 0.5 * r)]))]
    if shape == "cross":
        w = 0.3 * r
        return [("polygon", rotated([(-r, -w), (r, -w), (r, w), (-r, w)])),
                ("polygon", rotated([(-w, -r), (w, -r), (w, r), (-w, r)]))]
    if shape == "bar":
        return [("polygon", rotated([(-r, -0.3 * r), (r, -0.3 * r), (r, 0.3 * r), (-r, 0.3 * r)]))]
    raise ValueError(shape)


def _edge_band(labels: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` of a label change (the VOC-style void band)."""
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    band = edge.copy()
    for _ in range(width - 1):
        grown = band.copy()
        grown[1:, :] |= band[:-1, :]
        grown[:-1, :] |= band[1:, :]
        grown[:, 1:] |= band[:, :-1]
        grown[:, :-1] |= band[:, 1:]
        band = grown
    return band


def render_sample(seed: int, index: int, size: int, classes: int) -> tuple[Image.Image, np.ndarray]:
    """One (RGB image, H x W uint8 labels) pair; depends only on its arguments."""
    rng = np.random.default_rng([seed, index])
    background = _background(rng, size)
    image = background.copy()
    mask = Image.new("L", (size, size), 0)
    draw_img, draw_mask = ImageDraw.Draw(image), ImageDraw.Draw(mask)
    count = int(rng.choice([1, 2, 2, 3, 3, 4]))
    centres: list[tuple[float, float]] = []
    for _ in range(count):
        label = int(rng.integers(1, classes + 1))
        radius = rng.uniform(0.10, 0.25) * size  # diameter 20-50 % of the side
        if centres and rng.random() < 0.4:  # push some objects onto an earlier one to overlap
            px, py = centres[int(rng.integers(len(centres)))]
            cx, cy = px + rng.normal(0, radius * 0.8), py + rng.normal(0, radius * 0.8)
        else:
            cx, cy = rng.uniform(0.15, 0.85, size=2) * size
        cx, cy = float(np.clip(cx, 0.1 * size, 0.9 * size)), float(np.clip(cy, 0.1 * size, 0.9 * size))
        centres.append((cx, cy))
        tint = np.clip(np.array(COLORS[label - 1]) * rng.uniform(0.85, 1.1) + rng.normal(0, 8, 3), 0, 255)
        colour = tuple(int(v) for v in tint)
        for kind, geometry in _shape_polygons(SHAPES[label - 1], cx, cy, radius, rng.uniform(0, math.pi)):
            if kind == "hole":  # a ring's hole shows the background again
                hole = Image.new("L", (size, size), 0)
                ImageDraw.Draw(hole).ellipse(geometry, fill=255)
                image.paste(background, mask=hole)
                mask.paste(0, mask=hole)
                continue
            getattr(draw_img, kind)(geometry, fill=colour)
            getattr(draw_mask, kind)(geometry, fill=label)
    labels = np.asarray(mask).copy()
    labels[_edge_band(labels, max(1, round(size / 96)))] = IGNORE_INDEX
    return image, labels


def _generate(out: Path, train: int, val: int, size: int, classes: int, seed: int) -> None:
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    palette = demo_palette(classes)
    ids = [f"demo_{i:05d}" for i in range(train + val)]
    for index, sample_id in enumerate(ids):
        image, labels = render_sample(seed, index, size, classes)
        image.save(out / "JPEGImages" / f"{sample_id}.jpg", quality=92)
        label_image(labels, palette).save(out / "SegmentationClass" / f"{sample_id}.png")
    lists = {"train": ids[:train], "val": ids[train:], "trainval": ids}
    for split, names in lists.items():
        (out / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
    manifest = {"generator": "segtool demo", "version": GENERATOR_VERSION, "train": train, "val": val,
                "size": size, "classes": classes, "seed": seed, "class_names": list(palette.names),
                "shapes": list(SHAPES[:classes])}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def _validate(train: int, val: int, size: int, classes: int) -> None:
    if train < 1 or val < 0:
        raise SegtoolError(f"demo data needs --train >= 1 and --val >= 0, got {train} / {val}")
    if not 32 <= size <= 1024:
        raise SegtoolError(f"demo image size must be 32..1024, got {size}")
    if not 1 <= classes <= MAX_CLASSES:
        raise SegtoolError(f"demo data has 1..{MAX_CLASSES} object classes, got {classes}")


def make_demo_dataset(out_dir: str | Path, train: int = DEFAULTS["train"], val: int = DEFAULTS["val"],
                      size: int = DEFAULTS["size"], classes: int = DEFAULTS["classes"], seed: int = DEFAULTS["seed"],
                      *, force: bool = False) -> Path:
    """Write a demo set to ``out_dir`` (VOC layout) and return it; all-or-nothing.

    The set is built in a temporary sibling folder and renamed into place. An existing non-empty
    ``out_dir`` is replaced only with ``force`` and only if it is a previous demo set.
    """
    _validate(train, val, size, classes)
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise SegtoolError(f"{out}: exists and is not a directory")
        if any(out.iterdir()):
            if not force:
                raise SegtoolError(f"{out}: directory is not empty (use --force to replace a demo set)")
            if not (out / MANIFEST).is_file():
                raise SegtoolError(f"{out}: not a segtool demo set (no {MANIFEST}); refusing to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _generate(tmp, train, val, size, classes, seed)
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _move_into_place(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}.old.{os.getpid()}")
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)


def demo_cache_dir(train: int, val: int, size: int, classes: int, seed: int) -> Path:
    return cache_home() / f"demo-v{GENERATOR_VERSION}-t{train}-v{val}-s{size}-k{classes}-seed{seed}"


def ensure_demo_dataset(train: int = DEFAULTS["train"], val: int = DEFAULTS["val"], size: int = DEFAULTS["size"],
                        classes: int = DEFAULTS["classes"], seed: int = DEFAULTS["seed"]) -> Path:
    """The cached demo set for these parameters, generated once (atomically) on first use."""
    _validate(train, val, size, classes)
    final = demo_cache_dir(train, val, size, classes, seed)
    if (final / MANIFEST).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        _generate(tmp, train, val, size, classes, seed)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / MANIFEST).is_file():  # not another process winning the race: a real error
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_manifest(root: Path) -> dict | None:
    path = Path(root) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        raise SegtoolError(f"{path}: unreadable demo manifest") from None
    if not isinstance(manifest, dict):
        raise SegtoolError(f"{path}: unreadable demo manifest (not a JSON object)")
    return manifest
