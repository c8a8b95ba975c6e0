"""``afcli finetune dfc``'s own options (the shared ones are afcli.cli.train's)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from afcli.cli.train import Flag, MethodOptions

OPTIONS = MethodOptions(
    store_help="Store with kept renders and pseudo-labels (afcli render --keep-views; afcli pseudolabel); with "
    "--resume: where the run's store is now.",
    recipe_help="recipes/dfc/objaverse-paper.yaml, objaverse-official.yaml or synth.yaml.",
    set_example="--set loss.negneg=true --set data.points=64",
    defaults={"epochs": 100, "batch_size": 50},
    flags=(
        Flag(
            "backbone",
            Annotated[
                Optional[str],
                typer.Option(
                    "--backbone", help="Frozen backbone: dinov2:vitb14 (paper), any teacher (effnet-lite0 offline)."
                ),
            ],
            "backbone.name",
            str,
        ),
        Flag(
            "labels",
            Annotated[
                Optional[str], typer.Option("--labels", help="Pseudo-labels to train on (/labels/<name>) [oracle].")
            ],
            "data.labels",
            str,
        ),
        Flag(
            "text",
            Annotated[
                Optional[str],
                typer.Option(
                    "--text", help="Function text encoder: clip:ViT-B-32@openai (paper), minilm-l6 (offline)."
                ),
            ],
            "text.encoder",
            str,
        ),
    ),
)
