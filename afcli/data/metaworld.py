"""Real part-split CAD objects from the PyPI package ``metaworld`` (MIT; install ``pip install --no-deps
metaworld``): ``afcli data metaworld OUT`` writes them as a built-in-format folder (one binary PLY per
object, faces grouped by part, and ``manifest.json``) that ``afcli data import`` reads like the
built-in shapes, so every verb — render, pseudolabel, dfc-pairs — works on them.

Each object is assembled from its MuJoCo model (``metaworld/assets/objects/<name>.xml`` and the files
it includes, the scene left out): every visual geom (not in group 4, not of a ``*_col`` class) — an
STL mesh asset, or a capsule / cylinder / box / sphere primitive — placed by its own and its bodies'
``pos`` and ``quat`` / ``euler`` (radians or degrees as the model's ``compiler`` says; intrinsic
``xyz``) / ``axisangle``. MuJoCo re-centres meshes on their inertial frame internally but moves the
geom frame to match, so an STL's own coordinates under the XML pose are where it is drawn. The model
is z-up; afcli turns it y-up, the built-in shapes' frame (tools along +x, as the built-in knife).

Parts are afcli's reading of each model (:data:`OBJECTS`): a geom is keyed by its name, else its
mesh's name; a geom with neither key joins the part of the nearest keyed geom (the hammer's claw
cylinders join its head). Package mesh sizes are in metres; import normalises them.
"""

from __future__ import annotations

import importlib.util
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

import numpy as np

from afcli.data.affordance import PIAD_AFFORDANCES
from afcli.data.geometry import write_ply
from afcli.errors import InputError
from afcli.files import make_folder, write_text

# object xml (under metaworld/assets/objects) → (category, {geom key: part}); parts the taxonomy
# (afcli/data/taxonomies/builtin.json) names functions for.
OBJECTS = {
    "mug": ("Mug", {"mug": "body", "handle": "handle"}),
    "hammer": ("Hammer", {"HammerHandle": "handle", "HammerHead": "head"}),
    "thermos": ("Thermos", {"therm_base": "body", "therm_body": "body", "therm_cap": "cap", "therm_trim": "cap",
                            "therm_handle": "handle"}),
    "faucet": ("Faucet", {"faucetbase": "base", "faucethead": "head", "faucethandle1": "handle"}),
    "drawer": ("Drawer", {"drawercase": "case", "drawer": "drawer", "objGeom": "handle"}),
    "coffeemachine": ("CoffeeMachine", {"body1": "body", "body2": "body", "bodypiece1": "body", "spout": "spout",
                                        "buttonring": "button"}),
}  # fmt: skip
PALETTE = [(200, 70, 60), (70, 130, 200), (90, 170, 90), (220, 180, 60), (150, 90, 170), (90, 90, 90)]
Z_UP_TO_Y_UP = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # (x, y, z) → (x, z, −y)


def package_folder() -> Path:
    """``metaworld/assets/objects`` of the installed package, found without importing it (its
    import pulls MuJoCo and Gymnasium)."""
    spec = importlib.util.find_spec("metaworld")
    folder = Path(next(iter(spec.submodule_search_locations))) / "assets" / "objects" if spec else None
    if folder is None or not folder.is_dir():
        raise InputError("the metaworld meshes are not installed: pip install --no-deps metaworld (extra: real-meshes)")
    return folder


def _floats(text: str | None, count: int, default) -> np.ndarray:
    if text is None:
        return np.asarray(default, np.float64)
    values = [float(v) for v in text.split()]
    if len(values) != count:
        raise ValueError(f"expected {count} numbers, got {text!r}")
    return np.asarray(values)


