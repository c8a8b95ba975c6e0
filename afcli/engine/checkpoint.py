"""Atomic checkpoints: tensors and plain metadata only (loadable with ``weights_only=True``),
written to a temporary file in the same folder and renamed over the old one."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from afcli.errors import InputError


def save_atomic(state: dict, path: str | Path) -> Path:
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # processes writing the same file never share a temporary
    torch.save(state, tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError("no checkpoint here", path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError) as error:
        raise InputError(f"unreadable checkpoint ({str(error).splitlines()[0]})", path) from None
