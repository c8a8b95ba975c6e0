"""``afcli render``: the imported samples of a store drawn from a rig of cameras — kept as
``/views/<rig>/…`` (``--keep-views``, a resumable stage of afcli.store.stage), or only looked at
(``--preview``: a contact sheet of the first few).

Meshes are re-read from their source file (``/samples/source``, relative to the store's folder) and
put through the sample's stored normalisation; each point's face id (``/points/face``) makes
visibility exact. Point clouds (PIAD, LASO, any sample without a face id) are splatted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import torch

from afcli.errors import InputError
from afcli.lift.core import LiftOptions, render_visibility
from afcli.render import Shape, make_rig, render
from afcli.runtime import pick_device
from afcli.store.schema import decode, read_sample, require_finite
from afcli.store.stage import run_stage
from afcli.store.writer import StoreWriter

# name → (shape after (views,) with S the image side, dtype) of the arrays --keep-views writes
VIEW_ARRAYS = {
    "rgb": (("S", "S", 3), "u1"),
    "depth": (("S", "S"), "f4"),
    "index": (("S", "S"), "i4"),
    "K": ((3, 3), "f4"),
    "c2w": ((4, 4), "f4"),
}


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


def synchronize(tensor: torch.Tensor) -> None:
    if tensor.device.type == "cuda":
        torch.cuda.synchronize(tensor.device)


class RenderStage:
    """Render each sample; with ``keep`` its views are the stage's arrays, and the first
    ``preview_count`` renders are kept for a contact sheet."""

    def __init__(self, settings: RenderSettings, keep: bool, preview_count: int):
        self.settings, self.keep, self.preview_count = settings, keep, preview_count
        self.group = f"views/{settings.rig}"
        self.name = f"render-{settings.rig}" if keep else None
        self.arrays = tuple(f"{self.group}/{name}" for name in VIEW_ARRAYS) if keep else ()
        self.cameras = make_rig(settings.rig, settings.views, settings.size)
        self.sheet, self.seconds, self.visible, self.backends = [], 0.0, [], set()

    def declare(self, writer: StoreWriter) -> None:
        if not self.keep:
            return
        V, S = self.settings.views, self.settings.size
        attrs = {
            "views": V,
            "size": S,
            "rig": self.settings.rig,
            "splat_radius": str(self.settings.splat_radius),
            "background": self.settings.background,
            "light": self.settings.light,
            "convention": "OpenCV: x right, y down, z forward; depth along the optical axis, 0 = background; index "
            "-1 = background",
        }
        for name, (tail, dtype) in VIEW_ARRAYS.items():
            shape = (V, *(S if axis == "S" else axis for axis in tail))
            writer.ensure_array(f"{self.group}/{name}", shape, dtype, per_point=False, attrs=attrs)
        writer.ensure_stage(self.name, self.arrays)

    def open(self, device: torch.device) -> None:
        pass  # nothing to load: the renderers are stateless

    def process(self, f: h5py.File, path: Path, row: int, device: torch.device) -> dict[str, np.ndarray]:
        shape, points, _, own_ids = load_shape(f, path, row, device)
        start = time.perf_counter()
        views = render(shape, self.cameras, **self.settings.render_options())
        synchronize(views.depth)
        self.seconds += time.perf_counter() - start
        self.backends.add(views.backend)
        pixels, z = views.cameras.project(points)
        visible = render_visibility(
            pixels, z, views.index, views.depth, own_ids, LiftOptions().tolerance * diameter(points)
        )
        self.visible.append(float(visible.any(0).float().mean()))
        if len(self.sheet) < self.preview_count:
            self.sheet.append((decode([f["samples/id"][row]])[0], views))
        if not self.keep:
            return {}
        kept = {
            "rgb": views.rgb,
            "depth": views.depth,
            "index": views.index.int(),
            "K": views.cameras.K,
            "c2w": views.cameras.c2w,
        }
        return {f"{self.group}/{name}": value.cpu().numpy() for name, value in kept.items()}

    def report(self) -> dict:
        return {"rendered": len(self.visible)}


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
    stage = RenderStage(settings, keep_views, preview_count if preview is not None else 0)
    run_stage(
        store,
        stage,
        device=device,
        limit=None if keep_views or preview is None else preview_count,
        advance=advance,
        on_total=on_total,
    )
    if preview is not None:
        from afcli.render.preview import contact_sheet

        contact_sheet(stage.sheet, preview)
    count, V = len(stage.visible), settings.views
    return {
        "store": str(store),
        "rendered": count,
        "views": V,
        "size": settings.size,
        "rig": settings.rig,
        "backend": ",".join(sorted(stage.backends)) or settings.backend,
        "views_per_second": round(count * V / stage.seconds, 1) if stage.seconds else None,
        "points_seen": round(float(np.mean(stage.visible)), 4) if count else None,
        "kept": f"/{stage.group}" if keep_views else None,
        "preview": str(preview) if preview is not None else None,
    }
