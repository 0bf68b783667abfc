"""Bounding boxes: formats, the IoU family (chunked), d2l anchors and labelling, NMS, box files.

Modules: ``formats`` (conversion, validation, device dtype), ``iou``, ``anchors``, ``labelling``,
``nms``; box files are read by ``read``, written back in their own layout by ``write`` (``stream``
converts a file end to end), and the commands' results are printed by ``output``.

Everything here works on ``(N, 4)`` tensors; ``xyxy`` unless a function takes a format.
torchvision.ops does the conversions and NMS; this package adds what it lacks (bounded-memory
IoU queries, NaN-free zero-area boxes, validation, d2l's anchor semantics, reading box files).
"""

from segtool.ops.boxes.anchors import (
    anchor_count,
    anchor_grid,
    anchor_shapes,
    anchors_at,
    anchors_per_pixel,
    multibox_prior,
    multibox_prior_pixels,
)
from segtool.ops.boxes.formats import (
    FIELDS,
    FORMATS,
    clip_boxes,
    convert_boxes,
    to_normalized,
    to_pixels,
    validate_boxes,
)
from segtool.ops.boxes.iou import (
    KINDS,
    best_match,
    iter_iou_blocks,
    iter_pairs_above,
    pairs_above,
    pairwise_iou,
)
from segtool.ops.boxes.labelling import (
    assign_anchors,
    decode_offsets,
    encode_offsets,
    multibox_detection,
    multibox_target,
)
from segtool.ops.boxes.nms import suppress
from segtool.ops.boxes.read import BoxSet, boxes_from_text, read_boxes
from segtool.ops.boxes.stream import convert_box_file

__all__ = [
    "FIELDS", "FORMATS", "KINDS",
    "anchor_count", "anchor_grid", "anchor_shapes", "anchors_at", "anchors_per_pixel", "multibox_prior",
    "multibox_prior_pixels",
    "clip_boxes", "convert_boxes", "to_normalized", "to_pixels", "validate_boxes",
    "best_match", "iter_iou_blocks", "iter_pairs_above", "pairs_above", "pairwise_iou",
    "assign_anchors", "decode_offsets", "encode_offsets", "multibox_detection", "multibox_target",
    "suppress",
    "BoxSet", "boxes_from_text", "read_boxes", "convert_box_file",
]
