"""Readers for what ``afcli data import`` accepts: meshes, point clouds and PIAD point files.

Every reader raises :class:`InputError` naming the file for anything it cannot use, so the importer
can stop (or skip, with ``--skip-bad``) with a one-line message.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from afcli.data.affordance import PIAD_AFFORDANCES
from afcli.errors import InputError

MESH_SUFFIXES = (".obj", ".ply", ".glb", ".gltf", ".off", ".stl")
CLOUD_SUFFIXES = (".npy", ".txt", ".xyz", ".ply")
PIAD_COLUMNS = 5 + len(PIAD_AFFORDANCES)


@dataclass
class Geometry:
    """What a file holds: a mesh (faces set) or a point cloud (maybe with normals or labels)."""

    vertices: np.ndarray
    faces: np.ndarray | None = None
    normals: np.ndarray | None = None
    affordance: np.ndarray | None = None  # (N, 17) for PIAD files, in PIAD's channel order
    shape_id: str | None = None
    face_colors: np.ndarray | None = None  # (F, 3) in [0, 1]
    vertex_colors: np.ndarray | None = None  # (V, 3) in [0, 1]


def _finite(path: Path, array: np.ndarray, what: str) -> np.ndarray:
    if not np.isfinite(array).all():
        raise InputError(f"{what} contain NaN or Inf", path)
    return array


def read_piad(path: Path) -> tuple[str, Geometry]:
    """A PIAD point file: 2048 lines of ``shape_id Category x y z a_0 … a_16``."""
    try:
        rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read ({error})", path) from None
    if not rows:
        raise InputError("empty file", path)
    bad = next((i for i, row in enumerate(rows) if len(row) != PIAD_COLUMNS), None)
    if bad is not None:
        raise InputError(f"line {bad + 1} has {len(rows[bad])} fields, a PIAD point file has {PIAD_COLUMNS}", path)
    try:
        values = np.array([row[2:] for row in rows], dtype=np.float32)
    except ValueError:
        raise InputError("non-numeric coordinates or affordance values", path) from None
    categories = {row[1] for row in rows}
    if len(categories) != 1:
        raise InputError(f"mixes categories {sorted(categories)}", path)
    xyz = _finite(path, values[:, :3], "coordinates")
    affordance = _finite(path, values[:, 3:], "affordance values")
    return rows[0][1], Geometry(xyz, affordance=affordance, shape_id=rows[0][0])


def is_piad_file(path: Path) -> bool:
    if path.suffix != ".txt":
        return False
    with open(path, "r", errors="replace") as handle:
        fields = handle.readline().split()
    if len(fields) != PIAD_COLUMNS:
        return False
    try:
        float(fields[1])
    except ValueError:
        return True
    return False


def read_cloud(path: Path) -> Geometry:
    """``.npy`` (N, 3+) or whitespace ``.txt``/``.xyz`` (x y z [nx ny nz …]) point clouds of real numbers."""
    try:
        with warnings.catch_warnings():  # numpy warns (empty text files …) and then fails or returns nothing
            warnings.simplefilter("ignore")
            data = np.load(path, allow_pickle=False) if path.suffix == ".npy" else np.loadtxt(path, ndmin=2)
    except Exception as error:  # numpy raises ValueError, EOFError, OSError, UnicodeDecodeError … by damage
        reason = " ".join(str(error).split())[:120] or type(error).__name__
        raise InputError(f"cannot read point cloud ({reason})", path) from None
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "fiu":
        kind = type(data).__name__ if not isinstance(data, np.ndarray) else f"{data.dtype} values"
        raise InputError(f"expected an (N, 3+) array of real numbers, got {kind}", path)
    data = np.asarray(data, dtype=np.float32)
    if data.ndim != 2 or data.shape[1] < 3 or len(data) == 0:
        raise InputError(f"expected an (N, 3+) array of points, got shape {data.shape}", path)
    normals = _finite(path, data[:, 3:6], "normals") if data.shape[1] >= 6 else None
    return Geometry(_finite(path, data[:, :3], "coordinates"), normals=normals)


def read_geometry(path: Path) -> Geometry:
    """Any supported file; meshes and ``.ply`` go through trimesh (a ``.ply`` without faces is a cloud)."""
    if not path.is_file():
        raise InputError("no such file", path)
    if path.suffix in (".npy", ".txt", ".xyz"):
        return read_cloud(path)
    import trimesh

    try:
        loaded = trimesh.load(path, force="mesh", process=False)
    except Exception as error:  # trimesh raises many types for unreadable files
        raise InputError(
            f"cannot parse mesh ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})", path
        ) from None
    vertices = np.asarray(getattr(loaded, "vertices", np.zeros((0, 3))), dtype=np.float64)
    faces = np.asarray(getattr(loaded, "faces", np.zeros((0, 3))), dtype=np.int64)
    if len(vertices) == 0:
        raise InputError("empty mesh (no vertices)", path)
    _finite(path, vertices, "vertex coordinates")
    if len(faces) == 0:
        if path.suffix == ".ply":
            return Geometry(vertices.astype(np.float32))
        raise InputError("mesh has no faces", path)
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise InputError("faces index vertices that do not exist", path)
    return Geometry(vertices, faces=faces, **_colors(loaded))


def _colors(mesh) -> dict:
    """Face or vertex colours of a trimesh mesh (textures baked to vertex colours), in [0, 1]."""
    visual = getattr(mesh, "visual", None)
    kind = getattr(visual, "kind", None)
    try:
        if kind == "face":
            return {"face_colors": np.asarray(visual.face_colors)[:, :3] / 255.0}
        if kind == "vertex":
            return {"vertex_colors": np.asarray(visual.vertex_colors)[:, :3] / 255.0}
        if kind == "texture":
            return {"vertex_colors": np.asarray(visual.to_color().vertex_colors)[:, :3] / 255.0}
    except (ValueError, IndexError, AttributeError):  # broken materials: render without colours
        return {}
    return {}
