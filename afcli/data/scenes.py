"""``afcli data import ROOT --benchmark scannet``: ScanNet-format scenes (afcli.data.scannet) → a ragged
store, one scene at a time (read → write → free), so memory follows the biggest scene, not the set.

Per point: ``points/{xyz,normal,rgb}``, ``labels/segment`` (superpoint), ``labels/semantic20`` and
``labels/semantic200`` (class index of the vocabulary in the array's ``classes`` attribute, -1 where the
source has no such label), ``labels/instance`` and ``labels/entity`` (-1 none). Per scene:
``labels/split``. Coordinates are kept as the source has them (metres; transform identity).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from afcli.data.importer import SPLIT_DTYPE, STAGE, load_or_skip
from afcli.data.scannet import find_scenes, vocabulary
from afcli.errors import InputError
from afcli.store.schema import DONE, FAILED, RAGGED
from afcli.store.writer import StoreWriter

SCENE_CATEGORY = "scene"
POINT_ARRAYS = {
    "points/xyz": ((3,), "f4"),
    "points/normal": ((3,), "f4"),
    "points/rgb": ((3,), "u1"),
    "labels/segment": ((), "i4"),
    "labels/semantic20": ((), "i2"),
    "labels/semantic200": ((), "i2"),
    "labels/instance": ((), "i4"),
    "labels/entity": ((), "i4"),
}


def ensure_scene_arrays(writer: StoreWriter) -> None:
    if writer.layout != RAGGED:
        raise InputError("scenes go into a ragged store (this one holds fixed-size shapes)", writer.path)
    for name, (tail, dtype) in POINT_ARRAYS.items():
        attrs = {}
        if name.startswith("labels/semantic"):
            attrs = {"classes": list(vocabulary(f"scannet{name.removeprefix('labels/semantic')}").names)}
        writer.ensure_array(name, tail, dtype, attrs=attrs, fill=-1 if name.startswith("labels/") else None)
    writer.ensure_array("labels/split", (), SPLIT_DTYPE, per_point=False)
    writer.ensure_stage(STAGE, tuple(POINT_ARRAYS) + ("labels/split",))


def scene_arrays(scene) -> dict[str, np.ndarray]:
    return {
        "points/xyz": scene.xyz,
        "points/normal": scene.normal,
        "points/rgb": scene.rgb,
        "labels/segment": scene.segment,
        "labels/semantic20": scene.semantic20.astype(np.int16),
        "labels/semantic200": scene.semantic200.astype(np.int16),
        "labels/instance": scene.instance,
        "labels/entity": scene.entity,
        "labels/split": np.bytes_(scene.split),
    }


def import_scenes(
    root: str | Path,
    store: str | Path,
    *,
    fmt: str = "auto",
    setting: str | None = None,
    label_map: Path | None = None,
    skip_bad: bool = False,
    advance: Callable[[], None] = lambda: None,
    on_total: Callable[[int], None] = lambda total: None,
) -> dict:
    """Import every scene under ``root``; an interrupted import resumes with the first pending scene."""
    fmt, sources = find_scenes(root, fmt, setting, label_map)
    skipped = []
    with StoreWriter(store, create=True, layout=RAGGED) as writer:
        ensure_scene_arrays(writer)
        writer.begin()
        folder = Path(store).resolve().parent
        rows = writer.add_samples(
            [s.id for s in sources],
            [SCENE_CATEGORY] * len(sources),
            [Path(os.path.relpath(s.path.resolve(), folder)).as_posix() for s in sources],
        )
        status = writer.status(STAGE)
        todo = [row for row in writer.pending(STAGE, rows) if status[row] != FAILED or not skip_bad]
        by_row = dict(zip(rows, sources))
        on_total(len(todo))
        points = 0
        for row in todo:
            source = by_row[row]
            scene = load_or_skip(source.read, writer, row, source, skip_bad, skipped)
            if scene is None:
                advance()
                continue
            if scene.id != source.id:
                raise InputError(f"scene id {scene.id!r} differs from its folder's {source.id!r}", source.path)
            try:
                writer.append_points(row, scene.num_points)
            except InputError:
                raise InputError(
                    f"scene {scene.id} failed in an earlier import and the scenes after it are in; a ragged store "
                    "appends points at its end only, so import it into a new store",
                    source.path,
                ) from None
            writer.write(row, scene_arrays(scene))
            writer.mark(STAGE, row, DONE)
            points += scene.num_points
            advance()
        done = writer.status(STAGE)
        return {
            "store": str(store),
            "benchmark": "scannet",
            "format": fmt,
            "imported": len(todo) - len(skipped),
            "already_done": len(rows) - len(todo),
            "skipped": skipped,
            "points": points,
            "samples": writer.num_samples,
            "done": int((done == DONE).sum()),
        }
