"""The AVAGFormer training task for the shared loop (afcli.engine.trainer) and its run preparation:
every clip of the store encoded once by the frozen audio encoder (the released model runs VGGish
under no_grad always), into ``audio.pt`` in the run directory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from afcli.engine.checkpoint import load_checkpoint, save_atomic
from afcli.errors import InputError
from afcli.losses.avagd import avagd_loss
from afcli.methods.avagformer.data import PairData
from afcli.methods.avagformer.net import AudioVisualNet
from afcli.methods.avagformer.predict import predict
from afcli.methods.avagformer.settings import AVAGFormerSettings
from afcli.metrics.avagd import score
from afcli.models.avagformer import AVAGFormer

AUDIO_FILE = "audio.pt"


class AVAGFormerTask:
    """Function and dependency masks from image and sound; selection on val by the released
    criterion, (mIoU_f + mIoU_d) / 2, scored per pair as AVAGFormer's test protocol."""

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
            self._val = PairData(s.data.store, "val", self.tokens, s.image_backbone.size)
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


def encode_clips(settings: AVAGFormerSettings, store: Path, device) -> tuple[torch.Tensor, list[str]]:
    """(C, T, D) float16 tokens of every clip in ``store`` with the run's audio encoder, and the clip ids."""
    from afcli.audio import load_audio_encoder
    from afcli.audio.logmel import SAMPLE_RATE, fit_examples
    from afcli.console import progress
    from afcli.store import open_store
    from afcli.store.clips import clip_logmel, clip_wave, read_clips

    a = settings.audio
    encoder = load_audio_encoder(a.encoder, a.weights, device=device)
    tokens = []
    with open_store(store) as f, progress("encode sounds") as (advance, set_total):
        table = read_clips(f, store)
        set_total(len(table))
        for row in range(len(table)):
            if a.encoder.startswith("vggish"):
                examples = torch.from_numpy(clip_logmel(f, table, row))[:, None]
                tokens.append(encoder.embed_examples(fit_examples(examples, a.segments, a.padding)))
            else:
                wave = clip_wave(f, table, row)
                if wave is None:
                    raise InputError(
                        f"clip {table.id[row]} holds only a log-mel: {a.encoder} needs its waveform", store
                    )
                tokens.append(encoder(torch.from_numpy(wave), SAMPLE_RATE, a.segments, a.padding))
            advance()
    return torch.stack(tokens).cpu().half(), table.id


def prepare_run(settings: AVAGFormerSettings, run_dir: Path, new: bool) -> AVAGFormerSettings:
    """A new run encodes every clip into ``audio.pt`` and takes the head's input widths from the
    audio encoder and the image backbone."""
    if not new:
        return settings
    from afcli.runtime import pick_device
    from afcli.teachers.pyramid import load_pyramid

    store = Path(settings.data.store)
    for split in ("train", "val"):
        if not len(PairData(store, split, torch.zeros(0), settings.image_backbone.size)):
            raise InputError(f"fine-tuning needs train and val pairs; the store has no {split} pairs", store)
    tokens, ids = encode_clips(settings, store, pick_device(settings.device))
    settings.model.audio_dim = int(tokens.shape[-1])
    b = settings.image_backbone
    settings.model.image_channels = tuple(load_pyramid(b.name, b.weights, input_size=b.size).channels)
    save_atomic({"tokens": tokens, "ids": ids}, run_dir / AUDIO_FILE)
    return settings
