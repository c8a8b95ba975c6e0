"""The recipe shelf: every recipe with its method, source (paper / official code) and the paper's
numbers (``afcli recipes``), and one recipe resolved into the full settings a run would start with
(``afcli recipes show``) — so two recipes, or a recipe and a run's ``config.yaml``, can be diffed."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from afcli.config import build, check_numbers, read_recipe
from afcli.errors import InputError
from afcli.methods import METHODS, load

LIFT_SETTINGS = "afcli.lift.pipeline:LiftSettings"


def default_folder() -> Path:
    """``recipes/`` here, else the one beside the afcli source tree (an editable install)."""
    here = Path("recipes")
    return here if here.is_dir() else Path(__file__).resolve().parents[1] / "recipes"


def recipe_files(folder: str | Path) -> list[Path]:
    """The runnable recipes under ``folder``; ``_base-*.yaml`` files are bases, read through others."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("no such recipe folder", folder)
    return sorted(p for p in folder.rglob("*.yaml") if not p.name.startswith("_"))


def method_name(path: Path, recipe: dict) -> str:
    """What runs a recipe: ``lift``, or the method of its stage (by its folder, ``recipes/<method>/``)."""
    stage = recipe.get("stage")
    if stage == "lift":
        return "lift"
    candidates = [m for m in METHODS.values() if m.stage == stage]
    for method in candidates:
        if method.name == path.parent.name:
            return method.name
    if len(candidates) == 1:
        return candidates[0].name
    raise InputError(f"recipe for stage {stage!r}: no method of that stage matches its folder", path)


def resolve(path: str | Path) -> tuple[str, object, dict]:
    """``(method, settings, recipe)``: the recipe's ``base:`` chain merged and its settings built
    over the defaults of the settings it fills, checked as a run would check them."""
    path = Path(path)
    recipe = read_recipe(path)
    name = method_name(path, recipe)
    settings_type = load(LIFT_SETTINGS) if name == "lift" else METHODS[name].settings_type
    settings = build(settings_type, recipe.get("settings") or {}, path)
    check_numbers(settings)
    return name, settings, recipe


def expected_text(expected: dict | None) -> str:
    """A recipe's headline paper numbers on one line: aIoU (%) per subset (``seen 21.7, unseen 17.5``),
    function mIoU (%) for AVAGD (``seen mIoU_f 63.08, …``), label-transfer PCK@23 for dense functional
    correspondence (``synthetic PCK@23 0.48, …``), or whatever else it records (CMAT's
    Table 3: ``rec_only 39.27, …``)."""
    parts = []
    for key, value in (expected or {}).items():
        if key == "protocol":
            continue
        if isinstance(value, dict) and "aiou" in value:
            parts.append(f"{key} {value['aiou']}")
        elif isinstance(value, dict) and "miou_f" in value:
            parts.append(f"{key} mIoU_f {value['miou_f']}")
        elif isinstance(value, dict) and "pck@23" in value:
            parts.append(f"{key} PCK@23 {value['pck@23']}")
        elif isinstance(value, dict):
            parts.append(", ".join(f"{k} {v}" for k, v in value.items()))
        else:
            parts.append(f"{key} {value}")
    return ", ".join(parts)


def shelf(folder: str | Path) -> list[dict]:
    """One row per runnable recipe under ``folder``."""
    folder = Path(folder)
    rows = []
    for path in recipe_files(folder):
        recipe = read_recipe(path)
        rows.append(
            {
                "recipe": str(path.relative_to(folder)),
                "method": method_name(path, recipe),
                "stage": recipe.get("stage"),
                "source": recipe.get("source", "afcli"),
                "paper": recipe.get("paper", ""),
                "expected": recipe.get("expected") or {},
            }
        )
    return rows


def show(path: str | Path) -> dict:
    """The resolved recipe: method, stage, source, every setting (defaults filled in) and the expected numbers."""
    name, settings, recipe = resolve(path)
    return {
        "recipe": str(path),
        "method": name,
        "stage": recipe.get("stage"),
        "source": recipe.get("source", "afcli"),
        "paper": recipe.get("paper", ""),
        "settings": asdict(settings),
        "expected": recipe.get("expected") or {},
    }
