"""Index mask -> colours, colours blended over an image, and class outlines.

Labels are any integer array; values ``0..K-1`` are classes of the palette, ``255`` is void, and
anything else is outside the palette: it is painted in a warning colour (magenta) and counted,
never silently shown as a class. Blending follows ``out = (1 - a) * image + a * colour`` per pixel,
rounded half up; void pixels keep the image unless an ignore colour is given, and so does the
background class (class 0 of a palette that names it "background", as VOC and binary do) unless
``tint_background``: blending it with black only darkens the whole picture.
"""

from __future__ import annotations

import numpy as np

from segtool.core.errors import SegtoolError
from segtool.data.palettes import Palette

WARNING_COLOR = (255, 0, 255)
OUTLINE_COLOR = (255, 255, 255)
_OUT_OF_RANGE = 256  # table slot for values that do not fit a byte (negative, 16-bit masks)


def _as_labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2 or not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise SegtoolError(f"labels must be an H x W integer array, got {labels.dtype} {labels.shape}")
    return labels


def unknown_pixels(labels: np.ndarray, palette: Palette) -> np.ndarray:
    """Boolean H x W: values that are neither a class of ``palette`` nor its ignore index."""
    labels = _as_labels(labels)
    return ((labels < 0) | (labels >= palette.num_classes)) & (labels != palette.ignore_index)


def _color_table(palette: Palette, unknown_color, ignore_color) -> np.ndarray:
    """(257, 3) uint8: one colour per byte value, then one for values that do not fit a byte."""
    table = np.empty((_OUT_OF_RANGE + 1, 3), dtype=np.uint8)
    table[:] = unknown_color
    table[: palette.num_classes] = palette.colors
    void = ignore_color if ignore_color is not None else palette.ignore_color
    table[palette.ignore_index] = void if void is not None else (0, 0, 0)
    return table


def _table_index(labels: np.ndarray) -> np.ndarray:
    if labels.dtype == np.uint8:
        return labels  # the common case: a palette or L PNG, no copy needed
    labels = labels.astype(np.int64, copy=False)
    return np.where((labels < 0) | (labels > 255), _OUT_OF_RANGE, labels)


def colorize_labels(labels, palette: Palette, unknown_color=WARNING_COLOR, *,
                    ignore_color=None) -> tuple[np.ndarray, int]:
    """H x W labels -> (H x W x 3 uint8 RGB, number of pixels outside the palette).

    Void pixels get ``ignore_color``, else the palette's ignore colour, else black.
    """
    labels = _as_labels(labels)
    rgb = _color_table(palette, unknown_color, ignore_color)[_table_index(labels)]
    return rgb, int(np.count_nonzero(unknown_pixels(labels, palette)))


def background_class(palette: Palette) -> int | None:
    """0 when the palette's class 0 is named background; street palettes' class 0 is a real class."""
    return 0 if palette.num_classes and palette.names[0].strip().lower() == "background" else None


def blend_overlay(image: np.ndarray, labels, palette: Palette, alpha: float = 0.5,
                  ignore_color=None, *, unknown_color=WARNING_COLOR, tint_background: bool = False) -> np.ndarray:
    """Blend the colourised ``labels`` over ``image`` (H x W x 3 uint8) with opacity ``alpha``.

    Void pixels are left as they are in the image, unless ``ignore_color`` is given: then they
    are blended with that colour like any class. Background pixels too, unless ``tint_background``.
    """
    labels = _as_labels(labels)
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise SegtoolError(f"image must be an H x W x 3 uint8 array, got {image.dtype} {image.shape}")
    if image.shape[:2] != labels.shape:
        raise SegtoolError(f"mask is {labels.shape[1]}x{labels.shape[0]} but the image is "
                           f"{image.shape[1]}x{image.shape[0]} (width x height)")
    if not 0.0 <= alpha <= 1.0:
        raise SegtoolError(f"alpha must be between 0 and 1, got {alpha}")
    colors, _ = colorize_labels(labels, palette, unknown_color, ignore_color=ignore_color)
    mixed = (1.0 - alpha) * image.astype(np.float32) + np.float32(alpha) * colors
    out = np.floor(mixed + 0.5).astype(np.uint8)
    keep = labels == palette.ignore_index if ignore_color is None else np.zeros(labels.shape, bool)
    background = None if tint_background else background_class(palette)
    if background is not None:
        keep |= labels == background
    out[keep] = image[keep]
    return out


def class_boundaries(labels, ignore_index: int = 255) -> np.ndarray:
    """Boolean H x W: non-void pixels with a 4-neighbour of another value (either side of an edge)."""
    labels = _as_labels(labels)
    edge = np.zeros(labels.shape, dtype=bool)
    across = labels[:, 1:] != labels[:, :-1]
    edge[:, 1:] |= across
    edge[:, :-1] |= across
    down = labels[1:, :] != labels[:-1, :]
    edge[1:, :] |= down
    edge[:-1, :] |= down
    return edge & (labels != ignore_index)


def draw_outlines(rgb: np.ndarray, labels, color=OUTLINE_COLOR, ignore_index: int = 255) -> np.ndarray:
    """A copy of ``rgb`` with the class boundaries of ``labels`` painted in ``color``."""
    out = np.array(rgb, dtype=np.uint8, copy=True)
    out[class_boundaries(labels, ignore_index)] = color
    return out
