"""``box-convert`` as a library call: read boxes in batches, check, rescale, clip, convert, write.

The output keeps the input's layout (CSV with or without header, JSON lines, JSON document) and
all other fields; only the four box fields change. Memory stays at one batch for CSV and JSON
lines, whatever the input length.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import IO

import torch

from segtool.ops.boxes.formats import (
    check_format,
    clip_boxes,
    convert_boxes,
    to_normalized,
    to_pixels,
    validate_boxes,
)
from segtool.ops.boxes.read import stream_records
from segtool.ops.boxes.write import RecordWriter

BATCH = 4096
SCALES = ("normalize", "denormalize")


def convert_box_file(path: str | Path, out: IO[str], out_fmt: str, in_fmt: str | None = None, *,
                     size: tuple[int, int] | None = None, scale: str | None = None, clip: bool = False,
                     fix: bool = False, stdin: IO[str] | None = None, batch: int = BATCH) -> int:
    """Convert every box of ``path`` (``-`` = stdin) to ``out_fmt``, writing to ``out``; returns the count.

    ``scale="normalize"`` divides by ``size = (H, W)``, ``"denormalize"`` multiplies; ``clip`` clips
    to the image (to 0..1 when the output is normalised). ``in_fmt=None``: named fields decide,
    plain numbers are xyxy.
    """
    check_format(out_fmt)
    if scale is not None and scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}")
    if (scale or clip) and size is None:
        raise ValueError("scale and clip need the image size")
    parser, records = stream_records(path, in_fmt, stdin=stdin)
    writer = None
    count = 0
    while chunk := list(islice(records, batch)):
        fmt = parser.fmt or "xyxy"
        boxes = torch.tensor([r.box for r in chunk], dtype=torch.float64)
        xyxy = validate_boxes(boxes, fmt, source=parser.source, names=[r.where for r in chunk], fix=fix)
        if scale == "normalize":
            xyxy = to_normalized(xyxy, size)
        elif scale == "denormalize":
            xyxy = to_pixels(xyxy, size)
        if clip:
            xyxy = clip_boxes(xyxy, (1, 1) if scale == "normalize" else size)
        # Same format, nothing changed: pass the numbers through untouched (no rounding via xyxy).
        untouched = fmt == out_fmt and not (scale or clip or fix)
        result = boxes if untouched else convert_boxes(xyxy, "xyxy", out_fmt)
        if writer is None:
            writer = RecordWriter(out, parser.layout, fmt, out_fmt)
        writer.write(chunk, result.tolist())
        count += len(chunk)
    if writer is not None:
        writer.close()
    return count
