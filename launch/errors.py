"""Errors raised by the command line for bad user input."""


class UserError(Exception):
    """Bad input to a command: shown as one line, exit status 2."""
