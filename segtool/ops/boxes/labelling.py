"""Anchor labelling and prediction decoding, with the semantics of d2l's anchor chapter.

- ``assign_anchors``: each anchor takes the ground truth it overlaps best if that IoU reaches the
  threshold; then a greedy pass over the global maximum of the IoU matrix gives every ground
  truth an anchor of its own (discarding that anchor's row and that ground truth's column).
- ``encode_offsets`` / ``decode_offsets``: centre offsets scaled by 10, log size ratios by 5.
- ``multibox_target``: offsets, mask and class labels (0 = background) for a batch.
- ``multibox_detection``: decode predictions and suppress overlaps, class-agnostic as in d2l or
  per class (torchvision's batched_nms).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import batched_nms, box_convert, nms

from segtool.ops.boxes.iou import pairwise_iou

CENTRE_SCALE = 10.0
SIZE_SCALE = 5.0


def assign_anchors(anchors: Tensor, ground_truth: Tensor, iou_threshold: float = 0.5) -> Tensor:
    """Index of the ground-truth box for each anchor (xyxy), -1 for background; shape (A,)."""
    num_anchors, num_gt = anchors.shape[0], ground_truth.shape[0]
    assigned = torch.full((num_anchors,), -1, dtype=torch.long, device=anchors.device)
    if num_gt == 0 or num_anchors == 0:
        return assigned
    jaccard = pairwise_iou(anchors, ground_truth)
    max_ious, indices = jaccard.max(dim=1)
    above = max_ious >= iou_threshold
    assigned[above] = indices[above]
    # Greedy pass: the largest remaining IoU pairs its anchor and ground truth for good.
    for _ in range(min(num_gt, num_anchors)):
        flat = int(torch.argmax(jaccard))
        anchor, box = divmod(flat, num_gt)
        assigned[anchor] = box
        jaccard[:, box] = -1
        jaccard[anchor, :] = -1
    return assigned


def encode_offsets(anchors: Tensor, assigned: Tensor, eps: float = 1e-6) -> Tensor:
    """Offsets (dx, dy, dw, dh) of xyxy boxes ``assigned`` from their xyxy ``anchors``."""
    anc = box_convert(anchors, "xyxy", "cxcywh")
    box = box_convert(assigned, "xyxy", "cxcywh")
    offset_xy = CENTRE_SCALE * (box[:, :2] - anc[:, :2]) / anc[:, 2:]
    offset_wh = SIZE_SCALE * torch.log(eps + box[:, 2:] / anc[:, 2:])
    return torch.cat((offset_xy, offset_wh), dim=1)


def decode_offsets(anchors: Tensor, offsets: Tensor) -> Tensor:
    """Inverse of ``encode_offsets`` (up to its eps): xyxy boxes from anchors and offsets."""
    anc = box_convert(anchors, "xyxy", "cxcywh")
    xy = offsets[:, :2] * anc[:, 2:] / CENTRE_SCALE + anc[:, :2]
    wh = torch.exp(offsets[:, 2:] / SIZE_SCALE) * anc[:, 2:]
    return box_convert(torch.cat((xy, wh), dim=1), "cxcywh", "xyxy")


def multibox_target(anchors: Tensor, labels: Tensor, iou_threshold: float = 0.5) -> tuple[Tensor, Tensor, Tensor]:
    """Training targets for anchors ``(1, A, 4)`` or ``(A, 4)`` and labels ``(B, G, 5)``.

    Each label row is (class, x1, y1, x2, y2); rows with class < 0 are padding and ignored.
    Returns (offsets (B, A*4), mask (B, A*4), classes (B, A)) where class 0 is background and a
    ground truth of class c gives c + 1, as in d2l.
    """
    anchors = anchors.reshape(-1, 4)
    offsets, masks, classes = [], [], []
    for label in labels:
        label = label[label[:, 0] >= 0]
        assigned = assign_anchors(anchors, label[:, 1:], iou_threshold)
        positive = assigned >= 0
        mask = positive.to(anchors.dtype).unsqueeze(-1).repeat(1, 4)
        class_labels = torch.zeros(anchors.shape[0], dtype=torch.long, device=anchors.device)
        assigned_boxes = torch.zeros_like(anchors)
        class_labels[positive] = label[assigned[positive], 0].long() + 1
        assigned_boxes[positive] = label[assigned[positive], 1:].to(anchors.dtype)
        offsets.append((encode_offsets(anchors, assigned_boxes) * mask).reshape(-1))
        masks.append(mask.reshape(-1))
        classes.append(class_labels)
    return torch.stack(offsets), torch.stack(masks), torch.stack(classes)


def multibox_detection(cls_probs: Tensor, offset_preds: Tensor, anchors: Tensor, nms_threshold: float = 0.5,
                       pos_threshold: float = 0.009999999, per_class: bool = False) -> Tensor:
    """Decode predictions into (B, A, 6) rows (class, confidence, x1, y1, x2, y2).

    ``cls_probs`` is (B, classes + 1, A) with background first, ``offset_preds`` (B, A * 4). Kept
    boxes come first, by decreasing confidence; suppressed ones and those below ``pos_threshold``
    get class -1 (for the latter the confidence becomes 1 - confidence, as in d2l).
    """
    anchors = anchors.reshape(-1, 4)
    num_anchors = anchors.shape[0]
    out = []
    for cls_prob, offset_pred in zip(cls_probs, offset_preds, strict=True):
        conf, class_id = torch.max(cls_prob[1:], dim=0)
        boxes = decode_offsets(anchors, offset_pred.reshape(-1, 4))
        keep = batched_nms(boxes, conf, class_id, nms_threshold) if per_class else nms(boxes, conf, nms_threshold)
        is_kept = torch.zeros(num_anchors, dtype=torch.bool, device=anchors.device)
        is_kept[keep] = True
        order = torch.cat((keep, torch.nonzero(~is_kept).reshape(-1)))
        class_id = torch.where(is_kept, class_id, -1)[order]
        conf, boxes = conf[order].clone(), boxes[order]
        below = conf < pos_threshold
        class_id[below] = -1
        conf[below] = 1 - conf[below]
        out.append(torch.cat((class_id.unsqueeze(1).to(conf.dtype), conf.unsqueeze(1), boxes), dim=1))
    return torch.stack(out)
