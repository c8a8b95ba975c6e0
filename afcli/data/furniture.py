"""The built-in rooms' furniture and objects: each raw ScanNet category built at a plausible size from
boxes and lathes (z-up, metres, standing at z = 0), or taken from afcli's built-in shapes (cups, bottles,
bowls, bags, doors, chairs) and the real metaworld mug and thermos where that package is installed;
each in a named colour of its palette, shaded per part. ``LABELS`` holds the real ScanNet200 name and
NYU40 id of every category the rooms use (the rows of their label map).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from afcli.data.geometry import Mesh, box, lathe, merge
from afcli.errors import InputError

COLOURS = {
    "white": (235, 235, 230), "grey": (128, 128, 132), "black": (40, 40, 42), "brown": (120, 80, 45),
    "beige": (214, 196, 160), "red": (190, 45, 40), "orange": (225, 125, 40), "yellow": (225, 200, 60),
    "green": (60, 140, 70), "blue": (50, 90, 175), "purple": (120, 70, 150), "pink": (225, 150, 170),
    "light blue": (150, 195, 235),
}  # fmt: skip
# raw ScanNet category → (ScanNet200 name, NYU40 id): the rows of the label map the rooms need.
LABELS = {
    "floor": ("floor", 2), "wall": ("wall", 1), "door": ("door", 8), "window": ("window", 9),
    "picture": ("picture", 11), "curtain": ("curtain", 16), "bed": ("bed", 4), "pillow": ("pillow", 18),
    "nightstand": ("nightstand", 32), "lamp": ("lamp", 35), "couch": ("couch", 6), "coffee table": ("coffee table", 7),
    "bookshelf": ("bookshelf", 10), "book": ("book", 23), "trash can": ("trash can", 39), "cabinet": ("cabinet", 3),
    "kitchen counter": ("kitchen counter", 12), "refrigerator": ("refrigerator", 24), "sink": ("sink", 34),
    "table": ("table", 7), "chair": ("chair", 5), "cup": ("cup", 40), "bottle": ("bottle", 40), "bowl": ("bowl", 40),
    "toilet": ("toilet", 33), "bathtub": ("bathtub", 36), "towel": ("towel", 27), "desk": ("desk", 14),
    "office chair": ("office chair", 5), "box": ("box", 29), "bag": ("bag", 37), "water bottle": ("water bottle", 40),
}  # fmt: skip
PALETTES = {
    "door": ("brown", "white"), "window": ("light blue",), "picture": ("blue", "red", "green", "yellow", "purple"),
    "curtain": ("beige", "blue", "red", "green"), "bed": ("white", "blue", "beige"), "pillow": ("white", "pink", "yellow"),
    "couch": ("grey", "blue", "green", "red"), "kitchen counter": ("white", "grey"), "refrigerator": ("white", "grey"),
    "sink": ("white",), "toilet": ("white",), "bathtub": ("white",), "towel": ("blue", "pink", "white"),
    "book": ("red", "blue", "green", "yellow"), "cup": ("red", "white", "blue", "yellow"), "bottle": ("green", "blue"),
    "bag": ("black", "red", "brown"), "lamp": ("white", "yellow", "black"), "trash can": ("grey", "black"),
}  # fmt: skip
WOOD = ("brown", "beige", "black", "white")
REAL_SHARE = 0.5  # of the items a sweethome3d catalogue has a model for


@dataclass
class Item:
    category: str  # raw ScanNet category
    mesh: Mesh  # z-up metres, base at z = 0, centred on x = y = 0 before placement
    colours: np.ndarray  # (F, 3) u8 per face
    colour: str  # its colour name
    source: str = "afcli"  # afcli (built here), builtin shape, metaworld, or a sweethome3d catalogue model


def uniform(rng, low, high) -> float:
    return float(rng.uniform(low, high))


def _tint(name: str, shade: float = 1.0) -> np.ndarray:
    return np.clip(np.asarray(COLOURS[name], float) * shade, 0, 255)


def solid(category: str, parts: list[tuple[Mesh, float]], colour: str) -> Item:
    """An item of meshes each shaded (a factor) from one colour."""
    faces = [np.tile(_tint(colour, shade), (len(m.faces), 1)) for m, shade in parts]
    return Item(category, merge([m for m, _ in parts]), np.concatenate(faces).astype(np.uint8), colour)


def _legs(width, depth, height, leg) -> list[Mesh]:
    return [
        box((leg, leg, height), (sx * (width / 2 - leg), sy * (depth / 2 - leg), height / 2))
        for sx in (-1, 1)
        for sy in (-1, 1)
    ]


def _table(category, width, depth, height, colour) -> Item:
    top = 0.04
    parts = [(box((width, depth, top), (0, 0, height - top / 2)), 1.0)]
    parts += [(leg, 0.7) for leg in _legs(width, depth, height - top, 0.05)]
    return solid(category, parts, colour)


def _cylinder(radius, height, segments=20) -> Mesh:
    return _z_up(lathe([(0, 0), (radius, 0), (radius, height), (0, height)], segments))


def _z_up(mesh: Mesh) -> Mesh:
    """The built-in shapes' y-up frame turned z-up."""
    return mesh.rotated("x", math.pi / 2)


