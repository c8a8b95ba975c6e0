"""Pure-PyTorch rasterisation: exact per-pixel face ids for meshes, z-buffered splats for points.

Needs nothing beyond torch and runs unchanged on a GPU. Every candidate (pixel, primitive) pair
becomes one int64 key ``quantised depth << 32 | primitive id`` and one ``scatter_reduce(amin)``
per image keeps the nearest primitive (ties: the lowest id). Triangles are bucketed by the size of
their pixel bounding box so that a few large triangles do not blow up the candidate count of the
many small ones. Inside test: all three edge functions ≥ 0 at the pixel centre (pixels on a shared
edge go to the nearer, then lower-id face). Depth is then recomputed exactly by intersecting each
pixel's ray with the plane of its face, so it agrees with a ray caster to float precision.
"""

from __future__ import annotations

import math

import torch

from afcli.render.cameras import Cameras

NEAR = 1e-4
_DEPTH_SCALE = float(1 << 20)  # depth quantum of 1e-6 units; keys stay below 2**63 up to depth 2**11
_EMPTY = torch.iinfo(torch.int64).max
_CHUNK = 1 << 22


def _resolve(keys: torch.Tensor) -> torch.Tensor:
    """Winning primitive id per pixel, -1 where nothing was drawn."""
    return torch.where(keys == _EMPTY, torch.full_like(keys, -1), keys & 0xFFFFFFFF)


