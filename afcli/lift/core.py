"""2D → 3D feature lifting: project points into each view, decide visibility, sample the teacher's
patch grid there, and average over the views that see each point.

Conventions
- Pixel centres sit at integer coordinates (OpenCV); the image spans ``[-0.5, W - 0.5]``. A feature
  map of ``h × w`` cells covers the whole image, whatever resolution the teacher ran at, so a cell
  spans ``W / w`` pixels. With ``x = u + 0.5`` (0 at the image's left edge):
  - ``nearest``: cell ``floor(x · w / W)`` (OpenScene, ConceptFusion and the CMAT paper);
  - ``bilinear``: cell coordinate ``x · w / W - 0.5`` between the four nearest cell centres,
    clamped at the border — exactly ``grid_sample(align_corners=False, padding_mode="border")``
    with the image's normalised coordinates (tested).
- Visibility from a render (:func:`render_visibility`): the point's rounded pixel is inside the
  image and either shows the point's own face / point id, or the depth seen there is within
  ``tolerance`` of the point's own. The id test is exact; the depth test keeps points on tiny faces
  or near face edges whose pixel centre hits a neighbouring face.
- Inputs that come with depth only use :func:`depth_visibility`: OpenScene's relative test
  (``|d_obs - z| ≤ τ · d_obs``, τ = 0.25) or D3Fields' absolute one (``d_obs - z > -μ`` with the
  weight ``exp(min(μ - |d_obs - z|, 0) / μ)``).
- Aggregation: a sum and a count per point accumulated view by view (memory O(N·D), never
  O(V·N·D)); optional L2 normalisation of each view's feature and a per-view weight (the cosine
  between the normal and the ray towards the camera). The result is the weighted mean over the
  views that see the point. Points no view sees take the mean of their ``k`` nearest seen
  neighbours and are flagged unseen.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from afcli.errors import InputError

INTERPOLATIONS = ("nearest", "bilinear")
VIEW_WEIGHTS = ("none", "cosine")
DEPTH_MODES = ("relative", "absolute")


@dataclass
class LiftOptions:
    interp: str = "nearest"
    normalize_views: bool = False
    view_weight: str = "none"
    tolerance: float = 0.01  # depth tolerance as a fraction of the object's diameter
    fill_neighbours: int = 8

    def check(self) -> "LiftOptions":
        if self.interp not in INTERPOLATIONS:
            raise InputError(f"unknown interpolation {self.interp!r} (choose from {', '.join(INTERPOLATIONS)})")
        if self.view_weight not in VIEW_WEIGHTS:
            raise InputError(f"unknown view weight {self.view_weight!r} (choose from {', '.join(VIEW_WEIGHTS)})")
        if not self.tolerance >= 0:
            raise InputError(f"visibility tolerance must be ≥ 0, got {self.tolerance}")
        if self.fill_neighbours < 1:
            raise InputError(f"fill neighbours must be ≥ 1, got {self.fill_neighbours}")
        return self


def depth_visibility(
    z: torch.Tensor, observed: torch.Tensor, mode: str, tolerance: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Visibility and weight of points at depth ``z`` against the depth ``observed`` at their pixel.

    ``relative``: OpenScene, ``|observed - z| ≤ tolerance · observed``, weight 1.
    ``absolute``: D3Fields, ``observed - z > -tolerance`` (not more than μ behind the surface),
    weight ``exp(min(μ - |observed - z|, 0) / μ)`` — 1 within ±μ, decaying outside.
    Pixels with no depth (``observed ≤ 0``) see nothing.
    """
    valid = (observed > 0) & (z > 0)
    distance = observed - z
    if mode == "relative":
        visible = valid & (distance.abs() <= tolerance * observed)
        return visible, visible.to(z.dtype)
    if mode == "absolute":
        visible = valid & (distance > -tolerance)
        mu = max(tolerance, 1e-12)
        weight = torch.exp(torch.clamp(mu - distance.abs(), max=0) / mu)
        return visible, torch.where(visible, weight, torch.zeros_like(weight))
    raise InputError(f"unknown depth visibility mode {mode!r} (choose from {', '.join(DEPTH_MODES)})")


