"""Exceptions raised for problems a user can fix (bad files, bad config)."""

from pathlib import Path


class SlahmrOptError(Exception):
    """Base class of every error the CLI reports as a one-line message."""


class InputError(SlahmrOptError, ValueError):
    """An input file is missing, malformed or inconsistent with the other inputs.

    The message always names the file and the problem.
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class ConfigError(SlahmrOptError, ValueError):
    """A configuration value or override is invalid."""


class OutputError(SlahmrOptError):
    """An output cannot be written: the folder is not writable, is in use by another run, or
    already holds results that were not to be replaced. The message names the path."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