def _key(depth: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    return (depth * _DEPTH_SCALE).round().long().clamp_(0, (1 << 30) - 1) << 32 | ids


def rasterize_mesh(vertices: torch.Tensor, faces: torch.Tensor, cameras: Cameras) -> tuple[torch.Tensor, torch.Tensor]:
    """Face index (V, H, W) int64 (-1 = background) and depth (V, H, W) (0 = background)."""
    V, H, W = len(cameras), cameras.height, cameras.width
    pixels, z = cameras.project(vertices.to(cameras.K.dtype))
    tri_uv = pixels[:, faces]  # (V, F, 3, 2)
    tri_z = z[:, faces]
    F = faces.shape[0]
    view_of = torch.arange(V, device=faces.device).repeat_interleave(F)
    face_of = torch.arange(F, device=faces.device).repeat(V)
    tri_uv, tri_z = tri_uv.reshape(V * F, 3, 2), tri_z.reshape(V * F, 3)
    lo = tri_uv.amin(1).ceil().clamp(min=0)
    hi = torch.minimum(tri_uv.amax(1).floor(), torch.tensor([W - 1.0, H - 1.0], device=lo.device, dtype=lo.dtype))
    a, b, c = tri_uv[:, 0], tri_uv[:, 1], tri_uv[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    keep = (tri_z > NEAR).all(1) & (hi >= lo).all(1) & (area.abs() > 1e-12)
    span = (hi - lo + 1).amax(1).clamp(min=1)
    bucket = torch.ceil(torch.log2(span)).long()
    keys = torch.full((V * H * W,), _EMPTY, dtype=torch.int64, device=faces.device)
    for level in torch.unique(bucket[keep]).tolist():
        members = torch.nonzero(keep & (bucket == level)).squeeze(1)
        side = 1 << level
        dy, dx = torch.meshgrid(
            torch.arange(side, device=lo.device), torch.arange(side, device=lo.device), indexing="ij"
        )
        offsets = torch.stack([dx.reshape(-1), dy.reshape(-1)], -1).to(lo.dtype)
        step = max(1, _CHUNK // offsets.shape[0])
        for start in range(0, members.numel(), step):
            tri = members[start : start + step]
            candidate = lo[tri].unsqueeze(1) + offsets  # (T, s*s, 2)
            inside_box = (candidate <= hi[tri].unsqueeze(1)).all(-1)
            p = candidate
            ta, tb, tc = a[tri].unsqueeze(1), b[tri].unsqueeze(1), c[tri].unsqueeze(1)
            w0 = (tb[..., 0] - p[..., 0]) * (tc[..., 1] - p[..., 1]) - (tb[..., 1] - p[..., 1]) * (
                tc[..., 0] - p[..., 0]
            )
            w1 = (tc[..., 0] - p[..., 0]) * (ta[..., 1] - p[..., 1]) - (tc[..., 1] - p[..., 1]) * (
                ta[..., 0] - p[..., 0]
            )
            w2 = (ta[..., 0] - p[..., 0]) * (tb[..., 1] - p[..., 1]) - (ta[..., 1] - p[..., 1]) * (
                tb[..., 0] - p[..., 0]
            )
            sign = torch.sign(area[tri]).unsqueeze(1)
            w0, w1, w2 = w0 * sign, w1 * sign, w2 * sign
            inside = inside_box & (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
            t, k = torch.nonzero(inside, as_tuple=True)
            total = area[tri].abs()[t]
            zt = tri_z[tri[t]]
            inverse_depth = (w0[t, k] / zt[:, 0] + w1[t, k] / zt[:, 1] + w2[t, k] / zt[:, 2]) / total
            depth = 1.0 / inverse_depth
            px = p[t, k].long()
            flat = view_of[tri[t]] * (H * W) + px[:, 1] * W + px[:, 0]
            keys.scatter_reduce_(0, flat, _key(depth, face_of[tri[t]]), "amin")
    index = _resolve(keys).view(V, H, W)
    return index, face_depth(vertices, faces, index, cameras)


def face_depth(vertices: torch.Tensor, faces: torch.Tensor, index: torch.Tensor, cameras: Cameras) -> torch.Tensor:
    """Exact depth of each pixel's face along its ray (0 on background)."""
    origins, directions = cameras.rays()
    hit = index >= 0
    view = torch.nonzero(hit)[:, 0]
    tri = vertices.to(directions.dtype)[faces[index[hit]]]
    normal = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    direction = directions[hit]
    along = (normal * direction).sum(-1)
    along = torch.where(along.abs() > 1e-12, along, torch.full_like(along, 1e-12))
    depth = torch.zeros(index.shape, dtype=directions.dtype, device=index.device)
    depth[hit] = (normal * (tri[:, 0] - origins[view])).sum(-1) / along
    return depth.float()


def splat_offsets(radius: float, device=None) -> torch.Tensor:
    """Integer pixel offsets (K, 2) of a disc of ``radius`` pixels (the centre pixel at least)."""
    reach = int(math.floor(radius))
    grid = torch.arange(-reach, reach + 1, device=device)
    dy, dx = torch.meshgrid(grid, grid, indexing="ij")
    disc = dx * dx + dy * dy <= radius * radius + 1e-9
    return torch.stack([dx[disc], dy[disc]], -1)


def splat_points(points: torch.Tensor, cameras: Cameras, radius: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Point index (V, H, W) (-1 = background) and depth (V, H, W) of discs of ``radius`` pixels.

    Each point covers the pixels within ``radius`` of its rounded projection at its own depth; the
    nearest disc wins each pixel.
    """
    V, H, W = len(cameras), cameras.height, cameras.width
    pixels, z = cameras.project(points.to(cameras.K.dtype))
    offsets = splat_offsets(radius, points.device)
    centre = pixels.round().long()  # (V, N, 2)
    covered = centre.unsqueeze(2) + offsets  # (V, N, K, 2)
    valid = (z > NEAR).unsqueeze(-1) & (covered >= 0).all(-1) & (covered[..., 0] < W) & (covered[..., 1] < H)
    v, n, k = torch.nonzero(valid, as_tuple=True)
    flat = v * (H * W) + covered[v, n, k, 1] * W + covered[v, n, k, 0]
    keys = torch.full((V * H * W,), _EMPTY, dtype=torch.int64, device=points.device)
    keys.scatter_reduce_(0, flat, _key(z[v, n], n), "amin")
    index = _resolve(keys).view(V, H, W)
    hit = index >= 0
    depth = torch.zeros(V, H, W, dtype=torch.float32, device=points.device)
    depth[hit] = z.float()[torch.nonzero(hit)[:, 0], index[hit]]
    return index, depth
