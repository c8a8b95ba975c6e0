"""Sparse-voxel ops: voxelisation and 3D sparse convolutions with two backends behind one API.

- **torch** (always there): a voxel hash (sorted int64 keys + ``searchsorted``) gives, per kernel
  offset, the (input, output) site pairs; the convolution gathers the inputs, multiplies by that
  offset's weight and scatters into the outputs (``index_add_``). Autograd gives the gradients.
- **spconv** (``pip install 'afcli[sparse]'``; ``spconv-cu1xx`` on GPUs): the same modules call spconv
  2.x, which runs on CPUs too in float32 once its backward stops asking for a CUDA stream
  (:func:`_patch_spconv_for_cpu`, guarded by a test).

Both use spconv's conventions, so weights load into either: a weight is ``(out, k, k, k, in)``;
``SubMConv3d`` keeps the input sites and reads neighbour ``p + o - k // 2`` with offset ``o``;
``SparseConv3d`` (kernel = stride) sends site ``c`` to ``c // s`` with offset ``c mod s``;
``SparseInverseConv3d`` runs those pairs backwards onto the finer sites recorded under the same
``indice_key``. A 1×1 ``SubMConv3d`` reads its weight's memory as ``(in, out)``, as spconv 2.x does
(``FILTER_HWIO = False``), so that checkpoints trained on spconv (Pointcept's) load unchanged.
Coordinates are ``(batch, x, y, z)``, non-negative.
``AFCLI_OPS=torch`` forces the torch backend, ``AFCLI_OPS=compiled`` requires spconv.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from afcli.errors import InputError
from afcli.ops.backend import compiled_module

AXIS_BITS = 18  # per-axis voxel range of the hash: 2^18 voxels (5 km at 2 cm)
AXIS_LIMIT = 1 << AXIS_BITS
VOXEL_MODES = ("first", "random", "mean")


# -- voxelisation --------------------------------------------------------------------------------


@dataclass
class Voxels:
    coords: torch.Tensor  # (M, 4) int32 (batch, x, y, z), x y z from 0 per batch
    inverse: torch.Tensor  # (N,) voxel of each point
    index: torch.Tensor  # (M,) the point kept for each voxel ("first" / "random")


def hash_coords(coords: torch.Tensor) -> torch.Tensor:
    """One int64 key per (batch, x, y, z) row; order = batch, then x, y, z."""
    c = coords.long()
    return ((c[:, 0] * AXIS_LIMIT + c[:, 1]) * AXIS_LIMIT + c[:, 2]) * AXIS_LIMIT + c[:, 3]


def voxelize(
    points: torch.Tensor,
    size: float,
    batch: torch.Tensor | None = None,
    mode: str = "first",
    generator: torch.Generator | None = None,
) -> Voxels:
    """Grid-sample ``points`` (N, 3) at ``size`` (Pointcept's GridSample): cell = ``floor(xyz / size)``
    shifted to start at 0 per batch. ``first`` keeps each voxel's lowest point index (MinkowskiEngine's
    ``unique_map``), ``random`` a random point per voxel (GridSample's train mode, seeded by
    ``generator``); ``mean`` is for averaging with :func:`voxel_mean` (``index`` = first)."""
    if mode not in VOXEL_MODES:
        raise InputError(f"unknown voxel mode {mode!r} (choose from {', '.join(VOXEL_MODES)})")
    if not size > 0:
        raise InputError(f"voxel size must be positive, got {size}")
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputError(f"voxelize takes (N, 3) points, got {tuple(points.shape)}")
    if not torch.isfinite(points).all():
        raise InputError("points hold NaN or Inf")
    n = points.shape[0]
    batch = torch.zeros(n, dtype=torch.long, device=points.device) if batch is None else batch.long()
    cells = torch.floor(points.double() / size).long()
    origin = torch.zeros((int(batch.max()) + 1 if n else 1, 3), dtype=torch.long, device=points.device)
    if n:  # each batch's lowest cell per axis
        origin = origin.fill_(torch.iinfo(torch.long).max).scatter_reduce(
            0, batch.unsqueeze(1).expand(-1, 3), cells, "amin"
        )
    cells = cells - origin[batch]
    if n and int(cells.max()) >= AXIS_LIMIT:
        raise InputError(f"the scene spans more than {AXIS_LIMIT} voxels of {size} along an axis")
    coords = torch.cat([batch.unsqueeze(1), cells], 1)
    keys, inverse = torch.unique(hash_coords(coords), return_inverse=True)
    position = torch.arange(n, device=points.device)
    if mode == "random":
        order = torch.randperm(n, generator=generator).to(points.device)
        rank = torch.empty_like(order)
        rank[order] = position
        first = torch.full((len(keys),), n, dtype=torch.long, device=points.device)
        first = first.scatter_reduce(0, inverse, rank, "amin")
        index = order[first]
    else:
        index = torch.full((len(keys),), n, dtype=torch.long, device=points.device)
        index = index.scatter_reduce(0, inverse, position, "amin")
    return Voxels(coords[index].int(), inverse, index)


def voxel_mean(values: torch.Tensor, voxels: Voxels) -> torch.Tensor:
    """Per-voxel mean of per-point ``values`` (RegionPLC's voxel mode 4), on the scatter backend."""
    from afcli.ops import scatter_mean

    return scatter_mean(values, voxels.inverse, dim=0, dim_size=len(voxels.index))


# -- sparse tensors ------------------------------------------------------------------------------


@dataclass
class SparseTensor:
    """Features on active voxels. ``maps`` is shared by every tensor derived from one input: kernel
    maps (torch backend) and the sites each ``indice_key`` downsampled from, for the inverse conv."""

    features: torch.Tensor  # (M, C)
    coords: torch.Tensor  # (M, 4) int32 (batch, x, y, z) at this tensor's stride
    stride: int = 1
    batch_size: int = 1
    maps: dict = field(default_factory=dict, repr=False)
    spconv: object = field(default=None, repr=False)  # the spconv.SparseConvTensor, on that backend

    def replace_feature(self, features: torch.Tensor) -> "SparseTensor":
        wrapped = self.spconv.replace_feature(features) if self.spconv is not None else None
        return replace(self, features=features, spconv=wrapped)

    @classmethod
    def from_voxels(cls, features: torch.Tensor, voxels: Voxels) -> "SparseTensor":
        batch_size = int(voxels.coords[:, 0].max()) + 1 if len(voxels.coords) else 1
        return cls(features, voxels.coords, 1, batch_size)


def backend() -> str:
    """``spconv`` when it imports (and AFCLI_OPS does not force torch), else ``torch``."""
    return "spconv" if compiled_module("sparse_conv") is not None else "torch"


def _patch_spconv_for_cpu(spconv_ops) -> None:
    """spconv 2.3's backward asks torch for the current CUDA stream even for CPU tensors, which fails
    without a CUDA driver; stream 0 (no stream) is what its CPU kernels ignore anyway."""
    if not torch.cuda.is_available():
        spconv_ops.get_current_stream = lambda: 0


def _spconv():
    from afcli.extras import require

    spconv_pytorch = require("spconv.pytorch", "the spconv sparse-convolution backend")
    _patch_spconv_for_cpu(require("spconv.pytorch.ops", "the spconv sparse-convolution backend"))
    return spconv_pytorch


@contextmanager
def _one_thread(active: bool):
    if not active:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_SAVED_THREADS: list[int] = []  # torch's thread count while a backward that reached spconv runs on one


def _single_thread_backward(grad: torch.Tensor) -> torch.Tensor:
    """Runs just before spconv's backward node: the rest of this backward pass runs on one thread,
    and the engine's end-of-pass callback gives the threads back."""
    if not _SAVED_THREADS:
        _SAVED_THREADS.append(torch.get_num_threads())
        torch.set_num_threads(1)
        torch.autograd.Variable._execution_engine.queue_callback(_restore_threads)
    return grad


def _restore_threads() -> None:
    if _SAVED_THREADS:
        torch.set_num_threads(_SAVED_THREADS.pop())


def _as_spconv(x: SparseTensor):
    if x.spconv is not None:
        return x.spconv
    if x.features.dtype != torch.float32:
        raise InputError(f"spconv computes float32 only (got {x.features.dtype}); AFCLI_OPS=torch runs any dtype")
    sp = _spconv()
    coords = x.coords.int()
    shape = [_padded_extent(int(coords[:, axis].max()) + 1 if len(coords) else 1) for axis in (1, 2, 3)]
    return sp.SparseConvTensor(x.features, coords.contiguous(), shape, x.batch_size)


def _padded_extent(extent: int, levels: int = 8) -> int:
    """Grid extents divisible by 2^levels, so that no stride-2 layer drops the last row of sites."""
    step = 1 << levels
    return max(step, math.ceil(extent / step) * step)


def _lookup(sorted_keys: torch.Tensor, order: torch.Tensor, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ``queries`` keys among the sorted keys: (found mask, row index)."""
    position = torch.searchsorted(sorted_keys, queries).clamp(max=max(len(sorted_keys) - 1, 0))
    found = sorted_keys[position] == queries if len(sorted_keys) else torch.zeros_like(queries, dtype=torch.bool)
    return found, order[position]


def _offsets(kernel: int, device) -> torch.Tensor:
    axis = torch.arange(kernel, device=device)
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)


def _subm_pairs(x: SparseTensor, kernel: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per offset (index into the ``k³`` weight slices), the (input row, output row) pairs."""
    key = ("subm", x.stride, kernel)
    if key not in x.maps:
        coords = x.coords.long()
        keys = hash_coords(coords)
        sorted_keys, order = torch.sort(keys)
        pairs = []
        for offset in _offsets(kernel, coords.device) - kernel // 2:
            neighbour = coords.clone()
            neighbour[:, 1:] += offset
            inside = ((neighbour[:, 1:] >= 0) & (neighbour[:, 1:] < AXIS_LIMIT)).all(1)
            found, rows = _lookup(sorted_keys, order, hash_coords(neighbour.clamp(min=0)))
            outputs = torch.nonzero(found & inside).squeeze(1)
            pairs.append((rows[outputs], outputs))
        x.maps[key] = pairs
    return x.maps[key]


def _down_pairs(x: SparseTensor, stride: int, indice_key: str | None):
    """Output coords of a kernel = stride downsampling and its per-offset (input, output) pairs."""
    key = ("down", x.stride, stride)
    if key not in x.maps:
        coords = x.coords.long()
        coarse = coords.clone()
        coarse[:, 1:] = torch.div(coords[:, 1:], stride, rounding_mode="floor")
        offset = coords[:, 1:] - coarse[:, 1:] * stride
        out_keys, out_rows = torch.unique(hash_coords(coarse), return_inverse=True)
        first = torch.full((len(out_keys),), len(coords), dtype=torch.long, device=coords.device)
        first = first.scatter_reduce(0, out_rows, torch.arange(len(coords), device=coords.device), "amin")
        slot = (offset[:, 0] * stride + offset[:, 1]) * stride + offset[:, 2]
        pairs = []
        for k in range(stride**3):
            rows = torch.nonzero(slot == k).squeeze(1)
            pairs.append((rows, out_rows[rows]))
        x.maps[key] = (coarse[first].int(), pairs)
    if indice_key is not None:
        x.maps[("inverse", indice_key)] = (x.coords, x.stride, x.maps[key][1])
    return x.maps[key]


def _gather_conv(features, weight, pairs, num_out: int, transpose: bool = False) -> torch.Tensor:
    """Σ over offsets of W[offset] · features[in] scattered to out (pairs swapped when ``transpose``)."""
    out_channels = weight.shape[0]
    flat = weight.reshape(out_channels, -1, weight.shape[-1])  # (out, k³, in)
    out = features.new_zeros(num_out, out_channels)
    for k, (rows_in, rows_out) in enumerate(pairs):
        if transpose:
            rows_in, rows_out = rows_out, rows_in
        if len(rows_in):
            out.index_add_(0, rows_out, features[rows_in] @ flat[:, k].t())
    return out


class SparseModule(nn.Module):
    """A module whose forward takes and returns a :class:`SparseTensor`."""


class _SparseConv(SparseModule):
    """Weights in spconv's layout; ``forward`` runs the backend's path (``_torch_forward`` or spconv)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, bias: bool, indice_key: str | None):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel, self.indice_key = (
            in_channels,
            out_channels,
            kernel,
            indice_key,
        )
        self.weight = nn.Parameter(torch.empty(out_channels, kernel, kernel, kernel, in_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        fan_in = in_channels * kernel**3
        nn.init.uniform_(self.weight, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        self.__dict__["_spconv_module"] = None  # not a submodule: the state dict holds our weight only

    def forward(self, x: SparseTensor) -> SparseTensor:
        if backend() == "spconv":
            return self._run_spconv(x)
        features, coords, stride = self._torch_forward(x)
        if self.bias is not None:
            features = features + self.bias
        if coords is None:
            return x.replace_feature(features)
        return SparseTensor(features, coords, stride, x.batch_size, x.maps)

    def _run_spconv(self, x: SparseTensor) -> SparseTensor:
        """This layer through spconv (built once, sharing our weight). On CPUs spconv's kernels race
        when torch runs several threads (spconv issue #679: outputs and input gradients vary from run
        to run), so its forward and backward run on one thread there."""
        layer = self.__dict__["_spconv_module"]
        if layer is None:
            layer = self._spconv_layer(_spconv())
            layer.weight = self.weight  # shared parameter: training either backend trains this one
            self.__dict__["_spconv_module"] = layer
        on_cpu = x.features.device.type == "cpu"
        with _one_thread(on_cpu):
            result = layer(_as_spconv(x))
        if on_cpu and result.features.requires_grad:
            result.features.register_hook(_single_thread_backward)
        features = result.features + self.bias if self.bias is not None else result.features
        return SparseTensor(
            features, result.indices, self._out_stride(x), x.batch_size, x.maps, result.replace_feature(features)
        )

    def _out_stride(self, x: SparseTensor) -> int:
        return x.stride

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel={self.kernel}, indice_key={self.indice_key}"


class SubMConv3d(_SparseConv):
    """Submanifold convolution: outputs on the input's sites only."""

    def __init__(self, in_channels, out_channels, kernel: int = 3, bias: bool = False, indice_key: str | None = None):
        if kernel % 2 != 1:
            raise ValueError(f"submanifold kernels are odd, got {kernel}")
        super().__init__(in_channels, out_channels, kernel, bias, indice_key)

    def _spconv_layer(self, sp):
        k = self.kernel
        return sp.SubMConv3d(
            self.in_channels, self.out_channels, k, padding=k // 2, bias=False, indice_key=self.indice_key
        )

    def _torch_forward(self, x: SparseTensor):
        if self.kernel == 1:  # spconv reads a 1×1 weight's memory as (in, out)
            return x.features @ self.weight.reshape(self.in_channels, self.out_channels), None, None
        return _gather_conv(x.features, self.weight, _subm_pairs(x, self.kernel), len(x.features)), None, None


class SparseConv3d(_SparseConv):
    """Strided convolution with kernel = stride (the U-Nets' downsampling)."""

    def __init__(self, in_channels, out_channels, kernel: int = 2, stride: int = 2, bias=False, indice_key=None):
        if kernel != stride:
            raise ValueError("afcli's sparse downsampling takes kernel = stride")
        super().__init__(in_channels, out_channels, kernel, bias, indice_key)

    def _spconv_layer(self, sp):
        k = self.kernel
        return sp.SparseConv3d(self.in_channels, self.out_channels, k, k, bias=False, indice_key=self.indice_key)

    def _out_stride(self, x: SparseTensor) -> int:
        return x.stride * self.kernel

    def _torch_forward(self, x: SparseTensor):
        coords, pairs = _down_pairs(x, self.kernel, self.indice_key)
        return _gather_conv(x.features, self.weight, pairs, len(coords)), coords, self._out_stride(x)


class SparseInverseConv3d(_SparseConv):
    """The transpose of the ``SparseConv3d`` with the same ``indice_key``: back onto its input sites."""

    def __init__(self, in_channels, out_channels, kernel: int = 2, bias=False, indice_key: str | None = None):
        if indice_key is None:
            raise ValueError("an inverse convolution needs the indice_key of the downsampling it inverts")
        super().__init__(in_channels, out_channels, kernel, bias, indice_key)

    def _spconv_layer(self, sp):
        return sp.SparseInverseConv3d(
            self.in_channels, self.out_channels, self.kernel, bias=False, indice_key=self.indice_key
        )

    def _out_stride(self, x: SparseTensor) -> int:
        return x.stride // self.kernel

    def _torch_forward(self, x: SparseTensor):
        if ("inverse", self.indice_key) not in x.maps:
            raise InputError(f"no downsampling recorded under indice_key {self.indice_key!r}")
        coords, stride, pairs = x.maps[("inverse", self.indice_key)]
        return _gather_conv(x.features, self.weight, pairs, len(coords), transpose=True), coords, stride


class SparseSequential(nn.Sequential, SparseModule):
    """Modules in a row: sparse ones take the tensor, plain ones (BatchNorm1d, ReLU) its features."""

    def forward(self, x: SparseTensor) -> SparseTensor:
        for module in self:
            x = module(x) if isinstance(module, SparseModule) else x.replace_feature(module(x.features))
        return x
