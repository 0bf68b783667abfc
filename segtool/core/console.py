"""Humans read stderr, programs read stdout.

``console`` is a rich console on stderr for tables, notices and progress; ``emit_json`` and
``emit_line`` write data to stdout. ``set_quiet`` silences notices (not errors). ``progress`` draws rich bars when
stderr is a terminal and plain lines every ~30 s when it is a log or a pipe.
"""

from __future__ import annotations

import json
import os
import sys
import time
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
    """Stands in for rich.progress.Progress when nothing may be shown (--quiet, ``show=False``)."""

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass

    def advance(self, *args: Any, **kwargs: Any) -> None:
        pass


def plain_interval() -> float:
    """Seconds between plain progress lines (``SEGTOOL_PROGRESS_INTERVAL``, default 30)."""
    try:
        return max(0.0, float(os.environ.get("SEGTOOL_PROGRESS_INTERVAL", "30")))
    except ValueError:
        return 30.0


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``2 files`` (``many`` for irregular words: ``plural(n, "class", "classes")``)."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def format_duration(seconds: float) -> str:
    """3725 -> '1 h 02 min', 95 -> '1 min 35 s', 8.2 -> '8 s'."""
    seconds = max(0.0, float(seconds))
    if seconds >= 3600:
        hours, rest = divmod(round(seconds / 60), 60)
        return f"{hours} h {rest:02d} min"
    if seconds >= 60:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest:02d} s"
    return f"{seconds:.0f} s"


class PlainProgress:
    """Progress for logs and pipes: one plain line per task at most every ``interval`` seconds
    (done/total, rate, ETA, the task's ``stats`` field), so long work never looks hung."""

    def __init__(self, interval: float | None = None, clock=time.monotonic):
        self.interval = plain_interval() if interval is None else interval
        self.clock = clock
        self.tasks: dict[int, dict] = {}

    def add_task(self, description: str = "", total: float | None = None, completed: float = 0,
                 unit: str = "it", **fields: Any) -> int:
        now = self.clock()
        task_id = len(self.tasks)
        self.tasks[task_id] = {"description": description, "total": total, "completed": completed, "start": now,
                               "base": completed, "last": now, "unit": unit, "fields": fields}
        return task_id

    def update(self, task_id: int, *, advance: float = 0, completed: float | None = None,
               total: float | None = None, description: str | None = None, **fields: Any) -> None:
        task = self.tasks.get(task_id)
        if task is None:
            return
        if completed is not None:
            task["completed"] = completed
        task["completed"] += advance
        if total is not None:
            task["total"] = total
        if description is not None:
            task["description"] = description
        task["fields"].update(fields)
        now = self.clock()
        if now - task["last"] >= self.interval:
            task["last"] = now
            console.print(self.line(task, now), markup=False, highlight=False, soft_wrap=True)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    @staticmethod
    def line(task: dict, now: float) -> str:
        done, total = task["completed"], task["total"]
        elapsed = now - task["start"]
        rate = (done - task["base"]) / elapsed if elapsed > 0 else 0.0
        text = f"{task['description']}: {done:g}" + (f"/{total:g}" if total else "")
        text += f"  {rate:.2f} {task['unit']}/s" if rate < 10 else f"  {rate:.0f} {task['unit']}/s"
        if total and rate > 0:
            text += f"  ETA {format_duration((total - done) / rate)}"
        text += f"  elapsed {format_duration(elapsed)}"
        stats = task["fields"].get("stats") or task["fields"].get("losses")
        return f"{text}  {stats}" if stats else text


def plain_progress() -> Any:
    """Plain lines when stderr is a log or pipe, else nothing: for work inside another live bar
    (validation inside a training epoch), which rich cannot nest."""
    if _state["quiet"] or console.is_terminal:
        return _NullProgress()
    return PlainProgress()


@contextmanager
def progress(*extra_columns: Any, transient: bool = False, show: bool = True) -> Iterator[Any]:
    """Rich progress bars on a terminal; plain lines every ~30 s (``PlainProgress``) when stderr is a
    log or a pipe; nothing when ``show`` is False or with --quiet. Every long command uses this."""
    if not show or _state["quiet"]:
        yield _NullProgress()
        return
    if not console.is_terminal:
        yield PlainProgress()
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
