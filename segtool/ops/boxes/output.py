"""What the box commands print: anchor tables, IoU matrices streamed by row block, match tables, kept boxes.

Each writer takes the output stream and a style (``text``, ``csv`` or ``jsonl``), so the commands
stay thin and every output can be produced and tested without the CLI. Big outputs are written
block by block and never held as text at once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

import numpy as np

from segtool.core.errors import SegtoolError
from segtool.ops.boxes.box_table import BoxTable
from segtool.ops.boxes.fields import FIELDS

if TYPE_CHECKING:
    from torch import Tensor
from segtool.ops.boxes.table_writer import TableWriter, format_float32
from segtool.ops.boxes.write import format_number

MAX_MATRIX_VALUES = 10**8  # a printed matrix beyond this is never useful: --best / --min-iou answer big inputs


def _num(value: float) -> str:
    return format_number(float(value))


def _json_num(value: float) -> str:
    """A number for JSON output: JSON has no NaN or Infinity, so a non-finite value is null."""
    return _num(value) if math.isfinite(value) else "null"


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


# ---- anchors -----------------------------------------------------------------------------------

def write_anchor_layout(out: IO[str], height: int, width: int, sizes: Sequence[float], ratios: Sequence[float],
                        style: str) -> None:
    """How many anchors an image gets and the shape of each (k, size, ratio, width, height)."""
    from segtool.ops.boxes import anchors as anc

    shapes = anc.anchor_shapes(height, width, sizes, ratios)
    count = anc.anchor_count(height, width, sizes, ratios)
    if style == "jsonl":
        report = {"height": height, "width": width, "sizes": list(sizes), "ratios": list(ratios),
                  "per_pixel": len(shapes), "count": count, "shape": [1, count, 4],
                  "order": ["row", "column", "anchor"], "layout": [vars(s) for s in shapes]}
        out.write(json.dumps(report, indent=2) + "\n")
        out.flush()
        return
    if style == "text":
        out.write(f"image {height}x{width} (HxW), sizes {', '.join(map(_num, sizes))}, "
                  f"ratios {', '.join(map(_num, ratios))}\n")
        out.write(f"{len(shapes)} anchors per pixel (n + m - 1), {count} in all: tensor (1, {count}, 4), "
                  "normalised xyxy, pixel-major (row, column, anchor)\n")
    table = TableWriter(out, ["k", "size", "ratio", "width", "height", "width_px", "height_px"], style)
    table.write([[str(s.k), _num(s.size), _num(s.ratio), f"{s.width:.6g}", f"{s.height:.6g}",
                  f"{s.width_px:.6g}", f"{s.height_px:.6g}"] for s in shapes])
    table.close()


PIXEL_DECIMALS = 4


def pixel_anchors(height: int, width: int, sizes, ratios, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """Anchors in pixels for printing, (rows * cols * A, 4) float64 from the float64 formula (centre
    x + 0.5, extent H*s*sqrt(r) x H*s/sqrt(r)) rounded to 1e-4 px: d2l's float32 anchors times
    (W, H, W, H) print float32 noise (-109.87499 for -109.875)."""
    from segtool.ops.boxes import anchors as anc

    shapes = anc.anchor_shapes(height, width, sizes, ratios)
    half = np.array([[-s.width_px, -s.height_px, s.width_px, s.height_px] for s in shapes]) / 2
    centres = np.zeros((rows[1] - rows[0], cols[1] - cols[0], 1, 4))
    centres[..., 0::2] = (np.arange(*cols) + 0.5)[None, :, None, None]
    centres[..., 1::2] = (np.arange(*rows) + 0.5)[:, None, None, None]
    return np.round(centres + half, PIXEL_DECIMALS).reshape(-1, 4) + 0.0  # + 0.0: no "-0.0"


def format_pixels(values: np.ndarray) -> np.ndarray:
    """Rounded pixel values as text, integral ones without ".0" (numpy, in C)."""
    text = np.asarray(values, dtype=np.float64).astype(str)
    return np.where(np.char.endswith(text, ".0"), np.char.partition(text, ".")[..., 0], text)


def write_anchors_at(out: IO[str], height: int, width: int, sizes, ratios, point: tuple[int, int], boxes: Tensor,
                     pixels: bool, style: str) -> None:
    """The anchors centred on one pixel (``boxes`` from ``anchors_at``), one row per anchor."""
    from segtool.ops.boxes import anchors as anc

    shapes = anc.anchor_shapes(height, width, sizes, ratios)
    if pixels:
        y, x = point
        coords = format_pixels(pixel_anchors(height, width, sizes, ratios, (y, y + 1), (x, x + 1))).tolist()
    else:
        coords = format_float32(boxes.cpu().numpy()).tolist()
    if style == "jsonl":
        report = {"height": height, "width": width, "at": {"y": point[0], "x": point[1]},
                  "units": "pixels" if pixels else "normalized",
                  "anchors": [{"k": s.k, "size": s.size, "ratio": s.ratio,
                               **{k: float(v) for k, v in zip(("x1", "y1", "x2", "y2"), c, strict=True)}}
                              for s, c in zip(shapes, coords, strict=True)]}
        out.write(json.dumps(report, indent=2) + "\n")
        out.flush()
        return
    table = TableWriter(out, ["k", "size", "ratio", "x1", "y1", "x2", "y2"], style)
    table.write([[str(s.k), _num(s.size), _num(s.ratio), *c] for s, c in zip(shapes, coords, strict=True)])
    table.close()


def write_all_anchors(out: IO[str], height: int, width: int, sizes, ratios, pixels: bool, style: str,
                      device=None) -> None:
    """Every anchor of the image as (row, col, k, x1, y1, x2, y2), computed and written a band of rows at a time."""
    from segtool.ops.boxes import anchors as anc

    per_pixel = anc.anchors_per_pixel(sizes, ratios)
    table = TableWriter(out, ["row", "col", "k", "x1", "y1", "x2", "y2"], style)
    band = max(1, 65536 // (width * per_pixel))  # image rows per chunk: ~64k anchors of text at a time
    row_cells = width * per_pixel
    col_k = np.stack((np.repeat(np.arange(width), per_pixel), np.tile(np.arange(per_pixel), width)), 1).astype(str)
    for r0 in range(0, height, band):
        r1 = min(height, r0 + band)
        if pixels:
            coords = format_pixels(pixel_anchors(height, width, sizes, ratios, (r0, r1), (0, width)))
        else:
            grid = anc.anchor_grid(height, width, sizes, ratios, rows=(r0, r1), device=device)
            coords = format_float32(grid.reshape(-1, 4).cpu())
        rows = np.repeat(np.arange(r0, r1), row_cells).astype(str)[:, None]
        cells = np.concatenate((rows, np.tile(col_k, (r1 - r0, 1)), coords), 1)
        table.write(cells.tolist())
    table.close()


# ---- iou ---------------------------------------------------------------------------------------

def write_matrix(out: IO[str], boxes_a: Tensor, boxes_b: Tensor, kind: str, style: str,
                 max_values: int = MAX_MATRIX_VALUES) -> None:
    """The N x M matrix, one row block at a time; refuses matrices beyond ``max_values``."""
    from segtool.ops.boxes.iou import iter_iou_blocks

    n, m = boxes_a.shape[0], boxes_b.shape[0]
    if n * m > max_values:
        raise SegtoolError(f"{n} x {m} = {n * m} values is too many to print as a matrix; "
                           "use --best or --min-iou T")
    if style == "jsonl":
        out.write(f'{{"kind": "{kind}", "shape": [{n}, {m}], "matrix": [')
    first = True
    for _, block in iter_iou_blocks(boxes_a, boxes_b, kind):
        rows = block.cpu().tolist()
        if style == "text":
            out.write("".join(" ".join(f"{v:7.4f}" for v in row) + "\n" for row in rows))
        elif style == "csv":
            out.write("".join(",".join(_num(v) for v in row) + "\n" for row in rows))
        else:
            for row in rows:
                out.write(("\n  " if first else ",\n  ") + "[" + ", ".join(_json_num(v) for v in row) + "]")
                first = False
    if style == "jsonl":
        out.write("\n]}\n")
    out.flush()


def write_matches(out: IO[str], chunks, kind: str, style: str, *, group: str | None = None,
                  groups: np.ndarray | None = None, keys: list | None = None) -> int:
    """Rows (a, b, value) from ``(index_in_a, index_in_b, value)`` chunks (groups.matches), with the group key
    first when grouped (``groups``: A's group ids, ``keys``: their keys). Returns the row count."""
    columns = ([group] if group is not None else []) + ["a", "b", kind]
    textual = keys is not None and any(isinstance(k, str) for k in keys)
    table = TableWriter(out, columns, style, quoted=[group] if textual and group is not None else ())
    key_text = [str(k) for k in keys] if keys is not None else None
    count = 0
    number = {"text": lambda v: f"{v:.4f}", "csv": _num, "jsonl": _json_num}[style]
    for ia, ib, values in chunks:
        cells = [[str(i), str(j), number(v)]
                 for i, j, v in zip(ia.tolist(), ib.tolist(), values.tolist(), strict=True)]
        if key_text is not None:
            cells = [[key_text[g], *row] for g, row in zip(groups[ia].tolist(), cells, strict=True)]
        table.write(cells)
        count += len(cells)
    table.close()
    return count


# ---- nms ---------------------------------------------------------------------------------------

def write_kept(out: IO[str], table: BoxTable, keep: np.ndarray, scores: Tensor, classes: list | None, *,
               rows: bool, style: str, group: str | None = None) -> None:
    """The boxes NMS kept: their indices only, or (``rows``) index, score, class and the box as read.

    Grouped: a table with the group key first, groups in order of first appearance, best score first.
    """
    if group is not None:
        first = np.full(len(table.group_keys), len(table), dtype=np.int64)
        np.minimum.at(first, table.groups, np.arange(len(table)))
        keep = keep[np.argsort(first[table.groups[keep]], kind="stable")]
    keep = keep.tolist()
    if not rows and group is None:
        if style == "jsonl":
            out.write(json.dumps({"kept": keep, "count": len(keep), "of": len(table)}, indent=2) + "\n")
        else:
            out.write("".join(f"{i}\n" for i in (["index"] if style == "csv" else []) + keep))
        out.flush()
        return
    box_columns = list(FIELDS[table.fmt]) if rows else []
    class_columns = ["class"] if classes is not None and rows else []
    columns = ([group] if group else []) + ["index"] + (["score"] if rows else []) + class_columns + box_columns
    quoted = ["class"] if class_columns and not all(_is_number(c) for c in classes) else []
    if group is not None and any(isinstance(k, str) for k in table.group_keys):
        quoted.append(group)
    table_out = TableWriter(out, columns, style, quoted=quoted)
    keys = [str(k) for k in table.group_keys]
    table_out.write([([keys[table.groups[i]]] if group else []) + [str(i)]
                     + ([_num(scores[i])] if rows else []) + ([str(classes[i])] if class_columns else [])
                     + ([_num(v) for v in table.boxes[i].tolist()] if rows else []) for i in keep])
    table_out.close()
