"""``afcli data import``: meshes, point clouds, PIAD files and the synth manifest → a store.

Per sample: ``N`` points by area-weighted surface sampling (meshes) or by farthest point sampling /
seeded resampling (clouds with more / fewer points), normals (face normals, or PCA over 16 nearest
neighbours oriented away from the centroid for clouds without them), and normalisation into the unit
sphere: ``stored = (p - mean) / max‖p - mean‖``, recorded in ``/samples/transform``. PIAD clouds
are kept exactly as the dataset ships them (already normalised, 2048 points) so that their labels
and benchmark numbers line up. Each sample draws from its own generator seeded by ``(seed, crc32(id))``,
so a resumed import writes the same values as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from afcli.data.affordance import PIAD_AFFORDANCES, default_question, heat_maps
from afcli.data.geometry import sample_surface
from afcli.data.readers import CLOUD_SUFFIXES, MESH_SUFFIXES, is_piad_file, read_geometry, read_piad
from afcli.data.sounds import sound_prompt
from afcli.data.synth import MANIFEST, SYNTH_FORMAT
from afcli.errors import InputError
from afcli.store.queries import Query, add_queries, ensure_queries, hash_split
from afcli.store.schema import DONE, FAILED, shard_path
from afcli.store.writer import StoreWriter

STAGE = "import"
TEXT_DTYPE = "S4096"
SPLIT_DTYPE = "S16"
NORMAL_NEIGHBOURS = 16


@dataclass
class Source:
    id: str
    category: str
    path: Path
    kind: str  # "mesh", "cloud" or "piad"
    parts: list[dict] | None = None
    questions: dict | None = None


@dataclass
class ImportPlan:
    root: Path
    sources: list[Source] = field(default_factory=list)
    unnamed: list[Path] = field(default_factory=list)  # files whose names are not UTF-8: no sample id can hold them

    @property
    def labelled(self) -> bool:
        return any(s.kind == "piad" or s.parts is not None for s in self.sources)

    @property
    def with_parts(self) -> bool:
        return any(s.parts is not None for s in self.sources)


def _synth_plan(root: Path, manifest_path: Path) -> ImportPlan:
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"unreadable manifest ({' '.join(str(error).split())[:120]})", manifest_path) from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != SYNTH_FORMAT
        or manifest.get("affordances") != PIAD_AFFORDANCES
    ):
        raise InputError(f"not an {SYNTH_FORMAT} v1 manifest", manifest_path)
    shapes = manifest.get("shapes")
    if not isinstance(shapes, list):
        raise InputError("malformed manifest: 'shapes' is not a list", manifest_path)
    plan = ImportPlan(root)
    for i, shape in enumerate(shapes):
        problem = _manifest_entry_problem(shape)
        if problem:
            raise InputError(f"malformed manifest: shapes[{i}] {problem}", manifest_path)
        plan.sources.append(
            Source(shape["id"], shape["category"], root / shape["mesh"], "mesh", shape["parts"], shape["questions"])
        )
    return plan


def _manifest_entry_problem(shape) -> str | None:
    """What is wrong with one ``shapes`` entry of a synth manifest (None: nothing)."""
    if not isinstance(shape, dict):
        return "is not an object"
    for key, kind in (("id", str), ("category", str), ("mesh", str), ("parts", list), ("questions", dict)):
        if not isinstance(shape.get(key), kind):
            return f"has no {kind.__name__} {key!r}"
    for part in shape["parts"]:
        faces = part.get("faces") if isinstance(part, dict) else None
        if not (
            isinstance(faces, list)
            and len(faces) == 2
            and all(isinstance(v, int) for v in faces)
            and isinstance(part.get("name"), str)
            and isinstance(part.get("affordances"), list)
        ):
            return "has a part without name, affordances and a [start, stop] face range"
    if not shape["parts"]:
        return "has no parts"
    return None


def plan_import(src: str | Path) -> ImportPlan:
    """What ``src`` (a synth folder, any folder of shapes, or one file) would import."""
    src = Path(src)
    if not src.exists():
        raise InputError("no such file or folder", src)
    if src.is_dir() and (src / MANIFEST).is_file():
        return _synth_plan(src, src / MANIFEST)
    root = src if src.is_dir() else src.parent
    files = sorted(p for p in (src.rglob("*") if src.is_dir() else [src]) if p.is_file())
    files = [p for p in files if p.suffix.lower() in MESH_SUFFIXES + CLOUD_SUFFIXES]
    if not files:
        raise InputError(f"no shapes here (looked for {' '.join(sorted(set(MESH_SUFFIXES + CLOUD_SUFFIXES)))})", src)
    plan = ImportPlan(root)
    for path in files:
        relative = path.relative_to(root).as_posix()
        if not _utf8(relative):
            plan.unnamed.append(path)
            continue
        if is_piad_file(path):
            # PIAD's own loader takes the category from the file name: Point_<Split>_<Object>_<k>.txt.
            fields = path.stem.split("_")
            category = fields[-2] if len(fields) >= 3 else "unknown"
            plan.sources.append(Source(path.stem, category, path, "piad"))
            continue
        parent = path.parent.relative_to(root)
        category = parent.parts[-1] if parent.parts else "unknown"
        kind = "cloud" if path.suffix.lower() in (".npy", ".txt", ".xyz") else "mesh"
        plan.sources.append(Source(relative.rsplit(".", 1)[0], category, path, kind))
    return plan


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes of the file system's name, kept as surrogates
        return False
    return True


def estimate_normals(points: np.ndarray) -> np.ndarray:
    from afcli.ops import knn

    cloud = torch.from_numpy(points.astype(np.float32)).unsqueeze(0)
    index, _ = knn(cloud, cloud, min(NORMAL_NEIGHBOURS, len(points)))
    neighbours = cloud[0][index[0]]
    centred = neighbours - neighbours.mean(1, keepdim=True)
    _, vectors = torch.linalg.eigh(centred.transpose(1, 2) @ centred)
    normals = vectors[:, :, 0].numpy()
    outward = np.sign(((points - points.mean(0)) * normals).sum(1, keepdims=True))
    return (normals * np.where(outward == 0, 1, outward)).astype(np.float32)


def resample_indices(count: int, total: int, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``count`` points: FPS when there are more, a seeded draw with repeats when fewer."""
    if total == count:
        return np.arange(total)
    if total > count:
        from afcli.ops import fps

        return fps(torch.from_numpy(points.astype(np.float32)).unsqueeze(0), count)[0].numpy()
    return np.concatenate([np.arange(total), rng.choice(total, count - total, replace=True)])


