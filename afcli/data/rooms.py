"""``afcli data synth-rooms``: built-in indoor rooms written as ScanNet scans, so that everything that reads
ScanNet reads them (afcli.data.scannet).

Each room (bedroom, living room, kitchen, bathroom or office in turn) has a floor, four walls, furniture
on the floor (against walls or free, footprints never overlapping), doors, windows, pictures and
curtains on the walls, and small objects on the furniture that supports them (cups, bottles, bowls,
books, boxes, lamps, pillows …). Small objects are afcli's built-in shapes, and the real part-split
metaworld mug and thermos where that package is installed; furniture is built from boxes and lathes,
and half of it is real models of Debian's sweethome3d-furniture where that is installed
(afcli.data.sweethome). ``rooms.json`` names each instance's source.
Rooms are z-up, in metres. Per room ``scans/<room>/``:

- ``<room>_vh_clean_2.ply``: the mesh, subdivided to ScanNet-like vertex spacing, vertex colours (each
  instance one named colour, shaded by its parts, with a little noise);
- ``<room>_vh_clean_2.0.010000.segs.json``: superpoints (per instance, normal direction and 0.5 m cell);
- ``<room>.aggregation.json``: one group per instance with its raw ScanNet category;
- ``frames/{color,depth,pose,intrinsic}``: an RGB-D walk through the room rendered by afcli's renderer, in
  ScanNet's exported-frame layout (JPEG colour and 16-bit PNG depth in millimetres at 320 × 240, both
  with the depth intrinsics; camera-to-world poses, OpenCV axes).

Beside them: ``scannetv2-labels.combined.tsv`` (the raw categories used, with their real ScanNet200 and
NYU40 ids), ``scannetv2_{train,val}.txt`` and ``rooms.json`` (seed, room types, the colour name of every
instance). The same seed gives the same rooms.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from afcli.data.furniture import LABELS, Item, Sources, build_item, solid, uniform
from afcli.data.geometry import box
from afcli.data.scannet import LABEL_MAP_NAME, vocabulary
from afcli.errors import InputError
from afcli.files import make_folder, write_text

ROOMS_FORMAT = "afcli-rooms"
ROOM_TYPES = ("bedroom", "living room", "kitchen", "bathroom", "office")
WALL_HEIGHT = 2.6
FRAME_SIZE = (240, 320)  # height, width: ScanNet's 640 × 480 depth intrinsics halved
FRAME_K = np.array([[288.935, 0, 159.5], [0, 288.935, 119.5], [0, 0, 1]])
# room type → floor items (raw category, against a wall?) and wall items
FURNITURE = {
    "bedroom": [("bed", True), ("nightstand", True), ("cabinet", True), ("desk", True), ("chair", False), ("trash can", False)],
    "living room": [("couch", True), ("coffee table", False), ("bookshelf", True), ("cabinet", True), ("chair", False)],
    "kitchen": [("kitchen counter", True), ("refrigerator", True), ("cabinet", True), ("table", False), ("chair", False), ("chair", False)],
    "bathroom": [("bathtub", True), ("toilet", True), ("cabinet", True), ("trash can", False)],
    "office": [("desk", True), ("office chair", False), ("bookshelf", True), ("cabinet", True), ("table", False), ("trash can", False)],
}  # fmt: skip
WALL_ITEMS = {
    "bedroom": ["door", "window", "curtain", "picture"], "living room": ["door", "window", "curtain", "picture", "picture"],
    "kitchen": ["door", "window", "curtain"], "bathroom": ["door", "window", "towel"],
    "office": ["door", "window", "curtain", "picture"],
}  # fmt: skip
SUPPORTS = {"table", "coffee table", "desk", "nightstand", "kitchen counter", "cabinet", "bookshelf", "bed"}
SMALL = {
    "bedroom": ["lamp", "book", "bag", "pillow", "pillow"], "living room": ["book", "bowl", "lamp", "box", "cup"],
    "kitchen": ["sink", "cup", "bottle", "bowl", "cup", "water bottle"], "bathroom": ["sink", "bottle"],
    "office": ["book", "book", "box", "cup", "lamp", "water bottle"],
}  # fmt: skip


@dataclass
class Placed:
    item: Item
    vertices: np.ndarray  # world coordinates

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.vertices.min(0), self.vertices.max(0)


def _rotate_z(vertices: np.ndarray, quarter_turns: int) -> np.ndarray:
    angle = quarter_turns * math.pi / 2
    c, s = round(math.cos(angle)), round(math.sin(angle))
    return vertices @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T


def _overlaps(lo, hi, boxes, margin=0.05) -> bool:
    return any((lo[:2] < b_hi[:2] + margin).all() and (hi[:2] > b_lo[:2] - margin).all() for b_lo, b_hi in boxes)


def _place_floor(item: Item, wall: bool, room, rng, taken) -> np.ndarray | None:
    """World vertices of a floor item against a wall (its back, -y, to the wall) or free, or None."""
    w, d = room
    for _ in range(60):
        if wall:
            side = int(rng.integers(4))  # 0: y = 0, 1: x = w, 2: y = d, 3: x = 0
            v = _rotate_z(item.mesh.vertices, side)
            lo, hi = v.min(0), v.max(0)
            span = (w if side % 2 == 0 else d) - (hi - lo)[side % 2] - 0.1
            if span <= 0:
                continue
            along = 0.05 + uniform(rng, 0, span)
            offset = {
                0: (along - lo[0], 0.1 - lo[1]), 1: (w - 0.1 - hi[0], along - lo[1]),
                2: (along - lo[0], d - 0.1 - hi[1]), 3: (0.1 - lo[0], along - lo[1]),
            }[side]  # fmt: skip
        else:
            v = _rotate_z(item.mesh.vertices, int(rng.integers(4)))
            lo, hi = v.min(0), v.max(0)
            if (hi - lo)[0] > w - 1.2 or (hi - lo)[1] > d - 1.2:
                continue
            offset = (uniform(rng, 0.6 - lo[0], w - 0.6 - hi[0]), uniform(rng, 0.6 - lo[1], d - 0.6 - hi[1]))
        placed = v + np.array([offset[0], offset[1], 0.0])
        lo, hi = placed.min(0), placed.max(0)
        if not _overlaps(lo, hi, taken):
            taken.append((lo, hi))
            return placed
    return None


def _place_wall(item: Item, room, rng, used: list) -> np.ndarray | None:
    """On a wall (facing into the room): doors from the floor, windows from 0.9 m, pictures at eye height."""
    w, d = room
    base = {"door": 0.0, "window": 0.9, "curtain": 0.3, "towel": 0.8}.get(item.category, 1.2)
    for _ in range(60):
        side = int(rng.integers(4))
        v = _rotate_z(item.mesh.vertices, side)
        lo, hi = v.min(0), v.max(0)
        length = w if side % 2 == 0 else d
        width = (hi - lo)[side % 2]
        if length - width - 0.4 <= 0:
            continue
        along = uniform(rng, 0.2, length - width - 0.2)
        interval = (side, along, along + width)
        if any(s == side and a < interval[2] + 0.1 and interval[1] < b + 0.1 for s, a, b in used):
            continue
        used.append(interval)
        x = {0: along - lo[0], 1: w - 0.05 - hi[0], 2: along - lo[0], 3: 0.05 - lo[0]}[side]
        y = {0: 0.05 - lo[1], 1: along - lo[1], 2: d - 0.05 - hi[1], 3: along - lo[1]}[side]
        return v + np.array([x, y, base])
    return None


def _place_on(item: Item, support: Placed, rng, occupied: list) -> np.ndarray | None:
    lo, hi = support.bounds
    top = hi[2] if support.item.category != "bed" else hi[2] - 0.01
    v = _rotate_z(item.mesh.vertices, int(rng.integers(4)))
    ilo, ihi = v.min(0), v.max(0)
    room_x, room_y = (hi - lo)[0] - (ihi - ilo)[0] - 0.04, (hi - lo)[1] - (ihi - ilo)[1] - 0.04
    if room_x <= 0 or room_y <= 0:
        return None
    for _ in range(20):
        x = lo[0] + 0.02 - ilo[0] + uniform(rng, 0, room_x)
        y = lo[1] + 0.02 - ilo[1] + uniform(rng, 0, room_y)
        placed = v + np.array([x, y, top - ilo[2]])
        plo, phi = placed.min(0), placed.max(0)
        if not _overlaps(plo, phi, occupied, margin=0.02):
            occupied.append((plo, phi))
            return placed
    return None


def _walls(room) -> list[Placed]:
    w, d = room
    t = 0.1
    floor = solid("floor", [(box((w, d, 0.02), (w / 2, d / 2, -0.01)), 1.0)], "grey")
    placed = [Placed(floor, floor.mesh.vertices)]
    for size, centre in (((w, t, WALL_HEIGHT), (w / 2, -t / 2, WALL_HEIGHT / 2)), ((w, t, WALL_HEIGHT), (w / 2, d + t / 2, WALL_HEIGHT / 2)),
                         ((t, d, WALL_HEIGHT), (-t / 2, d / 2, WALL_HEIGHT / 2)), ((t, d, WALL_HEIGHT), (w + t / 2, d / 2, WALL_HEIGHT / 2))):  # fmt: skip
        wall = solid("wall", [(box(size, centre), 1.0)], "white")
        placed.append(Placed(wall, wall.mesh.vertices))
    return placed


def compose_room(room_type: str, rng, sources: Sources) -> tuple[tuple[float, float], list[Placed]]:
    """The instances of one room, in placement order: floor, walls, wall items, furniture, small objects."""
    room = (uniform(rng, 4.0, 6.0), uniform(rng, 3.5, 5.0))
    placed = _walls(room)
    used: list = []
    for category in WALL_ITEMS[room_type]:
        item = build_item(category, rng, sources)
        where = _place_wall(item, room, rng, used)
        if where is not None:
            placed.append(Placed(item, where))
    taken: list = []
    for category, wall in FURNITURE[room_type]:
        item = build_item(category, rng, sources)
        where = _place_floor(item, wall, room, rng, taken)
        if where is not None:
            placed.append(Placed(item, where))
    supports = [p for p in placed if p.item.category in SUPPORTS]
    occupied: dict[int, list] = {}
    for category in SMALL[room_type]:
        candidates = [p for p in supports if (category == "pillow") == (p.item.category == "bed")]
        if category == "sink":
            candidates = [p for p in supports if p.item.category in ("kitchen counter", "cabinet")]
        if not candidates:
            continue
        support = candidates[int(rng.integers(len(candidates)))]
        item = build_item(category, rng, sources)
        where = _place_on(item, support, rng, occupied.setdefault(id(support), []))
        if where is not None:
            placed.append(Placed(item, where))
    return room, placed


def room_mesh(placed: list[Placed], max_edge: float, rng) -> dict:
    """One mesh of every instance, subdivided to ``max_edge``; per vertex colour and instance."""
    import trimesh

    vertices, faces, colours, instance, base = [], [], [], [], 0
    for index, p in enumerate(placed):
        face_colour = p.item.colours
        v, f, source = trimesh.remesh.subdivide_to_size(
            p.vertices, p.item.mesh.faces, max_edge, max_iter=12, return_index=True
        )
        vertex_colour = np.zeros((len(v), 3))
        vertex_colour[f.reshape(-1)] = np.repeat(face_colour[source], 3, axis=0)
        noise = rng.normal(0, 4, (len(v), 3))
        vertices.append(v)
        faces.append(f + base)
        colours.append(np.clip(vertex_colour + noise, 0, 255).astype(np.uint8))
        instance.append(np.full(len(v), index))
        base += len(v)
    return {
        "vertices": np.concatenate(vertices).astype(np.float32),
        "faces": np.concatenate(faces),
        "colours": np.concatenate(colours),
        "instance": np.concatenate(instance),
    }


def superpoints(vertices: np.ndarray, normals: np.ndarray, instance: np.ndarray, cell: float = 0.5) -> np.ndarray:
    """Segments that never cross instances: (instance, dominant normal direction, 0.5 m cell)."""
    axis = np.abs(normals).argmax(1)
    direction = axis * 2 + (normals[np.arange(len(normals)), axis] > 0)
    keys = np.c_[instance, direction, np.floor(vertices / cell).astype(np.int64)]
    _, segment = np.unique(keys, axis=0, return_inverse=True)
    return segment.reshape(-1)


def camera_walk(room, count: int, rng) -> np.ndarray:
    """Camera-to-world poses (count, 4, 4) at head height around the room, each looking across it."""
    import torch

    from afcli.render.cameras import look_at

    w, d = room
    turns = np.linspace(0, 2 * math.pi, count, endpoint=False) + uniform(rng, 0, math.pi)
    eyes = np.c_[w / 2 + 0.3 * w * np.cos(turns), d / 2 + 0.3 * d * np.sin(turns), np.full(count, 1.5)]
    targets = np.c_[w / 2 - 0.35 * w * np.cos(turns + 0.4), d / 2 - 0.35 * d * np.sin(turns + 0.4), np.full(count, 0.6)]
    poses = look_at(torch.tensor(eyes), torch.tensor(targets), up=(0.0, 0.0, 1.0))
    return poses.numpy()


def render_frames(mesh: dict, poses: np.ndarray, folder: Path) -> None:
    """RGB-D frames in ScanNet's exported layout (frames/color, depth, pose, intrinsic)."""
    import torch
    from PIL import Image

    from afcli.render import Cameras, Shape, render

    height, width = FRAME_SIZE
    shape = Shape(
        torch.from_numpy(mesh["vertices"]),
        torch.from_numpy(mesh["faces"]),
        vertex_colors=torch.from_numpy(mesh["colours"]).float() / 255,
    )
    K = torch.tensor(FRAME_K, dtype=torch.float32).repeat(len(poses), 1, 1)
    views = render(shape, Cameras(K, torch.tensor(poses, dtype=torch.float32), height, width), background=(0, 0, 0))
    for name in ("color", "depth", "pose", "intrinsic"):
        make_folder(folder / name)
    intrinsic = np.eye(4)
    intrinsic[:3, :3] = FRAME_K
    for name in ("intrinsic_color.txt", "intrinsic_depth.txt"):
        np.savetxt(folder / "intrinsic" / name, intrinsic, fmt="%.6f")
    for i in range(len(poses)):
        Image.fromarray(views.rgb[i].numpy()).save(folder / "color" / f"{i}.jpg", quality=92)
        depth_mm = np.clip(np.rint(views.depth[i].numpy() * 1000), 0, 65535).astype(np.uint16)
        Image.fromarray(depth_mm).save(folder / "depth" / f"{i}.png")
        np.savetxt(folder / "pose" / f"{i}.txt", poses[i], fmt="%.6f")


