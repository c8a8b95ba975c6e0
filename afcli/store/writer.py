"""Resumable, crash-safe writing into a store.

A stage (``import``, later ``lift/dinov3`` …) works like this::

    with StoreWriter(path) as w:                      # takes the lock, opens read-write
        w.ensure_array("labels/part", (), "i2")       # structure first (short, non-SWMR phase)
        w.ensure_stage("import")
        w.begin()                                     # SWMR on: from here the file is always readable
        rows = w.add_samples(ids, categories)         # new ids appended as pending, old ids found
        for row in w.pending("import", rows):
            w.write(row, {...}); w.mark("import", row, DONE)

Each sample's arrays are written before its status flips to done, and the file is flushed after
every sample, so a killed run leaves finished samples done and the rest pending; running the same
stage again redoes exactly the pending ones. Per-point arrays of a *ragged* store are appended in
sample order through :meth:`StoreWriter.append_points`.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence, TypeVar

import h5py
import numpy as np

from afcli import __version__
from afcli.errors import InputError
from afcli.files import disk_full, temporary, write_failure
from afcli.store.clips import is_clip_array
from afcli.store.queries import is_query_array
from afcli.store.schema import (
    CATEGORY_DTYPE,
    DONE,
    FIXED,
    FORMAT,
    ID_DTYPE,
    RAGGED,
    SCHEMA_VERSION,
    SOURCE_DTYPE,
    STAGE_ARRAYS,
    array_names,
    decode,
    open_store,
    status_path,
    writer_lock,
)
from afcli.store.texts import is_text_array

SAMPLE_COLUMNS = {"samples/id": ID_DTYPE, "samples/category": CATEGORY_DTYPE, "samples/source": SOURCE_DTYPE}
RAGGED_CHUNK_BYTES = 1 << 18


def create_store(path: str | Path, layout: str = FIXED, num_points: int = 2048) -> None:
    """Write an empty store atomically (temp file + hard link): a crash never leaves half a header,
    and of two processes creating one store, through any names, the second keeps the first's file."""
    path = Path(path)
    if layout not in (FIXED, RAGGED):
        raise InputError(f"unknown layout {layout!r} (fixed or ragged)", path)
    tmp = temporary(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_empty_store(tmp, layout, num_points)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            if not path.exists():
                tmp.replace(path)
    except OSError as error:
        raise InputError(f"cannot create ({error.strerror or error})", path) from None
    finally:
        tmp.unlink(missing_ok=True)


def _write_empty_store(tmp: Path, layout: str, num_points: int) -> None:
    with h5py.File(tmp, "w", libver="latest") as f:
        f.attrs.update(format=FORMAT, schema=SCHEMA_VERSION, afcli_version=__version__, layout=layout)
        f.attrs["num_points"] = num_points if layout == FIXED else 0
        for name, dtype in SAMPLE_COLUMNS.items():
            f.create_dataset(name, (0,), dtype, maxshape=(None,), chunks=(1024,), compression="lzf")
        transform = f.create_dataset("samples/transform", (0, 4), "f4", maxshape=(None, 4), chunks=(1024, 4))
        transform.attrs["meaning"] = "stored = (original - transform[:3]) / transform[3]"
        if layout == RAGGED:
            f.create_dataset("points/offsets", (1,), "i8", maxshape=(None,), chunks=(1024,), data=[0])


_ABANDONED: list[tuple[ExitStack, h5py.File]] = []


def abandoned_writes() -> bool:
    """Whether a store write failed in this process; it must then end with ``os._exit``."""
    return bool(_ABANDONED)


SPACE_HEADROOM = 4 << 20  # metadata a flush and a clean close may still write
T = TypeVar("T")  # what a table's append returns


def _plain(value) -> object:
    """Attribute values as people write them (``12``, not ``np.int64(12)``)."""
    return np.asarray(value).tolist()


class StoreWriter:
    """The only object that writes into a store; see the module docstring for the protocol."""

    def __init__(self, path: str | Path, *, create: bool = False, layout: str = FIXED, num_points: int = 2048):
        self.path = Path(path)
        self._create = create
        self._layout_request = (layout, num_points)
        self._stack = ExitStack()
        self._failed = False
        self.f: h5py.File | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> "StoreWriter":
        if self.path.exists() and self.path.is_dir():
            raise InputError("is a directory, expected a store file", self.path)
        if not self.path.exists():
            if not self._create:
                raise InputError("no such store", self.path)
            create_store(self.path, *self._layout_request)
        try:
            self._stack.enter_context(writer_lock(self.path))
            self.f = self._stack.enter_context(open_store(self.path, "r+"))
            if self.f.attrs.get("virtual", False):
                raise InputError("a merged virtual store is read-only; merge with --copy to write into it", self.path)
            if self._create and self.f.attrs["layout"] != self._layout_request[0]:
                raise InputError(f"store layout is {self.f.attrs['layout']}, not {self._layout_request[0]}", self.path)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, kind, error, trace) -> None:
        if not self._failed:
            try:
                with self._writing():
                    self._stack.close()
            except InputError:
                if kind is None:  # a failure while already failing would hide the first, truer error
                    raise
        if self._failed:
            # HDF5 cannot close a file whose writes failed: it retries them, fails, and crashes the
            # interpreter when the handle is freed. On disk the file is as its last successful flush
            # left it (SWMR ordering: the state a killed writer leaves, which resumes exactly), so
            # the handle is kept, the lock with it, and the CLI ends the process without HDF5's
            # shutdown (``abandoned_writes``).
            _ABANDONED.append((self._stack, self.f))
        self.f = None

    def begin(self) -> None:
        """Switch to SWMR writing; after this the structure is fixed and every write is crash-safe."""
        self.f.flush()
        self.f.swmr_mode = True

    # -- structure -----------------------------------------------------------------------------
    @property
    def layout(self) -> str:
        return str(self.f.attrs["layout"])

    @property
    def num_points(self) -> int:
        return int(self.f.attrs["num_points"])

    @property
    def num_samples(self) -> int:
        return int(self.f["samples/id"].shape[0])

    @property
    def total_points(self) -> int:
        return int(self.f["points/offsets"][-1])

    def ensure_array(
        self,
        name: str,
        tail: Sequence[int],
        dtype: str | np.dtype,
        *,
        per_point: bool = True,
        attrs: Mapping[str, object] | None = None,
        compression: str | None = "lzf",
        fill: float | int | None = None,
    ) -> h5py.Dataset:
        """Create ``name`` or check that the existing one matches (same tail shape, dtype, attrs).

        Fixed stores hold per-point arrays as ``(S, N, *tail)``, ragged stores as ``(T, *tail)``;
        per-sample arrays are ``(S, *tail)``. One chunk holds one sample; rows never written read
        as ``fill`` (HDF5's default, zeros, when None).
        """
        tail = tuple(int(t) for t in tail)
        dtype = np.dtype(dtype)
        attrs = dict(attrs or {})
        if name in self.f:
            return self._check_existing(name, tail, dtype, per_point, attrs)
        if per_point and self.layout == FIXED:
            shape, chunks = (self.num_samples, self.num_points, *tail), (1, self.num_points, *tail)
        elif per_point:
            row = max(1, dtype.itemsize * int(np.prod(tail, dtype=np.int64)))
            shape, chunks = (self.total_points, *tail), (max(1, RAGGED_CHUNK_BYTES // row), *tail)
        else:
            shape, chunks = (self.num_samples, *tail), (1, *tail)
        dataset = self.f.create_dataset(
            name,
            shape,
            dtype,
            maxshape=(None, *shape[1:]),
            chunks=chunks,
            compression=compression,
            shuffle=compression is not None and dtype.itemsize > 1,
            fillvalue=fill,
        )
        dataset.attrs["per_point"] = per_point
        for key, value in attrs.items():
            dataset.attrs[key] = value
        return dataset

    def _check_existing(self, name, tail, dtype, per_point, attrs) -> h5py.Dataset:
        dataset = self.f[name]
        lead = (2 if self.layout == FIXED else 1) if per_point else 1
        if (
            dataset.shape[lead:] != tail
            or dataset.dtype != dtype
            or bool(dataset.attrs.get("per_point", False)) != per_point
        ):
            raise InputError(
                f"/{name} holds {dataset.dtype}{list(dataset.shape[lead:])}, this stage writes {dtype}{list(tail)}",
                self.path,
            )
        for key, value in attrs.items():
            stored = dataset.attrs.get(key)
            if stored is None:
                raise InputError(
                    f"/{name} was written without recording {key} (an older afcli), this run uses {_plain(value)}",
                    self.path,
                )
            if not np.array_equal(np.asarray(stored), np.asarray(value)):
                raise InputError(
                    f"/{name} was written with {key}={_plain(stored)}, this run uses {_plain(value)}", self.path
                )
        return dataset

    def ensure_stage(self, stage: str, arrays: Sequence[str] = ()) -> h5py.Dataset:
        """The stage's status column. ``arrays`` are those the stage writes for every sample it marks
        done; they are recorded so that ``store verify`` finds a done sample whose chunks never
        reached the disk."""
        name = status_path(stage)
        if name not in self.f:
            self.f.create_dataset(name, (self.num_samples,), "u1", maxshape=(None,), chunks=(4096,))
        if arrays:
            self.f[name].attrs[STAGE_ARRAYS] = sorted(arrays)
        return self.f[name]

    def ensure_table(self, ensure: Callable[[h5py.File], None]) -> None:
        """One of the store's tables beside the per-sample arrays, created empty if missing (the
        ``ensure_*`` of afcli.store.queries, .clips or .texts)."""
        ensure(self.f)

    # -- samples ------------------------------------------------------------------------------
    def ids(self) -> list[str]:
        return decode(self.f["samples/id"][:])

    def add_samples(
        self,
        ids: Sequence[str],
        categories: Sequence[str],
        sources: Sequence[str] | None = None,
    ) -> list[int]:
        """Rows of ``ids``: existing ids keep their row, new ids are appended (every stage pending)."""
        if len(set(ids)) != len(ids):
            duplicated = sorted(sample_id for sample_id, count in Counter(ids).items() if count > 1)
            raise InputError(f"duplicate sample ids {duplicated[:5]}", self.path)
        index = {sample_id: row for row, sample_id in enumerate(self.ids())}
        columns = {"id": ids, "category": categories, "source": sources if sources is not None else [""] * len(ids)}
        new = [i for i, sample_id in enumerate(ids) if sample_id not in index]
        for column, values in columns.items():
            limit = np.dtype(SAMPLE_COLUMNS[f"samples/{column}"]).itemsize
            for i in new:
                if len(values[i].encode("utf-8")) > limit:
                    raise InputError(f"sample {column} {values[i]!r} is longer than {limit} bytes", self.path)
        if new:
            start = self.num_samples
            stop = start + len(new)
            for dataset in self._datasets_along(points=False):
                dataset.resize(stop, axis=0)
            for column, values in columns.items():
                self.f[f"samples/{column}"][start:stop] = np.array([values[i].encode("utf-8") for i in new])
            self.f["samples/transform"][start:stop] = np.tile(np.array([0, 0, 0, 1], "f4"), (len(new), 1))
            if self.layout == RAGGED:
                # Ragged samples get their point range when appended; until then they are empty.
                total = self.total_points
                self.f["points/offsets"].resize(stop + 1, axis=0)
                self.f["points/offsets"][start + 1 : stop + 1] = total
            for offset, i in enumerate(new):
                index[ids[i]] = start + offset
            self.f.flush()
        return [index[sample_id] for sample_id in ids]

    def _datasets_along(self, points: bool) -> list[h5py.Dataset]:
        """Datasets whose first axis runs over points (ragged per-point arrays) or over samples.

        ``points/offsets`` (S+1 rows) is neither and is resized by its callers.
        """
        ragged = self.layout == RAGGED
        found = []
        for name in array_names(self.f):
            per_point = bool(self.f[name].attrs.get("per_point", False))
            table = is_query_array(name) or is_clip_array(name) or is_text_array(name)
            if name != "points/offsets" and not table and (ragged and per_point) == points:
                found.append(self.f[name])
        return found

    # -- writing ------------------------------------------------------------------------------
    def pending(self, stage: str, rows: Iterable[int] | None = None) -> list[int]:
        status = self.f[status_path(stage)][:]
        rows = range(len(status)) if rows is None else rows
        return [row for row in rows if status[row] != DONE]

    def status(self, stage: str) -> np.ndarray:
        return self.f[status_path(stage)][:]

    def append_points(self, row: int, num_points: int) -> slice:
        """Give ragged sample ``row`` the next ``num_points`` rows of every per-point array.

        Rows are appended in sample order: ``row`` must be the first sample without points, or a
        sample whose earlier append was interrupted (its range is then reallocated from its start).
        """
        offsets = self.f["points/offsets"]
        start = int(offsets[row])
        if int(offsets[-1]) > int(offsets[row + 1]):
            raise InputError(f"ragged sample {row} must be appended in order", self.path)
        stop = start + num_points
        for dataset in self._datasets_along(points=True):
            dataset.resize(stop, axis=0)
        offsets[row + 1 :] = stop
        return slice(start, stop)

    def write(self, row: int, arrays: Mapping[str, np.ndarray]) -> None:
        """Write one sample's arrays (names relative to the store root) through to the file.

        Each dataset is flushed here, while its handle is ours: HDF5 otherwise writes a dataset's
        cached chunks when the handle is released, where a failed write (a full disk) is only
        printed and the sample would still be marked done.
        """
        self._check_space(arrays)
        with self._writing():
            for name, value in arrays.items():
                dataset = self.f[name]
                if self.layout == RAGGED and dataset.attrs.get("per_point", False):
                    offsets = self.f["points/offsets"]
                    dataset[int(offsets[row]) : int(offsets[row + 1])] = value
                else:
                    dataset[row] = value
                dataset.flush()

    def add_rows(self, append: Callable[[h5py.File, list], T], rows: list) -> T:
        """Append ``rows`` to a table through its ``append`` (``add_queries``, ``add_texts`` …; skips known rows)."""
        with self._writing():
            return append(self.f, rows)

    def set_transform(self, row: int, centre: np.ndarray, scale: float) -> None:
        self.f["samples/transform"][row] = np.array([*centre, scale], "f4")

    def mark(self, stage: str, row: int, status: int) -> None:
        """Flip a sample's status after its arrays, and flush: this is the commit point."""
        with self._writing():
            self.f.flush()
            dataset = self.f[status_path(stage)]
            dataset[row] = status
            dataset.flush()
            self.f.flush()

    def _check_space(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Stop before a sample that cannot fit, while the file can still be closed cleanly."""
        needed = sum(np.asarray(value).nbytes for value in arrays.values())
        free = shutil.disk_usage(self.path.parent).free
        if free < needed + SPACE_HEADROOM:
            detail = (
                f"{free / 1e6:.1f} MB free; a sample needs {needed / 1e6:.1f} MB and "
                f"{SPACE_HEADROOM / 1e6:.1f} MB stays spare"
            )
            raise InputError(disk_full(detail), self.path)

    @contextmanager
    def _writing(self):
        """Turn HDF5's failed writes into one line naming the store (a full disk says so)."""
        try:
            yield
        except (OSError, RuntimeError) as error:
            self._failed = True
            failure = write_failure(error, self.path) or InputError(
                f"cannot write ({' '.join(str(error).split())[:200]})", self.path
            )
            raise failure from None
