"""Box format names and their field names: plain Python, so box files are read without importing torch."""

from __future__ import annotations

from segtool.core.errors import SegtoolError

FORMATS = ("xyxy", "xywh", "cxcywh")
# Field names of each format, as used in CSV headers and JSON objects.
FIELDS = {"xyxy": ("x1", "y1", "x2", "y2"), "xywh": ("x", "y", "w", "h"), "cxcywh": ("cx", "cy", "w", "h")}


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise SegtoolError(f"unknown box format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return fmt
