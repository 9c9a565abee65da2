"""Errors raised by the simulation package for bad user input."""


class SimError(Exception):
    """Bad sim input (unknown task or robot, malformed spec, missing file): one line for the user."""


class IncompatibleEnvError(SimError):
    """An env differs from the one a policy was trained in or a dataset was recorded in
    (:func:`protege.sim.spec.check_compatible`)."""
