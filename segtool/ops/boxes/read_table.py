"""``read_box_table``: every box of a source into a BoxTable (arrays), for inputs of millions of boxes.

The first line decides the reader: CSV (csv_chunks.py), JSON lines or a JSON document
(json_chunks.py). Used by ``iou`` and ``nms``; ``box-convert`` streams records (read.py) instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import numpy as np

from segtool.core.errors import SegtoolError
from segtool.ops.boxes.box_table import BoxTable, TableBuilder
from segtool.ops.boxes.csv_chunks import read_csv_chunks
from segtool.ops.boxes.fields import check_format
from segtool.ops.boxes.json_chunks import read_jsonl_chunks
from segtool.ops.boxes.json_document import read_json_document
from segtool.ops.boxes.read import Layout, _LineParser, _open_text

# Text parsed per call: 1 MB chunks parse as fast as 4 MB ones, and their transient arrays and (JSON)
# Python objects stay near 10 MB, whatever the file size.
CHUNK_CHARS = 1 << 20


def read_box_table(path: str | Path, fmt: str | None = None, *, group: str | None = None, keep=(),
                   stdin: IO[str] | None = None, chunk_chars: int = CHUNK_CHARS) -> BoxTable:
    """Read every box of a source into a BoxTable; ``fmt=None``: named fields decide, plain numbers are xyxy.

    ``group`` names the column (CSV header name, JSON key, or a 0-based column index) whose value
    groups the boxes; ``keep`` names columns to keep (e.g. a score column; missing ones are skipped).
    """
    if fmt is not None:
        check_format(fmt)
    handle, source, owned = _open_text(path, stdin)
    builder = TableBuilder(source, group, keep, capacity=_max_boxes(handle))
    parser = _LineParser(source, fmt)
    table = BoxTable(source, fmt or "xyxy", np.empty((0, 4)), np.empty(0, np.int32), group_name=group)
    try:
        lineno, first = _first_line(handle)
        if first is None:
            raise SegtoolError(f"{source}: no boxes found (empty input)")
        text = first.strip()
        if text[0] in "[{" and not parser.first_is_json_line(text):
            read_json_document(handle, parser, builder, first, lineno, chunk_chars, table)
        elif text[0] in "[{":
            parser.layout = Layout("jsonl")
            read_jsonl_chunks(handle, parser, builder, first, lineno, chunk_chars, table)
        else:
            read_csv_chunks(handle, parser, builder, text, lineno, chunk_chars, table)
    except UnicodeDecodeError:
        raise SegtoolError(f"{source}: not a text file (not UTF-8)") from None
    finally:
        if owned:
            handle.close()
    if len(builder) == 0:
        raise SegtoolError(f"{source}: no boxes found (empty input)")
    table.fmt = parser.fmt or "xyxy"
    builder.finish(table)
    return table


def _max_boxes(handle) -> int:
    """At most one box per 7 characters (``0,0,0,0``) of a regular file; a first guess for a pipe."""
    try:
        size = os.fstat(handle.fileno()).st_size
    except (AttributeError, OSError, ValueError):  # io.StringIO, a closed or odd stream
        size = 0
    return size // 7 + 1 if size else 1 << 16


def _first_line(handle) -> tuple[int, str | None]:
    """The first line that is neither blank nor a comment, with its number."""
    for number, line in enumerate(handle, start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            return number, line
    return 0, None
