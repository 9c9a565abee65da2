"""The errors the datasets package raises: DatasetError, and one subclass per failure a caller may handle apart."""

from __future__ import annotations


class DatasetError(Exception):
    """A dataset is missing, broken, incompatible or misused; the message names the problem."""


class DatasetNotFoundError(DatasetError):
    """No dataset (of the expected format) at the given path."""


class CorruptDatasetError(DatasetError):
    """A dataset is damaged: broken layout, unreadable attrs or metadata, a missing or altered chunk."""


class DatasetLockedError(DatasetError):
    """Another writer holds the dataset's lock."""


class IncompatibleDatasetError(DatasetError):
    """Episodes or datasets that do not fit together: another rate, robot, task or action space, other keys,
    dtypes or shapes, or a format (version) the data cannot be read as or written to."""


class MissingExtraError(DatasetError):
    """An optional dependency is not installed; ``extra`` names the protege extra that brings it."""

    def __init__(self, message: str, extra: str) -> None:
        super().__init__(message)
        self.extra = extra

    def __reduce__(self) -> tuple[type[MissingExtraError], tuple[str, str]]:
        return type(self), (str(self), self.extra)
