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


# -- ScanNet-format scenes ---------------------------------------------------------------------------
# One small room of grid meshes: (raw category, NYU40 id, ScanNet200 name, origin, u edge, v edge, grid
# side, segments). The lamp (36 vertices) is under the evaluator's 100-vertex minimum; the last floor
# segment belongs to no group (unannotated).
SCAN_OBJECTS = [
    ("floor", 2, "floor", (0, 0, 0), (3, 0, 0), (0, 3, 0), 12, 3),
    ("wall", 1, "wall", (0, 3, 0), (3, 0, 0), (0, 0, 2.5), 12, 2),
    ("office chair", 5, "office chair", (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.4), 11, 2),
    ("coffee table", 7, "coffee table", (1.5, 1.0, 0.4), (0.8, 0, 0), (0, 0.6, 0), 11, 2),
    ("lamp", 35, "lamp", (2.5, 2.5, 0.5), (0.2, 0, 0), (0, 0, 0.6), 6, 1),
]


def scan_scene(scene: str = "scene0000_00"):
    """Vertices, faces, colours, superpoints and aggregation groups of the room above."""
    from afcli.data.scannet import vocabulary

    names200 = vocabulary("scannet200").names
    ids200 = vocabulary("scannet200").ids
    vertices, faces, colours, segments, groups, labels = [], [], [], [], [], []
    next_segment = 0
    for index, (raw, nyu40, name200, origin, u, v, side, count) in enumerate(SCAN_OBJECTS):
        a, b = np.meshgrid(np.linspace(0, 1, side), np.linspace(0, 1, side), indexing="ij")
        points = np.asarray(origin) + a.reshape(-1, 1) * np.asarray(u) + b.reshape(-1, 1) * np.asarray(v)
        base = sum(len(x) for x in vertices)
        cells = [(i * side + j, (i + 1) * side + j, i * side + j + 1) for i in range(side - 1) for j in range(side - 1)]
        cells += [
            ((i + 1) * side + j, (i + 1) * side + j + 1, i * side + j + 1)
            for i in range(side - 1)
            for j in range(side - 1)
        ]
        faces.append(np.asarray(cells) + base)
        vertices.append(points)
        colours.append(np.tile(np.array([40 * index, 200 - 30 * index, 90], np.uint8), (len(points), 1)))
        block = np.minimum(np.arange(len(points)) * count // len(points), count - 1) + next_segment
        segments.append(block * 7 + 3)  # ScanNet's segment ids are sparse
        grouped = sorted(set((block * 7 + 3).tolist()))
        if raw == "floor":
            grouped = grouped[:-1]  # the last floor segment stays unannotated
        groups.append({"id": index, "objectId": index, "segments": grouped, "label": raw})
        labels.append((raw, nyu40, ids200[names200.index(name200)]))
        next_segment += count
    return {
        "scene": scene,
        "vertices": np.concatenate(vertices).astype(np.float32),
        "faces": np.concatenate(faces),
        "colours": np.concatenate(colours),
        "segments": np.concatenate(segments),
        "groups": groups,
        "labels": labels,
    }


def write_scannet_scans(root: Path, scene: str = "scene0000_00") -> dict:
    """ScanNet's own layout: scans/<scene>/ mesh, superpoints, aggregation; the label map TSV."""
    import trimesh

    room = scan_scene(scene)
    folder = root / "scans" / scene
    folder.mkdir(parents=True, exist_ok=True)
    mesh = trimesh.Trimesh(room["vertices"], room["faces"], vertex_colors=room["colours"], process=False)
    mesh.export(folder / f"{scene}_vh_clean_2.ply")
    (folder / f"{scene}_vh_clean_2.0.010000.segs.json").write_text(
        json.dumps({"sceneId": f"scannet.{scene}", "segIndices": room["segments"].tolist()})
    )
    (folder / f"{scene}.aggregation.json").write_text(
        json.dumps({"sceneId": f"scannet.{scene}", "segGroups": room["groups"]})
    )
    with open(root / "scannetv2-labels.combined.tsv", "w", newline="") as handle:
        out = csv.writer(handle, delimiter="\t")
        out.writerow(["id", "raw_category", "category", "count", "nyu40id", "nyu40class"])
        for raw, nyu40, raw_id in room["labels"]:
            out.writerow([raw_id, raw, raw, 1, nyu40, raw])
    (root / "scannetv2_val.txt").write_text(scene + "\n")
    return room


def scan_vertex_labels(room: dict):
    """(NYU40 id, ScanNet200 id, instance) per vertex, worked out directly from the groups."""
    n = len(room["vertices"])
    nyu40, raw, instance = np.zeros(n, np.int64), np.zeros(n, np.int64), np.full(n, -1)
    by_raw = {r: (y, i) for r, y, i in room["labels"]}
    for group in room["groups"]:
        members = np.isin(room["segments"], group["segments"])
        nyu40[members], raw[members] = by_raw[group["label"]]
        instance[members] = group["objectId"]
    return nyu40, raw, instance


def write_pointcept_scene(root: Path, room: dict, split: str = "val", entity: bool = True) -> Path:
    from afcli.data.scannet import vocabulary

    nyu40, raw, instance = scan_vertex_labels(room)
    folder = root / split / room["scene"]
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "coord.npy", room["vertices"])
    np.save(folder / "color.npy", room["colours"])
    np.save(folder / "normal.npy", np.tile(np.array([0, 0, 1], np.float32), (len(nyu40), 1)))
    np.save(folder / "segment20.npy", vocabulary("scannet20").index(nyu40))
    np.save(folder / "segment200.npy", vocabulary("scannet200").index(raw))
    np.save(folder / "instance.npy", instance)
    if entity:
        np.save(folder / "entity.npy", np.where(instance >= 2, instance - 2, -1))
    return folder


