"""Dense functional correspondence evaluation pairs in the official annotation layout
(../shared/reference/metrics-and-formats.md §6; the curation of the released ``4_eval_curation``):

```
<root>/images/<obj>/rgb_images_processed/<img>.png      224² RGB on white
<root>/images/<obj>/object_masks_processed/<img>.png    {0, 255}
<root>/2d_annotations/<action>/<obj1>|||<obj2>|||0000/trial_<t>/<obj>|||<img>.npy   (K, 2) (row, col), rows paired
<root>/selected_annotations.json                        {action: {"<obj1>|||<obj2>": ["trial_<t>", …]}}
```

``read_pairs`` reads that layout (objects named ``<uid>---<category>[.glb]``; trial ids given as
``trial_<t>``, ``<t>`` or ``NNNN/trial_<t>``; with no list, every trial folder found).

``write_pairs`` makes it from a store's kept renders and true parts (``afcli data dfc-pairs``). The
official annotator aligns two meshes by hand so that their functional parts coincide; afcli aligns
them by those parts automatically — each object's functional-part points (the taxonomy's parts for
the function) get an axis-aligned box, and the second object is moved and scaled per axis so that
its box lands on the first's, the automated counterpart of the annotator's cube fitted to each part.
The built-in shapes share one canonical frame (up = y, tools along +x), so the boxes' axes agree by
construction; meshes from elsewhere must share such a frame. Then, per trial, as ``3d_to_2d.py``: a
source view among the 5 showing most of the part; a target view among the 5 best by ½ agreement with
the source camera's direction + ½ share of the part visible (the code z-buffers the aligned cloud
through the source camera; afcli's rig is shared by every object, so the direction stands in for
it); the part's pixels of both views, FPS in 2D to n = min(max_points, n1, n2), and Hungarian
matching on the aligned 3D distance of their surface points.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from afcli.errors import InputError
from afcli.files import make_folder, write_text

SEPARATOR = "|||"
LIST_FILE = "selected_annotations.json"


@dataclass
class Trial:
    action: str
    obj1: str
    obj2: str
    trial: str
    image1: str  # file name of the view, e.g. 0003.png
    image2: str
    points1: np.ndarray  # (K, 2) (x, y)
    points2: np.ndarray

    @property
    def within(self) -> bool:
        return category_of(self.obj1) == category_of(self.obj2)


def category_of(obj: str) -> str:
    name = obj[:-4] if obj.endswith(".glb") else obj
    return name.split("---", 1)[1].lower() if "---" in name else name.lower()


def _load_points(path: Path) -> np.ndarray:
    try:
        points = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise InputError(f"unreadable annotation ({' '.join(str(error).split())[:100]})", path) from None
    if points.ndim != 2 or points.shape[1] != 2:
        raise InputError(f"annotation must be (K, 2) (row, col), got {list(points.shape)}", path)
    return points[:, ::-1].astype(np.int64)  # (row, col) → (x, y)


def _trial_folders(pair_dirs: list[Path], wanted: list[str] | None) -> list[Path]:
    found = sorted(t for d in pair_dirs for t in d.iterdir() if t.is_dir() and t.name.startswith("trial_"))
    if wanted is None:
        return found
    chosen = []
    for item in wanted:
        text = str(item)
        name = text if text.startswith("trial_") or "/" in text else f"trial_{text}"
        chosen += [t for t in found if f"{t.parent.name.rsplit(SEPARATOR, 1)[-1]}/{t.name}" == name or t.name == name]
    return chosen


def read_pairs(annotations: str | Path, listing: str | Path | None = None) -> list[Trial]:
    """Every trial under ``annotations`` (the ``2d_annotations`` folder), or those ``listing`` selects."""
    root = Path(annotations)
    if not root.is_dir():
        raise InputError("no such annotation folder", root)
    selected = None
    if listing is not None:
        try:
            selected = json.loads(Path(listing).read_text())
        except (OSError, ValueError) as error:
            raise InputError(f"unreadable annotation list ({' '.join(str(error).split())[:100]})", listing) from None
    trials = []
    for action_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        pairs = sorted(p for p in action_dir.iterdir() if p.is_dir() and p.name.count(SEPARATOR) == 2)
        by_pair: dict[str, list[Path]] = {}
        for pair_dir in pairs:
            by_pair.setdefault(pair_dir.name.rsplit(SEPARATOR, 1)[0], []).append(pair_dir)
        for pair, dirs in by_pair.items():
            if selected is not None and pair not in selected.get(action_dir.name, {}):
                continue
            wanted = None if selected is None else selected[action_dir.name][pair]
            obj1, obj2 = pair.split(SEPARATOR)
            for folder in _trial_folders(dirs, wanted):
                files = sorted(folder.glob(f"*{SEPARATOR}*.npy"))
                if len(files) != 2:
                    raise InputError(f"a trial holds two <obj>|||<img>.npy files, found {len(files)}", folder)
                names = [f.name[: -len(".npy")].split(SEPARATOR) for f in files]
                if names[0][0] != obj1 and names[1][0] == obj1:
                    files, names = files[::-1], names[::-1]
                p1, p2 = _load_points(files[0]), _load_points(files[1])
                if len(p1) != len(p2):
                    raise InputError(f"the two point lists differ in length ({len(p1)} vs {len(p2)})", folder)
                trial = f"{folder.parent.name.rsplit(SEPARATOR, 1)[-1]}/{folder.name}"
                trials.append(Trial(action_dir.name, obj1, obj2, trial, names[0][1], names[1][1], p1, p2))
    if not trials:
        raise InputError("no annotated trials found", root)
    return trials


def load_trials(pairs: str | Path) -> list[Trial]:
    """The trials of a pairs folder (``afcli data dfc-pairs``'s, or the official ``2d_annotations``
    with ``selected_annotations.json`` beside it): those the list selects, every one without a list."""
    listing = Path(pairs) / LIST_FILE
    return read_pairs(Path(pairs) / "2d_annotations", listing if listing.is_file() else None)


def read_view(images: Path, obj: str, image: str) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 RGB and (H, W) bool object mask of one annotated view."""
    from afcli.images import read_image

    rgb = read_image(images / obj / "rgb_images_processed" / image, what="evaluation image")
    mask = read_image(images / obj / "object_masks_processed" / image, "L", what="evaluation mask")
    return rgb.numpy(), mask.numpy() > 127


