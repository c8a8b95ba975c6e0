"""The built-in shape set: procedural objects of categories that LASO and PIAD share.

Each object is a set of named parts with randomised proportions; every part carries a colour and
the affordances it offers, in PIAD's vocabulary. ``synthesize`` writes one binary PLY per object
(faces grouped by part, coloured by part) and ``manifest.json`` with, per object, the face range of
each part, its affordances and 3–5 LASO-style questions per affordance. The same seed gives
byte-identical files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

import numpy as np

from afcli.data.affordance import PIAD_AFFORDANCES, questions_for
from afcli.data.geometry import Mesh, Part, arc, box, extrude, lathe, merge, tube, write_ply
from afcli.errors import InputError
from afcli.files import make_folder, write_text

MANIFEST = "manifest.json"
SYNTH_FORMAT = "afcli-synth"

Generator = Callable[[np.random.Generator], list[Part]]


def _u(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def mug(rng) -> list[Part]:
    radius, height, wall = _u(rng, 0.35, 0.5), _u(rng, 0.7, 1.1), _u(rng, 0.03, 0.05)
    lip = height * 0.92
    handle_r = _u(rng, 0.18, 0.28) * height
    handle = tube(
        arc((radius, height / 2, 0), handle_r, -math.pi / 2, math.pi / 2, 16), _u(rng, 0.035, 0.05), (0, 0, 1)
    )
    return [
        Part("body", lathe([(0, 0), (radius, 0), (radius, lip)]), ["wrapgrasp"], (200, 60, 50)),
        Part("rim", lathe([(radius, lip), (radius, height), (radius - wall, height), (radius - wall, lip)]), ["pour"], (230, 200, 190)),
        Part("interior", lathe([(radius - wall, lip), (radius - wall, wall), (0, wall)]), ["contain"], (240, 230, 220)),
        Part("handle", handle, ["grasp"], (150, 40, 35)),
    ]  # fmt: skip


def bottle(rng) -> list[Part]:
    radius, body_h = _u(rng, 0.25, 0.4), _u(rng, 0.8, 1.3)
    neck_r, shoulder, neck_h = radius * _u(rng, 0.3, 0.45), _u(rng, 0.15, 0.3), _u(rng, 0.2, 0.35)
    cap_r, cap_h = neck_r * 1.15, _u(rng, 0.08, 0.15)
    top = body_h + shoulder + neck_h
    return [
        Part("body", lathe([(0, 0), (radius, 0), (radius, body_h)]), ["wrapgrasp", "contain"], (60, 140, 90)),
        Part("neck", lathe([(radius, body_h), (neck_r, body_h + shoulder), (neck_r, top)]), ["grasp", "pour"], (80, 170, 110)),
        Part("cap", lathe([(cap_r, top), (cap_r, top + cap_h), (0, top + cap_h)]), ["open"], (220, 220, 230)),
    ]  # fmt: skip


def bowl(rng) -> list[Part]:
    radius, depth, wall = _u(rng, 0.6, 0.9), _u(rng, 0.3, 0.5), _u(rng, 0.03, 0.05)
    foot = radius * _u(rng, 0.35, 0.5)
    curve = [
        (foot + (radius - foot) * math.sin(t * math.pi / 2), depth * (1 - math.cos(t * math.pi / 2)))
        for t in np.linspace(0, 1, 8)
    ]
    inner = [(max(r - wall, 0.0), max(y, wall)) for r, y in reversed(curve)]
    return [
        Part("outside", lathe([(0, 0), *curve]), ["wrapgrasp"], (70, 110, 190)),
        Part("rim", lathe([curve[-1], (radius, depth + wall), inner[0]]), ["pour"], (200, 210, 240)),
        Part("inside", lathe([*inner, (0, wall)]), ["contain"], (235, 235, 245)),
    ]  # fmt: skip


def _legs(width: float, depth: float, height: float, thickness: float, inset: float) -> Mesh:
    return merge(
        [
            box((thickness, height, thickness), (sx * (width / 2 - inset), height / 2, sz * (depth / 2 - inset)))
            for sx in (-1, 1)
            for sz in (-1, 1)
        ]
    )


def chair(rng) -> list[Part]:
    width, depth, seat_h = _u(rng, 0.8, 1.0), _u(rng, 0.8, 1.0), _u(rng, 0.8, 1.0)
    seat_t, back_h, leg = _u(rng, 0.06, 0.1), _u(rng, 0.7, 1.0), _u(rng, 0.06, 0.09)
    return [
        Part("seat", box((width, seat_t, depth), (0, seat_h + seat_t / 2, 0)), ["sit"], (160, 110, 60)),
        Part("back", box((width, back_h, seat_t), (0, seat_h + seat_t + back_h / 2, -depth / 2 + seat_t / 2)), ["support"], (140, 95, 50)),
        Part("legs", _legs(width, depth, seat_h, leg, leg / 2), ["move"], (90, 60, 35)),
    ]  # fmt: skip


def table(rng) -> list[Part]:
    width, depth, height = _u(rng, 1.4, 2.0), _u(rng, 0.8, 1.2), _u(rng, 0.9, 1.1)
    top_t, leg = _u(rng, 0.05, 0.1), _u(rng, 0.06, 0.1)
    return [
        Part("top", box((width, top_t, depth), (0, height + top_t / 2, 0)), ["support"], (185, 140, 90)),
        Part("legs", _legs(width, depth, height, leg, leg), ["move"], (110, 80, 50)),
    ]  # fmt: skip


def knife(rng) -> list[Part]:
    blade_l, blade_w, tip_l = _u(rng, 0.9, 1.3), _u(rng, 0.14, 0.22), _u(rng, 0.2, 0.35)
    handle_l, handle_w, thick = _u(rng, 0.5, 0.7), _u(rng, 0.1, 0.14), _u(rng, 0.02, 0.03)
    return [
        Part("blade", extrude([(0, -blade_w / 2), (blade_l, -blade_w / 2), (blade_l, blade_w / 2), (0, blade_w / 2)], thick), ["cut"], (200, 205, 215)),
        Part("tip", extrude([(blade_l, -blade_w / 2), (blade_l + tip_l, -blade_w / 2), (blade_l, blade_w / 2)], thick), ["stab"], (215, 220, 230)),
        Part("handle", box((handle_l, handle_w, thick * 3), (-handle_l / 2, 0, 0)), ["grasp"], (40, 40, 45)),
    ]  # fmt: skip


def scissors(rng) -> list[Part]:
    blade_l, blade_w, tip_l = _u(rng, 0.8, 1.1), _u(rng, 0.08, 0.12), _u(rng, 0.15, 0.25)
    ring_r, spread, thick = _u(rng, 0.16, 0.22), _u(rng, 0.08, 0.2), 0.03
    blades, tips, rings = [], [], []
    for side in (-1, 1):
        angle = side * spread / 2
        blades.append(
            extrude([(0, 0), (blade_l, 0), (blade_l, side * blade_w), (0, side * blade_w)][::side], thick).rotated(
                "z", angle
            )
        )
        tips.append(
            extrude([(blade_l, 0), (blade_l + tip_l, 0), (blade_l, side * blade_w)][::side], thick).rotated("z", angle)
        )
        centre = (-ring_r - 0.1, side * (ring_r + 0.05), 0)
        rings.append(tube(arc(centre, ring_r, 0, 2 * math.pi, 25)[:-1], 0.035, (0, 0, 1), closed=True))
    return [
        Part("blades", merge(blades), ["cut"], (190, 195, 205)),
        Part("tips", merge(tips), ["stab"], (210, 215, 225)),
        Part("handles", merge(rings), ["grasp"], (220, 60, 60)),
    ]  # fmt: skip


def bag(rng) -> list[Part]:
    width, height, depth = _u(rng, 0.9, 1.3), _u(rng, 0.7, 1.0), _u(rng, 0.3, 0.5)
    opening = height * 0.1
    handle_r = width * _u(rng, 0.22, 0.32)
    return [
        Part("body", box((width, height - opening, depth), (0, (height - opening) / 2, 0)), ["contain"], (120, 80, 160)),
        Part("opening", box((width, opening, depth), (0, height - opening / 2, 0)), ["open"], (150, 110, 190)),
        Part("handle", tube(arc((0, height, 0), handle_r, 0, math.pi, 20), 0.03, (0, 0, 1)), ["lift", "grasp"], (60, 40, 80)),
    ]  # fmt: skip


def door(rng) -> list[Part]:
    width, height, thick, frame = _u(rng, 0.8, 1.0), _u(rng, 1.9, 2.2), _u(rng, 0.04, 0.06), 0.08
    knob_y = height * _u(rng, 0.45, 0.52)
    frame_parts = [
        box((frame, height + frame, thick * 2), (-width / 2 - frame / 2, (height + frame) / 2, 0)),
        box((frame, height + frame, thick * 2), (width / 2 + frame / 2, (height + frame) / 2, 0)),
        box((width, frame, thick * 2), (0, height + frame / 2, 0)),
    ]
    handle = merge(
        [box((0.2, 0.04, 0.04), (width / 2 - 0.2, knob_y, side * (thick / 2 + 0.06))) for side in (-1, 1)]
        + [box((0.04, 0.04, thick + 0.12), (width / 2 - 0.12, knob_y, 0))]
    )
    return [
        Part("panel", box((width, height, thick), (0, height / 2, 0)), ["push"], (170, 130, 90)),
        Part("handle", handle, ["open"], (210, 190, 80)),
        Part("frame", merge(frame_parts), [], (120, 90, 60)),
    ]  # fmt: skip


def faucet(rng) -> list[Part]:
    base_r, base_h = _u(rng, 0.12, 0.18), _u(rng, 0.5, 0.8)
    reach = _u(rng, 0.3, 0.5)
    spout_path = np.concatenate(
        [arc((reach / 2, base_h, 0), reach / 2, math.pi, 0, 16)[:-1], [(reach, base_h - 0.15, 0)]]
    )
    lever_l = _u(rng, 0.2, 0.3)
    return [
        Part("base", lathe([(0, 0), (base_r * 1.6, 0), (base_r * 1.6, 0.05), (base_r, 0.05), (base_r, base_h), (0, base_h)]), [], (200, 200, 205)),
        Part("spout", tube(spout_path, base_r * 0.45, (0, 0, 1)), [], (210, 210, 215)),
        Part("lever", box((0.05, 0.05, lever_l), (0, base_h * 0.8, -base_r - lever_l / 2)), ["open", "grasp"], (60, 60, 70)),
    ]  # fmt: skip


def hat(rng) -> list[Part]:
    crown_r, crown_h, brim = _u(rng, 0.35, 0.45), _u(rng, 0.3, 0.6), _u(rng, 0.15, 0.3)
    dome = [(crown_r * math.cos(t), crown_h * math.sin(t)) for t in np.linspace(0, math.pi / 2, 8)]
    return [
        Part("crown", lathe([(crown_r, 0), *dome[1:-1], (0, crown_h)]), ["wear"], (50, 50, 60)),
        Part("brim", lathe([(crown_r, 0), (crown_r + brim, 0), (crown_r + brim, 0.02), (crown_r, 0.02)]), ["grasp"], (80, 80, 95)),
    ]  # fmt: skip


def vase(rng) -> list[Part]:
    base_r, belly, neck, height, wall = (
        _u(rng, 0.2, 0.3),
        _u(rng, 0.35, 0.5),
        _u(rng, 0.12, 0.2),
        _u(rng, 1.0, 1.5),
        0.03,
    )
    outer = [(base_r, 0), (belly, height * 0.4), (neck, height * 0.85), (neck * 1.3, height)]
    inner = [(r - wall, max(y, wall)) for r, y in reversed(outer)]
    return [
        Part("body", lathe([(0, 0), *outer]), ["wrapgrasp"], (200, 120, 160)),
        Part("interior", lathe([outer[-1], *inner, (0, wall)]), ["contain"], (230, 180, 200)),
    ]  # fmt: skip


CATEGORIES: dict[str, Generator] = {
    "Mug": mug,
    "Bottle": bottle,
    "Bowl": bowl,
    "Chair": chair,
    "Table": table,
    "Knife": knife,
    "Scissors": scissors,
    "Bag": bag,
    "Door": door,
    "Faucet": faucet,
    "Hat": hat,
    "Vase": vase,
}


def build_shape(category: str, rng: np.random.Generator) -> tuple[Mesh, list[dict], np.ndarray]:
    """One object: merged mesh, part records (with face ranges) and per-face colours."""
    parts = CATEGORIES[category](rng)
    records, colors, start = [], [], 0
    for part in parts:
        count = len(part.mesh.faces)
        records.append(
            {
                "name": part.name,
                "faces": [start, start + count],
                "color": list(part.color),
                "affordances": part.affordances,
            }
        )
        colors.append(np.tile(np.asarray(part.color, np.uint8), (count, 1)))
        start += count
    return merge([part.mesh for part in parts]), records, np.concatenate(colors)


def _refuse_another_set(out: Path, count: int, seed: int) -> None:
    """Writing into a folder that holds another set would change the meshes its stores were
    imported from; the same command again (same count and seed) rewrites identical files."""
    if not (out / MANIFEST).is_file():
        return
    try:
        manifest = json.loads((out / MANIFEST).read_text())
        existing = (len(manifest["shapes"]), manifest["seed"])
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            f"already holds a {MANIFEST} that is not a synth manifest; choose another folder", out
        ) from None
    if existing != (count, seed):
        raise InputError(
            f"already holds a set of {existing[0]} shapes with seed {existing[1]} (this asks for {count} with seed {seed}); "
            "choose another folder",
            out,
        )


def synthesize(out: str | Path, count: int = 240, seed: int = 0, advance: Callable[[], None] = lambda: None) -> dict:
    """Write ``count`` objects (categories in turn) and the manifest under ``out``."""
    out = Path(out)
    if count < 1:
        raise InputError(f"--n must be at least 1, got {count}")
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder", out)
    _refuse_another_set(out, count, seed)
    make_folder(out / "meshes")
    names = list(CATEGORIES)
    shapes = []
    for index in range(count):
        category = names[index % len(names)]
        rng = np.random.default_rng([seed, index])
        mesh, parts, colors = build_shape(category, rng)
        sample_id = f"{category.lower()}_{index:04d}"
        relative = f"meshes/{sample_id}.ply"
        write_ply(out / relative, mesh.vertices, mesh.faces, colors)
        offered = [a for a in PIAD_AFFORDANCES if any(a in part["affordances"] for part in parts)]
        questions = {a: questions_for(category, a, rng) for a in offered}
        shapes.append({"id": sample_id, "category": category, "mesh": relative, "parts": parts, "questions": questions})
        advance()
    manifest = {"format": SYNTH_FORMAT, "version": 1, "seed": seed, "affordances": PIAD_AFFORDANCES, "shapes": shapes}
    write_text(out / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return {"out": str(out), "shapes": count, "categories": sorted({s["category"] for s in shapes}), "seed": seed}
