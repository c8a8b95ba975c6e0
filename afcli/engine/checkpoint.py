"""Atomic checkpoints: tensors and plain metadata only (loadable with ``weights_only=True``),
written to a temporary file in the same folder and renamed over the old one."""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import torch

from afcli.errors import InputError
from afcli.files import written


def save_atomic(state: dict, path: str | Path) -> Path:
    """The one writer of torch files: serialised in memory, then written whole through a temporary,
    so that a failed write is Python's OSError with its errno (torch's zip writer loses it: a full
    disk reads "unexpected pos …") and never half a file under the real name."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with written(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())
    return Path(path)


def load_checkpoint(
    path: str | Path, keys: tuple[str, ...] = (), what: str = "afcli checkpoint", map_location="cpu"
) -> dict:
    """The one loader of every torch file afcli reads (``last.pt``, ``prompts.pt``, ``model.pt``,
    teacher weights): tensors and plain data only (``weights_only``), a dict with ``keys``. Anything
    else — a truncated file, a pickle carrying code, another program's file — is one line naming the
    file, not torch's page of advice."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no {what} here", path)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing or loading
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, ValueError … by file damage
        raise InputError(f"not an {what} ({_reason(error)})", path) from None
    if not isinstance(state, dict):
        raise InputError(f"not an {what} (holds a {type(state).__name__}, not a dict)", path)
    missing = [key for key in keys if key not in state]
    if missing:
        raise InputError(f"not an {what} (no {missing[0]!r} entry)", path)
    return state


def _reason(error: Exception) -> str:
    """The first sentence of an error, short: torch's unpickling errors run to a page."""
    text = " ".join(str(error).split())
    if "Weights only load failed" in text:
        return "it holds Python objects beyond tensors, which afcli never loads"
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return f"{type(error).__name__}: {first[:120]}" if first else type(error).__name__
