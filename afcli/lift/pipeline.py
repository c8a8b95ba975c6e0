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

import h5py
import numpy as np
import torch

from afcli import __version__
from afcli.engine.distributed import check_processes, pick_device
from afcli.errors import AfcliError, InputError, RunError
from afcli.lift.core import LiftOptions, lift_features, render_visibility
from afcli.render import Shape, make_rig, render
from afcli.store.schema import DONE, RAGGED, decode, open_store, read_sample, require_finite, status_path
from afcli.store.writer import StoreWriter, abandoned_writes, shard_path

STORE_NAME = "store.h5"


@dataclass
class RenderSettings:
    views: int = 12
    size: int = 224
    rig: str = "sphere"
    backend: str = "auto"
    splat_radius: float | None = None
    background: int = 255  # grey level of empty pixels
    light: str = "-0.4,-0.6,-1"  # direction towards the light in camera coordinates (x right, y down, z forward)

    def light_direction(self) -> tuple[float, float, float]:
        try:
            x, y, z = (float(part) for part in self.light.split(","))
        except ValueError:
            raise InputError(
                f"--light {self.light!r}: expected X,Y,Z (camera coordinates), e.g. -0.4,-0.6,-1"
            ) from None
        if x == y == z == 0:
            raise InputError("--light must not be 0,0,0")
        return x, y, z

    def render_options(self) -> dict:
        """Keyword arguments of :func:`afcli.render.render`."""
        return {
            "backend": self.backend,
            "splat_radius": self.splat_radius,
            "light": self.light_direction(),
            "background": (self.background,) * 3,
        }

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
        if not 0 <= self.background <= 255:
            raise InputError(f"--background must be a grey level 0..255, got {self.background}")
        self.light_direction()
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


def resolve_store(
    target: str | Path, store: str | Path | None, advance=lambda: None, on_total=lambda n: None
) -> tuple[Path, dict | None]:
    """A store file as given, or a folder of shapes: import what is new into ``store`` (default
    ``<folder>/store.h5``) and return it with the import's report."""
    target = Path(target)
    if not target.exists():
        raise InputError("no such file or folder", target)
    if target.is_file() and target.suffix == ".h5":
        return target, None
    from afcli.data.importer import import_shapes

    store = (
        Path(store) if store is not None else (target / STORE_NAME if target.is_dir() else target.with_suffix(".h5"))
    )
    return store, import_shapes(target, store, advance=advance, on_total=on_total)


