"""``store info`` and ``store verify``: what a store holds, and whether it is sound."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from afcli.store.clips import check_clips, is_clip_array
from afcli.store.queries import PREFIX as QUERIES
from afcli.store.queries import check_queries, is_query_array
from afcli.store.schema import (
    DONE,
    FIXED,
    PENDING,
    STAGE_ARRAYS,
    STATUS_NAMES,
    array_names,
    decode,
    open_store,
    row_blocks,
    status_path,
)
from afcli.store.texts import PREFIX as TEXTS
from afcli.store.texts import check_texts, is_text_array

IMPORT_STAGE = "import"


def lifted_teachers(f) -> list[str]:
    """Ids of the teachers whose features the store holds (``/features/<id>``)."""
    return sorted(
        name.split("/")[1] for name in array_names(f) if name.startswith("features/") and not name.endswith("_seen")
    )


def store_identity(path: str | Path) -> dict:
    """What makes a store the one a run was trained on: its absolute path, sample count and a hash
    of its sample ids (a copy elsewhere keeps the last two)."""
    with open_store(path) as f:
        ids = [bytes(sample_id) for sample_id in f["samples/id"][:]]
    return {
        "path": str(Path(path).resolve()),
        "samples": len(ids),
        "ids_sha256": hashlib.sha256(b"\n".join(ids)).hexdigest()[:16],
    }


def _stages(f: h5py.File) -> list[str]:
    return [name[len("status/") :] for name in array_names(f) if name.startswith("status/")]


def _value_range(dataset: h5py.Dataset) -> list[float] | None:
    low, high = np.inf, -np.inf
    for block in row_blocks(dataset):
        values = dataset[block]
        if values.size:
            low, high = min(low, float(values.min())), max(high, float(values.max()))
    return None if low > high else [low, high]


def store_info(path: str | Path) -> dict:
    """Everything ``afcli store info`` shows, as plain data."""
    path = Path(path)
    with open_store(path) as f:
        categories = Counter(decode(f["samples/category"][:]))
        arrays = []
        for name in array_names(f):
            dataset = f[name]
            entry = {
                "name": name,
                "shape": list(dataset.shape),
                "dtype": str(dataset.dtype),
                "chunks": list(dataset.chunks) if dataset.chunks else None,
                "compression": dataset.compression,
                "bytes_on_disk": int(dataset.id.get_storage_size()) if not dataset.is_virtual else None,
                "virtual": bool(dataset.is_virtual),
            }
            if "channels" in dataset.attrs:
                entry["channels"] = decode(dataset.attrs["channels"])
            if name.startswith("labels/") and dataset.dtype.kind == "f":
                entry["range"] = _value_range(dataset)
            arrays.append(entry)
        status = {}
        for stage in _stages(f):
            counts = Counter(int(v) for v in f[f"status/{stage}"][:])
            status[stage] = {label: counts.get(code, 0) for code, label in STATUS_NAMES.items()}
        return {
            "path": str(path),
            "schema": int(f.attrs["schema"]),
            "layout": str(f.attrs["layout"]),
            "num_points": int(f.attrs["num_points"]),
            "virtual": bool(f.attrs.get("virtual", False)),
            "samples": int(f["samples/id"].shape[0]),
            "categories": dict(sorted(categories.items())),
            "arrays": arrays,
            "teachers": lifted_teachers(f),
            "status": status,
            "queries": int(f[QUERIES + "id"].shape[0]) if QUERIES + "id" in f else 0,
            "texts": int(f[TEXTS + "id"].shape[0]) if TEXTS + "id" in f else 0,
            "file_bytes": path.stat().st_size,
        }


class _Problems(list):
    """``store verify``'s findings; :meth:`read` turns an unreadable part of the file into one."""

    def read(self, what: str, read: Callable[[], object], default=None):
        try:
            return read()
        except Exception as error:  # corrupt bytes surface as any h5py error: OSError, KeyError, ValueError …
            self.append(f"{what} unreadable ({_first_line(error)})")
            return default


def _first_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:160] or type(error).__name__


