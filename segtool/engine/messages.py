"""One unwrapped line for humans on stderr (dropped with --quiet).

``segtool.core.console.notice`` lets rich wrap at 80 columns when stderr is a file or pipe; training
logs are read with grep and tail, so each message here stays on one line.
"""

from __future__ import annotations

from segtool.core.console import console, is_quiet


def say(text: str) -> None:
    if not is_quiet():
        console.print(text, markup=False, highlight=False, soft_wrap=True)
