"""Camera rigs around an object normalised into the unit sphere.

Convention (OpenCV, as stored under ``/views/<rig>``): camera axes x right, y down, z forward;
``c2w`` maps camera to world coordinates; pixel ``(u, v)`` has its *centre* at integer
coordinates, so the image spans ``[-0.5, W - 0.5]`` and ``cx = (W - 1) / 2``; depth is the
distance along the optical axis (camera z), not along the ray. World up is +y (the built-in shapes
and the import normalisation are y-up).

Rigs
- ``sphere`` (default): the views split evenly over two rings, elevations +30° and -20°, the
  lower ring turned by half a step so that together they cover every azimuth step (12 views: one
  camera every 30° of azimuth, alternating rings).
- ``ring``: all views at one elevation of 20°, evenly spaced in azimuth.
The field of view is 40° and the distance is chosen so that the unit sphere fills the frame with a
5 % margin, whatever the view count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from afcli.errors import InputError

RIGS = ("sphere", "ring")
FIELD_OF_VIEW = 40.0
SPHERE_ELEVATIONS = (30.0, -20.0)
RING_ELEVATION = 20.0
MARGIN = 1.05


@dataclass
class Cameras:
    """``V`` pinhole cameras: intrinsics ``K`` (V, 3, 3), poses ``c2w`` (V, 4, 4), image size."""

    K: torch.Tensor
    c2w: torch.Tensor
    height: int
    width: int

    def __len__(self) -> int:
        return self.K.shape[0]

    def to(self, device) -> "Cameras":
        return Cameras(self.K.to(device), self.c2w.to(device), self.height, self.width)

    def project(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """World points (N, 3) → pixel coordinates (V, N, 2) and depth along the optical axis (V, N)."""
        rotation, origin = self.c2w[:, :3, :3], self.c2w[:, :3, 3]
        camera = torch.einsum("vji,vnj->vni", rotation, points.unsqueeze(0) - origin.unsqueeze(1))
        depth = camera[..., 2]
        safe = torch.where(depth.abs() > 1e-9, depth, torch.full_like(depth, 1e-9))
        pixels = torch.einsum("vij,vnj->vni", self.K[:, :2, :3], camera / safe.unsqueeze(-1))
        return pixels, depth

    def rays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-pixel ray origins (V, 3) and directions (V, H, W, 3) with unit camera-z component,
        so that ``origin + depth * direction`` is the surface point seen at that pixel."""
        v, u = torch.meshgrid(
            torch.arange(self.height, dtype=self.K.dtype, device=self.K.device),
            torch.arange(self.width, dtype=self.K.dtype, device=self.K.device),
            indexing="ij",
        )
        pixels = torch.stack([u, v, torch.ones_like(u)], -1)
        camera = torch.einsum("vij,hwj->vhwi", torch.linalg.inv(self.K), pixels)
        directions = torch.einsum("vij,vhwj->vhwi", self.c2w[:, :3, :3], camera)
        return self.c2w[:, :3, 3], directions


def look_at(eye: torch.Tensor, target: torch.Tensor | None = None, up=(0.0, 1.0, 0.0)) -> torch.Tensor:
    """OpenCV camera-to-world poses (V, 4, 4) for cameras at ``eye`` (V, 3) looking at ``target``."""
    target = torch.zeros_like(eye) if target is None else target
    forward = torch.nn.functional.normalize(target - eye, dim=-1)
    up = torch.tensor(up, dtype=eye.dtype).expand_as(eye)
    right = torch.linalg.cross(forward, up)
    # A camera straight above or below the target has no defined "right": use world x then.
    degenerate = right.norm(dim=-1, keepdim=True) < 1e-6
    right = torch.where(degenerate, torch.tensor([1.0, 0.0, 0.0], dtype=eye.dtype).expand_as(eye), right)
    right = torch.nn.functional.normalize(right, dim=-1)
    down = torch.linalg.cross(forward, right)
    pose = torch.eye(4, dtype=eye.dtype).repeat(eye.shape[0], 1, 1)
    pose[:, :3, 0], pose[:, :3, 1], pose[:, :3, 2], pose[:, :3, 3] = right, down, forward, eye
    return pose


def intrinsics(size: int, views: int, fov: float = FIELD_OF_VIEW) -> torch.Tensor:
    focal = (size / 2) / math.tan(math.radians(fov) / 2)
    centre = (size - 1) / 2
    K = torch.tensor([[focal, 0.0, centre], [0.0, focal, centre], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return K.repeat(views, 1, 1)


def rig_angles(rig: str, views: int) -> list[tuple[float, float]]:
    """(azimuth, elevation) in degrees of each camera of a rig."""
    if rig not in RIGS:
        raise InputError(f"unknown rig {rig!r} (choose from {', '.join(RIGS)})")
    if views < 1:
        raise InputError(f"--views must be positive, got {views}")
    if rig == "ring":
        return [(360.0 * i / views, RING_ELEVATION) for i in range(views)]
    upper = (views + 1) // 2
    lower = views - upper
    step = 360.0 / max(upper, 1)
    angles = [(step * i, SPHERE_ELEVATIONS[0]) for i in range(upper)]
    angles += [(step * i + step / 2, SPHERE_ELEVATIONS[1]) for i in range(lower)]
    return sorted(angles)


def make_rig(rig: str = "sphere", views: int = 12, size: int = 224, fov: float = FIELD_OF_VIEW) -> Cameras:
    return orbit(rig_angles(rig, views), size, fov)


def orbit(angles: list[tuple[float, float]], size: int = 224, fov: float = FIELD_OF_VIEW) -> Cameras:
    """Cameras looking at the origin from (azimuth, elevation) in degrees, at the distance where the
    unit sphere fills the frame with a 5 % margin."""
    if size < 8:
        raise InputError(f"--size must be at least 8 pixels, got {size}")
    distance = MARGIN / math.sin(math.radians(fov) / 2)
    eyes = []
    for azimuth, elevation in angles:
        a, e = math.radians(azimuth), math.radians(elevation)
        eyes.append(
            (distance * math.cos(e) * math.sin(a), distance * math.sin(e), distance * math.cos(e) * math.cos(a))
        )
    pose = look_at(torch.tensor(eyes, dtype=torch.float64))
    return Cameras(intrinsics(size, len(angles), fov).float(), pose.float(), size, size)
