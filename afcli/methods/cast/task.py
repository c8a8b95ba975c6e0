"""The CAST training task for the shared loop (afcli.engine.trainer) and its run preparation:
prompts encoded once, before any rank starts, with the run's encoders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from afcli.errors import InputError
from afcli.losses.seg import cast_loss
from afcli.methods.cast.data import QueryData
from afcli.methods.cast.predict import predict, prompt_inputs, recalibrate_batchnorm
from afcli.methods.cast.prompts import encode_prompts, load_prompts, merge_prompts, save_prompts
from afcli.methods.cast.settings import CASTSettings
from afcli.models.cast import CAST
from afcli.runtime import pick_device


class CASTTask:
    """CAST's forward pass, focal + dice, and validation aIoU for best-epoch selection."""

    find_unused_parameters = True  # a modality's null token or projection may sit out a batch

    def __init__(self, settings: CASTSettings, run_dir: Path):
        self.settings = settings
        self.grad_clip = settings.grad_clip
        self.prompts = load_prompts(run_dir)
        self._val = self._calibration = None

    def build_model(self) -> CAST:
        model = CAST(self.settings.model)
        if self.settings.backbone:
            model.load_backbone(backbone_folder(self.settings.backbone))
        return model

    def parameter_groups(self, model: CAST, weight_decay: float) -> list[dict]:
        from afcli.engine.trainer import parameter_groups

        backbone = {id(p) for p in model.backbone.parameters()}
        groups = []
        for group in parameter_groups(model, weight_decay):
            for in_backbone, scale in ((True, self.settings.backbone_lr_scale), (False, 1.0)):
                params = [p for p in group["params"] if (id(p) in backbone) == in_backbone]
                if params:
                    groups.append({"params": params, "weight_decay": group["weight_decay"], "lr_scale": scale})
        return groups

    def dataset(self) -> QueryData:
        s = self.settings
        return QueryData(
            s.data.store, "train", self.prompts, training=True, augment=s.data.augment, seed=s.seed, drop=s.prompts.drop
        )

    def loss(self, model, batch: dict) -> dict[str, torch.Tensor]:
        logits = model(batch["points"], **prompt_inputs(self.prompts, batch, batch["points"].device))
        with torch.autocast(batch["points"].device.type, enabled=False):
            return cast_loss(
                logits.float(), batch["gt"].float(), self.settings.loss.focal_weight, self.settings.loss.dice_weight
            )

    def validate(self, model: CAST) -> dict:
        from afcli.metrics.affordance import standard

        if self._val is None:
            self._val = QueryData(self.settings.data.store, "val", self.prompts, training=False)
        device = next(model.parameters()).device
        s = self.settings
        if s.precise_bn_batches:
            if self._calibration is None:
                self._calibration = QueryData(s.data.store, "train", self.prompts, training=False, seed=s.seed)
            recalibrate_batchnorm(model, self._calibration, s.batch_size, s.precise_bn_batches, device)
        pred, gt = predict(model, self._val, batch_size=self.settings.val_batch_size, device=device)
        overall = standard(pred, gt)["overall"]
        return {"score": overall["aiou"] if np.isfinite(overall["aiou"]) else -overall["mae"], **overall}

    def export(self, model: CAST, folder: Path) -> None:
        model.save_pretrained(folder)


def backbone_folder(backbone: str) -> Path:
    """The saved Point-MAE a ``backbone`` setting names: a CMAT run or a saved model folder."""
    from afcli.engine.run import saved_model

    return saved_model(backbone, "point-mae", "a CMAT run or saved Point-MAE")


def prepare_run(settings: CASTSettings, run_dir: Path, new: bool) -> CASTSettings:
    """Before any rank starts, a new run encodes every prompt of its train and val queries into
    ``prompts.pt`` (the encoders are frozen: once is enough), sets the prompt widths from the
    encoders and checks that the backbone fits. Under torchrun every process gets here and saves the
    same prompts atomically (it needs the file next); rank 0 alone writes the run's record."""
    if not new:
        return settings
    from afcli.console import progress
    from afcli.store import open_store
    from afcli.store.queries import read_queries

    store = Path(settings.data.store)
    with open_store(store) as f:
        table = read_queries(f, store)
    train_rows, val_rows = table.rows("train"), table.rows("val")
    if not len(train_rows) or not len(val_rows):
        raise InputError(
            f"fine-tuning needs train and val queries; the store has {len(train_rows)} and {len(val_rows)}", store
        )
    device = pick_device(settings.device)
    with progress("encode prompts") as (advance, set_total):
        training = encode_prompts(
            settings.prompts,
            store,
            table,
            train_rows,
            all_questions=True,
            device=device,
            advance=advance,
            on_total=set_total,
        )
    evaluation = encode_prompts(settings.prompts, store, table, val_rows, all_questions=False, device=device)
    prompts = merge_prompts(training, evaluation)
    settings.model.text_dim = None if prompts["text"] is None else int(prompts["text"].tokens.shape[-1])
    settings.model.image_dim = None if prompts["image"] is None else int(prompts["image"].tokens.shape[-1])
    if settings.backbone:
        CAST(settings.model).load_backbone(backbone_folder(settings.backbone))  # the architectures match
    save_prompts(prompts, run_dir)
    return settings
