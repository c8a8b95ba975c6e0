"""The function-conditioned correspondence head of dense functional correspondence (Stojanov et al.
§4.2, Fig. 4; the released ``ConditionedDino``): a frozen backbone's last blocks mixed with learned
softmax weights, bilinear per-pixel features, the function's text embedding concatenated, an MLP
1024 → 1024 → 1024 → 256, L2-normalised; optionally a linear mask head on the output.

The paper averages the blocks "with learned weights"; the code first projects every block with one
shared ``Linear(768 → 512, bias=False)``, then weights, sums and L2-normalises: ``projection:
shared`` (code) or ``none`` (paper: the weighted average of the raw blocks). Pixel (x, y) of an
image of side S samples the grid at ``x / S · 2 − 1`` (``grid_sample``, ``align_corners=False``),
without the half-pixel centre shift, as the code does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from afcli.config import check_numbers
from afcli.errors import InputError
from afcli.models.pretrained import PretrainedModel

PROJECTIONS = ("shared", "none")


@dataclass
class DFCConfig:
    block_dim: int = 768  # channels of one backbone block (DINOv2 ViT-B/14)
    blocks: int = 3  # the last 3 blocks, without the final norm
    projection: str = "shared"
    proj_dim: int = 512
    text_dim: int = 512  # CLIP ViT-B/32 text
    hidden: int = 1024
    out_dim: int = 256
    mask_head: bool = True
    image_size: int = 224

    def check(self) -> "DFCConfig":
        check_numbers(self)
        if self.projection not in PROJECTIONS:
            raise InputError(f"model.projection must be one of {', '.join(PROJECTIONS)}, got {self.projection!r}")
        for name in ("block_dim", "blocks", "proj_dim", "text_dim", "hidden", "out_dim", "image_size"):
            if getattr(self, name) < 1:
                raise InputError(f"model.{name} must be positive")
        return self

    @property
    def feature_dim(self) -> int:
        return self.proj_dim if self.projection == "shared" else self.block_dim


def sample_pixels(grid: torch.Tensor, pixels: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear features (B, P, D) of a grid (B, D, h, w) at pixels (B, P, 2) = (x, y) of an image of side ``size``."""
    coords = pixels.to(grid.dtype) / size * 2 - 1
    sampled = F.grid_sample(grid, coords.unsqueeze(1), mode="bilinear", padding_mode="zeros", align_corners=False)
    return sampled[:, :, 0].transpose(1, 2)


def raw_features(grid: torch.Tensor, blocks: int, pixels: torch.Tensor, size: int) -> torch.Tensor:
    """The DINO baseline of the released code: the blocks averaged uniformly, L2-normalised, sampled
    at the pixels and L2-normalised again (no text, no MLP)."""
    batch, channels, h, w = grid.shape
    mean = grid.view(batch, blocks, channels // blocks, h, w).mean(1)
    return F.normalize(sample_pixels(F.normalize(mean, dim=1), pixels, size), dim=-1)


class FunctionalCorrespondence(torch.nn.Module, PretrainedModel):
    model_type = "dfc"
    config_class = DFCConfig
    display_name = "functional correspondence head"

    def __init__(self, config: DFCConfig):
        super().__init__()
        self.config = config.check()
        c = config
        self.proj = torch.nn.Linear(c.block_dim, c.proj_dim, bias=False) if c.projection == "shared" else None
        self.block_weights = torch.nn.Parameter(torch.rand(c.blocks))  # the code's init; softmax-ed
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(c.feature_dim + c.text_dim, c.hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(c.hidden, c.hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(c.hidden, c.out_dim, bias=False),
        )
        self.mask = torch.nn.Linear(c.out_dim, 1) if c.mask_head else None

    def fuse(self, grid: torch.Tensor) -> torch.Tensor:
        """Backbone blocks (B, blocks·D, h, w) → one L2-normalised map (B, F, h, w)."""
        c = self.config
        batch, channels, h, w = grid.shape
        if channels != c.blocks * c.block_dim:
            raise InputError(f"backbone gives {channels} channels, the head expects {c.blocks} x {c.block_dim}")
        blocks = grid.view(batch, c.blocks, c.block_dim, h, w).permute(0, 1, 3, 4, 2)
        if self.proj is not None:
            blocks = self.proj(blocks)
        weights = self.block_weights.softmax(0).view(1, -1, 1, 1, 1)
        return F.normalize((blocks * weights).sum(1), dim=-1).permute(0, 3, 1, 2)

    def forward(self, fused: torch.Tensor, pixels: torch.Tensor, text: torch.Tensor):
        """Fused maps (B, F, h, w), pixels (B, P, 2) and the function's text (B, T) → features (B, P,
        out) on the unit sphere and mask logits (B, P) (None without the mask head)."""
        local = sample_pixels(fused, pixels, self.config.image_size)
        conditioned = torch.cat([local, text.unsqueeze(1).expand(-1, local.shape[1], -1).to(local.dtype)], -1)
        features = F.normalize(self.mlp(conditioned), dim=-1)
        return features, self.mask(features).squeeze(-1) if self.mask is not None else None
