"""Pixel correspondences between two kept renders of one object: the same surface point seen in
both views (dense functional correspondence's multi-view pairs; the released code intersects the
visible point indices of two views, afcli follows each pixel's surface point from its depth)."""

from __future__ import annotations

import torch

from afcli.render.cameras import Cameras


def surface_points(depth: torch.Tensor, K: torch.Tensor, c2w: torch.Tensor) -> torch.Tensor:
    """World point seen at each pixel (V, H, W, 3) from depth along the optical axis (NaN on background)."""
    V, H, W = depth.shape
    origins, directions = Cameras(K, c2w, H, W).rays()
    world = origins.view(V, 1, 1, 3) + depth.unsqueeze(-1) * directions
    return torch.where((depth > 0).unsqueeze(-1), world, torch.full_like(world, float("nan")))


def view_correspondences(
    depth: torch.Tensor,
    index: torch.Tensor,
    K: torch.Tensor,
    c2w: torch.Tensor,
    region_a: torch.Tensor,
    region_b: torch.Tensor,
    tolerance: float = 0.02,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Views a and b given as (2, H, W) depth / index and (2, …) cameras; the pixels of ``region_a``
    whose surface point view b sees inside ``region_b`` → pixel pairs (M, 2) and (M, 2) as (x, y).
    Seen means: projected inside the image, on the same face (or point) id, and at the same depth
    within ``tolerance`` (world units)."""
    H, W = depth.shape[-2:]
    world = surface_points(depth[:1], K[:1], c2w[:1])[0]
    rows, cols = torch.nonzero(region_a & (depth[0] > 0), as_tuple=True)
    if len(rows) == 0:
        empty = torch.zeros(0, 2, dtype=torch.long, device=depth.device)
        return empty, empty
    pixels, z = Cameras(K[1:], c2w[1:], H, W).project(world[rows, cols])
    at = pixels[0].round().long()
    inside = (at[:, 0] >= 0) & (at[:, 0] < W) & (at[:, 1] >= 0) & (at[:, 1] < H) & (z[0] > 0)
    x, y = at[:, 0].clamp(0, W - 1), at[:, 1].clamp(0, H - 1)
    same = (index[1, y, x] == index[0, rows, cols]) & ((depth[1, y, x] - z[0]).abs() <= tolerance)
    keep = inside & same & region_b[y, x]
    return torch.stack([cols[keep], rows[keep]], 1), torch.stack([x[keep], y[keep]], 1)
