"""Multi-scale image backbones for dense heads (AVAGFormer): preprocessed images (B, 3, S, S) →
feature maps at strides 8, 16 and 32, finest first.

- ``pvt-v2:b5`` (b0…b5): PVT-v2 through transformers' ``PvtV2Backbone``, stages 2-4 — what AVAGFormer
  uses (weights: ``OpenGVLab/pvt_v2_<variant>`` from the local Hugging Face cache, or a saved folder);
- ``effnet-lite0`` / ``effnet-lite1``: EfficientNet-Lite0's or -Lite1's last block at each of those
  strides (40, 112, 320 channels), the real ImageNet backbones that install offline.

Both start frozen (``requires_grad`` off); a training task unfreezes them on its schedule. Their
train/eval mode is left to the caller: the released AVAGFormer keeps its frozen PVT in train mode
(DropPath active).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from afcli.errors import InputError
from afcli.teachers.base import IMAGENET_MEAN, IMAGENET_STD, Preprocess, sha256_of
from afcli.variants import resolve_variant

STRIDES = (8, 16, 32)
PVT_VARIANTS = {f"b{i}": f"OpenGVLab/pvt_v2_b{i}" for i in range(6)}


class Pyramid(torch.nn.Module):
    name: str
    channels: tuple[int, ...]
    weights: str
    preprocess: Preprocess

    def unfreeze(self, trainable: bool = True) -> None:
        self.requires_grad_(trainable)


class PvtPyramid(Pyramid):
    def __init__(self, variant: str, weights=None, offline=False, input_size=512):
        super().__init__()
        from afcli.extras import require
        from afcli.teachers.vit import load_pretrained

        model_class = require("transformers", "pyramid pvt-v2").PvtV2Backbone
        self.model, self.weights, _ = load_pretrained(
            model_class, PVT_VARIANTS[variant], weights, offline, out_indices=[1, 2, 3]
        )
        self.name = f"pvt-v2:{variant}"
        self.channels = tuple(self.model.config.hidden_sizes[1:])
        self.preprocess = Preprocess(input_size, IMAGENET_MEAN, IMAGENET_STD, "bilinear")

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return list(self.model(pixel_values=images).feature_maps)


class EffNetPyramid(Pyramid):
    def __init__(self, variant: str, weights=None, offline=False, input_size=512):
        super().__init__()
        from afcli.teachers.effnet import load_effnet_lite

        self.net, path = load_effnet_lite(variant, weights)
        self.name, self.weights, self.weights_sha256 = f"effnet-{variant}", str(path), sha256_of(path)
        self.preprocess = Preprocess(input_size, IMAGENET_MEAN, IMAGENET_STD, "bilinear")
        self.taps = self._last_block_per_stride()  # fixed indices: the graph traces the same
        self.channels = tuple(self.net._blocks[i]._bn2.num_features for i in self.taps)

    def _last_block_per_stride(self) -> list[int]:
        from afcli.teachers.effnet import stem

        with torch.no_grad():
            x, last = stem(self.net, torch.zeros(1, 3, 64, 64)), {}
            for index, block in enumerate(self.net._blocks):
                x = block(x)
                last[64 // x.shape[-1]] = index
        return [last[stride] for stride in STRIDES]

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        from afcli.teachers.effnet import stem

        x, maps = stem(self.net, images), []
        for index, block in enumerate(self.net._blocks):
            x = block(x)
            if index in self.taps:
                maps.append(x)
        return maps


@dataclass(frozen=True)
class PyramidEntry:
    build: type[Pyramid]
    default: str
    variants: tuple[str, ...]


PYRAMIDS = {
    "pvt-v2": PyramidEntry(PvtPyramid, "b5", tuple(PVT_VARIANTS)),
    "effnet-lite0": PyramidEntry(EffNetPyramid, "lite0", ("lite0",)),
    "effnet-lite1": PyramidEntry(EffNetPyramid, "lite1", ("lite1",)),
}


def load_pyramid(spec: str, weights: str | None = None, offline: bool = False, input_size: int = 512) -> Pyramid:
    family, _, variant = spec.partition(":")
    family, variant = resolve_variant(PYRAMIDS, family, variant, "image backbone", "pvt-v2:b2")
    entry = PYRAMIDS[family]
    if input_size % 32:
        raise InputError(f"image size must be a multiple of 32, got {input_size}")
    return entry.build(variant, weights, offline, input_size)
