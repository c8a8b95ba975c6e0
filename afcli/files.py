"""Files afcli writes whole: checkpoints, models, exports, predictions, run records.

Each is written to a temporary beside its target and replaces it only when complete, so a crash or an
error never leaves half a file under the real name; a failed write removes its temporary and says in
one line which file and why, a full disk by name. Temporaries are named after the host and process
that write them, so processes never share one, and those of dead processes on this host are removed
the next time their target is written.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from afcli.errors import InputError

FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"
_NEARLY_FULL = 1 << 20


def disk_full(detail: str) -> str:
    return f"disk full ({detail}); free space and run the same command again, finished work is kept"


def _errno(error: BaseException, path: Path) -> int | None:
    """The errno of a failed write. HDF5 reports it only inside its text, torch's zip writer not at
    all: a torch write failure beside a nearly full disk is taken as a full disk."""
    found = re.search(r"errno = (\d+)", str(error))
    if found:
        return int(found.group(1))
    if isinstance(error, OSError) and error.errno:
        return error.errno
    if _TORCH_WRITE_FAILED.search(str(error)):
        try:
            if shutil.disk_usage(path.parent if path.parent.exists() else ".").free < _NEARLY_FULL:
                return errno.ENOSPC
        except OSError:
            pass
    return None


_TORCH_WRITE_FAILED = re.compile(r"write failed|failed writing")


def write_failure(error: BaseException, path: str | Path) -> InputError | None:
    """One line for ``error`` if it is a failed write (None for any other error)."""
    path = Path(path)
    code = _errno(error, path)
    if code in FULL:
        return InputError(disk_full(os.strerror(code)), path)
    if code in DENIED:
        return InputError(f"cannot write here ({os.strerror(code)})", path)
    if code is not None:
        return InputError(f"cannot write ({os.strerror(code)})", path)
    if _TORCH_WRITE_FAILED.search(str(error)):
        return InputError(f"cannot write ({' '.join(str(error).split())[:160]})", path)
    return None


@contextmanager
def writing_to(path: str | Path) -> Iterator[None]:
    """Turn a failed write inside the block into one line naming ``path``; other errors pass."""
    try:
        yield
    except (OSError, RuntimeError) as error:
        failure = write_failure(error, path)
        if failure is None:
            raise
        raise failure from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(path: Path) -> None:
    for old in path.parent.glob(f".{path.name}.{_HOST}.*.tmp*"):
        pid = old.name[len(f".{path.name}.{_HOST}.") :].split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            old.unlink(missing_ok=True)


def make_folder(folder: str | Path) -> Path:
    """``folder`` and its parents, or one line saying why not (a read-only place, a file in the way)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError("expected a folder, this is a file", folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create this folder ({error.strerror or error})", folder) from None
    return folder


def temporary(path: Path, suffix: str = "") -> Path:
    """The hidden temporary this process writes ``path`` through."""
    return path.with_name(f".{path.name}.{_HOST}.{os.getpid()}.tmp{suffix}")


def check_creatable(folder: str | Path) -> None:
    """Fail now, not after the work, where ``folder`` cannot be made or written: a probe folder is
    made and removed in its nearest existing ancestor (permissions alone do not tell, for root)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError("expected a folder, this is a file", folder)
    ancestor = next(parent for parent in (folder, *folder.absolute().parents) if parent.exists())
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".afcli-probe-", dir=ancestor))
    except OSError as error:
        raise InputError(f"cannot create this folder ({error.strerror or error})", folder) from None


@contextmanager
def written(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary to write ``path`` into; it becomes ``path`` (flushed to disk, then renamed)
    when the block ends, and is removed when the block fails. ``suffix`` ends the temporary's name
    for writers that insist on an extension (numpy's ``.npz``)."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder; name the file to write", path)
    make_folder(path.parent)
    _remove_stale(path)
    tmp = temporary(path, suffix)
    try:
        with writing_to(path):
            yield tmp
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    with written(path) as tmp:
        tmp.write_text(text)
    return Path(path)
