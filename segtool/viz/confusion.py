"""Confusion-matrix picture: a row-normalised heat map with class names (``evaluate --confusion``).

Rows are ground truth, columns prediction; each row is divided by its sum, so a cell reads "share
of this class's pixels predicted as that class" and the diagonal is the per-class accuracy.
Rows without ground-truth pixels are drawn grey. Colours run from white (0) to dark blue (1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from segtool.core.errors import SegtoolError
from segtool.viz.fonts import get_font, line_height, text_size

# Stops of matplotlib's "Blues" map: luminance falls monotonically from 0 to 1.
_BLUES = np.array([(247, 251, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107)],
                  dtype=np.float64)
EMPTY_ROW = (210, 210, 210)
BACKGROUND = (255, 255, 255)
TEXT_COLOR = (0, 0, 0)
CAPTION = "rows: ground truth · columns: prediction · row-normalised"
PAD = 8
BAR_WIDTH = 14
FONT_SIZE = 11


def heat_colors(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB along the Blues stops (darker = larger)."""
    values = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    pos = values * (len(_BLUES) - 1)
    low = np.minimum(pos.astype(int), len(_BLUES) - 2)
    frac = (pos - low)[..., None]
    return np.floor(_BLUES[low] * (1 - frac) + _BLUES[low + 1] * frac + 0.5).astype(np.uint8)


def normalize_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row-normalised float matrix, boolean per row: has ground-truth pixels)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    norm = np.zeros_like(matrix)
    np.divide(matrix, totals, out=norm, where=totals > 0)
    return norm, totals[:, 0] > 0


@dataclass(frozen=True)
class ConfusionLayout:
    """Where things go in the picture; the same numbers drive drawing and tests."""

    num_classes: int
    cell: int    # side of one cell in pixels
    left: int    # x of the first column of cells (row names sit to its left)
    top: int     # y of the first row of cells (column names sit above, rotated)
    width: int
    height: int

    def cell_box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of a cell, x1 / y1 exclusive, without the 1-pixel gap."""
        x0 = self.left + col * self.cell
        y0 = self.top + row * self.cell
        return x0, y0, x0 + self.cell - 1, y0 + self.cell - 1


def confusion_layout(class_names: Sequence[str]) -> ConfusionLayout:
    font = get_font(FONT_SIZE)
    k = len(class_names)
    cell = max(22, text_size("100", font)[0] + 6)
    name_w = max((text_size(name, font)[0] for name in class_names), default=0)
    left = PAD + name_w + PAD
    top = PAD + name_w + PAD
    grid = k * cell
    bar_right = left + grid + PAD + BAR_WIDTH + 4 + text_size("1.0", font)[0] + PAD
    width = max(bar_right, PAD + text_size(CAPTION, font)[0] + PAD)
    height = top + grid + PAD + line_height(font) + PAD
    return ConfusionLayout(k, cell, left, top, width, height)


def render_confusion(matrix: np.ndarray, class_names: Sequence[str]) -> Image.Image:
    """K x K counts (rows = ground truth) -> RGB heat map with class names and a colour bar."""
    matrix = np.asarray(matrix)
    k = len(class_names)
    if matrix.ndim != 2 or matrix.shape != (k, k):
        raise SegtoolError(f"confusion matrix must be {k}x{k} for {k} class names, got shape {matrix.shape}")
    norm, has_pixels = normalize_rows(matrix)
    lay = confusion_layout(class_names)
    font = get_font(FONT_SIZE)

    canvas = np.full((lay.height, lay.width, 3), BACKGROUND, dtype=np.uint8)
    colors = heat_colors(norm)
    colors[~has_pixels] = EMPTY_ROW
    # One cell = cell x cell pixels; the last row and column of each stay white as a grid line.
    cells = np.repeat(np.repeat(colors, lay.cell, axis=0), lay.cell, axis=1)
    cells[lay.cell - 1::lay.cell, :] = BACKGROUND
    cells[:, lay.cell - 1::lay.cell] = BACKGROUND
    canvas[lay.top:lay.top + k * lay.cell, lay.left:lay.left + k * lay.cell] = cells

    bar_x = lay.left + k * lay.cell + PAD
    bar_h = max(k * lay.cell - 1, 1)
    ramp = heat_colors(np.linspace(1.0, 0.0, bar_h))
    canvas[lay.top:lay.top + bar_h, bar_x:bar_x + BAR_WIDTH] = ramp[:, None, :]

    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    for i, name in enumerate(class_names):
        y = lay.top + i * lay.cell + (lay.cell - 1 - line_height(font)) // 2
        draw.text((lay.left - PAD - text_size(name, font)[0], y), name, fill=TEXT_COLOR, font=font)
    for i in range(k):
        for j in range(k):
            if not has_pixels[i] or norm[i, j] < 0.005:
                continue  # an empty cell reads better blank than "0"
            label = str(round(100 * norm[i, j]))
            x0, y0, x1, y1 = lay.cell_box(i, j)
            tw = text_size(label, font)[0]
            ink = (255, 255, 255) if norm[i, j] > 0.5 else TEXT_COLOR
            draw.text((x0 + (x1 - x0 - tw) // 2, y0 + (y1 - y0 - line_height(font)) // 2), label,
                      fill=ink, font=font)
    _draw_column_names(img, class_names, lay, font)
    draw.text((bar_x + BAR_WIDTH + 4, lay.top), "1.0", fill=TEXT_COLOR, font=font)
    draw.text((bar_x + BAR_WIDTH + 4, lay.top + bar_h - line_height(font)), "0.0", fill=TEXT_COLOR, font=font)
    draw.text((PAD, lay.top + k * lay.cell + PAD), CAPTION, fill=TEXT_COLOR, font=font)
    return img


def _draw_column_names(img: Image.Image, class_names: Sequence[str], lay: ConfusionLayout, font) -> None:
    """Column names written bottom-up (rotated 90 degrees) above their column."""
    name_h = line_height(font)
    for j, name in enumerate(class_names):
        w = max(text_size(name, font)[0], 1)
        label = Image.new("RGB", (w, name_h), BACKGROUND)
        ImageDraw.Draw(label).text((0, 0), name, fill=TEXT_COLOR, font=font)
        label = label.rotate(90, expand=True)
        x = lay.left + j * lay.cell + (lay.cell - 1 - name_h) // 2
        img.paste(label, (x, lay.top - PAD - label.height))