def stage_arrays(f: h5py.File, stage: str) -> list[str]:
    """Arrays every sample done in ``stage`` has: as the stage recorded them, or, for stores written
    before stages recorded them, by afcli's naming of its stages."""
    recorded = f[status_path(stage)].attrs.get(STAGE_ARRAYS)
    if recorded is not None:
        return decode(recorded)
    if stage == IMPORT_STAGE:
        named = ["points/xyz", "points/normal"]
    elif stage.startswith("lift-"):
        named = [f"features/{stage[len('lift-') :]}", f"features/{stage[len('lift-') :]}_seen"]
    else:
        group = f"views/{stage[len('render-') :]}/" if stage.startswith("render-") else None
        named = [name for name in array_names(f) if group and name.startswith(group)]
    return [name for name in named if name in f]


def _unwritten_rows(dataset: h5py.Dataset, rows: np.ndarray, offsets: np.ndarray | None) -> list[int]:
    """Rows among ``rows`` with a chunk HDF5 never wrote: such rows read as the fill value, so a
    sample marked done while its write was lost (a full disk under afcli 0.1) shows up here."""
    if dataset.is_virtual or dataset.chunks is None:
        return []
    chunk = dataset.chunks[0]
    tail = (0,) * (dataset.ndim - 1)
    written: dict[int, bool] = {}

    def is_written(first: int) -> bool:
        if first not in written:
            written[first] = dataset.id.get_chunk_info_by_coord((first, *tail)).byte_offset is not None
        return written[first]

    missing = []
    for row in rows.tolist():
        if offsets is None:
            span = range(row - row % chunk, row + 1, chunk)
        else:
            start, stop = int(offsets[row]), int(offsets[row + 1])
            span = range(start - start % chunk, stop, chunk)
        if not all(is_written(first) for first in span):
            missing.append(row)
    return missing


