"""Triangle-mesh building blocks (y up), surface sampling and a deterministic PLY writer.

Own code rather than trimesh primitives so that the built-in shape set is byte-identical for a
given seed whatever trimesh version is installed. Every primitive winds its triangles so that face
normals point out of the material.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np


@dataclass
class Mesh:
    vertices: np.ndarray  # (V, 3) float64
    faces: np.ndarray  # (F, 3) int64

    def moved(self, offset: Sequence[float]) -> "Mesh":
        return Mesh(self.vertices + np.asarray(offset, float), self.faces)

    def rotated(self, axis: str, angle: float) -> "Mesh":
        c, s = np.cos(angle), np.sin(angle)
        i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
        rotation = np.eye(3)
        rotation[i, i], rotation[i, j], rotation[j, i], rotation[j, j] = c, -s, s, c
        return Mesh(self.vertices @ rotation.T, self.faces)


def merge(meshes: Sequence[Mesh]) -> Mesh:
    vertices, faces, base = [], [], 0
    for mesh in meshes:
        vertices.append(mesh.vertices)
        faces.append(mesh.faces + base)
        base += len(mesh.vertices)
    return Mesh(np.concatenate(vertices), np.concatenate(faces))


def _grid(rings: list[list[int]], closed: bool) -> np.ndarray:
    """Triangles between consecutive rings of vertex ids; collapsed rings (poles) give fans."""
    faces = []
    for lower, upper in zip(rings[:-1], rings[1:]):
        count = len(lower)
        for j in range(count if closed else count - 1):
            a, b = lower[j], lower[(j + 1) % count]
            c, d = upper[j], upper[(j + 1) % count]
            for tri in ((a, b, c), (b, d, c)):
                if len(set(tri)) == 3:
                    faces.append(tri)
    return np.asarray(faces, dtype=np.int64).reshape(-1, 3)


def lathe(profile: Sequence[tuple[float, float]], segments: int = 32) -> Mesh:
    """Surface of revolution about the y axis of a profile of ``(radius, y)`` points.

    Walking the profile with the material on the left (e.g. up the outside of a wall) makes the
    normals point outwards. A radius of 0 makes a single pole vertex.
    """
    angles = 2 * np.pi * np.arange(segments) / segments
    vertices, rings = [], []
    for radius, y in profile:
        if radius == 0:
            rings.append([len(vertices)] * segments)
            vertices.append((0.0, y, 0.0))
        else:
            rings.append(list(range(len(vertices), len(vertices) + segments)))
            vertices.extend((radius * np.sin(a), y, radius * np.cos(a)) for a in angles)
    return Mesh(np.asarray(vertices, float), _grid(rings, closed=True))


def box(size: Sequence[float], centre: Sequence[float] = (0, 0, 0)) -> Mesh:
    half = np.asarray(size, float) / 2
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float) * half
    faces = np.array(
        [
            [0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5],  # -x, +x
            [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6],  # -y, +y
            [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3],  # -z, +z
        ]
    )  # fmt: skip
    return Mesh(corners + np.asarray(centre, float), faces)


def extrude(polygon: Sequence[tuple[float, float]], thickness: float) -> Mesh:
    """A convex polygon in the xy plane (counter-clockwise) extruded symmetrically along z."""
    outline = np.asarray(polygon, float)
    count = len(outline)
    half = thickness / 2
    vertices = np.concatenate([np.c_[outline, np.full(count, -half)], np.c_[outline, np.full(count, half)]])
    faces = [(0, j + 1, j) for j in range(1, count - 1)]  # back cap, facing -z
    faces += [(count, count + j, count + j + 1) for j in range(1, count - 1)]  # front cap, facing +z
    for j in range(count):
        k = (j + 1) % count
        faces += [(j, k, count + j), (k, count + k, count + j)]
    return Mesh(vertices, np.asarray(faces, np.int64))


def tube(path: Sequence[Sequence[float]], radius: float, up: Sequence[float], segments: int = 12, closed=False) -> Mesh:
    """A tube of circular section swept along a path lying in the plane normal to ``up``."""
    points = np.asarray(path, float)
    up = np.asarray(up, float) / np.linalg.norm(up)
    tangents = np.gradient(points, axis=0)
    if closed:
        tangents = np.roll(points, -1, axis=0) - np.roll(points, 1, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    sides = np.cross(tangents, up)
    sides /= np.linalg.norm(sides, axis=1, keepdims=True)
    angles = 2 * np.pi * np.arange(segments) / segments
    vertices = (
        points[:, None]
        + radius * np.cos(angles)[None, :, None] * sides[:, None]
        + radius * np.sin(angles)[None, :, None] * up[None, None]
    ).reshape(-1, 3)
    rings = [list(range(i * segments, (i + 1) * segments)) for i in range(len(points))]
    if closed:
        rings.append(rings[0])
    faces = _grid(rings, closed=True)
    return Mesh(vertices, faces[:, ::-1].copy())


def arc(centre: Sequence[float], radius: float, start: float, stop: float, steps: int, plane: str = "xy"):
    """Points on a circular arc in the given axis plane."""
    angles = np.linspace(start, stop, steps)
    u, v = np.cos(angles) * radius, np.sin(angles) * radius
    zero = np.zeros_like(u)
    coords = {"xy": (u, v, zero), "xz": (u, zero, v), "yz": (zero, u, v)}[plane]
    return np.stack(coords, axis=1) + np.asarray(centre, float)


@dataclass
class Part:
    name: str
    mesh: Mesh
    affordances: list[str] = field(default_factory=list)
    color: tuple[int, int, int] = (180, 180, 180)


def face_areas_normals(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cross = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    norm = np.linalg.norm(cross, axis=1)
    normals = cross / np.maximum(norm, 1e-30)[:, None]
    return norm / 2, normals


def sample_surface(
    vertices: np.ndarray, faces: np.ndarray, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area-weighted uniform samples on the surface: ``(points, normals, face_index)``."""
    areas, normals = face_areas_normals(vertices, faces)
    total = areas.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError("mesh has no surface area")
    cumulative = np.cumsum(areas) / total
    face = np.minimum(np.searchsorted(cumulative, rng.random(count), side="right"), len(faces) - 1)
    u, v = rng.random(count), rng.random(count)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    a, b, c = (vertices[faces[face, i]] for i in range(3))
    points = a + u[:, None] * (b - a) + v[:, None] * (c - a)
    return points, normals[face], face


def write_ply(path: Path, vertices: np.ndarray, faces: np.ndarray, face_colors: np.ndarray) -> None:
    """Binary little-endian PLY with per-face colours; identical bytes for identical input."""
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment afcli synthetic shape\n"
        f"element vertex {len(vertices)}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )
    face_record = np.dtype([("n", "u1"), ("v", "<i4", (3,)), ("rgb", "u1", (3,))])
    records = np.empty(len(faces), face_record)
    records["n"], records["v"], records["rgb"] = 3, faces, face_colors
    with open(path, "wb") as handle:
        handle.write(header.encode("ascii"))
        handle.write(np.asarray(vertices, "<f4").tobytes())
        handle.write(records.tobytes())
