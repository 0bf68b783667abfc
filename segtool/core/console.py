"""Humans read stderr, programs read stdout.

``console`` is a rich console on stderr for tables, notices and progress; ``emit_json`` and
``emit_line`` write data to stdout. ``set_quiet`` silences notices (not errors). Progress bars are
drawn only when stderr is a terminal, so logs and pipes stay clean.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

console = Console(stderr=True, highlight=False)
_state = {"quiet": False}


def set_quiet(quiet: bool) -> None:
    _state["quiet"] = bool(quiet)


def is_quiet() -> bool:
    return _state["quiet"]


def stderr_is_terminal() -> bool:
    return console.is_terminal


def notice(message: str) -> None:
    """A line for humans on stderr, dropped with --quiet."""
    if not _state["quiet"]:
        console.print(message, markup=False, soft_wrap=True)


def warn(message: str) -> None:
    """A warning on stderr; shown even with --quiet because it may change how output is read."""
    console.print(f"warning: {message}", style="yellow", markup=False, soft_wrap=True)


def print_error(message: str) -> None:
    # One line, plain text, so scripts can grep it.
    first = " ".join(str(message).split())
    sys.stderr.write(f"error: {first}\n")
    sys.stderr.flush()


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "__fspath__"):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def emit_json(obj: Any, *, indent: int | None = 2) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(json.dumps(obj, indent=indent, default=_json_default) + "\n")
    sys.stdout.flush()


def emit_line(text: str) -> None:
    sys.stdout.write(text + "\n")


class _NullProgress:
    """Stands in for rich.progress.Progress when stderr is not a terminal."""

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass

    def advance(self, *args: Any, **kwargs: Any) -> None:
        pass


@contextmanager
def progress(*extra_columns: Any, transient: bool = False, show: bool = True) -> Iterator[Any]:
    """A rich progress bar on stderr when ``show``, stderr is a terminal and not --quiet, else a no-op."""
    if not show or _state["quiet"] or not console.is_terminal:
        yield _NullProgress()
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        *extra_columns,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=transient) as bar:
        yield bar
