"""``afcli lift``: teacher features lifted onto every point of a store's samples, one sample at a
time (read → render → teacher → lift → write → free), so peak memory does not grow with the number
of shapes. A stage of afcli.store.stage: resumable, ``--gpus N`` shards, absorbed after an
interrupted run.

Scene stores (``afcli data import --benchmark scannet``) are lifted from their RGB-D frames instead of
renders (:class:`SceneLiftStage`, afcli.lift.frames): frames stream through the teacher a batch at a
time into a per-point accumulator, so memory follows the scene's points, never its frame count;
visibility is the depth test of OpenScene's fusion (``|d_obs − z| ≤ 0.25 · d_obs``, 10-pixel border).

Features are written uncompressed fp16 to ``/features/<teacher id>`` with a
``/features/<teacher id>_seen`` mask; the stage ``lift-<teacher id>`` makes reruns skip done samples.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import torch

from afcli import __version__
from afcli.errors import InputError
from afcli.lift.core import LiftOptions, lift_features, render_visibility
from afcli.render import Shape, make_rig, render
from afcli.render.stage import RenderSettings, diameter, load_shape, synchronize
from afcli.runtime import check_processes, pick_device, rank_device
from afcli.store.schema import DONE, RAGGED, decode, open_store, read_sample, require_finite, status_path
from afcli.store.stage import run_stage
from afcli.store.writer import StoreWriter

FEATURES_MEANING = "1 = seen by at least one view, 0 = filled from neighbours"


@dataclass
class FrameSettings:
    """How scenes are lifted from their RGB-D frames (OpenScene's fusion by default)."""

    root: str | None = None  # frames at <root>/<scene>/; default: beside the scene's mesh
    step: int = 1  # every step-th frame
    depth_mode: str = "relative"  # relative (OpenScene) or absolute (D3Fields)
    depth_tolerance: float = 0.25  # relative: fraction of the observed depth; absolute: metres
    border: int = 10  # pixels cut at the image border

    def check(self) -> "FrameSettings":
        from afcli.lift.core import DEPTH_MODES

        if self.step < 1 or self.border < 0 or not self.depth_tolerance >= 0:
            raise InputError("--frame-step must be ≥ 1, the border and the depth tolerance ≥ 0")
        if self.depth_mode not in DEPTH_MODES:
            raise InputError(
                f"unknown depth visibility mode {self.depth_mode!r} (choose from {', '.join(DEPTH_MODES)})"
            )
        return self


@dataclass
class LiftSettings:
    teacher: str = "dinov3"
    weights: str | None = None
    offline: bool = False
    blocks: int = 1
    teacher_size: int | None = None
    batch_views: int = 12
    overwrite: bool = False
    device: str = "auto"
    render: RenderSettings = field(default_factory=RenderSettings)
    lift: LiftOptions = field(default_factory=LiftOptions)
    frames: FrameSettings = field(default_factory=FrameSettings)

    def check(self) -> "LiftSettings":
        """Fail on bad names and values before anything is imported, loaded or rendered."""
        from afcli.teachers import parse_teacher

        parse_teacher(self.teacher)
        self.lift.check()
        self.render.check()
        self.frames.check()
        if self.batch_views < 1 or self.blocks < 1:
            raise InputError("--batch-views and --blocks must be positive")
        pick_device(self.device)
        return self


def lift_sample(
    teacher, shape: Shape, points, own_ids, normals, cameras, settings: LiftSettings, clock: dict
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, D) of one sample and its seen mask; adds the time of each phase to ``clock``."""
    start = time.perf_counter()
    views = render(shape, cameras, **settings.render.render_options())
    pixels, z = views.cameras.project(points)
    visible = render_visibility(
        pixels, z, views.index, views.depth, own_ids, settings.lift.tolerance * diameter(points)
    )
    clock["render"] += time.perf_counter() - start
    start = time.perf_counter()
    maps = torch.cat(
        [teacher(views.rgb[i : i + settings.batch_views]) for i in range(0, len(views.rgb), settings.batch_views)]
    )
    synchronize(maps)
    clock["teacher"] += time.perf_counter() - start
    start = time.perf_counter()
    features, seen, _ = lift_features(
        points,
        maps,
        pixels,
        visible,
        (cameras.height, cameras.width),
        settings.lift,
        normals=normals,
        camera_centres=views.cameras.c2w[:, :3, 3],
    )
    synchronize(features)
    clock["lift"] += time.perf_counter() - start
    return features, seen


def feature_attrs(teacher, settings: LiftSettings, scene: bool = False) -> dict:
    """What made a feature array (checked on every later run into it): the teacher, the views
    (renders of a rig, or a scene's frames) and the aggregation."""
    attrs = {key: str(value) for key, value in teacher.provenance().items()}
    if scene:
        frames = settings.frames
        attrs.update(
            views="frames",
            frame_step=frames.step,
            depth_mode=frames.depth_mode,
            depth_tolerance=frames.depth_tolerance,
            border=frames.border,
        )
    else:
        render = settings.render
        attrs.update(
            views=render.views,
            size=render.size,
            rig=render.rig,
            splat_radius=str(render.splat_radius),
            background=render.background,
            light=render.light,
            tolerance=settings.lift.tolerance,
        )
    attrs.update(
        interp=settings.lift.interp,
        normalize_views=settings.lift.normalize_views,
        view_weight=settings.lift.view_weight,
        fill_neighbours=settings.lift.fill_neighbours,
        afcli_version=__version__,
    )
    return attrs


def load_settings_teacher(settings: LiftSettings, device: torch.device | None = None):
    """The teacher checked ``settings`` name, on ``device`` (default: the settings' device) — the CLI
    loads it before any other work so that a missing model fails first."""
    from afcli.teachers import load_teacher

    return load_teacher(
        settings.teacher,
        weights=settings.weights,
        offline=settings.offline,
        blocks=settings.blocks,
        input_size=settings.teacher_size,
        device=device if device is not None else pick_device(settings.device),
    )


class LiftStage:
    """The lift of one teacher: its feature array and seen mask per sample, a clock of the phases
    and the count of points no view saw (per process; the caller sums the ranks')."""

    def __init__(self, settings: LiftSettings, teacher_id: str, dim: int, attrs: dict, teacher=None):
        self.settings, self.teacher_id, self.dim, self.attrs = settings, teacher_id, dim, attrs
        self.name = f"lift-{teacher_id}"
        self.features = f"features/{teacher_id}"
        self.arrays = (self.features, f"{self.features}_seen")
        self.teacher = teacher
        self.clock = {"render": 0.0, "teacher": 0.0, "lift": 0.0}
        self.unseen = 0
        self._cameras = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "teacher": None, "_cameras": None}  # each rank loads its own

    def declare(self, writer: StoreWriter) -> None:
        try:
            writer.ensure_array(self.features, (self.dim,), "f2", attrs=self.attrs, compression=None)
        except InputError as error:
            raise InputError(f"{error} (--overwrite redoes every sample with the new settings)") from None
        writer.ensure_array(f"{self.features}_seen", (), "u1", attrs={"meaning": FEATURES_MEANING})
        writer.ensure_stage(self.name, self.arrays)

    def open(self, device: torch.device) -> None:
        if self.teacher is None:
            self.teacher = load_settings_teacher(self.settings, device)
        render = self.settings.render
        self._cameras = make_rig(render.rig, render.views, render.size)

    def process(self, f: h5py.File, path: Path, row: int, device: torch.device) -> dict[str, np.ndarray]:
        shape, points, normals, own_ids = load_shape(f, path, row, device)
        features, seen = lift_sample(
            self.teacher, shape, points, own_ids, normals, self._cameras, self.settings, self.clock
        )
        self.unseen += int((~seen).sum())
        return {
            self.features: features.half().cpu().numpy(),
            f"{self.features}_seen": seen.cpu().numpy().astype(np.uint8),
        }

    def report(self) -> dict:
        return {"unseen": self.unseen, "clock": dict(self.clock)}


class SceneLiftStage(LiftStage):
    """The lift of a scene from its RGB-D frames (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.clock = {"frames": 0.0, "teacher": 0.0, "lift": 0.0}

    def open(self, device: torch.device) -> None:
        if self.teacher is None:
            self.teacher = load_settings_teacher(self.settings, device)

    def process(self, f: h5py.File, path: Path, row: int, device: torch.device) -> dict[str, np.ndarray]:
        from afcli.lift.core import FeatureAccumulator
        from afcli.lift.frames import frame_visibility, scene_frames

        settings, frames_settings = self.settings, self.settings.frames
        frames = scene_frames(f, path, row, frames_settings.root, frames_settings.step)
        scene = decode(f["samples/id"][row : row + 1])[0]
        points = torch.from_numpy(require_finite(read_sample(f, row, "points/xyz"), "points/xyz", scene, path))
        points = points.float().to(device)
        normals = torch.from_numpy(read_sample(f, row, "points/normal")).float().to(device)
        accumulator = FeatureAccumulator(points, self.dim, settings.lift, normals)
        K = torch.from_numpy(frames.K).to(device)
        for start in range(0, len(frames), settings.batch_views):
            tick = time.perf_counter()
            batch = range(start, min(start + settings.batch_views, len(frames)))
            rgb, depth = zip(*(frames.load(i) for i in batch))
            rgb = torch.from_numpy(np.stack(rgb)).to(device)
            depth = torch.from_numpy(np.stack(depth)).to(device)
            poses = torch.from_numpy(frames.poses[list(batch)]).float().to(device)
            self.clock["frames"] += time.perf_counter() - tick
            tick = time.perf_counter()
            maps = self.teacher(rgb)
            synchronize(maps)
            self.clock["teacher"] += time.perf_counter() - tick
            tick = time.perf_counter()
            pixels, visible, weight = frame_visibility(
                points,
                K,
                poses,
                depth,
                frames_settings.depth_mode,
                frames_settings.depth_tolerance,
                frames_settings.border,
            )
            accumulator.add(
                maps,
                pixels,
                visible,
                tuple(depth.shape[1:]),
                camera_centres=poses[:, :3, 3],
                weights=weight if frames_settings.depth_mode == "absolute" else None,
            )
            synchronize(accumulator.total)
            self.clock["lift"] += time.perf_counter() - tick
        features, seen, _ = accumulator.result()
        self.unseen += int((~seen).sum())
        return {
            self.features: features.half().cpu().numpy(),
            f"{self.features}_seen": seen.cpu().numpy().astype(np.uint8),
        }


def is_scene_store(store: str | Path) -> bool:
    with open_store(store) as f:
        return f.attrs["layout"] == RAGGED and "labels/instance" in f


def lift_store(
    store: str | Path,
    settings: LiftSettings,
    *,
    teacher=None,
    gpus: int = 1,
    advance: Callable[[], None] = lambda: None,
    on_total: Callable[[int], None] = lambda total: None,
) -> dict:
    """Lift ``settings.teacher`` features onto every sample of ``store`` not lifted yet.

    ``gpus > 1`` splits the samples over that many processes (rank ``r`` on ``cuda:r``, or on the
    CPU with ``device="cpu"``), each writing a shard that is merged into ``store`` at the end; an
    interrupted run's shards are merged first when it is run again.
    """
    store = Path(store)
    settings.check()
    check_processes(gpus, settings.device)
    parent_device = pick_device(settings.device) if gpus == 1 else torch.device("cpu")
    if teacher is None:
        teacher = load_settings_teacher(settings, parent_device)
    probe = teacher(
        torch.zeros(1, settings.render.size, settings.render.size, 3, dtype=torch.uint8, device=parent_device)
    )
    scene = is_scene_store(store)
    attrs = feature_attrs(teacher, settings, scene)
    stage = (SceneLiftStage if scene else LiftStage)(settings, teacher.id, int(probe.shape[1]), attrs, teacher)
    if gpus > 1:
        stage.teacher = teacher = None  # the ranks load their own
    result = run_stage(
        store,
        stage,
        device=parent_device,
        gpus=gpus,
        rank_device=lambda rank: rank_device(settings.device, rank),
        overwrite=settings.overwrite,
        advance=advance,
        on_total=on_total,
    )
    reports = result["reports"]
    clock = {key: sum(r["clock"][key] for r in reports) / len(reports) for key in stage.clock}
    clock["write"] = sum(r["write_seconds"] for r in reports) / len(reports)
    with open_store(store) as f:
        done, samples = int((f[status_path(stage.name)][:] == DONE).sum()), int(f["samples/id"].shape[0])
    return {
        "store": str(store),
        "teacher": stage.attrs["teacher"],
        "array": stage.features,
        "dim": stage.dim,
        "grid": list(probe.shape[-2:]),
        "lifted": result["processed"],
        "already_done": result["already_done"],
        "done": done,
        "samples": samples,
        "unseen_points": sum(r["unseen"] for r in reports),
        "seconds": {key: round(value, 3) for key, value in clock.items()},
        "device": str(parent_device) if gpus == 1 else f"{gpus} x {rank_device(settings.device, 0).type}",
        "settings": {k: v for k, v in asdict(settings).items() if k != "weights"} | {"weights": stage.attrs["weights"]},
    }