def _rotation(attrs: dict, degrees: bool) -> np.ndarray:
    unit = math.pi / 180 if degrees else 1.0
    if "quat" in attrs:
        quat = _floats(attrs["quat"], 4, None)
        w, x, y, z = quat / np.linalg.norm(quat)
        return np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
            ]
        )
    if "euler" in attrs:  # intrinsic x, then y, then z (MuJoCo's default eulerseq "xyz")
        a, b, c = _floats(attrs["euler"], 3, None) * unit
        rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
        ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
        rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
        return rx @ ry @ rz
    if "axisangle" in attrs:
        *axis, angle = _floats(attrs["axisangle"], 4, None)
        k = np.asarray(axis) / np.linalg.norm(axis)
        K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        angle *= unit
        return np.eye(3) + math.sin(angle) * K + (1 - math.cos(angle)) * K @ K
    if "xyaxes" in attrs or "zaxis" in attrs:
        raise ValueError("xyaxes / zaxis orientations are not read")
    return np.eye(3)


def _inline(element: ET.Element, folder: Path) -> None:
    """Replace ``<include file>`` elements by the included file's children (the scene excepted)."""
    for index, child in enumerate(list(element)):
        if child.tag == "include":
            element.remove(child)
            path = folder / child.get("file", "")
            if "scene" in Path(child.get("file", "")).parts:
                continue
            included = ET.parse(path).getroot()
            _inline(included, path.parent)
            for offset, grandchild in enumerate(list(included)):
                element.insert(index + offset, grandchild)
        else:
            _inline(child, folder)


def _defaults(root: ET.Element) -> dict[str, dict]:
    """class → its geom attributes, inherited down nested ``<default>`` elements (the unnamed top one: main)."""
    classes: dict[str, dict] = {}

    def walk(node: ET.Element, inherited: dict) -> None:
        geom = dict(inherited)
        for child in node.findall("geom"):
            geom.update(child.attrib)
        classes[node.get("class", "main")] = geom
        for child in node.findall("default"):
            walk(child, geom)

    for top in root.findall("default"):
        walk(top, classes.get("main", {}))
    return classes


def _primitive(kind: str, size: np.ndarray):
    import trimesh

    if kind == "capsule":
        return trimesh.creation.capsule(height=2 * size[1], radius=size[0], count=[16, 8])
    if kind == "cylinder":
        return trimesh.creation.cylinder(radius=size[0], height=2 * size[1], sections=24)
    if kind == "box":
        return trimesh.creation.box(extents=2 * size[:3])
    if kind == "sphere":
        return trimesh.creation.icosphere(subdivisions=2, radius=size[0])
    return None


