"""Errors a user can act on: the CLI prints them without a traceback and exits non-zero."""


class UserError(Exception):
    """Bad input or environment; the message names the file, the field and the fix."""

    exit_code = 2
