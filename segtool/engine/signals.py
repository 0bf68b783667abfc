"""Stop a training run cleanly on Ctrl-C (SIGINT) or SIGTERM.

The first signal only sets a flag; the loop checks it after each step, saves a resumable
checkpoint and raises ``Interrupted`` (exit 130 for SIGINT, 143 for SIGTERM). A second signal
(e.g. while a step or a save is still running) is taken as "stop now": KeyboardInterrupt for Ctrl-C,
exit 143 for SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class StopRequest:
    """Set by the handlers, read by the loop."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signum, 130)

    def request(self, signum: int) -> None:
        """Ask the loop to stop, as a signal would (also used by DDP ranks and tests)."""
        self.signum = signum


@contextmanager
def graceful_stop() -> Iterator[StopRequest]:
    """Install SIGINT/SIGTERM handlers for the block (main thread only; elsewhere a no-op)."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        if stop.requested:  # asked twice: stop now, without saving
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(EXIT_CODES.get(signum, 1))
        stop.request(signum)

    previous = {sig: signal.signal(sig, handler) for sig in EXIT_CODES}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def ignore_stop_signals_in_worker(worker_id: int) -> None:
    """DataLoader worker_init_fn: Ctrl-C, and SIGTERM from `timeout`, `kill -- -PGID` or a job scheduler, go to the
    whole process group; only the main process acts on them (it saves, then shuts its workers down). Left to
    torch's own handler, a worker dies on a SIGTERM that its parent did not send and the run ends in a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
