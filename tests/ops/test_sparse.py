"""Sparse-voxel ops: voxelisation modes, the pure-PyTorch convolutions against dense ``conv3d``, and
parity of the torch and spconv backends (outputs and gradients, float32) for single layers and whole
U-Nets. The spconv tests skip without spconv, but fail under ``make test-ops`` (AFCLI_TEST_OPS=1)."""

import os

import pytest
import torch

from afcli.errors import InputError
from afcli.models.spunet import SparseUNetIndoor, SparseUNetIndoorConfig, SpUNet, SpUNetConfig
from afcli.ops.backend import _import
from afcli.ops.sparse import (
    SparseConv3d,
    SparseInverseConv3d,
    SparseTensor,
    SubMConv3d,
    hash_coords,
    voxel_mean,
    voxelize,
)

HAVE_SPCONV = _import("spconv") is not None


@pytest.fixture(autouse=True)
def _spconv(request):
    if request.node.get_closest_marker("parity") and not HAVE_SPCONV:
        message = "spconv does not import (pip install 'afcli[sparse]')"
        if os.environ.get("AFCLI_TEST_OPS") == "1":
            pytest.fail(message)
        pytest.skip(message)


def room(count=4000, seed=0, extent=2.0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, 3, generator=generator) * extent


def dense_grid(features, coords, size):
    grid = torch.zeros(1, features.shape[1], *size)
    c = coords.long()
    grid[0, :, c[:, 1], c[:, 2], c[:, 3]] = features.t()
    return grid


def test_voxelize_keeps_one_point_per_cell_and_maps_every_point():
    points = room()
    for mode in ("first", "random", "mean"):
        voxels = voxelize(points, 0.1, mode=mode, generator=torch.Generator().manual_seed(1))
        cells = torch.floor(points / 0.1).long()
        cells -= cells.min(0).values
        assert len(torch.unique(cells, dim=0)) == len(voxels.coords)
        # every point's voxel holds its own cell; the kept point lies in its voxel
        assert torch.equal(voxels.coords[voxels.inverse][:, 1:].long(), cells)
        assert torch.equal(cells[voxels.index], voxels.coords[:, 1:].long())
    first = voxelize(points, 0.1, mode="first")
    assert all(int(first.index[v]) == int(torch.nonzero(first.inverse == v)[0]) for v in range(0, len(first.index), 97))
    mean = voxel_mean(points, first)
    v = int(first.inverse[5])
    torch.testing.assert_close(mean[v], points[first.inverse == v].mean(0))
    other = voxelize(points, 0.1, mode="random", generator=torch.Generator().manual_seed(2)).index
    assert not torch.equal(other, first.index)


def test_voxelize_batches_and_bad_input():
    points = torch.cat([room(), room(seed=1) + 10])
    batch = torch.cat([torch.zeros(4000), torch.ones(4000)]).long()
    voxels = voxelize(points, 0.2, batch)
    assert set(voxels.coords[:, 0].tolist()) == {0, 1}
    assert int(voxels.coords[voxels.coords[:, 0] == 1][:, 1:].min()) == 0  # each batch starts at 0
    with pytest.raises(InputError, match="NaN"):
        voxelize(torch.tensor([[float("nan"), 0, 0]]), 0.1)
    with pytest.raises(InputError, match="voxel mode"):
        voxelize(points, 0.1, mode="max")


