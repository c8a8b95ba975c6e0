"""Saving and loading models the Hugging Face way: a folder with a JSON config and the weights
(tensors only, loadable with ``weights_only=True``), each written to a temporary file and renamed;
loading is strict — an unknown config key, or a missing or unexpected weight, is an error."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from afcli.errors import InputError

WEIGHTS_NAME = "model.pt"


def save(folder: str | Path, config_name: str, config: dict, state: dict) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (config_name + ".tmp")
    tmp.write_text(json.dumps(config, indent=2))
    tmp.replace(folder / config_name)
    tmp = folder / (WEIGHTS_NAME + ".tmp")
    torch.save(state, tmp)
    tmp.replace(folder / WEIGHTS_NAME)
    return folder


def read_config(folder: Path, config_name: str, what: str) -> dict:
    if not (folder / config_name).is_file() or not (folder / WEIGHTS_NAME).is_file():
        raise InputError(f"not a {what} checkpoint (needs {config_name} and {WEIGHTS_NAME})", folder)
    try:
        return json.loads((folder / config_name).read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"unreadable {config_name} ({error})", folder) from None


def check_keys(values: dict, known: set[str], folder: Path, config_name: str) -> None:
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"unknown config key {unknown[0]!r} in {config_name}", folder)


def load_weights(model: torch.nn.Module, folder: Path, map_location="cpu") -> torch.nn.Module:
    state = torch.load(folder / WEIGHTS_NAME, map_location=map_location, weights_only=True)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        problem = f"missing weights {missing[:3]}" if missing else f"unexpected weights {unexpected[:3]}"
        raise InputError(f"{problem} in {WEIGHTS_NAME}", folder)
    return model
