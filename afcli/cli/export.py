"""``afcli export``: CAST for deployment (TorchScript, ONNX) and heat maps as coloured PLY clouds."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from afcli.cli.common import JsonOption, apply_json, handle_errors
from afcli.console import emit, stdout

app = typer.Typer(
    help="Export CAST and AVAGFormer models (TorchScript, ONNX) and heat-map point clouds (PLY).", no_args_is_help=True
)


def _model_command(fmt: str, title: str, suffix: str):
    def command(
        checkpoint: Path = typer.Option(
            ..., "--checkpoint", help="A CAST or AVAGFormer run directory (its best-on-val model)."
        ),
        out: Path = typer.Option(..., "--out", help=f"File to write ({suffix})."),
        points: int = typer.Option(2048, "--points", help="CAST: points per cloud, fixed in the exported graph."),
        store: Optional[Path] = typer.Option(
            None, "--store", help="Store with a sample to check the export on [the run's training store]."
        ),
        json: JsonOption = False,
    ) -> None:
        apply_json(json)
        from afcli.export import export_run

        result = export_run(checkpoint, fmt, out, points, store)
        emit(
            result,
            lambda r: stdout.print(
                f"wrote {r['out']} ({r['format']}); inputs {r['inputs']}; max |exported - PyTorch| on "
                f"{r['checked_on']}: {r['max_abs_difference']:.2e}"
            ),
        )

    command.__doc__ = (
        f"A CAST or AVAGFormer run as {title}, checked against PyTorch on a store sample (max abs difference printed)."
    )
    return command


app.command("torchscript")(handle_errors(_model_command("torchscript", "TorchScript", ".pt")))
app.command("onnx")(handle_errors(_model_command("onnx", "ONNX (runs in onnxruntime)", ".onnx")))


@app.command("ply")
@handle_errors
def ply(
    store: Path = typer.Option(..., "--store", help="The store the predictions were made on."),
    predictions: Path = typer.Option(..., "--predictions", help="A .npz from afcli eval --save-predictions."),
    out: Path = typer.Option(..., "--out", help="Folder for <query>.pred.ply and <query>.gt.ply."),
    json: JsonOption = False,
) -> None:
    """Predicted and ground-truth heat maps as coloured point clouds (grey → red)."""
    apply_json(json)
    from afcli.export import export_ply

    emit(export_ply(store, predictions, out), lambda r: stdout.print(f"wrote {r['files']} PLY files to {r['out']}"))
