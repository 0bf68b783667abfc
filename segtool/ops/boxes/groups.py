"""Boxes compared only within their group (an image id): ``iou --group``, ``iou --best --group``, ``nms --group``.

Input need not be sorted by group: the key of each box is coded on reading, and results come
group by group, groups in the order they first appear in A, rows of A ascending inside each.
IoU uses the spatial index (index.py) for every group at once; the other kinds, and thresholds
at or below 0 (every pair qualifies), compare each group's boxes in full, one group at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from segtool.ops.boxes.box_table import BoxTable
from segtool.ops.boxes.index import best_match_indexed, candidate_pairs


@dataclass
class GroupSummary:
    both: int
    only_a: int
    only_b: int
    unmatched: int  # boxes of A in groups that B lacks

    def line(self, name: str) -> str:
        return (f"--group {name}: {self.both} groups on both sides, {self.only_a} only in A "
                f"({self.unmatched} boxes without a match), {self.only_b} only in B")


@dataclass
class Grouping:
    """A's and B's boxes coded in one space of group ids, with the order results are written in."""

    a: np.ndarray  # (n,) group id of each box of A
    b: np.ndarray  # (m,) group id of each box of B, -1 where A has no such group
    keys: list  # group id -> key as read
    order: np.ndarray  # A's rows: groups by first appearance, rows ascending inside
    summary: GroupSummary


def align_groups(a: BoxTable, b: BoxTable) -> Grouping:
    code_in_a = {key: code for code, key in enumerate(a.group_keys)}
    b_to_a = np.array([code_in_a.get(key, -1) for key in b.group_keys], dtype=np.int64)
    b_codes = b_to_a[b.groups] if len(b_to_a) else np.full(len(b), -1)
    a_codes = a.groups.astype(np.int64)
    first = np.full(len(a.group_keys), len(a), dtype=np.int64)
    np.minimum.at(first, a_codes, np.arange(len(a)))
    rank = np.argsort(np.argsort(first, kind="stable"), kind="stable")
    order = np.argsort(rank[a_codes], kind="stable")
    in_b = np.zeros(len(a.group_keys), dtype=bool)
    in_b[b_codes[b_codes >= 0]] = True
    summary = GroupSummary(int(in_b.sum()), int((~in_b).sum()), int((b_to_a < 0).sum()),
                           int((~in_b[a_codes]).sum()))
    return Grouping(a_codes, b_codes, list(a.group_keys), order, summary)


def grouped_matches(a: np.ndarray, b: np.ndarray, grouping: Grouping, kind: str = "iou", *, best: bool,
                    min_iou: float | None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(index_in_a, index_in_b, value)`` arrays in output order: the best match of each box of A in
    its group (``best``; ``min_iou`` then filters), or every same-group pair with value >= ``min_iou``."""
    if kind == "iou" and (best or min_iou > 0):
        yield from _indexed(a, b, grouping, best, min_iou)
    else:
        yield from _per_group(a, b, grouping, kind, best, min_iou)


def _indexed(a, b, grouping: Grouping, best: bool, min_iou: float | None):
    if not best:
        for ia, ib, values in candidate_pairs(a, b, grouping.a, grouping.b, order=grouping.order):
            keep = values >= min_iou
            yield ia[keep], ib[keep], values[keep]
        return
    values, indices = best_match_indexed(a, b, grouping.a, grouping.b)
    rows = grouping.order[indices[grouping.order] >= 0]  # boxes whose group B lacks have no match
    if min_iou is not None:
        rows = rows[values[rows] >= min_iou]
    yield rows, indices[rows], values[rows]


def _per_group(a, b, grouping: Grouping, kind: str, best: bool, min_iou: float | None):
    import torch

    from segtool.ops.boxes.iou import best_match, iter_pairs_above

    order = grouping.order
    starts = np.flatnonzero(np.r_[True, grouping.a[order][1:] != grouping.a[order][:-1]])
    b_order = np.argsort(grouping.b, kind="stable")
    b_sorted = grouping.b[b_order]
    for start, stop in zip(starts, np.r_[starts[1:], len(order)], strict=True):
        rows_a = order[start:stop]
        code = grouping.a[rows_a[0]]
        rows_b = b_order[np.searchsorted(b_sorted, code, "left"):np.searchsorted(b_sorted, code, "right")]
        if len(rows_b) == 0:
            continue
        ta, tb = torch.from_numpy(a[rows_a]), torch.from_numpy(b[rows_b])
        if best:
            values, where = (t.numpy() for t in best_match(ta, tb, kind))
            keep = values >= min_iou if min_iou is not None else np.ones(len(rows_a), dtype=bool)
            yield rows_a[keep], rows_b[where[keep]], values[keep]
        else:
            for ia, ib, values in iter_pairs_above(ta, tb, min_iou, kind):
                yield rows_a[ia.numpy()], rows_b[ib.numpy()], values.numpy()


INDEX_MIN_PAIRS = 1 << 24  # below this many pairs the blocked full matrix (torch, any device) is as quick


def matches(a: np.ndarray, b: np.ndarray, kind: str = "iou", *, best: bool, min_iou: float | None,
            grouping: Grouping | None = None, device=None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The rows of ``iou --best`` / ``--min-iou`` as ``(index_in_a, index_in_b, value)`` chunks.

    Grouped: see grouped_matches. Ungrouped IoU on large inputs: the spatial index; otherwise the
    blocked full matrix on ``device``. Every path gives the same rows and values.
    """
    if grouping is not None:
        yield from grouped_matches(a, b, grouping, kind, best=best, min_iou=min_iou)
        return
    if kind == "iou" and (best or min_iou > 0) and len(a) * len(b) > INDEX_MIN_PAIRS:
        everything = Grouping(np.zeros(len(a), np.int64), np.zeros(len(b), np.int64), [None], np.arange(len(a)),
                              GroupSummary(1, 0, 0, 0))
        yield from _indexed(a, b, everything, best, min_iou)
        return
    import torch

    from segtool.ops.boxes.formats import on_device
    from segtool.ops.boxes.iou import best_match, iter_pairs_above

    ta, tb = on_device(torch.from_numpy(a), device or "cpu"), on_device(torch.from_numpy(b), device or "cpu")
    if best:
        values, indices = (t.cpu().numpy() for t in best_match(ta, tb, kind))
        rows = np.arange(len(a)) if min_iou is None else np.flatnonzero(values >= min_iou)
        yield rows, indices[rows], values[rows]
        return
    for ia, ib, values in iter_pairs_above(ta, tb, min_iou, kind):
        yield ia.cpu().numpy(), ib.cpu().numpy(), values.cpu().numpy()