def pixel_lookup(pixels: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rounded pixel (row-major flat index) of each projection and whether it lies in the image."""
    rounded = pixels.round().long()
    inside = (rounded[..., 0] >= 0) & (rounded[..., 0] < width) & (rounded[..., 1] >= 0) & (rounded[..., 1] < height)
    flat = rounded[..., 1].clamp(0, height - 1) * width + rounded[..., 0].clamp(0, width - 1)
    return flat, inside


def render_visibility(
    pixels: torch.Tensor,
    z: torch.Tensor,
    index: torch.Tensor,
    depth: torch.Tensor,
    own_ids: torch.Tensor,
    tolerance: float,
) -> torch.Tensor:
    """(V, N) visibility of points projected to ``pixels`` (V, N, 2) at depth ``z`` in renders with
    per-pixel ``index`` / ``depth`` (V, H, W); ``own_ids`` (N,) is each point's face (meshes) or
    point id (clouds)."""
    V, H, W = index.shape
    flat, inside = pixel_lookup(pixels, H, W)
    seen_id = index.reshape(V, -1).gather(1, flat)
    seen_depth = depth.reshape(V, -1).gather(1, flat)
    by_depth = (seen_depth > 0) & ((seen_depth - z).abs() <= tolerance)
    return inside & (z > 0) & ((seen_id == own_ids.unsqueeze(0)) | by_depth)


def sample_cells(feature_map: torch.Tensor, pixels: torch.Tensor, height: int, width: int, mode: str) -> torch.Tensor:
    """Features (M, D) of a map (D, h, w) covering a ``height × width`` image, at ``pixels`` (M, 2)."""
    D, h, w = feature_map.shape
    cells = feature_map.reshape(D, h * w).t()
    x = (pixels[:, 0] + 0.5) * (w / width)
    y = (pixels[:, 1] + 0.5) * (h / height)
    if mode == "nearest":
        col = x.floor().long().clamp(0, w - 1)
        row = y.floor().long().clamp(0, h - 1)
        return cells[row * w + col]
    qx = (x - 0.5).clamp(0, w - 1)
    qy = (y - 0.5).clamp(0, h - 1)
    x0, y0 = qx.floor().long(), qy.floor().long()
    x1, y1 = (x0 + 1).clamp(max=w - 1), (y0 + 1).clamp(max=h - 1)
    fx, fy = (qx - x0).unsqueeze(1).to(cells.dtype), (qy - y0).unsqueeze(1).to(cells.dtype)
    top = cells[y0 * w + x0] * (1 - fx) + cells[y0 * w + x1] * fx
    bottom = cells[y1 * w + x0] * (1 - fx) + cells[y1 * w + x1] * fx
    return top * (1 - fy) + bottom * fy


class FeatureAccumulator:
    """Per-point weighted sums of view features, added view batch by view batch: memory O(N·D) for
    any number of views (scenes stream hundreds of frames through it)."""

    def __init__(self, points: torch.Tensor, dim: int, options: LiftOptions, normals: torch.Tensor | None = None):
        self.points, self.options, self.normals = points, options.check(), normals
        n = points.shape[0]
        self.total = torch.zeros(n, dim, dtype=torch.float32, device=points.device)
        self.weight_sum = torch.zeros(n, dtype=torch.float32, device=points.device)
        self.count = torch.zeros(n, dtype=torch.int32, device=points.device)

    def add(
        self,
        feature_maps: torch.Tensor,
        pixels: torch.Tensor,
        visible: torch.Tensor,
        image_size: tuple[int, int],
        camera_centres: torch.Tensor | None = None,
        weights: torch.Tensor | None = None,
    ) -> None:
        """Views (V, D, h, w) seeing the points at ``pixels`` (V, N, 2) where ``visible`` (V, N)."""
        height, width = image_size
        for view in range(feature_maps.shape[0]):
            idx = torch.nonzero(visible[view]).squeeze(1)
            if idx.numel() == 0:
                continue
            feats = sample_cells(
                feature_maps[view].float(), pixels[view, idx].float(), height, width, self.options.interp
            )
            if self.options.normalize_views:
                feats = torch.nn.functional.normalize(feats, dim=-1)
            w = torch.ones(idx.numel(), dtype=torch.float32, device=self.points.device)
            if weights is not None:
                w = w * weights[view, idx].float()
            if self.options.view_weight == "cosine":
                if self.normals is None or camera_centres is None:
                    raise InputError("--view-weight cosine needs point normals")
                ray = torch.nn.functional.normalize(camera_centres[view].float() - self.points[idx].float(), dim=-1)
                w = w * (torch.nn.functional.normalize(self.normals[idx].float(), dim=-1) * ray).sum(-1).abs()
            self.total.index_add_(0, idx, feats * w.unsqueeze(1))
            self.weight_sum.index_add_(0, idx, w)
            self.count.index_add_(0, idx, torch.ones_like(idx, dtype=torch.int32))

    def result(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features (N, D) float32 (unseen points: the mean of their seen neighbours), seen (N,), views per point."""
        seen = self.count > 0
        features = self.total / self.weight_sum.clamp(min=1e-12).unsqueeze(1)
        return fill_unseen(self.points, features, seen, self.options.fill_neighbours), seen, self.count


def lift_features(
    points: torch.Tensor,
    feature_maps: torch.Tensor,
    pixels: torch.Tensor,
    visible: torch.Tensor,
    image_size: tuple[int, int],
    options: LiftOptions,
    *,
    normals: torch.Tensor | None = None,
    camera_centres: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Average of each point's features over the views that see it.

    ``points`` (N, 3), ``feature_maps`` (V, D, h, w), ``pixels`` (V, N, 2), ``visible`` (V, N);
    ``weights`` (V, N) multiplies each view's contribution (e.g. the D3Fields depth weight).
    Returns features (N, D) float32, the seen mask (N,) and the number of views per point (N,).
    """
    accumulator = FeatureAccumulator(points, feature_maps.shape[1], options, normals)
    accumulator.add(feature_maps, pixels, visible, image_size, camera_centres, weights)
    return accumulator.result()


def fill_unseen(points: torch.Tensor, features: torch.Tensor, seen: torch.Tensor, k: int) -> torch.Tensor:
    """Unseen points take the mean feature of their ``k`` nearest seen points (0 if none is seen)."""
    if seen.all():
        return features
    if not seen.any():
        return torch.zeros_like(features)
    from afcli.ops import knn

    seen_points = points[seen].float()
    index, _ = knn(seen_points.unsqueeze(0), points[~seen].float().unsqueeze(0), min(k, seen_points.shape[0]))
    filled = features.clone()
    filled[~seen] = features[seen][index[0]].mean(1)
    return filled
