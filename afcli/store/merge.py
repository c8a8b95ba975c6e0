"""``store merge``: join the shards of a distributed job into one store.

By default the result is *virtual*: every array is an HDF5 virtual dataset that maps onto the
shards, so nothing is copied and the shards must stay where they are (their paths are stored
relative to the merged file). Such a store is read-only. ``copy=True`` writes a self-contained file.
Ragged offsets and the query table's sample rows are always rewritten, since each shard's rows
are shifted.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from afcli import __version__
from afcli.errors import InputError
from afcli.files import written
from afcli.store.clips import is_clip_array
from afcli.store.queries import PREFIX as QUERIES
from afcli.store.queries import shifted_sample_rows
from afcli.store.schema import array_names, decode, open_store, row_blocks
from afcli.store.texts import PREFIX as TEXTS

SAMPLE_COLUMNS = (QUERIES + "sample", TEXTS + "sample")  # table columns holding /samples rows
_ROOT_ATTRS = ("format", "schema", "layout", "num_points")


def _signature(dataset: h5py.Dataset) -> tuple:
    attrs = {key: np.asarray(value).tolist() for key, value in dataset.attrs.items()}
    return dataset.shape[1:], str(dataset.dtype), sorted(attrs.items())


def merge_stores(shards: Sequence[str | Path], out: str | Path, copy: bool = False) -> dict:
    out = Path(out)
    shards = [Path(p) for p in shards]
    if not shards:
        raise InputError("no shards given")
    if out.exists():
        raise InputError("already exists; remove it or choose another --out", out)
    if out.resolve() in {p.resolve() for p in shards}:
        raise InputError("--out is one of the shards", out)
    with ExitStack() as stack:
        files = [stack.enter_context(open_store(p)) for p in shards]
        first = files[0]
        for path, f in zip(shards, files):
            if any(is_clip_array(name) for name in array_names(f)):
                raise InputError(
                    "holds sounds (an audio-visual store, imported in one process): nothing to merge", path
                )
        for path, f in zip(shards[1:], files[1:]):
            for key in _ROOT_ATTRS:
                if f.attrs[key] != first.attrs[key]:
                    raise InputError(f"{key} is {f.attrs[key]}, {shards[0]} has {first.attrs[key]}", path)
            if sorted(array_names(f)) != sorted(array_names(first)):
                raise InputError(f"holds other arrays than {shards[0]}", path)
            for name in array_names(first):
                if _signature(f[name]) != _signature(first[name]):
                    raise InputError(f"/{name} differs in shape, dtype or attributes from {shards[0]}", path)
        ids = [sample_id for f in files for sample_id in decode(f["samples/id"][:])]
        if len(set(ids)) != len(ids):
            raise InputError("the shards share sample ids; they are not shards of one job", shards[0])

        with written(out) as tmp, h5py.File(tmp, "w", libver="latest") as merged:
            merged.attrs.update({key: first.attrs[key] for key in first.attrs})
            merged.attrs["afcli_version"] = __version__
            merged.attrs["virtual"] = not copy
            merged.attrs["merged_from"] = [os.path.relpath(p.resolve(), out.resolve().parent) for p in shards]
            for name in array_names(first):
                if name == "points/offsets":
                    _write_offsets(merged, files)
                elif name in SAMPLE_COLUMNS:
                    merged.create_dataset(name, data=shifted_sample_rows(files, name), maxshape=(None,), chunks=(1024,))
                elif copy:
                    _copy(merged, name, files)
                else:
                    _virtual(merged, name, files, shards, out)
    return {"out": str(out), "shards": len(shards), "samples": len(ids), "virtual": not copy}


def _write_offsets(merged: h5py.File, files: list[h5py.File]) -> None:
    parts, shift = [np.zeros(1, "i8")], 0
    for f in files:
        offsets = f["points/offsets"][:]
        parts.append(offsets[1:] + shift)
        shift += int(offsets[-1])
    data = np.concatenate(parts)
    merged.create_dataset("points/offsets", data=data, maxshape=(None,), chunks=(1024,))


def _copy(merged: h5py.File, name: str, files: list[h5py.File]) -> None:
    source = files[0][name]
    length = sum(f[name].shape[0] for f in files)
    dataset = merged.create_dataset(
        name,
        (length, *source.shape[1:]),
        source.dtype,
        maxshape=(None, *source.shape[1:]),
        chunks=source.chunks,
        compression=source.compression,
        shuffle=source.shuffle,
    )
    dataset.attrs.update(dict(source.attrs))
    start = 0
    for f in files:
        part = f[name]
        for block in row_blocks(part):
            dataset[start + block.start : start + block.stop] = part[block]
        start += part.shape[0]


def _virtual(merged: h5py.File, name: str, files: list[h5py.File], shards: list[Path], out: Path) -> None:
    source = files[0][name]
    length = sum(f[name].shape[0] for f in files)
    layout = h5py.VirtualLayout(shape=(length, *source.shape[1:]), dtype=source.dtype)
    start = 0
    for f, path in zip(files, shards):
        part = f[name]
        if part.shape[0]:
            relative = os.path.relpath(path.resolve(), out.resolve().parent)
            layout[start : start + part.shape[0]] = h5py.VirtualSource(relative, name, shape=part.shape)
        start += part.shape[0]
    dataset = merged.create_virtual_dataset(name, layout)
    dataset.attrs.update(dict(source.attrs))
