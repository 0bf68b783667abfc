"""One unwrapped line for humans on stderr (dropped with --quiet), and progress bars.

``segtool.core.console.notice`` lets rich wrap at 80 columns when stderr is a file or pipe; training
logs are read with grep and tail, so each message here stays on one line.
"""

from __future__ import annotations

from contextlib import nullcontext

from segtool.core.console import _NullProgress, console, is_quiet, progress


def say(text: str) -> None:
    if not is_quiet():
        console.print(text, markup=False, highlight=False, soft_wrap=True)


def progress_bar(show: bool, *extra_columns, transient: bool = True):
    """segtool's progress bar (drawn only on a terminal) when ``show``, else a silent stand-in."""
    if not show:
        return nullcontext(_NullProgress())
    return progress(*extra_columns, transient=transient)
