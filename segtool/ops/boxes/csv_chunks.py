"""CSV box files into a TableBuilder a few MB at a time: numpy's C ``loadtxt`` on clean chunks.

A chunk that numpy cannot take as it is (comments, quotes, a bad or non-finite field) is read by
the per-line reader of read.py, so every message names the same file and line as box-convert's.
"""

from __future__ import annotations

import io
import warnings

import numpy as np

from segtool.core.errors import SegtoolError
from segtool.ops.boxes.box_table import BoxTable, TableBuilder
from segtool.ops.boxes.read import _is_number, _LineParser


def _group_column(names: list[str] | None, group: str, source: str, lineno: int, width: int) -> int:
    if group.isdigit() and int(group) < width:
        return int(group)
    if names is not None:
        stripped = [n.strip() for n in names]
        if group in stripped:
            return stripped.index(group)
        raise SegtoolError(f"{source}: line {lineno} (header): no column {group!r} for --group "
                           f"(columns: {', '.join(stripped)})")
    raise SegtoolError(f"{source}: line {lineno}: no column {group!r} for --group: a file without a header "
                       f"has columns 0..{width - 1}")


def read_csv_chunks(handle, parser: _LineParser, builder: TableBuilder, text: str, lineno: int, chunk_chars: int,
              table: BoxTable) -> None:
    group, source = builder.group, builder.source
    if "," in text:
        separator, first_fields = ",", [f.strip() for f in text.split(",")]
    else:
        separator, first_fields = " ", text.split()
    group_at = None
    if (group is not None and group.isdigit() and int(group) < 5 and len(first_fields) == 5
            and all(_is_number(f) for i, f in enumerate(first_fields) if i != int(group))):
        group_at = int(group)  # no header: the group is one of five columns, the other four are the box
    names = None
    if group_at is None:
        record = parser.line(lineno, text)
        names = parser.layout.header
        if names is None:
            width = 4
        else:
            width = len(names)
            table.columns = [names[i].strip() for i in range(width) if i not in parser.layout.box_columns]
        if group is not None:
            group_at = _group_column(names, group, source, lineno, width)
        if record is not None:
            _slow_csv(parser, builder, [(lineno, text)], group_at, names, table)
    else:
        width = 5
        _slow_csv(parser, builder, [(lineno, text)], group_at, None, table)
    box_columns = parser.layout.box_columns if names else [i for i in range(width) if i != group_at]
    kept = {n: names.index(n) for n in builder.keep if names and n in names}
    pending = ""
    while True:
        block = handle.read(chunk_chars)
        text_block = pending + block
        if not block:
            pending = ""
        else:
            cut = text_block.rfind("\n") + 1
            text_block, pending = text_block[:cut], text_block[cut:]
        if text_block:
            rows = text_block.count("\n") + (0 if text_block.endswith("\n") else 1)
            first_line = lineno + 1
            lineno += rows
            fast = (separator == "," and '"' not in text_block and "#" not in text_block
                    and "\n\n" not in text_block and text_block.count(",") == rows * (width - 1))
            parsed = _fast_csv(text_block, box_columns, group_at, kept) if fast else None
            if parsed is None:
                lines = list(enumerate(text_block.splitlines(), start=first_line))
                _slow_csv(parser, builder, lines, group_at, names, table)
            else:
                boxes, keys, extra = parsed
                builder.add(boxes, np.arange(first_line, first_line + len(boxes)), keys, extra)
        if not block and not pending:
            return


def _fast_csv(text: str, box_columns, group_at, kept):
    """numpy's parse of a clean chunk, or None when any field is not a finite number where one belongs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            boxes = np.loadtxt(io.StringIO(text), delimiter=",", usecols=box_columns, ndmin=2, comments=None)
        except ValueError:
            return None
        if not np.isfinite(boxes).all():
            return None
        keys = None
        if group_at is not None:
            keys = np.loadtxt(io.StringIO(text), delimiter=",", usecols=(group_at,), dtype=str, ndmin=1,
                              comments=None)
        extra = {n: np.char.strip(np.loadtxt(io.StringIO(text), delimiter=",", usecols=(i,), dtype=str, ndmin=1,
                                             comments=None)) for n, i in kept.items()}
    return boxes, keys, extra


def _slow_csv(parser: _LineParser, builder: TableBuilder, lines, group_at, names, table: BoxTable) -> None:
    """The per-line reader on the lines numpy could not take (its messages, its rules)."""
    boxes, numbers, keys = [], [], []
    kept = {n: names.index(n) for n in builder.keep if names and n in names}
    extra = {n: [] for n in kept}
    for lineno, raw in lines:
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        key = None
        if group_at is not None and names is None:  # headerless: take the group column out first
            fields = [f.strip() for f in text.split(",")] if "," in text else text.split()
            if len(fields) != 5:
                raise SegtoolError(f"{parser.source}: line {lineno}: expected 5 columns (a group and 4 box "
                                   f"numbers), got {len(fields)}")
            key = fields.pop(group_at)
            text = ",".join(fields)
        record = parser.line(lineno, text)
        if record is None:
            continue
        if group_at is not None and names is not None:
            key = record.fields[group_at]
        boxes.append(record.box)
        numbers.append(lineno)
        keys.append(key)
        for n, i in kept.items():
            extra[n].append(record.fields[i])
    if boxes:
        builder.add(np.array(boxes), np.array(numbers), keys, extra)
