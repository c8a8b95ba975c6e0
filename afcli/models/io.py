"""Saving and loading models the Hugging Face way: a folder with a JSON config and the weights
(tensors only, loadable with ``weights_only=True``), each written to a temporary file and renamed;
loading is strict — an unknown config key, or a missing or unexpected weight, is an error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

import torch

from afcli.errors import InputError
from afcli.files import write_text

WEIGHTS_NAME = "model.pt"
T = TypeVar("T")


def save(folder: str | Path, config_name: str, config: dict, state: dict) -> Path:
    from afcli.engine.checkpoint import save_atomic

    folder = Path(folder)
    write_text(folder / config_name, json.dumps(config, indent=2))
    save_atomic(state, folder / WEIGHTS_NAME)
    return folder


def read_config(folder: Path, config_name: str, what: str, config_type: type[T]) -> T:
    """The model's config, typed and checked as recipes are: an unknown key, a value of the wrong
    type or out of range is one line naming the file."""
    from afcli.config import build, check_numbers

    if not (folder / config_name).is_file() or not (folder / WEIGHTS_NAME).is_file():
        raise InputError(f"not a {what} checkpoint (needs {config_name} and {WEIGHTS_NAME})", folder)
    try:
        values = json.loads((folder / config_name).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"unreadable {config_name} ({' '.join(str(error).split())[:120]})", folder) from None
    if not isinstance(values, dict):
        raise InputError(f"{config_name} is not a JSON object", folder)
    config = build(config_type, values, folder / config_name)
    try:
        check_numbers(config)
    except InputError as error:
        raise InputError(str(error), folder / config_name) from None
    return config


def load_weights(model: torch.nn.Module, folder: Path, map_location="cpu") -> torch.nn.Module:
    from afcli.engine.checkpoint import load_checkpoint

    state = load_checkpoint(folder / WEIGHTS_NAME, what="afcli model file", map_location=map_location)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        problem = f"missing weights {missing[:3]}" if missing else f"unexpected weights {unexpected[:3]}"
        raise InputError(f"{problem} in {WEIGHTS_NAME}", folder)
    return model
