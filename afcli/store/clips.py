"""Sounds in the store: a clip table and an image–sound pair table beside the per-sample arrays of an
image store (the AVAGD layout, docs/store.md). AVAGD pairs each image with several sounds of its
action, and one sound with many images, so neither belongs to a sample row.

    /clips/id              (C,) S128   unique, stable (an import re-run skips known ids)
    /clips/key             (C,) S96    what the sound is of: ``object/action``
    /clips/source          (C,) S512   the file it came from, relative to the dataset root
    /clips/logmel          (E, 96, 64) f16  VGGish log-mel examples of every clip, clip after clip
    /clips/logmel_offsets  (C+1,) i8   clip c owns examples logmel_offsets[c]:logmel_offsets[c+1]
    /clips/wave            (W,) i2     16 kHz PCM of every clip (none for clips given only as log-mel)
    /clips/wave_offsets    (C+1,) i8
    /pairs/sample          (P,) i8     image row in /samples
    /pairs/clip            (P,) i8     row in /clips
    /pairs/split           (P,) S16    train, val or unseen (the image's split)

Appends are crash-safe like the query table's: a clip's arrays and offsets are written before its
id, so rows of an append killed half-way have empty ids and the next append drops them and the
ragged rows past the last complete clip; pair columns are cut to their common length.
"""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

from afcli.audio.logmel import EXAMPLE_FRAMES, MEL_BANDS, SAMPLE_RATE
from afcli.errors import InputError
from afcli.store.schema import decode

CLIPS, PAIRS = "clips/", "pairs/"
CLIP_COLUMNS = {"id": "S128", "key": "S96", "source": "S512"}
PAIR_COLUMNS = {"sample": "i8", "clip": "i8", "split": "S16"}
RAGGED = {"logmel": ((EXAMPLE_FRAMES, MEL_BANDS), "f2", 64), "wave": ((), "i2", 1 << 16)}  # tail, dtype, chunk rows
PAIR_SPLITS = ("train", "val", "unseen")


@dataclass
class Clip:
    id: str
    key: str
    source: str
    logmel: np.ndarray  # (n, 96, 64) examples
    wave: np.ndarray | None = None  # 16 kHz float in [-1, 1]


def is_clip_array(name: str) -> bool:
    return name.startswith(CLIPS) or name.startswith(PAIRS)


def ensure_clips(f: h5py.File) -> None:
    """Create the empty tables (before SWMR writing starts)."""
    for column, dtype in CLIP_COLUMNS.items():
        if CLIPS + column not in f:
            f.create_dataset(CLIPS + column, (0,), dtype, maxshape=(None,), chunks=(1024,), compression="lzf")
    for name, (tail, dtype, rows) in RAGGED.items():
        if CLIPS + name not in f:
            f.create_dataset(
                CLIPS + name, (0, *tail), dtype, maxshape=(None, *tail), chunks=(rows, *tail), compression="lzf"
            )
            f.create_dataset(CLIPS + name + "_offsets", (1,), "i8", maxshape=(None,), chunks=(1024,), data=[0])
    f[CLIPS + "wave"].attrs["rate"] = SAMPLE_RATE
    for column, dtype in PAIR_COLUMNS.items():
        if PAIRS + column not in f:
            f.create_dataset(PAIRS + column, (0,), dtype, maxshape=(None,), chunks=(4096,))


def add_clips(f: h5py.File, clips: list[Clip]) -> dict[str, int]:
    """Append the clips whose ids are new; returns every clip id's row."""
    ids = f[CLIPS + "id"][:]
    kept = len(ids)
    while kept and not ids[kept - 1]:
        kept -= 1
    _truncate(f, kept)
    rows = {clip_id: row for row, clip_id in enumerate(decode(ids[:kept]))}
    new = [clip for clip in clips if clip.id not in rows]
    if len({clip.id for clip in new}) != len(new):
        raise InputError("duplicate clip ids in one import")
    for clip in new:
        _append_clip(f, clip)
        rows[clip.id] = len(rows)
    f.flush()
    return rows


def _truncate(f: h5py.File, kept: int) -> None:
    for column in CLIP_COLUMNS:
        f[CLIPS + column].resize(kept, axis=0)
    for name in RAGGED:
        offsets = f[CLIPS + name + "_offsets"]
        offsets.resize(kept + 1, axis=0)
        f[CLIPS + name].resize(int(offsets[kept]), axis=0)


