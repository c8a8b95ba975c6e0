"""Typed settings from YAML recipes.

A recipe (``recipes/<paper>/<stage>.yaml``) names the paper and stage, sets ``settings:`` — the
fields of the stage's settings dataclass, nested dataclasses as nested mappings — and may record
the paper's numbers under ``expected:``. Unknown keys and wrong types are errors before any heavy
work starts; command-line options given explicitly override the recipe.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path
from typing import Any, TypeVar

from afcli.errors import InputError

T = TypeVar("T")


def load_recipe(path: str | Path, settings_type: type[T], stage: str) -> tuple[T, dict]:
    """``(settings, recipe)`` from a recipe file for ``stage``, its ``base:`` chain resolved."""
    path = Path(path)
    recipe = read_recipe(path)
    if recipe.get("stage") != stage:
        raise InputError(f"recipe is for stage {recipe.get('stage')!r}, this command runs {stage!r}", path)
    return build(settings_type, recipe.get("settings") or {}, path), recipe


def read_recipe(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """A recipe as a mapping. ``base: other.yaml`` (relative to this file) names a recipe this one
    starts from: the base is read first (its own base before it) and this file's keys are merged over
    it, mappings key by key and anything else replaced — so a per-benchmark recipe holds only what
    differs from its paper's base."""
    import yaml

    path = Path(path)
    if path.resolve() in _chain:
        raise InputError(f"recipe bases form a loop: {' → '.join(p.name for p in (*_chain, path.resolve()))}", path)
    try:
        recipe = yaml.safe_load(path.read_text())
    except OSError as error:
        raise InputError(f"cannot read recipe ({error.strerror})", path) from None
    except yaml.YAMLError as error:
        raise InputError(f"invalid YAML ({str(error).splitlines()[0]})", path) from None
    if not isinstance(recipe, dict) or not isinstance(recipe.get("settings", {}), dict):
        raise InputError("a recipe is a mapping with a 'settings:' mapping", path)
    base = recipe.pop("base", None)
    if base is None:
        return recipe
    if not isinstance(base, str):
        raise InputError(f"base must be a recipe file name, got {base!r}", path)
    return merged(read_recipe(path.parent / base, (*_chain, path.resolve())), recipe)


def merged(base: dict, over: dict) -> dict:
    """``over`` deep-merged onto ``base`` (neither is changed)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def build(settings_type: type[T], values: dict, path: Path, prefix: str = "") -> T:
    hints = typing.get_type_hints(settings_type)
    names = {f.name for f in dataclasses.fields(settings_type)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InputError(f"unknown setting {prefix}{unknown[0]} (known: {', '.join(sorted(names))})", path)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise InputError(f"setting {prefix}{key} must be a mapping", path)
            kwargs[key] = build(hint, value, path, f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(hint, value, f"{prefix}{key}", path)
    return settings_type(**kwargs)


def _coerce(hint, value, key: str, path: Path):
    if typing.get_origin(hint) is tuple:  # tuple[int, ...]: a list in YAML and JSON
        if not isinstance(value, (list, tuple)):
            raise InputError(f"setting {key} must be a list, got {value!r}", path)
        return tuple(_coerce(typing.get_args(hint)[0], item, key, path) for item in value)
    allowed = list(typing.get_args(hint)) or [hint]
    if value is None and type(None) in allowed:
        return None
    for kind in allowed:
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind is float and isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if kind in (int, str, bool) and type(value) is kind:
            return value
    names = " or ".join(getattr(t, "__name__", str(t)) for t in allowed)
    raise InputError(f"setting {key} must be {names}, got {value!r}", path)


def apply_sets(settings: T, assignments: list[str]) -> T:
    """``--set a.b=value`` overrides: the value is read as YAML and checked against the field's type."""
    import yaml

    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key:
            raise InputError(f"--set {assignment!r}: expected KEY=VALUE, e.g. optim.lr=3e-4")
        *parents, leaf = key.split(".")
        target = settings
        for parent in parents:
            if not dataclasses.is_dataclass(target) or parent not in {f.name for f in dataclasses.fields(target)}:
                raise InputError(f"--set {key}: no setting {parent!r}")
            target = getattr(target, parent)
        names = {f.name for f in dataclasses.fields(target)}
        if leaf not in names:
            raise InputError(f"--set {key}: unknown setting (known here: {', '.join(sorted(names))})")
        hint = typing.get_type_hints(type(target))[leaf]
        if dataclasses.is_dataclass(hint):
            raise InputError(
                f"--set {key}: a group of settings; set one of its fields, e.g. "
                f"{key}.{dataclasses.fields(hint)[0].name}=…"
            )
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        setattr(target, leaf, _coerce(hint, value, key, Path("--set")))
    return settings


# What a setting's name promises wherever it appears (model, data, optimiser, prompts, lift):
# every number is finite and not negative; these are also at least 1 (counts, sizes) or above 0
# (rates), and these are fractions.
AT_LEAST_ONE = {
    "epochs",
    "batch_size",
    "val_batch_size",
    "num_points",
    "teacher_dim",
    "depth",
    "num_group",
    "group_size",
    "trans_dim",
    "encoder_dims",
    "num_heads",
    "decoder_heads",
    "width",
    "fusion_heads",
    "fusion_ffn",
    "head_hidden",
    "max_length",
    "text_dim",
    "image_dim",
    "views",
    "size",
    "steps",
    "blocks",
    "train_points",
    "votes",
}
ABOVE_ZERO = {"lr", "mlp_ratio", "koleo_eps", "grad_clip"}
FRACTIONS = {"drop", "dropout", "drop_path", "mask_ratio", "test_fraction"}


def check_numbers(settings, prefix: str = "") -> None:
    """Refuse a NaN, infinite, negative or out-of-range number anywhere in ``settings`` (by the
    tables above), before any work starts."""
    for item in dataclasses.fields(settings):
        value, key = getattr(settings, item.name), f"{prefix}{item.name}"
        if dataclasses.is_dataclass(value):
            check_numbers(value, key + ".")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(value):
            raise InputError(f"setting {key} must be a finite number, got {value}")
        if item.name == "seed":
            continue
        if value < 0 or (item.name in AT_LEAST_ONE and value < 1) or (item.name in ABOVE_ZERO and value <= 0):
            low = "at least 1" if item.name in AT_LEAST_ONE else "above 0" if item.name in ABOVE_ZERO else "0 or more"
            raise InputError(f"setting {key} must be {low}, got {value}")
        if item.name in FRACTIONS and value > 1:
            raise InputError(f"setting {key} must be a fraction between 0 and 1, got {value}")


def assign(settings, key: str, value) -> None:
    """Set the (dotted) ``key`` of ``settings`` to ``value``."""
    target = settings
    *parents, leaf = key.split(".")
    for parent in parents:
        target = getattr(target, parent)
    setattr(target, leaf, value)


def override(settings: T, **values) -> T:
    """``settings`` with every non-None value replaced (dotted keys reach nested settings)."""
    for key, value in values.items():
        if value is not None:
            assign(settings, key, value)
    return settings
