"""``afcli eval dfc`` and ``afcli eval dfc-3d``: dense functional correspondence on annotated image
pairs (the official layout) and between point clouds (registered on the eval group in afcli.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from afcli.cli.common import JsonOption, apply_json, handle_errors
from afcli.console import emit, progress, stdout, table

DFC_COLUMNS = ["model", "pairs", "dist", "PCK@23", "PCK@15", "PCK@10", "F1@23", "F1@10", "AP@23", "AP@10"]
DFC_KEYS = ["dist", "pck@23", "pck@15", "pck@10", "f1@23", "f1@10", "ap@23", "ap@10"]


def _rows(results: dict, keys: list[str]) -> list[tuple]:
    """One row per model (its pair-direction count), then its within / across category rows."""
    rows = []
    for name, scored in results.items():
        for part in ("all", "within", "across"):
            if part in scored:
                label, count = (name, str(scored["entries"])) if part == "all" else (f"  {part} category", "")
                rows.append((label, count, *(f"{scored[part][k]:.3f}" for k in keys)))
    return rows


@handle_errors
def dfc(
    pairs: Path = typer.Option(
        ...,
        "--pairs",
        help="Annotated pairs: images/, 2d_annotations/ (the official layout), selected_annotations.json.",
    ),
    checkpoint: Optional[List[Path]] = typer.Option(
        None, "--checkpoint", help="A DFC run directory; repeat to compare."
    ),
    predictions: Optional[Path] = typer.Option(
        None,
        "--predictions",
        help="Score saved correspondences instead: DIR/<action>/<obj1>|||<obj2>/<NNNN>/<trial>/"
        "transfer_<1to2|2to1>.npy (K, 2) (row, col) and discovery_<d>.npz (points1, points2, scores).",
    ),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Also chance and each run's raw backbone."),
    pred_mask: bool = typer.Option(
        False, "--pred-mask", help="Also each run with its mask head's part masks (the code's --pred_mask protocol)."
    ),
    save_predictions: Optional[Path] = typer.Option(
        None, "--save-predictions", help="Write the run's correspondences (what --predictions scores)."
    ),
    figure: Optional[Path] = typer.Option(
        None, "--figure", help="Write a PNG of query points and their transferred matches."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    json: JsonOption = False,
) -> None:
    """Dense functional correspondence: label transfer (Normalized Dist, PCK@23/15/10) and discovery (best
    F1, AP), macro over pair-directions as gather_results.py, beside chance and the raw backbone (DINO)."""
    apply_json(json)
    from afcli.errors import InputError
    from afcli.eval.dfc import run_eval, score_predictions

    if (predictions is None) == (not checkpoint):
        raise InputError("give --checkpoint RUN (one or more) or --predictions DIR")
    if predictions is not None:
        from afcli.data.dfc import load_trials

        trials = load_trials(pairs)
        result = {
            "pairs": str(pairs),
            "trials": len(trials),
            "results": {str(predictions): score_predictions(trials, predictions)},
        }
    else:
        if len(checkpoint) > 1 and (save_predictions or figure):
            raise InputError("--save-predictions and --figure take one --checkpoint")
        with progress("eval dfc") as (advance, _):
            result = run_eval(
                pairs,
                checkpoint,
                baselines=baselines,
                device=device,
                save=save_predictions,
                figure_path=figure,
                pred_mask=pred_mask,
                advance=advance,
            )

    def show(r: dict) -> None:
        stdout.print(
            table(
                f"dense functional correspondence ({r['trials']} trials, both directions)",
                DFC_COLUMNS,
                _rows(r["results"], DFC_KEYS),
            )
        )

    emit(result, show)


DFC3D_KEYS = ["dist", "pck@0.05", "pck@0.1", "pck@0.2"]


@handle_errors
def dfc_3d(
    checkpoint: List[Path] = typer.Option(..., "--checkpoint", help="A DFC run directory; repeat to compare."),
    store: Optional[Path] = typer.Option(
        None, "--store", help="Store with kept renders and true parts [the run's training store]."
    ),
    split: str = typer.Option("test", "--split", help="Objects of this split (all: every object)."),
    pairs: int = typer.Option(20, "--pairs", help="Object pairs per function at most."),
    max_points: int = typer.Option(1000, "--max-points", help="GT correspondences per pair at most."),
    taxonomy: str = typer.Option(
        "builtin", "--taxonomy", help="builtin, an afcli taxonomy .json or an official folder."
    ),
    rig: str = typer.Option("sphere", "--rig", help="Kept renders to lift from (/views/<rig>)."),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Also chance and the raw backbone."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    json: JsonOption = False,
) -> None:
    """Functional correspondence between point clouds (afcli's 3D extension): features lifted onto the
    points per function, GT from part-aligned objects; distance and PCK in units of the object's diameter."""
    apply_json(json)
    from afcli.eval.dfc3d import run_eval_3d

    with progress("eval dfc-3d") as (advance, _):
        result = run_eval_3d(
            store, checkpoint, baselines=baselines, device=device, taxonomy=taxonomy, rig=rig, split=split,
            pairs_per_function=pairs, max_points=max_points, advance=advance,
        )  # fmt: skip

    def show(r: dict) -> None:
        columns = ["model", "pairs", "dist / diameter", "PCK@0.05", "PCK@0.1", "PCK@0.2"]
        rows = _rows(r["results"], DFC3D_KEYS)
        stdout.print(table(f"functional correspondence in 3D ({r['store']})", columns, rows))

    emit(result, show)
