"""Rendering: camera conventions, backend agreement, point splatting."""

import math

import numpy as np
import pytest
import torch

from afcli.errors import InputError
from afcli.render import Shape, make_rig, render
from afcli.render.cameras import Cameras, intrinsics, look_at, rig_angles


def torus(sections=(96, 48)):
    import trimesh

    mesh = trimesh.creation.torus(0.6, 0.25, major_sections=sections[0], minor_sections=sections[1])
    mesh.apply_transform(trimesh.transformations.rotation_matrix(0.5, [1, 0, 0]))  # tilted: hides parts of itself
    return Shape(torch.tensor(mesh.vertices, dtype=torch.float32), torch.tensor(mesh.faces)), mesh


def test_camera_convention_opencv():
    cameras = make_rig("ring", 4, 64)
    pose = cameras.c2w[0]
    centre = pose[:3, 3]
    forward, right, down = pose[:3, 2], pose[:3, 0], pose[:3, 1]
    assert torch.allclose(torch.linalg.det(pose[:3, :3]), torch.tensor(1.0), atol=1e-5)
    assert torch.allclose(torch.nn.functional.normalize(-centre, dim=0), forward, atol=1e-5)  # looks at the origin
    assert down[1] < 0  # image y runs down, world y is up
    points = torch.stack([centre + 2 * forward, centre + 2 * forward + 0.1 * right, centre + 2 * forward + 0.1 * down])
    pixels, depth = cameras.project(points)
    c = (64 - 1) / 2
    assert torch.allclose(pixels[0, 0], torch.tensor([c, c]), atol=1e-4)
    assert pixels[0, 1, 0] > c and pixels[0, 2, 1] > c
    assert torch.allclose(depth[0], torch.full((3,), 2.0), atol=1e-5)  # depth along the optical axis
    origins, directions = cameras.rays()
    back = origins[0] + 2.0 * directions[0, 10, 20]
    assert torch.allclose(cameras.project(back[None])[0][0, 0], torch.tensor([20.0, 10.0]), atol=1e-3)


def test_rigs_document_their_angles():
    assert [e for _, e in rig_angles("sphere", 12)].count(30.0) == 6
    assert sorted(a for a, _ in rig_angles("sphere", 12)) == [30.0 * i for i in range(12)]
    assert {e for _, e in rig_angles("ring", 5)} == {20.0}
    with pytest.raises(InputError):
        rig_angles("cube", 12)
    pose = look_at(torch.tensor([[0.0, 3.0, 0.0]]))  # straight above: still a valid rotation
    assert torch.allclose(pose[0, :3, :3] @ pose[0, :3, :3].T, torch.eye(3), atol=1e-6)


def test_backends_agree_on_index_and_depth():
    pytest.importorskip("embreex")
    shape, _ = torus()
    cameras = make_rig("sphere", 12, 128)
    embree, raster = render(shape, cameras, backend="embree"), render(shape, cameras, backend="torch")
    assert (embree.index >= 0).float().mean() > 0.2
    agree = (embree.index == raster.index).float().mean().item()
    assert agree >= 0.995, agree
    both = (embree.index >= 0) & (embree.index == raster.index)
    assert (embree.depth - raster.depth)[both].abs().max() < 1e-4
    assert ((embree.depth > 0) == (embree.index >= 0)).all()
    assert embree.rgb.dtype == torch.uint8 and embree.rgb.shape == (12, 128, 128, 3)
    assert (embree.rgb[embree.index < 0] == 255).all()  # white background


def test_mesh_depth_is_the_surface():
    """Back-projecting each pixel's depth lands on the face the index map names."""
    shape, mesh = torus()
    cameras = make_rig("sphere", 4, 64)
    views = render(shape, cameras, backend="torch")
    origins, directions = cameras.rays()
    hit = views.index >= 0
    surface = (origins[:, None, None] + views.depth[..., None] * directions)[hit]
    triangles = torch.tensor(mesh.triangles, dtype=torch.float32)[views.index[hit]]
    normal = torch.nn.functional.normalize(
        torch.linalg.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]), dim=1
    )
    assert ((surface - triangles[:, 0]) * normal).sum(1).abs().max() < 1e-4


def test_point_splats_hide_what_is_behind():
    front = torch.tensor([[0.0, 0.0, 0.5]])
    back = torch.tensor([[0.0, 0.0, -0.5]])
    cameras = Cameras(intrinsics(32, 1).float(), look_at(torch.tensor([[0.0, 0.0, 3.0]])).float(), 32, 32)
    views = render(Shape(torch.cat([back, front])), cameras, splat_radius=2.0)
    ids = views.index[0][views.index[0] >= 0]
    assert ids.unique().tolist() == [1]  # the front point covers the back one
    assert (views.index[0] >= 0).sum() == 13  # a disc of radius 2 px
    assert math.isclose(views.depth[0][views.index[0] == 1][0].item(), 2.5, rel_tol=1e-6)


def test_unknown_backend_is_an_input_error():
    shape, _ = torus((8, 4))
    with pytest.raises(InputError, match="unknown render backend"):
        render(shape, make_rig("ring", 1, 16), backend="vulkan")


def test_vertex_colours_are_interpolated():
    shape, _ = torus((24, 12))
    shape.vertex_colors = torch.zeros(len(shape.vertices), 3)
    shape.vertex_colors[:, 0] = 1.0
    views = render(shape, make_rig("ring", 1, 48), backend="torch")
    lit = views.rgb[0][views.index[0] >= 0].float()
    assert (lit[:, 1] == 0).all() and (lit[:, 0] > 0).all()
    assert np.isfinite(views.depth.numpy()).all()


def test_light_and_background_are_configurable():
    shape, _ = torus((24, 12))
    cameras = make_rig("ring", 2, 48)
    headlight = render(shape, cameras, backend="torch", light=(0.0, 0.0, -1.0), background=(0, 0, 0))
    side = render(shape, cameras, backend="torch", light=(1.0, 0.0, 0.0), background=(0, 0, 0))
    empty = headlight.index < 0
    assert (headlight.rgb[empty] == 0).all()
    assert not torch.equal(headlight.rgb, side.rgb)
    # With the light at the camera, surfaces facing the camera are brightest.
    assert headlight.rgb[~empty].float().mean() > side.rgb[~empty].float().mean()
