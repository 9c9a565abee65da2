"""The one error type the datasets package raises for bad input or a broken dataset."""


class DatasetError(Exception):
    """A dataset is missing, broken, incompatible or misused; the message names the problem."""