def load_shape(
    f: h5py.File, path: Path, row: int, device: torch.device
) -> tuple[Shape, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The shape to render for ``row`` of the store ``f`` (at ``path``), its points and normals,
    and each point's own id in the render's index map."""
    from afcli.data.readers import read_geometry

    sample = decode([f["samples/id"][row]])[0]
    points, normals = (
        torch.from_numpy(require_finite(np.asarray(read_sample(f, row, name), np.float32), name, sample, path)).to(
            device
        )
        for name in ("points/xyz", "points/normal")
    )
    face = np.asarray(read_sample(f, row, "points/face")) if "points/face" in f else None
    if face is None or (face < 0).all():
        cloud = Shape(points, normals=normals)
        return cloud, points, normals, torch.arange(points.shape[0], device=device)
    source = Path(path).resolve().parent / decode([f["samples/source"][row]])[0]
    geometry = read_geometry(source)
    if geometry.faces is None or face.max() >= len(geometry.faces):
        raise InputError("source mesh no longer matches the imported sample (re-import it)", source)
    transform = f["samples/transform"][row].astype(np.float64)
    vertices = (geometry.vertices - transform[:3]) / transform[3]

    def tensor(array, dtype=torch.float32):
        return None if array is None else torch.as_tensor(np.asarray(array), dtype=dtype, device=device)

    mesh = Shape(
        tensor(vertices),
        tensor(geometry.faces, torch.long),
        tensor(geometry.face_colors),
        tensor(geometry.vertex_colors),
    )
    return mesh, points, normals, torch.from_numpy(face.astype(np.int64)).to(device)


def diameter(points: torch.Tensor) -> float:
    """Length of the bounding-box diagonal: the object size visibility tolerances are relative to."""
    return float((points.amax(0) - points.amin(0)).norm())


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
    _sync(maps)
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
    _sync(features)
    clock["lift"] += time.perf_counter() - start
    return features, seen


def _sync(tensor: torch.Tensor) -> None:
    if tensor.device.type == "cuda":
        torch.cuda.synchronize(tensor.device)


def feature_attrs(teacher, settings: LiftSettings) -> dict:
    attrs = {key: str(value) for key, value in teacher.provenance().items()}
    attrs.update(
        views=settings.render.views,
        size=settings.render.size,
        rig=settings.render.rig,
        splat_radius=str(settings.render.splat_radius),
        background=settings.render.background,
        light=settings.render.light,
        interp=settings.lift.interp,
        normalize_views=settings.lift.normalize_views,
        view_weight=settings.lift.view_weight,
        tolerance=settings.lift.tolerance,
        fill_neighbours=settings.lift.fill_neighbours,
        afcli_version=__version__,
    )
    return attrs


def load_settings_teacher(settings: LiftSettings, device: torch.device | None = None):
    """The teacher ``settings`` name, on ``device`` (default: the settings' device) — the CLI loads
    it before any other work so that a missing model fails first."""
    from afcli.teachers import load_teacher

    return load_teacher(
        settings.teacher,
        weights=settings.weights,
        offline=settings.offline,
        blocks=settings.blocks,
        input_size=settings.teacher_size,
        device=device if device is not None else pick_device(settings.check().device),
    )


FEATURES_MEANING = "1 = seen by at least one view, 0 = filled from neighbours"


@dataclass
class _Job:
    """What every process of one lift needs: where features go and how they are made."""

    settings: LiftSettings
    teacher_id: str
    dim: int
    attrs: dict

    @property
    def name(self) -> str:
        return f"features/{self.teacher_id}"

    @property
    def stage(self) -> str:
        return f"lift-{self.teacher_id}"


def _prepare(writer: StoreWriter, job: _Job, overwrite: bool = False) -> None:
    if overwrite:
        for old in (job.name, f"{job.name}_seen", status_path(job.stage)):
            if old in writer.f:
                del writer.f[old]
    try:
        writer.ensure_array(job.name, (job.dim,), "f2", attrs=job.attrs, compression=None)
    except InputError as error:
        raise InputError(f"{error} (--overwrite redoes every sample with the new settings)") from None
    writer.ensure_array(f"{job.name}_seen", (), "u1", attrs={"meaning": FEATURES_MEANING})
    writer.ensure_stage(job.stage, (job.name, f"{job.name}_seen"))


def _lift_rows(
    source: h5py.File, source_path: Path, writer: StoreWriter, pairs, teacher, job: _Job, device, clock, advance
) -> int:
    """Lift samples ``source_row`` of the store ``source`` into ``dest_row`` of ``writer``, one at a
    time, committing each; returns the number of points no view saw."""
    cameras = make_rig(job.settings.render.rig, job.settings.render.views, job.settings.render.size)
    unseen = 0
    for source_row, dest_row in pairs:
        shape, points, normals, own_ids = load_shape(source, source_path, source_row, device)
        features, seen = lift_sample(teacher, shape, points, own_ids, normals, cameras, job.settings, clock)
        start = time.perf_counter()
        offsets = writer.f["points/offsets"] if writer.layout == RAGGED else None
        if offsets is not None and int(offsets[dest_row + 1]) - int(offsets[dest_row]) != len(points):
            writer.append_points(dest_row, len(points))  # a fresh shard row gets its point range
        writer.write(
            dest_row, {job.name: features.half().cpu().numpy(), f"{job.name}_seen": seen.cpu().numpy().astype(np.uint8)}
        )
        writer.mark(job.stage, dest_row, DONE)
        clock["write"] += time.perf_counter() - start
        unseen += int((~seen).sum())
        advance()
    return unseen


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
    job = _Job(settings, teacher.id, int(probe.shape[1]), feature_attrs(teacher, settings))
    clock = {"render": 0.0, "teacher": 0.0, "lift": 0.0, "write": 0.0}
    with StoreWriter(store) as writer:
        _prepare(writer, job, settings.overwrite)
        if settings.overwrite:
            for old in _lift_shards(store, job.teacher_id):
                _remove(old)
        writer.begin()
        merged = _absorb_shards(writer, job)
        imported = set(np.flatnonzero(writer.status("import") == DONE).tolist())
        todo = [row for row in writer.pending(job.stage) if row in imported]
        on_total(len(todo) + merged)
        for _ in range(merged):
            advance()
        if gpus == 1:
            unseen = _lift_rows(
                writer.f, writer.path, writer, [(row, row) for row in todo], teacher, job, parent_device, clock, advance
            )
    if gpus > 1:
        del teacher
        unseen = _run_ranks(store, job, todo, gpus, clock, advance)
        with StoreWriter(store) as writer:
            writer.begin()
            _absorb_shards(writer, job)
    with open_store(store) as f:
        done, samples = int((f[status_path(job.stage)][:] == DONE).sum()), int(f["samples/id"].shape[0])
    return {
        "store": str(store),
        "teacher": job.attrs["teacher"],
        "array": job.name,
        "dim": job.dim,
        "grid": list(probe.shape[-2:]),
        "lifted": len(todo) + merged,
        "already_done": len(imported) - len(todo),
        "done": done,
        "samples": samples,
        "unseen_points": unseen,
        "seconds": {key: round(value, 3) for key, value in clock.items()},
        "device": str(parent_device) if gpus == 1 else f"{gpus} x {_rank_device(settings, 0).type}",
        "settings": {k: v for k, v in asdict(settings).items() if k != "weights"} | {"weights": job.attrs["weights"]},
    }


# -- several processes ----------------------------------------------------------------------------


def _rank_device(settings: LiftSettings, rank: int) -> torch.device:
    return torch.device("cpu") if settings.device == "cpu" else torch.device(f"cuda:{rank}")


def _lift_shards(store: Path, teacher_id: str) -> list[Path]:
    return sorted(store.parent.glob(f"{store.stem}.lift-{teacher_id}-*-of-*.h5"))


def _remove(shard: Path) -> None:
    shard.unlink(missing_ok=True)


def _absorb_shards(writer: StoreWriter, job: _Job) -> int:
    """Copy the samples finished in this teacher's shards into the main store; delete the shards."""
    index = {sample_id: row for row, sample_id in enumerate(writer.ids())}
    merged = 0
    for shard in _lift_shards(writer.path, job.teacher_id):
        with open_store(shard) as part:
            if status_path(job.stage) not in part:
                continue
            ids = decode(part["samples/id"][:])
            for row in np.flatnonzero(part[status_path(job.stage)][:] == DONE):
                target = index[ids[row]]
                if writer.status(job.stage)[target] == DONE:
                    continue
                writer.write(
                    target, {name: read_sample(part, int(row), name) for name in (job.name, f"{job.name}_seen")}
                )
                writer.mark(job.stage, target, DONE)
                merged += 1
        _remove(shard)
    return merged


def _run_ranks(store: Path, job: _Job, rows: list[int], gpus: int, clock: dict, advance) -> int:
    import multiprocessing as mp
    import queue as queues

    context = mp.get_context("spawn")
    messages = context.Queue()
    workers = [
        context.Process(target=_rank_main, args=(rank, gpus, store, job, rows[rank::gpus], messages), daemon=True)
        for rank in range(gpus)
    ]
    for worker in workers:
        worker.start()
    finished, unseen = set(), 0
    try:
        while len(finished) < gpus:
            try:
                kind, rank, *payload = messages.get(timeout=1.0)
            except queues.Empty:
                dead = [r for r, w in enumerate(workers) if r not in finished and not w.is_alive()]
                if dead:
                    raise RunError(
                        f"lift rank {dead[0]} died (exit code {workers[dead[0]].exitcode}); run again to resume"
                    ) from None
                continue
            if kind == "sample":
                advance()
            elif kind == "finished":
                finished.add(rank)
                unseen += payload[0]
                for key, value in payload[1].items():
                    clock[key] += value / gpus
            else:
                message, code = payload
                raise (InputError if code == 2 else RunError)(f"rank {rank}: {message}")
    finally:
        for worker in workers:
            if worker.is_alive() and len(finished) < gpus:
                worker.terminate()
            worker.join()
    return unseen


def _rank_main(rank: int, world: int, store: Path, job: _Job, rows: list[int], messages) -> None:
    """One process of a ``--gpus N`` lift: its samples into its own shard of the store."""
    import os

    try:
        device = _rank_device(job.settings, rank)
        if device.type == "cpu":
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
        else:
            torch.cuda.set_device(device)
        teacher = load_settings_teacher(job.settings, device)
        clock = {"render": 0.0, "teacher": 0.0, "lift": 0.0, "write": 0.0}
        shard = shard_path(store.with_name(f"{store.stem}.lift-{job.teacher_id}.h5"), rank, world)
        with open_store(store) as source:
            layout = str(source.attrs["layout"])
            with StoreWriter(shard, create=True, layout=layout, num_points=int(source.attrs["num_points"])) as writer:
                _prepare(writer, job)
                writer.begin()
                ids = decode(source["samples/id"][:])
                shard_rows = writer.add_samples([ids[r] for r in rows], ["" for _ in rows])
                pending = set(writer.pending(job.stage, shard_rows))
                pairs = [
                    (source_row, shard_row) for source_row, shard_row in zip(rows, shard_rows) if shard_row in pending
                ]
                unseen = _lift_rows(
                    source, store, writer, pairs, teacher, job, device, clock, lambda: messages.put(("sample", rank))
                )
        messages.put(("finished", rank, unseen, clock))
    except AfcliError as error:
        messages.put(("error", rank, str(error), error.exit_code))
        if abandoned_writes():  # see StoreWriter.__exit__: deliver the message, then skip HDF5's shutdown
            messages.close()
            messages.join_thread()
            os._exit(error.exit_code)
    except Exception as error:  # report anything else as one line; the parent stops every rank
        messages.put(("error", rank, f"{type(error).__name__}: {error}", 1))


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
    attrs = {
        "views": V,
        "size": S,
        "rig": settings.rig,
        "splat_radius": str(settings.splat_radius),
        "background": settings.background,
        "light": settings.light,
        "convention": "OpenCV: x right, y down, z forward; depth along the optical axis, 0 = background; index "
        "-1 = background",
    }
    sheet_rows, timing, visible_fraction, backends = [], 0.0, [], set()
    with StoreWriter(store) as writer:
        if keep_views:
            for name, tail, dtype in (
                ("rgb", (V, S, S, 3), "u1"),
                ("depth", (V, S, S), "f4"),
                ("index", (V, S, S), "i4"),
                ("K", (V, 3, 3), "f4"),
                ("c2w", (V, 4, 4), "f4"),
            ):
                writer.ensure_array(f"{group}/{name}", tail, dtype, per_point=False, attrs=attrs)
            writer.ensure_stage(stage, [f"{group}/{name}" for name in ("rgb", "depth", "index", "K", "c2w")])
        writer.begin()
        rows = np.flatnonzero(writer.status("import") == DONE).tolist()
        imported = set(rows)
        todo = [row for row in writer.pending(stage) if row in imported] if keep_views else rows
        wanted = len(todo) if keep_views or preview is None else min(len(todo), preview_count)
        todo = todo[:wanted]
        on_total(len(todo))
        for row in todo:
            shape, points, _, own_ids = load_shape(writer.f, writer.path, row, device)
            start = time.perf_counter()
            views = render(shape, cameras, **settings.render_options())
            _sync(views.depth)
            timing += time.perf_counter() - start
            backends.add(views.backend)
            pixels, z = views.cameras.project(points)
            visible = render_visibility(
                pixels, z, views.index, views.depth, own_ids, LiftOptions().tolerance * diameter(points)
            )
            visible_fraction.append(float(visible.any(0).float().mean()))
            if keep_views:
                writer.write(
                    row,
                    {
                        f"{group}/rgb": views.rgb.cpu().numpy(),
                        f"{group}/depth": views.depth.cpu().numpy(),
                        f"{group}/index": views.index.int().cpu().numpy(),
                        f"{group}/K": views.cameras.K.cpu().numpy(),
                        f"{group}/c2w": views.cameras.c2w.cpu().numpy(),
                    },
                )
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
