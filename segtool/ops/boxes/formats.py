"""Box formats: conversion, normalised <-> pixel units, clipping and validation.

Formats (torchvision's names): ``xyxy`` corners (x1, y1, x2, y2); ``xywh`` top-left corner, width,
height; ``cxcywh`` centre, width, height. Screen coordinates: origin top-left, y down. Conversion
itself is torchvision's ``box_convert``; this module adds the checks it leaves to the caller.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.ops import box_convert, clip_boxes_to_image

from segtool.core.errors import SegtoolError
from segtool.ops.boxes.fields import FIELDS, FORMATS, check_format

__all__ = ["FIELDS", "FORMATS", "as_float", "check_boxes", "check_format", "clip_boxes", "convert_boxes", "on_device",
           "to_normalized", "to_pixels", "validate_boxes"]

def check_boxes(boxes, what: str, shape: str = "(N, 4)") -> None:
    """A library caller's tensor of boxes has the shape the function needs: a ValueError saying which, not
    an unpack or indexing error deep inside. ``shape`` "(N, 4)" or "(..., 4)"."""
    if not isinstance(boxes, Tensor):
        raise ValueError(f"{what}: expected a torch.Tensor of boxes of shape {shape}, got {type(boxes).__name__}")
    if boxes.shape[-1:] != (4,) or (shape == "(N, 4)" and boxes.ndim != 2):
        raise ValueError(f"{what}: expected boxes of shape {shape}, got {tuple(boxes.shape)}")


def as_float(boxes: Tensor) -> Tensor:
    """Floating-point boxes for arithmetic: integers go to float64 so areas of int16/uint8/int64 boxes
    never overflow or round; float16/bfloat16 go to float32 (as torchvision's ``_upcast`` does)."""
    if boxes.is_floating_point():
        return boxes if boxes.dtype in (torch.float32, torch.float64) else boxes.float()
    return boxes.to(torch.float64)


def on_device(values: Tensor, device) -> Tensor:
    """Boxes (or scores) on ``device`` in float64, or float32 where the device has no float64 (MPS):
    box coordinates of large images need the precision, IoU ties must not depend on rounding."""
    return values.to(device, dtype=torch.float32 if torch.device(device).type == "mps" else torch.float64)


def convert_boxes(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    """Convert ``(..., 4)`` boxes between ``xyxy``, ``xywh`` and ``cxcywh`` (float result)."""
    check_format(in_fmt)
    check_format(out_fmt)
    check_boxes(boxes, "convert_boxes", "(..., 4)")
    return box_convert(as_float(boxes), in_fmt, out_fmt)


def _xy_scale(size: tuple[int, int], like: Tensor) -> Tensor:
    height, width = size
    # x-like fields (x, w) scale with the width, y-like ones (y, h) with the height, in every format.
    return torch.tensor((width, height, width, height), dtype=like.dtype, device=like.device)


def to_pixels(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Normalised boxes (0..1 of the image) to pixels, for an image of ``size = (H, W)``."""
    boxes = as_float(boxes)
    return boxes * _xy_scale(size, boxes)


def to_normalized(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Pixel boxes to fractions of an image of ``size = (H, W)``."""
    boxes = as_float(boxes)
    return boxes / _xy_scale(size, boxes)


def clip_boxes(boxes: Tensor, size: tuple[int, int], fmt: str = "xyxy") -> Tensor:
    """Clip boxes to an image of ``size = (H, W)`` (use ``(1, 1)`` for normalised boxes)."""
    xyxy = clip_boxes_to_image(convert_boxes(boxes, fmt, "xyxy"), size)
    return convert_boxes(xyxy, "xyxy", fmt)


def _row_name(index: int, names: Sequence[str] | None) -> str:
    return names[index] if names is not None else f"box {index}"


def validate_boxes(boxes: Tensor, fmt: str = "xyxy", *, source: str = "boxes", names: Sequence[str] | None = None,
                   fix: bool = False) -> Tensor:
    """Return the boxes as float ``xyxy``; reject non-finite values and inverted corners.

    ``names`` label each box in messages (e.g. "line 3" of its file); ``fix=True`` swaps inverted
    corners (or flips negative widths/heights) instead of raising.
    """
    check_format(fmt)
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise SegtoolError(f"{source}: expected boxes of shape (N, 4), got {tuple(boxes.shape)}")
    xyxy = convert_boxes(boxes, fmt, "xyxy")
    bad = ~torch.isfinite(xyxy).all(dim=1)
    if bad.any():
        i = int(bad.nonzero()[0])
        raise SegtoolError(f"{source}: {_row_name(i, names)}: non-finite value in {boxes[i].tolist()}")
    inverted = (xyxy[:, 2] < xyxy[:, 0]) | (xyxy[:, 3] < xyxy[:, 1])
    if inverted.any():
        if fix:
            lo, hi = torch.minimum(xyxy[:, :2], xyxy[:, 2:]), torch.maximum(xyxy[:, :2], xyxy[:, 2:])
            return torch.cat((lo, hi), dim=1)
        i = int(inverted.nonzero()[0])
        what = "x2 < x1 or y2 < y1" if fmt == "xyxy" else "negative width or height"
        raise SegtoolError(f"{source}: {_row_name(i, names)}: inverted box ({what}) {boxes[i].tolist()}; "
                           "use --fix to swap the corners")
    return xyxy