def write_mask3d_scene(root: Path, room: dict, split: str = "validation") -> Path:
    nyu40, _, instance = scan_vertex_labels(room)
    n = len(nyu40)
    _, segment = np.unique(room["segments"], return_inverse=True)
    array = np.concatenate(
        [
            room["vertices"],
            room["colours"].astype(np.float32),
            np.tile(np.array([0, 0, 1], np.float32), (n, 1)),
            segment.reshape(-1, 1),
            nyu40.reshape(-1, 1),
            instance.reshape(-1, 1),
        ],
        1,
    ).astype(np.float32)
    (root / split).mkdir(parents=True, exist_ok=True)
    np.save(root / split / f"{room['scene']}.npy", array)
    gt = root / "instance_gt" / split
    gt.mkdir(parents=True, exist_ok=True)
    np.savetxt(gt / f"{room['scene']}.txt", nyu40 * 1000 + np.where(instance >= 0, instance + 1, 0), fmt="%d")
    return root / split / f"{room['scene']}.npy"


def write_sweethome_catalogue(folder: Path) -> Path:
    """A sweethome3d furniture catalogue (.sh3f zip): a 'Chair' whose OBJ is a seat (material 'seat')
    and a backrest at the model's back, -z (material 'back'), 50 × 40 × 90 cm as listed."""
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    properties = "\n".join(
        [
            "id#1=test#chair", "name#1=Chair", "category#1=Living room", "model#1=/test/chair/chair.obj",
            "width#1=50", "depth#1=40", "height#1=90", "doorOrWindow#1=false",
            "id#2=test#lamp", "name#2=Wall lamp", "model#2=/test/lamp/lamp.obj",
            "width#2=10", "depth#2=10", "height#2=10",
        ]
    )  # fmt: skip
    corners = [(x, y, z) for x in (0, 50) for y in (0, 45) for z in (0, 40)]  # the seat block
    corners += [(x, y, z) for x in (0, 50) for y in (45, 90) for z in (0, 5)]  # the backrest, at -z
    faces = []
    for base in (0, 8):
        quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
        faces += [tuple(base + k + 1 for k in quad) for quad in quads]
    obj = ["mtllib chair.mtl"] + [f"v {x} {y} {z}" for x, y, z in corners]
    obj += ["usemtl seat"] + [f"f {' '.join(map(str, q))}" for q in faces[:6]]
    obj += ["usemtl back"] + [f"f {' '.join(map(str, q))}" for q in faces[6:]]
    mtl = "newmtl seat\nKd 0.8 0.8 0.8\nnewmtl back\nKd 0.2 0.2 0.2\n"
    with zipfile.ZipFile(folder / "Test.sh3f", "w") as z:
        z.writestr("PluginFurnitureCatalog.properties", properties + "\n")
        z.writestr("test/chair/chair.obj", "\n".join(obj) + "\n")
        z.writestr("test/chair/chair.mtl", mtl)
    return folder
