"""``afcli finetune <method>``: task heads on a (pre-trained) backbone, into a run directory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer

from afcli.cli.common import JsonOption, apply_json, handle_errors
from afcli.console import emit, options, stdout, table

app = typer.Typer(help="Fine-tune task models (CAST: prompt-driven 3D affordance segmentation).", no_args_is_help=True)


@app.command("cast")
@handle_errors
def cast(
    store: Optional[Path] = typer.Option(
        None,
        "--store",
        help="Store with queries (afcli data import: a benchmark or the built-in set); with --resume: where the "
        "run's store is now.",
    ),
    recipe: Optional[Path] = typer.Option(
        None, "--recipe", help="recipes/cast/<benchmark>-paper.yaml, -official.yaml or synth.yaml."
    ),
    backbone: Optional[Path] = typer.Option(
        None, "--backbone", help="CMAT run (or saved Point-MAE) to start from; none: from scratch."
    ),
    text: Optional[str] = typer.Option(
        None, "--text", help="Text encoder: roberta-base, minilm-l6 (offline), a hub id or folder; 'none' for no text."
    ),
    image: Optional[str] = typer.Option(
        None, "--image", help="Image encoder (a 2D teacher): dinov3:vitb16, dinov2:vitb14, effnet-lite0:s32; 'none'."
    ),
    set_: Optional[List[str]] = typer.Option(
        None, "--set", help="Override any setting: --set optim.lr=1e-4 --set loss.focal_weight=0.5."
    ),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Epochs [100]; with --resume, train on to this many."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Global batch size [16]."),
    run: Optional[Path] = typer.Option(None, "--run", help="Run directory [runs/cast-<time>]."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --run from its last epoch."),
    gpus: int = typer.Option(1, "--gpus", help="Processes, one per GPU (gloo CPU processes with --device cpu)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda [auto]."),
    json: JsonOption = False,
) -> None:
    """CAST fine-tuning: geometric tokens + prompt tokens → per-point affordance heat map; best epoch on val."""
    apply_json(json)
    from afcli.config import apply_sets, load_recipe, override
    from afcli.engine.distributed import Launch
    from afcli.errors import InputError
    from afcli.finetune.cast import CASTSettings, finetune, resume_run

    plan = Launch(gpus).check()
    show = not (options.json or options.quiet)
    if resume:
        if run is None:
            raise InputError("--resume needs --run DIR (the run to continue)")
        if recipe or set_ or batch_size or backbone or text or image:
            raise InputError(
                "--resume continues a run with its recorded settings; only --epochs, --device and --store (where "
                "its store is now) may change"
            )
        result = resume_run(run, epochs=epochs, device=device, store=store, plan=plan, show_progress=show)
    else:
        settings, raw = load_recipe(recipe, CASTSettings, "finetune") if recipe is not None else (CASTSettings(), {})
        encoders = {
            key: (None if value == "none" else value)
            for key, value in (("prompts.text", text), ("prompts.image", image))
            if value is not None
        }
        settings = override(
            settings,
            epochs=epochs,
            batch_size=batch_size,
            device=device,
            **{
                "data.store": None if store is None else str(store),
                "backbone": None if backbone is None else str(backbone),
            },
        )
        for key, value in encoders.items():
            section, name = key.split(".")
            setattr(getattr(settings, section), name, value)
        apply_sets(settings, set_ or [])
        result = finetune(
            settings,
            run or Path("runs") / time.strftime("cast-%Y%m%d-%H%M%S"),
            plan=plan,
            show_progress=show,
            expected=raw.get("expected"),
        )
    history = result.pop("history")
    result["last_epoch"] = {k: v for k, v in history[-1].items() if k not in ("epoch", "step", "lr")} if history else {}

    def show_result(r: dict) -> None:
        rows = [
            ("run", r["run"]),
            ("epochs", str(r["epochs"])),
            ("steps per epoch", str(r["steps_per_epoch"])),
            ("processes", f"{r['world_size']} ({r['device']})"),
            ("best val aIoU", "-" if r["best_score"] is None else f"{100 * r['best_score']:.2f}"),
        ]
        rows += [(f"last step {term}", f"{value:.5g}") for term, value in r["last_epoch"].items()]
        stdout.print(table("finetune cast", ["", ""], rows, header=False))

    emit(result, show_result)
