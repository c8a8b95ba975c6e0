"""The store's query table: one row per prompt-driven affordance question asked of a sample.

Benchmarks ask many questions of one shape (LASO: one per annotated affordance; PIAD: one per
interaction image), so the table sits beside the per-sample arrays instead of duplicating points:

    /queries/id          (Q,) S128   unique, stable (an import re-run skips known ids)
    /queries/sample      (Q,) i8     row in /samples; -1 = any sample of ``object`` in ``split`` with
                                     ``affordance`` annotated, drawn per epoch (PIAD / PIADv2 training
                                     pairs an image with a random cloud, as their loaders do)
    /queries/object      (Q,) S32
    /queries/affordance  (Q,) S32    a channel name of /labels/affordance (the ground truth)
    /queries/split       (Q,) S16    train, val or test
    /queries/text        (Q,) S4096  JSON list of questions; the first is the evaluation question
    /queries/image       (Q,) S512   image prompt: a path relative to the store's folder, or
                                     ``render:<sample id>`` (the built-in set: that instance rendered
                                     with the affordance highlighted), or empty
    /queries/box         (Q,) S256   JSON ``{"subject": [x1, y1, x2, y2], "object": […]}``: the image's
                                     interaction boxes in pixels (PIAD training images, for the
                                     box-preserving crop), or empty. Stores written before it lack it.
    /queries/audio       (Q,) S512   sound prompt: a file relative to the store's folder, or
                                     ``synth:<kind>:<variant>`` (afcli.data.sounds; the built-in set,
                                     for affordances whose action makes a sound), or empty.

The ground truth of a query is ``/labels/affordance[sample, :, channel(affordance)]``;
``/labels/annotated`` (S, K) says which channels of a sample carry annotations and ``/labels/split``
(S,) which split a sample belongs to.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field

import h5py
import numpy as np

from afcli.errors import InputError
from afcli.store.schema import decode

PREFIX = "queries/"
COLUMNS = {
    "id": "S128",
    "sample": "i8",
    "object": "S32",
    "affordance": "S32",
    "split": "S16",
    "text": "S4096",
    "image": "S512",
    "box": "S256",
    "audio": "S512",
}
OPTIONAL = ("box", "audio")  # absent from stores written before them: read as empty
SPLITS = ("train", "val", "test")


def hash_split(key: str, val: float = 0.1, test: float = 0.2) -> str:
    """A stable train / val / test assignment from a hash of ``key`` (shapes without official splits)."""
    bucket = zlib.crc32(key.encode("utf-8")) % 1000 / 1000
    return "test" if bucket < test else "val" if bucket < test + val else "train"


@dataclass
class Query:
    id: str
    sample: int
    object: str
    affordance: str
    split: str
    text: list[str] = field(default_factory=list)
    image: str = ""
    box: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    audio: str = ""


def is_query_array(name: str) -> bool:
    return name.startswith(PREFIX)


def ensure_queries(f: h5py.File) -> None:
    """Create the (empty) table, or the columns an older store lacks, as long as its rows (empty
    values); call before SWMR writing starts."""
    rows = f[PREFIX + "id"].shape[0] if PREFIX + "id" in f else 0
    for column, dtype in COLUMNS.items():
        if PREFIX + column not in f:
            f.create_dataset(PREFIX + column, (rows,), dtype, maxshape=(None,), chunks=(1024,), compression="lzf")
        elif column in OPTIONAL and f[PREFIX + column].shape[0] < rows:
            f[PREFIX + column].resize(rows, axis=0)


def _encoded(query: Query) -> dict[str, object]:
    values = {
        "id": query.id,
        "sample": query.sample,
        "object": query.object,
        "affordance": query.affordance,
        "split": query.split,
        "text": json.dumps(query.text),
        "image": query.image,
        "box": json.dumps({name: list(corners) for name, corners in query.box.items()}) if query.box else "",
        "audio": query.audio,
    }
    for column, value in values.items():
        if isinstance(value, str):
            raw = value.encode("utf-8")
            if len(raw) > np.dtype(COLUMNS[column]).itemsize:
                raise InputError(f"query {query.id}: {column} longer than {np.dtype(COLUMNS[column]).itemsize} bytes")
            values[column] = raw
    if query.split not in SPLITS:
        raise InputError(f"query {query.id}: split must be one of {', '.join(SPLITS)}, got {query.split!r}")
    return values


def add_queries(f: h5py.File, queries: list[Query]) -> int:
    """Append the queries whose ids are new; returns how many were added.

    Crash-safe like the rest of the store: ids are written last, so rows of an append that was
    killed half-way have empty ids, and the next append drops them before it starts.
    """
    ids = f[PREFIX + "id"][:]
    kept = len(ids)
    while kept and not ids[kept - 1]:
        kept -= 1
    if kept < len(ids):
        for column in COLUMNS:
            f[PREFIX + column].resize(kept, axis=0)
    known = set(decode(ids[:kept]))
    new = [q for q in queries if q.id not in known]
    if len({q.id for q in new}) != len(new):
        raise InputError("duplicate query ids in one import")
    if not new:
        return 0
    rows = [_encoded(q) for q in new]
    for column in [c for c in COLUMNS if c != "id"] + ["id"]:
        dataset = f[PREFIX + column]
        dataset.resize(kept + len(new), axis=0)
        dataset[kept:] = np.array([row[column] for row in rows], COLUMNS[column])
    f.flush()
    return len(new)


@dataclass
class QueryTable:
    id: list[str]
    sample: np.ndarray
    object: list[str]
    affordance: list[str]
    split: list[str]
    text: list[list[str]]
    image: list[str]
    box: list[dict[str, list[float]]]
    audio: list[str]

    def __len__(self) -> int:
        return len(self.id)

    def rows(self, split: str | None = None) -> np.ndarray:
        return np.arange(len(self)) if split is None else np.flatnonzero(np.array(self.split) == split)


def read_queries(f: h5py.File, where=None) -> QueryTable:
    if PREFIX + "id" not in f:
        raise InputError(
            "the store holds no queries (import a benchmark, or the built-in set, with afcli data import)", where
        )
    columns = {column: f[PREFIX + column][:] for column in COLUMNS if PREFIX + column in f}
    boxes = decode(columns["box"]) if "box" in columns else [""] * len(columns["id"])
    sounds = decode(columns["audio"]) if "audio" in columns else [""] * len(columns["id"])
    return QueryTable(
        id=decode(columns["id"]),
        sample=columns["sample"].astype(np.int64),
        object=decode(columns["object"]),
        affordance=decode(columns["affordance"]),
        split=decode(columns["split"]),
        text=[json.loads(t) for t in decode(columns["text"])],
        image=decode(columns["image"]),
        box=[json.loads(b) if b else {} for b in boxes],
        audio=sounds,
    )


def check_queries(f: h5py.File) -> list[str]:
    """Problems of the table for ``store verify``: lengths, sample rows, splits, channels."""
    if PREFIX + "id" not in f:
        return []
    lengths = {column: f[PREFIX + column].shape[0] for column in COLUMNS if PREFIX + column in f}
    if set(COLUMNS) - set(lengths) - set(OPTIONAL) or len(set(lengths.values())) != 1:
        return [f"the query table's columns differ in length or are missing: {lengths}"]
    table = read_queries(f)
    problems = []
    samples = f["samples/id"].shape[0]
    bad = np.flatnonzero((table.sample < -1) | (table.sample >= samples))
    if len(bad):
        problems.append(f"{len(bad)} queries point at rows outside /samples, first {table.id[bad[0]]}")
    if len(set(table.id)) != len(table):
        problems.append("duplicate query ids")
    unknown_splits = sorted(set(table.split) - set(SPLITS))
    if unknown_splits:
        problems.append(f"queries with unknown splits {unknown_splits}")
    channels = decode(f["labels/affordance"].attrs["channels"]) if "labels/affordance" in f else []
    unknown = sorted(set(table.affordance) - set(channels))
    if unknown:
        problems.append(f"queries ask for affordances without a /labels/affordance channel: {unknown[:5]}")
    return problems


def shifted_sample_rows(files: list[h5py.File], column: str = PREFIX + "sample") -> np.ndarray:
    """A table's sample column (``/queries/sample``, ``/texts/sample``) of merged shards, each shard's
    rows shifted past the earlier shards."""
    parts, shift = [], 0
    for f in files:
        rows = f[column][:]
        parts.append(np.where(rows >= 0, rows + shift, rows))
        shift += f["samples/id"].shape[0]
    return np.concatenate(parts)
