"""Functions → categories → functional parts: what ``afcli pseudolabel`` asks a detector for and what
dense functional correspondence trains and is scored on.

The structure is the official one (``0_taxonomy_and_metadata/obj2part2function.json``: category →
part → functions; ``obj2part_descriptions.json``: category → part → the description the detector is
prompted with). ``load_taxonomy`` reads:

- ``builtin``: afcli's own content for the built-in shapes (``afcli/data/taxonomies/builtin.json``);
- an afcli taxonomy file (``{"format": "afcli-taxonomy", "categories": {cat: {part: {"functions",
  "description"}}}}``);
- a folder holding the official ``obj2part2function.json`` (and ``obj2part_descriptions.json`` when
  present; a part without one is prompted by its name). Descriptions are cleaned as the official
  prompt builder does: a leading ``- `` dropped, ``*`` and ``.`` removed, lower case.

Categories match case-insensitively (``Knife`` in a store, ``knife`` in the official files).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from afcli.errors import InputError

BUILTIN = Path(__file__).with_name("taxonomies") / "builtin.json"
OFFICIAL_PARTS = "obj2part2function.json"
OFFICIAL_DESCRIPTIONS = "obj2part_descriptions.json"


@dataclass(frozen=True)
class FunctionalPart:
    category: str
    name: str
    functions: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Taxonomy:
    source: str
    parts: tuple[FunctionalPart, ...]

    @property
    def functions(self) -> list[str]:
        return sorted({f for part in self.parts for f in part.functions})

    @property
    def categories(self) -> list[str]:
        return sorted({part.category for part in self.parts})

    def parts_of(self, category: str) -> list[FunctionalPart]:
        key = category.lower()
        return [part for part in self.parts if part.category.lower() == key]

    def parts_for(self, category: str, function: str) -> list[FunctionalPart]:
        return [part for part in self.parts_of(category) if function in part.functions]


def prompt_text(function: str) -> str:
    """The text a function is encoded from, as the official feature script: ``cut-with`` → ``cut with``."""
    return function.replace("_", " ").replace("-", " ")


def clean_description(text: str) -> str:
    text = text.strip()
    text = text[2:] if text.startswith("- ") else text
    return " ".join(text.replace("*", "").replace(".", "").lower().split())


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputError(f"unreadable taxonomy file ({' '.join(str(error).split())[:120]})", path) from None


def _checked(parts: list[FunctionalPart], source: Path | str) -> Taxonomy:
    if not parts:
        raise InputError("taxonomy names no functional part", source)
    for part in parts:
        if not part.functions or not all(isinstance(f, str) and f for f in part.functions):
            raise InputError(f"part {part.category}/{part.name} lists no function", source)
    return Taxonomy(str(source), tuple(parts))


def load_taxonomy(spec: str | Path = "builtin") -> Taxonomy:
    path = BUILTIN if str(spec) == "builtin" else Path(spec)
    if path.is_dir():
        return _read_official(path)
    if not path.is_file():
        raise InputError(
            "no such taxonomy (builtin, an afcli taxonomy .json, or a folder with obj2part2function.json)", path
        )
    data = _read_json(path)
    if not isinstance(data, dict) or data.get("format") != "afcli-taxonomy":
        raise InputError('not an afcli taxonomy (expected "format": "afcli-taxonomy")', path)
    try:
        parts = [
            FunctionalPart(category, name, tuple(entry["functions"]), clean_description(entry.get("description", name)))
            for category, named in data["categories"].items()
            for name, entry in named.items()
        ]
    except (KeyError, TypeError, AttributeError):
        raise InputError("taxonomy entries must be {category: {part: {functions, description}}}", path) from None
    return _checked(parts, "builtin" if path == BUILTIN else path)


def _read_official(folder: Path) -> Taxonomy:
    table = folder / OFFICIAL_PARTS
    if not table.is_file():
        raise InputError(f"no {OFFICIAL_PARTS} in the taxonomy folder", folder)
    functions = _read_json(table)
    descriptions = _read_json(folder / OFFICIAL_DESCRIPTIONS) if (folder / OFFICIAL_DESCRIPTIONS).is_file() else {}
    try:
        parts = [
            FunctionalPart(
                category,
                name,
                tuple(listed),
                clean_description(str((descriptions.get(category) or {}).get(name, name.replace("_", " ")))),
            )
            for category, named in functions.items()
            for name, listed in named.items()
        ]
    except (TypeError, AttributeError):
        raise InputError(f"{OFFICIAL_PARTS} must be {{category: {{part: [functions]}}}}", table) from None
    return _checked(parts, folder)
