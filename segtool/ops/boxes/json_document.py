"""A JSON document of boxes (``[...]`` or ``{"boxes": [...], ...}``) read a chunk of items at a time.

json.load would hold the whole text and a Python object per box; here the text is read a few MB
at a time and the items are parsed in runs: a run ends at the last ``},`` or ``],`` of the buffer,
and if ``[`` + run + ``]`` parses, the run is whole items (a cut inside a string or a nested value
cannot parse). Otherwise, and at the end of the array, items are decoded one by one
(JSONDecoder.raw_decode), which also finds the exact line and column of bad JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from segtool.core.errors import SegtoolError
from segtool.core.io import parse_json_text
from segtool.ops.boxes.box_table import BoxTable, TableBuilder
from segtool.ops.boxes.json_chunks import json_items
from segtool.ops.boxes.read import _LineParser

_SPACE = re.compile(r"[ \t\n\r]*")
SLOW_ITEMS = 4096  # items decoded one by one before trying a run again


class _Text:
    """The document's text from ``pos`` on, read ``chunk`` characters at a time; knows line and column."""

    def __init__(self, handle, first: str, lineno: int, chunk: int, source: str):
        self.handle, self.buf, self.pos, self.chunk, self.source = handle, first, 0, chunk, source
        self.eof = False
        self.line0, self.col0 = lineno - 1, 0  # newlines before buf[0]; column of buf[0] on its line

    def more(self) -> bool:
        """Drop what is consumed and append at least a chunk (more for a long value); False at the end."""
        if self.eof:
            return False
        block = self.handle.read(max(self.chunk, len(self.buf) - self.pos))
        if not block:
            self.eof = True
            return False
        done = self.buf[:self.pos]
        newlines = done.count("\n")
        self.line0 += newlines
        self.col0 = len(done) - done.rfind("\n") - 1 if newlines else self.col0 + len(done)
        self.buf, self.pos = self.buf[self.pos:] + block, 0
        return True

    def peek(self) -> str:
        """The next character that is not white space ('' at the end), not consumed."""
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def expect(self, chars: str, what: str) -> str:
        c = self.peek()
        if not c or c not in chars:
            raise self.error(f"Expecting {what}", self.pos)
        self.pos += 1
        return c

    def value(self):
        """Decode the next value, reading on while it may be cut by the end of the buffer."""
        self.peek()
        while True:
            try:
                value, end = parse_json_text(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self.more():
                    continue
                raise self.error(exc.msg, exc.pos) from None
            if end == len(self.buf) and self.more():
                continue  # a number may go on in the next chunk
            self.pos = end
            return value

    def error(self, msg: str, pos: int) -> SegtoolError:
        before = self.buf.count("\n", 0, pos)
        column = pos - self.buf.rfind("\n", 0, pos) if before else self.col0 + pos + 1
        return SegtoolError(f"{self.source}: not valid JSON ({msg} at line {self.line0 + before + 1} "
                            f"column {column})")


def _runs(text: _Text) -> Iterator[list]:
    """Lists of consecutive items of the array whose ``[`` was just consumed, up to its ``]``."""
    if text.peek() == "]":
        text.pos += 1
        return
    while True:
        if not text.eof and len(text.buf) - text.pos < text.chunk:
            text.more()
        items = _run(text)
        if items is None:  # no run parses here: one by one for a while (this raises on bad JSON)
            items = []
            for _ in range(SLOW_ITEMS):
                items.append(text.value())
                if text.expect(",]", "',' delimiter") == "]":
                    yield items
                    return
        yield items


def _run(text: _Text) -> list | None:
    buf, start = text.buf, text.pos
    for cut in sorted({buf.rfind("},", start), buf.rfind("],", start)}, reverse=True):
        if cut < start:
            break
        try:
            items = parse_json_text("[" + buf[start:cut + 1] + "]")
        except json.JSONDecodeError:
            continue
        text.pos = cut + 2  # past the comma: the next item starts here
        return items
    return None


def _items(text: _Text) -> Iterator[list]:
    """The runs of box items of the document: a top-level array, or the "boxes" array of an object."""
    if text.expect("[{", "'[' or '{'") == "[":
        yield from _runs(text)
        return
    found = False
    if text.peek() == "}":
        text.pos += 1
    else:
        while True:
            key = text.value() if text.peek() == '"' else None
            if key is None:
                raise text.error("Expecting property name enclosed in double quotes", text.pos)
            text.expect(":", "':' delimiter")
            if key == "boxes" and text.peek() == "[":
                text.pos += 1
                yield from _runs(text)
                found = True
            elif key == "boxes":
                raise SegtoolError(f'{text.source}: a JSON object document needs a "boxes" list')
            else:
                text.value()  # another member (metadata): parsed and dropped
            if text.expect(",}", "',' delimiter") == "}":
                break
    if not found:
        raise SegtoolError(f'{text.source}: a JSON object document needs a "boxes" list')


def read_json_document(handle, parser: _LineParser, builder: TableBuilder, first: str, lineno: int,
                       chunk_chars: int, table: BoxTable) -> None:
    """Every box of a JSON document into ``builder``; its items are numbered from 1 (``item N``)."""
    text = _Text(handle, first, lineno, chunk_chars, builder.source)
    table.where_word = builder.word = "item"
    number = 1
    runs = _items(text)
    for items in runs:
        if number == 1 and items and isinstance(items[0], (int, float)) and not isinstance(items[0], bool):
            items += [item for more in runs for item in more]  # a single box [x1, y1, x2, y2]?
            if len(items) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
                items = [items]
        if items:
            json_items(parser, builder, items, number, "item", table)
            number += len(items)
    if text.peek():
        raise text.error("Extra data", text.pos)
