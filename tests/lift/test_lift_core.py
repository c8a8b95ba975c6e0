"""Lifting: projection + visibility + interpolation proven with a coordinate teacher, occlusion,
patch-grid conventions, aggregation and the depth-only visibility modes."""

import numpy as np
import pytest
import torch

from afcli.data.geometry import sample_surface
from afcli.data.synth import build_shape
from afcli.lift.core import LiftOptions, depth_visibility, fill_unseen, lift_features, render_visibility, sample_cells
from afcli.render import Shape, make_rig, render

SIZE = 96
TOLERANCE = 0.02


def normalised_shape(category: str, seed: int = 0, points: int = 1024):
    rng = np.random.default_rng(seed)
    mesh, _, _ = build_shape(category, rng)
    vertices = mesh.vertices - mesh.vertices.mean(0)
    vertices /= np.linalg.norm(vertices, axis=1).max()
    xyz, normals, face = sample_surface(vertices, mesh.faces, points, rng)
    return (
        Shape(torch.tensor(vertices, dtype=torch.float32), torch.tensor(mesh.faces)),
        torch.tensor(xyz, dtype=torch.float32),
        torch.tensor(normals, dtype=torch.float32),
        torch.tensor(face, dtype=torch.long),
    )


def coordinate_maps(views) -> torch.Tensor:
    """The coordinate teacher: each pixel's feature is its 3D surface point (from depth and camera)."""
    origins, directions = views.cameras.rays()
    return (origins[:, None, None] + views.depth[..., None] * directions).permute(0, 3, 1, 2)


CASES = [("mesh", "embree"), ("mesh", "torch"), ("cloud", "torch")]


@pytest.mark.parametrize("kind,backend", CASES)
@pytest.mark.parametrize("category", ["Mug", "Chair", "Scissors"])
def test_coordinate_teacher_recovers_each_points_position(kind, backend, category):
    if backend == "embree":
        pytest.importorskip("embreex")
    mesh, points, normals, face = normalised_shape(category)
    shape, own = (mesh, face) if kind == "mesh" else (Shape(points), torch.arange(len(points)))
    cameras = make_rig("sphere", 12, SIZE)
    views = render(shape, cameras, backend=backend)
    maps = coordinate_maps(views)
    pixels, z = cameras.project(points)
    visible = render_visibility(pixels, z, views.index, views.depth, own, TOLERANCE)
    assert visible.any(0).float().mean() > 0.7
    options = LiftOptions(interp="nearest")
    per_view = []
    for v in range(len(cameras)):
        only = torch.zeros_like(visible)
        only[v] = visible[v]
        feature, seen, _ = lift_features(points, maps, pixels, only, (SIZE, SIZE), options)
        assert torch.equal(seen, visible[v])
        # The lifted coordinate re-projects into the point's own pixel (within half a pixel per
        # axis: the pixel footprint) and lies on the point's own face, or within the visibility
        # tolerance of its depth.
        back, back_depth = cameras.project(feature[seen])
        assert (back[v] - pixels[v, seen]).abs().max() <= 0.5 + 1e-3
        on_face = ((feature[seen] - points[seen]) * normals[seen]).sum(1).abs() < 1e-4
        near_depth = (back_depth[v] - z[v, seen]).abs() <= TOLERANCE + 1e-4
        assert (on_face | near_depth).all()
        per_view.append(torch.where(seen[:, None], feature, torch.zeros_like(feature)))
    feature, seen, count = lift_features(points, maps, pixels, visible, (SIZE, SIZE), options)
    mean = torch.stack(per_view).sum(0)[seen] / count[seen, None]
    assert torch.allclose(feature[seen], mean, atol=1e-5)
    footprint = (z.max() / cameras.K[0, 0, 0]).item()
    assert (feature[seen] - points[seen]).norm(dim=1).median() < footprint


@pytest.mark.parametrize("kind", ["mesh", "cloud"])
def test_hidden_points_never_get_the_occluders_features(kind):
    """A small sphere in front of a big one: the object-id teacher must never paint the big
    sphere's hidden points with the small sphere's id."""
    import trimesh

    big = trimesh.creation.icosphere(4, 0.6)
    small = trimesh.creation.icosphere(3, 0.3)
    small.apply_translation([0, 0.1, 1.0])
    scene = trimesh.util.concatenate([big, small])
    owner_face = torch.cat([torch.zeros(len(big.faces)), torch.ones(len(small.faces))]).long()
    rng = np.random.default_rng(0)
    xyz, _, face = sample_surface(scene.vertices, scene.faces, 3000, rng)
    points, face = torch.tensor(xyz, dtype=torch.float32), torch.tensor(face)
    owner = owner_face[face]
    if kind == "mesh":
        shape, own, owner_of_id = (
            Shape(torch.tensor(scene.vertices, dtype=torch.float32), torch.tensor(scene.faces)),
            face,
            owner_face,
        )
    else:
        shape, own, owner_of_id = Shape(points), torch.arange(len(points)), owner
    cameras = make_rig("sphere", 12, SIZE)
    views = render(shape, cameras, backend="torch")
    maps = torch.nn.functional.one_hot(torch.where(views.index >= 0, owner_of_id[views.index.clamp(min=0)], 2), 3)
    maps = maps.permute(0, 3, 1, 2).float()
    pixels, z = cameras.project(points)
    visible = render_visibility(pixels, z, views.index, views.depth, own, TOLERANCE)
    flat = pixels.round().long()
    inside = (flat >= 0).all(-1) & (flat < SIZE).all(-1)
    hidden_in_some_view = ((owner == 0) & (inside & ~visible).any(0)).sum()
    assert hidden_in_some_view > 100  # the scene really occludes
    feature, seen, _ = lift_features(points, maps, pixels, visible, (SIZE, SIZE), LiftOptions(interp="nearest"))
    hidden_object = (owner == 0) & seen
    assert hidden_object.sum() > 1000
    assert feature[hidden_object, 1].max() == 0  # never the occluder's id


