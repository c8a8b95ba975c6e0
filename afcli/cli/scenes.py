"""``afcli eval scannet`` and ``afcli eval scene-probe``: ScanNet metrics of any codebase's saved
predictions, and the open-vocabulary probe of lifted scene features (registered on the eval group in
afcli.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from afcli.cli.common import JsonOption, apply_json, handle_errors
from afcli.console import emit, stdout, table


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


@handle_errors
def scannet(
    predictions: Path = typer.Option(
        ...,
        "--predictions",
        help="Saved outputs: instance <scene>.txt (<mask file> <label id> <score> per line, the benchmark's "
        "submission format), or per-vertex labels <scene>.txt / labels or (V, C) scores <scene>.npy.",
    ),
    gt: Path = typer.Option(
        ...,
        "--gt",
        help="Ground truth: a store from afcli data import --benchmark scannet, or a folder of the evaluator's "
        "<scene>.txt (label*1000 + instance + 1 per vertex).",
    ),
    benchmark: str = typer.Option("scannet20", "--benchmark", help="scannet20 (NYU40 ids) or scannet200."),
    classes: str = typer.Option(
        "benchmark",
        "--classes",
        help="Instance classes: benchmark (18 for ScanNet20: no wall, floor) or sole (17: also no otherfurniture).",
    ),
    json: JsonOption = False,
) -> None:
    """ScanNet instance AP / AP50 / AP25 (the released evaluator's rules) or semantic mIoU / mAcc with
    the foreground f-mIoU / f-mAcc of the RegionPLC protocol, of any codebase's saved predictions."""
    apply_json(json)
    from afcli.eval.scannet import score_predictions

    result = score_predictions(predictions, gt, benchmark, classes)

    def show(r: dict) -> None:
        title = f"{r['benchmark']} {r['kind']} segmentation, {r['scenes']} scenes"
        if r["kind"] == "instance":
            rows = [(n, _percent(c["ap"]), _percent(c["ap50"]), _percent(c["ap25"])) for n, c in r["classes"].items()]
            rows.append(("mean", _percent(r["ap"]), _percent(r["ap50"]), _percent(r["ap25"])))
            for split, m in r.get("splits", {}).items():
                rows.append((f"{split} classes", _percent(m["ap"]), _percent(m["ap50"]), _percent(m["ap25"])))
            stdout.print(table(title, ["class", "AP", "AP50", "AP25"], rows))
        else:
            rows = [(n, str(c["points"]), _percent(c["iou"]), _percent(c["acc"])) for n, c in r["classes"].items()]
            rows.append(("mean", "", _percent(r["miou"]), _percent(r["macc"])))
            rows.append(("foreground mean", "", _percent(r["f_miou"]), _percent(r["f_macc"])))
            stdout.print(table(title, ["class", "points", "IoU", "Acc"], rows))

    emit(result, show)


@handle_errors
def scene_probe(
    store: Path = typer.Option(..., "--store", help="A captioned, lifted scene store."),
    features: Optional[str] = typer.Option(
        None, "--features", help="Lifted teacher (a /features/<id> name or a teacher spec) [the only one lifted]."
    ),
    encoder: str = typer.Option("minilm-l6", "--encoder", help="Text space: an embedding column of the text table."),
    steps: int = typer.Option(300, "--steps", help="Adam steps of each probe."),
    seed: int = typer.Option(0, "--seed", help="Seeds the point draws, the probes and chance."),
    save_predictions: Optional[Path] = typer.Option(
        None, "--save-predictions", help="Write validation scenes' (V, 20) scores for afcli eval scannet."
    ),
    figure: Optional[Path] = typer.Option(
        None, "--figure", help="Write a top-down picture of a scene with its captions."
    ),
    scene: Optional[str] = typer.Option(None, "--scene", help="The pictured scene [the first validation scene]."),
    json: JsonOption = False,
) -> None:
    """Open-vocabulary probe of lifted scene features: a linear map into a text space trained from
    captions only, asked for ScanNet20 class prompts; f-mIoU / f-mAcc on validation scenes beside
    chance and a linear probe trained on the labels."""
    apply_json(json)
    from afcli.eval.scene_probe import OVProbeSettings, open_vocabulary_probe, room_figure
    from afcli.teachers import lifted_teacher

    settings = OVProbeSettings(lifted_teacher(store, features) if features else _only_features(store), encoder)
    settings.steps, settings.seed = steps, seed
    result = open_vocabulary_probe(store, settings, save_predictions)
    if figure is not None:
        result["figure"] = str(room_figure(store, figure, scene))

    def show(r: dict) -> None:
        rows = [
            (name, _percent(m["f_miou"]), _percent(m["f_macc"]), _percent(m["f_miou_present"]))
            for name, m in r["results"].items()
        ]
        title = (
            f"open-vocabulary probe of {r['features']} in the {r['encoder']} text space "
            f"({r['train_scenes']} training, {r['val_scenes']} validation scenes; "
            f"{len(r['classes_present'])} of 17 foreground classes present)"
        )
        stdout.print(table(title, ["probe", "f-mIoU", "f-mAcc", "f-mIoU present"], rows))
        if "figure" in r:
            stdout.print(f"figure: {r['figure']}")

    emit(result, show)


def _only_features(store: Path) -> str:
    from afcli.errors import InputError
    from afcli.store.inspect import lifted_teachers
    from afcli.store.schema import open_store

    with open_store(store) as f:
        lifted = lifted_teachers(f)
    if len(lifted) != 1:
        raise InputError(f"give --features: the store holds {lifted or 'no lifted features'}", store)
    return lifted[0]
