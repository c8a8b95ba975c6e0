"""Contact sheet of renders for a person to look at: per sample one row of RGB views, one of depth
(near = bright) and one of the index map (each face / point id its own colour)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from afcli.errors import InputError

THUMB = 112
LABEL = 14


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
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        raise InputError("--preview needs pillow: pip install pillow") from None
    path = Path(path)
    if not rows:
        raise InputError("nothing to preview (no imported samples)", path)
    views = rows[0][1].rgb.shape[0]
    sheet = Image.new("RGB", (views * THUMB, len(rows) * (3 * THUMB + LABEL)), (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    for r, (sample_id, rendered) in enumerate(rows):
        top = r * (3 * THUMB + LABEL)
        draw.text((4, top + 1), sample_id, fill=(230, 230, 230))
        for v in range(views):
            for k, image in enumerate((rendered.rgb[v].cpu().numpy(), _depth_image(rendered.depth[v]), _index_image(rendered.index[v]))):
                thumb = Image.fromarray(image).resize((THUMB, THUMB), Image.NEAREST if k == 2 else Image.BILINEAR)
                sheet.paste(thumb, (v * THUMB, top + LABEL + k * THUMB))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        sheet.save(path)
    except (OSError, ValueError) as error:
        raise InputError(f"cannot write preview ({error})", path) from None
    return path
