"""Errors raised by the simulation package for bad user input."""


class SimError(Exception):
    """Bad sim input (unknown task or robot, malformed spec, missing file): one line for the user."""
