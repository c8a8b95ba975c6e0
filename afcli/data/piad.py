"""PIAD (IAGNet, Yang et al. ICCV 2023) beyond its point files (read by :func:`afcli.data.readers.read_piad`):
the path lists, the image's affordance and the labelme boxes (IAGNet data_utils/dataset_PIAD.py;
../shared/reference/metrics-and-formats.md §6).

    Data/{Seen,Unseen}/{Img,Point,Box}_{Train,Test}.txt   one path per line
    image  …/Img_<Split>_<Object>_<affordance>_<k>.jpg    affordance = name.split('_')[-2]
    box    labelme JSON: rectangles labelled "subject" (the person) and "object"

Test pairs line i of each list; training pairs each image with random point clouds of the same
object (a loader's job).
"""

from __future__ import annotations

import json
from pathlib import Path

from afcli.data.affordance import PIAD_AFFORDANCES
from afcli.errors import InputError

SETTINGS = ("Seen", "Unseen")
SPLITS = ("Train", "Test")
KINDS = ("Img", "Point", "Box")


def image_affordance(path: str | Path) -> str:
    """The affordance an interaction image shows, from its file name (PIAD's own rule)."""
    parts = Path(path).stem.split("_")
    if len(parts) < 3 or parts[-2] not in PIAD_AFFORDANCES:
        raise InputError(
            f"file name does not end in _<affordance>_<k> with a PIAD affordance ({', '.join(PIAD_AFFORDANCES)})", path
        )
    return parts[-2]


def read_boxes(path: str | Path) -> dict[str, tuple[float, float, float, float]]:
    """``{"subject": (x1, y1, x2, y2), "object": (…)}`` from a labelme file, corners sorted."""
    path = Path(path)
    try:
        shapes = json.loads(path.read_text())["shapes"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise InputError(f"not a labelme annotation ({type(error).__name__})", path) from None
    boxes = {}
    for shape in shapes:
        if shape.get("label") in ("subject", "object") and len(shape.get("points", [])) == 2:
            (x1, y1), (x2, y2) = shape["points"]
            boxes[shape["label"]] = (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
    if "object" not in boxes:
        raise InputError("no rectangle labelled 'object'", path)
    return boxes


def read_lists(root: str | Path, setting: str, split: str) -> dict[str, list[Path]]:
    """The Img, Point and Box lists of one setting and split, paths resolved against ``root``."""
    root = Path(root)
    if setting not in SETTINGS or split not in SPLITS:
        raise InputError(f"PIAD setting must be one of {', '.join(SETTINGS)} and split one of {', '.join(SPLITS)}")
    lists = {}
    for kind in KINDS:
        listing = root / setting / f"{kind}_{split}.txt"
        if not listing.is_file():
            raise InputError(f"no {kind}_{split}.txt", root / setting)
        entries = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        lists[kind] = [Path(entry) if Path(entry).is_absolute() else root / entry for entry in entries]
    if split == "Test" and not len(lists["Img"]) == len(lists["Point"]) == len(lists["Box"]):
        raise InputError(
            f"test lists must pair line by line: {len(lists['Img'])} images, {len(lists['Point'])} clouds, "
            f"{len(lists['Box'])} boxes",
            root / setting,
        )
    if len(lists["Img"]) != len(lists["Box"]):
        raise InputError(
            f"Img_{split}.txt and Box_{split}.txt must pair line by line: {len(lists['Img'])} images, "
            f"{len(lists['Box'])} boxes",
            root / setting,
        )
    return lists
