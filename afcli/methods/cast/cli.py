"""``afcli finetune cast``'s own options (the shared ones are afcli.cli.train's)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from afcli.cli.train import Flag, MethodOptions


def _encoder(name: str) -> str | None:
    return None if name == "none" else name


OPTIONS = MethodOptions(
    store_help="Store with queries (afcli data import: a benchmark or the built-in set); with --resume: where the "
    "run's store is now.",
    recipe_help="recipes/cast/<benchmark>-paper.yaml, -official.yaml or synth.yaml.",
    set_example="--set optim.lr=1e-4 --set loss.focal_weight=0.5",
    defaults={"epochs": 100, "batch_size": 16},
    score="aIoU",
    flags=(
        Flag(
            "backbone",
            Annotated[
                Optional[Path],
                typer.Option("--backbone", help="CMAT run (or saved Point-MAE) to start from; none: from scratch."),
            ],
            "backbone",
            str,
        ),
        Flag(
            "text",
            Annotated[
                Optional[str],
                typer.Option(
                    "--text",
                    help="Text encoder: roberta-base, minilm-l6 (offline), a hub id or folder; 'none' for no text.",
                ),
            ],
            "prompts.text",
            _encoder,
        ),
        Flag(
            "image",
            Annotated[
                Optional[str],
                typer.Option(
                    "--image",
                    help="Image encoder (a 2D teacher): dinov3:vitb16, dinov2:vitb14, effnet-lite0:s32; 'none'.",
                ),
            ],
            "prompts.image",
            _encoder,
        ),
    ),
)
