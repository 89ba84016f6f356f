"""Errors the command line turns into exit code 2 with a message that says what to fix."""


class UsageError(Exception):
    """Bad usage or configuration: the message tells the user what to change."""
