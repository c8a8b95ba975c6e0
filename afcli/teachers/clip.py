"""CLIP teachers through open_clip: dense patch tokens projected into the joint image-text space.

Variant syntax ``clip:<open_clip model>[@<pretrained tag>]`` (default ``ViT-B-16@openai``). The
patch tokens go through the vision tower's final LayerNorm and its projection — the same path as
the pooled embedding — so each cell lives in the space the text encoder is aligned to (the
MaskCLIP-style dense reading used by open-vocabulary lifting). Only ViT towers have patch tokens;
their position embeddings fix the input size, so the render is resized to the model's image size.
Mean/std and resampling come from the checkpoint's preprocessing config (OpenAI CLIP:
bicubic, mean (0.4815, 0.4578, 0.4082), std (0.2686, 0.2613, 0.2758)).

Weights: ``--weights DIR`` in open_clip's hub layout (``open_clip_config.json`` + weights),
``--weights FILE`` (a checkpoint for the named architecture), or the pretrained tag's Hugging Face
repo in the local cache.
"""

from __future__ import annotations

from pathlib import Path

import torch

from afcli.errors import InputError
from afcli.extras import require
from afcli.teachers.base import (
    Preprocess,
    Teacher,
    check_weights_path,
    missing_weights,
    offline_mode,
    sha256_of,
    tokens_to_grid,
    weights_file,
)

DEFAULT_VARIANT = "ViT-B-16@openai"


def _hub_weights(arch: str, tag: str, offline: bool) -> tuple[Path, str]:
    open_clip = require("open_clip", "teacher clip")
    hf_hub_download = require("huggingface_hub", "teacher clip").hf_hub_download
    config = open_clip.get_pretrained_cfg(arch, tag)
    repo = (config or {}).get("hf_hub", "").strip("/")
    if not repo:
        raise InputError(
            f"open_clip has no pretrained weights {arch}@{tag} on the Hugging Face hub; pass --weights FILE"
        )
    errors = []
    for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
        try:
            return Path(hf_hub_download(repo, filename, local_files_only=offline_mode(offline))), repo
        except Exception as error:  # hub errors have many types (offline, missing entry, network)
            errors.append(str(error).splitlines()[0])
    raise missing_weights(repo, "not in the local cache" if offline_mode(offline) else errors[-1])


class ClipTeacher(Teacher):
    def __init__(self, variant: str, weights=None, offline=False, blocks=1, input_size=None):
        super().__init__()
        open_clip = require("open_clip", "teacher clip")
        if blocks != 1:
            raise InputError("--blocks is only supported by the dinov2 and dinov3 teachers")
        model, self.name, path, found = build_clip(variant, weights, offline)
        visual = model.visual
        if not hasattr(visual, "conv1") or not hasattr(visual, "positional_embedding"):
            raise InputError(f"{self.name}: only ViT image towers have dense patch tokens")
        visual.output_tokens = True
        self.visual = visual.eval().requires_grad_(False)
        self.weights = str(path)
        self.weights_sha256 = sha256_of(found) if found is not None else ""
        self.patch_size = int(visual.conv1.kernel_size[0])
        size = visual.image_size[0] if isinstance(visual.image_size, (tuple, list)) else int(visual.image_size)
        if input_size not in (None, size):
            raise InputError(f"{self.name} takes {size}px input (fixed position embeddings), not {input_size}")
        cfg = getattr(visual, "preprocess_cfg", None) or {}
        mean = tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN))
        std = tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD))
        self.preprocess = Preprocess(size, mean, std, cfg.get("interpolation", "bicubic"))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        _, tokens = self.visual(images)
        if self.visual.proj is not None:
            tokens = tokens @ self.visual.proj
        return tokens_to_grid(tokens, images.shape[-1] // self.patch_size)


def clip(variant: str, weights=None, offline=False, blocks=1, input_size=None) -> Teacher:
    return ClipTeacher(variant, weights, offline, blocks, input_size)


def build_clip(variant: str, weights=None, offline=False):
    """(open_clip model, its afcli name, the weights path, the weights file) for ``arch@tag`` or a folder."""
    open_clip = require("open_clip", "clip")
    arch, _, tag = (variant or DEFAULT_VARIANT).partition("@")
    path = check_weights_path(weights)
    try:
        if path is not None and path.is_dir():
            model = open_clip.create_model(f"local-dir:{path}")
            found = weights_file(path)
            name = f"clip:{path.name}"
        else:
            if path is None:
                path, _ = _hub_weights(arch, tag or "openai", offline)
                name = f"clip:{arch}@{tag or 'openai'}"
            else:
                name = f"clip:{arch}"
            model = open_clip.create_model(arch, pretrained=str(path))
            found = path
    except (RuntimeError, ValueError, KeyError, OSError) as error:
        raise InputError(f"cannot build open_clip model {arch!r} ({str(error).splitlines()[0]})", path or "") from None
    return model, name, path, found


@torch.no_grad()
def clip_text_encoder(variant: str, weights=None, offline=False):
    """CLIP's text tower as a function of texts → (T, D) L2-normalised embeddings (``encode_text`` of
    the model's own tokenizer), the model loaded once."""
    open_clip = require("open_clip", "clip text")
    model, _, path, _ = build_clip(variant, weights, offline)
    arch = (variant or DEFAULT_VARIANT).partition("@")[0]
    tokenizer = open_clip.get_tokenizer(f"local-dir:{path}" if path is not None and Path(path).is_dir() else arch)
    model.eval()

    @torch.no_grad()
    def encode(texts: list[str]) -> torch.Tensor:
        return torch.nn.functional.normalize(model.encode_text(tokenizer(texts)).float(), dim=-1)

    return encode