def test_bilinear_is_grid_sample_without_aligned_corners():
    torch.manual_seed(0)
    feature_map = torch.randn(5, 7, 9)
    height, width = 70, 90
    pixels = torch.rand(400, 2) * torch.tensor([width + 0.0, height + 0.0]) - 0.5  # the whole image, edges included
    pixels = torch.cat([pixels, torch.tensor([[-0.5, -0.5], [width - 0.5, height - 0.5], [0.0, 0.0]])])
    ours = sample_cells(feature_map, pixels, height, width, "bilinear")
    grid = torch.stack([(pixels[:, 0] + 0.5) / width * 2 - 1, (pixels[:, 1] + 0.5) / height * 2 - 1], -1)
    reference = torch.nn.functional.grid_sample(
        feature_map[None], grid[None, None], mode="bilinear", padding_mode="border", align_corners=False
    )
    assert torch.allclose(ours, reference[0, :, 0].T, atol=1e-5)


def test_nearest_picks_the_cell_under_the_pixel():
    cells = torch.arange(4 * 4, dtype=torch.float32).view(1, 4, 4)  # 4x4 grid over a 64x64 image: 16 px cells
    pixels = torch.tensor([[0.0, 0.0], [15.0, 0.0], [16.0, 0.0], [63.0, 63.0], [-0.5, 31.4]])
    values = sample_cells(cells, pixels, 64, 64, "nearest")[:, 0]
    assert values.tolist() == [0.0, 0.0, 1.0, 15.0, 4.0]


def test_depth_visibility_modes():
    z = torch.tensor([1.0, 1.2, 1.3, 0.9, 1.0])
    observed = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0])
    relative, weight = depth_visibility(z, observed, "relative", 0.25)  # OpenScene
    assert relative.tolist() == [True, True, False, True, False] and weight.tolist() == [1, 1, 0, 1, 0]
    absolute, weight = depth_visibility(z, observed, "absolute", 0.05)  # D3Fields, μ = 0.05
    assert absolute.tolist() == [True, False, False, True, False]
    assert weight[0] == 1.0 and weight[3] == pytest.approx(float(np.exp((0.05 - 0.1) / 0.05)))
    with pytest.raises(Exception, match="unknown depth visibility mode"):
        depth_visibility(z, observed, "fuzzy", 0.1)


def test_aggregation_options():
    points = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [5.0, 0.0, 0.0]])
    maps = torch.stack([torch.full((2, 1, 1), 1.0), torch.tensor([3.0, 0.0]).view(2, 1, 1)])  # two views, 1x1 grids
    pixels = torch.zeros(2, 3, 2)
    visible = torch.tensor([[True, True, False], [True, False, False]])
    features, seen, count = lift_features(points, maps, pixels, visible, (1, 1), LiftOptions(fill_neighbours=1))
    assert torch.allclose(features[0], torch.tensor([2.0, 0.5]))  # plain mean of the two views
    assert count.tolist() == [2, 1, 0] and seen.tolist() == [True, True, False]
    assert torch.equal(features[2], features[1])  # filled from its nearest seen neighbour
    normalised, _, _ = lift_features(points, maps, pixels, visible, (1, 1), LiftOptions(normalize_views=True))
    assert torch.allclose(normalised[0], torch.tensor([(2**-0.5 + 1) / 2, 2**-0.5 / 2]))
    normals = torch.tensor([[0.0, 0.0, 1.0]] * 3)
    centres = torch.tensor([[0.0, 0.0, 2.0], [2.0, 0.0, 0.0]])  # view 0 head-on, view 1 grazing
    weighted, _, _ = lift_features(
        points,
        maps,
        pixels,
        visible,
        (1, 1),
        LiftOptions(view_weight="cosine"),
        normals=normals,
        camera_centres=centres,
    )
    assert torch.allclose(weighted[0], torch.tensor([1.0, 1.0]), atol=1e-6)


def test_fill_unseen_uses_k_nearest_seen_points():
    points = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [10.0, 0, 0], [0.4, 0, 0]])
    features = torch.tensor([[1.0], [3.0], [100.0], [0.0]])
    seen = torch.tensor([True, True, True, False])
    assert fill_unseen(points, features, seen, 2)[3].item() == 2.0