def load_sample(source: Source, num_points: int, seed: int) -> dict:
    """Everything the importer writes for one source, as numpy arrays."""
    rng = np.random.default_rng([seed, zlib.crc32(source.id.encode("utf-8"))])
    if source.kind == "piad":
        _, geometry = read_piad(source.path)
    else:
        geometry = read_geometry(source.path)
    part_ids = None
    if geometry.faces is not None:
        try:
            points, normals, face = sample_surface(geometry.vertices, geometry.faces, num_points, rng)
        except ValueError as error:
            raise InputError(str(error), source.path) from None
        if source.parts is not None:
            part_ids = np.full(num_points, -1, np.int16)
            for i, part in enumerate(source.parts):
                start, stop = part["faces"]
                part_ids[(face >= start) & (face < stop)] = i
            covered = source.parts[-1]["faces"][1]
            if covered != len(geometry.faces):
                raise InputError(
                    f"manifest parts cover {covered} faces, the mesh has {len(geometry.faces)}", source.path
                )
    else:
        keep = resample_indices(num_points, len(geometry.vertices), geometry.vertices, rng)
        points = geometry.vertices[keep]
        normals = geometry.normals[keep] if geometry.normals is not None else None
        if geometry.affordance is not None:
            geometry.affordance = geometry.affordance[keep]
    points = np.asarray(points, np.float64)
    if source.kind == "piad":
        centre, scale = np.zeros(3), 1.0
    else:
        centre = points.mean(0)
        scale = float(np.linalg.norm(points - centre, axis=1).max())
        if not scale > 0:
            raise InputError("all points coincide", source.path)
    points = ((points - centre) / scale).astype(np.float32)
    if normals is None:
        normals = estimate_normals(points)
    sample = {
        "points/xyz": points,
        "points/normal": np.asarray(normals, np.float32),
        "points/face": (face if geometry.faces is not None else np.full(num_points, -1)).astype(np.int32),
        "transform": (centre, scale),
    }
    if geometry.affordance is not None:
        sample["labels/affordance"] = geometry.affordance.astype(np.float32)
    elif part_ids is not None:
        sample["labels/affordance"] = heat_maps(points, part_ids, source.parts, PIAD_AFFORDANCES)
        sample["labels/part"] = part_ids
    return sample


