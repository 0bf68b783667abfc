"""Bounding boxes: formats, the IoU family (chunked), d2l anchors and labelling, NMS, box files.

Modules: ``formats`` (conversion, validation, device dtype), ``iou``, ``anchors``, ``labelling``,
``nms``; box files are read by ``read`` (records) and ``read_table`` (arrays for millions of boxes:
``box_table``, ``csv_chunks``, ``json_chunks``, ``json_document``), written back in their own layout
by ``write`` (``stream`` converts a file end to end); ``output`` and ``table_writer`` print results.

Everything here works on ``(N, 4)`` tensors; ``xyxy`` unless a function takes a format.
torchvision.ops does the conversions and NMS; this package adds what it lacks (bounded-memory
IoU queries, NaN-free zero-area boxes, validation, d2l's anchor semantics, reading box files).
Names load on first use, so reading box files and the spatial index run without importing torch.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "anchor_count": "anchors",
    "anchor_grid": "anchors",
    "anchor_shapes": "anchors",
    "anchors_at": "anchors",
    "anchors_per_pixel": "anchors",
    "multibox_prior": "anchors",
    "multibox_prior_pixels": "anchors",
    "FIELDS": "formats",
    "FORMATS": "formats",
    "clip_boxes": "formats",
    "convert_boxes": "formats",
    "to_normalized": "formats",
    "to_pixels": "formats",
    "validate_boxes": "formats",
    "KINDS": "iou",
    "best_match": "iou",
    "iter_iou_blocks": "iou",
    "iter_pairs_above": "iou",
    "pairs_above": "iou",
    "pairwise_iou": "iou",
    "assign_anchors": "labelling",
    "decode_offsets": "labelling",
    "encode_offsets": "labelling",
    "multibox_detection": "labelling",
    "multibox_target": "labelling",
    "suppress": "nms",
    "BoxSet": "read",
    "boxes_from_text": "read",
    "read_boxes": "read",
    "convert_box_file": "stream",
}

__all__ = list(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
