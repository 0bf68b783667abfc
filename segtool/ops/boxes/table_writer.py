"""Streaming tabular output for the box commands: aligned text, CSV, or JSON lines.

Rows arrive as already-formatted strings in chunks and are written chunk by chunk, so millions
of rows (every anchor of an image) never sit in memory as text at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import IO

import numpy as np

STYLES = ("text", "csv", "jsonl")


def format_float32(values: np.ndarray) -> np.ndarray:
    """Shortest text that reads back to the same float32, per value (numpy's Dragon4, in C)."""
    return np.asarray(values, dtype=np.float32).astype(str)


class TableWriter:
    """Writes a header once, then rows of strings; ``quoted`` columns are JSON strings in JSON lines."""

    def __init__(self, out: IO[str], columns: Sequence[str], style: str = "csv", quoted: Iterable[str] = ()):
        if style not in STYLES:
            raise ValueError(f"unknown table style {style!r}")
        self.out, self.columns, self.style = out, list(columns), style
        self.quoted = [c in set(quoted) for c in self.columns]
        self.width = [max(len(c), 11) for c in self.columns]
        if style == "csv":
            out.write(",".join(self.columns) + "\n")
        elif style == "text":
            out.write(self._text_line(self.columns))

    def _text_line(self, cells: Sequence[str]) -> str:
        return "  ".join(cell.rjust(width) for cell, width in zip(cells, self.width, strict=True)).rstrip() + "\n"

    def _json_line(self, cells: Sequence[str]) -> str:
        body = ", ".join(f'"{name}": {json.dumps(cell) if quoted else cell}'
                         for name, cell, quoted in zip(self.columns, cells, self.quoted, strict=True))
        return "{" + body + "}\n"

    def write(self, rows: Iterable[Sequence[str]]) -> None:
        if self.style == "csv":
            self.out.write("".join(",".join(row) + "\n" for row in rows))
        elif self.style == "text":
            self.out.write("".join(self._text_line(row) for row in rows))
        else:
            self.out.write("".join(self._json_line(row) for row in rows))

    def close(self) -> None:
        self.out.flush()
