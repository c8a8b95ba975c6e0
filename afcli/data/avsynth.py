"""The built-in audio-visual affordance set (``afcli data synth-av``), written in AVAGD's own format
so that the AVAGD reader imports it like the real dataset (../shared/reference/metrics-and-formats.md
§6): ``{train,val,unseen}.csv`` with columns image, pkl, mask_func, mask_dep, audio; per image a JPEG,
``*_Function_mask.png`` and ``*_Dependency_mask.png`` (8-bit, 0/255); sounds as 16 kHz WAV files (the
``pkl`` column stays empty: the reader computes the log-mel).

Images are renders of the built-in shapes from random viewpoints over procedural backgrounds; the
masks are projected from the shapes' part labels through the renderer's face-index maps, by the
table :data:`ACTIONS` of (category, action) → (function parts, dependency parts), each row with its
reason. AVAGD's function region is what moves or acts on the world, its dependency region what
supports it or is held. Each action has a sound kind (:mod:`afcli.data.sounds`): seeded synthetic
variants of it, plus real recordings of the kind from Debian's ``tuxpaint-stamps-default`` when that
package is installed (:data:`REAL_SOUNDS`).

Splits as the paper's (§8.2): seen (category, action) pairs split 80/20 by shape into train and
val; the :data:`UNSEEN` pairs are test only — each an action whose sound kind is seen with other
objects, so a model must transfer the sound to a new object.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import wave
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from afcli.data import sounds
from afcli.data.synth import build_shape
from afcli.errors import InputError
from afcli.files import make_folder, write_text, written

COLUMNS = ("image", "pkl", "mask_func", "mask_dep", "audio")
MANIFEST = "avsynth.json"
TUXPAINT = Path("/usr/share/tuxpaint/stamps")
MIN_FUNCTION_PIXELS = 0.004  # of the image: a view where the function part is hardly seen is drawn again


@dataclass(frozen=True)
class Action:
    category: str
    action: str
    function: tuple[str, ...]
    dependency: tuple[str, ...]
    sound: str
    reason: str


ACTIONS = (
    Action("Knife", "chop", ("blade",), ("handle",), "impact", "the blade meets what is cut; the hand holds the handle"),
    Action("Knife", "stab", ("tip",), ("handle",), "impact", "the tip goes in first; the handle is held"),
    Action("Scissors", "snip", ("blades",), ("handles",), "click", "the blades close on the material; fingers hold the rings"),
    Action("Mug", "pour", ("rim",), ("handle",), "pour", "liquid leaves over the rim; the mug is held by its handle"),
    Action("Bowl", "pour", ("rim",), ("outside",), "pour", "liquid leaves over the rim; hands hold the outside"),
    Action("Vase", "fill", ("interior",), ("body",), "pour", "water lands inside; the body stands and holds it"),
    Action("Bottle", "pour", ("neck",), ("body",), "pour", "liquid runs out through the neck; the body is held"),
    Action("Bottle", "open", ("cap",), ("neck",), "click", "the cap turns and clicks off; the neck is held still"),
    Action("Chair", "sit", ("seat",), ("legs",), "creak", "the seat takes the weight; the legs carry it to the floor"),
    Action("Chair", "drag", ("legs",), ("back",), "scrape", "the legs scrape the floor; the back is pulled"),
    Action("Table", "drag", ("legs",), ("top",), "scrape", "the legs scrape the floor; the top is held"),
    Action("Table", "knock", ("top",), (), "impact", "knuckles strike the top; nothing is held (an empty dependency, as AVAGD has)"),
    Action("Door", "knock", ("panel",), (), "impact", "knuckles strike the panel; nothing is held"),
    Action("Door", "open", ("panel",), ("handle",), "creak", "the panel swings on its hinges; the handle is held"),
    Action("Faucet", "turn on", ("lever",), ("base",), "flow", "the lever moves and water runs; the base holds it to the sink"),
)  # fmt: skip
UNSEEN = frozenset({("Bottle", "pour"), ("Door", "knock"), ("Table", "drag")})

# Real recordings in tuxpaint-stamps-default, by the sound kind they are of (what the object is doing).
REAL_SOUNDS = {
    "impact": ("household/tools/hammer.ogg", "household/tools/mallet_metal.ogg", "household/dishes/bottle.ogg"),
    "scrape": ("household/tools/saw.ogg",),
    "click": ("household/arttools/scissors_small_open.ogg", "household/arttools/scissors_small_closed.ogg"),
    "pour": ("household/dishes/glass.ogg", "household/kettle.ogg"),
    "flow": ("household/toilet.ogg",),
}


def real_recordings(root: Path = TUXPAINT) -> dict[str, list[Path]]:
    """The real recordings present under ``root``, by sound kind (none when the package is absent)."""
    return {kind: [root / name for name in names if (root / name).is_file()] for kind, names in REAL_SOUNDS.items()}


def synthesize_av(
    out: str | Path,
    shapes: int = 6,
    views: int = 3,
    size: int = 256,
    clips: int = 4,
    pairs: int = 2,
    seed: int = 0,
    real_root: Path = TUXPAINT,
    advance: Callable[[], None] = lambda: None,
) -> dict:
    """Write the set under ``out``: ``shapes`` objects per action, ``views`` renders of each, ``clips``
    synthetic sounds per action, each image paired with ``pairs`` sounds of its action."""
    out = Path(out)
    for name, value in (("shapes", shapes), ("views", views), ("clips", clips), ("pairs", pairs)):
        if value < 1:
            raise InputError(f"--{name} must be at least 1, got {value}")
    if size < 32:
        raise InputError(f"--size must be at least 32 pixels, got {size}")
    asked = {"shapes": shapes, "views": views, "size": size, "clips": clips, "pairs": pairs, "seed": seed}
    _refuse_another_set(out, asked)
    recordings = real_recordings(real_root)
    rows: dict[str, list[dict]] = {"train": [], "val": [], "unseen": []}
    for index, action in enumerate(ACTIONS):
        rng = np.random.default_rng([seed, index])
        folder = f"{action.category.lower()}/{action.action.replace(' ', '_')}"
        pool = [
            _write_sound(out, f"audio/{folder}/synth_{c}.wav", action.sound, [seed, index, c], rng)
            for c in range(clips)
        ]
        pool += [_copy_recording(out, path, action.sound) for path in recordings.get(action.sound, [])]
        for shape in range(shapes):
            split = "unseen" if (action.category, action.action) in UNSEEN else ("val" if shape % 5 == 4 else "train")
            for image in _render_views(
                out, folder, action, shape, views, size, np.random.default_rng([seed, index, shape])
            ):
                for clip in rng.choice(len(pool), size=min(pairs, len(pool)), replace=False):
                    rows[split].append({**image, "pkl": "", "audio": pool[clip]})
            advance()
    for split, split_rows in rows.items():
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(split_rows)
        write_text(out / f"{split}.csv", buffer.getvalue())
    real = sum(len(paths) for paths in recordings.values())
    manifest = {
        "format": "afcli-avsynth",
        "version": 1,
        "settings": asked,
        "actions": [asdict(a) | {"unseen": (a.category, a.action) in UNSEEN} for a in ACTIONS],
        "real_recordings": real,
    }
    write_text(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return {"out": str(out), "pairs": {split: len(r) for split, r in rows.items()}, "real_recordings": real}


def _refuse_another_set(out: Path, asked: dict) -> None:
    """Writing into a folder that holds another set would mix two sets in its csv files and stores;
    the same command again rewrites identical files."""
    if not (out / MANIFEST).is_file():
        return
    try:
        existing = json.loads((out / MANIFEST).read_text())["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            f"already holds a {MANIFEST} that is not an audio-visual set; choose another folder", out
        ) from None
    if existing != asked:
        raise InputError(
            f"already holds a set made with {existing} (this asks for {asked}); choose another folder", out
        )


def _render_views(out: Path, folder: str, action: Action, shape: int, views: int, size: int, rng) -> list[dict]:
    """``views`` renders of one object with their masks written; the image paths, relative to ``out``."""
    import torch
    from PIL import Image

    from afcli.render import Shape, render
    from afcli.render.cameras import orbit

    mesh, parts, colors = build_shape(action.category, rng)
    names = {part["name"] for part in parts}
    missing = [name for name in (*action.function, *action.dependency) if name not in names]
    if missing:
        raise RuntimeError(f"{action.category} has no part {missing[0]!r} (parts: {', '.join(sorted(names))})")
    vertices = mesh.vertices - (mesh.vertices.max(0) + mesh.vertices.min(0)) / 2
    vertices = vertices / np.linalg.norm(vertices, axis=1).max()
    mask_of = {
        task: _face_mask(parts, len(mesh.faces), names)
        for task, names in (("function", action.function), ("dependency", action.dependency))
    }
    solid = Shape(
        torch.from_numpy(vertices).float(),
        torch.from_numpy(mesh.faces).long(),
        torch.from_numpy(colors / 255.0).float(),
    )
    written_images = []
    for view in range(views):
        for _ in range(8):  # a viewpoint from which the function part shows
            angle = (float(rng.uniform(0, 360)), float(rng.uniform(-10, 50)))
            light = (float(rng.uniform(-1, 1)), float(rng.uniform(-1, -0.2)), -1.0)
            rendered = render(solid, orbit([angle], size), light=light)
            index = rendered.index[0].numpy()
            function = np.where(index >= 0, mask_of["function"][index], False)
            if function.mean() >= MIN_FUNCTION_PIXELS:
                break
        dependency = np.where(index >= 0, mask_of["dependency"][index], False)
        rgb = np.where((index >= 0)[..., None], rendered.rgb[0].numpy(), _background(rng, size))
        stem = f"images/{folder}/{action.category.lower()}_{shape:03d}_v{view}"
        _save(out / f"{stem}.jpg", Image.fromarray(rgb.astype(np.uint8)), "JPEG", quality=92)
        _save(out / f"{stem}_Function_mask.png", Image.fromarray((function * 255).astype(np.uint8), "L"), "PNG")
        _save(out / f"{stem}_Dependency_mask.png", Image.fromarray((dependency * 255).astype(np.uint8), "L"), "PNG")
        written_images.append(
            {
                "image": f"{stem}.jpg",
                "mask_func": f"{stem}_Function_mask.png",
                "mask_dep": f"{stem}_Dependency_mask.png",
            }
        )
    return written_images


def _face_mask(parts: list[dict], faces: int, names: tuple[str, ...]) -> np.ndarray:
    mask = np.zeros(faces, bool)
    for part in parts:
        if part["name"] in names:
            mask[part["faces"][0] : part["faces"][1]] = True
    return mask


def _background(rng, size: int) -> np.ndarray:
    """A vertical gradient between two random colours with mild noise: not a colour a part has."""
    top, bottom = rng.uniform(40, 230, 3), rng.uniform(40, 230, 3)
    ramp = np.linspace(0, 1, size)[:, None, None]
    image = top * (1 - ramp) + bottom * ramp + rng.normal(0, 6, (size, size, 3))
    return np.broadcast_to(image, (size, size, 3)).clip(0, 255)


def _save(path: Path, image, fmt: str, **options) -> None:
    make_folder(path.parent)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    with written(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def _write_sound(out: Path, relative: str, kind: str, seed: list[int], rng) -> str:
    samples = sounds.synthesize(
        kind, int(np.random.default_rng(seed).integers(1 << 31)), seconds=float(rng.uniform(1.0, 3.0))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sounds.RATE)
        handle.writeframes((samples * 32767).round().astype("<i2").tobytes())
    make_folder((out / relative).parent)
    with written(out / relative) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return relative


def _copy_recording(out: Path, path: Path, kind: str) -> str:
    relative = f"audio/real/{kind}/{path.parent.name}_{path.name}"
    if not (out / relative).is_file():
        make_folder((out / relative).parent)
        with written(out / relative) as tmp:
            shutil.copyfile(path, tmp)
    return relative
