"""ScanNet-format scenes on disk: the benchmark vocabularies and readers for the three layouts people
have (../shared/reference/sole-mpec.md §3, metrics-and-formats.md §6).

- **Pointcept** ``ROOT/<split>/<scene>/``: ``coord.npy`` (N,3) f32, ``color.npy`` (N,3) u8,
  ``normal.npy`` (N,3), ``segment20.npy`` / ``segment200.npy`` (class index, -1 ignore),
  ``instance.npy`` (-1 none); optional ``superpoint.npy`` and MPEC's ``entity.npy``.
- **Mask3D / SOLE** ``ROOT/<split>/<scene>.npy`` (V,12) ``x y z r g b nx ny nz segment semantic
  instance`` (10 columns on the test split): the semantic column holds NYU40 ids (ScanNet) or ScanNet200
  ids (``--setting scannet200``).
- **ScanNet's own scans** ``ROOT/scans/<scene>/``: ``<scene>_vh_clean_2.ply`` (vertices, colours,
  faces), ``<scene>_vh_clean_2.0.010000.segs.json`` (``segIndices``: the superpoint of each vertex),
  ``<scene>[_vh_clean].aggregation.json`` (``segGroups``: instances as lists of superpoints with a raw
  category), mapped to NYU40 and ScanNet200 ids by ``scannetv2-labels.combined.tsv`` (columns ``id``,
  ``raw_category``, ``nyu40id``). Splits from ``scannetv2_{train,val}.txt`` when present; ``scans_test``
  is the test split.

Every reader returns a :class:`Scene` with the same arrays; the importer (afcli.data.scenes) writes
them into a ragged store.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

from afcli.errors import InputError

FORMATS = ("pointcept", "mask3d", "scans")
LABEL_MAP_NAME = "scannetv2-labels.combined.tsv"
MASK3D_SPLITS = {"train": "train", "validation": "val", "test": "test"}


@dataclass(frozen=True)
class Vocabulary:
    """A benchmark's classes: the label ids its files store and the names; a model predicts the index."""

    name: str
    ids: tuple[int, ...]
    names: tuple[str, ...]
    instance_ignore: tuple[str, ...]
    splits: tuple[tuple[str, tuple[str, ...]], ...] = ()  # ScanNet200's head / common / tail

    def index(self, label_ids: np.ndarray) -> np.ndarray:
        """Class index of each label id (-1 for ids outside the vocabulary)."""
        label_ids = np.asarray(label_ids, np.int64)
        table = np.full(max(max(self.ids), int(label_ids.max(initial=0))) + 1, -1, np.int64)
        table[list(self.ids)] = np.arange(len(self.ids))
        return np.where(label_ids >= 0, table[np.clip(label_ids, 0, None)], -1)

    def label_ids(self, index: np.ndarray) -> np.ndarray:
        """Label id of each class index (0 for -1)."""
        index = np.asarray(index, np.int64)
        return np.where(index >= 0, np.asarray(self.ids)[np.clip(index, 0, None)], 0)

    @property
    def instance_classes(self) -> tuple[list[int], list[str]]:
        """Label ids and names the instance evaluator scores."""
        kept = [(i, n) for i, n in zip(self.ids, self.names) if n not in self.instance_ignore]
        return [i for i, _ in kept], [n for _, n in kept]


@lru_cache(maxsize=None)
def vocabulary(name: str) -> Vocabulary:
    tables = json.loads(resources.files("afcli.data").joinpath("taxonomies/scannet.json").read_text("utf-8"))
    if name not in tables or name.startswith("_"):
        known = ", ".join(key for key in tables if not key.startswith("_"))
        raise InputError(f"unknown ScanNet vocabulary {name!r} (choose from {known})")
    table = tables[name]
    splits = tuple((split, tuple(names)) for split, names in table.get("splits", {}).items())
    return Vocabulary(name, tuple(table["ids"]), tuple(table["names"]), tuple(table["instance_ignore"]), splits)


