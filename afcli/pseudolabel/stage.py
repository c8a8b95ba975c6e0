"""``afcli pseudolabel``: functional-part pseudo-labels for every sample with kept renders, as a
resumable stage of the shared runner (afcli.store.stage).

Per sample: the taxonomy's functional parts of its category are asked for in each view of the rig
(a detector, or the *oracle*: boxes around the true parts with controlled noise, so the chain runs
offline — its outputs say ``oracle`` wherever they are named); the boxes vote onto the visible points
and become per-view masks by the released rules (afcli.pseudolabel.voting). Written per function (a
function served by several parts of a category is the union of their heat):

- ``/labels/<name>`` (S, N, F) f32: each point's heat per function, attrs ``channels`` (the functions),
  the labeller and its provenance, the taxonomy and the rule;
- ``/views/<rig>/<name>`` (S, V, F, H, ⌈W/8⌉) u8: the part masks, bits packed along the row.

Where the store has true parts (``/labels/part``), the pseudo-labels' IoU against them is measured
per function, on the points (heat > 0.5) and on the masks.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import torch

from afcli.data.taxonomy import Taxonomy, load_taxonomy
from afcli.errors import InputError
from afcli.pseudolabel.voting import oracle_boxes, pack, part_mask, project_points, vote
from afcli.runtime import pick_device, rank_device
from afcli.store.schema import decode, read_sample
from afcli.store.stage import run_stage
from afcli.store.writer import StoreWriter

ORACLE = "oracle"


@dataclass
class PseudolabelSettings:
    detector: str = ORACLE  # oracle, owlv2, grounding-dino, a hub id or a local folder
    weights: str | None = None
    offline: bool = False
    taxonomy: str = "builtin"
    rig: str = "sphere"
    name: str | None = None  # /labels/<name>; default: the detector's name
    noise: float = 0.2  # oracle only: box jitter (fraction of the box side) and false-box probability
    boxes: int = 4  # boxes per part and view: the code's n_trials samples of CogVLM
    min_boxes: int = 3  # views with fewer boxes do not vote (the code skips views with ≤ 2)
    score_threshold: float = 0.0  # detector boxes scored below are dropped
    seed: int = 0
    device: str = "auto"

    @property
    def label_name(self) -> str:
        return self.name or Path(self.detector).name  # oracle, owlv2, a hub id's or a folder's last part

    def check(self) -> "PseudolabelSettings":
        if not 0 <= self.noise <= 1:
            raise InputError(f"--noise must be in [0, 1], got {self.noise}")
        if self.boxes < 1 or self.min_boxes < 1:
            raise InputError("--boxes and --min-boxes must be positive")
        if self.name is not None and (not self.name or "/" in self.name):
            raise InputError(f"--name must be one word, got {self.name!r}")
        pick_device(self.device)
        return self


class PseudolabelStage:
    def __init__(self, settings: PseudolabelSettings, taxonomy: Taxonomy, views: int, size: int, provenance: dict):
        self.settings, self.taxonomy, self.views, self.size = settings, taxonomy, views, size
        self.functions = taxonomy.functions
        self.name = f"pseudolabel-{settings.label_name}"
        self.labels = f"labels/{settings.label_name}"
        self.masks = f"views/{settings.rig}/{settings.label_name}"
        self.arrays = (self.labels, self.masks)
        self.attrs = {
            "channels": json.dumps(self.functions),
            "labeller": settings.detector,
            "oracle": settings.detector == ORACLE,
            "taxonomy": taxonomy.source,
            "rig": settings.rig,
            "rule": "box votes on visible points, min-max per part; masks: visible points' heat filled by a distance "
            "transform, blur, Otsu, closing (afcli.pseudolabel.voting)",
            "settings": json.dumps({k: v for k, v in asdict(settings).items() if k not in ("device", "offline")}),
            **provenance,
        }
        self.detector = None
        self.seconds = {"detect": 0.0, "label": 0.0}
        self.quality: dict[str, list[float]] = {f: [0.0, 0.0, 0.0, 0.0] for f in self.functions}
        self.labelled = 0

    def __getstate__(self) -> dict:
        return {**self.__dict__, "detector": None}  # each rank loads its own

    def declare(self, writer: StoreWriter) -> None:
        F, V, S = len(self.functions), self.views, self.size
        writer.ensure_array(self.labels, (F,), "f4", attrs=self.attrs)
        writer.ensure_array(self.masks, (V, F, S, (S + 7) // 8), "u1", per_point=False, attrs=self.attrs)
        writer.ensure_stage(self.name, self.arrays)

    def open(self, device: torch.device) -> None:
        if self.settings.detector != ORACLE and self.detector is None:
            from afcli.detectors import Detector

            s = self.settings
            self.detector = Detector(s.detector, weights=s.weights, offline=s.offline, device=device)

    def process(self, f: h5py.File, path: Path, row: int, device: torch.device) -> dict[str, np.ndarray]:
        group = f"views/{self.settings.rig}"
        view = {
            k: torch.from_numpy(np.asarray(f[f"{group}/{k}"][row])).to(device) for k in ("depth", "index", "K", "c2w")
        }
        points = torch.from_numpy(np.asarray(read_sample(f, row, "points/xyz"), np.float32)).to(device)
        category = decode([f["samples/category"][row]])[0]
        sample_id = decode([f["samples/id"][row]])[0]
        heat = np.zeros((len(points), len(self.functions)), np.float32)
        masks = np.zeros((self.views, len(self.functions), self.size, self.size), bool)
        parts = self.taxonomy.parts_of(category)
        if not parts:
            return self._arrays(heat, masks)
        started = time.perf_counter()
        object_mask = view["index"] >= 0
        face = read_sample(f, row, "points/face") if "points/face" in f else None
        pixels, visible, nearest = project_points(points, face, view)
        truth = self._true_parts(f, row, parts)
        self.seconds["label"] += time.perf_counter() - started
        boxes = self._boxes(f, row, sample_id, parts, truth, nearest, object_mask, device)
        started = time.perf_counter()
        part_heat = {part.name: vote(pixels, visible, boxes[part.name], self.settings.min_boxes) for part in parts}
        on_object = nearest >= 0
        for channel, function in enumerate(self.functions):
            serving = [p.name for p in parts if function in p.functions]
            if not serving:
                continue
            point_heat = torch.stack([part_heat[name] for name in serving]).amax(0)
            heat[:, channel] = point_heat.cpu().numpy()
            pixel_heat = torch.where(on_object, point_heat[nearest.clamp(min=0)], torch.zeros((), device=device))
            for v in range(self.views):
                masks[v, channel] = part_mask(pixel_heat[v], object_mask[v]).cpu().numpy()
            if truth is not None:
                true_points = torch.stack([truth[name] for name in serving]).any(0)
                true_pixels = on_object & true_points[nearest.clamp(min=0)]
                predicted = torch.from_numpy(masks[:, channel]).to(device)
                q = self.quality[function]
                q[0] += float((true_points & (point_heat > 0.5)).sum())
                q[1] += float((true_points | (point_heat > 0.5)).sum())
                q[2] += float((true_pixels & predicted).sum())
                q[3] += float((true_pixels | predicted).sum())
        self.seconds["label"] += time.perf_counter() - started
        self.labelled += 1
        return self._arrays(heat, masks)

    def _arrays(self, heat: np.ndarray, masks: np.ndarray) -> dict[str, np.ndarray]:
        return {self.labels: heat, self.masks: pack(masks)}

    def _true_parts(self, f: h5py.File, row: int, parts) -> dict[str, torch.Tensor] | None:
        """Each functional part's true points (N,), where the store has part labels."""
        if "labels/part" not in f or "text/parts" not in f:
            return None
        labels = torch.from_numpy(np.asarray(read_sample(f, row, "labels/part"), np.int64))
        names = [p.get("name", "") for p in json.loads(decode([f["text/parts"][row]])[0] or "[]")]
        if not names:
            return None
        return {
            part.name: torch.isin(labels, torch.tensor([i for i, n in enumerate(names) if n == part.name] or [-2]))
            for part in parts
        }

    def _boxes(self, f, row, sample_id, parts, truth, nearest, object_mask, device) -> dict[str, list[torch.Tensor]]:
        """Per part, per view: the boxes that vote (B, 4)."""
        s = self.settings
        started = time.perf_counter()
        boxes: dict[str, list[torch.Tensor]] = {part.name: [] for part in parts}
        if self.detector is None:
            if truth is None:
                raise InputError(
                    f"{sample_id}: the oracle needs true parts (/labels/part), which this store lacks", f.filename
                )
            import zlib

            rng = np.random.default_rng([s.seed, zlib.crc32(sample_id.encode())])
            for part in parts:
                true_pixels = (nearest >= 0) & truth[part.name].to(nearest.device)[nearest.clamp(min=0)]
                for v in range(self.views):
                    boxes[part.name].append(
                        oracle_boxes(true_pixels[v].cpu(), object_mask[v].cpu(), rng, s.noise, s.boxes)
                    )
        else:
            rgb = np.asarray(f[f"views/{s.rig}/rgb"][row])
            prompts = [part.description for part in parts]
            for v in range(self.views):
                for part, found in zip(parts, self.detector.detect(rgb[v], prompts, s.boxes)):
                    boxes[part.name].append(found.boxes[found.scores >= s.score_threshold])
        self.seconds["detect"] += time.perf_counter() - started
        return boxes

    def report(self) -> dict:
        return {"labelled": self.labelled, "seconds": dict(self.seconds), "quality": self.quality}


