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


def topdown_figure(
    xyz: np.ndarray,
    instance: np.ndarray,
    labels: dict[int, str],
    path: str | Path,
    title: str = "",
    pixels_per_metre: int = 100,
    point_size: float = 0.14,
    muted: set[int] = frozenset(),
) -> Path:
    """A room seen from above, each instance in its own colour, ``muted`` ones (walls, floor) light
    grey; ``labels`` (instance → text) are written at their instances' centres. Points are squares of
    ``point_size`` metres (mesh vertices are sparse on flat faces), higher ones over lower ones."""
    from PIL import Image, ImageDraw

    low, high = xyz[:, :2].min(0), xyz[:, :2].max(0)
    width, height = ((high - low) * pixels_per_metre).astype(int) + 1
    canvas = np.full((height + LABEL, width, 3), 255, np.uint8)
    rng = np.random.default_rng(0)
    palette = rng.integers(40, 230, (int(instance.max(initial=0)) + 2, 3)).astype(np.uint8)
    order = np.argsort(xyz[:, 2])  # higher points drawn last
    col = ((xyz[order, 0] - low[0]) * pixels_per_metre).astype(int)
    row = LABEL + height - 1 - ((xyz[order, 1] - low[1]) * pixels_per_metre).astype(int)
    palette[[i + 1 for i in muted if i + 1 < len(palette)]] = 225
    colours = np.where(instance[order, None] >= 0, palette[instance[order] + 1], 200)
    reach = max(1, int(point_size * pixels_per_metre / 2))
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            canvas[np.clip(row + dy, LABEL, height + LABEL - 1), np.clip(col + dx, 0, width - 1)] = colours
    sheet = Image.fromarray(canvas)
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 1), title, fill=(0, 0, 0), font=label_font())
    font = label_font(11)
    for ident, text in sorted(labels.items()):
        members = instance == ident
        if not members.any():
            continue
        x, y = xyz[members, :2].mean(0)
        u, v = (x - low[0]) * pixels_per_metre, LABEL + height - 1 - (y - low[1]) * pixels_per_metre
        box = draw.textbbox((u, v), text, font=font, anchor="mm")
        u += max(0, 2 - box[0]) - max(0, box[2] - width + 2)  # keep the caption inside the picture
        box = draw.textbbox((u, v), text, font=font, anchor="mm")
        draw.rectangle(box, fill=(255, 255, 255))
        draw.text((u, v), text, fill=(0, 0, 0), font=font, anchor="mm")
    return _save(sheet, Path(path))
