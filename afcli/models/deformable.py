"""The deformable transformer encoder over a multi-scale feature pyramid (Deformable DETR, Zhu et al.
2021), in the form AVSegFormer and AVAGFormer use it: a fixed sine positional encoding with raw
(unnormalised) cumulative positions plus a learned embedding per level; post-norm layers of
multi-scale deformable self-attention and a GELU feed-forward; every token's reference point is its
pixel centre, the same point on every level (no padding masks, so valid ratios are 1).

The sampling core is :func:`afcli.ops.deformable.ms_deform_attn` (pure PyTorch).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from afcli.ops.deformable import ms_deform_attn


def sine_position(height: int, width: int, channels: int = 256, temperature: float = 1e4, device=None):
    """(channels, H, W): sin/cos pairs of the row index 1..H then of the column index 1..W
    (``normalize=False``, as AVSegFormer's ``SinePositionalEncoding(num_feats=128)``)."""
    feats = channels // 2
    rows = torch.arange(1, height + 1, dtype=torch.float32, device=device)[:, None].expand(height, width)
    cols = torch.arange(1, width + 1, dtype=torch.float32, device=device)[None, :].expand(height, width)
    dim_t = temperature ** (2 * (torch.arange(feats, device=device) // 2) / feats)

    def encode(position: torch.Tensor) -> torch.Tensor:
        angles = position[..., None] / dim_t
        return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=-1).flatten(-2)

    return torch.cat((encode(rows), encode(cols)), dim=-1).permute(2, 0, 1)


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention with Deformable DETR's initialisation: zero offset weights and
    a radial bias (head h looks along angle 2πh/M, point p at p+1 pixels), uniform attention, Xavier
    value and output projections."""

    def __init__(self, dim: int = 256, levels: int = 3, heads: int = 8, points: int = 4):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by {heads} heads")
        self.levels, self.heads, self.points = levels, heads, points
        self.sampling_offsets = nn.Linear(dim, heads * levels * points * 2)
        self.attention_weights = nn.Linear(dim, heads * levels * points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(heads, dtype=torch.float32) * (2 * math.pi / heads)
        grid = torch.stack((angles.cos(), angles.sin()), -1)
        grid = (grid / grid.abs().max(-1, keepdim=True).values)[:, None, None].repeat(1, levels, points, 1)
        grid *= torch.arange(1, points + 1, dtype=torch.float32)[None, None, :, None]
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for layer in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, query, reference, value, shapes: list[tuple[int, int]]) -> torch.Tensor:
        """query (N, Q, C), reference (N, Q, L, 2) as (x, y) in [0, 1], value (N, S, C) → (N, Q, C)."""
        batch, queries, _ = query.shape
        heads, levels, points = self.heads, self.levels, self.points
        values = self.value_proj(value).view(batch, value.shape[1], heads, -1)
        offsets = self.sampling_offsets(query).view(batch, queries, heads, levels, points, 2)
        weights = self.attention_weights(query).view(batch, queries, heads, levels * points).softmax(-1)
        sizes = torch.tensor([(w, h) for h, w in shapes], dtype=query.dtype, device=query.device)
        locations = reference[:, :, None, :, None, :] + offsets / sizes[None, None, None, :, None, :]
        out = ms_deform_attn(values, shapes, locations, weights.view(batch, queries, heads, levels, points))
        return self.output_proj(out)


class DeformableEncoderLayer(nn.Module):
    def __init__(self, dim=256, levels=3, heads=8, points=4, ffn=2048, dropout=0.1):
        super().__init__()
        self.attention = MSDeformAttn(dim, levels, heads, points)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn, dim))
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, tokens, position, reference, shapes):
        tokens = self.norm1(tokens + self.dropout1(self.attention(tokens + position, reference, tokens, shapes)))
        return self.norm2(tokens + self.dropout2(self.ffn(tokens)))


class DeformableEncoder(nn.Module):
    """Feature maps [(N, C, H_l, W_l)] → the same maps, each token having attended over all levels."""

    def __init__(self, dim=256, levels=3, layers=6, heads=8, points=4, ffn=2048, dropout=0.1):
        super().__init__()
        self.level_embed = nn.Parameter(torch.empty(levels, dim).normal_())
        layer = DeformableEncoderLayer
        self.layers = nn.ModuleList(layer(dim, levels, heads, points, ffn, dropout) for _ in range(layers))

    def forward(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        shapes = [(int(m.shape[-2]), int(m.shape[-1])) for m in maps]  # constants when traced
        dim = maps[0].shape[1]
        tokens = torch.cat([m.flatten(2).transpose(1, 2) for m in maps], 1)
        position = torch.cat(
            [
                sine_position(h, w, dim, device=tokens.device).flatten(1).T + self.level_embed[level]
                for level, (h, w) in enumerate(shapes)
            ]
        )[None]
        reference = torch.cat([_pixel_centres(h, w, tokens.device) for h, w in shapes])
        reference = reference[None, :, None].expand(tokens.shape[0], -1, len(shapes), -1)
        for layer in self.layers:
            tokens = layer(tokens, position, reference, shapes)
        out, start = [], 0
        for m, (h, w) in zip(maps, shapes):
            out.append(tokens[:, start : start + h * w].transpose(1, 2).reshape(m.shape[0], dim, h, w))
            start += h * w
        return out


def _pixel_centres(height: int, width: int, device) -> torch.Tensor:
    """(H·W, 2) of ((j + 0.5) / W, (i + 0.5) / H) in raster order."""
    ys, xs = torch.meshgrid(
        (torch.arange(height, device=device) + 0.5) / height,
        (torch.arange(width, device=device) + 0.5) / width,
        indexing="ij",
    )
    return torch.stack((xs.flatten(), ys.flatten()), -1)