def _views_of(store: Path, rig: str) -> tuple[int, int]:
    from afcli.store import open_store

    with open_store(store) as f:
        if f"views/{rig}/index" not in f:
            raise InputError(
                f"no kept renders /views/{rig}: run `afcli render {store} --keep-views --rig {rig}` first", store
            )
        shape = f[f"views/{rig}/index"].shape
    return int(shape[1]), int(shape[2])


def pseudolabel_store(
    store: str | Path,
    settings: PseudolabelSettings,
    *,
    gpus: int = 1,
    overwrite: bool = False,
    advance: Callable[[], None] = lambda: None,
    on_total: Callable[[int], None] = lambda total: None,
) -> dict:
    """Label every sample of ``store`` not labelled yet; returns counts, timings and the IoU against
    true parts where the store has them."""
    from afcli.runtime import check_processes

    store = Path(store)
    settings.check()
    check_processes(gpus, settings.device)
    taxonomy = load_taxonomy(settings.taxonomy)
    views, size = _views_of(store, settings.rig)
    device = pick_device(settings.device) if gpus == 1 else torch.device("cpu")
    provenance = {}
    detector = None
    if settings.detector != ORACLE:
        from afcli.detectors import Detector

        detector = Detector(settings.detector, weights=settings.weights, offline=settings.offline, device=device)
        provenance = detector.provenance()  # a missing model fails before any work
    stage = PseudolabelStage(settings, taxonomy, views, size, provenance)
    stage.detector = detector if gpus == 1 else None
    result = run_stage(
        store,
        stage,
        device=device,
        gpus=gpus,
        rank_device=lambda rank: rank_device(settings.device, rank),
        overwrite=overwrite,
        advance=advance,
        on_total=on_total,
    )
    reports = result["reports"]
    seconds = {key: round(sum(r["seconds"][key] for r in reports), 3) for key in ("detect", "label")}
    quality = {}
    for function in taxonomy.functions:
        sums = np.sum([r["quality"][function] for r in reports], 0)
        if sums[1] > 0:
            quality[function] = {
                "points_iou": round(float(100 * sums[0] / sums[1]), 2),
                "masks_iou": round(float(100 * sums[2] / max(sums[3], 1)), 2),
            }
    return {
        "store": str(store),
        "labels": f"/{stage.labels}",
        "masks": f"/{stage.masks}",
        "labeller": settings.detector + (f" (noise {settings.noise})" if settings.detector == ORACLE else ""),
        "functions": taxonomy.functions,
        "labelled": sum(r["labelled"] for r in reports),
        "processed": result["processed"],
        "already_done": result["already_done"],
        "seconds": seconds,
        "overhead": round(seconds["label"] / seconds["detect"], 4)
        if settings.detector != ORACLE and seconds["detect"]
        else None,
        "iou": quality,
    }
