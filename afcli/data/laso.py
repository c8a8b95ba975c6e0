"""LASO (Li et al., CVPR 2024) in its own on-disk format (``yl3800/LASO`` data_utils/shapenetpart.py;
../shared/reference/metrics-and-formats.md §6):

    LASO_dataset/anno_{train,val,test}.pkl     [{shape_id, class, affordance, mask (2048,) f32}]
    LASO_dataset/objects_{train,val,test}.pkl  {shape_id: (2048, 3) xyz}
    LASO_dataset/Affordance-Question.csv       Object, Affordance, Question0 … Question14

Pickles can run code when loaded, so they are read with an unpickler that only builds numpy arrays
and plain containers; anything else is an input error naming the file.

"Seen" and "unseen" in the CMAT paper's LASO table are filters of the one test set, reusing PIAD's
unseen lists (CMAT ``data/laso_dataset.py``, as LASO's ``evalization.py``): unseen = an unseen
object *and* an unseen affordance; seen = any other object with one of PIAD's 17 affordances (so
``pull`` samples fall in neither).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from afcli.data.affordance import PIAD_AFFORDANCES
from afcli.errors import InputError
from afcli.pickles import ERRORS as PICKLE_ERRORS
from afcli.pickles import load_arrays

SPLITS = ("train", "val", "test")
UNSEEN_OBJECTS = frozenset({"bed", "dishwasher", "microwave", "scissors", "vase", "laptop"})
UNSEEN_AFFORDANCES = frozenset(
    {"contain", "lay", "sit", "wrap_grasp", "open", "display", "stab", "grasp", "press", "cut"}
)
# LASO spells PIAD's "wrapgrasp" as "wrap_grasp".
SEEN_AFFORDANCES = frozenset("wrap_grasp" if name == "wrapgrasp" else name for name in PIAD_AFFORDANCES)
QUESTIONS = 15


@dataclass
class LasoSample:
    shape_id: str
    object: str
    affordance: str
    mask: np.ndarray  # (2048,) soft ground truth
    points: np.ndarray  # (2048, 3)
    questions: list[str] = field(default_factory=list)  # Question0 (the test question) … Question14

    def subset(self) -> str | None:
        return subset_of(self.object, self.affordance)


def subset_of(object_name: str, affordance: str) -> str | None:
    """``seen``, ``unseen`` or None (in neither filter) for a LASO test pair."""
    if object_name in UNSEEN_OBJECTS:
        return "unseen" if affordance in UNSEEN_AFFORDANCES else None
    return "seen" if affordance in SEEN_AFFORDANCES else None


def load_pickle(path: Path):
    if not path.is_file():
        raise InputError("no such file", path)
    try:
        with open(path, "rb") as handle:
            return load_arrays(handle)
    except PICKLE_ERRORS as error:
        raise InputError(f"not a LASO pickle of arrays ({error})", path) from None


def read_questions(path: Path) -> dict[tuple[str, str], list[str]]:
    if not path.is_file():
        raise InputError("no such file", path)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    wanted = ["Object", "Affordance"] + [f"Question{i}" for i in range(QUESTIONS)]
    if not rows or any(column not in rows[0] for column in wanted):
        raise InputError(f"expected columns {', '.join(wanted[:3])} … Question{QUESTIONS - 1}", path)
    return {
        (row["Object"].strip().lower(), row["Affordance"].strip().lower()): [
            row[f"Question{i}"] for i in range(QUESTIONS)
        ]
        for row in rows
    }


def read_laso(root: str | Path, split: str) -> list[LasoSample]:
    """Every annotation of one split, joined with its points and questions."""
    root = Path(root)
    if split not in SPLITS:
        raise InputError(f"unknown LASO split {split!r} (choose from {', '.join(SPLITS)})")
    annotations = load_pickle(root / f"anno_{split}.pkl")
    objects = load_pickle(root / f"objects_{split}.pkl")
    questions = read_questions(root / "Affordance-Question.csv")
    if not isinstance(annotations, list) or not isinstance(objects, dict):
        raise InputError("expected a list of annotations and a dict of objects", root)
    samples = []
    for i, entry in enumerate(annotations):
        try:
            shape_id, name, affordance = (
                str(entry["shape_id"]),
                str(entry["class"]).lower(),
                str(entry["affordance"]).lower(),
            )
            mask = np.asarray(entry["mask"], np.float32).reshape(-1)
        except (KeyError, TypeError, ValueError):
            raise InputError(
                f"annotation {i} lacks shape_id, class, affordance or mask", root / f"anno_{split}.pkl"
            ) from None
        if shape_id not in objects:
            raise InputError(
                f"annotation {i}: shape {shape_id} missing from objects_{split}.pkl", root / f"anno_{split}.pkl"
            )
        points = np.asarray(objects[shape_id], np.float32)
        if points.ndim != 2 or points.shape[1] != 3 or points.shape[0] != mask.shape[0]:
            raise InputError(
                f"shape {shape_id}: points {points.shape} do not match its mask {mask.shape}",
                root / f"objects_{split}.pkl",
            )
        if not (np.isfinite(points).all() and np.isfinite(mask).all()):
            raise InputError(f"shape {shape_id}: NaN or Inf in points or mask", root)
        samples.append(LasoSample(shape_id, name, affordance, mask, points, questions.get((name, affordance), [])))
    return samples
