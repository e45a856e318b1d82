"""Errors raised by the data package."""

from __future__ import annotations


class DatasetUnavailableError(RuntimeError):
    """The dataset's files are not on this machine.

    The message is one paragraph meant for the person running the command: which dataset, where
    it was looked for, and how to provide it. Command-line tools print it instead of a traceback.
    """


class InvalidDatasetError(ValueError):
    """Data that loads but cannot be trained on as it is (non-finite values, labels outside the classes,
    mismatched shapes or lengths, an empty split). The message is one line naming the dataset, the array and the
    problem; command-line tools print it instead of a traceback, before anything trains."""
