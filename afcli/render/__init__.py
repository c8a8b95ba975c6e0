"""Headless multi-view rendering of meshes and point clouds (``afcli render``, and ``lift`` on the fly).

One interface, :func:`render`, over two backends for meshes — Embree ray casting (trimesh +
embreex; exact and fast on CPU) and a pure-PyTorch rasteriser (no extra dependency; runs on GPU) —
chosen automatically (``auto``: Embree on CPU when installed, else torch) or forced with
``backend=``. Point clouds are always splatted by the torch z-buffer (no ray caster handles
points). Every backend returns the same :class:`Views`: RGB, depth along the optical axis, the id
of the visible face or point per pixel (-1 on background) and the cameras (see
:mod:`afcli.render.cameras` for the conventions).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from afcli.errors import InputError
from afcli.extras import available, require
from afcli.render.cameras import RIGS, Cameras, make_rig
from afcli.render.raster import face_depth, rasterize_mesh, splat_points

BACKENDS = ("auto", "embree", "torch")
DEFAULT_SPLAT_RADIUS = 2.0  # pixels at 224², scaled with the image size
DEFAULT_LIGHT = (-0.4, -0.6, -1.0)  # towards the light, camera coordinates: from the upper left, behind the camera
DEFAULT_BACKGROUND = (255, 255, 255)
AMBIENT = 0.3
GREY = (0.7, 0.7, 0.7)

__all__ = ["BACKENDS", "RIGS", "Cameras", "Shape", "Views", "make_rig", "render"]


@dataclass
class Shape:
    """What gets rendered: a mesh (``faces`` set) or a point cloud, with optional colours in [0, 1]
    per face or per vertex/point, and normals per point (clouds)."""

    vertices: torch.Tensor
    faces: torch.Tensor | None = None
    face_colors: torch.Tensor | None = None
    vertex_colors: torch.Tensor | None = None
    normals: torch.Tensor | None = None

    @property
    def is_mesh(self) -> bool:
        return self.faces is not None


@dataclass
class Views:
    rgb: torch.Tensor  # (V, H, W, 3) uint8
    depth: torch.Tensor  # (V, H, W) float32, 0 on background
    index: torch.Tensor  # (V, H, W) int64 face or point id, -1 on background
    cameras: Cameras
    backend: str


def embree_available() -> bool:
    return available("embreex")


def resolve_backend(backend: str, shape: Shape) -> str:
    if backend not in BACKENDS:
        raise InputError(f"unknown render backend {backend!r} (choose from {', '.join(BACKENDS)})")
    if not shape.is_mesh:
        return "torch"
    if backend == "auto":
        return "embree" if shape.vertices.device.type == "cpu" and embree_available() else "torch"
    if backend == "embree":
        require("embreex", "render backend 'embree'")
    return backend


def _embree_index(vertices: torch.Tensor, faces: torch.Tensor, cameras: Cameras) -> torch.Tensor:
    import numpy as np
    import trimesh
    from trimesh.ray.ray_pyembree import RayMeshIntersector

    mesh = trimesh.Trimesh(vertices.double().cpu().numpy(), faces.cpu().numpy(), process=False)
    origins, directions = cameras.rays()
    count = directions[0].numel() // 3
    ray_origins = origins.double().repeat_interleave(count, 0).cpu().numpy()
    ray_directions = torch.nn.functional.normalize(directions.double().reshape(-1, 3), dim=-1).cpu().numpy()
    hits = RayMeshIntersector(mesh, scale_to_box=False).intersects_first(ray_origins, ray_directions)
    return (
        torch.from_numpy(np.asarray(hits, np.int64))
        .view(len(cameras), cameras.height, cameras.width)
        .to(vertices.device)
    )


def _shade(
    shape: Shape, views_index: torch.Tensor, depth: torch.Tensor, cameras: Cameras, light, background
) -> torch.Tensor:
    """Lambertian shading, two-sided (normals turned towards the camera), plus an ambient term."""
    device = views_index.device
    hit = views_index >= 0
    view = torch.nonzero(hit)[:, 0]
    ids = views_index[hit]
    origins, directions = cameras.rays()
    direction = directions[hit].float()
    grey = torch.tensor(GREY, device=device).expand(ids.numel(), 3)
    if shape.is_mesh:
        tri = shape.vertices[shape.faces[ids]].float()
        normal = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        if shape.face_colors is not None:
            color = shape.face_colors[ids].float()
        elif shape.vertex_colors is not None:
            point = origins[view].float() + depth[hit].unsqueeze(-1) * direction
            color = (_barycentric(tri, point).unsqueeze(-1) * shape.vertex_colors[shape.faces[ids]].float()).sum(1)
        else:
            color = grey
    else:
        normal = shape.normals[ids].float() if shape.normals is not None else -direction
        color = shape.vertex_colors[ids].float() if shape.vertex_colors is not None else grey
    normal = torch.nn.functional.normalize(normal, dim=-1)
    normal = torch.where(((normal * direction).sum(-1, keepdim=True) > 0), -normal, normal)
    towards_light = cameras.c2w[view, :3, :3].float() @ torch.tensor(light, dtype=torch.float32, device=device)
    intensity = AMBIENT + (1 - AMBIENT) * (normal * torch.nn.functional.normalize(towards_light, dim=-1)).sum(-1).clamp(
        min=0
    )
    rgb = torch.tensor(background, dtype=torch.uint8, device=device).expand(*views_index.shape, 3).clone()
    rgb[hit] = (color * intensity.unsqueeze(-1) * 255).round().clamp(0, 255).to(torch.uint8)
    return rgb


def _barycentric(tri: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    e0, e1, p = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], point - tri[:, 0]
    d00, d01, d11 = (e0 * e0).sum(-1), (e0 * e1).sum(-1), (e1 * e1).sum(-1)
    d20, d21 = (p * e0).sum(-1), (p * e1).sum(-1)
    denominator = (d00 * d11 - d01 * d01).clamp(min=1e-20)
    v = (d11 * d20 - d01 * d21) / denominator
    w = (d00 * d21 - d01 * d20) / denominator
    return torch.stack([1 - v - w, v, w], -1).clamp(0, 1)


def render(
    shape: Shape,
    cameras: Cameras,
    *,
    backend: str = "auto",
    splat_radius: float | None = None,
    light=DEFAULT_LIGHT,
    background=DEFAULT_BACKGROUND,
) -> Views:
    """Render ``shape`` from every camera; ``splat_radius`` (pixels) applies to point clouds."""
    backend = resolve_backend(backend, shape)
    cameras = cameras.to(shape.vertices.device)
    if shape.is_mesh:
        if backend == "embree":
            index = _embree_index(shape.vertices, shape.faces, cameras)
            depth = face_depth(shape.vertices, shape.faces, index, cameras)
        else:
            index, depth = rasterize_mesh(shape.vertices, shape.faces, cameras)
    else:
        radius = DEFAULT_SPLAT_RADIUS * cameras.width / 224 if splat_radius is None else splat_radius
        index, depth = splat_points(shape.vertices, cameras, radius)
    return Views(_shade(shape, index, depth, cameras, light, background), depth, index, cameras, backend)
