"""CMAT pre-training settings (cmat-cast-3d-affordance.md §3.2, Eq. 1–6).

The defaults are the paper's recipe (``recipes/cmat/pretrain-paper.yaml``); the authors' code is
``recipes/cmat/pretrain-official.yaml``. Both are settings of this one implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from afcli.config import check_numbers
from afcli.engine.trainer import OptimSettings
from afcli.errors import InputError
from afcli.losses.cmat import CMATLossConfig
from afcli.models.point_mae import PointMAEConfig
from afcli.runtime import pick_device
from afcli.teachers.base import store_id

SAMPLINGS = ("fps", "fps_random_start", "random")
AUGMENTATIONS = ("none", "scale_translate")


@dataclass
class DataSettings:
    store: str | None = None
    teacher: str | None = None  # as lift names it (effnet-lite0, dinov3:vitl16) or the store id; the run records the id
    num_points: int = 2048
    sampling: str = "fps"  # how to pick num_points of a larger sample
    augment: str = "none"
    teacher_dim: int | None = None  # project teacher features to this many dims (fixed random matrix)
    workers: int = 0

    @property
    def teacher_id(self) -> str | None:
        return None if self.teacher is None else store_id(self.teacher)


@dataclass
class CMATSettings:
    model: PointMAEConfig = field(default_factory=PointMAEConfig)
    loss: CMATLossConfig = field(default_factory=CMATLossConfig)
    optim: OptimSettings = field(default_factory=lambda: OptimSettings(lr=1e-4, weight_decay=0.05, warmup_epochs=15))
    data: DataSettings = field(default_factory=DataSettings)
    epochs: int = 150
    batch_size: int = 128  # global, whatever the number of processes
    seed: int = 0
    device: str = "auto"
    amp: bool = True

    def check(self) -> "CMATSettings":
        check_numbers(self)
        self.optim.check()
        self.model.check()
        self.loss.check()
        if self.data.store is None:
            raise InputError("no store given (--store S.h5)")
        if "aff" in self.loss.enabled and self.data.teacher is None:
            raise InputError(
                "the affinity loss needs lifted features: --teacher (e.g. dinov3-vitl16), or --set loss.terms=rec"
            )
        if self.data.sampling not in SAMPLINGS or self.data.augment not in AUGMENTATIONS:
            raise InputError(
                f"data.sampling must be one of {', '.join(SAMPLINGS)} and data.augment one of "
                f"{', '.join(AUGMENTATIONS)}"
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError("epochs and batch_size must be positive")
        pick_device(self.device)
        return self
