"""Label masks: read index masks, convert RGB colour masks to labels, write label PNGs.

Palette ("P") and grey ("L") PNGs hold the class index as the pixel value, so they are read
directly — never through RGB, which is both slower and lossy (VOC's void colour is not a class).
RGB colour masks go through ``ColorToLabel`` (segtool.data.color_labels), whose lookup memory is
proportional to the number of classes instead of the classic 256^3-entry table.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from segtool.core.errors import SegtoolError
from segtool.core.io import atomic_write
from segtool.data.color_labels import ColorToLabel, ConversionResult
from segtool.data.images import open_image
from segtool.data.palettes import Palette

INDEX_MODES = ("P", "L", "1", "I;16", "I;16B", "I;16L", "I;16N", "I")
COLOR_MODES = ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr")


def index_array(img: Image.Image, source: str | os.PathLike = "mask") -> np.ndarray:
    """H x W uint8 label values of an index-mode image (P / L / 1 / 16-bit with values <= 255)."""
    mode = img.mode
    if mode in ("P", "L"):
        return np.asarray(img)  # the stored indices; a P image's palette is not applied
    if mode == "1":
        return np.asarray(img, dtype=np.uint8)
    if mode.startswith("I"):
        arr = np.asarray(img)
        if arr.size and int(arr.max()) > 255:
            raise SegtoolError(f"{source}: {mode} mask holds value {int(arr.max())}; "
                               "label masks must hold values 0..255")
        return arr.astype(np.uint8)
    raise SegtoolError(f"{source}: mode {mode} is not an index mask (expected P or L; "
                       "RGB colour masks need a palette, e.g. --palette voc)")


def read_index_mask(path: str | os.PathLike) -> np.ndarray:
    """H x W uint8 array of the label values stored in a P / L mask file."""
    return index_array(open_image(path), path)


def read_label_mask(path: str | os.PathLike, palette: Palette | None = None, *, unknown: str = "ignore",
                    tolerance: float = 0.0, converter: ColorToLabel | None = None) -> ConversionResult:
    """Labels of any mask file: P / L read as indices; colour masks through ``palette``."""
    return labels_of_image(open_image(path), palette, unknown=unknown, tolerance=tolerance,
                           converter=converter, source=path)


def labels_of_image(img: Image.Image, palette: Palette | None = None, *, unknown: str = "ignore",
                    tolerance: float = 0.0, converter: ColorToLabel | None = None,
                    source: str | os.PathLike = "mask") -> ConversionResult:
    """``read_label_mask`` for an already decoded image (e.g. one read from stdin)."""
    path = source
    if img.mode in INDEX_MODES:
        return ConversionResult(index_array(img, path), 0)
    if img.mode in ("LA", "PA"):
        return ConversionResult(index_array(img.getchannel(0) if img.mode == "LA" else img.convert("P"), path), 0)
    if img.mode not in COLOR_MODES:
        raise SegtoolError(f"{path}: mask mode {img.mode} is not supported")
    if converter is None:
        if palette is None:
            raise SegtoolError(f"{path}: {img.mode} colour mask needs a palette to map colours to labels "
                               "(e.g. --palette voc)")
        converter = ColorToLabel(palette)
    rgb = img.convert("RGB") if img.mode != "RGB" else img
    return converter(rgb, unknown=unknown, tolerance=tolerance, source=path)


def label_image(labels: np.ndarray, palette: Palette | None = None, *, gray: bool = False,
                source: str = "labels") -> Image.Image:
    """A PIL image of a label map: palette mode with ``palette``'s colours, or plain L with ``gray``."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise SegtoolError(f"{source}: label map must be 2-D, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise SegtoolError(f"{source}: label values must be 0..255")
    data = np.ascontiguousarray(labels, dtype=np.uint8)
    height, width = data.shape
    if gray or palette is None:
        return Image.frombytes("L", (width, height), data.tobytes())
    img = Image.frombytes("P", (width, height), data.tobytes())
    img.putpalette(palette.pil_palette())
    return img


def write_label_png(labels: np.ndarray, path: str | os.PathLike, palette: Palette | None = None, *,
                    gray: bool = False, force: bool = False) -> None:
    """Write a label map atomically as a palette-mode PNG (or L PNG with ``gray``)."""
    img = label_image(labels, palette, gray=gray, source=str(path))
    atomic_write(path, lambda handle: img.save(handle, format="PNG"), force=force)


def write_color_png(labels: np.ndarray, path: str | os.PathLike, palette: Palette, *,
                    force: bool = False) -> None:
    """Write the RGB rendering of a label map atomically (label2color)."""
    rgb = palette.colorize(labels)
    img = Image.fromarray(rgb)
    atomic_write(path, lambda handle: img.save(handle, format="PNG"), force=force)



__all__ = ["index_array", "read_index_mask", "read_label_mask", "labels_of_image", "label_image",
           "write_label_png", "write_color_png"]
