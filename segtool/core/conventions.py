"""The conventions every layer shares: the ignore label, ImageNet statistics, dataset format names, and
the one parser of sizes written as ``HxW``.

Plain Python (no torch), so the CLI can validate options before anything heavy is imported.
"""

from __future__ import annotations

import re
from typing import Any

from segtool.core.errors import SegtoolError

__all__ = ["DATASET_FORMATS", "IGNORE_INDEX", "IMAGENET_MEAN", "IMAGENET_STD", "SizeError", "parse_hw"]

# Label value that no loss, metric or colour map counts: VOC's boundary band, CamVid's void.
IGNORE_INDEX = 255

# torchvision's ImageNet normalisation, used by every pretrained backbone and by VGG-19 in stylize.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Dataset layouts segtool reads (data/sources.py resolves them; "auto" is accepted where detection runs).
DATASET_FORMATS = ("voc", "camvid", "folder", "demo")

# The demo set: what `segtool make-demo-data` writes by default and what `segtool train` generates
# when it finds no data (one set, one truth). Small enough for the demo preset to train in minutes.
DEMO_SET = {"train": 240, "val": 60, "size": 64, "classes": 4, "seed": 0}



class SizeError(SegtoolError, ValueError):
    """A malformed size; also a ValueError so option parsers can turn it into a usage error (exit 2)."""


_SEPARATORS = re.compile(r"\s*[x*,]\s*|\s+")


def parse_hw(value: Any, *, what: str = "size", square: bool = True, minimum: int = 1,
             maximum: int | None = None, order: str = "hw") -> tuple[int, int]:
    """``"320x480"`` / ``"320*480"`` / ``"320,480"`` / ``[320, 480]`` -> ``(320, 480)``.

    Sizes are height x width everywhere, as torch orders them; ``order="wh"`` reads width x height for
    the one option that means a picture's pixel size (plot-log's ``--size``) and returns ``(w, h)``.
    A lone number (``224``) is a square when ``square`` is true. Raises SizeError naming ``what``.
    """
    example = "320x480" if order == "hw" else "1200x800"
    form = ("N or " if square else "") + ("HxW" if order == "hw" else "WxH")
    if isinstance(value, bool):
        parts: list[Any] = []
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    elif isinstance(value, int):
        parts = [value]
    else:
        parts = [p for p in _SEPARATORS.split(str(value).strip().lower()) if p]
    if len(parts) == 1 and square:
        parts = parts * 2
    try:
        if len(parts) != 2 or any(isinstance(p, bool) for p in parts):
            raise ValueError
        if any(isinstance(p, float) and not p.is_integer() for p in parts):
            raise ValueError
        first, second = (int(p) for p in parts)
    except (TypeError, ValueError):
        raise SizeError(f"{what} {value!r}: expected {form}, e.g. {example}") from None
    low, high = min(first, second), max(first, second)
    if low < minimum or (maximum is not None and high > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise SizeError(f"{what} {value!r}: sides must be {bounds} pixels")
    return first, second
