"""Pictures and curves in the terminal, for people working over SSH.

A half-block character "▀" shows two pixels: its foreground colour is the upper pixel, its
background the lower one, so a W x H picture takes W columns and H / 2 lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image
from rich.color import Color
from rich.style import Style
from rich.text import Text

UPPER_HALF = "▀"
SPARK_BARS = "▁▂▃▄▅▆▇█"


def fit_size(width: int, height: int, max_columns: int, max_lines: int | None = None) -> tuple[int, int]:
    """(columns, pixel rows) to show a width x height picture in at most max_columns x max_lines."""
    scale = min(1.0, max_columns / width)
    if max_lines is not None:
        scale = min(scale, 2 * max_lines / height)
    columns = max(1, round(width * scale))
    rows = max(2, 2 * round(height * scale / 2))  # an even number: two pixel rows per line
    return columns, rows


def half_block_preview(rgb: np.ndarray, max_columns: int = 80, max_lines: int | None = None) -> Text:
    """A rich Text drawing the H x W x 3 uint8 picture with half blocks, scaled to fit."""
    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    columns, rows = fit_size(img.width, img.height, max_columns, max_lines)
    # Nearest neighbour keeps class colours exact instead of inventing blends at boundaries.
    pixels = np.asarray(img.resize((columns, rows), Image.Resampling.NEAREST))
    text = Text()
    for y in range(0, rows, 2):
        for x in range(columns):
            top, bottom = pixels[y, x], pixels[y + 1, x]
            text.append(UPPER_HALF, Style(color=Color.from_rgb(*map(int, top)),
                                          bgcolor=Color.from_rgb(*map(int, bottom))))
        if y + 2 < rows:
            text.append("\n")
    return text


def sparkline(values: Sequence[float | None], width: int | None = None) -> str:
    """Eight-level bar characters for ``values``; missing or non-finite values are blanks."""
    values = [v if v is not None and math.isfinite(v) else None for v in values]
    if width is not None and len(values) > width:
        # Keep the shape of a long run: sample evenly, always including the last value.
        step = (len(values) - 1) / (width - 1) if width > 1 else 1
        values = [values[round(i * step)] for i in range(width)]
    finite = [v for v in values if v is not None]
    if not finite:
        return " " * len(values)
    low, high = min(finite), max(finite)
    span = high - low
    bars = []
    for v in values:
        if v is None:
            bars.append(" ")
        else:
            level = 0 if span == 0 else round((v - low) / span * (len(SPARK_BARS) - 1))
            bars.append(SPARK_BARS[level])
    return "".join(bars)
