"""DINOv3 and DINOv2 teachers through transformers (``DINOv3ViTModel``, ``Dinov2Model``,
``Dinov2WithRegistersModel``).

Features are the final layer's patch tokens (after the model's last LayerNorm) with the CLS and
register tokens dropped, reshaped to the patch grid. ``blocks=k`` instead returns the last ``k``
blocks' patch tokens *without* the final LayerNorm, stacked block-major along channels
(``k·D``) — what dense functional correspondence mixes with learned weights (its code calls
``get_intermediate_layers(n=3, norm=False)``).

Preprocessing as the model cards: ImageNet mean/std, bilinear resize (DINOv3's processor) or
bicubic (DINOv2's), at 224 px by default; the whole image is resized, not centre-cropped.
"""

from __future__ import annotations

from pathlib import Path

import torch

from afcli.errors import InputError
from afcli.extras import require
from afcli.teachers.base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Preprocess,
    Teacher,
    check_weights_path,
    missing_weights,
    offline_mode,
    sha256_of,
    tokens_to_grid,
    weights_file,
)

DINOV3_VARIANTS = {
    "vits16": "facebook/dinov3-vits16-pretrain-lvd1689m",
    "vits16plus": "facebook/dinov3-vits16plus-pretrain-lvd1689m",
    "vitb16": "facebook/dinov3-vitb16-pretrain-lvd1689m",
    "vitl16": "facebook/dinov3-vitl16-pretrain-lvd1689m",
    "vith16plus": "facebook/dinov3-vith16plus-pretrain-lvd1689m",
}
DINOV2_VARIANTS = {
    "vits14": "facebook/dinov2-small",
    "vitb14": "facebook/dinov2-base",
    "vitl14": "facebook/dinov2-large",
    "vitg14": "facebook/dinov2-giant",
    "vits14-reg": "facebook/dinov2-with-registers-small",
    "vitb14-reg": "facebook/dinov2-with-registers-base",
    "vitl14-reg": "facebook/dinov2-with-registers-large",
    "vitg14-reg": "facebook/dinov2-with-registers-giant",
}


def load_pretrained(model_class, model_id: str, weights: str | None, offline: bool, **config):
    """``model_class.from_pretrained`` from ``weights`` (a folder) or the hub id in the local cache,
    ``config`` overriding the saved config's values."""
    require(
        "transformers.utils.logging", f"{model_class.__name__}"
    ).disable_progress_bar()  # afcli draws its own progress
    path = check_weights_path(weights)
    source = str(path) if path is not None else model_id
    try:
        model = model_class.from_pretrained(
            source, local_files_only=offline_mode(offline) or path is not None, **config
        )
    except OSError as error:
        if path is not None:
            raise InputError(
                f"cannot load {model_class.__name__} weights ({str(error).splitlines()[0]})", path
            ) from None
        raise missing_weights(
            model_id, "not in the local cache" if offline_mode(offline) else str(error).splitlines()[0]
        ) from None
    model.eval().requires_grad_(False)
    folder = path if path is not None and path.is_dir() else None
    if folder is None and path is None:
        folder = require("huggingface_hub", model_id).snapshot_download(model_id, local_files_only=True)
    found = weights_file(Path(folder)) if folder is not None else path
    return model, str(path if path is not None else folder), sha256_of(found) if found is not None else ""


class ViTTeacher(Teacher):
    def __init__(
        self, family: str, variant: str, model_id: str, model_class, weights, offline, blocks, input_size, resample
    ):
        super().__init__()
        self.name = f"{family}:{variant}"
        self.model, self.weights, self.weights_sha256 = load_pretrained(model_class, model_id, weights, offline)
        config = self.model.config
        self.patch_size = int(config.patch_size)
        self.skip = 1 + int(getattr(config, "num_register_tokens", 0) or 0)
        self.blocks = blocks
        if not 1 <= blocks <= config.num_hidden_layers:
            raise InputError(f"--blocks must be in 1..{config.num_hidden_layers} for {self.name}, got {blocks}")
        if input_size % self.patch_size:
            raise InputError(f"teacher input size {input_size} is not a multiple of the patch size {self.patch_size}")
        self.preprocess = Preprocess(input_size, IMAGENET_MEAN, IMAGENET_STD, resample)

    def last_blocks(self, count: int) -> list[torch.nn.Module]:
        layers = self.model.model.layer if hasattr(self.model, "model") else self.model.encoder.layer  # v3 / v2
        if not 1 <= count <= len(layers):
            raise InputError(f"{self.name} has {len(layers)} blocks; cannot fine-tune the last {count}")
        return list(layers[-count:])

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        grid = images.shape[-1] // self.patch_size
        if self.blocks == 1:
            tokens = self.model(pixel_values=images).last_hidden_state
            return tokens_to_grid(tokens[:, self.skip :], grid)
        hidden = self.model(pixel_values=images, output_hidden_states=True).hidden_states[-self.blocks :]
        return torch.cat([tokens_to_grid(h[:, self.skip :], grid) for h in hidden], 1)


def dinov3(variant: str, weights=None, offline=False, blocks=1, input_size=224) -> Teacher:
    transformers = require("transformers", "teacher dinov3")
    return ViTTeacher(
        "dinov3",
        variant,
        DINOV3_VARIANTS[variant],
        transformers.DINOv3ViTModel,
        weights,
        offline,
        blocks,
        input_size,
        "bilinear",
    )


def dinov2(variant: str, weights=None, offline=False, blocks=1, input_size=224) -> Teacher:
    transformers = require("transformers", "teacher dinov2")
    model_class = transformers.Dinov2WithRegistersModel if variant.endswith("-reg") else transformers.Dinov2Model
    return ViTTeacher(
        "dinov2", variant, DINOV2_VARIANTS[variant], model_class, weights, offline, blocks, input_size, "bicubic"
    )
