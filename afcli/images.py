"""Image prompts as (H, W, 3) uint8 tensors: reading, squaring for an encoder, and the training-time
augmentation of interaction images (IAGNet's PIAD loader, kept by the CMAT code).

- :func:`box_crop`: a random crop that still contains the interaction — the union of the subject
  and object boxes. IAGNet draws each crop edge uniformly between the image border and the box
  edge on that side; afcli does the same with a seeded generator.
- :func:`color_jitter`: torchvision's ``ColorJitter(b, c, s, h)``: brightness, contrast,
  saturation factors from U[1 - x, 1 + x] and a hue shift from U[-h, h] (in turns), applied in a
  random order, each result clamped to [0, 1]. Written in torch (torchvision is not a dependency).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from afcli.errors import InputError

RESIZES = ("bilinear", "bicubic")


def read_image(path: Path, mode: str = "RGB", what: str = "image prompt") -> torch.Tensor:
    """An image file as (H, W, 3) uint8 (``mode`` RGB) or (H, W) uint8 (``mode`` L); ``what`` names
    it when it is missing."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise InputError(f"{what} not found", path)
    try:
        with Image.open(path) as image:
            return torch.from_numpy(np.asarray(image.convert(mode)).copy())
    except (UnidentifiedImageError, OSError) as error:
        raise InputError(f"unreadable image ({error})", path) from None


def square(picture: torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
    """Resize to size × size, antialiased (PIAD / PIADv2 loaders: a plain resize, no crop)."""
    resized = torch.nn.functional.interpolate(
        picture.permute(2, 0, 1)[None].float(), size=(size, size), mode=mode, align_corners=False, antialias=True
    )
    return resized[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8)


def box_crop(picture: torch.Tensor, boxes: dict, rng: np.random.Generator) -> torch.Tensor:
    """A random crop of ``picture`` containing every box of ``boxes`` ({name: [x1, y1, x2, y2]})."""
    if not boxes:
        return picture
    height, width = picture.shape[:2]
    corners = np.array(list(boxes.values()), dtype=float)
    x1, y1 = np.clip(np.floor(corners[:, :2].min(0)), 0, [width - 1, height - 1]).astype(int)
    x2, y2 = np.clip(np.ceil(corners[:, 2:].max(0)), [x1 + 1, y1 + 1], [width, height]).astype(int)
    left, top = int(rng.integers(0, x1 + 1)), int(rng.integers(0, y1 + 1))
    right, bottom = int(rng.integers(x2, width + 1)), int(rng.integers(y2, height + 1))
    return picture[top:bottom, left:right]


def _grey(rgb: torch.Tensor) -> torch.Tensor:
    return (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]).unsqueeze(0)


def _shift_hue(rgb: torch.Tensor, turns: float) -> torch.Tensor:
    """Rotate the hue of (3, H, W) RGB in [0, 1] by ``turns`` through HSV, as torchvision."""
    value, maximum = rgb.max(0)
    minimum = rgb.min(0).values
    chroma = value - minimum
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    r, g, b = rgb
    hue = torch.where(
        maximum == 0, ((g - b) / safe) % 6, torch.where(maximum == 1, (b - r) / safe + 2, (r - g) / safe + 4)
    )
    hue = torch.where(chroma > 0, hue / 6, torch.zeros_like(hue))
    hue = (hue + turns) % 1.0
    saturation = torch.where(value > 0, chroma / torch.where(value > 0, value, torch.ones_like(value)), value * 0)
    k = (torch.tensor([5.0, 3.0, 1.0]).view(3, 1, 1) + hue * 6) % 6
    return value - value * saturation * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def color_jitter(
    picture: torch.Tensor, rng: np.random.Generator, strength: float = 0.1, hue: float | None = None
) -> torch.Tensor:
    """ColorJitter(strength, strength, strength, hue [= strength]) of a (H, W, 3) uint8 picture (see
    the module docstring)."""
    rgb = picture.permute(2, 0, 1).float() / 255
    for op in rng.permutation(4):
        if op == 3:
            shift = strength if hue is None else hue
            rgb = _shift_hue(rgb, float(rng.uniform(-shift, shift)))
            continue
        factor = float(rng.uniform(1 - strength, 1 + strength))
        other = torch.zeros_like(rgb) if op == 0 else _grey(rgb).mean() if op == 1 else _grey(rgb)
        rgb = (factor * rgb + (1 - factor) * other).clamp(0, 1)
    return (rgb * 255).round().to(torch.uint8).permute(1, 2, 0)
