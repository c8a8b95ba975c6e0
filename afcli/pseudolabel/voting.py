"""The released pseudo-labelling rules (../shared/reference/dense-functional-correspondence-official-code.md
§3, ``heatmap_3dviz.py`` and ``pseudo_label.py``), on afcli's renders.

Voting: every box of a view adds one to each *visible* point whose projection it covers (inclusive
bounds); views with two boxes or fewer are skipped; the sum over views is min-max normalised over
the object's points.

Masks, per view: the point heat is carried to every object pixel (the visible points are planted at
their pixels and every other object pixel takes the nearest planted one — afcli's clouds are 2 048
points, not the code's 100 000, so a plain splat would leave holes), ×255 to uint8; when fewer than
200 (scaled) pixels exceed 0.5 the mask is a hard threshold at 128, else pixels below 64 rise to 64, a Gaussian blur,
Otsu's threshold (falling back to 128 on the unblurred image when Otsu's is below 64), and a
morphological closing; finally × the object mask. The code works at 490² and resizes to 224²; afcli
works at the render size, so the kernel sizes, iterations and the 200-point floor scale by
``size / 490`` (11×11 blur → 5×5 at 224², 5×5 ×5 closing → 3×3 ×2, 200 → 42 pixels).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

OFFICIAL_SIZE = 490


def vote(pixels: torch.Tensor, visible: torch.Tensor, boxes: list[torch.Tensor], min_boxes: int = 3) -> torch.Tensor:
    """Point heat (N,) in [0, 1]: ``pixels`` (V, N, 2) as (x, y), ``visible`` (V, N), ``boxes`` per view
    (B, 4) as x0, y0, x1, y1 in pixels."""
    counts = torch.zeros(pixels.shape[1], dtype=torch.float64, device=pixels.device)
    rounded = pixels.round()
    for view, view_boxes in enumerate(boxes):
        if len(view_boxes) < min_boxes:
            continue
        x, y = rounded[view, :, 0:1], rounded[view, :, 1:2]
        b = view_boxes.to(pixels.dtype).to(pixels.device)
        inside = (x >= b[:, 0]) & (x <= b[:, 2]) & (y >= b[:, 1]) & (y <= b[:, 3])
        counts += (inside & visible[view].unsqueeze(1)).sum(1)
    span = counts.max() - counts.min()
    return ((counts - counts.min()) / span if span > 0 else torch.zeros_like(counts)).float()


def project_points(points: torch.Tensor, face: np.ndarray | None, views: dict) -> tuple:
    """Points (N, 3) on the faces ``face`` (N,) of a mesh (None or all −1: a cloud, whose index maps
    hold point ids) seen in kept renders (``views``: depth, index (V, H, W), K, c2w) → their pixels
    (V, N, 2), visibility (V, N) — the lift stage's exact-id test — and the point each object pixel
    shows (V, H, W; −1 off the object): the visible points planted at their pixels, every other
    object pixel taking the nearest planted one (a Euclidean distance transform: the released
    splat with its holes filled)."""
    from scipy.ndimage import distance_transform_edt

    from afcli.lift.core import LiftOptions, pixel_lookup, render_visibility
    from afcli.render.cameras import Cameras
    from afcli.render.stage import diameter

    V, H, W = views["index"].shape
    mesh = face is not None and (np.asarray(face) >= 0).any()
    own_ids = torch.as_tensor(np.asarray(face, np.int64)) if mesh else torch.arange(len(points))
    own_ids = own_ids.to(points.device)
    pixels, z = Cameras(views["K"], views["c2w"], H, W).project(points)
    tolerance = LiftOptions().tolerance * diameter(points)
    visible = render_visibility(pixels, z, views["index"], views["depth"], own_ids, tolerance)
    flat, _ = pixel_lookup(pixels, H, W)
    nearest = np.full((V, H, W), -1, np.int64)
    objects = (views["index"] >= 0).cpu().numpy()
    for v in range(V):
        seen = torch.nonzero(visible[v]).squeeze(1)
        planted = np.full(H * W, -1, np.int64)
        planted[flat[v, seen].cpu().numpy()] = seen.cpu().numpy()
        planted = planted.reshape(H, W)
        if (planted >= 0).any():
            rows, cols = distance_transform_edt(planted < 0, return_distances=False, return_indices=True)
            nearest[v] = np.where(objects[v], planted[rows, cols], -1)
    return pixels, visible, torch.from_numpy(nearest).to(points.device)


def _odd(value: float, floor: int = 3) -> int:
    size = max(floor, int(round(value)))
    return size if size % 2 else size + 1


def gaussian_blur(image: torch.Tensor, size: int) -> torch.Tensor:
    """OpenCV's GaussianBlur with σ derived from the kernel size (0.3·((k−1)/2 − 1) + 0.8), reflected borders."""
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    taps = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).float()
    x = F.pad(image[None, None].float(), (size // 2,) * 4, mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    return x[0, 0]


def otsu(image: np.ndarray) -> int:
    """Otsu's threshold of a uint8 image (OpenCV's rule: the first maximum of the between-class variance)."""
    hist = np.bincount(image.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 0
    levels = np.arange(256)
    weight0 = np.cumsum(hist)
    weight1 = total - weight0
    mean0 = np.cumsum(hist * levels)
    mean_total = mean0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean_total * weight0 - total * mean0) ** 2 / (weight0 * weight1)
    between[~np.isfinite(between)] = -1
    return int(np.argmax(between))


def closing(mask: torch.Tensor, size: int, iterations: int) -> torch.Tensor:
    """Dilate ``iterations`` times, then erode as many (OpenCV MORPH_CLOSE with a square kernel)."""
    x = mask[None, None].float()
    for _ in range(iterations):
        x = F.max_pool2d(x, size, 1, size // 2)
    for _ in range(iterations):
        x = -F.max_pool2d(-F.pad(x, (size // 2,) * 4, value=1.0), size, 1, 0)
    return x[0, 0] > 0.5


def part_mask(heat: torch.Tensor, object_mask: torch.Tensor) -> torch.Tensor:
    """(H, W) pixel heat in [0, 1] (0 off the object) → the boolean part mask, by the released rule."""
    scale = heat.shape[-1] / OFFICIAL_SIZE
    image = (heat * 255).to(torch.uint8)
    if int((heat > 0.5).sum()) < 200 * scale**2:
        mask = image >= 128
    else:
        raised = torch.clamp(image, min=64)
        blurred = gaussian_blur(raised, _odd(11 * scale)).round().clamp(0, 255).to(torch.uint8)
        threshold = otsu(blurred.cpu().numpy())
        mask = blurred > threshold if threshold >= 64 else image >= 128
        mask = closing(mask, _odd(5 * scale), max(1, round(5 * scale)))
    return mask & object_mask


def pack(masks: np.ndarray) -> np.ndarray:
    """Boolean masks (..., H, W) → bits packed along W (..., H, ⌈W/8⌉) uint8."""
    return np.packbits(masks.astype(bool), axis=-1)


def unpack(packed: np.ndarray, width: int) -> np.ndarray:
    return np.unpackbits(packed, axis=-1, count=width).astype(bool)


def oracle_boxes(
    part: torch.Tensor, object_mask: torch.Tensor, rng: np.random.Generator, noise: float, trials: int = 4
) -> torch.Tensor:
    """``trials`` boxes (B, 4) around a view's true part mask, as a detector sampled ``trials`` times
    would give: each side moved by N(0, noise · box side); with probability ``noise`` a box is
    instead a random box of the same size elsewhere on the object. No pixel of the part: no box."""
    rows, cols = torch.nonzero(part, as_tuple=True)
    if len(rows) == 0:
        return torch.zeros(0, 4)
    x0, x1, y0, y1 = cols.min().item(), cols.max().item(), rows.min().item(), rows.max().item()
    w, h = x1 - x0 + 1, y1 - y0 + 1
    on_object = torch.nonzero(object_mask)
    boxes = []
    for _ in range(trials):
        if noise > 0 and rng.random() < noise:
            cy, cx = on_object[rng.integers(len(on_object))].tolist()
            box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
        else:
            jitter = rng.normal(0.0, noise, 4) * np.array([w, h, w, h]) if noise > 0 else np.zeros(4)
            box = list(np.array([x0, y0, x1, y1], np.float64) + jitter)
        boxes.append(box)
    return torch.tensor(boxes, dtype=torch.float32).clamp(0, part.shape[-1] - 1)
