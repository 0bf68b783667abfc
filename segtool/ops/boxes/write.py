"""Writing boxes back in the layout their input had (see read.py), other fields passed through."""

from __future__ import annotations

import json
from typing import IO

from segtool.ops.boxes.fields import FIELDS
from segtool.ops.boxes.read import BOX_KEYS, Layout, Record, canonical_name


def format_number(value: float) -> str:
    """Shortest text that reads back to the same float; integral values without '.0'."""
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def plain_number(value: float) -> int | float:
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


class RecordWriter:
    """Writes converted boxes in the layout their input had (CSV with/without header, JSON lines,
    JSON document), with the other fields passed through unchanged."""

    def __init__(self, out: IO[str], layout: Layout, in_fmt: str, out_fmt: str):
        self.out, self.layout, self.in_fmt, self.out_fmt = out, layout, in_fmt, out_fmt
        self._started = False
        self._items: list = []

    def _start(self) -> None:
        self._started = True
        layout = self.layout
        if layout.kind == "csv" and layout.header:
            names = list(layout.header)
            for position, name in zip(layout.box_columns, FIELDS[self.out_fmt], strict=True):
                names[position] = name
            self.out.write(layout.separator.join(names) + "\n")

    def write(self, records: list[Record], boxes: list[list[float]]) -> None:
        if not self._started:
            self._start()
        kind = self.layout.kind
        if kind == "csv":
            self._write_csv(records, boxes)
        else:
            items = [self._json_item(r, b) for r, b in zip(records, boxes, strict=True)]
            if kind == "jsonl":
                self.out.write("".join(json.dumps(item) + "\n" for item in items))
            else:
                self._items.extend(items)

    def _write_csv(self, records: list[Record], boxes: list[list[float]]) -> None:
        sep, layout = self.layout.separator, self.layout
        lines = []
        for record, box in zip(records, boxes, strict=True):
            text = [format_number(v) for v in box]
            if layout.header:
                fields = list(record.fields)
                for position, value in zip(layout.box_columns, text, strict=True):
                    fields[position] = value
                text = [_csv_quote(f) for f in fields] if sep == "," else fields
            lines.append(sep.join(text) + "\n")
        self.out.write("".join(lines))

    def _json_item(self, record: Record, box: list[float]):
        numbers = [plain_number(v) for v in box]
        obj = record.fields
        if not isinstance(obj, dict):
            return numbers
        for key in BOX_KEYS:
            if key in obj:
                return {**obj, key: numbers}
        old = {k for k in obj if canonical_name(k) in FIELDS[self.in_fmt]}
        converted: dict = {}
        for key, value in obj.items():
            if key in old:
                if not any(k in converted for k in FIELDS[self.out_fmt]):
                    converted.update(zip(FIELDS[self.out_fmt], numbers, strict=True))
            else:
                converted[key] = value
        return converted

    def close(self) -> None:
        if not self._started:
            self._start()
        if self.layout.kind == "json":
            doc = self.layout.document
            if isinstance(doc, dict):
                self.out.write(json.dumps({**doc, "boxes": self._items}) + "\n")
            else:
                body = ",\n".join("  " + json.dumps(item) for item in self._items)
                self.out.write("[\n" + body + "\n]\n")
        self.out.flush()


def _csv_quote(text: str) -> str:
    return f'"{text}"' if ("," in text and not text.startswith('"')) else text
