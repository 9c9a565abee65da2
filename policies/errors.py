"""The one error type the policies package raises for bad input or a broken checkpoint."""


class PolicyError(Exception):
    """A policy, run or checkpoint is missing, broken or incompatible; the message names the problem."""
