"""The one exception type for mistakes a user can cause.

Library code raises ``SegtoolError`` with a message that names the file or option and what is
wrong. The CLI turns it into ``error: <message>`` on stderr and exit status 1 (no traceback unless
``SEGTOOL_DEBUG=1``).
"""

from __future__ import annotations


class SegtoolError(Exception):
    """A problem the user can fix (bad input, missing file, unavailable device...)."""

    exit_code = 1


class Interrupted(SegtoolError):
    """Raised when a long job stops on SIGINT/SIGTERM after saving its state."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code
