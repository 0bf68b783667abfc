"""JSON lines and JSON documents into a TableBuilder a chunk at a time, with the C ``json`` parser.

JSON lines: a few MB of lines parsed as one JSON array per chunk. A line that breaks it is read
again on its own by the per-line reader of read.py, which names it.
"""

from __future__ import annotations

import json

import numpy as np

from segtool.core.errors import SegtoolError
from segtool.core.io import parse_json_text
from segtool.ops.boxes.box_table import BoxTable
from segtool.ops.boxes.fields import FIELDS
from segtool.ops.boxes.read import BOX_KEYS, _LineParser, canonical_name, find_box_fields


def read_jsonl_chunks(handle, parser, builder, first: str, lineno: int, chunk_chars: int, table: BoxTable) -> None:
    start, batch = lineno, [first]
    size = len(first)
    for number, raw in enumerate(handle, start=lineno + 1):
        batch.append(raw)
        size += len(raw)
        if size >= chunk_chars:
            _jsonl_chunk(parser, builder, batch, start, table)
            start, batch, size = number + 1, [], 0
    _jsonl_chunk(parser, builder, batch, start, table)


def _jsonl_chunk(parser, builder, batch: list[str], start: int, table: BoxTable) -> None:
    numbered = [(n, raw) for n, raw in enumerate(batch, start=start) if raw.strip()
                and not raw.lstrip().startswith("#")]
    if not numbered:
        return
    try:
        items = parse_json_text("[" + ",".join(raw for _, raw in numbered) + "]")
    except json.JSONDecodeError:
        items = [parser.line(n, raw.strip()) for n, raw in numbered]  # raises, naming the bad line
    json_items(parser, builder, items, [n for n, _ in numbered], "line", table)


def json_items(parser, builder, items: list, numbers, word: str, table: BoxTable) -> None:
    """Boxes (and group keys, kept fields) of parsed JSON items; numbers: their line numbers, or the first item's."""
    if not items:
        raise SegtoolError(f"{builder.source}: no boxes found (empty input)")
    if isinstance(numbers, int):
        numbers = range(numbers, numbers + len(items))
    numbers = np.asarray(numbers, dtype=np.int64)
    group, keep = builder.group, builder.keep
    first = items[0]
    if isinstance(first, dict):
        box_names = {name for names in FIELDS.values() for name in names} | set(BOX_KEYS)
        table.columns = table.columns or [k for k in first if canonical_name(k) not in box_names]
    boxes = _json_boxes(parser, items, numbers, word)
    keys = None
    if group is not None:
        keys = []
        for n, item in zip(numbers.tolist(), items, strict=True):
            if not isinstance(item, dict) or group not in item:
                raise SegtoolError(f"{builder.source}: {word} {n}: no key {group!r} for --group")
            keys.append(item[group])
    extra = {}
    for name in keep:
        if all(isinstance(item, dict) and name in item for item in items):
            extra[name] = np.array([item[name] for item in items], dtype=object)
    builder.add(boxes, numbers, keys, extra)


def _json_boxes(parser: _LineParser, items: list, numbers: np.ndarray, word: str) -> np.ndarray:
    first = items[0]
    try:
        if isinstance(first, dict):
            box_key = next((k for k in BOX_KEYS if k in first), None)
            if box_key is not None:
                rows = [item[box_key] for item in items]
            else:
                fmt = find_box_fields(first, parser.fmt)
                parser.fmt = fmt or parser.fmt
                by_name = {canonical_name(k): k for k in first}
                keys = [by_name[f] for f in FIELDS[fmt]]
                rows = [[item[k] for k in keys] for item in items]
        else:
            rows = items
        if {type(v) for row in rows for v in row} <= {int, float} and all(len(row) == 4 for row in rows):
            boxes = np.array(rows, dtype=np.float64).reshape(-1, 4)
            if np.isfinite(boxes).all():
                return boxes
    except (KeyError, TypeError):
        pass
    # Something unusual (a string number, a bad item, another key set): the per-item reader decides.
    return np.array([parser.json_record(item, f"{word} {n}").box for n, item in zip(numbers.tolist(), items,
                                                                                       strict=True)])
