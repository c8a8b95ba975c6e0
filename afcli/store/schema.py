"""Schema v1 of the afcli feature store, and the one place that opens store files.

The layout is columnar: one chunked dataset per kind of array, one chunk per sample (docs/store.md).
Files are written with ``libver="latest"`` so that writers can run in SWMR mode: HDF5 then orders its
metadata flushes so that the file on disk is consistent at every instant, which is what lets a writer
killed with SIGKILL leave a readable store. HDF5 marks such a file "open for writing" until it is
closed; :func:`open_store` clears that mark only when it holds the store's lock file, i.e. when it is
certain that the writer which set it is dead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import glob
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from afcli.errors import InputError

FORMAT = "afcli-store"
SCHEMA_VERSION = 1

PENDING, DONE, FAILED = 0, 1, 2
STATUS_NAMES = {PENDING: "pending", DONE: "done", FAILED: "failed"}

ID_DTYPE = "S64"
CATEGORY_DTYPE = "S32"
SOURCE_DTYPE = "S256"

FIXED, RAGGED = "fixed", "ragged"
READ_BLOCK_BYTES = 64 << 20
_CONSISTENCY_FLAG_ERROR = "already open for write"


def status_path(stage: str) -> str:
    return f"status/{stage}"


def read_sample(f: h5py.File, row: int, name: str) -> np.ndarray:
    """One sample's rows of ``name`` (per-point arrays of ragged stores included)."""
    dataset = f[name]
    if f.attrs["layout"] == RAGGED and dataset.attrs.get("per_point", False):
        offsets = f["points/offsets"]
        return dataset[int(offsets[row]) : int(offsets[row + 1])]
    return dataset[row]


def decode(values) -> list[str]:
    """Byte-string columns and string attributes as a list of ``str``."""
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(values).reshape(-1)]


def row_blocks(dataset: h5py.Dataset) -> Iterator[slice]:
    """Slices along axis 0 of about READ_BLOCK_BYTES each, aligned to chunk boundaries."""
    length = dataset.shape[0]
    row_bytes = max(1, dataset.dtype.itemsize * int(np.prod(dataset.shape[1:], dtype=np.int64)))
    step = max(1, READ_BLOCK_BYTES // row_bytes)
    if dataset.chunks:
        step = max(dataset.chunks[0], step - step % dataset.chunks[0])
    for start in range(0, length, step):
        yield slice(start, min(length, start + step))


def array_names(f: h5py.File) -> list[str]:
    """Every dataset in the file, as paths relative to the root."""
    names: list[str] = []
    f.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
    return names


def check_schema(f: h5py.File, path: str | Path) -> None:
    """Refuse files that are not afcli stores, or of a schema this version cannot read."""
    if f.attrs.get("format") != FORMAT:
        raise InputError("not an afcli store (no format='afcli-store' attribute)", path)
    version = int(f.attrs.get("schema", -1))
    if version != SCHEMA_VERSION:
        raise InputError(f"store schema v{version}, this afcli reads v{SCHEMA_VERSION}", path)


def _hdf5_library() -> ctypes.CDLL:
    """The HDF5 shared library h5py itself runs on (bundled in wheels, or the system one)."""
    import h5py as _h5py

    here = Path(_h5py.__file__).resolve().parent
    candidates = sorted(glob.glob(str(here.parent / "h5py.libs" / "libhdf5-*.so*")))
    candidates += sorted(glob.glob(str(here / ".dylibs" / "libhdf5*.dylib")))
    if not candidates:
        found = ctypes.util.find_library("hdf5")
        candidates = [found] if found else []
    if not candidates:
        raise OSError("cannot locate the HDF5 library used by h5py")
    return ctypes.CDLL(candidates[0])


def _open_clearing_write_mark(path: Path) -> h5py.File:
    """Open read-write a file whose last writer died, clearing HDF5's "open for write" mark.

    This is what the ``h5clear -s`` tool does: it sets the file-access property
    ``clear_status_flags`` through the public ``H5Pset`` call.
    """
    lib = _hdf5_library()
    lib.H5Pset.argtypes = [ctypes.c_int64, ctypes.c_char_p, ctypes.c_void_p]
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    flag = ctypes.c_bool(True)
    if lib.H5Pset(fapl.id, b"clear_status_flags", ctypes.byref(flag)) < 0:
        raise OSError("H5Pset(clear_status_flags) failed")
    return h5py.File(h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDWR, fapl=fapl))


@contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """Hold ``<store>.lock`` for the lifetime of a writer; the kernel drops it if the writer dies."""
    lock_path = Path(str(path) + ".lock")
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError("another afcli process is writing this store", path) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_store(path: str | Path, mode: str = "r") -> h5py.File:
    """Open an existing store for reading (``"r"``) or, under :func:`writer_lock`, for writing (``"r+"``).

    Readers fall back to SWMR read mode when a writer is running (or died): they then see every
    sample that writer had finished.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such store", path)
    if not path.is_file():
        raise InputError("not a file", path)
    if not h5py.is_hdf5(path):
        raise InputError("not an HDF5 file, so not an afcli store", path)
    try:
        f = h5py.File(path, mode, libver="latest")
    except OSError as error:
        if _CONSISTENCY_FLAG_ERROR not in str(error):
            raise InputError(f"cannot open: {error}", path) from None
        f = h5py.File(path, "r", swmr=True) if mode == "r" else _open_clearing_write_mark(path)
    try:
        check_schema(f, path)
    except InputError:
        f.close()
        raise
    return f
