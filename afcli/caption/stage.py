"""``afcli caption``: per-instance captions and referrals of every scene in a store, with their noun
phrases and sentence embeddings, into the store's text table (afcli.store.texts).

Per scene: each instance (``/labels/instance``) becomes an object named by the majority of its points'
ScanNet200 labels (ScanNet20 where the store has no ScanNet200 labels), boxed by its points and
coloured by :func:`~afcli.caption.referrals.colour_name` over its vertex colours; the scene graph
(afcli.caption.graph) relates them; every object gets a template caption and up to ``referrals``
referrals unique in its room (afcli.caption.referrals). Noun phrases come from spaCy or the rules
(afcli.caption.phrases); every text is embedded by each encoder (``minilm-l6`` offline, ``clip[:arch]``).
Resumable: the ``caption`` stage marks scenes done once their texts are in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from afcli.caption.graph import SceneObject, build_graph
from afcli.caption.phrases import noun_phrases, resolve_chunker
from afcli.caption.referrals import caption, colour_name, referrals
from afcli.errors import InputError
from afcli.store.schema import DONE, RAGGED, decode, read_sample, status_path
from afcli.store.texts import PREFIX, TextRow, add_texts, ensure_texts
from afcli.store.writer import StoreWriter

STAGE = "caption"
TEMPLATE = "template"


@dataclass
class CaptionSettings:
    encoders: list[str] = field(default_factory=lambda: ["minilm-l6"])
    phrases: str = "auto"  # auto, spacy or rules
    referrals: int = 3
    weights: str | None = None  # for a single encoder: its folder
    offline: bool = False
    captioner: str | None = None  # blip, git, a hub id or a folder: captions of each instance's best views
    captioner_weights: str | None = None
    views: int = 1  # best views captioned per instance
    frames_root: str | None = None  # frames at <root>/<scene>/; default: beside the scene's mesh
    device: str = "auto"
    texts: list[str] = field(default_factory=list)  # SceneVerse-format text files to add (afcli.caption.imported)

    def check(self) -> "CaptionSettings":
        if self.referrals < 0 or self.views < 1:
            raise InputError(
                f"--referrals must be 0 or more and --views at least 1, got {self.referrals}, {self.views}"
            )
        if not self.encoders:
            raise InputError("give at least one --encoder")
        if self.weights is not None and len(self.encoders) != 1:
            raise InputError("--weights names one encoder's folder: give exactly one --encoder")
        self.phrases = resolve_chunker(self.phrases)
        return self


def scene_objects(f, row: int, palette: dict) -> list[SceneObject]:
    """The instances of one scene as named, boxed and coloured objects."""
    instance = read_sample(f, row, "labels/instance").astype(np.int64)
    labels, names = None, None
    for array in ("labels/semantic200", "labels/semantic20"):
        if array in f:
            values = read_sample(f, row, array).astype(np.int64)
            if (values >= 0).any():
                labels, names = values, decode(f[array].attrs["classes"])
                break
    xyz = read_sample(f, row, "points/xyz")
    rgb = read_sample(f, row, "points/rgb") if "points/rgb" in f else np.full((len(xyz), 3), 128, np.uint8)
    objects = []
    for ident in np.unique(instance[instance >= 0]).tolist():
        members = instance == ident
        label = "object"
        if labels is not None:
            known = labels[members][labels[members] >= 0]
            if len(known):
                label = names[int(np.bincount(known).argmax())]
        points = xyz[members]
        objects.append(SceneObject(int(ident), label, points.min(0), points.max(0), colour_name(rgb[members], palette)))
    return objects


def scene_texts(objects: list[SceneObject], sample: int, scene: str, settings: CaptionSettings) -> list[TextRow]:
    graph = build_graph(objects)
    rows = []
    for o in objects:
        rows.append(TextRow(f"{scene}:{TEMPLATE}:caption:{o.id}", sample, "caption", o.id, caption(graph, o.id)))
        for n, referral in enumerate(referrals(graph, o.id, settings.referrals)):
            rows.append(
                TextRow(
                    f"{scene}:{TEMPLATE}:referral:{o.id}:{n}",
                    sample,
                    "referral",
                    o.id,
                    referral.text,
                    referral.relation,
                    list(referral.anchor_ids),
                )
            )
    return rows


def with_phrases(rows: list[TextRow], objects: list[SceneObject], chunker: str) -> list[TextRow]:
    """Each text's noun phrases (the rule chunker knows the scene's object names and colours)."""
    names, colours = {o.label for o in objects}, {o.colour for o in objects if o.colour}
    for row, phrases in zip(rows, noun_phrases([r.text for r in rows], chunker, names, colours)):
        row.phrases = phrases
    return rows


def view_captions(captioner, f, row: int, path: Path, settings: CaptionSettings) -> list[TextRow]:
    """Captions of each instance's best views by an image captioner (afcli.caption.captioners)."""
    from afcli.caption.captioners import best_crops
    from afcli.lift.frames import scene_frames

    scene = decode(f["samples/id"][row : row + 1])[0]
    frames = scene_frames(f, path, row, settings.frames_root)
    instance = read_sample(f, row, "labels/instance").astype(np.int64)
    crops = best_crops(frames, read_sample(f, row, "points/xyz"), instance, views=settings.views)
    keys = [(ident, n) for ident, images in sorted(crops.items()) for n in range(len(images))]
    texts = captioner([crops[ident][n] for ident, n in keys]) if keys else []
    return [
        TextRow(f"{scene}:{captioner.name}:caption:{ident}:{n}", row, "caption", ident, text, source=captioner.name)
        for (ident, n), text in zip(keys, texts)
        if text  # a captioner that says nothing writes no row
    ]


