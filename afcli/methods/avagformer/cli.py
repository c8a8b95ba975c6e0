"""``afcli finetune avagformer``'s own options (the shared ones are afcli.cli.train's)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from afcli.cli.train import Flag, MethodOptions

OPTIONS = MethodOptions(
    store_help="Image store with sounds (afcli data import ROOT --benchmark avagd); with --resume: where the "
    "run's store is now.",
    recipe_help="recipes/avagformer/avagd-paper.yaml, avagd-official.yaml or synth.yaml.",
    set_example="--set optim.lr=1e-4 --set audio.padding=repeat",
    defaults={"epochs": 25, "batch_size": 24},
    score="(mIoU_f + mIoU_d) / 2",
    flags=(
        Flag(
            "image_backbone",
            Annotated[
                Optional[str],
                typer.Option(
                    "--image-backbone",
                    help="Image backbone: pvt-v2:b5 (paper), pvt-v2:b0..b4, effnet-lite0, effnet-lite1.",
                ),
            ],
            "image_backbone.name",
            str,
        ),
        Flag(
            "audio",
            Annotated[
                Optional[str],
                typer.Option("--audio", help="Audio encoder: vggish (paper), soundnet8[:conv5|conv6|conv7] (offline)."),
            ],
            "audio.encoder",
            str,
        ),
    ),
)