def _offered(source: Source) -> list[str]:
    return [a for a in PIAD_AFFORDANCES if any(a in part["affordances"] for part in source.parts)]


def _write_part_queries(writer: StoreWriter, by_row: dict[int, Source], everything: list[Source]) -> None:
    """Splits, annotated channels and one query per offered affordance for shapes with part labels.

    Image prompt: another *training* instance of the category that offers the affordance (any other
    instance when there is none), rendered with it highlighted (``render:<id>``), picked by a hash of
    the query id — so the built-in set exercises image prompts offline, and held-out shapes are asked
    about with pictures of other objects, as PIAD's images are. Sound prompt: a variant of the sound
    the affordance's action makes (afcli.data.sounds.sound_prompt), where it makes one. Written for
    every row on each run (metadata, no sampling).
    """
    candidates: dict[tuple[str, str], list[str]] = {}
    training: dict[tuple[str, str], list[str]] = {}
    for source in everything:
        for affordance in _offered(source):
            candidates.setdefault((source.category, affordance), []).append(source.id)
            if hash_split(source.id) == "train":
                training.setdefault((source.category, affordance), []).append(source.id)
    queries = []
    for row, source in by_row.items():
        split, offered = hash_split(source.id), _offered(source)
        writer.write(
            row, {"labels/split": np.bytes_(split), "labels/annotated": np.ones(len(PIAD_AFFORDANCES), np.uint8)}
        )
        for affordance in offered:
            query_id = f"{source.id}/{affordance}"
            key = (source.category, affordance)
            others = [i for i in training.get(key, []) if i != source.id] or [
                i for i in candidates[key] if i != source.id
            ]
            image = f"render:{others[zlib.crc32(query_id.encode()) % len(others)]}" if others else ""
            questions = (source.questions or {}).get(affordance) or [default_question(affordance, source.category)]
            sound = sound_prompt(affordance, query_id)
            queries.append(
                Query(query_id, row, source.category.lower(), affordance, split, questions, image, audio=sound)
            )
    writer.add_rows(add_queries, queries)


def _text(value) -> np.bytes_:
    return np.bytes_(json.dumps(value, sort_keys=True).encode("utf-8"))


def ensure_point_arrays(writer: StoreWriter, num_points: int) -> None:
    """The arrays every imported sample has (points, normals; the face of each point for meshes),
    and the import stage that vouches for them."""
    if writer.num_points != num_points:
        raise InputError(f"store holds {writer.num_points} points per sample, not {num_points}", writer.path)
    writer.ensure_array("points/xyz", (3,), "f4")
    writer.ensure_array("points/normal", (3,), "f4")
    # Face of the source mesh each point was sampled on (-1: a cloud, or imported before faces were kept).
    writer.ensure_array("points/face", (), "i4", fill=-1)
    writer.ensure_stage(STAGE, ("points/xyz", "points/normal"))


def load_or_skip(load: Callable, writer: StoreWriter, row: int, source, skip_bad: bool, skipped: list):
    """``load()``; a bad input stops the import, or with ``--skip-bad`` its sample is marked failed,
    recorded in ``skipped`` (its ``id`` and ``path``) and None is returned."""
    try:
        return load()
    except InputError as error:
        if not skip_bad:
            raise
        writer.mark(STAGE, row, FAILED)
        skipped.append({"id": source.id, "path": str(source.path), "error": str(error)})
        return None


