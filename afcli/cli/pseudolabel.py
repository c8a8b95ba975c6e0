"""``afcli pseudolabel``: functional-part labels of kept renders from box votes."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from afcli.cli.common import JsonOption, apply_json, handle_errors
from afcli.console import emit, progress, stdout, table


@handle_errors
def pseudolabel_command(
    store: Path = typer.Argument(..., help="A store with kept renders (afcli render STORE --keep-views)."),
    detector: str = typer.Option(
        "oracle",
        "--detector",
        help="oracle (boxes from the true parts, with --noise), owlv2, owlvit, grounding-dino, a hub id or a folder.",
    ),
    weights: Optional[str] = typer.Option(
        None, "--weights", help="Detector folder (default: the hub id in the cache)."
    ),
    offline: bool = typer.Option(False, "--offline", help="Never touch the network (also HF_HUB_OFFLINE=1)."),
    taxonomy: str = typer.Option(
        "builtin", "--taxonomy", help="builtin, an afcli taxonomy .json, or a folder with obj2part2function.json."
    ),
    rig: str = typer.Option("sphere", "--rig", help="Which kept renders to label (/views/<rig>)."),
    name: Optional[str] = typer.Option(None, "--name", help="Write /labels/<name> [the detector's name]."),
    noise: float = typer.Option(0.2, "--noise", help="Oracle: box jitter (share of the box side) and false-box rate."),
    boxes: int = typer.Option(4, "--boxes", help="Boxes per part and view (the code's 4 CogVLM samples)."),
    min_boxes: int = typer.Option(3, "--min-boxes", help="Views with fewer boxes do not vote."),
    score_threshold: float = typer.Option(0.0, "--score-threshold", help="Drop detector boxes scored below."),
    seed: int = typer.Option(0, "--seed", help="Seed of the oracle's noise."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Label again samples already labelled under this name."),
    gpus: int = typer.Option(1, "--gpus", help="Processes, one per GPU (with --device cpu, CPU processes)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda[:i]."),
    json: JsonOption = False,
) -> None:
    """Functional-part pseudo-labels: /labels/<name> per point and per-view masks, with IoU against true parts."""
    apply_json(json)
    from afcli.pseudolabel.stage import PseudolabelSettings, pseudolabel_store

    settings = PseudolabelSettings(
        detector, weights, offline, taxonomy, rig, name, noise, boxes, min_boxes, score_threshold, seed, device
    )
    with progress(f"pseudolabel {settings.label_name}") as (advance, set_total):
        result = pseudolabel_store(store, settings, gpus=gpus, overwrite=overwrite, advance=advance, on_total=set_total)

    def show(r: dict) -> None:
        rows = [
            ("labeller", r["labeller"]),
            ("labels", f"{r['labels']} (S, N, {len(r['functions'])})"),
            ("masks", r["masks"]),
            ("labelled", f"{r['labelled']} ({r['already_done']} done before)"),
            ("seconds", ", ".join(f"{k} {v}" for k, v in r["seconds"].items())),
        ]
        if r["overhead"] is not None:
            rows.append(("voting + masks / detector", f"{100 * r['overhead']:.1f} %"))
        stdout.print(table("pseudolabel", ["", ""], rows, header=False))
        if r["iou"]:
            stdout.print(
                table(
                    "IoU against the true parts (%)",
                    ["function", "points", "masks"],
                    [(f, q["points_iou"], q["masks_iou"]) for f, q in r["iou"].items()],
                )
            )

    emit(result, show)
