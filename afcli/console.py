"""Output for people (Rich tables, progress bars on stderr) and for scripts (``--json`` on stdout)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from rich import box
from rich.console import Console
from rich.table import Table


@dataclass
class OutputOptions:
    json: bool = False
    quiet: bool = False
    verbose: int = 0


options = OutputOptions()
stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def emit(result: Any, render: Callable[[Any], None]) -> None:
    """Print a command's result: JSON for scripts, else ``render(result)`` unless ``--quiet``."""
    if options.json:
        stdout.out(json.dumps(result, indent=2, sort_keys=False, default=str), highlight=False)
    elif not options.quiet:
        render(result)


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    header: bool = True,
    wrap_last: bool = False,
) -> Table:
    """A Rich table; ``wrap_last`` wraps the last column (sentences: problems, errors) instead of
    cutting it at the terminal's edge."""
    view = Table(
        title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, show_header=header
    )
    for i, column in enumerate(columns):
        view.add_column(column, no_wrap=not (wrap_last and i == len(columns) - 1))
    for row in rows:
        view.add_row(*("" if cell is None else str(cell) for cell in row))
    return view


def note(message: str) -> None:
    """A human-facing remark on stderr (hidden by --quiet and --json)."""
    if not options.quiet and not options.json:
        stderr.print(message)


@contextmanager
def progress(description: str) -> Iterator[tuple[Callable[[], None], Callable[[int], None]]]:
    """A Rich progress bar on stderr: yields ``(advance, set_total)``; ``advance(info)`` also shows
    a line of live numbers (losses, throughput) beside the bar.

    The bar appears at ``set_total``, once the work is planned, so that input errors found while
    planning stay a single line. Silent with --quiet / --json.
    """
    if options.quiet or options.json:
        yield (lambda info=None: None), (lambda total: None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=stderr,
    )
    task = bar.add_task(description, total=None, info="")
    started = False

    def set_total(total: int) -> None:
        nonlocal started
        bar.update(task, total=total)
        if total and not started:  # nothing to do: no bar
            bar.start()
            started = True

    def advance(info: str | None = None) -> None:
        if info is None:
            bar.advance(task)
        else:
            bar.update(task, advance=1, info=info)

    try:
        yield advance, set_total
    except BaseException:
        bar.live.transient = True  # leave just the one-line error behind
        raise
    finally:
        if started:
            bar.stop()
