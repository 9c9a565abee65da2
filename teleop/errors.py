"""The one error type teleop raises for bad user input (bindings, devices, datasets)."""


class TeleopError(Exception):
    """Bad input to the recorder or a device; the message names the problem in one line."""
