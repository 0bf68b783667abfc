"""Boxes of one source as arrays (BoxTable), the builder the chunk readers fill, and values aligned to it.

A box costs about 45 bytes here (four float64, its line number, its group code); no Python object
per box outlives the chunk it was parsed in (csv_chunks.py, json_chunks.py; read_table.py opens a
source and picks the reader).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segtool.core.errors import SegtoolError
from segtool.core.io import is_stdio, parse_json_text
from segtool.ops.boxes.read import _is_number, _number, _open_text


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


class _Growing:
    """An array filled in place chunk by chunk. Its capacity is allocated up front: pages never
    written cost no memory, and no chunk array is kept (freed chunks would stay in the heap)."""

    def __init__(self, capacity: int, shape: tuple, dtype):
        self.data, self.size = np.empty((capacity, *shape), dtype), 0

    def add(self, values: np.ndarray) -> None:
        end = self.size + len(values)
        if end > len(self.data):  # only when the capacity was a guess (stdin)
            grown = np.empty((max(end, 2 * len(self.data)), *self.data.shape[1:]), self.data.dtype)
            grown[:self.size] = self.data[:self.size]
            self.data = grown
        self.data[self.size:end] = values
        self.size = end

    def array(self) -> np.ndarray:
        return self.data[:self.size]


class TableBuilder:
    """Collects the chunks of one source and codes the group keys as they come.

    ``capacity``: an upper bound on the number of boxes when one is known (file size / 7: the
    shortest box line is ``0,0,0,0``), else a first guess.
    """

    def __init__(self, source: str, group: str | None, keep, capacity: int = 1 << 16):
        self.source, self.group, self.keep = source, group, list(keep)
        self.word = "line"
        self.boxes = _Growing(capacity, (4,), np.float64)
        self.lines = _Growing(capacity, (), np.int32)
        self.codes = _Growing(capacity if group is not None else 0, (), np.int32)
        self.extra: dict[str, list] = {}
        self.code_of: dict = {}
        self.key_kind: str | None = None

    def __len__(self) -> int:
        return self.boxes.size

    def add(self, boxes: np.ndarray, lines: np.ndarray, keys=None, extra: dict | None = None) -> None:
        self.boxes.add(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
        self.lines.add(np.asarray(lines, dtype=np.int32))
        if self.group is not None:
            self.codes.add(self._code(keys, lines))
        for name, values in (extra or {}).items():
            values = np.asarray(values)
            if values.dtype == object:  # JSON values: numbers (or strings) as plain arrays, not objects per box
                plain = np.array(values.tolist())
                values = plain if plain.dtype.kind in "fiub" and plain.shape == values.shape else values
            self.extra.setdefault(name, []).append(values)

    def finish(self, table: BoxTable) -> None:
        table.boxes, table.lines = self.boxes.array(), self.lines.array()
        if self.group is not None:
            table.groups, table.group_keys = self.codes.array(), list(self.code_of)
        table.extra = {name: np.concatenate(parts) for name, parts in self.extra.items()}

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



# ---- values for --scores / --classes -------------------------------------------------------------

def table_values(table: BoxTable, spec: str, option: str, *, numeric: bool = True) -> np.ndarray:
    """Values for --scores/--classes: a kept column of the table, a file, or an inline list."""
    n = len(table)
    if spec in table.extra:
        values, source = table.extra[spec], f"{table.source} column {spec!r}"
    elif is_stdio(spec):  # "-" is stdin even beside a file named "-"; it can be read once
        if table.source == "<stdin>":
            raise SegtoolError(f"{option} -: stdin already gave the boxes; give {option} a file, a column or a list")
        values, source = np.array(_read_value_file(spec), dtype=object), "<stdin>"
    elif Path(spec).is_file():
        values, source = np.array(_read_value_file(spec), dtype=object), spec
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


def _read_value_file(spec: str) -> list:
    handle, source, owned = _open_text(spec, None)
    try:
        text = handle.read()
    finally:
        if owned:
            handle.close()
    if text.lstrip().startswith("["):
        try:
            values = parse_json_text(text)
        except json.JSONDecodeError as exc:
            raise SegtoolError(f"{source}: not valid JSON ({exc.msg})") from None
        if not isinstance(values, list):
            raise SegtoolError(f"{source}: expected a JSON list of values")
        return values
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if lines and not _is_number(lines[0].split(",")[0]) and len(lines) > 1:
        lines = lines[1:]  # a header line
    return [line.split(",")[0].strip() for line in lines]
