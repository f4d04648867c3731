"""The one exception type for mistakes a user can make and fix.

The command line prints its message alone (no traceback), so every message
must say what is wrong and how to fix it.
"""


class UserError(Exception):
    """A bad file, option or combination the user can correct."""