@dataclass
class Scene:
    id: str
    split: str
    source: Path
    xyz: np.ndarray  # (V, 3) f32
    rgb: np.ndarray  # (V, 3) u8
    normal: np.ndarray  # (V, 3) f32
    segment: np.ndarray  # (V,) superpoint id
    semantic20: np.ndarray  # (V,) ScanNet20 class index, -1 ignore
    semantic200: np.ndarray  # (V,) ScanNet200 class index, -1 ignore
    instance: np.ndarray  # (V,) instance id, -1 none
    entity: np.ndarray  # (V,) entity id (MPEC), -1 background

    @property
    def num_points(self) -> int:
        return len(self.xyz)


@dataclass
class SceneSource:
    """One scene found on disk, read only when the importer reaches it (big scenes stream)."""

    id: str
    split: str
    path: Path
    read: Callable[[], Scene]


def _load_npy(path: Path, what: str, count: int | None = None, columns: int | None = None) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"missing {what}", path) from None
    except (OSError, ValueError) as error:
        raise InputError(f"unreadable {what} ({error})", path) from None
    if columns is not None and (array.ndim != 2 or array.shape[1] != columns):
        raise InputError(f"{what} should be (N, {columns}), got {tuple(array.shape)}", path)
    if count is not None and len(array) != count:
        raise InputError(f"{what} has {len(array)} rows, coord.npy has {count}", path)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InputError(f"{what} holds NaN or Inf", path)
    return array


