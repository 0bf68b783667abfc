"""Reading boxes from CSV, JSON and JSON-lines text (write.py writes them back in the same layout).

Accepted input (a file, or ``-`` for stdin):

- CSV: four numbers per line (``x1,y1,x2,y2`` in the chosen format), or a header naming the box
  columns (``x1,y1,x2,y2`` / ``x,y,w,h`` / ``cx,cy,w,h``; ``xmin,ymin,xmax,ymax`` and
  ``width,height`` also work) plus any other columns, e.g. ``score,label``. Whitespace works as a
  separator too; blank lines and ``#`` comments are skipped.
- JSON lines: one ``[x1, y1, x2, y2]`` list or one object per line (named fields as above, or a
  ``"box"`` / ``"bbox"`` list).
- A JSON document: a list of such lists or objects, or ``{"boxes": [...]}``.

Every problem is a ``SegtoolError`` naming the source and the line (or item) and what is wrong.
Lines are parsed one at a time, so ``box-convert`` streams CSV and JSON lines of any length.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from segtool.core.errors import SegtoolError
from segtool.core.io import is_stdio, parse_json_text
from segtool.ops.boxes.fields import FIELDS, FORMATS, check_format

if TYPE_CHECKING:
    from torch import Tensor

ALIASES = {"xmin": "x1", "ymin": "y1", "xmax": "x2", "ymax": "y2", "width": "w", "height": "h"}
BOX_KEYS = ("box", "bbox")


@dataclass
class Layout:
    """How the input was written, so that outputs can be written the same way."""

    kind: str = "csv"  # csv | jsonl | json
    header: list[str] | None = None  # CSV header as written
    box_columns: list[int] | None = None  # positions of the four box fields in the header
    separator: str = ","
    document: Any = None  # the parsed JSON document (kind == "json")


@dataclass
class Record:
    """One box: where it came from, its four numbers and the rest of its fields as read."""

    where: str
    box: list[float]
    fields: list[str] | dict | None = None  # CSV fields, or the JSON object


@dataclass
class BoxSet:
    """All boxes of one source in one format, with the extra columns (score, label, ...) by name."""

    source: str
    fmt: str
    records: list[Record]
    layout: Layout
    extra: dict[str, list] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)

    def tensor(self, dtype=None) -> Tensor:
        import torch

        return torch.tensor([r.box for r in self.records], dtype=dtype or torch.float64).reshape(-1, 4)


def _number(text: Any, source: str, where: str) -> float:
    if isinstance(text, bool) or not isinstance(text, (int, float, str)):
        raise SegtoolError(f"{source}: {where}: expected a number, got {json.dumps(text)}")
    try:
        value = float(text)
    except ValueError:
        raise SegtoolError(f"{source}: {where}: non-numeric field {str(text).strip()!r}") from None
    if not math.isfinite(value):
        raise SegtoolError(f"{source}: {where}: non-finite value {str(text).strip()!r}")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def canonical_name(name: str) -> str:
    name = str(name).strip().lower()
    return ALIASES.get(name, name)


def find_box_fields(names: Iterable[str], fmt: str | None) -> str | None:
    """The format whose four field names all occur in ``names`` (``fmt`` if given), else None."""
    present = {canonical_name(n) for n in names}
    for candidate in ([fmt] if fmt else ["xyxy", "cxcywh", "xywh"]):
        if set(FIELDS[candidate]) <= present:
            return candidate
    return None


def _missing_fields_error(source: str, where: str, names: Iterable[str], fmt: str | None) -> SegtoolError:
    wanted = " or ".join(",".join(FIELDS[f]) for f in ([fmt] if fmt else FORMATS))
    return SegtoolError(f"{source}: {where}: no box fields among ({', '.join(map(str, names))}); expected {wanted}")


def _split(text: str) -> tuple[list[str], str]:
    if "," not in text:
        return text.split(), " "
    if '"' in text:
        return [f.strip() for f in next(csv.reader([text]))], ","
    return [f.strip() for f in text.split(",")], ","


class _LineParser:
    """Turns the lines of one source into Records; decides CSV vs JSON from the first line."""

    def __init__(self, source: str, fmt: str | None, where_word: str = "line", allow_header: bool = True):
        self.source = source
        self.fmt = fmt
        self.where_word = where_word
        self.allow_header = allow_header
        self.layout: Layout | None = None

    def _where(self, lineno: int) -> str:
        return f"{self.where_word} {lineno}"

    # --- CSV -----------------------------------------------------------------------------
    def _csv(self, lineno: int, text: str) -> Record | None:
        fields, separator = _split(text)
        where = self._where(lineno)
        if self.layout is None:
            self.layout = Layout("csv", separator=separator)
            if not all(_is_number(f) for f in fields):
                if any(_is_number(f) for f in fields) or not self.allow_header:
                    bad = next(f for f in fields if not _is_number(f))
                    raise SegtoolError(f"{self.source}: {where}: non-numeric field {bad!r}")
                self._set_header(fields, where)
                return None
        layout = self.layout
        if layout.header is None:
            if len(fields) != 4:
                names = ",".join(FIELDS[self.fmt or "xyxy"])
                raise SegtoolError(f"{self.source}: {where}: expected 4 columns ({names}), got {len(fields)}")
            return Record(where, [_number(f, self.source, where) for f in fields], fields)
        if len(fields) != len(layout.header):
            raise SegtoolError(f"{self.source}: {where}: expected {len(layout.header)} columns like the header "
                               f"({','.join(layout.header)}), got {len(fields)}")
        box = [_number(fields[i], self.source, where) for i in layout.box_columns]
        return Record(where, box, fields)

    def _set_header(self, names: list[str], where: str) -> None:
        fmt = find_box_fields(names, self.fmt)
        if fmt is None:
            raise _missing_fields_error(self.source, f"{where} (header)", names, self.fmt)
        self.fmt = fmt
        canonical = [canonical_name(n) for n in names]
        self.layout.header = names
        self.layout.box_columns = [canonical.index(f) for f in FIELDS[fmt]]

    # --- JSON ----------------------------------------------------------------------------
    def json_record(self, item: Any, where: str) -> Record:
        if isinstance(item, list):
            if len(item) != 4:
                names = ",".join(FIELDS[self.fmt or "xyxy"])
                raise SegtoolError(f"{self.source}: {where}: expected 4 numbers ({names}), got {len(item)}")
            return Record(where, [_number(v, self.source, where) for v in item], None)
        if not isinstance(item, dict):
            raise SegtoolError(f"{self.source}: {where}: expected a list of 4 numbers or an object, "
                               f"got {json.dumps(item)[:60]}")
        for key in BOX_KEYS:
            if key in item:
                inner = self.json_record(item[key], where)
                return Record(where, inner.box, item)
        fmt = find_box_fields(item, self.fmt)
        if fmt is None:
            raise _missing_fields_error(self.source, where, item.keys(), self.fmt)
        self.fmt = fmt
        by_name = {canonical_name(k): v for k, v in item.items()}
        return Record(where, [_number(by_name[f], self.source, where) for f in FIELDS[fmt]], item)

    def _jsonl(self, lineno: int, text: str) -> Record:
        try:
            item = parse_json_text(text)
        except json.JSONDecodeError as exc:
            raise SegtoolError(f"{self.source}: {self._where(lineno)}: not valid JSON ({exc.msg})") from None
        return self.json_record(item, self._where(lineno))

    # --- entry point ---------------------------------------------------------------------
    def first_is_json_line(self, text: str) -> bool:
        """Is the first line a whole JSON-lines record (rather than the start of a document)?"""
        try:
            item = parse_json_text(text)
        except json.JSONDecodeError:
            return False
        if isinstance(item, dict):
            return "boxes" not in item
        return isinstance(item, list) and bool(item) and not any(isinstance(v, (list, dict)) for v in item)

    def line(self, lineno: int, text: str) -> Record | None:
        if self.layout is not None and self.layout.kind == "jsonl":
            return self._jsonl(lineno, text)
        return self._csv(lineno, text)


def _open_text(path: str | Path, stdin: IO[str] | None) -> tuple[IO[str], str, bool]:
    if is_stdio(path):
        return (stdin or sys.stdin), "<stdin>", False
    p = Path(path)
    if p.is_dir():
        raise SegtoolError(f"{p}: is a directory, expected a box file")
    try:
        return open(p, encoding="utf-8-sig"), str(p), True
    except FileNotFoundError:
        raise SegtoolError(f"{p}: no such file") from None
    except OSError as exc:
        raise SegtoolError(f"{p}: cannot read ({exc.strerror})") from None


def _document_items(doc: Any, source: str) -> list:
    if isinstance(doc, dict):
        if not isinstance(doc.get("boxes"), list):
            raise SegtoolError(f'{source}: a JSON object document needs a "boxes" list')
        return doc["boxes"]
    if isinstance(doc, list):
        if len(doc) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in doc):
            return [doc]  # a single box
        return doc
    raise SegtoolError(f"{source}: expected a JSON list of boxes, got {type(doc).__name__}")


def stream_records(path: str | Path, fmt: str | None = None, *, stdin: IO[str] | None = None,
                   source: str | None = None, where_word: str = "line",
                   allow_header: bool = True) -> tuple[_LineParser, Iterator[Record]]:
    """Open a box source and iterate its records lazily (JSON documents are read whole).

    Returns the parser (its ``layout`` and ``fmt`` are known once the first record is read) and
    the iterator. An input without any box is an error.
    """
    if fmt is not None:
        check_format(fmt)
    handle, opened_as, owned = _open_text(path, stdin)
    source = source or opened_as
    parser = _LineParser(source, fmt, where_word, allow_header)

    def records() -> Iterator[Record]:
        count = 0
        try:
            for lineno, raw in enumerate(handle, start=1):
                text = raw.strip()
                if not text or text.startswith("#"):
                    continue
                if parser.layout is None and text[0] in "[{":
                    if not parser.first_is_json_line(text):
                        yield from _document(lineno, raw)
                        return
                    parser.layout = Layout("jsonl")
                record = parser.line(lineno, text)
                if record is not None:
                    count += 1
                    yield record
        except UnicodeDecodeError:
            raise SegtoolError(f"{source}: not a text file (not UTF-8)") from None
        finally:
            if owned:
                handle.close()
        if count == 0:
            raise SegtoolError(f"{source}: no boxes found (empty input)")

    def _document(first_line: int, first: str) -> Iterator[Record]:
        text = "\n" * (first_line - 1) + first + handle.read()
        try:
            doc = parse_json_text(text)
        except json.JSONDecodeError as exc:
            raise SegtoolError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
        items = _document_items(doc, source)
        if not items:
            raise SegtoolError(f"{source}: no boxes found (empty input)")
        parser.layout = Layout("json", document=doc)
        for i, item in enumerate(items, start=1):
            yield parser.json_record(item, f"item {i}")

    return parser, records()


def read_boxes(path: str | Path, fmt: str | None = None, *, stdin: IO[str] | None = None) -> BoxSet:
    """Read every box of a source; ``fmt=None`` means named fields decide, plain numbers are xyxy."""
    parser, records = stream_records(path, fmt, stdin=stdin)
    items = list(records)
    box_set = BoxSet(parser.source, parser.fmt or "xyxy", items, parser.layout)
    box_set.extra = _extra_columns(box_set)
    return box_set


def boxes_from_text(texts: Iterable[str], fmt: str | None = None, source: str = "--box") -> BoxSet:
    """Boxes given inline, e.g. ``--box 10,20,50,60`` (one box per text, numbers only)."""
    lines = "\n".join(t.replace("\n", " ") or "?" for t in texts)
    parser, records = stream_records("-", fmt, stdin=io.StringIO(lines), source=source, where_word="box",
                                     allow_header=False)
    items = list(records)
    return BoxSet(source, parser.fmt or "xyxy", items, parser.layout)


def _extra_columns(box_set: BoxSet) -> dict[str, list]:
    layout = box_set.layout
    if layout.kind == "csv" and layout.header:
        keep = [i for i in range(len(layout.header)) if i not in layout.box_columns]
        return {layout.header[i].strip(): [r.fields[i] for r in box_set.records] for i in keep}
    columns: dict[str, list] = {}
    objects = [r.fields for r in box_set.records]
    if objects and all(isinstance(o, dict) for o in objects):
        box_names = set(FIELDS[box_set.fmt]) | set(BOX_KEYS)
        for key in objects[0]:
            if canonical_name(key) not in box_names and all(key in o for o in objects):
                columns[key] = [o[key] for o in objects]
    return columns
