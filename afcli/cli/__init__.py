"""The ``afcli`` command line: a thin Typer layer over the library (parse → one call → print).

Heavy imports (torch, h5py, trimesh) happen inside the commands so that ``afcli --help`` stays fast.
"""

from __future__ import annotations

import warnings

import typer

from afcli import __version__
from afcli.cli import caption, correspondence, data, doctor, evaluate, export, lift, pseudolabel, recipes, scenes, store
from afcli.cli.common import JsonOption, apply_json
from afcli.cli.train import stage_app
from afcli.console import options

app = typer.Typer(
    name="afcli",
    help="Lift 2D foundation-model features into 3D point clouds and find where objects can be used.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts show defaults as [auto]: plain text, never markup to strip
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(data.app, name="data")
app.add_typer(store.app, name="store")
app.command("render")(lift.render_command)
app.command("lift")(lift.lift_command)
app.command("pseudolabel")(pseudolabel.pseudolabel_command)
app.command("caption")(caption.caption_command)
app.add_typer(stage_app("pretrain", "Pre-train 3D backbones"), name="pretrain")
app.add_typer(stage_app("finetune", "Fine-tune task models"), name="finetune")
app.add_typer(export.app, name="export")
app.add_typer(recipes.app, name="recipes")
evaluate.app.command("dfc")(correspondence.dfc)
evaluate.app.command("dfc-3d")(correspondence.dfc_3d)
evaluate.app.command("scannet")(scenes.scannet)
evaluate.app.command("scene-probe")(scenes.scene_probe)
app.add_typer(evaluate.app, name="eval")
app.command("doctor")(doctor.doctor)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"afcli {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    json: JsonOption = False,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors (and --json output)."),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More detail; -vv shows tracebacks."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """afcli: 3D affordance, correspondence and open-vocabulary segmentation from 2D foundation models."""
    apply_json(json)
    options.quiet = quiet
    options.verbose = verbose
    if not verbose:  # libraries' warnings (numpy on odd files, torch on old pickles) are not afcli's one line
        warnings.simplefilter("ignore")


def main() -> None:
    app()
