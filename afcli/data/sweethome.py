"""Real furniture models for the built-in rooms from Debian's ``sweethome3d-furniture`` (CC0 / CC-BY 3.0;
``apt-get install sweethome3d-furniture``), when it is installed.

Its catalogues are zip files (``/usr/share/sweethome3d/furniture/*.sh3f``; ``AFCLI_SWEETHOME3D`` names
another folder) holding ``PluginFurnitureCatalog.properties`` — ``name#i``, ``model#i`` (an OBJ inside
the zip), ``width#i`` / ``depth#i`` / ``height#i`` in centimetres, optional ``modelRotation#i`` (a 3×3
matrix, row-major) — and the OBJ / MTL files. Models are y-up with their front towards +z; afcli turns
them z-up with the back towards -y (what the rooms put against a wall) and scales them to the listed
size. Faces keep their material's diffuse colour as a shade; the rooms give them a named hue.
Only models whose catalogue name is in :data:`NAMES` are used.
"""

from __future__ import annotations

import math
import os
import re
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from afcli.data.geometry import Mesh
from afcli.errors import InputError

DEFAULT_FOLDER = "/usr/share/sweethome3d/furniture"
# catalogue name (lower case) → the rooms' raw ScanNet category
NAMES = {
    "bed": "bed", "sofa": "couch", "couch": "couch", "chair": "chair", "oak chair": "chair", "table": "table",
    "oak table": "table", "desk": "desk", "bookcase": "bookshelf", "refrigerator": "refrigerator", "fridge": "refrigerator",
    "large fridge": "refrigerator", "toilets unit": "toilet", "sink": "sink", "bath": "bathtub", "coffee cup": "cup",
    "coffee mug": "cup", "bedside table": "nightstand", "coffee table": "coffee table",
}  # fmt: skip


@dataclass(frozen=True)
class CatalogueModel:
    archive: Path
    name: str
    category: str
    model: str  # path inside the archive
    size: tuple[float, float, float]  # width, depth, height in metres
    rotation: tuple[float, ...] | None  # modelRotation, row-major


def catalogue_folder() -> Path:
    return Path(os.environ.get("AFCLI_SWEETHOME3D", DEFAULT_FOLDER))


@lru_cache(maxsize=4)
def read_catalogues(folder: Path) -> dict[str, list[CatalogueModel]]:
    """The usable models of every catalogue in ``folder`` by category (empty when none is installed)."""
    found: dict[str, list[CatalogueModel]] = {}
    for archive in sorted(folder.glob("*.sh3f")) if folder.is_dir() else []:
        try:
            with zipfile.ZipFile(archive) as z:
                text = z.read("PluginFurnitureCatalog.properties").decode("utf-8", "replace")
        except (OSError, KeyError, zipfile.BadZipFile) as error:
            raise InputError(f"unreadable furniture catalogue ({error})", archive) from None
        entries: dict[int, dict[str, str]] = {}
        for line in text.splitlines():
            match = re.match(r"(\w+)#(\d+)=(.*)", line)
            if match:
                entries.setdefault(int(match.group(2)), {})[match.group(1)] = match.group(3).strip()
        for entry in entries.values():
            category = NAMES.get(entry.get("name", "").lower())
            if category is None or entry.get("doorOrWindow") == "true" or "model" not in entry:
                continue
            try:
                size = tuple(float(entry[k]) / 100 for k in ("width", "depth", "height"))
            except (KeyError, ValueError):
                continue
            rotation = tuple(float(v) for v in entry["modelRotation"].split()) if "modelRotation" in entry else None
            model = CatalogueModel(archive, entry["name"], category, entry["model"].lstrip("/"), size, rotation)
            found.setdefault(category, []).append(model)
    return found


def _materials(text: str) -> dict[str, np.ndarray]:
    colours, current = {}, None
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["newmtl"] and len(parts) > 1:
            current = parts[1]
            colours[current] = np.array([0.7, 0.7, 0.7])
        elif parts[:1] == ["Kd"] and current is not None and len(parts) >= 4:
            colours[current] = np.array([float(v) for v in parts[1:4]])
    return colours


def load_model(model: CatalogueModel) -> tuple[Mesh, np.ndarray]:
    """The model's mesh (z-up, metres, standing at z = 0, centred, back towards -y) and a shade per face."""
    folder = model.model.rsplit("/", 1)[0]
    try:
        with zipfile.ZipFile(model.archive) as z:
            obj = z.read(model.model).decode("utf-8", "replace")
            materials: dict[str, np.ndarray] = {}
            for name in (n for n in z.namelist() if n.startswith(folder + "/") and n.endswith(".mtl")):
                materials.update(_materials(z.read(name).decode("utf-8", "replace")))
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise InputError(f"cannot read {model.model} ({error})", model.archive) from None
    vertices, faces, shades, shade = [], [], [], 0.7
    for line in obj.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v" and len(parts) >= 4:
            vertices.append([float(v) for v in parts[1:4]])
        elif parts[0] == "usemtl" and len(parts) > 1:
            shade = float(materials.get(parts[1], np.array([0.7] * 3)) @ np.array([0.299, 0.587, 0.114]))
        elif parts[0] == "f" and len(parts) >= 4:
            corner = [int(p.split("/")[0]) for p in parts[1:]]
            corner = [c - 1 if c > 0 else len(vertices) + c for c in corner]
            for k in range(1, len(corner) - 1):  # a polygon as a fan of triangles
                faces.append((corner[0], corner[k], corner[k + 1]))
                shades.append(shade)
    if not vertices or not faces:
        raise InputError(f"{model.model} holds no triangles", model.archive)
    v = np.asarray(vertices, np.float64)
    if model.rotation is not None and len(model.rotation) == 9:
        v = v @ np.asarray(model.rotation).reshape(3, 3).T
    v = v - v.min(0)
    v = v * (np.asarray(model.size)[[0, 2, 1]] / np.maximum(v.max(0), 1e-9))  # x width, y height, z depth
    mesh = Mesh(v, np.asarray(faces, np.int64)).rotated("x", math.pi / 2).rotated("z", math.pi)  # z-up, back to -y
    return mesh, 0.35 + 0.65 * np.clip(np.asarray(shades), 0, 1)
