"""The store's text table: captions and referrals of scene instances (``afcli caption``), one row per text,
beside the per-point arrays (a scene has as many texts as it has objects to describe):

    /texts/id          (T,) S128   ``<scene>:<source>:<kind>:<n>`` — unique; a re-run skips known ids
    /texts/sample      (T,) i8     row in /samples
    /texts/kind        (T,) S16    caption or referral
    /texts/target      (T,) i4     the instance (``/labels/instance`` id) the text is about
    /texts/relation    (T,) S32    a referral's relation ("on", "to the left of", "farthest to the left",
                                   "name" …; empty for captions)
    /texts/anchors     (T,) S256   JSON list of the instance ids a referral relates its target to
    /texts/text        (T,) S1024
    /texts/phrases     (T,) S1024  JSON list of the text's noun phrases
    /texts/source      (T,) S64    who wrote it: template, or the captioner model
    /texts/embedding/<encoder>  (T, D) f2  L2-normalised sentence embeddings (attrs: encoder provenance)

Rows are appended whole (the id column last: a killed append leaves id-less rows, which the next
append drops), so a scene's texts and their embeddings are in or out together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import h5py
import numpy as np

from afcli.errors import InputError
from afcli.store.schema import decode

PREFIX = "texts/"
EMBEDDING = PREFIX + "embedding/"
COLUMNS = {
    "id": "S128",
    "sample": "i8",
    "kind": "S16",
    "target": "i4",
    "relation": "S32",
    "anchors": "S256",
    "text": "S1024",
    "phrases": "S1024",
    "source": "S64",
}
KINDS = ("caption", "referral")


@dataclass
class TextRow:
    id: str
    sample: int
    kind: str
    target: int
    text: str
    relation: str = ""
    anchors: list[int] = field(default_factory=list)
    phrases: list[str] = field(default_factory=list)
    source: str = "template"


def is_text_array(name: str) -> bool:
    return name.startswith(PREFIX)


def ensure_texts(f: h5py.File, embeddings: dict[str, tuple[int, dict]] | None = None) -> None:
    """The (empty) table and an embedding column per encoder ``{name: (dim, attrs)}``; call before
    SWMR writing starts."""
    rows = f[PREFIX + "id"].shape[0] if PREFIX + "id" in f else 0
    for column, dtype in COLUMNS.items():
        if PREFIX + column not in f:
            f.create_dataset(PREFIX + column, (rows,), dtype, maxshape=(None,), chunks=(1024,), compression="lzf")
    for name, (dim, attrs) in (embeddings or {}).items():
        path = EMBEDDING + name
        if path not in f:
            dataset = f.create_dataset(path, (rows, dim), "f2", maxshape=(None, dim), chunks=(256, dim))
            dataset.attrs.update(attrs)
        elif f[path].shape[1] != dim:
            raise InputError(f"/{path} holds {f[path].shape[1]}-d embeddings, this encoder gives {dim}")
        elif f[path].shape[0] != rows:
            raise InputError(f"/{path} covers {f[path].shape[0]} of {rows} texts: caption with --overwrite")


def _encoded(row: TextRow) -> dict[str, object]:
    if row.kind not in KINDS:
        raise InputError(f"text {row.id}: kind must be one of {', '.join(KINDS)}, got {row.kind!r}")
    values = {
        "id": row.id,
        "sample": row.sample,
        "kind": row.kind,
        "target": row.target,
        "relation": row.relation,
        "anchors": json.dumps(row.anchors),
        "text": row.text,
        "phrases": json.dumps(row.phrases),
        "source": row.source,
    }
    for column, value in values.items():
        if isinstance(value, str):
            raw = value.encode("utf-8")
            limit = np.dtype(COLUMNS[column]).itemsize
            if len(raw) > limit:
                raise InputError(f"text {row.id}: {column} longer than {limit} bytes")
            values[column] = raw
    return values


def embedding_columns(f: h5py.File) -> list[str]:
    return sorted(name for name in f[EMBEDDING[:-1]]) if EMBEDDING[:-1] in f else []


def add_texts(f: h5py.File, rows: list[TextRow], embeddings: dict[str, np.ndarray]) -> int:
    """Append the rows whose ids are new, with their embeddings (one (len(rows), D) array per
    embedding column of the table); returns how many were added."""
    ids = f[PREFIX + "id"][:]
    kept = len(ids)
    while kept and not ids[kept - 1]:
        kept -= 1
    columns = [PREFIX + c for c in COLUMNS] + [EMBEDDING + name for name in embedding_columns(f)]
    if kept < len(ids):
        for column in columns:
            f[column].resize(kept, axis=0)
    if set(embeddings) != set(embedding_columns(f)):
        raise InputError(f"texts need embeddings for {embedding_columns(f)}, got {sorted(embeddings)}")
    known = set(decode(ids[:kept]))
    fresh = [i for i, row in enumerate(rows) if row.id not in known]
    if len({rows[i].id for i in fresh}) != len(fresh):
        raise InputError("duplicate text ids in one caption run")
    if not fresh:
        return 0
    encoded = [_encoded(rows[i]) for i in fresh]
    stop = kept + len(fresh)
    for name, values in embeddings.items():
        dataset = f[EMBEDDING + name]
        dataset.resize(stop, axis=0)
        dataset[kept:] = np.asarray(values, np.float16)[fresh]
    for column in [c for c in COLUMNS if c != "id"] + ["id"]:
        dataset = f[PREFIX + column]
        dataset.resize(stop, axis=0)
        dataset[kept:] = np.array([row[column] for row in encoded], COLUMNS[column])
    f.flush()
    return len(fresh)


@dataclass
class TextTable:
    rows: list[TextRow]
    embeddings: dict[str, np.ndarray]  # encoder → (T, D) float32

    def of(self, sample: int, kind: str | None = None) -> list[int]:
        return [i for i, r in enumerate(self.rows) if r.sample == sample and (kind is None or r.kind == kind)]


def read_texts(f: h5py.File, where=None, embeddings: bool = True) -> TextTable:
    if PREFIX + "id" not in f:
        raise InputError("the store holds no texts (run afcli caption)", where)
    c = {column: f[PREFIX + column][:] for column in COLUMNS}
    count = len([i for i in c["id"] if i])
    rows = [
        TextRow(
            id=i,
            sample=int(s),
            kind=k,
            target=int(t),
            text=x,
            relation=r,
            anchors=json.loads(a),
            phrases=json.loads(p),
            source=src,
        )  # fmt: skip
        for i, s, k, t, r, a, x, p, src in zip(
            decode(c["id"][:count]),
            c["sample"],
            decode(c["kind"][:count]),
            c["target"],
            decode(c["relation"][:count]),
            decode(c["anchors"][:count]),
            decode(c["text"][:count]),
            decode(c["phrases"][:count]),
            decode(c["source"][:count]),
        )  # fmt: skip
    ]
    vectors = (
        {name: f[EMBEDDING + name][:count].astype(np.float32) for name in embedding_columns(f)} if embeddings else {}
    )
    return TextTable(rows, vectors)


def check_texts(f: h5py.File) -> list[str]:
    """Problems of the table for ``store verify``."""
    if PREFIX + "id" not in f:
        return []
    lengths = {c: f[PREFIX + c].shape[0] for c in COLUMNS} | {
        e: f[EMBEDDING + e].shape[0] for e in embedding_columns(f)
    }
    if len(set(lengths.values())) != 1:
        return [f"the text table's columns differ in length: {lengths}"]
    table = read_texts(f, embeddings=False)
    problems = []
    samples = f["samples/id"].shape[0]
    outside = [r.id for r in table.rows if not 0 <= r.sample < samples]
    if outside:
        problems.append(f"{len(outside)} texts point at rows outside /samples, first {outside[0]}")
    if len({r.id for r in table.rows}) != len(table.rows):
        problems.append("duplicate text ids")
    return problems
