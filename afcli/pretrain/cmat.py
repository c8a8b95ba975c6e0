"""``afcli pretrain cmat``: the CMAT Stage 2 task — Point-MAE distilled from lifted 2D features.

The defaults are the paper's recipe (``recipes/cmat/pretrain-paper.yaml``); the authors' code is
``recipes/cmat/pretrain-official.yaml``. Both are settings of this one implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from afcli.config import check_numbers
from afcli.console import note
from afcli.engine.distributed import Launch, external_rank, launch, launched_externally, pick_device
from afcli.engine.run import settings_for_run, train_rank, write_run
from afcli.engine.trainer import OptimSettings
from afcli.errors import InputError
from afcli.losses.cmat import CMATLossConfig, cmat_loss
from afcli.models.point_mae import PointMAE, PointMAEConfig
from afcli.teachers import lifted_teacher
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


class PretrainPoints(torch.utils.data.Dataset):
    """Samples of a store as CMAT batches: points, teacher features and the per-sample noise for
    masking and drop path, all seeded by ``(seed, epoch, index)``."""

    def __init__(self, settings: CMATSettings):
        from afcli.store import StoreDataset

        data = settings.data
        arrays = ["points/xyz"] + ([f"features/{data.teacher_id}"] if data.teacher_id else [])
        require = f"lift-{data.teacher_id}" if data.teacher_id else "import"
        self.base = StoreDataset(data.store, arrays, require=require)
        self.settings = settings
        self.epoch = 0
        self.projection = None
        if data.teacher_id and data.teacher_dim:
            with torch.no_grad():
                dim = self.base[0][f"features/{data.teacher_id}"].shape[-1]
                generator = torch.Generator().manual_seed(settings.seed)
                self.projection = torch.randn(dim, data.teacher_dim, generator=generator) / data.teacher_dim**0.5

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        settings, data = self.settings, self.settings.data
        rng = np.random.default_rng([settings.seed, self.epoch, index])
        item = self.base[index]
        points = item["points/xyz"].float()
        keep = self._sample(points, rng)
        points = points[keep]
        if data.augment == "scale_translate":  # Point-MAE's PointcloudScaleAndTranslate, per axis
            scale = torch.from_numpy(rng.uniform(2 / 3, 3 / 2, 3)).float()
            shift = torch.from_numpy(rng.uniform(-0.2, 0.2, 3)).float()
            points = points * scale + shift
        model = settings.model
        out = {
            "points": points,
            "mask_noise": torch.from_numpy(rng.random(model.num_group)).float(),
            "drop_noise": torch.from_numpy(rng.random((model.depth + model.decoder_depth, 2))).float(),
        }
        if data.teacher_id:
            teacher = item[f"features/{data.teacher_id}"][keep].float()
            out["teacher"] = teacher @ self.projection if self.projection is not None else teacher
        return out

    def _sample(self, points: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        count, wanted = points.shape[0], self.settings.data.num_points
        if count == wanted:
            return torch.arange(count)
        if count < wanted:  # pad with random repeats (the CMAT code)
            return torch.from_numpy(np.concatenate([np.arange(count), rng.choice(count, wanted - count)]))
        if self.settings.data.sampling == "random":
            return torch.from_numpy(rng.choice(count, wanted, replace=False))
        from afcli.ops import fps

        start = int(rng.integers(count)) if self.settings.data.sampling == "fps_random_start" else 0
        return fps(points.unsqueeze(0), wanted, start=start)[0]


class CMATTask:
    def __init__(self, settings: CMATSettings):
        self.settings = settings
        self.find_unused_parameters = "rec" not in settings.loss.enabled

    def build_model(self) -> PointMAE:
        return PointMAE(self.settings.model)

    def dataset(self) -> PretrainPoints:
        return PretrainPoints(self.settings)

    def loss(self, model, batch: dict) -> dict[str, torch.Tensor]:
        drop = batch["drop_noise"] if self.settings.model.drop_path > 0 else None
        out = model(batch["points"], batch["mask_noise"], drop)
        # The losses (cdist, logs of small distances, Gram matrices) in float32 even under AMP.
        with torch.autocast(batch["points"].device.type, enabled=False):
            out = {key: value.float() if torch.is_floating_point(value) else value for key, value in out.items()}
            teacher = batch.get("teacher")
            return cmat_loss(out, None if teacher is None else teacher.float(), self.settings.loss)

    def export(self, model: PointMAE, folder: Path) -> None:
        model.save_pretrained(folder)


def prepare_run(settings: CMATSettings | None, run_dir: Path, resume: dict | None) -> CMATSettings:
    """Create the run directory (config, meta) or, resuming (``resume`` = the settings a resumed
    run may change: epochs, device), read the settings it was started with. Runs in the launching
    process, so bad input fails here, once, before any rank starts."""
    settings = settings_for_run(CMATSettings, settings, run_dir, resume)
    if settings.data.teacher is not None and resume is None:
        spec, settings.data.teacher = settings.data.teacher, lifted_teacher(settings.data.store, settings.data.teacher)
        if spec != settings.data.teacher:
            note(f"teacher {spec}: distilling features/{settings.data.teacher}")
    len(PretrainPoints(settings))  # the store, its teacher features and stages exist
    if resume is None and not (launched_externally() and external_rank() != 0):
        write_run(settings, run_dir, "pretrain", "cmat")  # rank 0 writes the run directory
    return settings


def pretrain(
    settings: CMATSettings, run_dir: str | Path, *, plan: Launch | None = None, show_progress: bool = True
) -> dict:
    """Pre-train a CMAT backbone into a new ``run_dir``; ``plan`` launches several processes."""
    run_dir = Path(run_dir)
    plan = (plan or Launch()).check(settings.device)  # before the run directory is written
    settings = prepare_run(settings, run_dir, None)
    return launch(plan, train_rank, "pretrain cmat", CMATTask, (settings,), settings, run_dir, False, show_progress)


def resume_run(
    run_dir: str | Path,
    *,
    epochs: int | None = None,
    device: str | None = None,
    store: str | Path | None = None,
    plan: Launch | None = None,
    show_progress: bool = True,
) -> dict:
    """Continue the run in ``run_dir`` from its last epoch (optionally to more ``epochs``); ``store``:
    where its store is now, if it moved (it must be the same store)."""
    run_dir = Path(run_dir)
    settings = prepare_run(None, run_dir, {"epochs": epochs, "device": device, "store": store})
    return launch(
        (plan or Launch()).check(settings.device),
        train_rank,
        "pretrain cmat",
        CMATTask,
        (settings,),
        settings,
        run_dir,
        True,
        show_progress,
    )
