"""Which implementation each op runs on: torch-cluster / torch-scatter / spconv when they import, pure
PyTorch otherwise. ``AFCLI_OPS=torch`` or ``AFCLI_OPS=compiled`` forces one (a forced ``compiled`` that cannot
import is an error, not a silent fallback)."""

from __future__ import annotations

import importlib
import os
from contextlib import contextmanager
from functools import lru_cache
from types import ModuleType
from typing import Iterator

from afcli.errors import InputError
from afcli.extras import install_hint

TORCH, COMPILED = "torch", "compiled"
PROVIDER = {
    "fps": "torch_cluster",
    "knn": "torch_cluster",
    "ball_query": None,
    "three_nn_interpolate": "torch_cluster",
    "group": None,
    "scatter_sum": "torch_scatter",
    "scatter_mean": "torch_scatter",
    "scatter_max": "torch_scatter",
    "sparse_conv": "spconv",
}


@lru_cache(maxsize=None)
def _import(module: str) -> ModuleType | None:
    """Import a compiled extension; an ABI mismatch ("undefined symbol") counts as not installed."""
    try:
        return importlib.import_module(module)
    except (ImportError, OSError):
        return None


def requested() -> str:
    choice = os.environ.get("AFCLI_OPS", "auto").strip().lower() or "auto"
    if choice not in ("auto", TORCH, COMPILED):
        raise InputError(f"AFCLI_OPS={choice!r}: expected auto, torch or compiled")
    return choice


def compiled_module(op: str) -> ModuleType | None:
    """The extension module ``op`` should call, or None for the pure-PyTorch path."""
    provider = PROVIDER[op]
    choice = requested()
    if provider is None or choice == TORCH:
        return None
    module = _import(provider)
    if module is None and choice == COMPILED:
        raise InputError(f"AFCLI_OPS=compiled but {provider} does not import; {install_hint(provider)}")
    return module


def backend_of(op: str) -> str:
    return COMPILED if compiled_module(op) is not None else TORCH


def report() -> dict[str, str]:
    """``{op: "compiled (torch_cluster)" | "torch"}`` for ``afcli doctor``."""
    return {op: f"{COMPILED} ({PROVIDER[op]})" if backend_of(op) == COMPILED else TORCH for op in PROVIDER}


@contextmanager
def pure_torch() -> Iterator[None]:
    """Run every op on its PyTorch path inside the block — what graph exporters can trace: the
    compiled extensions are custom operators that TorchScript files would need at load time and
    ONNX cannot express."""
    before = os.environ.get("AFCLI_OPS")
    os.environ["AFCLI_OPS"] = TORCH
    try:
        yield
    finally:
        if before is None:
            del os.environ["AFCLI_OPS"]
        else:
            os.environ["AFCLI_OPS"] = before