def assemble(name: str, folder: Path | None = None) -> tuple[str, list[tuple[str, np.ndarray, np.ndarray]]]:
    """(category, [(part, vertices (V, 3) y-up, faces (F, 3))]) of one object of :data:`OBJECTS`."""
    import trimesh

    folder = folder or package_folder()
    category, parts_of = OBJECTS[name]
    path = folder / f"{name}.xml"
    try:
        root = ET.parse(path).getroot()
        _inline(root, path.parent)
    except (OSError, ET.ParseError) as error:
        raise InputError(f"unreadable MuJoCo model ({' '.join(str(error).split())[:100]})", path) from None
    compiler = root.find("compiler")
    degrees = compiler is None or compiler.get("angle", "degree") == "degree"
    defaults = _defaults(root)
    meshes = {m.get("name") or Path(m.get("file")).stem: m for m in root.iter("mesh") if m.get("file")}
    geoms = []  # (key or None, vertices in the object frame, faces)

    def walk(body: ET.Element, rotation: np.ndarray, origin: np.ndarray, childclass: str, top: bool) -> None:
        childclass = body.get("childclass", childclass)
        if not top:
            origin = origin + rotation @ _floats(body.get("pos"), 3, (0, 0, 0))
            rotation = rotation @ _rotation(body.attrib, degrees)
        for geom in body.findall("geom"):
            attrs = {**defaults.get("main", {}), **defaults.get(geom.get("class", childclass), {}), **geom.attrib}
            if attrs.get("group") == "4" or geom.get("class", childclass).endswith("_col"):
                continue
            kind = attrs.get("type", "mesh" if "mesh" in attrs else "sphere")
            if kind == "mesh":
                asset = meshes.get(attrs.get("mesh"))
                if asset is None:
                    raise InputError(f"geom names an unknown mesh {attrs.get('mesh')!r}", path)
                mesh = trimesh.load(path.parent / asset.get("file"), force="mesh")
                mesh.apply_scale(_floats(asset.get("scale"), 3, (1, 1, 1)))
                key = geom.get("name") or attrs.get("mesh")
            else:
                mesh = _primitive(kind, np.array(attrs.get("size", "0").split(), np.float64))
                key = geom.get("name")
                if mesh is None:
                    continue
            local = np.asarray(mesh.vertices) @ _rotation(attrs, degrees).T + _floats(attrs.get("pos"), 3, (0, 0, 0))
            geoms.append((key, (local @ rotation.T + origin) @ Z_UP_TO_Y_UP.T, np.asarray(mesh.faces)))
        for child in body.findall("body"):
            walk(child, rotation, origin, childclass, False)

    worldbody = root.find("worldbody")
    for body in worldbody.findall("body") if worldbody is not None else []:
        placement = body.find("geom") is None and body.get("childclass") is None  # the scene's placement wrapper
        for root_body in body.findall("body") if placement else [body]:
            walk(root_body, np.eye(3), np.zeros(3), "main", True)
    keyed = [(parts_of[k], v) for k, v, _ in geoms if k in parts_of]
    if not keyed:
        raise InputError(f"no geom of the parts {sorted(set(parts_of.values()))} found", path)
    parts: dict[str, list] = {}
    for key, vertices, faces in geoms:
        part = parts_of.get(key) if key in parts_of else None
        if part is None:  # join the nearest keyed geom's part
            centre = vertices.mean(0)
            part = min(keyed, key=lambda kv: np.linalg.norm(kv[1].mean(0) - centre))[0]
        parts.setdefault(part, []).append((vertices, faces))
    merged = []
    for part, pieces in parts.items():
        offsets = np.cumsum([0] + [len(v) for v, _ in pieces])
        merged.append(
            (
                part,
                np.concatenate([v for v, _ in pieces]),
                np.concatenate([f + o for (_, f), o in zip(pieces, offsets)]),
            )
        )
    return category, merged


def write_objects(out: str | Path, names: list[str] | None = None, advance: Callable[[], None] = lambda: None) -> dict:
    """The metaworld objects as a built-in-format folder (meshes/*.ply + manifest.json)."""
    from afcli.data.synth import MANIFEST, SYNTH_FORMAT

    out = Path(out)
    folder = package_folder()
    names = names or list(OBJECTS)
    unknown = [n for n in names if n not in OBJECTS]
    if unknown:
        raise InputError(f"unknown metaworld object(s) {', '.join(unknown)} (known: {', '.join(OBJECTS)})")
    make_folder(out / "meshes")
    shapes = []
    for name in names:
        category, parts = assemble(name, folder)
        vertices, faces, colors, records, start, base = [], [], [], [], 0, 0
        for index, (part, v, f) in enumerate(parts):
            colour = PALETTE[index % len(PALETTE)]
            vertices.append(v)
            faces.append(f + base)
            colors.append(np.tile(np.asarray(colour, np.uint8), (len(f), 1)))
            records.append({"name": part, "faces": [start, start + len(f)], "color": list(colour), "affordances": []})
            start, base = start + len(f), base + len(v)
        relative = f"meshes/metaworld_{name}.ply"
        write_ply(out / relative, np.concatenate(vertices), np.concatenate(faces), np.concatenate(colors))
        shapes.append(
            {"id": f"metaworld_{name}", "category": category, "mesh": relative, "parts": records,
             "questions": {}, "source": "metaworld (MIT)"}
        )  # fmt: skip
        advance()
    manifest = {"format": SYNTH_FORMAT, "version": 1, "seed": 0, "affordances": PIAD_AFFORDANCES, "shapes": shapes}
    write_text(out / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return {"out": str(out), "objects": len(shapes), "categories": sorted({s["category"] for s in shapes})}
