"""The two ways a command can fail, and their exit codes.

Every error the user can cause is an :class:`InputError` (exit 2) whose message names the file and the
problem on one line; anything else that goes wrong at run time is a :class:`RunError` (exit 1).
"""

from __future__ import annotations

from pathlib import Path


class AfcliError(Exception):
    exit_code = 1

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class InputError(AfcliError):
    """Bad usage or bad input: a missing or corrupt file, wrong shapes, NaNs, an unknown name."""

    exit_code = 2


class RunError(AfcliError):
    """A failure while doing valid work (a check that found problems, a broken dependency)."""

    exit_code = 1
