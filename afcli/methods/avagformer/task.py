"""The AVAGFormer training task for the shared loop (afcli.engine.trainer) and its run preparation:
every clip of the store encoded once by the frozen audio encoder (afcli.methods.avagformer.audio)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from afcli.engine.checkpoint import load_checkpoint, save_atomic
from afcli.errors import InputError
from afcli.losses.avagd import avagd_loss
from afcli.methods.avagformer.audio import AUDIO_FILE, encode_clips
from afcli.methods.avagformer.data import PairData
from afcli.methods.avagformer.net import AudioVisualNet
from afcli.methods.avagformer.predict import predict
from afcli.methods.avagformer.settings import AVAGFormerSettings
from afcli.metrics.avagd import score
from afcli.models.avagformer import AVAGFormer


class AVAGFormerTask:
    """Function and dependency masks from image and sound; the best epoch by the released criterion,
    (mIoU_f + mIoU_d) / 2, scored per pair as AVAGFormer's test protocol, on the selection pairs
    (``settings.selection``)."""

    find_unused_parameters = True  # the frozen backbone, and the mixer's constant bias nets

    def __init__(self, settings: AVAGFormerSettings, run_dir: Path):
        self.settings = settings
        self.tokens = load_checkpoint(run_dir / AUDIO_FILE, ("tokens",), what="AVAGFormer audio tokens")["tokens"]
        self._data = self._val = None

    def build_model(self) -> AudioVisualNet:
        b = self.settings.image_backbone
        net = AudioVisualNet(AVAGFormer(self.settings.model), b.name, b.weights, b.size)
        net.frozen_train_mode = b.train_mode_when_frozen
        return net

    def parameter_groups(self, net: AudioVisualNet, weight_decay: float) -> list[dict]:
        from afcli.engine.trainer import parameter_groups

        backbone = {id(p) for p in net.backbone.parameters()}
        groups = []
        for group in parameter_groups(net, weight_decay):
            for inside in (False, True):
                params = [p for p in group["params"] if (id(p) in backbone) == inside]
                if params:
                    scale = self.settings.image_backbone.lr_scale if inside else 1.0
                    groups.append({"params": params, "weight_decay": group["weight_decay"], "lr_scale": scale})
        return groups

    @property
    def holdout(self) -> float:
        return self.settings.holdout if self.settings.selection == "holdout" else 0.0

    def backbone_trains(self, epoch: int) -> bool:
        b = self.settings.image_backbone
        started = b.unfreeze_from is not None and epoch >= b.unfreeze_from
        return started and (b.unfreeze_until is None or epoch < b.unfreeze_until)

    def dataset(self) -> PairData:
        s = self.settings
        self._data = PairData(
            s.data.store,
            "train",
            self.tokens,
            s.image_backbone.size,
            training=True,
            augment=s.data.augment,
            seed=s.seed,
        )
        return self._data

    def loss(self, model, batch: dict) -> dict[str, torch.Tensor]:
        net = getattr(model, "module", model)
        net.backbone_trains = self.backbone_trains(self._data.epoch)
        out = model(batch["image"], batch["audio"])
        s = self.settings.loss
        with torch.autocast(batch["image"].device.type, enabled=False):
            return avagd_loss(
                {k: v.float() for k, v in out.items()},
                batch["function"],
                batch["dependency"],
                s.function,
                s.dependency_foreground,
                s.background_weight,
                s.aux_weight,
            )

    def validate(self, net: AudioVisualNet) -> dict:
        s = self.settings
        if self._val is None:
            split = "holdout" if s.selection == "holdout" else "val"
            self._val = PairData(s.data.store, split, self.tokens, s.image_backbone.size, holdout=self.holdout)
        device = next(net.head.parameters()).device
        logits, targets = predict(net, self._val, s.val_batch_size, device)
        result = score(logits, targets)
        function, dependency = result["function"], result["dependency"]
        chosen = [m for m in (function["miou"], dependency["miou"]) if m == m]
        return {
            "score": sum(chosen) / len(chosen),
            **{f"{head}_{key}": value for head, metrics in result.items() for key, value in metrics.items()},
        }

    def export(self, net: AudioVisualNet, folder: Path) -> None:
        s = self.settings
        spec = {
            "backbone": s.image_backbone.name,
            "backbone_weights": s.image_backbone.weights,
            "size": s.image_backbone.size,
            "audio": dataclasses.asdict(s.audio),
        }
        start = s.image_backbone.unfreeze_from
        trained = start is not None and self._data is not None and self._data.epoch >= start
        net.save(folder, spec, backbone_trained=trained)


def prepare_run(settings: AVAGFormerSettings, run_dir: Path, new: bool) -> AVAGFormerSettings:
    """A new run encodes every clip into ``audio.pt`` and takes the head's input widths from the
    audio encoder and the image backbone."""
    if not new:
        return settings
    from afcli.runtime import pick_device
    from afcli.teachers.pyramid import load_pyramid

    store = Path(settings.data.store)
    holdout = settings.holdout if settings.selection == "holdout" else 0.0
    for split in ("train", "holdout" if holdout else "val"):
        if not len(PairData(store, split, torch.zeros(0), settings.image_backbone.size, holdout=holdout)):
            raise InputError(f"fine-tuning needs train and {split} pairs; the store has none of the second", store)
    tokens, ids = encode_clips(settings, store, pick_device(settings.device))
    settings.model.audio_dim = int(tokens.shape[-1])
    b = settings.image_backbone
    settings.model.image_channels = tuple(load_pyramid(b.name, b.weights, input_size=b.size).channels)
    save_atomic({"tokens": tokens, "ids": ids}, run_dir / AUDIO_FILE)
    return settings
