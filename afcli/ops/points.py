"""Neighbourhood ops on batched point clouds ``(B, N, 3)``.

Conventions (shared by both backends, so results agree exactly):
- :func:`fps` starts at index ``start`` (default 0, like Point-MAE's PointNet++ kernel) and breaks
  ties by the lowest index, like ``torch.argmax``.
- :func:`knn` returns neighbours sorted by squared distance, ties by index (which of several points
  tied at the k-th place is kept is up to each backend's selection).
- :func:`ball_query` has PointNet++ semantics: the first ``k`` points *by index* within the radius,
  empty slots repeat the first one found, and a query with no point in range gets index 0. No
  compiled library offers these semantics (``torch_cluster.radius`` keeps arbitrary neighbours
  beyond its cap), so it is pure PyTorch on every backend.
"""

from __future__ import annotations

import torch

from afcli.errors import InputError
from afcli.ops.backend import compiled_module

_CHUNK_ELEMENTS = 1 << 24


def _check_points(name: str, tensor: torch.Tensor) -> None:
    if tensor.dim() != 3 or tensor.shape[-1] != 3:
        raise InputError(f"{name} must be (B, N, 3), got {tuple(tensor.shape)}")


def gather_points(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[b, index[b, ...]]`` for ``values`` (B, N, C) and ``index`` (B, ...) → (B, ..., C)."""
    batch = values.shape[0]
    flat = index.reshape(batch, -1)
    picked = torch.gather(values, 1, flat.unsqueeze(-1).expand(-1, -1, values.shape[-1]))
    return picked.reshape(*index.shape, values.shape[-1])


def fps(points: torch.Tensor, num_samples: int, start: int = 0) -> torch.Tensor:
    """Farthest point sampling: ``(B, num_samples)`` indices into each cloud of ``points`` (B, N, 3)."""
    _check_points("points", points)
    batch, count, _ = points.shape
    if not 0 < num_samples <= count:
        raise InputError(f"fps: cannot pick {num_samples} of {count} points")
    if not 0 <= start < count:
        raise InputError(f"fps: start index {start} outside 0..{count - 1}")
    cluster = compiled_module("fps")
    if cluster is not None and start == 0:
        flat = points.reshape(batch * count, 3)
        owner = torch.arange(batch, device=points.device).repeat_interleave(count)
        # Ask for a hair more than num_samples/N: a greedy run's first picks do not depend on its length.
        ratio = min(1.0, (num_samples + 0.5) / count)
        picked = cluster.fps(flat, owner, ratio=ratio, random_start=False)
        picked = picked.reshape(batch, -1)[:, :num_samples]
        return picked - torch.arange(batch, device=points.device).unsqueeze(1) * count
    rows = torch.arange(batch, device=points.device)
    chosen = torch.empty(batch, num_samples, dtype=torch.long, device=points.device)
    farthest = torch.full((batch,), start, dtype=torch.long, device=points.device)
    nearest = torch.full((batch, count), float("inf"), dtype=points.dtype, device=points.device)
    for i in range(num_samples):
        chosen[:, i] = farthest
        distance = (points - points[rows, farthest].unsqueeze(1)).pow(2).sum(-1)
        nearest = torch.minimum(nearest, distance)
        farthest = nearest.argmax(-1)
    return chosen


def _squared_distances(points: torch.Tensor, queries: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Exact ``|q - p|²`` for the chosen neighbours (the same arithmetic on every backend)."""
    return (gather_points(points, index) - queries.unsqueeze(2)).pow(2).sum(-1)


def _sorted_neighbours(points, queries, index) -> tuple[torch.Tensor, torch.Tensor]:
    index, _ = index.sort(-1)
    distance = _squared_distances(points, queries, index)
    if torch.onnx.is_in_onnx_export():
        # ONNX has no stable sort, but its TopK breaks ties by the lower index: the same order.
        distance, order = distance.topk(distance.shape[-1], dim=-1, largest=False, sorted=True)
    else:
        distance, order = distance.sort(dim=-1, stable=True)
    return torch.gather(index, -1, order), distance


def knn(points: torch.Tensor, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest ``points`` (B, N, 3) of each of ``queries`` (B, M, 3).

    Returns ``(index, squared_distance)``, both (B, M, k), nearest first.
    """
    _check_points("points", points)
    _check_points("queries", queries)
    batch, count, _ = points.shape
    if points.shape[0] != queries.shape[0]:
        raise InputError(f"knn: batch sizes differ ({points.shape[0]} vs {queries.shape[0]})")
    if not 0 < k <= count:
        raise InputError(f"knn: cannot find {k} neighbours among {count} points")
    cluster = compiled_module("knn")
    num_queries = queries.shape[1]
    if cluster is not None:
        device = points.device
        owner_points = torch.arange(batch, device=device).repeat_interleave(count)
        owner_queries = torch.arange(batch, device=device).repeat_interleave(num_queries)
        pairs = cluster.knn(points.reshape(-1, 3), queries.reshape(-1, 3), k, owner_points, owner_queries)
        order = pairs[0].argsort(stable=True)
        index = pairs[1][order].reshape(batch, num_queries, k) - (torch.arange(batch, device=device) * count).view(
            batch, 1, 1
        )
    else:
        step = max(1, _CHUNK_ELEMENTS // max(1, batch * count))
        parts = []
        for start in range(0, num_queries, step):
            distance = torch.cdist(
                queries[:, start : start + step], points, compute_mode="donot_use_mm_for_euclid_dist"
            )
            parts.append(distance.topk(k, dim=-1, largest=False).indices)
        index = torch.cat(parts, dim=1)
    return _sorted_neighbours(points, queries, index)


def ball_query(points: torch.Tensor, queries: torch.Tensor, radius: float, k: int) -> torch.Tensor:
    """Indices (B, M, k) of up to ``k`` points within ``radius`` of each query (PointNet++ semantics)."""
    _check_points("points", points)
    _check_points("queries", queries)
    count = points.shape[1]
    if not 0 < k <= count:
        raise InputError(f"ball_query: cannot find {k} neighbours among {count} points")
    step = max(1, _CHUNK_ELEMENTS // max(1, 3 * points.shape[0] * count))
    positions = torch.arange(count, device=points.device)
    parts = []
    for start in range(0, queries.shape[1], step):
        chunk = queries[:, start : start + step]
        inside = (points.unsqueeze(1) - chunk.unsqueeze(2)).pow(2).sum(-1) < radius * radius
        key = torch.where(inside, positions, count)
        first = key.topk(k, dim=-1, largest=False).values.sort(-1).values
        fill = torch.where(first[..., :1] < count, first[..., :1], 0)
        parts.append(torch.where(first < count, first, fill))
    return torch.cat(parts, dim=1)


def group(
    points: torch.Tensor,
    index: torch.Tensor,
    centres: torch.Tensor | None = None,
    features: torch.Tensor | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Neighbourhoods ``points[index]`` (B, M, k, 3), relative to ``centres`` (B, M, 3) when given.

    With ``features`` (B, N, C) the grouped features (B, M, k, C) are returned too.
    """
    grouped = gather_points(points, index)
    if centres is not None:
        grouped = grouped - centres.unsqueeze(2)
    if features is None:
        return grouped
    return grouped, gather_points(features, index)


def three_nn_interpolate(
    targets: torch.Tensor,
    sources: torch.Tensor,
    source_features: torch.Tensor,
    eps: float = 1e-8,
    squared: bool = False,
) -> torch.Tensor:
    """PointNet++ feature propagation: features of ``sources`` (B, m, 3) / (B, m, C) carried to
    ``targets`` (B, n, 3) by inverse-distance weights of the 3 nearest sources.

    Weights are ``1 / (d + eps)`` normalised to sum 1, with ``d`` the Euclidean distance, as in the
    widely used PyTorch PointNet++ port (its ``three_nn`` returns square-rooted distances); with
    ``squared=True`` they are ``1 / (d² + eps)``, as the Point-MAE / CMAT code's
    ``PointNetFeaturePropagation`` computes them.
    """
    index, distance = knn(sources, targets, min(3, sources.shape[1]))
    weight = 1.0 / ((distance if squared else distance.sqrt()) + eps)
    weight = weight / weight.sum(-1, keepdim=True)
    return (gather_points(source_features, index) * weight.unsqueeze(-1)).sum(2)
