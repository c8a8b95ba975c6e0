"""The one-canvas deformable attention core equals Deformable DETR's per-level grid_sample form —
outputs and gradients, with locations inside, on the edges of and far outside every level."""

import pytest
import torch

from afcli.ops.deformable import ms_deform_attn, ms_deform_attn_per_level


def inputs(shapes, batch=2, queries=9, heads=3, dim=4, points=5, spread=1.6, seed=0):
    g = torch.Generator().manual_seed(seed)
    value = torch.randn(batch, sum(h * w for h, w in shapes), heads, dim, generator=g, dtype=torch.float64)
    locations = torch.rand(batch, queries, heads, len(shapes), points, 2, generator=g, dtype=torch.float64)
    locations = (locations - 0.5) * spread + 0.5  # some far outside [0, 1]
    locations[0, 0, 0, :, 0] = torch.tensor([0.0, 1.0], dtype=torch.float64)  # on the edges
    locations[0, 0, 0, :, 1] = torch.tensor([1.0, 0.0], dtype=torch.float64)
    weights = torch.rand(batch, queries, heads, len(shapes), points, generator=g, dtype=torch.float64)
    return value, locations, weights


@pytest.mark.parametrize("shapes", [[(8, 8), (4, 4), (2, 2)], [(5, 7), (3, 1), (6, 2)], [(4, 4)]])
def test_one_canvas_equals_per_level(shapes):
    value, locations, weights = inputs(shapes)
    for tensor in (value, locations, weights):
        tensor.requires_grad_(True)
    ours = ms_deform_attn(value, shapes, locations, weights)
    reference = ms_deform_attn_per_level(value, shapes, locations, weights)
    assert ours.shape == reference.shape == (2, 9, 12)
    assert torch.allclose(ours, reference, atol=1e-12)
    upstream = torch.randn_like(ours)
    ours_grads = torch.autograd.grad((ours * upstream).sum(), (value, locations, weights))
    reference_grads = torch.autograd.grad((reference * upstream).sum(), (value, locations, weights))
    for mine, theirs in zip(ours_grads, reference_grads):
        assert torch.allclose(mine, theirs, atol=1e-10)


def test_far_outside_reads_zero():
    shapes = [(4, 4), (2, 2)]
    value, locations, weights = inputs(shapes)
    locations = torch.full_like(locations, 3.0)
    assert ms_deform_attn(value, shapes, locations, weights).abs().max() == 0
