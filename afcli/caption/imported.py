"""Scene texts people already have: SceneVerse's annotation files (``annotations/refer/ssg_ref_*.json``,
``ssg_obj_caption_*.json``; the texts MPEC trains on). Each is a JSON list of records with ``scan_id``,
``target_id`` (the instance) and ``utterance``, and optionally ``item_id``; a file whose name holds
"caption" gives captions, any other referrals. ``afcli caption --texts FILE`` adds them to the text
table beside afcli's own, with their noun phrases and embeddings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from afcli.errors import InputError


@dataclass
class ImportedText:
    kind: str
    target: int
    text: str
    key: str  # the record's item_id, else its position in the file
    source: str  # the file's stem


def read_scene_texts(paths: list[str | Path]) -> dict[str, list[ImportedText]]:
    """Texts per scene id from SceneVerse-format files."""
    by_scene: dict[str, list[ImportedText]] = {}
    for path in map(Path, paths):
        try:
            records = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise InputError("no such text file", path) from None
        except (OSError, ValueError) as error:
            raise InputError(f"unreadable text file ({' '.join(str(error).split())[:100]})", path) from None
        if not isinstance(records, list):
            raise InputError("a text file is a JSON list of {scan_id, target_id, utterance} records", path)
        kind = "caption" if "caption" in path.stem else "referral"
        for index, record in enumerate(records):
            try:
                scene, target, text = str(record["scan_id"]), int(record["target_id"]), str(record["utterance"])
            except (KeyError, TypeError, ValueError):
                raise InputError(f"record {index} needs scan_id, an integer target_id and utterance", path) from None
            key = str(record.get("item_id", index))
            by_scene.setdefault(scene, []).append(ImportedText(kind, target, " ".join(text.split()), key, path.stem))
    return by_scene