def write_room(
    out: Path, scene: str, room_type: str, seed: int, index: int, frames: int, max_edge: float, sources: Sources
) -> dict:
    import trimesh

    from afcli.data.scannet import vertex_normals

    rng = np.random.default_rng([seed, index])
    room, placed = compose_room(room_type, rng, sources)
    mesh = room_mesh(placed, max_edge, rng)
    normals = vertex_normals(mesh["vertices"], mesh["faces"])
    segments = superpoints(mesh["vertices"], normals, mesh["instance"])
    folder = make_folder(out / "scans" / scene)
    trimesh.Trimesh(mesh["vertices"], mesh["faces"], vertex_colors=mesh["colours"], process=False).export(
        folder / f"{scene}_vh_clean_2.ply"
    )
    write_text(
        folder / f"{scene}_vh_clean_2.0.010000.segs.json",
        json.dumps({"sceneId": scene, "segIndices": segments.tolist()}),
    )
    groups = [
        {
            "id": i,
            "objectId": i,
            "segments": np.unique(segments[mesh["instance"] == i]).tolist(),
            "label": p.item.category,
        }
        for i, p in enumerate(placed)
    ]
    write_text(folder / f"{scene}.aggregation.json", json.dumps({"sceneId": scene, "segGroups": groups}))
    render_frames(mesh, camera_walk(room, frames, rng), folder / "frames")
    return {
        "scene": scene,
        "type": room_type,
        "size": [round(room[0], 3), round(room[1], 3)],
        "vertices": len(mesh["vertices"]),
        "instances": [
            {"id": i, "category": p.item.category, "colour": p.item.colour, "source": p.item.source}
            for i, p in enumerate(placed)
        ],
    }


