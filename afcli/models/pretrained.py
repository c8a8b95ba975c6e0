"""One file layout for every model family, the Hugging Face way: a folder with ``config.json`` (the
model's typed config plus ``model_type``) and ``model.safetensors`` (plain tensors: nothing to
unpickle, readable from any language), each written to a temporary file and renamed. Loading is
strict — an unknown config key, a value out of range, or a missing or unexpected weight is one line
naming the file.

Folders written by afcli 0.1 still load: weights in ``model.pt`` (torch, ``weights_only``), CAST's
config in ``cast_config.json``, Point-MAE's in a ``config.json`` without ``model_type``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import ClassVar

import torch

from afcli.errors import InputError
from afcli.files import write_text, written

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
LEGACY_WEIGHTS_FILE = "model.pt"
LEGACY_CONFIG_FILES = {"cast": "cast_config.json"}  # afcli 0.1; Point-MAE used config.json


def saved_model_type(folder: str | Path) -> str | None:
    """The model family saved in ``folder`` (``None``: no saved model there)."""
    folder = Path(folder)
    if not (folder / WEIGHTS_FILE).is_file() and not (folder / LEGACY_WEIGHTS_FILE).is_file():
        return None
    for model_type, name in LEGACY_CONFIG_FILES.items():
        if (folder / name).is_file():
            return model_type
    if not (folder / CONFIG_FILE).is_file():
        return None
    try:
        values = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "unreadable"  # from_pretrained says what is wrong with it
    return values.get("model_type", "point-mae") if isinstance(values, dict) else "unreadable"


class PretrainedModel:
    """Mixin for a ``torch.nn.Module`` with a dataclass ``self.config``: ``save_pretrained(folder)``
    and ``cls.from_pretrained(folder)``."""

    model_type: ClassVar[str]  # recorded in config.json: which class reads the folder back
    config_class: ClassVar[type]
    display_name: ClassVar[str]  # for messages

    def save_pretrained(self, folder: str | Path) -> Path:
        from safetensors.torch import save

        folder = Path(folder)
        write_text(folder / CONFIG_FILE, json.dumps({"model_type": self.model_type, **asdict(self.config)}, indent=2))
        state = {key: value.detach().cpu().contiguous() for key, value in self.state_dict().items()}
        data = save(state, metadata={"format": "pt", "model_type": self.model_type})
        with written(folder / WEIGHTS_FILE) as tmp:
            tmp.write_bytes(data)
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path, map_location="cpu"):
        folder = Path(folder)
        model = cls(cls.read_config(folder))
        state = _read_weights(folder, map_location)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            problem = f"missing weights {missing[:3]}" if missing else f"unexpected weights {unexpected[:3]}"
            raise InputError(f"{problem} in the saved {cls.display_name}", folder)
        return model

    @classmethod
    def read_config(cls, folder: Path):
        """The folder's config, typed and checked as recipes are."""
        from afcli.config import build, check_numbers

        if not (folder / WEIGHTS_FILE).is_file() and not (folder / LEGACY_WEIGHTS_FILE).is_file():
            raise InputError(f"not a saved {cls.display_name} (needs {CONFIG_FILE} and {WEIGHTS_FILE})", folder)
        legacy = LEGACY_CONFIG_FILES.get(cls.model_type)
        name = legacy if legacy and (folder / legacy).is_file() else CONFIG_FILE
        if not (folder / name).is_file():
            raise InputError(f"not a saved {cls.display_name} (no {CONFIG_FILE})", folder)
        try:
            values = json.loads((folder / name).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InputError(f"unreadable {name} ({' '.join(str(error).split())[:120]})", folder) from None
        if not isinstance(values, dict):
            raise InputError(f"{name} is not a JSON object", folder)
        saved_type = values.pop("model_type", cls.model_type if name == legacy else "point-mae")
        if saved_type != cls.model_type:
            raise InputError(f"holds a saved {saved_type} model, not a {cls.display_name}", folder)
        config = build(cls.config_class, values, folder / name)
        try:
            check_numbers(config)
        except InputError as error:
            raise InputError(str(error), folder / name) from None
        return config


def _read_weights(folder: Path, map_location) -> dict[str, torch.Tensor]:
    if not (folder / WEIGHTS_FILE).is_file():  # afcli 0.1
        from afcli.engine.checkpoint import load_checkpoint

        return load_checkpoint(folder / LEGACY_WEIGHTS_FILE, what="afcli model file", map_location=map_location)
    from safetensors.torch import load

    path = folder / WEIGHTS_FILE
    try:
        state = load(path.read_bytes())
    except Exception as error:  # safetensors raises its own SafetensorError, or OSError, by damage
        reason = " ".join(str(error).split())[:120]
        raise InputError(f"not an afcli model file ({type(error).__name__}: {reason})", path) from None
    return {key: value.to(map_location) for key, value in state.items()}
