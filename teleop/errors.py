"""Errors teleop raises for bad user input (bindings, devices, datasets): :class:`TeleopError` and the kinds
callers tell apart."""


class TeleopError(Exception):
    """Bad input to the recorder or a device; the message names the problem in one line."""


class MissingExtraError(TeleopError):
    """A feature needs an optional dependency that is not installed; ``extra`` names what to install."""

    def __init__(self, feature: str, extra: str) -> None:
        super().__init__(f"{feature} needs pip install 'protege[{extra}]'")
        self.extra = extra
