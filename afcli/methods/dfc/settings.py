"""Dense functional correspondence settings. Defaults are the paper's (§4.3: DINOv2-B, CLIP text,
MLP 1024, 50 pairs of 128 positive and 128 negative points, Adam at 1e-4, λ_spatial 10, λ_mask 1,
random-colour backgrounds); the released code's differences are its recipe's settings
(recipes/dfc/_base-official.yaml: AdamW with weight decay 0.01, the shared block projection, the
bg–bg negatives and the code's anchor index, the loss divided by 12, solid-or-gradient backgrounds
with noise, 100 epochs of 1000 steps)."""

from __future__ import annotations

from dataclasses import dataclass, field

from afcli.config import check_numbers
from afcli.engine.trainer import OptimSettings
from afcli.errors import InputError
from afcli.losses.dfc import ANCHORS
from afcli.models.dfc import DFCConfig
from afcli.runtime import pick_device

BACKGROUNDS = ("white", "colour", "code")


@dataclass
class DFCBackbone:
    name: str = "dinov2:vitb14"  # any teacher of the table (afcli.teachers); frozen
    weights: str | None = None
    blocks: int = 3  # the last K blocks without the final norm (ViT teachers); 1 for the others
    size: int = 224


@dataclass
class DFCText:
    encoder: str = "clip:ViT-B-32@openai"  # CLIP's text tower (paper, code); minilm-l6 offline
    weights: str | None = None


@dataclass
class DFCData:
    store: str | None = None
    labels: str = "oracle"  # /labels/<name> and /views/<rig>/<name> of afcli pseudolabel
    rig: str = "sphere"
    points: int = 128  # positive and negative points per image; correspondences per view pair
    min_part_pixels: int = 32  # a (view, function) with fewer part pixels is no training item (code: > 32)
    # white: the render as it is; colour: the paper's random-colour background; code: the released
    # RandomMaskingAug (solid or two-colour gradient, then ±50 uint8 noise half the time, wrapping).
    background: str = "colour"
    # Run the frozen backbone once per view before training (only with white backgrounds): CPU-sized runs.
    cache_grids: bool = False
    cache_samples: int = 512  # samples whose views stay in memory (the code's load_in_ram)
    workers: int = 0


@dataclass
class DFCLoss:
    functional: bool = True
    spatial: bool = True
    mask: bool = True  # needs model.mask_head
    spatial_weight: float = 10.0
    mask_weight: float = 1.0
    tau: float = 0.1
    anchor: str = "paper"  # paper (Eq. 1) or code (its index slip: image-1 positive j against P2⁻)
    negneg: bool = False  # the code's extra bg–bg negatives
    normalise: bool = False  # the code divides the total by 1 + λ_mask + λ_spatial


@dataclass
class DFCSettings:
    model: DFCConfig = field(default_factory=DFCConfig)
    backbone: DFCBackbone = field(default_factory=DFCBackbone)
    text: DFCText = field(default_factory=DFCText)
    data: DFCData = field(default_factory=DFCData)
    loss: DFCLoss = field(default_factory=DFCLoss)
    # Adam at 1e-4 with no schedule (paper; the code: AdamW, weight decay 0.01, no schedule).
    optim: OptimSettings = field(
        default_factory=lambda: OptimSettings(lr=1e-4, weight_decay=0.0, warmup_epochs=0, min_lr=1e-4)
    )
    epochs: int = 100
    steps_per_epoch: int = 1000  # the code's train_samples: iterations per epoch
    batch_size: int = 50  # functional pairs (and as many spatial pairs) per step
    seed: int = 0
    device: str = "auto"
    amp: bool = False

    def check(self) -> "DFCSettings":
        check_numbers(self)
        self.optim.check()
        self.model.check()
        if self.data.store is None:
            raise InputError("no store given (--store S.h5: afcli render --keep-views, then afcli pseudolabel)")
        for name, value, allowed in (
            ("data.background", self.data.background, BACKGROUNDS),
            ("loss.anchor", self.loss.anchor, ANCHORS),
        ):
            if value not in allowed:
                raise InputError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if self.data.cache_grids and self.data.background != "white":
            raise InputError("data.cache_grids needs data.background: white (augmented images change the features)")
        if self.loss.mask and not self.model.mask_head:
            raise InputError("loss.mask needs model.mask_head: true")
        if not (self.loss.functional or self.loss.spatial):
            raise InputError("at least one of loss.functional and loss.spatial must be on")
        if self.epochs < 1 or self.batch_size < 1 or self.steps_per_epoch < 1 or self.data.points < 2:
            raise InputError("epochs, batch_size, steps_per_epoch must be positive and data.points at least 2")
        pick_device(self.device)
        return self
