"""The trained network: an image backbone (afcli.teachers.pyramid) under the AVAGFormer head, and
how a run saves and loads it (``model/`` and ``best/``: the head as a saved model, the backbone's
weights only when it was trained, and ``avagformer.json`` naming the backbone and audio encoder)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from afcli.files import write_text
from afcli.models.avagformer import AVAGFormer
from afcli.teachers.pyramid import load_pyramid

SPEC = "avagformer.json"
HEAD = "head"
BACKBONE = "backbone.safetensors"


class AudioVisualNet(torch.nn.Module):
    def __init__(self, head: AVAGFormer, backbone_name: str, backbone_weights: str | None, size: int):
        super().__init__()
        self.head = head
        self.backbone = load_pyramid(backbone_name, backbone_weights, input_size=size)
        self.backbone.requires_grad_(True)  # DDP registers every parameter; frozen epochs run it without grad
        self.backbone_trains = False
        self.frozen_train_mode = False

    def forward(self, images: torch.Tensor, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalised images (B, 3, S, S) and audio tokens (B, T, D) → the head's logits."""
        if self.backbone_trains:
            maps = self.backbone(images)
        else:
            self.backbone.train(self.training and self.frozen_train_mode)
            with torch.no_grad():
                maps = self.backbone(images)
        return self.head(maps, audio)

    def save(self, folder: Path, spec: dict, backbone_trained: bool) -> None:
        from safetensors.torch import save_file

        self.head.save_pretrained(folder / HEAD)
        if backbone_trained:
            state = {k: v.detach().cpu().contiguous() for k, v in self.backbone.state_dict().items()}
            save_file(state, str(folder / BACKBONE))
        elif (folder / BACKBONE).exists():
            (folder / BACKBONE).unlink()
        write_text(folder / SPEC, json.dumps(spec, indent=1) + "\n")


def load_net(folder: Path) -> tuple[AudioVisualNet, dict]:
    """A saved network and its spec (backbone, audio encoder, sizes)."""
    from afcli.errors import InputError

    if not (folder / SPEC).is_file():
        raise InputError(f"not a saved AVAGFormer (no {SPEC})", folder)
    spec = json.loads((folder / SPEC).read_text())
    net = AudioVisualNet(
        AVAGFormer.from_pretrained(folder / HEAD), spec["backbone"], spec["backbone_weights"], spec["size"]
    )
    if (folder / BACKBONE).is_file():
        from safetensors.torch import load_file

        net.backbone.load_state_dict(load_file(str(folder / BACKBONE)), strict=True)
    return net.eval(), spec
