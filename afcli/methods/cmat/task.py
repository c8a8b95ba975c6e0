"""The CMAT training task for the shared loop (afcli.engine.trainer) and its run preparation."""

from __future__ import annotations

from pathlib import Path

import torch

from afcli.console import note
from afcli.losses.cmat import cmat_loss
from afcli.methods.cmat.data import PretrainPoints
from afcli.methods.cmat.settings import CMATSettings
from afcli.models.point_mae import PointMAE
from afcli.teachers import lifted_teacher


class CMATTask:
    """Point-MAE's masked forward pass and the CMAT objective (afcli.losses.cmat)."""

    def __init__(self, settings: CMATSettings, run_dir: Path):
        self.settings = settings
        self.find_unused_parameters = "rec" not in settings.loss.enabled

    def build_model(self) -> PointMAE:
        return PointMAE(self.settings.model)

    def dataset(self) -> PretrainPoints:
        return PretrainPoints(self.settings)

    def loss(self, model, batch: dict) -> dict[str, torch.Tensor]:
        drop = batch["drop_noise"] if self.settings.model.drop_path > 0 else None
        out = model(batch["points"], batch["mask_noise"], drop, full_pass=self.settings.loss.full_pass)
        # The losses (cdist, logs of small distances, Gram matrices) in float32 even under AMP.
        with torch.autocast(batch["points"].device.type, enabled=False):
            out = {key: value.float() if torch.is_floating_point(value) else value for key, value in out.items()}
            teacher = batch.get("teacher")
            return cmat_loss(out, None if teacher is None else teacher.float(), self.settings.loss)

    def export(self, model: PointMAE, folder: Path) -> None:
        model.save_pretrained(folder)


def prepare_run(settings: CMATSettings, run_dir: Path, new: bool) -> CMATSettings:
    """Before any rank starts: a new run distils the lifted array its teacher names (the run records
    the store id), and the store, its teacher features and stages must exist."""
    if settings.data.teacher is not None and new:
        spec, settings.data.teacher = settings.data.teacher, lifted_teacher(settings.data.store, settings.data.teacher)
        if spec != settings.data.teacher:
            note(f"teacher {spec}: distilling features/{settings.data.teacher}")
    len(PretrainPoints(settings))
    return settings
