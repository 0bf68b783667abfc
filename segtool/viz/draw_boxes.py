"""Rectangles with text labels on an image, like d2l's ``show_bboxes`` (colours cycle b, g, r, m, c)."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw

from segtool.viz.fonts import get_font, text_size

COLORS = ("blue", "green", "red", "magenta", "cyan")
_RGB = {"blue": (0, 0, 255), "green": (0, 128, 0), "red": (255, 0, 0), "magenta": (255, 0, 255),
        "cyan": (0, 255, 255), "white": (255, 255, 255), "black": (0, 0, 0)}


def draw_boxes(image: Image.Image, boxes: Sequence[Sequence[float]], labels: Sequence[str] | None = None, *,
               colors: Sequence[str] = COLORS, width: int = 2, font_size: int = 12) -> Image.Image:
    """A copy of ``image`` (RGB) with xyxy pixel ``boxes`` outlined and labelled at their top-left corner.

    Box i gets ``colors[i % len(colors)]``; a label sits on a patch of the box colour in white
    (black on light colours), as in d2l's figures.
    """
    canvas = image.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    font = get_font(font_size)
    for i, box in enumerate(boxes):
        color = _RGB.get(colors[i % len(colors)], colors[i % len(colors)])
        x1, y1, x2, y2 = (float(v) for v in box)
        draw.rectangle((x1, y1, x2, y2), outline=color, width=width)
        if labels is not None and i < len(labels) and labels[i]:
            text_w, text_h = text_size(labels[i], font)
            # Keep the label inside the picture even when the box pokes out of it.
            left = min(max(x1, 0), max(canvas.width - text_w - 4, 0))
            top = min(max(y1, 0), max(canvas.height - text_h - 4, 0))
            draw.rectangle((left, top, left + text_w + 4, top + text_h + 4), fill=color)
            ink = (0, 0, 0) if colors[i % len(colors)] in ("cyan", "white") else (255, 255, 255)
            draw.text((left + 2, top + 2), labels[i], fill=ink, font=font)
    return canvas
