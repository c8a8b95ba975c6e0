"""Multi-scale deformable attention's sampling core (Deformable DETR, Zhu et al. 2021) in pure
PyTorch: the CUDA kernel (``MultiScaleDeformableAttention``) that AVAGFormer's encoder calls is not
available here, and the same maths runs on ``grid_sample``.

Deformable DETR's own fallback calls ``grid_sample`` once per level and stacks the results.
:func:`ms_deform_attn` instead lays the levels out on one canvas, each below the previous with one
zero row between them and zero columns right of the narrower ones, and samples every level in one
call. Zero bands make a bilinear tap that falls outside a level read zeros, as ``padding_mode=
"zeros"`` does; pixel coordinates are clamped to one pixel outside each level (where the weight of the
inside pixels is exactly zero), so a location far outside reads zeros too and never another level.
Outputs and gradients equal the per-level form (tests/ops/test_deformable.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ms_deform_attn(
    value: torch.Tensor, shapes: list[tuple[int, int]], locations: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Attention-weighted bilinear samples of multi-level values.

    value (N, S, M, D) — the levels' H_l×W_l maps flattened in raster order and concatenated, M heads
    of D channels; locations (N, Q, M, L, P, 2) — (x, y) in [0, 1] of each level (align_corners
    False: 0 and 1 are the outer edges); weights (N, Q, M, L, P). Returns (N, Q, M·D).
    """
    batch, _, heads, dim = value.shape
    _, queries, _, levels, points, _ = locations.shape
    canvas, rows, width = _canvas(value, shapes)
    height = canvas.shape[-2]
    sizes = torch.tensor(shapes, dtype=locations.dtype, device=locations.device)  # (L, 2) as (H, W)
    x = (locations[..., 0] * sizes[:, 1, None] - 0.5).clamp(min=-1.0)
    x = torch.minimum(x, sizes[:, 1, None])
    y = (locations[..., 1] * sizes[:, 0, None] - 0.5).clamp(min=-1.0)
    y = torch.minimum(y, sizes[:, 0, None]) + torch.tensor(rows, dtype=y.dtype, device=y.device)[:, None]
    grid = torch.stack(((x + 0.5) / width * 2 - 1, (y + 0.5) / height * 2 - 1), -1)  # (N, Q, M, L, P, 2)
    grid = grid.permute(0, 2, 1, 3, 4, 5).reshape(batch * heads, queries, levels * points, 2)
    sampled = F.grid_sample(canvas, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    attention = weights.permute(0, 2, 1, 3, 4).reshape(batch * heads, queries, levels * points, 1)
    out = torch.matmul(sampled.permute(0, 2, 1, 3), attention)  # (N·M, Q, D, 1)
    return out.reshape(batch, heads, queries, dim).permute(0, 2, 1, 3).reshape(batch, queries, heads * dim)


def _canvas(value: torch.Tensor, shapes: list[tuple[int, int]]) -> tuple[torch.Tensor, list[int], int]:
    """(N·M, D, Σ(H_l + 1), max W_l + 1) with the levels stacked and zero bands between them, the
    first row of each level, and the canvas width."""
    batch, _, heads, dim = value.shape
    width = max(w for _, w in shapes) + 1
    rows, top = [], 0
    for h, _ in shapes:
        rows.append(top)
        top += h + 1
    canvas = value.new_zeros(batch * heads, dim, top, width)
    start = 0
    for (h, w), row in zip(shapes, rows):
        level = value[:, start : start + h * w].permute(0, 2, 3, 1).reshape(batch * heads, dim, h, w)
        canvas[:, :, row : row + h, :w] = level
        start += h * w
    return canvas, rows, width


def ms_deform_attn_per_level(
    value: torch.Tensor, shapes: list[tuple[int, int]], locations: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """The same, as Deformable DETR's ``ms_deform_attn_core_pytorch`` computes it (one
    ``grid_sample`` per level, then a stack): the reference the tests and benchmarks/bench_deformable.py
    hold :func:`ms_deform_attn` to."""
    batch, _, heads, dim = value.shape
    _, queries, _, levels, points, _ = locations.shape
    maps = value.split([h * w for h, w in shapes], dim=1)
    grids = 2 * locations - 1
    samples = []
    for level, (h, w) in enumerate(shapes):
        level_map = maps[level].flatten(2).transpose(1, 2).reshape(batch * heads, dim, h, w)
        grid = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        samples.append(F.grid_sample(level_map, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    attention = weights.transpose(1, 2).reshape(batch * heads, 1, queries, levels * points)
    out = (torch.stack(samples, dim=-2).flatten(-2) * attention).sum(-1)
    return out.view(batch, heads * dim, queries).transpose(1, 2)
