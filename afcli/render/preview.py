"""Contact sheet of renders for a person to look at: per sample one row of RGB views, one of depth
(near = bright) and one of the index map (each face / point id its own colour)."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from afcli.errors import InputError

THUMB = 112
LABEL = 16


def _depth_image(depth: torch.Tensor) -> np.ndarray:
    hit = depth > 0
    image = torch.zeros_like(depth)
    if hit.any():
        near, far = depth[hit].min(), depth[hit].max()
        image[hit] = 1 - 0.8 * (depth[hit] - near) / (far - near).clamp(min=1e-6)
    return (image * 255).round().byte().unsqueeze(-1).expand(*depth.shape, 3).cpu().numpy()


def _index_image(index: torch.Tensor) -> np.ndarray:
    ids = index.long().clamp(min=0)
    hashed = (ids * 2654435761) & 0xFFFFFF
    colours = torch.stack([(hashed >> 16) & 255, (hashed >> 8) & 255, hashed & 255], -1)
    colours = torch.where((index < 0).unsqueeze(-1), torch.zeros_like(colours), colours // 2 + 64)
    return colours.byte().cpu().numpy()


def contact_sheet(rows: list, path: str | Path) -> Path:
    """Write a PNG of ``rows`` = [(sample id, Views)] to ``path``."""
    from PIL import Image, ImageDraw

    path = Path(path)
    if not rows:
        raise InputError("nothing to preview (no imported samples)", path)
    views = rows[0][1].rgb.shape[0]
    sheet = Image.new("RGB", (views * THUMB, len(rows) * (3 * THUMB + LABEL)), (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    for r, (sample_id, rendered) in enumerate(rows):
        top = r * (3 * THUMB + LABEL)
        draw.text((4, top + 1), sample_id, fill=(230, 230, 230), font=label_font())
        for v in range(views):
            for k, image in enumerate(
                (rendered.rgb[v].cpu().numpy(), _depth_image(rendered.depth[v]), _index_image(rendered.index[v]))
            ):
                thumb = Image.fromarray(image).resize((THUMB, THUMB), Image.NEAREST if k == 2 else Image.BILINEAR)
                sheet.paste(thumb, (v * THUMB, top + LABEL + k * THUMB))
    return _save(sheet, path)


def _save(sheet, path: Path) -> Path:
    from afcli.files import written

    path = Path(path)
    with written(path, suffix=path.suffix) as tmp:
        try:
            sheet.save(tmp)
        except ValueError as error:  # an extension Pillow cannot write
            raise InputError(f"cannot write image ({error})", path) from None
    return path


def heat_colours(heat: np.ndarray) -> np.ndarray:
    """Grey where a heat map is 0, red where it is 1 (linear in between)."""
    heat = np.clip(np.asarray(heat, np.float32), 0, 1)[:, None]
    return np.array([0.75, 0.75, 0.75], np.float32) * (1 - heat) + np.array([0.9, 0.1, 0.1], np.float32) * heat


def render_heat(
    points: np.ndarray, normals: np.ndarray, heat: np.ndarray, size: int = 224, views: tuple[int, ...] = (1,)
) -> list[np.ndarray]:
    """A point cloud splatted from ring-rig views (a three-quarter view first), coloured by ``heat``."""
    from afcli.render import Shape, make_rig, render

    shape = Shape(
        torch.from_numpy(np.asarray(points, np.float32)),
        normals=torch.from_numpy(np.asarray(normals, np.float32)),
        vertex_colors=torch.from_numpy(heat_colours(heat)),
    )
    rgb = render(shape, make_rig("ring", 8, size), backend="torch").rgb
    return [rgb[v].numpy() for v in views]


@lru_cache(maxsize=None)
def label_font(size: int = 12):
    """A real TrueType font for captions, so that spaces and punctuation read as typed: DejaVu Sans
    from the system or from matplotlib's data, else Pillow's own scalable font, else its bitmap one."""
    from PIL import ImageFont

    candidates = ["DejaVuSans.ttf"]
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.submodule_search_locations:
        candidates.append(
            str(Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf")
        )
    for candidate in candidates:
        try:
            return ImageFont.truetype(candidate, size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def heat_gallery(rows: list[tuple[str, list[np.ndarray]]], columns: list[str], path: str | Path) -> Path:
    """A PNG with one row per (title, images) — e.g. predicted and ground-truth heat maps side by side."""
    from PIL import Image, ImageDraw

    path = Path(path)
    thumb = 160
    sheet = Image.new("RGB", (len(columns) * thumb, LABEL + len(rows) * (thumb + LABEL)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(columns):
        draw.text((c * thumb + 4, 1), name, fill=(0, 0, 0), font=label_font())
    for r, (title, images) in enumerate(rows):
        top = LABEL + r * (thumb + LABEL)
        draw.text((4, top + 1), title, fill=(0, 0, 0), font=label_font())
        for c, image in enumerate(images):
            sheet.paste(Image.fromarray(image).resize((thumb, thumb), Image.BILINEAR), (c * thumb, top + LABEL))
    return _save(sheet, path)
