"""Text for pictures: Pillow's bundled font, so rendering never depends on system fonts.

``ImageFont.load_default(size=...)`` returns the DejaVu-derived font that ships inside Pillow (a
scalable FreeType font when Pillow has FreeType, else its fixed bitmap font).
"""

from __future__ import annotations

from functools import lru_cache

from PIL import ImageFont

DEFAULT_SIZE = 12


@lru_cache(maxsize=8)
def get_font(size: int = DEFAULT_SIZE) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` pixels."""
    return ImageFont.load_default(size=size)


def text_size(text: str, font=None) -> tuple[int, int]:
    """(width, height) in pixels that ``text`` covers when drawn at (0, 0) with ``font``."""
    font = font or get_font()
    left, top, right, bottom = font.getbbox(text)
    return right, bottom


def line_height(font=None) -> int:
    """Height of one line of text, ascent plus descent, so lines of any content line up."""
    font = font or get_font()
    ascent, descent = font.getmetrics() if hasattr(font, "getmetrics") else (text_size("Hg", font)[1], 0)
    return ascent + descent
