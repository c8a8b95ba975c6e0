"""``afcli recipes``: the recipe shelf, and ``afcli recipes show FILE``: one recipe fully resolved."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from afcli.cli.common import JsonOption, apply_json, handle_errors
from afcli.console import emit, stdout, table

app = typer.Typer(
    help="Recipes: list every recipe (method, source, the paper's numbers); show one resolved.",
    invoke_without_command=True,
)


@app.callback()
@handle_errors
def recipes(
    ctx: typer.Context,
    folder: Optional[Path] = typer.Option(None, "--folder", help="Where the recipes are [./recipes, else afcli's]."),
    json: JsonOption = False,
) -> None:
    """Every recipe with its method, stage, source (paper / official code) and expected numbers."""
    if ctx.invoked_subcommand is not None:
        return
    apply_json(json)
    from afcli.recipes import default_folder, expected_text, shelf

    folder = folder or default_folder()
    rows = shelf(folder)

    def show_rows(rs: list) -> None:
        def name(r: dict) -> str:  # the folder names the method, but for a stage's recipes (cmat/lift.yaml)
            folder = r["recipe"].split("/")[0]
            return r["recipe"] if r["method"] == folder else f"{r['recipe']} ({r['method']})"

        stdout.print(
            table(
                f"recipes in {folder}",
                ["recipe", "source", "paper's numbers (%)"],
                [
                    (name(r), r["source"].replace("official-code", "code"), expected_text(r["expected"]) or "-")
                    for r in rs
                ],
                wrap_last=True,
            )
        )

    emit(rows, show_rows)


@app.command("show")
@handle_errors
def show(
    recipe: Path = typer.Argument(..., help="A recipe file, e.g. recipes/cast/piad-seen-paper.yaml."),
    json: JsonOption = False,
) -> None:
    """The recipe resolved: its base chain merged, every setting with the defaults filled in (YAML)."""
    apply_json(json)
    from afcli.recipes import show as resolve

    def print_yaml(r: dict) -> None:
        import yaml

        stdout.print(yaml.safe_dump(r, sort_keys=False), end="", markup=False, highlight=False)

    emit(resolve(recipe), print_yaml)
