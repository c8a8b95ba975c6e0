"""``store info`` and ``store verify``: what a store holds, and whether it is sound."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
import h5py
import numpy as np

from afcli.store.queries import PREFIX as QUERIES, check_queries, is_query_array
from afcli.store.schema import (
    DONE,
    FIXED,
    STATUS_NAMES,
    array_names,
    decode,
    open_store,
    row_blocks,
)

IMPORT_STAGE = "import"



def lifted_teachers(f) -> list[str]:
    """Ids of the teachers whose features the store holds (``/features/<id>``)."""
    return sorted(name.split("/")[1] for name in array_names(f) if name.startswith("features/") and not name.endswith("_seen"))

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
            "file_bytes": path.stat().st_size,
        }


def verify_store(path: str | Path) -> dict:
    """Check a store; returns ``{"ok", "problems", "notes", …}``. Problems are one line each."""
    path = Path(path)
    problems: list[str] = []
    notes: list[str] = []
    with open_store(path) as f:
        if f.swmr_mode:
            notes.append("a writer has it open or was killed: unfinished samples stay pending until it is re-run")
        ids = decode(f["samples/id"][:])
        num_samples = len(ids)
        duplicated = [sample_id for sample_id, count in Counter(ids).items() if count > 1]
        if duplicated:
            problems.append(f"duplicate sample ids: {', '.join(duplicated[:5])}")
        if any(not sample_id for sample_id in ids):
            problems.append("empty sample id")

        ragged = f.attrs["layout"] != FIXED
        total_points = None
        if ragged:
            offsets = f["points/offsets"][:]
            if len(offsets) != num_samples + 1 or offsets[0] != 0 or np.any(np.diff(offsets) < 0):
                problems.append("points/offsets is not a non-decreasing (S+1,) array starting at 0")
            else:
                total_points = int(offsets[-1])

        stages = _stages(f)
        done = {}
        for stage in stages:
            status = f[f"status/{stage}"][:]
            if len(status) != num_samples:
                problems.append(f"status/{stage} has {len(status)} rows for {num_samples} samples")
                continue
            unknown = sorted(set(np.unique(status).tolist()) - set(STATUS_NAMES))
            if unknown:
                problems.append(f"status/{stage} holds unknown codes {unknown}")
            done[stage] = status == DONE
            if stage != IMPORT_STAGE and IMPORT_STAGE in done and len(done[IMPORT_STAGE]) == num_samples:
                orphans = np.flatnonzero(done[stage] & ~done[IMPORT_STAGE])
                if len(orphans):
                    problems.append(f"{len(orphans)} samples done in {stage} but not imported, e.g. {ids[orphans[0]]}")

        for name in array_names(f):
            if name.startswith("status/") or name == "points/offsets" or is_query_array(name):
                continue
            dataset = f[name]
            per_point = bool(dataset.attrs.get("per_point", False))
            expected = total_points if ragged and per_point else num_samples
            if expected is not None and dataset.shape[0] != expected:
                problems.append(f"/{name} has {dataset.shape[0]} rows, expected {expected}")
            if not ragged and per_point and dataset.shape[1] != int(f.attrs["num_points"]):
                problems.append(f"/{name} has {dataset.shape[1]} points per sample, store says {f.attrs['num_points']}")
            problems.extend(_scan(dataset, name, ids, ragged and per_point, f))
        problems.extend(check_queries(f))
    return {"path": str(path), "ok": not problems, "problems": problems, "notes": notes, "samples": num_samples}


def _scan(dataset: h5py.Dataset, name: str, ids: list[str], ragged_points: bool, f: h5py.File) -> list[str]:
    """Read every chunk (unreadable ones are reported) and find non-finite values in float arrays."""
    found: list[str] = []
    bad_rows: list[int] = []
    for block in row_blocks(dataset):
        try:
            values = dataset[block]
        except (OSError, RuntimeError) as error:
            found.append(f"/{name} rows {block.start}:{block.stop} unreadable ({error})")
            continue
        if values.dtype.kind == "f":
            bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
            bad_rows.extend((block.start + np.flatnonzero(bad)).tolist())
    if bad_rows:
        if ragged_points:
            offsets = f["points/offsets"][:]
            bad_rows = sorted(set((np.searchsorted(offsets, bad_rows, side="right") - 1).tolist()))
        found.append(f"/{name} holds NaN or Inf in {len(bad_rows)} samples, first {ids[bad_rows[0]]}")
    return found
