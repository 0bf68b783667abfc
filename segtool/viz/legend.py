"""A legend strip naming only the classes a mask contains, with colour swatch and pixel share.

Entries come in label order: the palette's classes present, then void (255) if present, then one
entry for all values outside the palette (in the warning colour), so the strip explains every
colour the picture shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from segtool.data.palettes import Palette
from segtool.viz.fonts import get_font, line_height, text_size
from segtool.viz.overlay import WARNING_COLOR

BACKGROUND = (255, 255, 255)
TEXT_COLOR = (0, 0, 0)
SWATCH_BORDER = (96, 96, 96)
PAD = 6  # around the strip and between entries


@dataclass(frozen=True)
class LegendEntry:
    name: str
    color: tuple[int, int, int]
    pixels: int
    share: float  # fraction of all pixels of the mask
    values: tuple[int, ...]  # label value(s) the entry stands for

    @property
    def label(self) -> str:
        return f"{self.name} {format_share(self.share)}"


def format_share(share: float) -> str:
    if 0 < share < 0.001:
        return "<0.1%"
    return f"{100 * share:.1f}%"


def count_labels(labels: np.ndarray) -> dict[int, int]:
    """Pixel count of every value present in ``labels``."""
    labels = np.asarray(labels)
    if labels.dtype == np.uint8:
        counts = np.bincount(labels.ravel(), minlength=256)
        return {int(v): int(counts[v]) for v in np.flatnonzero(counts)}
    values, counts = np.unique(labels, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True)}


def legend_entries(counts: dict[int, int], palette: Palette, *, ignore_color=None,
                   unknown_color=WARNING_COLOR) -> list[LegendEntry]:
    """Legend entries for the values in ``counts`` (see ``count_labels``)."""
    total = sum(counts.values()) or 1
    entries, unknown = [], {}
    for value in sorted(counts):
        pixels = counts[value]
        if 0 <= value < palette.num_classes:
            color = tuple(int(c) for c in palette.colors[value])
            entries.append(LegendEntry(palette.names[value], color, pixels, pixels / total, (value,)))
        elif value != palette.ignore_index:
            unknown[value] = pixels
    if palette.ignore_index in counts:
        void = ignore_color or palette.ignore_color or (0, 0, 0)
        pixels = counts[palette.ignore_index]
        entries.append(LegendEntry("void", tuple(void), pixels, pixels / total, (palette.ignore_index,)))
    if unknown:
        pixels = sum(unknown.values())
        entries.append(LegendEntry("outside palette", tuple(unknown_color), pixels, pixels / total,
                                   tuple(unknown)))
    return entries


def render_legend(entries: list[LegendEntry], width: int, font_size: int = 12) -> Image.Image:
    """A white strip at least ``width`` wide; entries flow left to right and wrap onto new lines."""
    font = get_font(font_size)
    row_h = line_height(font)
    swatch = row_h
    items = [(entry, swatch + 4 + text_size(entry.label, font)[0]) for entry in entries]
    width = max([width] + [w + 2 * PAD for _, w in items])

    placed, x, y = [], PAD, PAD
    for entry, item_w in items:
        if x > PAD and x + item_w > width - PAD:
            x, y = PAD, y + row_h + PAD
        placed.append((entry, x, y))
        x += item_w + 2 * PAD
    height = y + row_h + PAD if entries else 0

    strip = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(strip)
    for entry, x, y in placed:
        draw.rectangle((x, y, x + swatch - 1, y + swatch - 1), fill=entry.color, outline=SWATCH_BORDER)
        draw.text((x + swatch + 4, y), entry.label, fill=TEXT_COLOR, font=font)
    return strip


def stack_vertically(top: Image.Image, bottom: Image.Image, background=BACKGROUND) -> Image.Image:
    """``top`` above ``bottom``, left-aligned, on a background as wide as the wider of the two."""
    out = Image.new("RGB", (max(top.width, bottom.width), top.height + bottom.height), background)
    out.paste(top, (0, 0))
    out.paste(bottom, (0, top.height))
    return out


def legend_table(entries: list[LegendEntry]):
    """The legend as a rich table (colour swatch, value, name, pixels, share) for the terminal."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False)
    for column in ("", "value", "class", "pixels", "share"):
        table.add_column(column, justify="right" if column in ("value", "pixels", "share") else "left")
    for entry in entries:
        r, g, b = entry.color
        values = ",".join(str(v) for v in entry.values[:6]) + ("..." if len(entry.values) > 6 else "")
        table.add_row(Text("  ", style=f"on rgb({r},{g},{b})"), values, entry.name, str(entry.pixels),
                      format_share(entry.share))
    return table
