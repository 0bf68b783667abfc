"""Non-maximum suppression for scored boxes: torchvision's nms / batched_nms with the checks around it."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import batched_nms, nms

from segtool.core.errors import SegtoolError
from segtool.ops.boxes.formats import as_float, check_boxes


def suppress(boxes: Tensor, scores: Tensor, iou_threshold: float = 0.5, *, classes: Tensor | None = None,
             min_score: float | None = None) -> Tensor:
    """Indices of the xyxy boxes kept by NMS, by decreasing score.

    With ``classes`` only boxes of the same class suppress each other; boxes scoring below
    ``min_score`` are dropped first.
    """
    check_boxes(boxes, "suppress: boxes")
    n = boxes.shape[0]
    if not isinstance(scores, Tensor) or scores.ndim != 1:
        raise ValueError(f"suppress: expected scores of shape (N,), got "
                         f"{tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__}")
    if scores.shape != (n,):
        raise SegtoolError(f"got {n} boxes but {scores.numel()} scores")
    if classes is not None and classes.shape != (n,):
        raise SegtoolError(f"got {n} boxes but {classes.numel()} classes")
    if not 0.0 <= iou_threshold <= 1.0:
        raise SegtoolError(f"the IoU threshold must be within 0..1, got {iou_threshold}")
    boxes = as_float(boxes)
    scores = scores.to(device=boxes.device, dtype=boxes.dtype)
    candidates = torch.arange(n, device=boxes.device)
    if min_score is not None:
        candidates = candidates[scores >= min_score]
    if classes is None:
        keep = nms(boxes[candidates], scores[candidates], iou_threshold)
    else:
        keep = batched_nms(boxes[candidates], scores[candidates], classes.to(boxes.device)[candidates],
                           iou_threshold)
    return candidates[keep]