def _append_clip(f: h5py.File, clip: Clip) -> None:
    row = f[CLIPS + "id"].shape[0]
    wave = np.zeros(0, "i2") if clip.wave is None else (np.clip(clip.wave, -1, 1) * 32767).round().astype("i2")
    for name, values in (("logmel", clip.logmel.astype("f2")), ("wave", wave)):
        data, offsets = f[CLIPS + name], f[CLIPS + name + "_offsets"]
        start = int(offsets[row])
        data.resize(start + len(values), axis=0)
        data[start:] = values
        offsets.resize(row + 2, axis=0)
        offsets[row + 1] = start + len(values)
    for column in ("key", "source", "id"):  # the id last
        value = getattr(clip, column).encode("utf-8")
        if len(value) > np.dtype(CLIP_COLUMNS[column]).itemsize:
            raise InputError(f"clip {clip.id}: {column} longer than {np.dtype(CLIP_COLUMNS[column]).itemsize} bytes")
        f[CLIPS + column].resize(row + 1, axis=0)
        f[CLIPS + column][row] = value


def add_pairs(f: h5py.File, pairs: list[tuple[int, int, str]]) -> int:
    """Append the (sample row, clip row, split) pairs not yet in the table; returns how many."""
    lengths = [f[PAIRS + column].shape[0] for column in PAIR_COLUMNS]
    kept = min(lengths)
    for column in PAIR_COLUMNS:
        f[PAIRS + column].resize(kept, axis=0)
    known = set(zip(f[PAIRS + "sample"][:].tolist(), f[PAIRS + "clip"][:].tolist()))
    new = [p for p in dict.fromkeys(pairs) if (p[0], p[1]) not in known]
    bad = [p[2] for p in new if p[2] not in PAIR_SPLITS]
    if bad:
        raise InputError(f"pair split must be one of {', '.join(PAIR_SPLITS)}, got {bad[0]!r}")
    if new:
        for index, column in enumerate(PAIR_COLUMNS):
            dataset = f[PAIRS + column]
            dataset.resize(kept + len(new), axis=0)
            dataset[kept:] = np.array([p[index] for p in new], PAIR_COLUMNS[column])
        f.flush()
    return len(new)


@dataclass
class ClipTable:
    id: list[str]
    key: list[str]
    source: list[str]
    logmel_offsets: np.ndarray
    wave_offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.id)


def read_clips(f: h5py.File, where=None) -> ClipTable:
    if CLIPS + "id" not in f:
        raise InputError("the store holds no sounds (import an audio-visual set with afcli data import-avagd)", where)
    return ClipTable(
        decode(f[CLIPS + "id"][:]),
        decode(f[CLIPS + "key"][:]),
        decode(f[CLIPS + "source"][:]),
        f[CLIPS + "logmel_offsets"][:],
        f[CLIPS + "wave_offsets"][:],
    )


def read_pairs(f: h5py.File) -> tuple[np.ndarray, np.ndarray, list[str]]:
    return f[PAIRS + "sample"][:], f[PAIRS + "clip"][:], decode(f[PAIRS + "split"][:])


def clip_logmel(f: h5py.File, table: ClipTable, row: int) -> np.ndarray:
    return f[CLIPS + "logmel"][table.logmel_offsets[row] : table.logmel_offsets[row + 1]].astype(np.float32)


def clip_wave(f: h5py.File, table: ClipTable, row: int) -> np.ndarray | None:
    """The clip's 16 kHz samples in [-1, 1], or None when it was given only as log-mel."""
    start, stop = table.wave_offsets[row], table.wave_offsets[row + 1]
    return f[CLIPS + "wave"][start:stop].astype(np.float32) / 32767 if stop > start else None


def check_clips(f: h5py.File) -> list[str]:
    """Problems of the two tables for ``store verify``."""
    if CLIPS + "id" not in f:
        return []
    problems = []
    clips = f[CLIPS + "id"].shape[0]
    lengths = {column: f[CLIPS + column].shape[0] for column in CLIP_COLUMNS}
    lengths |= {f"{name}_offsets": f[CLIPS + name + "_offsets"].shape[0] - 1 for name in RAGGED}
    if len(set(lengths.values())) != 1:
        return [f"the clip table's columns differ in length: {lengths}"]
    for name in RAGGED:
        offsets = f[CLIPS + name + "_offsets"][:]
        if offsets[0] != 0 or (np.diff(offsets) < 0).any() or offsets[-1] != f[CLIPS + name].shape[0]:
            problems.append(f"/clips/{name}_offsets do not cover /clips/{name}")
    if len(set(decode(f[CLIPS + "id"][:]))) != clips:
        problems.append("duplicate clip ids")
    sample, clip, split = read_pairs(f)
    if not len(sample) == len(clip) == len(split):
        problems.append("the pair table's columns differ in length")
    elif ((sample < 0) | (sample >= f["samples/id"].shape[0])).any() or ((clip < 0) | (clip >= clips)).any():
        problems.append("pairs point at rows outside /samples or /clips")
    return problems