# ---- writing pairs from a store ----


def _box(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    low, high = points.min(0), points.max(0)
    extent = high - low
    extent = np.where(extent > 1e-6, extent, max(float(extent.mean()), 1e-3))
    return (low + high) / 2, extent


def align(part1: np.ndarray, part2: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The map of object 2's frame into object 1's that puts its part box onto object 1's."""
    (c1, e1), (c2, e2) = _box(part1), _box(part2)
    return lambda points: (points - c2) / e2 * e1 + c1


def dense_matches(key1, world1, key2, world2, max_points: int, rng: np.random.Generator):
    """Shuffle, FPS both sides on their ``key`` coordinates (2D pixels, or 3D points) to n =
    min(max_points, n1, n2), and match them one-to-one by the Hungarian method on the aligned 3D
    distance → the indices (n,) into side 1 and side 2 of each matched pair."""
    from scipy.optimize import linear_sum_assignment

    from afcli.ops.points import fps

    picked = []
    n = min(max_points, len(key1), len(key2))
    for key in (key1, key2):
        order = rng.permutation(len(key))
        padded = np.zeros((len(key), 3))
        padded[:, : key.shape[1]] = key[order]
        picked.append(order[fps(torch.from_numpy(padded).float()[None], n)[0].numpy()])
    first, second = picked
    rows, cols = linear_sum_assignment(np.linalg.norm(world1[first][:, None] - world2[second][None], axis=-1))
    return first[rows], second[cols]


class StoreObjects:
    """The objects of one split of a store with kept renders and true parts, read lazily: views,
    points, true functional-part points per function, and the point each object pixel shows."""

    def __init__(self, f, taxonomy, rig: str, split: str):
        from afcli.store.schema import decode, sample_splits

        if f"views/{rig}/index" not in f:
            raise InputError(f"no kept renders /views/{rig} (afcli render --keep-views)", f.filename)
        if "labels/part" not in f:
            raise InputError("functionally aligned pairs need true parts (/labels/part)", f.filename)
        self.f, self.taxonomy, self.rig = f, taxonomy, rig
        self.ids = decode(f["samples/id"][:])
        self.categories = decode(f["samples/category"][:])
        splits = sample_splits(f, split)
        self.rows = [
            r for r in range(len(self.ids)) if split in ("all", splits[r]) and taxonomy.parts_of(self.categories[r])
        ]
        self._cache: dict[int, dict] = {}

    def name(self, row: int) -> str:
        """The official ``<uid>---<category>`` object name."""
        return f"{self.ids[row]}---{self.categories[row]}"

    def __getitem__(self, row: int) -> dict:
        if row not in self._cache:
            from afcli.pseudolabel.voting import project_points
            from afcli.render.correspondence import surface_points
            from afcli.store.schema import decode, read_sample

            f = self.f
            views = {
                k: torch.from_numpy(np.asarray(f[f"views/{self.rig}/{k}"][row]))
                for k in ("rgb", "depth", "index", "K", "c2w")
            }
            points = torch.from_numpy(np.asarray(read_sample(f, row, "points/xyz"), np.float32))
            face = read_sample(f, row, "points/face") if "points/face" in f else None
            pixels, visible, nearest = project_points(points, face, views)
            self._cache[row] = {
                **views,
                "points": points.numpy(),
                "labels": np.asarray(read_sample(f, row, "labels/part"), np.int64),
                "names": [p.get("name", "") for p in json.loads(decode([f["text/parts"][row]])[0] or "[]")],
                "pixels": pixels,
                "visible": visible,
                "nearest": nearest.numpy(),
                "world": surface_points(views["depth"], views["K"], views["c2w"]).numpy(),
            }
        return self._cache[row]

    def part_points(self, row: int, function: str) -> np.ndarray:
        """(N,) the points of the parts serving ``function``."""
        sample = self[row]
        serving = {p.name for p in self.taxonomy.parts_for(self.categories[row], function)}
        return np.isin(sample["labels"], [i for i, n in enumerate(sample["names"]) if n in serving])

    def pairs(self, per_function: int, rng: np.random.Generator) -> list[tuple[str, int, int]]:
        """(function, row 1, row 2): up to ``per_function`` random pairs of distinct objects per function."""
        chosen = []
        for function in self.taxonomy.functions:
            having = [r for r in self.rows if self.taxonomy.parts_for(self.categories[r], function)]
            pairs = list(itertools.combinations(having, 2))
            rng.shuffle(pairs)
            chosen += [(function, r1, r2) for r1, r2 in pairs[:per_function]]
        return chosen


def write_pairs(
    store: str | Path,
    out: str | Path,
    *,
    taxonomy: str = "builtin",
    rig: str = "sphere",
    split: str = "test",
    trials: int = 2,
    pairs_per_function: int = 20,
    max_points: int = 10000,
    seed: int = 1234,
    advance: Callable[[], None] = lambda: None,
) -> dict:
    from PIL import Image

    from afcli.data.taxonomy import load_taxonomy
    from afcli.store import open_store

    store, out = Path(store), Path(out)
    rng = np.random.default_rng(seed)
    with open_store(store) as f:
        objects = StoreObjects(f, load_taxonomy(taxonomy), rig, split)
        listing: dict[str, dict[str, list[str]]] = {}
        written = 0
        images = out / "images"
        for function, r1, r2 in objects.pairs(pairs_per_function, rng):
            s1, s2 = objects[r1], objects[r2]
            on1, on2 = objects.part_points(r1, function), objects.part_points(r2, function)
            if not on1.any() or not on2.any():
                continue
            moved = align(s1["points"][on1], s2["points"][on2])
            pix1 = (s1["nearest"] >= 0) & on1[np.maximum(s1["nearest"], 0)]
            pix2 = (s2["nearest"] >= 0) & on2[np.maximum(s2["nearest"], 0)]
            count1, count2 = pix1.sum((1, 2)), pix2.sum((1, 2))
            sources = [v for v in np.argsort(-count1, kind="stable")[:5] if count1[v] > 0]
            used: set[tuple[int, int]] = set()
            names = (objects.name(r1), objects.name(r2))
            pair_dir = out / "2d_annotations" / function / f"{names[0]}{SEPARATOR}{names[1]}{SEPARATOR}0000"
            for t in range(trials):
                if not sources:
                    break
                v1 = int(rng.choice(sources))
                forward1 = s1["c2w"][v1, :3, 2].numpy()
                agreement = np.array([(1 + forward1 @ s2["c2w"][v, :3, 2].numpy()) / 2 for v in range(len(count2))])
                score = 0.5 * agreement + 0.5 * count2 / max(count2.max(), 1)
                ranked = [v for v in np.argsort(-score, kind="stable") if count2[v] > 0 and (v1, v) not in used]
                if not ranked:
                    break
                v2 = int(rng.choice(ranked[:5]))
                used.add((v1, v2))
                y1, x1 = np.nonzero(pix1[v1])
                y2, x2 = np.nonzero(pix2[v2])
                xy1, xy2 = np.stack([x1, y1], 1), np.stack([x2, y2], 1)
                i, j = dense_matches(xy1, s1["world"][v1, y1, x1], xy2, moved(s2["world"][v2, y2, x2]), max_points, rng)
                a, b = xy1[i], xy2[j]
                folder = pair_dir / f"trial_{t}"
                make_folder(folder)
                for name, view, xy in ((names[0], v1, a), (names[1], v2, b)):
                    np.save(folder / f"{name}{SEPARATOR}{view:04d}.png.npy", xy[:, ::-1].astype(np.int64))
                for name, s, view in ((names[0], s1, v1), (names[1], s2, v2)):
                    _write_view(images / name, s, view, Image)
                listing.setdefault(function, {}).setdefault(f"{names[0]}{SEPARATOR}{names[1]}", []).append(f"trial_{t}")
                written += 1
                advance()
    write_text(out / LIST_FILE, json.dumps(listing, indent=1, sort_keys=True) + "\n")
    return {
        "out": str(out),
        "trials": written,
        "functions": sorted(listing),
        "pairs": sum(len(v) for v in listing.values()),
    }


def _write_view(folder: Path, sample: dict, view: int, Image) -> None:
    name = f"{view:04d}.png"
    rgb_path = folder / "rgb_images_processed" / name
    if rgb_path.is_file():
        return
    make_folder(rgb_path.parent)
    make_folder(folder / "object_masks_processed")
    Image.fromarray(sample["rgb"][view].numpy()).save(rgb_path)
    Image.fromarray(((sample["index"][view] >= 0).numpy() * 255).astype(np.uint8)).save(
        folder / "object_masks_processed" / name
    )
