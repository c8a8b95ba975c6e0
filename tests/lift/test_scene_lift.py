"""Scenes lifted from their RGB-D frames: projection and depth visibility against a teacher whose
features are pixel coordinates, streaming (any frame batch gives the same features), the frames
reader's errors, and the open-vocabulary probe with its picture on lifted rooms."""

import json

import numpy as np
import pytest
import torch

from afcli.errors import InputError
from afcli.lift.pipeline import FrameSettings, LiftSettings, lift_store
from afcli.store.schema import open_store, read_sample


class PixelTeacher:
    """Features (u, v) of each pixel centre, at full resolution: a lifted point's feature is the mean
    pixel it projected to."""

    id = "pixels"

    def provenance(self) -> dict:
        return {"teacher": "pixels", "weights": "none"}

    def __call__(self, rgb: torch.Tensor) -> torch.Tensor:
        batch, height, width, _ = rgb.shape
        v, u = torch.meshgrid(torch.arange(height).float(), torch.arange(width).float(), indexing="ij")
        return torch.stack([u, v]).expand(batch, 2, height, width)


def lifted(store, **frames):
    settings = LiftSettings(teacher="effnet-lite0", device="cpu", batch_views=frames.pop("batch", 4))
    settings.frames = FrameSettings(**frames)
    result = lift_store(store, settings, teacher=PixelTeacher())
    with open_store(store) as f:
        return (
            result,
            read_sample(f, 0, "features/pixels").astype(np.float32),
            read_sample(f, 0, "features/pixels_seen"),
        )


def test_one_frame_lifts_each_visible_point_to_its_pixel(rooms, tmp_path):
    import shutil

    from PIL import Image

    store = rooms / "one.h5"  # beside the store: sources are relative to its folder
    shutil.copy(rooms / "store.h5", store)
    frames = rooms / "scans" / "room0000_00" / "frames"
    result, features, seen = lifted(store, step=4, border=0)  # frame 0 only
    assert result["lifted"] == 3 and seen.mean() > 0.05
    K = np.loadtxt(frames / "intrinsic" / "intrinsic_depth.txt")[:3, :3]
    pose = np.loadtxt(frames / "pose" / "0.txt")
    depth = np.asarray(Image.open(frames / "depth" / "0.png")) / 1000
    with open_store(store) as f:
        xyz = read_sample(f, 0, "points/xyz").astype(np.float64)
    camera = (xyz - pose[:3, 3]) @ pose[:3, :3]
    pixel = camera[:, :2] / camera[:, 2:] * K[[0, 1], [0, 1]] + K[[0, 1], [2, 2]]
    seen = seen.astype(bool)
    np.testing.assert_allclose(features[seen], np.round(pixel[seen]), atol=0.51)  # fp16 of integer pixels
    u, v = np.round(pixel[seen]).astype(int).T
    observed = depth[v, u]
    assert (np.abs(observed - camera[seen, 2]) <= 0.25 * observed + 1e-3).all()


def test_frames_stream_in_any_batch(rooms, tmp_path):
    import shutil

    firsts = []
    for batch in (1, 3):
        store = rooms / f"b{batch}.h5"
        shutil.copy(rooms / "store.h5", store)
        firsts.append(lifted(store, batch=batch)[1:])
    np.testing.assert_array_equal(firsts[0][0], firsts[1][0])
    np.testing.assert_array_equal(firsts[0][1], firsts[1][1])


def test_missing_frames_name_the_scene(rooms, tmp_path):
    import shutil

    store = rooms / "missing.h5"
    shutil.copy(rooms / "store.h5", store)
    with pytest.raises(InputError, match="no RGB-D frames for scene room0000_00"):
        lifted(store, root=str(tmp_path / "nowhere"))
    (tmp_path / "frames" / "room0000_00").mkdir(parents=True)
    shutil.copytree(rooms / "scans" / "room0000_00" / "frames", tmp_path / "frames" / "room0000_00", dirs_exist_ok=True)
    (tmp_path / "frames" / "room0000_00" / "depth" / "1.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="1.png|unreadable"):
        lifted(store, root=str(tmp_path / "frames"))


def test_scene_probe_saves_predictions_eval_scannet_rescores(rooms, tmp_path, afcli_run):
    import shutil

    store = rooms / "probe.h5"
    shutil.copy(rooms / "store.h5", store)
    lifted(store)
    afcli_run("caption", store, "--phrases", "rules", check=0)
    args = ["--json", "eval", "scene-probe", "--store", store, "--steps", "30", "--save-predictions", tmp_path / "pred"]
    result = json.loads(afcli_run(*args, "--figure", tmp_path / "room.png", check=0).stdout)
    assert set(result["results"]) == {"open vocabulary", "closed-set linear", "chance"}
    assert (tmp_path / "room.png").stat().st_size > 1000
    rescored = json.loads(
        afcli_run("--json", "eval", "scannet", "--predictions", tmp_path / "pred", "--gt", store, check=0).stdout
    )
    assert rescored["f_miou"] == pytest.approx(result["results"]["open vocabulary"]["f_miou"])


@pytest.mark.slow
def test_two_processes_lift_scenes_as_one(rooms):
    """--gpus 2 on the CPU: each rank streams its scenes' frames into its own shard, merged after."""
    import shutil

    stores = {}
    for gpus in (1, 2):
        store = rooms / f"gpus{gpus}.h5"
        shutil.copy(rooms / "store.h5", store)
        settings = LiftSettings(teacher="effnet-lite0", device="cpu", batch_views=4)
        assert lift_store(store, settings, gpus=gpus)["done"] == 3
        with open_store(store) as f:
            stores[gpus] = f["features/effnet-lite0-s16"][:], f["features/effnet-lite0-s16_seen"][:]
    # a rank runs the teacher on one thread: its sums round differently, by an fp16 step at most
    np.testing.assert_allclose(stores[1][0], stores[2][0], rtol=2e-3, atol=2e-3)
    np.testing.assert_array_equal(stores[1][1], stores[2][1])
    assert not list(rooms.glob("gpus2.lift-*"))