def write_label_map(path: Path) -> None:
    names = vocabulary("scannet200").names
    ids = vocabulary("scannet200").ids
    lines = ["id\traw_category\tcategory\tcount\tnyu40id\tnyu40class"]
    for raw, (name200, nyu40) in sorted(LABELS.items()):
        lines.append(f"{ids[names.index(name200)]}\t{raw}\t{raw}\t1\t{nyu40}\t{raw}")
    write_text(path, "\n".join(lines) + "\n")


def synthesize_rooms(
    out: str | Path,
    count: int = 10,
    seed: int = 0,
    frames: int = 16,
    max_edge: float = 0.15,
    val_fraction: float = 0.2,
    advance: Callable[[], None] = lambda: None,
) -> dict:
    """Write ``count`` rooms (types in turn) under ``out`` as ScanNet scans; same seed, same rooms."""
    out = Path(out)
    if count < 1 or frames < 1:
        raise InputError(f"--n and --frames must be at least 1, got {count} and {frames}")
    if not max_edge > 0:
        raise InputError(f"--max-edge must be positive, got {max_edge}")
    manifest = out / "rooms.json"
    if manifest.is_file():
        try:
            existing = json.loads(manifest.read_text())
            same = (existing["seed"], len(existing["rooms"]), existing["frames"], existing["max_edge"]) == (
                seed,
                count,
                frames,
                max_edge,
            )
        except (OSError, ValueError, KeyError, TypeError):
            same = False
        if not same:
            raise InputError("already holds other rooms (another seed, count or size); choose another folder", out)
    from afcli.data.metaworld import package_folder
    from afcli.data.sweethome import catalogue_folder, read_catalogues

    sources = Sources(catalogue=read_catalogues(catalogue_folder()))
    try:
        sources.metaworld = package_folder() is not None
    except InputError:
        sources.metaworld = False
    rooms = []
    for index in range(count):
        scene = f"room{index:04d}_00"
        rooms.append(
            write_room(out, scene, ROOM_TYPES[index % len(ROOM_TYPES)], seed, index, frames, max_edge, sources)
        )
        advance()
    val = max(1, round(count * val_fraction)) if count > 1 else 0
    write_text(out / "scannetv2_train.txt", "".join(f"{r['scene']}\n" for r in rooms[: count - val]))
    write_text(out / "scannetv2_val.txt", "".join(f"{r['scene']}\n" for r in rooms[count - val :]))
    write_label_map(out / LABEL_MAP_NAME)
    catalogue = sum(len(models) for models in sources.catalogue.values())
    record = {"format": ROOMS_FORMAT, "version": 1, "seed": seed, "frames": frames, "max_edge": max_edge,
              "metaworld": sources.metaworld, "sweethome3d_models": catalogue, "rooms": rooms}  # fmt: skip
    write_text(manifest, json.dumps(record, indent=1) + "\n")
    return {"out": str(out), "rooms": count, "vertices": sum(r["vertices"] for r in rooms), "metaworld": sources.metaworld,
            "sweethome3d_models": catalogue, "instances": sum(len(r["instances"]) for r in rooms)}  # fmt: skip
