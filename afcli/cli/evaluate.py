"""``afcli eval <benchmark>``: scores of trained models (today: the linear part probe)."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from afcli.cli.common import JsonOption, apply_json, handle_errors
from afcli.console import emit, progress, stdout, table

app = typer.Typer(help="Evaluate: affordance metrics of saved predictions, linear part probe of backbones.", no_args_is_help=True)


@app.command("affordance")
@handle_errors
def affordance(
    predictions: Path = typer.Option(..., "--predictions", help="A .npz with pred (S, P), gt (S, P) and optionally object, affordance (S,)."),
    protocol: str = typer.Option("standard", "--protocol", help="standard (LASO / IAGNet / GREAT, per sample) or cmat-pooled (the CMAT code)."),
    json: JsonOption = False,
) -> None:
    """Score saved heat-map predictions with aIoU, AUC, SIM and MAE, as the benchmarks' code does."""
    apply_json(json)
    from afcli.metrics.affordance import evaluate, load_predictions

    arrays = load_predictions(predictions)
    result = evaluate(arrays["pred"], arrays["gt"], arrays.get("object"), arrays.get("affordance"), protocol)

    def show(r: dict) -> None:
        def row(name, m):
            return (name, str(m["samples"]), f"{100 * m['aiou']:.2f}", f"{100 * m['auc']:.2f}", f"{m['sim']:.4f}", f"{m['mae']:.4f}")

        columns = ["", "samples", "aIoU %", "AUC %", "SIM", "MAE"]
        stdout.print(table(f"affordance metrics ({r['protocol']} protocol)", columns, [row("overall", r["overall"])]))
        for key, title in (("per_object", "per object"), ("per_affordance", "per affordance")):
            if key in r:
                stdout.print(table(title, columns, [row(name, m) for name, m in r[key].items()]))
        if r.get("empty_gt_samples"):
            stdout.print(f"{r['empty_gt_samples']} samples with empty ground truth: left out of aIoU and AUC, counted in SIM and MAE")

    emit(result, show)


@app.command("probe")
@handle_errors
def probe(
    checkpoint: List[Path] = typer.Option(..., "--checkpoint", help="Run directory or saved model; repeat to compare several."),
    store: Path = typer.Option(..., "--store", help="Store with part labels (e.g. the built-in set)."),
    random_init: bool = typer.Option(True, "--random-init/--no-random-init", help="Also probe a randomly initialised backbone of the same shape."),
    test_fraction: float = typer.Option(0.25, "--test-fraction", help="Share of shapes held out (by id hash)."),
    steps: int = typer.Option(300, "--steps", help="Full-batch Adam steps of the linear probe."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    json: JsonOption = False,
) -> None:
    """Linear probe of frozen per-point features onto part labels; mIoU on held-out shapes."""
    apply_json(json)
    from afcli.eval.probe import ProbeSettings, linear_probe, random_backbone, resolve_backbone
    from afcli.models.point_mae import PointMAE

    settings = ProbeSettings(test_fraction=test_fraction, steps=steps)
    models = [(str(path), PointMAE.from_pretrained(resolve_backbone(path))) for path in checkpoint]
    if random_init:
        models.insert(0, ("random init", random_backbone(models[0][1].config, settings.seed)))
    results = []
    with progress("probe") as (advance, set_total):
        set_total(len(models))
        for name, model in models:
            results.append({"model": name, **linear_probe(model, store, settings, device)})
            advance()

    def show(rows: list) -> None:
        stdout.print(table(f"linear part probe ({rows[0]['test_shapes']} held-out shapes, {rows[0]['classes']} part classes)",
                           ["model", "mIoU", "accuracy"], [(r["model"], f"{r['miou']:.4f}", f"{r['accuracy']:.4f}") for r in rows]))

    emit(results, show)
