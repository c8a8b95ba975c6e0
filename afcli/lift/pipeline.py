"""``afcli render`` and ``afcli lift`` over a store: stream samples, render, run the teacher, lift, write.

One sample at a time (read → render → teacher → lift → write → free), so peak memory does not grow
with the number of shapes. Meshes are re-read from their source file (``/samples/source``,
relative to the store's folder) and put through the sample's stored normalisation; each point's
face id (``/points/face``) makes visibility exact. Point clouds (PIAD, LASO, any sample without a
face id) are splatted. Features are written uncompressed fp16 to ``/features/<teacher id>`` with a
``/features/<teacher id>_seen`` mask; the stage ``lift-<teacher id>`` makes reruns skip done samples.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from afcli import __version__
from afcli.errors import InputError
from afcli.lift.core import LiftOptions, lift_features, render_visibility
from afcli.render import Shape, Views, make_rig, render
from afcli.store.schema import DONE, decode, status_path
from afcli.store.writer import StoreWriter

STORE_NAME = "store.h5"


@dataclass
class RenderSettings:
    views: int = 12
    size: int = 224
    rig: str = "sphere"
    backend: str = "auto"
    splat_radius: float | None = None

    def check(self) -> "RenderSettings":
        from afcli.render import BACKENDS
        from afcli.render.cameras import rig_angles

        rig_angles(self.rig, self.views)
        if self.backend not in BACKENDS:
            raise InputError(f"unknown render backend {self.backend!r} (choose from {', '.join(BACKENDS)})")
        if self.size < 8:
            raise InputError(f"--size must be at least 8 pixels, got {self.size}")
        if self.splat_radius is not None and not self.splat_radius >= 0:
            raise InputError(f"--splat-radius must be ≥ 0, got {self.splat_radius}")
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

    def check(self) -> "LiftSettings":
        """Fail on bad names and values before anything is imported, loaded or rendered."""
        from afcli.teachers import parse_teacher

        parse_teacher(self.teacher)
        self.lift.check()
        self.render.check()
        if self.batch_views < 1 or self.blocks < 1:
            raise InputError("--batch-views and --blocks must be positive")
        pick_device(self.device)
        return self


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise InputError(f"unknown device {device!r} (auto, cpu, cuda, cuda:1 …)") from None


def resolve_store(target: str | Path, store: str | Path | None, advance=lambda: None, on_total=lambda n: None) -> tuple[Path, dict | None]:
    """A store file as given, or a folder of shapes: import what is new into ``store`` (default
    ``<folder>/store.h5``) and return it with the import's report."""
    target = Path(target)
    if not target.exists():
        raise InputError("no such file or folder", target)
    if target.is_file() and target.suffix == ".h5":
        return target, None
    from afcli.data.importer import import_shapes

    store = Path(store) if store is not None else (target / STORE_NAME if target.is_dir() else target.with_suffix(".h5"))
    return store, import_shapes(target, store, advance=advance, on_total=on_total)


