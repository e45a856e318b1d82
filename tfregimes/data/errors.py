"""Errors raised by the data package."""

from __future__ import annotations


class DatasetUnavailableError(RuntimeError):
    """The dataset's files are not on this machine.

    The message is one paragraph meant for the person running the command: which dataset, where
    it was looked for, and how to provide it. Command-line tools print it instead of a traceback.
    """