def _encoder_name(encoder: str) -> str:
    return encoder.replace("/", "_").replace(":", "_")


def caption_store(
    store: str | Path,
    settings: CaptionSettings,
    *,
    overwrite: bool = False,
    advance: Callable[[], None] = lambda: None,
    on_total: Callable[[int], None] = lambda total: None,
) -> dict:
    """Caption every imported scene of ``store`` not captioned yet (and add the texts of
    ``settings.texts`` that name it)."""
    from afcli.caption.imported import read_scene_texts
    from afcli.data.furniture import COLOURS
    from afcli.prompts import sentence_embeddings

    settings.check()
    store = Path(store)

    def embed(texts: list[str]) -> dict[str, np.ndarray]:
        return {
            _encoder_name(e): sentence_embeddings(e, texts, settings.weights, settings.offline).cpu().numpy()
            for e in settings.encoders
        }

    from_files = read_scene_texts(settings.texts)
    captioner = None
    if settings.captioner:
        from afcli.caption.captioners import load_captioner
        from afcli.runtime import pick_device

        device = pick_device(settings.device)
        captioner = load_captioner(settings.captioner, settings.captioner_weights, settings.offline, device)
    start = time.perf_counter()
    probe = embed(["a chair"])
    clock = {"encoders": time.perf_counter() - start, "texts": 0.0, "embed": 0.0}
    dims = {
        name: (vectors.shape[1], {"encoder": encoder})
        for (name, vectors), encoder in zip(probe.items(), settings.encoders)
    }
    counts = {"caption": 0, "referral": 0, "imported": 0}
    with StoreWriter(store) as writer:
        if writer.layout != RAGGED or "labels/instance" not in writer.f:
            raise InputError("not a scene store (import scenes with afcli data import --benchmark scannet)", store)
        if overwrite:
            for name in [n for n in writer.f if n == PREFIX[:-1]] + [status_path(STAGE)]:
                if name in writer.f:
                    del writer.f[name]
        writer.ensure_table(lambda f: ensure_texts(f, dims))
        writer.ensure_stage(STAGE)
        writer.begin()
        scenes = set(np.flatnonzero(writer.status("import") == DONE).tolist())
        todo = [row for row in writer.pending(STAGE) if row in scenes]
        ids = writer.ids()
        on_total(len(todo))
        for row in todo:
            tick = time.perf_counter()
            objects = scene_objects(writer.f, row, COLOURS)
            rows = scene_texts(objects, row, ids[row], settings)
            clock["texts"] += time.perf_counter() - tick
            if captioner is not None:
                tick = time.perf_counter()
                rows += view_captions(captioner, writer.f, row, store, settings)
                clock["captioner"] = clock.get("captioner", 0.0) + time.perf_counter() - tick
            given = [
                TextRow(f"{ids[row]}:{t.source}:{t.kind}:{t.key}", row, t.kind, t.target, t.text, source=t.source)
                for t in from_files.get(ids[row], [])
            ]
            rows = with_phrases(rows + given, objects, settings.phrases)
            counts["imported"] += len(given)
            tick = time.perf_counter()
            vectors = embed([r.text for r in rows]) if rows else {n: np.zeros((0, d)) for n, (d, _) in dims.items()}
            clock["embed"] += time.perf_counter() - tick
            writer.add_rows(lambda f, new: add_texts(f, new, vectors), rows)
            writer.mark(STAGE, row, DONE)
            for r in rows:
                counts[r.kind] += 1
            advance()
        done = int((writer.status(STAGE) == DONE).sum())
    return {
        "store": str(store),
        "captioned": len(todo),
        "already_done": len(scenes) - len(todo),
        "done": done,
        "captions": counts["caption"],
        "referrals": counts["referral"],
        "imported_texts": counts["imported"],
        "phrases": settings.phrases,
        "encoders": settings.encoders,
        "captioner": captioner.weights if captioner is not None else None,
        "seconds": {k: round(v, 3) for k, v in clock.items()},
    }
