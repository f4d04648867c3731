"""The one exception type for mistakes a user can make and fix.

The command line prints its message alone (no traceback), so every message
must say what is wrong and how to fix it.
"""


class UserError(Exception):
    """A bad file, option or combination the user can correct."""


class Interrupted(Exception):
    """Training stopped by Ctrl-C or SIGTERM after saving a checkpoint; the message says how to resume."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # 128 + the signal's number, as a shell reports it


class Terminated(BaseException):
    """SIGTERM outside training (docker stop, a spot reclaim): unwinds like Ctrl-C, so unfinished results are removed
    and finished ones kept. A BaseException, so that no `except Exception` on the way swallows it."""
