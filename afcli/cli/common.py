"""Pieces every verb shares: the ``--json`` option and the error → exit-code translation."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from typing import Annotated, Callable

import typer
from rich.markup import escape

from afcli.console import options, stderr
from afcli.errors import AfcliError

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout (for scripts).")]


def apply_json(value: bool) -> None:
    """``--json`` works before the verb (global) and after it (per command)."""
    if value:
        options.json = True


def printable(text: str) -> str:
    """File names that are not UTF-8 (kept by Python as surrogates) shown as escapes, not a crash."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _exit_now_if_a_write_failed(code: int) -> None:
    """A store whose writes failed must not reach HDF5's shutdown, which would crash on it
    (afcli.store.writer.StoreWriter.__exit__); the file is already consistent on disk."""
    writer = sys.modules.get("afcli.store.writer")
    if writer is not None and writer.abandoned_writes():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def handle_errors(command: Callable) -> Callable:
    """Turn library errors into one line on stderr and the documented exit code (2 input, 1 run)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except AfcliError as error:
            if options.verbose > 1:
                traceback.print_exc()
            message = printable(" ".join(str(error).split()))
            stderr.print(f"[bold red]error:[/] {escape(message)}")
            _exit_now_if_a_write_failed(error.exit_code)
            raise typer.Exit(error.exit_code) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as error:  # a bug or an environment failure: still one line, exit 1
            if options.verbose > 1:
                traceback.print_exc()
            message = printable(" ".join(f"{type(error).__name__}: {error}".split()))
            stderr.print(f"[bold red]error:[/] {escape(message)} (run with -vv for the traceback)")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            stderr.print("interrupted; finished samples are kept, re-run to resume")
            raise typer.Exit(130) from None

    return wrapper