def _builtin(category: str, shape: str, height: float, colour: str, rng) -> Item:
    from afcli.data.synth import build_shape

    mesh, _, face_colours = build_shape(shape, rng)
    return _scaled(category, _z_up(mesh), face_colours, height, colour, f"afcli built-in shape {shape}")


def _scaled(category: str, mesh: Mesh, face_colours: np.ndarray, height: float, colour: str, source: str) -> Item:
    """Scaled to ``height``, standing at z = 0 and centred; part shading kept, hue from ``colour``."""
    v = mesh.vertices - mesh.vertices.min(0)
    v = v * (height / max(v[:, 2].max(), 1e-9))
    v[:, :2] -= (v[:, :2].max(0) + v[:, :2].min(0)) / 2
    shade = face_colours.astype(float).mean(1, keepdims=True) / 160.0
    return Item(category, Mesh(v, mesh.faces), np.clip(_tint(colour) * shade, 0, 255).astype(np.uint8), colour, source)


def _metaworld(category: str, name: str, height: float, colour: str) -> Item | None:
    """A real metaworld object (y-up metres) when the package is installed."""
    from afcli.data import metaworld

    try:
        _, parts = metaworld.assemble(name)
    except (InputError, OSError):
        return None
    vertices, faces, colours, base = [], [], [], 0
    for index, (_, v, f) in enumerate(parts):
        vertices.append(v)
        faces.append(f + base)
        colours.append(np.full((len(f), 3), 160 if index == 0 else 110, np.uint8))
        base += len(v)
    mesh = _z_up(Mesh(np.concatenate(vertices), np.concatenate(faces)))
    return _scaled(category, mesh, np.concatenate(colours), height, colour, f"metaworld {name}")


def _catalogue_model(category: str, model, colour: str) -> Item:
    """A sweethome3d model (afcli.data.sweethome), centred, its materials' shades in a named hue."""
    from afcli.data.sweethome import load_model

    mesh, shade = load_model(model)
    v = mesh.vertices.copy()
    v[:, :2] -= (v[:, :2].max(0) + v[:, :2].min(0)) / 2
    colours = np.clip(_tint(colour)[None] * shade[:, None] * 1.3, 0, 255).astype(np.uint8)
    return Item(category, Mesh(v, mesh.faces), colours, colour, f"sweethome3d: {model.archive.stem} {model.model}")


@dataclass
class Sources:
    """Where real models come from, when installed: the metaworld package, a sweethome3d catalogue."""

    metaworld: bool = False
    catalogue: dict = field(default_factory=dict)  # category → [afcli.data.sweethome.CatalogueModel]


