"""The picture ``segtool show-augment`` draws: per sample, the augmented image | its mask overlay.

Cells are laid out ``columns`` to a row, each under a fixed number of title lines (sample id, then
the parameters drawn), so the grid size depends only on the sample count and the crop size. Crops
narrower than ``MIN_PICTURE`` are enlarged by a whole factor with nearest neighbour, so pixels
(and padding) stay visible as they are. Ignore (255) pixels are painted in ``IGNORE_MARK``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from segtool.core.errors import SegtoolError
from segtool.data.palettes import Palette
from segtool.viz.fonts import get_font, line_height, text_size
from segtool.viz.overlay import blend_overlay

__all__ = ["IGNORE_MARK", "AugmentCell", "cell_picture", "grid_size", "render_augment_grid"]

GAP = 4
TITLE_LINES = 4  # "#index name", geometry, crop and flips, colour
FONT_SIZE = 12
MIN_PICTURE = 160
IGNORE_MARK = (255, 0, 255)  # magenta: padding and void, never trained on
BACKGROUND = (255, 255, 255)
TEXT_COLOR = (0, 0, 0)


@dataclass
class AugmentCell:
    image: np.ndarray      # H x W x 3 uint8
    labels: np.ndarray     # H x W integer labels, 255 = ignore
    title: list[str]       # up to TITLE_LINES lines


def _zoom(width: int) -> int:
    return max(1, math.ceil(MIN_PICTURE / width))


def cell_picture(cell: AugmentCell, palette: Palette, alpha: float = 0.5) -> np.ndarray:
    """image | overlay side by side (GAP white columns between), enlarged by the zoom factor."""
    labels = np.asarray(cell.labels)
    overlay = blend_overlay(cell.image, labels.astype(np.int64), palette, alpha)
    overlay[labels == palette.ignore_index] = IGNORE_MARK
    zoom = _zoom(cell.image.shape[1])
    height = cell.image.shape[0]
    gap = np.full((height, GAP // zoom or 1, 3), 255, np.uint8)
    pair = np.concatenate([cell.image, gap, overlay], axis=1)
    return pair.repeat(zoom, axis=0).repeat(zoom, axis=1)


def grid_size(count: int, crop_hw: tuple[int, int], columns: int = 4) -> tuple[int, int]:
    """(width, height) of the grid for ``count`` cells of one crop size."""
    height, width = crop_hw
    zoom = _zoom(width)
    cell_w = (2 * width + (GAP // zoom or 1)) * zoom
    cell_h = height * zoom + TITLE_LINES * line_height(get_font(FONT_SIZE))
    cols = min(columns, count)
    rows = math.ceil(count / cols)
    return cols * (cell_w + GAP) + GAP, rows * (cell_h + GAP) + GAP


def render_augment_grid(cells: Sequence[AugmentCell], palette: Palette, *, columns: int = 4,
                        alpha: float = 0.5) -> Image.Image:
    if not cells:
        raise SegtoolError("show-augment needs at least one sample")
    shapes = {c.image.shape[:2] for c in cells}
    if len(shapes) != 1:
        raise SegtoolError(f"show-augment: samples differ in size ({sorted(shapes)}); training crops are all one size")
    crop_hw = next(iter(shapes))
    width, height = grid_size(len(cells), crop_hw, columns)
    grid = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    font = get_font(FONT_SIZE)
    line = line_height(font)
    cols = min(columns, len(cells))
    for position, cell in enumerate(cells):
        picture = cell_picture(cell, palette, alpha)
        x = GAP + (position % cols) * (picture.shape[1] + GAP)
        y = GAP + (position // cols) * (picture.shape[0] + TITLE_LINES * line + GAP)
        for row, text in enumerate(cell.title[:TITLE_LINES]):
            draw.text((x, y + row * line), _fit(text, picture.shape[1], font), fill=TEXT_COLOR, font=font)
        grid.paste(Image.fromarray(picture), (x, y + TITLE_LINES * line))
    return grid


def _fit(text: str, width: int, font) -> str:
    """Cut a title line to the cell width (with an ellipsis) instead of spilling into the next cell."""
    if text_size(text, font)[0] <= width:
        return text
    while text and text_size(text + "…", font)[0] > width:
        text = text[:-1]
    return text + "…"
