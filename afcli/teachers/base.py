"""The teacher protocol: RGB renders (B, H, W, 3) uint8 → patch features (B, D, h, w).

A teacher names its own preprocessing exactly (input size, resampling, mean/std) so that the
features in the store can be reproduced; the whole render is resized to the model's input (never
cropped), so the feature grid covers the whole image and pixels map onto it (see
:mod:`afcli.lift.core`). Weights come from ``--weights`` (a local folder or file) or a hub id
resolved in the local cache; a missing model raises an :class:`InputError` that names the model,
where it was looked for and how to fetch it.
"""

from __future__ import annotations

import abc
import functools
import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from afcli.errors import InputError
from afcli.extras import require

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    size: int  # model input side in pixels
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resample: str = "bilinear"  # "bilinear" or "bicubic", antialiased

    def __call__(self, rgb: torch.Tensor) -> torch.Tensor:
        images = rgb.permute(0, 3, 1, 2).float() / 255.0
        if images.shape[-2:] != (self.size, self.size):
            images = torch.nn.functional.interpolate(
                images, size=(self.size, self.size), mode=self.resample, align_corners=False, antialias=True
            )
        mean = torch.tensor(self.mean, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=images.device).view(1, 3, 1, 1)
        return (images - mean) / std

    def describe(self) -> str:
        return (
            f"resize {self.size}x{self.size} ({self.resample}, antialiased), mean {list(self.mean)}, std "
            f"{list(self.std)}"
        )


def store_id(name: str, blocks: int = 1) -> str:
    """The ``/features/<id>`` key of a teacher spec: ``dinov3:vitb16`` → ``dinov3-vitb16`` (``-lastK``
    when K blocks are stacked)."""
    return name.replace(":", "-").replace("/", "-") + (f"-last{blocks}" if blocks > 1 else "")


class Teacher(torch.nn.Module, abc.ABC):
    """Frozen 2D encoder. Subclasses set the attributes and implement :meth:`encode`."""

    name: str  # canonical spec, e.g. "dinov3:vitl16"
    patch_size: int  # input pixels per feature cell
    preprocess: Preprocess
    weights: str  # where the weights came from
    weights_sha256: str = ""
    blocks: int = 1

    @property
    def id(self) -> str:
        """Store key: ``/features/<id>``."""
        return store_id(self.name, self.blocks)

    @abc.abstractmethod
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Preprocessed images (B, 3, S, S) → patch features (B, D, h, w)."""

    def last_blocks(self, count: int) -> list[torch.nn.Module]:
        """The encoder's last ``count`` blocks, for prompt encoders fine-tuned in part."""
        raise InputError(f"{self.name}: fine-tuning blocks is offered for the ViT teachers (dinov2, dinov3)")

    @torch.no_grad()
    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        images = self.preprocess(rgb)
        if images.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16):
                return self.encode(images).float()
        return self.encode(images).float()

    def provenance(self) -> dict:
        return {
            "teacher": self.name,
            "weights": self.weights,
            "weights_sha256": self.weights_sha256,
            "preprocess": self.preprocess.describe(),
            "patch_size": self.patch_size,
            "blocks": self.blocks,
        }


def tokens_to_grid(tokens: torch.Tensor, grid: int) -> torch.Tensor:
    """Patch tokens (B, h·w, D) in raster order → (B, D, h, w)."""
    batch, count, dim = tokens.shape
    if count != grid * grid:
        raise RuntimeError(f"expected {grid}x{grid} patch tokens, got {count}")
    return tokens.transpose(1, 2).reshape(batch, dim, grid, grid)


def offline_mode(offline: bool) -> bool:
    """Look in the local cache only: when asked to, when the environment says so, or when the hub
    cannot be reached at all (its client would print a page of retries before failing)."""
    return offline or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or not _hub_reachable()


@functools.cache
def _hub_reachable(timeout: float = 3.0) -> bool:
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # only the proxy knows
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def sha256_of(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def weights_file(folder: Path) -> Path | None:
    for name in (
        "model.safetensors",
        "open_clip_model.safetensors",
        "pytorch_model.bin",
        "open_clip_pytorch_model.bin",
    ):
        if (folder / name).is_file():
            return folder / name
    return None


def hub_cache_dir(model_id: str) -> Path:
    constants = require("huggingface_hub.constants", "the Hugging Face cache")
    return Path(constants.HF_HUB_CACHE) / ("models--" + model_id.replace("/", "--"))


def missing_weights(model_id: str, reason: str) -> InputError:
    return InputError(
        f"weights for {model_id} not found ({reason}); looked in {hub_cache_dir(model_id)}. "
        f"On a machine with internet run `hf download {model_id}` and copy the cache here, or pass --weights DIR"
    )


def check_weights_path(weights: str | None) -> Path | None:
    if weights is None:
        return None
    path = Path(weights).expanduser()
    if not path.exists():
        raise InputError("no such weights file or folder", path)
    return path
