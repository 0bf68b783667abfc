"""Box files read straight into arrays, for inputs of millions of boxes (``iou``, ``nms``).

numpy's C ``loadtxt`` parses CSV a few MB at a time and the C ``json`` module parses JSON lines a
chunk at a time, so no Python object per box outlives its chunk: a box costs about 45 bytes (four
float64, its line number, its group code). The per-line reader of read.py stays the reference: a
chunk that numpy cannot take as it is (comments, quotes, a bad or non-finite field) is read by it,
so every message names the same file and line as before. A JSON document is parsed whole.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from segtool.core.errors import SegtoolError
from segtool.core.io import is_stdio
from segtool.ops.boxes.fields import FIELDS, check_format
from segtool.ops.boxes.read import (
    BOX_KEYS,
    Layout,
    _document_items,
    _is_number,
    _LineParser,
    _number,
    _open_text,
    _read_value_file,
    canonical_name,
    find_box_fields,
)

CHUNK_CHARS = 1 << 22  # text parsed per numpy call: a few MB, whatever the file size


@dataclass
class BoxTable:
    """The boxes of one source as arrays: numbers as written (``fmt``), line numbers, groups, kept columns."""

    source: str
    fmt: str
    boxes: np.ndarray  # (n, 4) float64, in ``fmt``
    lines: np.ndarray  # (n,) int32: line (or item) of each box in the source
    where_word: str = "line"
    group_name: str | None = None
    groups: np.ndarray | None = None  # (n,) int32 code per box; group_keys[code] is the key as read
    group_keys: list = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # every non-box column of the source
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # the kept ones, values as read

    def __len__(self) -> int:
        return self.boxes.shape[0]

    def where(self, i: int) -> str:
        return f"{self.where_word} {int(self.lines[i])}"

    def xyxy(self, fix: bool = False) -> np.ndarray:
        """The boxes as validated float64 xyxy (same checks and messages as formats.validate_boxes)."""
        b = self.boxes
        if self.fmt == "xyxy":
            xyxy = b.copy()
        elif self.fmt == "xywh":  # torchvision's box_convert arithmetic, so values agree to the bit
            xyxy = np.stack((b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]), 1)
        else:
            half_w, half_h = 0.5 * b[:, 2], 0.5 * b[:, 3]
            xyxy = np.stack((b[:, 0] - half_w, b[:, 1] - half_h, b[:, 0] + half_w, b[:, 1] + half_h), 1)
        bad = ~np.isfinite(xyxy).all(axis=1)
        if bad.any():
            i = int(bad.argmax())
            raise SegtoolError(f"{self.source}: {self.where(i)}: non-finite value in {b[i].tolist()}")
        inverted = (xyxy[:, 2] < xyxy[:, 0]) | (xyxy[:, 3] < xyxy[:, 1])
        if inverted.any():
            if not fix:
                i = int(inverted.argmax())
                what = "x2 < x1 or y2 < y1" if self.fmt == "xyxy" else "negative width or height"
                raise SegtoolError(f"{self.source}: {self.where(i)}: inverted box ({what}) {b[i].tolist()}; "
                                   "use --fix to swap the corners")
            xyxy = np.concatenate((np.minimum(xyxy[:, :2], xyxy[:, 2:]), np.maximum(xyxy[:, :2], xyxy[:, 2:])), 1)
        return xyxy


class _Builder:
    """Collects the chunks of one source and codes the group keys as they come."""

    def __init__(self, source: str, group: str | None, keep):
        self.source, self.group, self.keep = source, group, list(keep)
        self.word = "line"
        self.boxes, self.lines, self.codes = [], [], []
        self.extra: dict[str, list] = {}
        self.code_of: dict = {}
        self.key_kind: str | None = None

    def add(self, boxes: np.ndarray, lines: np.ndarray, keys=None, extra: dict | None = None) -> None:
        self.boxes.append(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
        self.lines.append(np.asarray(lines, dtype=np.int32))
        if self.group is not None:
            self.codes.append(self._code(keys, lines))
        for name, values in (extra or {}).items():
            self.extra.setdefault(name, []).append(np.asarray(values))

    def _code(self, keys, lines) -> np.ndarray:
        if isinstance(keys, np.ndarray):  # CSV text: numpy finds the distinct keys, Python codes only those
            unique, inverse = np.unique(keys, return_inverse=True)
            codes = np.array([self.code_of.setdefault(k.strip(), len(self.code_of)) for k in unique.tolist()],
                             dtype=np.int32)
            self.key_kind = "string"
            return codes[inverse.reshape(-1)]
        codes = np.empty(len(keys), dtype=np.int32)
        for i, key in enumerate(keys):
            key = key.strip() if isinstance(key, str) else key
            kind = _key_kind(key)
            if kind is None or (self.key_kind is not None and kind != self.key_kind):
                wanted = f", but earlier keys are {self.key_kind}s" if kind is not None else ""
                raise SegtoolError(f"{self.source}: {self.word} {int(lines[i])}: group {self.group!r} is "
                                   f"{json.dumps(key)}, {'a ' + kind if kind else 'not a string or a number'}"
                                   f"{wanted}")
            self.key_kind = kind
            codes[i] = self.code_of.setdefault(key, len(self.code_of))
        return codes


def _key_kind(key) -> str | None:
    if isinstance(key, str):
        return "string"
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return "number"
    return None


def read_box_table(path: str | Path, fmt: str | None = None, *, group: str | None = None, keep=(),
                   stdin: IO[str] | None = None, chunk_chars: int = CHUNK_CHARS) -> BoxTable:
    """Read every box of a source into a BoxTable; ``fmt=None``: named fields decide, plain numbers are xyxy.

    ``group`` names the column (CSV header name, JSON key, or a 0-based column index) whose value
    groups the boxes; ``keep`` names columns to keep (e.g. a score column; missing ones are skipped).
    """
    if fmt is not None:
        check_format(fmt)
    handle, source, owned = _open_text(path, stdin)
    builder = _Builder(source, group, keep)
    parser = _LineParser(source, fmt)
    table = BoxTable(source, fmt or "xyxy", np.empty((0, 4)), np.empty(0, np.int32), group_name=group)
    try:
        lineno, first = _first_line(handle)
        if first is None:
            raise SegtoolError(f"{source}: no boxes found (empty input)")
        text = first.strip()
        if text[0] in "[{" and not parser.first_is_json_line(text):
            doc = _load_document(source, "\n" * (lineno - 1) + first + handle.read())
            table.where_word = builder.word = "item"
            _json_items(parser, builder, _document_items(doc, source), 1, "item", table)
        elif text[0] in "[{":
            parser.layout = Layout("jsonl")
            _read_jsonl(handle, parser, builder, first, lineno, chunk_chars, table)
        else:
            _read_csv(handle, parser, builder, text, lineno, chunk_chars, table)
    except UnicodeDecodeError:
        raise SegtoolError(f"{source}: not a text file (not UTF-8)") from None
    finally:
        if owned:
            handle.close()
    if not builder.boxes or sum(len(b) for b in builder.boxes) == 0:
        raise SegtoolError(f"{source}: no boxes found (empty input)")
    table.fmt = parser.fmt or "xyxy"
    table.boxes, table.lines = np.concatenate(builder.boxes), np.concatenate(builder.lines)
    if group is not None:
        table.groups, table.group_keys = np.concatenate(builder.codes), list(builder.code_of)
    table.extra = {name: np.concatenate(parts) for name, parts in builder.extra.items()}
    return table


def _first_line(handle) -> tuple[int, str | None]:
    """The first line that is neither blank nor a comment, with its number."""
    for number, line in enumerate(handle, start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            return number, line
    return 0, None


def _load_document(source: str, text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SegtoolError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


# ---- CSV -----------------------------------------------------------------------------------------

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


def _read_csv(handle, parser: _LineParser, builder: _Builder, text: str, lineno: int, chunk_chars: int,
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


def _slow_csv(parser: _LineParser, builder: _Builder, lines, group_at, names, table: BoxTable) -> None:
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


# ---- JSON ----------------------------------------------------------------------------------------

def _read_jsonl(handle, parser, builder, first: str, lineno: int, chunk_chars: int, table: BoxTable) -> None:
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
        items = json.loads("[" + ",".join(raw for _, raw in numbered) + "]")
    except json.JSONDecodeError:
        items = [parser.line(n, raw.strip()) for n, raw in numbered]  # raises, naming the bad line
    _json_items(parser, builder, items, [n for n, _ in numbered], "line", table)


def _json_items(parser, builder, items: list, numbers, word: str, table: BoxTable) -> None:
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


# ---- values for --scores / --classes -------------------------------------------------------------

def table_values(table: BoxTable, spec: str, option: str, *, numeric: bool = True) -> np.ndarray:
    """Values for --scores/--classes: a kept column of the table, a file, or an inline list (as read.column_values)."""
    n = len(table)
    if spec in table.extra:
        values, source = table.extra[spec], f"{table.source} column {spec!r}"
    elif Path(spec).is_file() or (is_stdio(spec) and table.source != "<stdin>"):
        values, source = np.array(_read_value_file(spec), dtype=object), spec if not is_stdio(spec) else "<stdin>"
    elif "," in spec or _is_number(spec):
        values, source = np.array([v.strip() for v in spec.split(",")]), option
    else:
        columns = ", ".join(table.columns) or "none"
        raise SegtoolError(f"{option} {spec!r}: not a file, not a column of {table.source} "
                           f"(columns: {columns}) and not a comma-separated list")
    if len(values) != n:
        raise SegtoolError(f"{source}: has {len(values)} values for {n} boxes")
    if not numeric:
        return values
    try:
        numbers = values.astype(np.float64)
        if np.isfinite(numbers).all() and values.dtype != object:
            return numbers
    except (TypeError, ValueError):
        pass
    return np.array([_number(v, source, f"value {i + 1}") for i, v in enumerate(values.tolist())])
