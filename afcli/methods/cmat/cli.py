"""``afcli pretrain cmat``'s own options (the shared ones are afcli.cli.train's)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from afcli.cli.train import Flag, MethodOptions

OPTIONS = MethodOptions(
    store_help="Store with points and lifted features (with --resume: where the run's store is now).",
    recipe_help="recipes/cmat/pretrain-paper.yaml (the defaults) or pretrain-official.yaml.",
    set_example="--set optim.lr=3e-4 --set loss.terms=rec,aff",
    defaults={"epochs": 150, "batch_size": 128},
    flags=(
        Flag(
            "teacher",
            Annotated[
                Optional[str],
                typer.Option(
                    "--teacher",
                    help="Teacher whose lifted features to distil, named as for lift (dinov3, effnet-lite0:s16) or "
                    "by store id (dinov3-vitl16).",
                ),
            ],
            "data.teacher",
        ),
        Flag(
            "teacher_dim",
            Annotated[
                Optional[int],
                typer.Option(
                    "--teacher-dim",
                    help="Project teacher features to this many dims (fixed random matrix) to bound memory.",
                ),
            ],
            "data.teacher_dim",
        ),
    ),
)