def verify_store(path: str | Path) -> dict:
    """Check a store; returns ``{"ok", "problems", "notes", …}``. Problems are one line each, and a
    part of the file that cannot be read is one of them: verify reports it and goes on."""
    path = Path(path)
    problems = _Problems()
    notes: list[str] = []
    with open_store(path) as f:
        if f.swmr_mode:
            notes.append("a writer has it open or was killed: unfinished samples stay pending until it is re-run")
        ids = problems.read("/samples/id", lambda: decode(f["samples/id"][:]), [])
        num_samples = problems.read("/samples/id", lambda: int(f["samples/id"].shape[0]), len(ids))
        duplicated = [sample_id for sample_id, count in Counter(ids).items() if count > 1]
        if duplicated:
            problems.append(f"duplicate sample ids: {', '.join(duplicated[:5])}")
        if any(not sample_id for sample_id in ids):
            problems.append("empty sample id")
        ids = ids if len(ids) == num_samples else [f"row {row}" for row in range(num_samples)]

        ragged = f.attrs["layout"] != FIXED
        offsets = None
        if ragged:
            offsets = problems.read("/points/offsets", lambda: f["points/offsets"][:])
            if offsets is not None and (
                len(offsets) != num_samples + 1 or offsets[0] != 0 or np.any(np.diff(offsets) < 0)
            ):
                problems.append("points/offsets is not a non-decreasing (S+1,) array starting at 0")
                offsets = None
        total_points = int(offsets[-1]) if offsets is not None else None

        names = problems.read("the file's group structure", lambda: array_names(f), [])
        done, unwritten = {}, {}
        for stage in [name[len("status/") :] for name in names if name.startswith("status/")]:
            status = problems.read(f"/status/{stage}", lambda: f[status_path(stage)][:])
            if status is None:
                continue
            if len(status) != num_samples:
                problems.append(f"status/{stage} has {len(status)} rows for {num_samples} samples")
                continue
            unknown = sorted(set(np.unique(status).tolist()) - set(STATUS_NAMES))
            if unknown:
                problems.append(f"status/{stage} holds unknown codes {unknown}")
            done[stage] = status == DONE
            if stage != IMPORT_STAGE and IMPORT_STAGE in done:
                orphans = np.flatnonzero(done[stage] & ~done[IMPORT_STAGE])
                if len(orphans):
                    problems.append(f"{len(orphans)} samples done in {stage} but not imported, e.g. {ids[orphans[0]]}")
            for name in problems.read(f"/status/{stage} attributes", lambda: stage_arrays(f, stage), []):
                if name not in names:
                    problems.append(f"{stage} records /{name}, which the store lacks")
                    continue
                per_point = ragged and bool(f[name].attrs.get("per_point", False))
                if per_point and offsets is None:
                    continue
                lost = problems.read(
                    f"/{name} chunk index",
                    lambda: _unwritten_rows(f[name], np.flatnonzero(done[stage]), offsets if per_point else None),
                    [],
                )
                if lost:
                    unwritten.setdefault(stage, set()).update(lost)
                    problems.append(
                        f"/{name}: {len(lost)} samples marked done in {stage} were never written, "
                        f"first {ids[lost[0]]} (store verify --fix marks them pending for a re-run)"
                    )

        for name in names:
            table = is_query_array(name) or is_clip_array(name) or is_text_array(name)
            if name.startswith("status/") or name == "points/offsets" or table:
                continue
            dataset = problems.read(f"/{name}", lambda: f[name])
            if dataset is None:
                continue
            per_point = bool(dataset.attrs.get("per_point", False))
            expected = total_points if ragged and per_point else num_samples
            if expected is not None and dataset.shape[0] != expected:
                problems.append(f"/{name} has {dataset.shape[0]} rows, expected {expected}")
            if not ragged and per_point and dataset.shape[1] != int(f.attrs["num_points"]):
                problems.append(f"/{name} has {dataset.shape[1]} points per sample, store says {f.attrs['num_points']}")
            problems.extend(_scan(dataset, name, ids, offsets if ragged and per_point else None))
        problems.extend(problems.read("the query table", lambda: check_queries(f), []))
        problems.extend(problems.read("the clip tables", lambda: check_clips(f), []))
        problems.extend(problems.read("the text table", lambda: check_texts(f), []))
    return {
        "path": str(path),
        "ok": not problems,
        "problems": list(problems),
        "notes": notes,
        "samples": num_samples,
        "unwritten": {stage: sorted(rows) for stage, rows in unwritten.items()},
    }


def _scan(dataset: h5py.Dataset, name: str, ids: list[str], offsets: np.ndarray | None) -> list[str]:
    """Read every chunk (unreadable ones are reported) and find non-finite values in float arrays."""
    found: list[str] = []
    bad_rows: list[int] = []
    for block in row_blocks(dataset):
        try:
            values = dataset[block]
        except Exception as error:  # see _Problems.read
            found.append(f"/{name} rows {block.start}:{block.stop} unreadable ({_first_line(error)})")
            continue
        if values.dtype.kind == "f":
            bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
            bad_rows.extend((block.start + np.flatnonzero(bad)).tolist())
    if bad_rows:
        if offsets is not None:
            bad_rows = sorted(set((np.searchsorted(offsets, bad_rows, side="right") - 1).tolist()))
        found.append(f"/{name} holds NaN or Inf in {len(bad_rows)} samples, first {ids[bad_rows[0]]}")
    return found


def reopen_unwritten(path: str | Path, unwritten: dict[str, list[int]]) -> dict[str, int]:
    """Mark pending again the samples ``verify_store`` found done but never written, so that running
    their stage again redoes them; samples reopened in ``import`` are reopened in every later stage
    too, which read what import should have written. Returns how many per stage."""
    from afcli.store.writer import StoreWriter

    reopened: dict[str, int] = {}
    with StoreWriter(path) as writer:
        writer.begin()
        stages = _stages(writer.f)
        for stage, rows in unwritten.items():
            for target in stages if stage == IMPORT_STAGE else [stage]:
                status = writer.status(target)
                for row in rows:
                    if status[row] == DONE:
                        writer.mark(target, row, PENDING)
                        reopened[target] = reopened.get(target, 0) + 1
    return reopened
