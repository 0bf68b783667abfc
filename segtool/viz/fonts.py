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


def cut_text(text: str, width: int, font=None) -> str:
    """``text``, cut with an ellipsis where it would run past ``width`` pixels."""
    font = font or get_font()
    if text_size(text, font)[0] <= width:
        return text
    while text and text_size(text + "…", font)[0] > width:
        text = text[:-1]
    return text + "…" if text else ""


def wrap_text(text: str, width: int, font=None, separator: str = " · ") -> list[str]:
    """Lines of ``text`` no wider than ``width`` px: whole ``separator`` parts joined while they fit,
    a part too long for a line wrapped at spaces, and a word too long for a line cut (ellipsis)."""
    font = font or get_font()

    def fits(line: str) -> bool:
        return text_size(line, font)[0] <= width

    lines: list[str] = []
    for part in text.split(separator):
        if lines and fits(lines[-1] + separator + part):
            lines[-1] += separator + part
            continue
        lines.append("")
        for word in part.split(" "):
            if lines[-1] and not fits(f"{lines[-1]} {word}"):
                lines.append("")
            lines[-1] = f"{lines[-1]} {word}" if lines[-1] else word
    return [cut_text(line, width, font) for line in lines]


def fit_text_lines(text: str, width: int, size: int = DEFAULT_SIZE, min_size: int = 8):
    """(font, lines): ``text`` wrapped to ``width`` px at the largest size from ``size`` down to
    ``min_size`` where no word has to be cut; at ``min_size``, words still too long are cut."""
    for current in range(size, min_size - 1, -1):
        font = get_font(current)
        lines = wrap_text(text, width, font)
        if current == min_size or not any(line.endswith("…") and "…" not in text for line in lines):
            return font, lines
    raise AssertionError("unreachable")
