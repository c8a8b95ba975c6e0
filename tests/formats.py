"""Small files written in the benchmarks' own on-disk formats, so that reader tests need nothing
outside the repository. The real samples in ../shared/fixtures are checked too where present
(conftest's ``real_piad_demo``)."""

from __future__ import annotations

import base64
import csv
import io
import json
import pickle
from pathlib import Path

import numpy as np

from afcli.data.affordance import PIAD_AFFORDANCES

# (category, affordance, image width, height, object box, subject box) of PIAD's Demo/ folder
PIAD_DEMO_SAMPLES = (
    ("Chair", "sit", 426, 640, (33.9, 208.7, 317.4, 568.7), (41.0, 48.7, 296.0, 611.6)),
    ("Bag", "lift", 408, 612, (234.0, 455.8, 123.1, 320.4), (122.4, 43.5, 355.8, 599.3)),
)


def write_piad_demo(folder: Path, seed: int = 0) -> Path:
    """PIAD's ``Demo/`` layout: per object ``Point_Test_<Cat>_1.txt`` (2048 lines of ``shape_id
    Category x y z`` and 17 soft affordances, a trailing space as in the release),
    ``Img_Test_<Cat>_<aff>_1.jpg`` and its labelme ``.json`` with ``object`` / ``subject`` rectangles
    (one of them drawn right to left, as annotators do)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for category, affordance, width, height, box, subject in PIAD_DEMO_SAMPLES:
        xyz = rng.normal(size=(2048, 3)).astype(np.float32) * 0.4
        heat = np.zeros((2048, len(PIAD_AFFORDANCES)), np.float32)
        hot = xyz[:, 2] > 0.2
        heat[hot, PIAD_AFFORDANCES.index(affordance)] = rng.random(int(hot.sum())).astype(np.float32)
        heat[xyz[:, 0] > 0.5, PIAD_AFFORDANCES.index("move")] = 1.0
        shape_id = f"{rng.integers(1 << 62):032x}"
        lines = (
            f"{shape_id} {category} " + " ".join(repr(float(v)) for v in row) + " \n"
            for row in np.concatenate([xyz, heat], 1)
        )
        (folder / f"Point_Test_{category}_1.txt").write_text("".join(lines))

        image = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
        jpeg = io.BytesIO()
        image.save(jpeg, "JPEG", quality=80)
        name = f"Img_Test_{category}_{affordance}_1"
        (folder / f"{name}.jpg").write_bytes(jpeg.getvalue())
        shapes = [
            {
                "label": label,
                "line_color": None,
                "fill_color": None,
                "points": [list(corners[:2]), list(corners[2:])],
                "shape_type": "rectangle",
                "flags": {},
            }
            for label, corners in (("object", box), ("subject", subject))
        ]
        labelme = {
            "version": "3.16.7",
            "flags": {},
            "shapes": shapes,
            "lineColor": [0, 255, 0, 128],
            "fillColor": [255, 0, 0, 128],
            "imagePath": f"{name}.jpg",
            "imageData": base64.b64encode(jpeg.getvalue()).decode(),
            "imageHeight": height,
            "imageWidth": width,
        }
        (folder / f"{name}.json").write_text(json.dumps(labelme, indent=2))
    return folder


def write_laso(root: Path, split: str = "test"):
    """LASO_dataset/: anno_<split>.pkl, objects_<split>.pkl (pickled arrays) and the question table."""
    rng = np.random.default_rng(0)
    objects = {f"id{i}": rng.random((2048, 3)).astype(np.float32) for i in range(3)}
    annotations = [
        {"shape_id": "id0", "class": "mug", "affordance": "grasp", "mask": rng.random(2048).astype(np.float32)},
        {"shape_id": "id1", "class": "scissors", "affordance": "cut", "mask": rng.random(2048).astype(np.float32)},
        {"shape_id": "id1", "class": "scissors", "affordance": "move", "mask": rng.random(2048).astype(np.float32)},
        {"shape_id": "id2", "class": "door", "affordance": "pull", "mask": rng.random(2048).astype(np.float32)},
    ]
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"anno_{split}.pkl", "wb") as handle:
        pickle.dump(annotations, handle)
    with open(root / f"objects_{split}.pkl", "wb") as handle:
        pickle.dump(objects, handle)
    with open(root / "Affordance-Question.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Object", "Affordance"] + [f"Question{i}" for i in range(15)])
        writer.writerow(["Mug", "grasp"] + [f"How do I hold the mug? ({i})" for i in range(15)])
    return annotations, objects


def write_piad_lists(tmp_path: Path, demo: Path, train_copies: int = 0) -> Path:
    """A PIAD root whose Seen setting lists the two demo samples for both Train and Test; with
    ``train_copies``, that many renamed copies of each demo image (and its boxes) join Train, so
    that the held-out share gives val queries too."""
    import shutil

    (tmp_path / "Seen").mkdir(parents=True)
    images = [demo / "Img_Test_Bag_lift_1.jpg", demo / "Img_Test_Chair_sit_1.jpg"]
    clouds = [demo / "Point_Test_Bag_1.txt", demo / "Point_Test_Chair_1.txt"]
    copies = []
    for k in range(train_copies):
        for image in images:
            copy = tmp_path / image.name.replace("Test", "Train").replace("_1.jpg", f"_{k + 2}.jpg")
            shutil.copy(image, copy)
            shutil.copy(image.with_suffix(".json"), copy.with_suffix(".json"))
            copies.append(copy)
    for split, listed in (("Train", images + copies), ("Test", images)):
        (tmp_path / "Seen" / f"Img_{split}.txt").write_text("".join(f"{p}\n" for p in listed))
        (tmp_path / "Seen" / f"Point_{split}.txt").write_text("".join(f"{p}\n" for p in clouds))
        (tmp_path / "Seen" / f"Box_{split}.txt").write_text("".join(f"{p.with_suffix('.json')}\n" for p in listed))
    return tmp_path
