"""``afcli data import --benchmark laso|piad|piadv2``: a benchmark in its own on-disk format → a store
with its point clouds, per-affordance ground truth and a query table (afcli.store.queries).

- LASO: every split (train, val, test); a shape per ``(split, shape_id)``, one query per annotation
  with its 15 questions (Question0 first: the evaluation question). A pair without questions gets the
  loaders' template "Where can I {affordance} this {object}?".
- PIAD (setting Seen or Unseen): Train and Test lists. Test query i = image i with cloud i (the
  official pairing). Training images get ``sample = -1``: the fine-tuning loader draws a cloud of the
  same object each epoch, as IAGNet's does. PIAD has no validation split, so 10 % of the training
  images (by a hash of the file name) become ``val`` queries, each with a fixed cloud of its object.
- PIADv2 (setting Seen, Unseen_aff or Unseen_obj): lists of train, val (Seen only; the unseen
  settings carve val from train as for PIAD) and test. A point file carries one affordance's mask, so
  a sample has one annotated channel; training pairs an image with a random cloud of the same object
  *and* affordance (GREAT's and CMAT's loaders).

Points: LASO, PIAD and PIADv2 clouds are centred on their centroid and scaled to unit radius, as
their loaders (LASO's, IAGNet's, GREAT's and the CMAT code's) do at read time — PIAD's files are
close to that already but not exactly (centroids off by up to 0.02, radii 0.976–1.010); the
transform is recorded in /samples/transform. Clouds of
another size than the store's are resampled (FPS down, seeded repeats up).
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from afcli.data import laso, piad, piadv2
from afcli.data.affordance import LASO_AFFORDANCES, PIAD_AFFORDANCES, PIADV2_AFFORDANCES, default_question
from afcli.data.importer import STAGE, ensure_point_arrays, estimate_normals, resample_indices
from afcli.data.readers import read_piad
from afcli.errors import InputError
from afcli.store.queries import Query, add_queries, ensure_queries
from afcli.store.schema import DONE
from afcli.store.writer import StoreWriter

BENCHMARKS = ("laso", "piad", "piadv2")
VAL_FRACTION = 0.1


@dataclass
class Cloud:
    id: str
    category: str
    source: Path
    split: str
    load: Callable[[], tuple[np.ndarray, dict[str, np.ndarray]]]  # xyz (P, 3), {affordance: mask (P,)}
    normalise: bool


@dataclass
class Benchmark:
    channels: list[str]
    clouds: list[Cloud]
    queries: list[tuple[Query, str | None]]  # query (sample = -1) and the id of its cloud, if fixed


def _held_out(key: str) -> bool:
    return zlib.crc32(key.encode("utf-8")) % 1000 < VAL_FRACTION * 1000


def _fixed_pick(key: str, candidates: list[str]) -> str:
    return candidates[zlib.crc32(key.encode("utf-8")) % len(candidates)]


def _laso(root: Path, setting: str | None) -> Benchmark:
    clouds: dict[str, Cloud] = {}
    masks: dict[str, dict[str, np.ndarray]] = {}
    queries = []
    for split in laso.SPLITS:
        for i, sample in enumerate(laso.read_laso(root, split)):
            if sample.affordance not in LASO_AFFORDANCES:
                raise InputError(
                    f"annotation {i}: unknown affordance {sample.affordance!r}", root / f"anno_{split}.pkl"
                )
            cloud_id = f"{split}/{sample.shape_id}"
            if cloud_id not in clouds:
                masks[cloud_id] = {}
                load = lambda points=sample.points, cloud_masks=masks[cloud_id]: (points, cloud_masks)  # noqa: E731
                clouds[cloud_id] = Cloud(cloud_id, sample.object, root / f"objects_{split}.pkl", split, load, True)
            masks[cloud_id][sample.affordance] = sample.mask
            questions = sample.questions or [default_question(sample.affordance, sample.object)]
            queries.append((Query(f"{split}/{i}", -1, sample.object, sample.affordance, split, questions), cloud_id))
    return Benchmark(LASO_AFFORDANCES, list(clouds.values()), queries)


def _piad_cloud(path: Path, split: str) -> Cloud:
    fields = path.stem.split("_")
    category = fields[-2] if len(fields) >= 3 else "unknown"

    def load():
        _, geometry = read_piad(path)
        return geometry.vertices, {name: geometry.affordance[:, k] for k, name in enumerate(PIAD_AFFORDANCES)}

    return Cloud(f"{split}/{path.stem}", category, path, split, load, True)


def _piad(root: Path, setting: str | None) -> Benchmark:
    setting = setting or "Seen"
    clouds: dict[str, Cloud] = {}
    queries = []
    for split in piad.SPLITS:
        lists = piad.read_lists(root, setting, split)
        ours = split.lower()
        for path in lists["Point"]:
            cloud = _piad_cloud(path, ours)
            clouds.setdefault(cloud.id, cloud)
        for i, image in enumerate(lists["Img"]):
            if not image.is_file():
                raise InputError("image listed but missing", image)
            affordance = piad.image_affordance(image)
            fields = image.stem.split("_")
            if split == "Test":
                cloud = _piad_cloud(lists["Point"][i], ours)
                queries.append(
                    (
                        Query(f"test/{image.stem}", -1, cloud.category.lower(), affordance, "test", [], str(image)),
                        cloud.id,
                    )
                )
            else:
                obj = fields[-3]
                held = _held_out(image.name)  # not the path: the split must not depend on where PIAD lies
                queries.append(
                    (
                        Query(
                            f"{'val' if held else 'train'}/{image.stem}",
                            -1,
                            obj.lower(),
                            affordance,
                            "val" if held else "train",
                            [],
                            str(image),
                            piad.read_boxes(lists["Box"][i]),
                        ),
                        "pick" if held else None,
                    )
                )
    return _pick_val_clouds(Benchmark(PIAD_AFFORDANCES, list(clouds.values()), queries), by_affordance=False)


def _piadv2(root: Path, setting: str | None) -> Benchmark:
    setting = setting or "Seen"
    clouds: dict[str, Cloud] = {}
    queries = []
    splits = piadv2.SPLITS if setting == "Seen" else ("train", "test")
    for split in splits:
        points = piadv2.read_list(root, setting, split, "Point")
        images = piadv2.read_list(root, setting, split, "Img")
        for entry in points:
            if entry.affordance not in PIADV2_AFFORDANCES:
                raise InputError(f"unknown PIADv2 affordance {entry.affordance!r} in a point path", entry.path)
            cloud_id = f"{split}/{entry.object}/{entry.path.parent.parent.name}/{entry.affordance}/{entry.path.stem}"

            def load(e=entry):
                xyz, mask = piadv2.read_points(e.path)
                return xyz, {e.affordance: mask}

            clouds.setdefault(cloud_id, Cloud(cloud_id, entry.object, entry.path, split, load, True))
        ids = [f"{split}/{e.object}/{e.path.parent.parent.name}/{e.affordance}/{e.path.stem}" for e in points]
        if split != "train" and len(images) != len(points):
            raise InputError(
                f"{split} lists must pair line by line: {len(images)} images, {len(points)} clouds", root / setting
            )
        for i, image in enumerate(images):
            if not image.path.is_file():
                raise InputError("image listed but missing", image.path)
            key = f"{image.object}/{image.path.parent.parent.name}/{image.affordance}/{image.path.stem}"
            if split != "train":
                queries.append(
                    (
                        Query(f"{split}/{key}", -1, image.object.lower(), image.affordance, split, [], str(image.path)),
                        ids[i],
                    )
                )
            else:
                held = setting != "Seen" and _held_out(key)
                queries.append(
                    (
                        Query(
                            f"{'val' if held else 'train'}/{key}",
                            -1,
                            image.object.lower(),
                            image.affordance,
                            "val" if held else "train",
                            [],
                            str(image.path),
                        ),
                        "pick" if held else None,
                    )
                )
    return _pick_val_clouds(Benchmark(PIADV2_AFFORDANCES, list(clouds.values()), queries), by_affordance=True)


def _pick_val_clouds(benchmark: Benchmark, by_affordance: bool) -> Benchmark:
    """Give each carved-out validation query a fixed training cloud of its object (and affordance)."""
    picked = []
    for query, cloud in benchmark.queries:
        if cloud == "pick":
            candidates = [
                c.id
                for c in benchmark.clouds
                if c.split == "train"
                and c.category.lower() == query.object
                and (not by_affordance or c.id.split("/")[3] == query.affordance)
            ]
            if not candidates:
                raise InputError(f"no training cloud of {query.object} for validation image {query.id}")
            cloud = _fixed_pick(query.id, candidates)
        picked.append((query, cloud))
    benchmark.queries = picked
    return benchmark


READERS = {"laso": _laso, "piad": _piad, "piadv2": _piadv2}


def _normalised(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    centre = points.mean(0)
    scale = float(np.linalg.norm(points - centre, axis=1).max())
    return (points - centre) / (scale if scale > 0 else 1.0), centre, scale if scale > 0 else 1.0


def import_benchmark(
    name: str,
    root: str | Path,
    store: str | Path,
    *,
    setting: str | None = None,
    num_points: int = 2048,
    seed: int = 0,
    advance: Callable[[], None] = lambda: None,
    on_total: Callable[[int], None] = lambda total: None,
) -> dict:
    """Import benchmark ``name`` from ``root`` into ``store``; resumes an interrupted import."""
    if name not in READERS:
        raise InputError(f"unknown benchmark {name!r} (choose from {', '.join(BENCHMARKS)})")
    root = Path(root)
    if not root.is_dir():
        raise InputError("no such dataset folder", root)
    benchmark = READERS[name](root, setting)
    channels = benchmark.channels
    with StoreWriter(store, create=True, num_points=num_points) as writer:
        ensure_point_arrays(writer, num_points)
        writer.ensure_array("labels/affordance", (len(channels),), "f4", attrs={"channels": channels})
        writer.ensure_array("labels/annotated", (len(channels),), "u1", per_point=False)
        writer.ensure_array("labels/split", (), "S16", per_point=False)
        writer.ensure_table(ensure_queries)
        writer.begin()
        folder = Path(store).resolve().parent
        relative = lambda path: Path(os.path.relpath(Path(path).resolve(), folder)).as_posix()  # noqa: E731
        clouds = benchmark.clouds
        rows = writer.add_samples(
            [c.id for c in clouds], [c.category for c in clouds], [relative(c.source) for c in clouds]
        )
        todo = writer.pending(STAGE, rows)
        by_row = dict(zip(rows, clouds))
        on_total(len(todo))
        for row in todo:
            cloud = by_row[row]
            xyz, masks = cloud.load()
            rng = np.random.default_rng([seed, zlib.crc32(cloud.id.encode("utf-8"))])
            keep = resample_indices(num_points, len(xyz), xyz, rng)
            points = np.asarray(xyz, np.float64)[keep]
            centre, scale = np.zeros(3), 1.0
            if cloud.normalise:
                points, centre, scale = _normalised(points)
            labels = np.zeros((num_points, len(channels)), np.float32)
            annotated = np.zeros(len(channels), np.uint8)
            for affordance, mask in masks.items():
                labels[:, channels.index(affordance)] = np.asarray(mask, np.float32)[keep]
                annotated[channels.index(affordance)] = 1
            points = points.astype(np.float32)
            writer.set_transform(row, centre, scale)
            writer.write(
                row,
                {
                    "points/xyz": points,
                    "points/normal": estimate_normals(points),
                    "labels/affordance": labels,
                    "labels/annotated": annotated,
                    "labels/split": np.bytes_(cloud.split),
                },
            )
            writer.mark(STAGE, row, DONE)
            advance()
        row_of = dict(zip((c.id for c in clouds), rows))
        queries = []
        for query, cloud_id in benchmark.queries:
            query.sample = row_of[cloud_id] if cloud_id is not None else -1
            query.image = relative(query.image) if query.image else ""
            queries.append(query)
        added = writer.add_rows(add_queries, queries)
        return {
            "store": str(store),
            "benchmark": name,
            "setting": setting,
            "imported": len(todo),
            "already_done": len(rows) - len(todo),
            "samples": writer.num_samples,
            "queries": len(queries),
            "new_queries": added,
        }
