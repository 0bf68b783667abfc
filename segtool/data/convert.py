"""Batch conversions behind ``colormap2label`` and ``label2color``.

Outputs are planned by ``core.io.plan_outputs`` (clashes, existing files) before any is written; each
file is then written atomically, so a failure leaves earlier outputs complete and no partial file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from segtool.core.errors import SegtoolError
from segtool.data.color_labels import ColorToLabel, ConversionResult, pack_rgb
from segtool.data.images import open_image
from segtool.data.masks import index_array, write_color_png, write_label_png
from segtool.data.palettes import Palette


@dataclass
class FileReport:
    input: str
    output: str
    width: int
    height: int
    pixels: int
    unknown_pixels: int = 0   # colour not in the palette (colormap2label) / label not in it (label2color)
    snapped_pixels: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def color_mask_labels(path: Path, converter: ColorToLabel, *, unknown: str = "ignore",
                      tolerance: float = 0.0) -> ConversionResult:
    """Labels of a colour mask file. A palette-mode file is mapped through its own palette
    (256 lookups + an index table), so it costs no per-pixel colour search."""
    img = open_image(path)
    if img.mode == "P":
        own = np.zeros((256, 3), dtype=np.uint8)
        raw = np.frombuffer(bytes(img.getpalette("RGB") or []), dtype=np.uint8).reshape(-1, 3)
        own[: len(raw)] = raw
        indices = index_array(img, path)
        entry_labels, entry_missing, entry_snapped = converter.labels_for_keys(pack_rgb(own), tolerance)
        labels = entry_labels[indices]
        snapped = int(entry_snapped[indices].sum()) if entry_snapped is not None else 0
        if entry_missing is None:
            return ConversionResult(labels, 0, snapped)
        missing = entry_missing[indices]
        count = int(missing.sum())
        if count and unknown == "error":
            first = int(np.flatnonzero(missing)[0])
            y, x = divmod(first, indices.shape[1])
            raise converter.unknown_error(path, pack_rgb(own[indices[y, x]][None])[0], x, y, count)
        return ConversionResult(labels, count, snapped)
    if img.mode.startswith("I") or img.mode == "F":
        raise SegtoolError(f"{path}: {img.mode} image is not a colour mask (16/32-bit values)")
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    return converter(rgb, unknown=unknown, tolerance=tolerance, source=path)


def colormap_to_label(plan: list[tuple[Path, str]], palette: Palette, *, unknown: str = "ignore",
                      tolerance: float = 0.0, gray: bool = False, force: bool = False,
                      on_done=None) -> list[FileReport]:
    """Convert colour masks to label PNGs (palette mode, or L with ``gray``)."""
    converter = ColorToLabel(palette)
    reports = []
    for source, target in plan:
        result = color_mask_labels(source, converter, unknown=unknown, tolerance=tolerance)
        write_label_png(result.labels, target, palette, gray=gray, force=force)
        height, width = result.labels.shape
        reports.append(FileReport(str(source), target, width, height, width * height,
                                  result.unknown_pixels, result.snapped_pixels))
        if on_done:
            on_done()
    return reports


def label_to_color(plan: list[tuple[Path, str]], palette: Palette, *, force: bool = False,
                   on_done=None, void_value: int | None = None) -> list[FileReport]:
    """Render index masks (P / L) as RGB PNGs; labels outside the palette are drawn black and counted.

    ``void_value``: the mask value that means void in these files (SegNet's CamVid: 11), drawn in the
    palette's void colour like ``palette.ignore_index``."""
    reports = []
    for source, target in plan:
        img = open_image(source)
        labels = index_array(img, source)
        if void_value is not None and void_value != palette.ignore_index:
            labels = np.where(labels == void_value, np.asarray(palette.ignore_index, labels.dtype), labels)
        known = (labels < palette.num_classes) | (labels == palette.ignore_index)
        write_color_png(labels, target, palette, force=force)
        height, width = labels.shape
        reports.append(FileReport(str(source), target, width, height, width * height, int((~known).sum())))
        if on_done:
            on_done()
    return reports
