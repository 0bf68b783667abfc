"""Pairwise IoU, GIoU, DIoU and CIoU of xyxy boxes, computed in row blocks with bounded memory.

Written by hand rather than calling torchvision.ops.box_iou & co. because those materialise
several N x M x 2 tensors at once (100k x 100k boxes would need ~200 GB) and give NaN for
zero-area pairs. Here each block of rows of A is compared with all of B, using temporaries of
about ``chunk_elements`` values, so the same code answers the full matrix, the best match per
box in A and the pairs above a threshold. The formulas (and the 1e-7 eps of DIoU/CIoU) are
torchvision's, so the values agree with it wherever torchvision's are finite.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from segtool.ops.boxes.formats import as_float, check_boxes
from segtool.ops.boxes.scale import overflow_scale

KINDS = ("iou", "giou", "diou", "ciou")
EPS = 1e-7  # torchvision's eps for the DIoU/CIoU denominators

# Values per temporary block (16 MB in float32 on the CPU): large enough that the per-op thread
# start-up and barriers stay few (they get costly on a busy machine), small enough that a query
# needs a few hundred MB at most. Accelerators want bigger blocks so kernel launches do not dominate.
CPU_CHUNK_ELEMENTS = 1 << 22
ACCELERATOR_CHUNK_ELEMENTS = 1 << 24


@dataclass
class _Columns:
    """Per-box quantities, as column vectors (A, shape (n, 1)) or row vectors (B, shape (m,))."""

    x1: Tensor
    y1: Tensor
    x2: Tensor
    y2: Tensor
    area: Tensor
    cx: Tensor | None = None
    cy: Tensor | None = None
    aspect: Tensor | None = None

    @classmethod
    def of(cls, boxes: Tensor, kind: str, column: bool) -> _Columns:
        x1, y1, x2, y2 = (c[:, None] if column else c for c in boxes.unbind(1))
        w, h = x2 - x1, y2 - y1
        cols = cls(x1, y1, x2, y2, w * h)
        if kind in ("diou", "ciou"):
            cols.cx, cols.cy = (x1 + x2) / 2, (y1 + y2) / 2
        if kind == "ciou":
            cols.aspect = torch.atan2(w, h)  # = atan(w / h), and 0 instead of NaN for a point box
        return cols

    def rows(self, start: int, stop: int) -> _Columns:
        return _Columns(*(None if t is None else t[start:stop] for t in
                          (self.x1, self.y1, self.x2, self.y2, self.area, self.cx, self.cy, self.aspect)))


def _block(a: _Columns, b: _Columns, kind: str) -> Tensor:
    """The (n, m) values between a block of A and all of B (in-place ops keep temporaries few)."""
    iw = torch.minimum(a.x2, b.x2).sub_(torch.maximum(a.x1, b.x1)).clamp_(min=0)
    ih = torch.minimum(a.y2, b.y2).sub_(torch.maximum(a.y1, b.y1)).clamp_(min=0)
    inter = iw.mul_(ih)
    union = torch.add(a.area, b.area).sub_(inter)
    tiny = torch.finfo(union.dtype).tiny
    # union == 0 only when both boxes have zero area; then inter == 0 and the IoU is 0, not NaN.
    if kind == "iou":
        return inter.div_(union.clamp_(min=tiny))
    iou = inter.div_(union.clamp(min=tiny))
    cw = torch.maximum(a.x2, b.x2).sub_(torch.minimum(a.x1, b.x1)).clamp_(min=0)
    ch = torch.maximum(a.y2, b.y2).sub_(torch.minimum(a.y1, b.y1)).clamp_(min=0)
    if kind == "giou":
        enclosing = cw.mul_(ch)
        return iou.sub_(enclosing.sub(union).div_(enclosing.clamp(min=tiny)))
    diagonal = cw.square_().add_(ch.square_()).add_(EPS)
    centres = torch.sub(a.cx, b.cx).square_().add_(torch.sub(a.cy, b.cy).square_())
    diou = centres.div_(diagonal).neg_().add_(iou)
    if kind == "diou":
        return diou
    v = torch.sub(a.aspect, b.aspect).square_().mul_(4 / math.pi**2)
    alpha = v / (1 - iou + v + EPS)
    return diou.sub_(alpha.mul_(v))


def _prepare(a: Tensor, b: Tensor, kind: str) -> tuple[Tensor, Tensor]:
    """Checked float boxes of one dtype and device, scaled by a power of two if areas would overflow."""
    if kind not in KINDS:
        raise ValueError(f"unknown IoU kind {kind!r}; expected one of {', '.join(KINDS)}")
    check_boxes(a, "boxes a")
    check_boxes(b, "boxes b")
    a, b = as_float(a), as_float(b)
    dtype = torch.promote_types(a.dtype, b.dtype)
    a, b = a.to(dtype), b.to(device=a.device, dtype=dtype)
    peak = max((float(t.abs().max()) for t in (a, b) if t.numel()), default=0.0)
    scale = overflow_scale(peak, torch.finfo(dtype).max)
    return (a, b) if scale == 1.0 else (a * scale, b * scale)


def _rows_per_block(a: Tensor, m: int, chunk_elements: int | None) -> int:
    if chunk_elements is None:
        chunk_elements = CPU_CHUNK_ELEMENTS if a.device.type == "cpu" else ACCELERATOR_CHUNK_ELEMENTS
    return max(1, chunk_elements // max(m, 1))


def iter_iou_blocks(a: Tensor, b: Tensor, kind: str = "iou", *,
                    chunk_elements: int | None = None) -> Iterator[tuple[int, Tensor]]:
    """Yield ``(first_row, values)`` for consecutive row blocks of the N x M matrix."""
    a, b = _prepare(a, b, kind)
    # Per-box quantities once for all of A: vectorised atan2 can differ in the last bit from the
    # scalar tail, and the result must not depend on where the blocks start.
    a_cols, b_cols = _Columns.of(a, kind, column=True), _Columns.of(b, kind, column=False)
    rows = _rows_per_block(a, b.shape[0], chunk_elements)
    for start in range(0, a.shape[0], rows):
        yield start, _block(a_cols.rows(start, start + rows), b_cols, kind)


def pairwise_iou(a: Tensor, b: Tensor, kind: str = "iou", *, chunk_elements: int | None = None) -> Tensor:
    """The N x M matrix of ``kind`` (iou, giou, diou, ciou) between xyxy boxes ``a`` and ``b``."""
    a, b = _prepare(a, b, kind)
    out = torch.empty((a.shape[0], b.shape[0]), dtype=a.dtype, device=a.device)
    for start, block in iter_iou_blocks(a, b, kind, chunk_elements=chunk_elements):
        out[start:start + block.shape[0]] = block
    return out


def best_match(a: Tensor, b: Tensor, kind: str = "iou", *,
               chunk_elements: int | None = None) -> tuple[Tensor, Tensor]:
    """For each box in ``a``: (best value, index of the best box in ``b``), never building N x M.

    Ties go to the lowest index in ``b``. With an empty ``b`` the values are NaN and indices -1.
    """
    a, b = _prepare(a, b, kind)
    values = torch.full((a.shape[0],), math.nan, dtype=a.dtype, device=a.device)
    indices = torch.full((a.shape[0],), -1, dtype=torch.long, device=a.device)
    if b.shape[0] == 0:
        return values, indices
    for start, block in iter_iou_blocks(a, b, kind, chunk_elements=chunk_elements):
        best, where = block.max(dim=1)
        values[start:start + best.shape[0]] = best
        indices[start:start + best.shape[0]] = where
    return values, indices


def iter_pairs_above(a: Tensor, b: Tensor, threshold: float, kind: str = "iou", *,
                     chunk_elements: int | None = None) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Yield ``(index_in_a, index_in_b, value)`` tensors, block by block, for values >= threshold."""
    for start, block in iter_iou_blocks(a, b, kind, chunk_elements=chunk_elements):
        rows, cols = (block >= threshold).nonzero(as_tuple=True)
        if rows.numel():
            yield rows + start, cols, block[rows, cols]


def pairs_above(a: Tensor, b: Tensor, threshold: float, kind: str = "iou", *,
                chunk_elements: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """All pairs with value >= threshold as ``(index_in_a, index_in_b, value)``, row-major order."""
    a, b = _prepare(a, b, kind)
    parts = list(iter_pairs_above(a, b, threshold, kind, chunk_elements=chunk_elements))
    if not parts:
        empty = torch.empty(0, dtype=torch.long, device=a.device)
        return empty, empty.clone(), torch.empty(0, dtype=a.dtype, device=a.device)
    ia, ib, values = zip(*parts, strict=True)
    return torch.cat(ia), torch.cat(ib), torch.cat(values)