def load_shape(writer: StoreWriter, row: int, device: torch.device) -> tuple[Shape, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The shape to render for ``row``, its points and normals, and each point's own id in the
    render's index map."""
    from afcli.data.readers import read_geometry

    points = torch.from_numpy(np.asarray(writer.read(row, "points/xyz"), np.float32)).to(device)
    normals = torch.from_numpy(np.asarray(writer.read(row, "points/normal"), np.float32)).to(device)
    face = np.asarray(writer.read(row, "points/face")) if "points/face" in writer.f else None
    if face is None or (face < 0).all():
        cloud = Shape(points, normals=normals)
        return cloud, points, normals, torch.arange(points.shape[0], device=device)
    source = writer.path.resolve().parent / decode([writer.f["samples/source"][row]])[0]
    geometry = read_geometry(source)
    if geometry.faces is None or face.max() >= len(geometry.faces):
        raise InputError("source mesh no longer matches the imported sample (re-import it)", source)
    transform = writer.f["samples/transform"][row].astype(np.float64)
    vertices = (geometry.vertices - transform[:3]) / transform[3]

    def tensor(array, dtype=torch.float32):
        return None if array is None else torch.as_tensor(np.asarray(array), dtype=dtype, device=device)

    mesh = Shape(tensor(vertices), tensor(geometry.faces, torch.long), tensor(geometry.face_colors), tensor(geometry.vertex_colors))
    return mesh, points, normals, torch.from_numpy(face.astype(np.int64)).to(device)


def diameter(points: torch.Tensor) -> float:
    """Length of the bounding-box diagonal: the object size visibility tolerances are relative to."""
    return float((points.amax(0) - points.amin(0)).norm())


def lift_sample(teacher, shape: Shape, points, own_ids, normals, cameras, settings: LiftSettings, clock: dict) -> tuple[torch.Tensor, torch.Tensor, Views]:
    start = time.perf_counter()
    views = render(shape, cameras, backend=settings.render.backend, splat_radius=settings.render.splat_radius)
    pixels, z = views.cameras.project(points)
    visible = render_visibility(pixels, z, views.index, views.depth, own_ids, settings.lift.tolerance * diameter(points))
    clock["render"] += time.perf_counter() - start
    start = time.perf_counter()
    maps = torch.cat([teacher(views.rgb[i : i + settings.batch_views]) for i in range(0, len(views.rgb), settings.batch_views)])
    _sync(maps)
    clock["teacher"] += time.perf_counter() - start
    start = time.perf_counter()
    features, seen, _ = lift_features(
        points, maps, pixels, visible, (cameras.height, cameras.width), settings.lift,
        normals=normals, camera_centres=views.cameras.c2w[:, :3, 3],
    )
    _sync(features)
    clock["lift"] += time.perf_counter() - start
    return features, seen, views


def _sync(tensor: torch.Tensor) -> None:
    if tensor.device.type == "cuda":
        torch.cuda.synchronize(tensor.device)


def feature_attrs(teacher, settings: LiftSettings) -> dict:
    attrs = {key: str(value) for key, value in teacher.provenance().items()}
    attrs.update(
        views=settings.render.views, size=settings.render.size, rig=settings.render.rig,
        splat_radius=str(settings.render.splat_radius), interp=settings.lift.interp,
        normalize_views=settings.lift.normalize_views, view_weight=settings.lift.view_weight,
        tolerance=settings.lift.tolerance, fill_neighbours=settings.lift.fill_neighbours,
        afcli_version=__version__,
    )
    return attrs


def load_settings_teacher(settings: LiftSettings):
    """The teacher ``settings`` name, on its device — loaded before any other work so that a
    missing model fails first."""
    from afcli.teachers import load_teacher

    return load_teacher(
        settings.teacher, weights=settings.weights, offline=settings.offline, blocks=settings.blocks,
        input_size=settings.teacher_size, device=pick_device(settings.check().device),
    )


def lift_store(
    store: str | Path,
    settings: LiftSettings,
    *,
    teacher=None,
    advance: Callable[[], None] = lambda: None,
    on_total: Callable[[int], None] = lambda total: None,
) -> dict:
    """Lift ``settings.teacher`` features onto every sample of ``store`` not lifted yet."""
    device = pick_device(settings.check().device)
    teacher = teacher if teacher is not None else load_settings_teacher(settings)
    cameras = make_rig(settings.render.rig, settings.render.views, settings.render.size)
    probe = teacher(torch.zeros(1, settings.render.size, settings.render.size, 3, dtype=torch.uint8, device=device))
    name, stage = f"features/{teacher.id}", f"lift-{teacher.id}"
    clock = {"render": 0.0, "teacher": 0.0, "lift": 0.0, "write": 0.0}
    with StoreWriter(store) as writer:
        if settings.overwrite:
            for old in (name, f"{name}_seen", status_path(stage)):
                if old in writer.f:
                    del writer.f[old]
        try:
            writer.ensure_array(name, (probe.shape[1],), "f2", attrs=feature_attrs(teacher, settings), compression=None)
        except InputError as error:
            raise InputError(f"{error} (--overwrite redoes every sample with the new settings)") from None
        writer.ensure_array(f"{name}_seen", (), "u1", attrs={"meaning": "1 = seen by at least one view, 0 = filled from neighbours"})
        writer.ensure_stage(stage)
        writer.begin()
        imported = set(np.flatnonzero(writer.status("import") == DONE).tolist())
        todo = [row for row in writer.pending(stage) if row in imported]
        on_total(len(todo))
        unseen = 0
        for row in todo:
            shape, points, normals, own_ids = load_shape(writer, row, device)
            features, seen, _ = lift_sample(teacher, shape, points, own_ids, normals, cameras, settings, clock)
            start = time.perf_counter()
            writer.write(row, {name: features.half().cpu().numpy(), f"{name}_seen": seen.cpu().numpy().astype(np.uint8)})
            writer.mark(stage, row, DONE)
            clock["write"] += time.perf_counter() - start
            unseen += int((~seen).sum())
            advance()
        done = int((writer.status(stage) == DONE).sum())
        return {
            "store": str(store),
            "teacher": teacher.name,
            "array": name,
            "dim": int(probe.shape[1]),
            "grid": list(probe.shape[-2:]),
            "lifted": len(todo),
            "already_done": len(imported) - len(todo),
            "done": done,
            "samples": writer.num_samples,
            "unseen_points": unseen,
            "seconds": {key: round(value, 3) for key, value in clock.items()},
            "device": str(device),
            "settings": {k: v for k, v in asdict(settings).items() if k != "weights"} | {"weights": teacher.weights},
        }


def render_store(
    store: str | Path,
    settings: RenderSettings,
    *,
    keep_views: bool = False,
    preview: str | Path | None = None,
    preview_count: int = 4,
    device: str = "auto",
    advance: Callable[[], None] = lambda: None,
    on_total: Callable[[int], None] = lambda total: None,
) -> dict:
    """Render every imported sample; ``keep_views`` writes ``/views/<rig>/…``, ``preview`` a contact sheet."""
    device = pick_device(device)
    settings.check()
    cameras = make_rig(settings.rig, settings.views, settings.size)
    V, S = settings.views, settings.size
    group, stage = f"views/{settings.rig}", f"render-{settings.rig}"
    attrs = {"views": V, "size": S, "rig": settings.rig, "splat_radius": str(settings.splat_radius),
             "convention": "OpenCV: x right, y down, z forward; depth along the optical axis, 0 = background; index -1 = background"}
    sheet_rows, timing, visible_fraction, backends = [], 0.0, [], set()
    with StoreWriter(store) as writer:
        if keep_views:
            for name, tail, dtype in (("rgb", (V, S, S, 3), "u1"), ("depth", (V, S, S), "f4"), ("index", (V, S, S), "i4"),
                                      ("K", (V, 3, 3), "f4"), ("c2w", (V, 4, 4), "f4")):
                writer.ensure_array(f"{group}/{name}", tail, dtype, per_point=False, attrs=attrs)
            writer.ensure_stage(stage)
        writer.begin()
        rows = np.flatnonzero(writer.status("import") == DONE).tolist()
        todo = [row for row in writer.pending(stage) if row in set(rows)] if keep_views else rows
        wanted = len(todo) if keep_views or preview is None else min(len(todo), preview_count)
        todo = todo[:wanted]
        on_total(len(todo))
        for row in todo:
            shape, points, _, own_ids = load_shape(writer, row, device)
            start = time.perf_counter()
            views = render(shape, cameras, backend=settings.backend, splat_radius=settings.splat_radius)
            _sync(views.depth)
            timing += time.perf_counter() - start
            backends.add(views.backend)
            pixels, z = views.cameras.project(points)
            visible = render_visibility(pixels, z, views.index, views.depth, own_ids, 0.01 * diameter(points))
            visible_fraction.append(float(visible.any(0).float().mean()))
            if keep_views:
                writer.write(row, {f"{group}/rgb": views.rgb.cpu().numpy(), f"{group}/depth": views.depth.cpu().numpy(),
                                   f"{group}/index": views.index.int().cpu().numpy(), f"{group}/K": views.cameras.K.cpu().numpy(),
                                   f"{group}/c2w": views.cameras.c2w.cpu().numpy()})
                writer.mark(stage, row, DONE)
            if preview is not None and len(sheet_rows) < preview_count:
                sheet_rows.append((decode([writer.f["samples/id"][row]])[0], views))
            advance()
    if preview is not None:
        from afcli.render.preview import contact_sheet

        contact_sheet(sheet_rows, preview)
    count = len(visible_fraction)
    return {
        "store": str(store),
        "rendered": count,
        "views": V,
        "size": S,
        "rig": settings.rig,
        "backend": ",".join(sorted(backends)) or settings.backend,
        "views_per_second": round(count * V / timing, 1) if timing else None,
        "points_seen": round(float(np.mean(visible_fraction)), 4) if count else None,
        "kept": f"/{group}" if keep_views else None,
        "preview": str(preview) if preview is not None else None,
    }