def build_item(category: str, rng, sources: Sources) -> Item:
    """One object of a raw ScanNet category, at a plausible size and in a colour of its palette; with
    a sweethome3d catalogue (afcli.data.sweethome), half of the categories it has come from it."""
    colour = str(rng.choice(PALETTES.get(category, WOOD)))
    if sources.catalogue.get(category) and rng.random() < REAL_SHARE:
        models = sources.catalogue[category]
        return _catalogue_model(category, models[int(rng.integers(len(models)))], colour)
    if category == "bed":
        w, d = uniform(rng, 1.4, 1.8), uniform(rng, 1.9, 2.1)
        return solid(category, [
            (box((w, d, 0.3), (0, 0, 0.15)), 0.6), (box((w - 0.05, d - 0.1, 0.22), (0, 0.03, 0.41)), 1.0),
            (box((w, 0.08, 0.6), (0, -d / 2 + 0.04, 0.6)), 0.6),
        ], colour)  # fmt: skip
    if category == "couch":
        w, d = uniform(rng, 1.8, 2.4), uniform(rng, 0.8, 0.95)
        return solid(category, [
            (box((w, d, 0.42), (0, 0, 0.21)), 1.0), (box((w, 0.2, 0.45), (0, -d / 2 + 0.1, 0.645)), 0.85),
            (box((0.18, d, 0.25), (-w / 2 + 0.09, 0, 0.545)), 0.75), (box((0.18, d, 0.25), (w / 2 - 0.09, 0, 0.545)), 0.75),
        ], colour)  # fmt: skip
    if category in ("table", "coffee table", "desk"):
        size = {"table": (1.2, 1.6, 0.75), "coffee table": (0.9, 1.2, 0.42), "desk": (1.2, 1.5, 0.74)}[category]
        w = uniform(rng, size[0], size[1])
        return _table(
            category, w, uniform(rng, 0.6, 0.8) if category != "table" else uniform(rng, 0.8, 1.0), size[2], colour
        )
    if category in ("chair", "office chair"):
        if category == "chair":
            return _builtin(category, "Chair", uniform(rng, 0.85, 0.95), colour, rng)
        seat = uniform(rng, 0.45, 0.5)
        parts = [(box((0.5, 0.5, 0.08), (0, 0, seat)), 1.0), (box((0.48, 0.06, 0.5), (0, -0.22, seat + 0.3)), 0.9),
                 (_cylinder(0.03, seat - 0.04), 0.5), (box((0.55, 0.55, 0.04), (0, 0, 0.02)), 0.4)]  # fmt: skip
        return solid(category, parts, str(rng.choice(("black", "grey", "blue"))))
    if category in ("cabinet", "nightstand"):
        w, d, h = (uniform(rng, 0.8, 1.2), 0.5, uniform(rng, 0.8, 1.1)) if category == "cabinet" else (0.45, 0.4, 0.55)
        return solid(
            category,
            [(box((w, d, h), (0, 0, h / 2)), 1.0), (box((w * 0.9, 0.02, 0.03), (0, d / 2 + 0.01, h * 0.8)), 0.5)],
            colour,
        )
    if category == "bookshelf":
        w, d, h = uniform(rng, 0.8, 1.2), 0.35, uniform(rng, 1.6, 2.0)
        parts = [(box((0.03, d, h), (sx * (w / 2 - 0.015), 0, h / 2)), 1.0) for sx in (-1, 1)]
        parts += [(box((w - 0.06, d, 0.03), (0, 0, z)), 0.9) for z in np.linspace(0.05, h - 0.015, 5)]
        parts += [(box((w, 0.02, h), (0, -d / 2 + 0.01, h / 2)), 0.8)]
        return solid(category, parts, colour)
    if category == "kitchen counter":
        w = uniform(rng, 1.8, 2.6)
        return solid(
            category,
            [(box((w, 0.6, 0.86), (0, 0, 0.43)), 0.85), (box((w + 0.02, 0.62, 0.04), (0, 0, 0.88)), 1.0)],
            colour,
        )
    if category == "refrigerator":
        return solid(
            category,
            [(box((0.7, 0.7, 1.8), (0, 0, 0.9)), 1.0), (box((0.04, 0.04, 0.5), (0.25, 0.37, 1.2)), 0.4)],
            colour,
        )
    if category == "toilet":
        return solid(category, [(_cylinder(0.2, 0.4), 1.0), (box((0.4, 0.18, 0.4), (0, -0.27, 0.55)), 0.95)], colour)
    if category == "bathtub":
        return solid(category, [(box((1.6, 0.75, 0.55), (0, 0, 0.275)), 1.0)], colour)
    if category == "trash can":
        return solid(category, [(_cylinder(0.15, 0.35), 1.0)], colour)
    if category == "sink":
        return solid(
            category,
            [(box((0.5, 0.4, 0.12), (0, 0, 0.06)), 1.0), (_cylinder(0.02, 0.25).moved((0, -0.15, 0.12)), 0.6)],
            colour,
        )
    if category == "lamp":
        h = uniform(rng, 0.4, 0.55)
        shade = _z_up(lathe([(0.14, 0), (0.09, 0.18)], 20)).moved((0, 0, h - 0.18))
        return solid(category, [(_cylinder(0.08, 0.03), 0.5), (_cylinder(0.012, h - 0.18), 0.5), (shade, 1.0)], colour)
    if category in ("book", "box"):
        w, d, h = (
            (0.17, 0.24, 0.04)
            if category == "book"
            else (uniform(rng, 0.2, 0.35), uniform(rng, 0.2, 0.3), uniform(rng, 0.12, 0.25))
        )
        return solid(category, [(box((w, d, h), (0, 0, h / 2)), 1.0)], colour if category == "book" else "beige")
    if category == "pillow":
        return solid(category, [(box((0.5, 0.35, 0.12), (0, 0, 0.06)), 1.0)], colour)
    if category == "cup":
        return (sources.metaworld and _metaworld(category, "mug", 0.1, colour)) or _builtin(
            category, "Mug", 0.1, colour, rng
        )
    if category == "water bottle":
        return (sources.metaworld and _metaworld(category, "thermos", 0.25, colour)) or _builtin(
            category, "Bottle", 0.25, colour, rng
        )
    if category in ("bottle", "bowl", "bag"):
        shape, height = {"bottle": ("Bottle", 0.28), "bowl": ("Bowl", 0.08), "bag": ("Bag", 0.4)}[category]
        return _builtin(category, shape, height, colour, rng)
    if category == "door":
        return _builtin(category, "Door", uniform(rng, 2.0, 2.1), colour, rng)
    if category in ("window", "picture", "towel", "curtain"):
        w, h = {"window": (uniform(rng, 0.9, 1.4), 1.2), "picture": (uniform(rng, 0.4, 0.9), uniform(rng, 0.4, 0.7)),
                "towel": (0.45, 0.7), "curtain": (0.4, 2.0)}[category]  # fmt: skip
        parts = [(box((w, 0.04, h), (0, 0, h / 2)), 1.0)]
        if category in ("window", "picture"):  # a frame
            parts += [(box((w + 0.06, 0.05, 0.03), (0, 0, z)), 0.5) for z in (0, h)]
        return solid(category, parts, colour)
    raise InputError(f"no builder for {category!r}")
