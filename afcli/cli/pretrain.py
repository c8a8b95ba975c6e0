"""``afcli pretrain <method>``: self-supervised pre-training of 3D backbones into a run directory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer

from afcli.cli.common import JsonOption, apply_json, handle_errors
from afcli.console import emit, options, stdout, table

app = typer.Typer(
    help="Pre-train 3D backbones (CMAT: Point-MAE distilled from lifted 2D features).", no_args_is_help=True
)


@app.command("cmat")
@handle_errors
def cmat(
    store: Optional[Path] = typer.Option(
        None, "--store", help="Store with points and lifted features (with --resume: where the run's store is now)."
    ),
    teacher: Optional[str] = typer.Option(
        None,
        "--teacher",
        help="Teacher whose lifted features to distil, named as for lift (dinov3, effnet-lite0:s16) or by store "
        "id (dinov3-vitl16).",
    ),
    recipe: Optional[Path] = typer.Option(
        None, "--recipe", help="recipes/cmat/pretrain-paper.yaml (the defaults) or pretrain-official.yaml."
    ),
    set_: Optional[List[str]] = typer.Option(
        None, "--set", help="Override any setting: --set optim.lr=3e-4 --set loss.terms=rec,aff."
    ),
    teacher_dim: Optional[int] = typer.Option(
        None, "--teacher-dim", help="Project teacher features to this many dims (fixed random matrix) to bound memory."
    ),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Epochs [150]; with --resume, train on to this many."),
    batch_size: Optional[int] = typer.Option(
        None, "--batch-size", help="Global batch size, split over all processes [128]."
    ),
    run: Optional[Path] = typer.Option(None, "--run", help="Run directory [runs/cmat-<time>]."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --run from its last epoch."),
    gpus: int = typer.Option(
        1, "--gpus", help="Processes per node, one per GPU (gloo CPU processes with --device cpu)."
    ),
    nodes: int = typer.Option(1, "--nodes", help="Nodes in the job."),
    node_rank: int = typer.Option(0, "--node-rank", help="This node's rank."),
    master_addr: str = typer.Option("127.0.0.1", "--master-addr", help="Address of node 0 (multi-node)."),
    master_port: Optional[int] = typer.Option(
        None, "--master-port", help="Port on node 0 [a free one; 29500 multi-node]."
    ),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda [auto]."),
    workers: Optional[int] = typer.Option(None, "--workers", help="DataLoader workers per process [0]."),
    json: JsonOption = False,
) -> None:
    """CMAT pre-training: reconstruction + affinity to the 2D teacher + KoLeo diversity."""
    apply_json(json)
    from afcli.config import apply_sets, load_recipe, override
    from afcli.engine.distributed import Launch
    from afcli.errors import InputError
    from afcli.pretrain.cmat import CMATSettings, pretrain, resume_run

    plan = Launch(gpus, nodes, node_rank, master_addr, master_port).check()
    show = not (options.json or options.quiet)  # ranks run in fresh processes: tell them
    if resume:
        if run is None:
            raise InputError("--resume needs --run DIR (the run to continue)")
        if teacher or recipe or set_ or batch_size or teacher_dim or workers is not None:
            raise InputError(
                "--resume continues a run with its recorded settings; only --epochs, --device and --store (where "
                "its store is now) may change"
            )
        result = resume_run(run, epochs=epochs, device=device, store=store, plan=plan, show_progress=show)
    else:
        settings = load_recipe(recipe, CMATSettings, "pretrain")[0] if recipe is not None else CMATSettings()
        settings = override(
            settings,
            epochs=epochs,
            batch_size=batch_size,
            device=device,
            **{
                "data.store": None if store is None else str(store),
                "data.teacher": teacher,
                "data.workers": workers,
                "data.teacher_dim": teacher_dim,
            },
        )
        apply_sets(settings, set_ or [])
        result = pretrain(
            settings, run or Path("runs") / time.strftime("cmat-%Y%m%d-%H%M%S"), plan=plan, show_progress=show
        )
    last = [r for r in result.pop("history") if r["epoch"] == result["epochs"] - 1]
    terms = [key for key in (last[0] if last else {}) if key not in ("epoch", "step", "lr")]
    result["last_epoch"] = {term: sum(r[term] for r in last) / len(last) for term in terms}

    def show(r: dict) -> None:
        rows = [
            ("run", r["run"]),
            ("epochs", str(r["epochs"])),
            ("steps per epoch", str(r["steps_per_epoch"])),
            ("processes", f"{r['world_size']} ({r['device']})"),
        ]
        rows += [(f"last epoch {term}", f"{value:.5g}") for term, value in r["last_epoch"].items()]
        stdout.print(table("pretrain cmat", ["", ""], rows, header=False))

    emit(result, show)
