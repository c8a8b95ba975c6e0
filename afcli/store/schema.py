"""Schema v1 of the afcli feature store, and the one place that opens store files.

The layout is columnar: one chunked dataset per kind of array, one chunk per sample (docs/store.md).
Files are written with ``libver="latest"`` so that writers can run in SWMR mode: HDF5 then orders its
metadata flushes so that the file on disk is consistent at every instant, which is what lets a writer
killed with SIGKILL leave a readable store. HDF5 marks such a file "open for writing" until it is
closed; :func:`open_store` clears that mark only under :func:`writer_lock`, i.e. when it is certain
that the writer which set it is dead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import glob
import os
import struct
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
STAGE_ARRAYS = "arrays"  # attribute of /status/<stage>: the arrays every sample done in it has
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


def require_finite(values: np.ndarray, name: str, sample: str, path: str | Path) -> np.ndarray:
    """Stored floats with NaN or Inf (a damaged or hand-edited store) stop the stage that reads them."""
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise InputError(
            f"sample {sample}: /{name} holds NaN or Inf (afcli store verify lists every such sample)", path
        )
    return values


def decode(values) -> list[str]:
    """Byte-string columns and string attributes as a list of ``str``."""
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(values).reshape(-1)]


def sample_splits(f: h5py.File, default: str) -> list[str]:
    """Each sample's ``/labels/split``; ``default`` for every sample of a store without one."""
    return decode(f["labels/split"][:]) if "labels/split" in f else [default] * len(f["samples/id"])


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
    try:
        version = int(f.attrs.get("schema", -1))
    except (TypeError, ValueError):
        version = -1
    if version != SCHEMA_VERSION:
        raise InputError(f"store schema v{version}, this afcli reads v{SCHEMA_VERSION}", path)
    if f.attrs.get("layout") not in (FIXED, RAGGED) or "num_points" not in f.attrs:
        raise InputError("not an afcli store (no layout or num_points attribute)", path)
    required = ["samples/id", "samples/category", "samples/source", "samples/transform"]
    required += ["points/offsets"] if f.attrs["layout"] == RAGGED else []
    missing = [name for name in required if name not in f]
    if missing:
        raise InputError(f"not an afcli store (no /{missing[0]})", path)


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
    fapl.set_file_locking(False, True)  # see open_store
    flag = ctypes.c_bool(True)
    if lib.H5Pset(fapl.id, b"clear_status_flags", ctypes.byref(flag)) < 0:
        raise OSError("H5Pset(clear_status_flags) failed")
    f = h5py.File(h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDWR, fapl=fapl))
    # A writer whose writes failed (a full disk) may have left the end-of-allocation mark behind
    # blocks it did write; like ``h5clear --increment=0``, move it to the end of the file so that
    # those blocks can be freed and rewritten.
    lib.H5Fincrement_filesize.argtypes = [ctypes.c_int64, ctypes.c_uint64]
    if lib.H5Fincrement_filesize(f.id.id, 0) < 0:
        f.close()
        raise OSError("H5Fincrement_filesize failed")
    return f


LOCK_BYTE = 1 << 62  # the byte a writer locks: far past any data, so nothing else ever locks it


@contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the store file itself for the lifetime of a writer.

    The lock belongs to the file, not to the name it was reached by: through a symlink, another
    relative path, a hard link or a bind mount a second writer finds it taken. On Linux it is an
    open-file-description lock on one byte (``LOCK_BYTE``), which HDF5's own whole-file flock never
    meets (readers keep reading while a writer runs) and which closing other descriptors of the file
    does not drop; elsewhere a whole-file flock. The kernel releases either when the writer dies.
    """
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as error:
        raise InputError(f"cannot open for writing ({error.strerror})", path) from None
    try:
        try:
            _lock(fd)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise InputError(f"cannot lock ({error.strerror})", path) from None
            raise InputError("another afcli process is writing this store", path) from None
        if os.fstat(fd).st_ino != os.stat(path).st_ino:  # the name now points at another file
            raise InputError("another afcli process replaced this store while it was being opened", path)
        yield
    finally:
        os.close(fd)


def _lock(fd: int) -> None:
    command = getattr(fcntl, "F_OFD_SETLK", None)
    if command is None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks), padded to 32 bytes
    fcntl.fcntl(fd, command, struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, LOCK_BYTE, 1, 0))


def open_store(path: str | Path, mode: str = "r") -> h5py.File:
    """Open an existing store for reading (``"r"``) or, under :func:`writer_lock`, for writing (``"r+"``).

    Readers fall back to SWMR read mode when a writer is running (or died): they then see every
    sample that writer had finished. HDF5's own file lock is off: writers hold :func:`writer_lock`,
    and on NFS, where the kernel emulates HDF5's flock with whole-file record locks, HDF5's lock
    would collide with it (and readers would wait on a running writer).
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such store", path)
    if not path.is_file():
        raise InputError("not a file", path)
    if not h5py.is_hdf5(path):
        raise InputError("not an HDF5 file, so not an afcli store", path)
    try:
        f = h5py.File(path, mode, libver="latest", locking=False)
    except OSError as error:
        if _CONSISTENCY_FLAG_ERROR not in str(error):
            raise InputError(f"cannot open ({' '.join(str(error).split())[:160]})", path) from None
        f = h5py.File(path, "r", swmr=True, locking=False) if mode == "r" else _open_clearing_write_mark(path)
    try:
        check_schema(f, path)
    except InputError:
        f.close()
        raise
    except Exception as error:  # damaged metadata surfaces as OSError, KeyError, RuntimeError …
        f.close()
        raise InputError(f"unreadable store metadata ({' '.join(str(error).split())[:120]})", path) from None
    return f


def shard_path(path: str | Path, rank: int, world_size: int) -> Path:
    """Where rank ``rank`` of a ``world_size``-process job writes: ``out.h5`` → ``out-00001-of-00004.h5``."""
    path = Path(path)
    if world_size <= 1:
        return path
    return path.with_name(f"{path.stem}-{rank:05d}-of-{world_size:05d}{path.suffix}")