def vertex_normals(xyz: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals of a triangle mesh (Pointcept's preprocessing)."""
    v = xyz.astype(np.float64)
    face_normals = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    normals = np.zeros_like(v)
    for corner in range(3):
        np.add.at(normals, faces[:, corner], face_normals)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return (normals / np.where(length > 0, length, 1)).astype(np.float32)


def _superpoints_of_cloud(xyz: np.ndarray, size: float = 0.1) -> np.ndarray:
    """Voxel cells as superpoints for sources without them."""
    _, inverse = np.unique(np.floor(xyz / size).astype(np.int64), axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int32)


# -- Pointcept -----------------------------------------------------------------------------------


def read_pointcept(folder: Path, split: str) -> Scene:
    coord = _load_npy(folder / "coord.npy", "coordinates", columns=3).astype(np.float32)
    n = len(coord)
    color = _load_npy(folder / "color.npy", "colours", n, 3)
    normal = (
        _load_npy(folder / "normal.npy", "normals", n, 3).astype(np.float32)
        if (folder / "normal.npy").exists()
        else np.zeros((n, 3), np.float32)
    )

    def optional(name: str, what: str) -> np.ndarray:
        if not (folder / name).exists():
            return np.full(n, -1, np.int32)
        return _load_npy(folder / name, what, n).reshape(-1).astype(np.int32)

    segment = (
        optional("superpoint.npy", "superpoints")
        if (folder / "superpoint.npy").exists()
        else _superpoints_of_cloud(coord)
    )
    return Scene(
        id=folder.name,
        split=split,
        source=folder,
        xyz=coord,
        rgb=np.clip(color, 0, 255).astype(np.uint8),
        normal=normal,
        segment=segment,
        semantic20=optional("segment20.npy", "ScanNet20 labels"),
        semantic200=optional("segment200.npy", "ScanNet200 labels"),
        instance=optional("instance.npy", "instance ids"),
        entity=optional("entity.npy", "entity ids"),
    )


def _pointcept_scenes(root: Path) -> list[SceneSource]:
    found = []
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for folder in sorted(p for p in split_dir.iterdir() if (p / "coord.npy").exists()):
            found.append(
                SceneSource(
                    folder.name, split_dir.name, folder, lambda f=folder, s=split_dir.name: read_pointcept(f, s)
                )
            )
    return found


# -- Mask3D / SOLE -------------------------------------------------------------------------------


def read_mask3d(path: Path, split: str, setting: str | None = None) -> Scene:
    """A Mask3D-preprocessed scene; ``setting`` scannet200 reads the semantic column as ScanNet200 ids."""
    array = _load_npy(path, "Mask3D scene")
    if array.ndim != 2 or array.shape[1] not in (10, 12):
        raise InputError(
            f"Mask3D scene should be (V, 12) (or (V, 10) on the test split), got {tuple(array.shape)}", path
        )
    n = len(array)
    none = np.full(n, -1, np.int32)
    semantic20, semantic200, instance = none, none, none
    if array.shape[1] == 12:
        labels = array[:, 10].astype(np.int64)
        if setting == "scannet200":
            semantic200 = vocabulary("scannet200").index(labels).astype(np.int32)
        else:
            semantic20 = vocabulary("scannet20").index(labels).astype(np.int32)
        instance = array[:, 11].astype(np.int32)
    return Scene(
        id=path.stem,
        split=split,
        source=path,
        xyz=array[:, :3].astype(np.float32),
        rgb=np.clip(np.rint(array[:, 3:6]), 0, 255).astype(np.uint8),
        normal=array[:, 6:9].astype(np.float32),
        segment=array[:, 9].astype(np.int32),
        semantic20=semantic20,
        semantic200=semantic200,
        instance=instance,
        entity=none,
    )


def _mask3d_scenes(root: Path, setting: str | None) -> list[SceneSource]:
    if setting not in (None, "scannet", "scannet200"):
        raise InputError(f"unknown Mask3D setting {setting!r} (scannet or scannet200)", root)
    found = []
    for folder, split in MASK3D_SPLITS.items():
        for path in sorted((root / folder).glob("*.npy")) if (root / folder).is_dir() else []:
            found.append(SceneSource(path.stem, split, path, lambda p=path, s=split: read_mask3d(p, s, setting)))
    return found


# -- ScanNet scans -------------------------------------------------------------------------------


def read_label_map(path: Path) -> dict[str, tuple[int, int]]:
    """``scannetv2-labels.combined.tsv``: raw category → (ScanNet200 id, NYU40 id)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
    except FileNotFoundError:
        raise InputError(f"missing the label map {LABEL_MAP_NAME} (give it with --label-map)", path) from None
    if not rows or not {"id", "raw_category", "nyu40id"} <= set(rows[0]):
        raise InputError("not a ScanNet label map (needs the columns id, raw_category, nyu40id)", path)
    table = {}
    for row in rows:
        try:
            table.setdefault(row["raw_category"], (int(row["id"]), int(row["nyu40id"] or 0)))
        except ValueError:
            raise InputError(f"label map row {row['raw_category']!r}: ids must be integers", path) from None
    return table


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(f"missing {what}", path) from None
    except (OSError, ValueError) as error:
        raise InputError(f"unreadable {what} ({error})", path) from None


def read_scan(folder: Path, split: str, label_map: dict[str, tuple[int, int]]) -> Scene:
    """A ScanNet scan: mesh vertices with their superpoints, instances and labels."""
    import trimesh

    scene = folder.name
    mesh_path = folder / f"{scene}_vh_clean_2.ply"
    try:
        mesh = trimesh.load(mesh_path, process=False, force="mesh")
    except FileNotFoundError:
        raise InputError("missing the scan mesh", mesh_path) from None
    except Exception as error:  # trimesh raises many kinds on corrupt files
        raise InputError(f"unreadable mesh ({error})", mesh_path) from None
    xyz = np.asarray(mesh.vertices, np.float32)
    n = len(xyz)
    if n == 0 or not np.isfinite(xyz).all():
        raise InputError("mesh has no vertices or non-finite ones", mesh_path)
    faces = np.asarray(mesh.faces, np.int64)
    colours = getattr(mesh.visual, "vertex_colors", None)
    rgb = (
        np.asarray(colours, np.uint8)[:, :3]
        if colours is not None and len(colours) == n
        else np.zeros((n, 3), np.uint8)
    )
    segs_path = folder / f"{scene}_vh_clean_2.0.010000.segs.json"
    seg_indices = np.asarray(_read_json(segs_path, "superpoints").get("segIndices", []), np.int64)
    if len(seg_indices) != n:
        raise InputError(f"segIndices has {len(seg_indices)} entries, the mesh has {n} vertices", segs_path)
    aggregation_path = next(
        (
            p
            for p in (folder / f"{scene}.aggregation.json", folder / f"{scene}_vh_clean.aggregation.json")
            if p.exists()
        ),
        folder / f"{scene}.aggregation.json",
    )
    groups = _read_json(aggregation_path, "aggregation").get("segGroups", []) if split != "test" else []
    segment_ids, segment = np.unique(seg_indices, return_inverse=True)
    segment = segment.reshape(-1)
    # per superpoint: NYU40 id, ScanNet200 id, instance; a later group overwrites an earlier one on
    # shared superpoints, as ScanNet's own export does
    labels = np.zeros((len(segment_ids), 3), np.int64)
    labels[:, 2] = -1
    for group in groups:
        label = group.get("label", "")
        if label not in label_map:
            raise InputError(f"raw category {label!r} is not in the label map", aggregation_path)
        raw_id, nyu40_id = label_map[label]
        members = np.isin(segment_ids, np.asarray(group.get("segments", []), np.int64))
        labels[members] = (nyu40_id, raw_id, int(group.get("objectId", group.get("id", 0))))
    nyu40, scannet200, instance = labels[segment].T
    return Scene(
        id=scene,
        split=split,
        source=mesh_path,
        xyz=xyz,
        rgb=rgb,
        normal=vertex_normals(xyz, faces) if len(faces) else np.zeros((n, 3), np.float32),
        segment=segment.astype(np.int32),
        semantic20=vocabulary("scannet20").index(nyu40).astype(np.int32),
        semantic200=vocabulary("scannet200").index(scannet200).astype(np.int32),
        instance=instance.astype(np.int32),
        entity=np.full(n, -1, np.int32),
    )


def _scan_splits(root: Path) -> dict[str, str]:
    splits = {}
    for split in ("train", "val", "test"):
        listing = root / f"scannetv2_{split}.txt"
        if listing.exists():
            splits.update({line.strip(): split for line in listing.read_text().split() if line.strip()})
    return splits


def _scans_scenes(root: Path, label_map_path: Path | None = None) -> list[SceneSource]:
    label_map_path = label_map_path or root / LABEL_MAP_NAME
    splits = _scan_splits(root)
    found = []
    for folder_name, default in (("scans", "train"), ("scans_test", "test")):
        for folder in sorted(p for p in (root / folder_name).glob("*") if (p / f"{p.name}_vh_clean_2.ply").is_file()):
            split = "test" if folder_name == "scans_test" else splits.get(folder.name, default)
            found.append(
                SceneSource(
                    folder.name, split, folder, lambda f=folder, s=split: read_scan(f, s, _label_map(label_map_path))
                )
            )
    if found:
        _label_map(label_map_path)  # a missing map fails before the first scene
    return found


@lru_cache(maxsize=4)
def _label_map(path: Path) -> dict[str, tuple[int, int]]:
    return read_label_map(path)


def detect_format(root: Path) -> str:
    if (root / "scans").is_dir() or (root / "scans_test").is_dir():
        return "scans"
    if any((root / split).is_dir() and any((root / split).glob("*.npy")) for split in MASK3D_SPLITS):
        return "mask3d"
    if any(p.is_dir() and any(p.glob("*/coord.npy")) for p in root.iterdir()):
        return "pointcept"
    raise InputError(
        "no ScanNet scenes found (expected scans/<scene>/ (ScanNet), <split>/<scene>.npy (Mask3D) "
        "or <split>/<scene>/coord.npy (Pointcept))",
        root,
    )


def find_scenes(root: str | Path, fmt: str = "auto", setting: str | None = None, label_map: Path | None = None):
    """The scenes under ``root`` in format ``fmt`` (auto-detected by default), not yet read."""
    root = Path(root)
    if not root.is_dir():
        raise InputError("no such dataset folder", root)
    fmt = detect_format(root) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise InputError(f"unknown ScanNet format {fmt!r} (choose from auto, {', '.join(FORMATS)})")
    if setting is not None and fmt != "mask3d":
        raise InputError(f"--setting reads Mask3D files' labels; these are {fmt} scenes", root)
    if fmt == "scans":
        scenes = _scans_scenes(root, label_map)
    elif fmt == "pointcept":
        scenes = _pointcept_scenes(root)
    else:
        scenes = _mask3d_scenes(root, setting)
    if not scenes:
        raise InputError(f"no {fmt} scenes found", root)
    return fmt, scenes
