"""``afcli store``: inspect, check and merge feature stores."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from afcli.cli.common import JsonOption, apply_json, handle_errors
from afcli.console import emit, stdout, table
from afcli.errors import RunError

app = typer.Typer(help="Inspect, verify and merge HDF5 feature stores.", no_args_is_help=True)


def _size(count: int | None) -> str:
    if count is None:
        return "virtual"
    for unit in ("B", "K", "M", "G"):
        if count < 1024 or unit == "G":
            return f"{count:.0f}{unit}" if unit == "B" else f"{count:.1f}{unit}"
        count /= 1024
    return str(count)


def _dims(shape: list[int]) -> str:
    return "×".join(str(d) for d in shape)


def _render_info(info: dict) -> None:
    kind = "virtual (merged) " if info["virtual"] else ""
    points = f"{info['num_points']} points per sample" if info["layout"] == "fixed" else "ragged point counts"
    stdout.print(
        f"[bold]{info['path']}[/]: {kind}afcli store v{info['schema']}, {info['samples']} samples, {points}, "
        f"{_size(info['file_bytes'])} on disk"
    )
    rows = []
    for array in info["arrays"]:
        extra = f"{array['range'][0]:.3g}–{array['range'][1]:.3g}" if array.get("range") else ""
        rows.append(
            (
                array["name"],
                _dims(array["shape"]),
                array["dtype"].lstrip("|"),
                _dims(array["chunks"]) if array["chunks"] else "-",
                array["compression"] or "-",
                _size(array["bytes_on_disk"]),
                extra,
            )
        )
    stdout.print(table("arrays", ["array", "shape", "dtype", "chunks", "codec", "disk", "range"], rows))
    stdout.print(table("categories", ["category", "samples"], list(info["categories"].items())))
    tables = [(name, info[name]) for name in ("queries", "texts") if info.get(name)]
    if tables:
        stdout.print(table("tables", ["table", "rows"], tables))
    stdout.print(
        table(
            "status",
            ["stage", "done", "pending", "failed"],
            [(stage, c["done"], c["pending"], c["failed"]) for stage, c in info["status"].items()],
        )
    )
    for array in info["arrays"]:
        if "channels" in array:
            stdout.print(f"{array['name']} channels: {' '.join(array['channels'])}")
    stdout.print(f"teachers: {', '.join(info['teachers']) or 'none yet'}")
    if info["queries"]:
        stdout.print(f"queries: {info['queries']} prompt-driven affordance questions")


@app.command("info")
@handle_errors
def info(store: Path = typer.Argument(..., help="Store file."), json: JsonOption = False) -> None:
    """Samples, categories, every array (shape, dtype, chunks, compression, size), teachers, stage status."""
    apply_json(json)
    from afcli.store import store_info

    emit(store_info(store), _render_info)


@app.command("verify")
@handle_errors
def verify(
    store: Path = typer.Argument(..., help="Store file."),
    fix: bool = typer.Option(
        False,
        "--fix",
        help="Mark samples that are done but were never written pending (lost in import: in every stage) for the "
        "stages to redo.",
    ),
    json: JsonOption = False,
) -> None:
    """Check schema, ids, NaN/Inf, stage status, that every chunk reads and that every done sample
    was written; exit 1 if anything is wrong."""
    apply_json(json)
    from afcli.store.inspect import reopen_unwritten, verify_store

    report = verify_store(store)
    if fix and report["unwritten"]:
        reopened = reopen_unwritten(store, report["unwritten"])
        report = verify_store(store) | {"reopened": reopened}
        counts = ", ".join(f"{count} in {stage}" for stage, count in reopened.items())
        report["notes"].append(f"samples marked pending ({counts}): run those stages again, import first")

    def render(r: dict) -> None:
        for line in r["notes"]:
            stdout.print(f"note: {line}")
        if r["ok"]:
            stdout.print(f"{r['path']}: ok ({r['samples']} samples)")
        else:
            stdout.print(
                table(
                    f"{r['path']}: {len(r['problems'])} problems",
                    ["problem"],
                    [(p,) for p in r["problems"]],
                    wrap_last=True,
                )
            )

    emit(report, render)
    if not report["ok"]:
        raise RunError(f"{len(report['problems'])} problems found", store)


@app.command("merge")
@handle_errors
def merge(
    shards: List[Path] = typer.Argument(..., help="Shard files of one job, in order."),
    out: Path = typer.Option(..., "--out", help="Merged store to write (must not exist)."),
    copy: bool = typer.Option(False, "--copy", help="Copy the data into one self-contained file instead of linking."),
    json: JsonOption = False,
) -> None:
    """Join shards into one store: virtual datasets over the shards (no copy), or --copy."""
    apply_json(json)
    from afcli.store import merge_stores

    result = merge_stores(shards, out, copy=copy)
    how = "virtual, shards stay in place" if result["virtual"] else "copied"
    emit(result, lambda r: stdout.print(f"{r['out']}: {r['samples']} samples from {r['shards']} shards ({how})"))