def test_torch_convolutions_equal_dense_conv3d(monkeypatch):
    monkeypatch.setenv("AFCLI_OPS", "torch")
    torch.manual_seed(0)
    voxels = voxelize(room(3000), 0.1)
    c = voxels.coords.long()
    features = torch.randn(len(c), 4)
    size = tuple(int(v) + 2 for v in c[:, 1:].max(0).values.tolist())
    size = tuple(s + s % 2 for s in size)
    grid = dense_grid(features, voxels.coords, size)
    x = SparseTensor.from_voxels(features, voxels)
    for kernel in (3, 5):
        conv = SubMConv3d(4, 5, kernel)
        dense = torch.nn.functional.conv3d(grid, conv.weight.permute(0, 4, 1, 2, 3), padding=kernel // 2)
        expected = dense[0].permute(1, 2, 3, 0)[c[:, 1], c[:, 2], c[:, 3]]
        torch.testing.assert_close(conv(x).features, expected, atol=1e-5, rtol=1e-5)
    down = SparseConv3d(4, 6, 2, 2, indice_key="d")
    coarse = down(x)
    dense = torch.nn.functional.conv3d(grid, down.weight.permute(0, 4, 1, 2, 3), stride=2)
    cc = coarse.coords.long()
    torch.testing.assert_close(
        coarse.features, dense[0].permute(1, 2, 3, 0)[cc[:, 1], cc[:, 2], cc[:, 3]], atol=1e-5, rtol=1e-5
    )
    assert coarse.stride == 2
    up = SparseInverseConv3d(6, 3, 2, indice_key="d")
    fine = up(coarse)
    back = torch.nn.functional.conv_transpose3d(
        dense_grid(coarse.features, coarse.coords, dense.shape[2:]), up.weight.permute(4, 0, 1, 2, 3), stride=2
    )
    assert torch.equal(fine.coords, x.coords) and fine.stride == 1
    torch.testing.assert_close(
        fine.features, back[0].permute(1, 2, 3, 0)[c[:, 1], c[:, 2], c[:, 3]], atol=1e-5, rtol=1e-5
    )


def _run(monkeypatch, mode, build, features, voxels):
    monkeypatch.setenv("AFCLI_OPS", mode)
    torch.manual_seed(3)
    model = build()
    model.train()
    inputs = features.clone().requires_grad_(True)
    out = model(SparseTensor.from_voxels(inputs, voxels))
    values = out.features if hasattr(out, "levels") else out.features
    keys = hash_coords(out.coords) if hasattr(out, "coords") else None
    order = torch.argsort(keys) if keys is not None else torch.arange(len(values))
    (values * torch.linspace(-1, 1, values.shape[1])).pow(2).sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return values[order].detach(), inputs.grad, grads


def _close(a, b):
    """Agreement to 1e-5 of the largest magnitude (float32)."""
    scale = max(1.0, float(b.abs().max()))
    assert float((a - b).abs().max()) <= 1e-5 * scale, float((a - b).abs().max()) / scale


LAYERS = {
    "subm3": lambda: SubMConv3d(4, 8, 3, bias=True),
    "subm5": lambda: SubMConv3d(4, 8, 5),
    "down": lambda: SparseConv3d(4, 8, 2, 2),
    "spunet": lambda: SpUNet(SpUNetConfig(in_channels=4, channels=[8, 16, 16, 16, 16, 16, 8, 8], layers=[1] * 8)),
    "spunet-classes": lambda: SpUNet(
        SpUNetConfig(in_channels=4, num_classes=3, channels=[8, 8, 8, 8], layers=[1, 1, 1, 1])
    ),
    "spunet16": lambda: SparseUNetIndoor(SparseUNetIndoorConfig(in_channels=4, width=8, num_levels=3, block_reps=1)),
}


@pytest.mark.parity
@pytest.mark.parametrize("name", list(LAYERS))
def test_torch_and_spconv_agree_on_outputs_and_gradients(monkeypatch, name):
    voxels = voxelize(room(6000, extent=3.0), 0.08)
    features = torch.randn(len(voxels.coords), 4, generator=torch.Generator().manual_seed(4))
    pure = _run(monkeypatch, "torch", LAYERS[name], features, voxels)
    spconv = _run(monkeypatch, "compiled", LAYERS[name], features, voxels)
    _close(pure[0], spconv[0])
    _close(pure[1], spconv[1])
    assert pure[2].keys() == spconv[2].keys()
    for key in pure[2]:
        _close(pure[2][key], spconv[2][key])


@pytest.mark.parity
def test_spconv_cpu_patch_and_threads(monkeypatch):
    """spconv 2.3's backward asks for a CUDA stream (patched on CPU-only machines); afcli runs its CPU
    kernels on one thread (they race otherwise) and gives torch its threads back after the backward."""
    import spconv.pytorch.ops as spconv_ops

    monkeypatch.setenv("AFCLI_OPS", "compiled")
    voxels = voxelize(room(2000), 0.1)
    conv = SubMConv3d(4, 4, 3)
    features = torch.randn(len(voxels.coords), 4, requires_grad=True)
    threads = torch.get_num_threads()
    conv(SparseTensor.from_voxels(features, voxels)).features.sum().backward()
    assert features.grad is not None and torch.get_num_threads() == threads
    if not torch.cuda.is_available():
        assert spconv_ops.get_current_stream() == 0


def test_spunet_pyramid_and_save_load(tmp_path, monkeypatch):
    monkeypatch.setenv("AFCLI_OPS", "torch")
    config = SpUNetConfig(in_channels=3, channels=[8, 16, 16, 16, 16, 16, 8, 8], layers=[1] * 8)
    model = SpUNet(config).eval()
    voxels = voxelize(room(3000, extent=3.0), 0.05)
    x = SparseTensor.from_voxels(torch.rand(len(voxels.coords), 3), voxels)
    out = model(x)
    assert [level.stride for level in out.levels] == [16, 8, 4, 2, 1]
    assert [level.features.shape[1] for level in out.levels] == [16, 16, 16, 8, 8]
    assert torch.equal(out.levels[-1].coords, x.coords) and out.features.shape == (len(x.coords), 8)
    model.save_pretrained(tmp_path / "m")
    again = SpUNet.from_pretrained(tmp_path / "m").eval()
    torch.testing.assert_close(again(x).features, out.features)
    indoor = SparseUNetIndoor(SparseUNetIndoorConfig(in_channels=3, width=4, num_levels=4)).eval()
    levels = indoor(x).levels
    assert [level.stride for level in levels] == [8, 4, 2, 1] and levels[-1].features.shape[1] == 4
