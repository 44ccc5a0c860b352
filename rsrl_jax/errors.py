"""Errors a user can fix, told apart from bugs.

A CLI prints a `UserError` as one line on stderr (no traceback) and exits with its
`exit_code`: 2 for a usage or config mistake (`ConfigError`), 1 for data, weights or a run's
state (`DataError`). Any other exception is unexpected and keeps its traceback. Both are
ValueErrors, so library callers that catch ValueError keep working.
"""


class UserError(Exception):
    """A mistake the user can fix; the message names the culprit and what to do."""

    exit_code = 1


class ConfigError(UserError, ValueError):
    """A bad flag, config field or command-line usage (exit status 2)."""

    exit_code = 2


class DataError(UserError, ValueError):
    """Bad input data, weights file, or workdir / run state (exit status 1)."""

    exit_code = 1


class NotFound(DataError, FileNotFoundError):
    """A file or folder the command needs (a workdir, a run's file, a weights file) is missing.

    Also a FileNotFoundError, so callers that catch that keep working.
    """
