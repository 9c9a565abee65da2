"""Errors the policies package raises for bad input or a broken checkpoint: :class:`PolicyError` and the
kinds callers tell apart."""


class PolicyError(Exception):
    """A policy, run or checkpoint is missing, broken or incompatible; the message names the problem."""


class RunNotFoundError(PolicyError):
    """The directory holds no training run (no config.json)."""


class CorruptCheckpointError(PolicyError):
    """A run's config, statistics or weights are unreadable, malformed or of another format."""


class IncompatiblePolicyError(PolicyError):
    """A policy does not fit an env: an observation it needs is missing or shaped otherwise, or its actions
    have another size."""
