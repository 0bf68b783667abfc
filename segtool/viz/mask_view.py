"""The picture ``segtool show-mask`` draws: colourised mask or overlay, outlines, legend strip."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from segtool.core.errors import SegtoolError
from segtool.data.palettes import Palette
from segtool.viz.legend import LegendEntry, count_labels, legend_entries, render_legend, stack_vertically
from segtool.viz.overlay import WARNING_COLOR, blend_overlay, colorize_labels, draw_outlines


@dataclass
class MaskPicture:
    rgb: np.ndarray            # H x W x 3 colours (or overlay), outlines included, no legend
    image: Image.Image         # what gets saved (RGB), legend strip included when asked for
    entries: list[LegendEntry]  # every value present: classes, void, values outside the palette
    unknown: dict[int, int]     # value outside the palette -> pixel count

    @property
    def unknown_pixels(self) -> int:
        return sum(self.unknown.values())


def mark_void(labels: np.ndarray, void_value: int, ignore_index: int = 255) -> np.ndarray:
    """``labels`` with ``void_value`` replaced by the ignore index (datasets differ in their void)."""
    if void_value == ignore_index:
        return labels
    return np.where(labels == void_value, np.asarray(ignore_index, dtype=labels.dtype), labels)


def match_mask_size(labels: np.ndarray, image_shape: tuple[int, ...], *, resize: bool = False,
                    mask_name: str = "mask", image_name: str = "image") -> np.ndarray:
    """``labels`` at the image's H x W: unchanged, resized with nearest neighbour, or an error."""
    height, width = image_shape[:2]
    if labels.shape == (height, width):
        return labels
    if not resize:
        raise SegtoolError(f"{mask_name}: mask is {labels.shape[1]}x{labels.shape[0]} but {image_name} is "
                           f"{width}x{height} (use --resize to scale the mask to the image)")
    # Nearest neighbour: a label is a name, not a quantity, so it must never be interpolated.
    resized = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8)).resize(
        (width, height), Image.Resampling.NEAREST)
    return np.asarray(resized)


def compose_mask_picture(labels: np.ndarray, palette: Palette, image: np.ndarray | None = None, *,
                         alpha: float = 0.5, ignore_color=None, outline: bool = False,
                         legend: bool = False, unknown_color=WARNING_COLOR,
                         tint_background: bool = False) -> MaskPicture:
    """Colourise ``labels`` (over ``image`` when given) and add outlines / a legend strip."""
    if image is None:
        rgb, _ = colorize_labels(labels, palette, unknown_color, ignore_color=ignore_color)
    else:
        rgb = blend_overlay(image, labels, palette, alpha, ignore_color, unknown_color=unknown_color,
                            tint_background=tint_background)
    if outline:
        rgb = draw_outlines(rgb, labels, ignore_index=palette.ignore_index)
    counts = count_labels(labels)
    entries = legend_entries(counts, palette, ignore_color=ignore_color, unknown_color=unknown_color)
    unknown = {v: n for v, n in counts.items()
               if not 0 <= v < palette.num_classes and v != palette.ignore_index}
    picture = Image.fromarray(rgb)
    if legend:
        picture = stack_vertically(picture, render_legend(entries, picture.width))
    return MaskPicture(rgb, picture, entries, unknown)
