"""Errors that are the user's to fix: the CLI prints them as one line and exits with code 2."""


class EmavfiError(Exception):
    """A user's mistake (bad path, bad option, unreadable file): one clear line, no traceback."""
