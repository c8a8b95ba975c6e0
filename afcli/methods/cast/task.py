"""The CAST training task for the shared loop (afcli.engine.trainer) and its run preparation:
prompts encoded once, before any rank starts, with the run's encoders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from afcli.errors import InputError
from afcli.losses.seg import cast_loss
from afcli.methods.cast.data import QueryData
from afcli.methods.cast.online import PromptedCAST, image_encoder
from afcli.methods.cast.predict import predict, prompt_inputs, recalibrate_batchnorm
from afcli.methods.cast.prompts import encode_prompts, load_prompts, merge_prompts, save_prompts, text_encoder
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
        self.online = settings.prompts.online
        self._val = self._calibration = self._text = self._image = None

    def _image_encoder(self):
        """The online image encoder (built once: the model and the dataset's picture size need it)."""
        if self._image is None:
            self._image = image_encoder(self.settings.prompts)
        return self._image

    def build_model(self) -> CAST | PromptedCAST:
        model = CAST(self.settings.model)
        if self.settings.backbone:
            model.load_backbone(backbone_folder(self.settings.backbone))
        if self.online and self.settings.prompts.image:
            return PromptedCAST(model, self._image_encoder())
        return model

    def parameter_groups(self, model: CAST | PromptedCAST, weight_decay: float) -> list[dict]:
        """The backbone at ``backbone_lr_scale``, fine-tuned prompt-encoder parts at
        ``prompts.lr_scale``, everything else at 1 (the CMAT code's three groups)."""
        from afcli.engine.trainer import parameter_groups

        cast = model.cast if isinstance(model, PromptedCAST) else model
        scale = {id(p): self.settings.backbone_lr_scale for p in cast.backbone.parameters()}
        if isinstance(model, PromptedCAST):
            scale.update({id(p): self.settings.prompts.lr_scale for p in model.image_encoder.parameters()})
        groups = []
        for group in parameter_groups(model, weight_decay):
            for value in sorted({scale.get(id(p), 1.0) for p in group["params"]}):
                params = [p for p in group["params"] if scale.get(id(p), 1.0) == value]
                groups.append({"params": params, "weight_decay": group["weight_decay"], "lr_scale": value})
        return groups

    def dataset(self) -> QueryData:
        s = self.settings
        size = self._image_encoder().teacher.preprocess.size if self.online and s.prompts.image else None
        return QueryData(
            s.data.store,
            "train",
            self.prompts,
            training=True,
            augment=s.data.augment,
            seed=s.seed,
            drop=s.prompts.drop,
            online=s.prompts,
            picture_size=size,
        )

    def loss(self, model, batch: dict) -> dict[str, torch.Tensor]:
        device = batch["points"].device
        inputs = prompt_inputs(self.prompts, batch, device)
        if "question" in batch:
            if self._text is None:
                self._text = text_encoder(self.settings.prompts).to(device)
            self._text.train(self.settings.prompts.text_dropout)  # dropout on: the CMAT code's LASO runs
            inputs["text"], inputs["text_mask"] = self._text(batch["question"])
        if "picture" in batch:
            inputs["picture"] = batch["picture"]
        logits = model(batch["points"], **inputs)
        with torch.autocast(device.type, enabled=False):
            return cast_loss(
                logits.float(), batch["gt"].float(), self.settings.loss.focal_weight, self.settings.loss.dice_weight
            )

    def validate(self, model: CAST | PromptedCAST) -> dict:
        from afcli.metrics.affordance import standard

        s = self.settings
        if self._val is None:
            self._val = QueryData(s.data.store, "val", self.prompts, training=False)
        cast = model
        if isinstance(model, PromptedCAST):
            cast = model.cast
            if model.image_encoder.blocks:  # the val images through the encoder as it is now
                self._val.prompts = {**self.prompts, "image": self._encode_val_images(model.image_encoder)}
        device = next(cast.parameters()).device
        if s.precise_bn_batches:
            if self._calibration is None:
                self._calibration = QueryData(s.data.store, "train", self.prompts, training=False, seed=s.seed)
            recalibrate_batchnorm(cast, self._calibration, s.batch_size, s.precise_bn_batches, device)
        pred, gt = predict(cast, self._val, batch_size=s.val_batch_size, device=device)
        overall = standard(pred, gt)["overall"]
        return {"score": overall["aiou"] if np.isfinite(overall["aiou"]) else -overall["mae"], **overall}

    def _encode_val_images(self, encoder):
        import dataclasses

        from afcli.store import open_store
        from afcli.store.queries import read_queries

        store = Path(self.settings.data.store)
        with open_store(store) as f:
            table = read_queries(f, store)
        images_only = dataclasses.replace(self.settings.prompts, text=None)
        device = next(encoder.parameters()).device
        encoder.eval()
        encoded = encode_prompts(
            images_only, store, table, table.rows("val"), all_questions=False, device=device, image_encoder=encoder
        )
        return encoded["image"]

    def export(self, model: CAST | PromptedCAST, folder: Path) -> None:
        if isinstance(model, PromptedCAST):
            model.save(folder)
        else:
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
    settings.model.audio_dim = None if prompts["audio"] is None else int(prompts["audio"].tokens.shape[-1])
    if settings.backbone:
        CAST(settings.model).load_backbone(backbone_folder(settings.backbone))  # the architectures match
    save_prompts(prompts, run_dir)
    return settings