def import_shapes(
    src: str | Path,
    store: str | Path,
    *,
    num_points: int = 2048,
    seed: int = 0,
    skip_bad: bool = False,
    shard: tuple[int, int] = (0, 1),
    advance: Callable[[], None] = lambda: None,
    on_total: Callable[[int], None] = lambda total: None,
) -> dict:
    """Import ``src`` into ``store`` (created if missing); resumes where an earlier run stopped."""
    rank, world = shard
    if not 0 <= rank < world:
        raise InputError(f"--shard {rank}/{world}: rank must be in 0..{world - 1}")
    if num_points < 1:
        raise InputError(f"--points must be positive, got {num_points}")
    plan = plan_import(src)
    sources = plan.sources[rank::world]
    store = shard_path(store, rank, world)
    skipped: list[dict] = []
    unnamed = plan.unnamed[rank::world]
    for path in unnamed:
        error = InputError("file name is not valid UTF-8, so it cannot be a sample id (rename the file)", path)
        if not skip_bad:
            raise error
        skipped.append({"id": "", "path": str(path), "error": str(error)})
    with StoreWriter(store, create=True, num_points=num_points) as writer:
        ensure_point_arrays(writer, num_points)
        if plan.labelled:
            writer.ensure_array(
                "labels/affordance", (len(PIAD_AFFORDANCES),), "f4", attrs={"channels": PIAD_AFFORDANCES}
            )
        if plan.with_parts:
            writer.ensure_array("labels/part", (), "i2")
            writer.ensure_array("text/parts", (), TEXT_DTYPE, per_point=False)
            writer.ensure_array("text/questions", (), TEXT_DTYPE, per_point=False)
            writer.ensure_array("labels/annotated", (len(PIAD_AFFORDANCES),), "u1", per_point=False)
            writer.ensure_array("labels/split", (), SPLIT_DTYPE, per_point=False)
            writer.ensure_table(ensure_queries)
        writer.begin()
        folder = Path(store).resolve().parent
        rows = writer.add_samples(
            [s.id for s in sources],
            [s.category for s in sources],
            [Path(os.path.relpath(s.path.resolve(), folder)).as_posix() for s in sources],
        )
        todo = writer.pending(STAGE, rows)
        by_row = dict(zip(rows, sources))
        if plan.with_parts:
            _write_part_queries(writer, by_row, plan.sources)
        on_total(len(todo))
        for row in todo:
            source = by_row[row]
            sample = load_or_skip(lambda: load_sample(source, num_points, seed), writer, row, source, skip_bad, skipped)
            if sample is None:
                advance()
                continue
            writer.set_transform(row, *sample.pop("transform"))
            if "labels/part" in writer.f and "labels/part" not in sample:
                sample["labels/part"] = np.full(num_points, -1, np.int16)
            if source.parts is not None:
                parts = [{"name": p["name"], "affordances": p["affordances"]} for p in source.parts]
                sample["text/parts"] = _text(parts)
                sample["text/questions"] = _text(source.questions)
                for name in ("text/parts", "text/questions"):
                    if len(sample[name]) >= np.dtype(TEXT_DTYPE).itemsize:
                        raise InputError(f"{name} entry longer than {np.dtype(TEXT_DTYPE).itemsize} bytes", source.path)
            writer.write(row, sample)
            writer.mark(STAGE, row, DONE)
            advance()
        status = writer.status(STAGE)
        return {
            "store": str(store),
            "source": str(src),
            "imported": len(todo) - len(skipped) + len(unnamed),
            "already_done": len(rows) - len(todo),
            "skipped": skipped,
            "samples": writer.num_samples,
            "done": int((status == DONE).sum()),
        }


STORE_NAME = "store.h5"


def resolve_store(
    target: str | Path, store: str | Path | None, advance=lambda: None, on_total=lambda n: None
) -> tuple[Path, dict | None]:
    """A store file as given, or a folder of shapes: import what is new into ``store`` (default
    ``<folder>/store.h5``) and return it with the import's report."""
    target = Path(target)
    if not target.exists():
        raise InputError("no such file or folder", target)
    if target.is_file() and target.suffix == ".h5":
        return target, None
    store = (
        Path(store) if store is not None else (target / STORE_NAME if target.is_dir() else target.with_suffix(".h5"))
    )
    return store, import_shapes(target, store, advance=advance, on_total=on_total)
