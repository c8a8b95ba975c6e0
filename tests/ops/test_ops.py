"""Point ops: semantics against brute force, and exact parity of the compiled and pure backends."""

import os

import pytest
import torch

from afcli import ops
from afcli.errors import InputError
from afcli.ops.backend import _import

HAVE_COMPILED = _import("torch_cluster") is not None and _import("torch_scatter") is not None
needs_compiled = pytest.mark.parity


@pytest.fixture(autouse=True)
def _compiled_ops(request):
    """Parity tests skip where the compiled ops are absent (plain ``make test``), but fail under
    ``make test-ops`` (AFCLI_TEST_OPS=1), which installed them: a skip must not hide a broken build."""
    if request.node.get_closest_marker("parity") and not HAVE_COMPILED:
        message = "torch-cluster / torch-scatter do not import (pip install 'afcli[ops]')"
        if os.environ.get("AFCLI_TEST_OPS") == "1":
            pytest.fail(message)
        pytest.skip(message)


CASES = [(1, 37), (3, 1000), (2, 2048)]


def clouds(batch, count, seed=0, duplicates=False):
    generator = torch.Generator().manual_seed(seed)
    points = torch.rand(batch, count, 3, generator=generator)
    if duplicates:
        points[:, count // 2 : count // 2 + count // 4] = points[:, : count // 4]
    return points


def both(monkeypatch, fn):
    monkeypatch.setenv("AFCLI_OPS", "torch")
    pure = fn()
    monkeypatch.setenv("AFCLI_OPS", "compiled")
    compiled = fn()
    return pure, compiled


def test_fps_is_farthest_point_sampling():
    points = clouds(2, 200)
    chosen = ops.fps(points, 16)
    assert chosen.shape == (2, 16) and (chosen[:, 0] == 0).all()
    for b in range(2):
        picked = points[b, chosen[b]]
        # Greedy rule: each pick maximises the distance to those before it.
        for i in range(1, 16):
            nearest = torch.cdist(points[b], picked[:i]).min(1).values
            assert nearest[chosen[b, i]] == nearest.max()
    assert len(set(chosen[0].tolist())) == 16


def test_fps_start_index():
    points = clouds(1, 100)
    assert ops.fps(points, 5, start=7)[0, 0] == 7


def test_knn_matches_brute_force():
    points, queries = clouds(2, 300), clouds(2, 20, seed=1)
    index, squared = ops.knn(points, queries, 8)
    expected = torch.cdist(queries, points).topk(8, largest=False).indices
    assert torch.equal(index.sort(-1).values, expected.sort(-1).values)
    assert (squared[..., 1:] >= squared[..., :-1]).all()


def test_ball_query_pointnet2_semantics():
    points = torch.tensor([[[0.0, 0, 0], [5, 0, 0], [0.1, 0, 0], [0.2, 0, 0], [9, 9, 9]]])
    queries = torch.tensor([[[0.0, 0, 0], [9, 9, 9], [50, 50, 50]]])
    index = ops.ball_query(points, queries, radius=0.15, k=3)
    assert index.tolist() == [[[0, 2, 0], [4, 4, 4], [0, 0, 0]]]


def test_group_is_relative_to_centres():
    points = clouds(2, 64)
    centres_index = ops.fps(points, 4)
    centres = ops.gather_points(points, centres_index)
    index, _ = ops.knn(points, centres, 5)
    grouped, features = ops.group(points, index, centres, features=points * 2)
    assert grouped.shape == (2, 4, 5, 3)
    assert torch.allclose(grouped[:, :, 0], torch.zeros(2, 4, 3))  # each centre is its own nearest neighbour
    assert torch.allclose(features, 2 * ops.gather_points(points, index))


def test_three_nn_interpolate_recovers_source_values():
    sources = clouds(1, 50)
    features = torch.randn(1, 50, 4)
    assert torch.allclose(ops.three_nn_interpolate(sources, sources, features), features, atol=1e-5)


def test_scatter_reductions_and_empty_segments():
    src = torch.tensor([[1.0], [3.0], [5.0], [-2.0]])
    index = torch.tensor([0, 0, 2, 2])
    assert ops.scatter_sum(src, index, dim_size=4).flatten().tolist() == [4, 0, 3, 0]
    assert ops.scatter_mean(src, index, dim_size=4).flatten().tolist() == [2, 0, 1.5, 0]
    assert ops.scatter_max(src, index, dim_size=4).flatten().tolist() == [3, 0, 5, 0]


def test_bad_shapes_are_input_errors():
    with pytest.raises(InputError):
        ops.fps(torch.rand(10, 3), 4)
    with pytest.raises(InputError):
        ops.knn(torch.rand(1, 4, 3), torch.rand(1, 2, 3), 5)


@needs_compiled
@pytest.mark.parametrize("batch,count", CASES)
@pytest.mark.parametrize("duplicates", [False, True])
def test_fps_parity(monkeypatch, batch, count, duplicates):
    points = clouds(batch, count, duplicates=duplicates)
    pure, compiled = both(monkeypatch, lambda: ops.fps(points, min(64, count)))
    assert torch.equal(pure, compiled)


@needs_compiled
@pytest.mark.parametrize("batch,count", CASES)
@pytest.mark.parametrize("duplicates", [False, True])
def test_knn_parity(monkeypatch, batch, count, duplicates):
    points = clouds(batch, count, duplicates=duplicates)
    queries = ops.gather_points(points, ops.fps(points, min(32, count)))
    (pure_index, pure_d), (comp_index, comp_d) = both(monkeypatch, lambda: ops.knn(points, queries, 16))
    assert torch.equal(pure_d, comp_d)  # identical distances even where tied points swap places
    if not duplicates:
        assert torch.equal(pure_index, comp_index)


@needs_compiled
@pytest.mark.parametrize("batch,count", CASES)
def test_three_nn_parity(monkeypatch, batch, count):
    sources, targets = clouds(batch, count), clouds(batch, count + 5, seed=2)
    features = torch.randn(batch, count, 6)
    pure, compiled = both(monkeypatch, lambda: ops.three_nn_interpolate(targets, sources, features))
    assert torch.allclose(pure, compiled, atol=1e-6)


@needs_compiled
@pytest.mark.parametrize("reduce", ["scatter_sum", "scatter_mean", "scatter_max"])
@pytest.mark.parametrize("size,segments", [(1, 1), (100_003, 517), (4096, 7)])
def test_scatter_parity(monkeypatch, reduce, size, segments):
    generator = torch.Generator().manual_seed(size)
    src = torch.randn(size, 5, generator=generator)
    index = torch.randint(0, segments, (size,), generator=generator)
    fn = getattr(ops, reduce)
    pure, compiled = both(monkeypatch, lambda: fn(src, index, dim=0, dim_size=segments + 2))
    assert torch.allclose(pure, compiled, atol=1e-6, rtol=1e-6)


def test_forced_backend_is_reported(monkeypatch):
    monkeypatch.setenv("AFCLI_OPS", "torch")
    assert set(ops.report().values()) == {"torch"}
    monkeypatch.setenv("AFCLI_OPS", "nonsense")
    with pytest.raises(InputError):
        ops.report()
