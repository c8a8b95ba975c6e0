"""Segment reductions ``out[index[i]] ⊕= src[i]`` along one dimension (torch-scatter's API).

``index`` is 1-D with one entry per slice of ``src`` along ``dim``. Empty segments are 0 for every
reduction, as in torch-scatter.
"""

from __future__ import annotations

import torch

from afcli.errors import InputError
from afcli.ops.backend import compiled_module


def _prepare(src: torch.Tensor, index: torch.Tensor, dim: int, dim_size: int | None) -> tuple[int, int]:
    dim = dim % src.dim()
    if index.dim() != 1 or index.numel() != src.shape[dim]:
        raise InputError(f"scatter: index must be 1-D with {src.shape[dim]} entries, got {tuple(index.shape)}")
    if dim_size is None:
        dim_size = int(index.max()) + 1 if index.numel() else 0
    return dim, dim_size


def _broadcast(index: torch.Tensor, src: torch.Tensor, dim: int) -> torch.Tensor:
    shape = [1] * src.dim()
    shape[dim] = -1
    return index.view(shape).expand_as(src)


_TORCH_REDUCE = {"sum": "sum", "mean": "mean", "max": "amax"}


def _reduce(name: str, src: torch.Tensor, index: torch.Tensor, dim: int, dim_size: int | None) -> torch.Tensor:
    dim, dim_size = _prepare(src, index, dim, dim_size)
    scatter = compiled_module(f"scatter_{name}")
    if scatter is not None:
        result = getattr(scatter, f"scatter_{name}")(src, _broadcast(index, src, dim), dim, dim_size=dim_size)
        return result[0] if name == "max" else result  # scatter_max also returns arg-max indices
    shape = list(src.shape)
    shape[dim] = dim_size
    out = torch.zeros(shape, dtype=src.dtype, device=src.device)
    if name == "sum":
        return out.index_add_(dim, index, src)
    return out.scatter_reduce_(dim, _broadcast(index, src, dim), src, _TORCH_REDUCE[name], include_self=False)


def scatter_sum(src: torch.Tensor, index: torch.Tensor, dim: int = 0, dim_size: int | None = None) -> torch.Tensor:
    return _reduce("sum", src, index, dim, dim_size)


def scatter_mean(src: torch.Tensor, index: torch.Tensor, dim: int = 0, dim_size: int | None = None) -> torch.Tensor:
    return _reduce("mean", src, index, dim, dim_size)


def scatter_max(src: torch.Tensor, index: torch.Tensor, dim: int = 0, dim_size: int | None = None) -> torch.Tensor:
    return _reduce("max", src, index, dim, dim_size)
