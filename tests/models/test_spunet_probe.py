"""Both sparse-convolution backends train a room-segmentation network on the built-in rooms."""

import os

import pytest

from afcli.ops.backend import _import


@pytest.fixture(scope="module")
def room_store(tmp_path_factory):
    from afcli.data.rooms import synthesize_rooms
    from afcli.data.scenes import import_scenes

    out = tmp_path_factory.mktemp("rooms")
    synthesize_rooms(out, count=3, frames=1, max_edge=0.2, seed=1)
    import_scenes(out, out / "store.h5")
    return out / "store.h5"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "compiled"])
def test_backends_train_room_segmentation(room_store, backend, monkeypatch):
    if backend == "compiled" and _import("spconv") is None:
        if os.environ.get("AFCLI_TEST_OPS") == "1":
            pytest.fail("spconv does not import")
        pytest.skip("spconv does not import (pip install 'afcli[sparse]')")
    monkeypatch.setenv("AFCLI_OPS", backend)
    from afcli.eval.scene_probe import load_scene_voxels, train_segmentation
    from afcli.models.spunet import SpUNet, SpUNetConfig

    scenes = load_scene_voxels(room_store, 0.1)
    model = SpUNet(SpUNetConfig(in_channels=6, channels=(16, 16, 16, 16), layers=(1, 1, 1, 1)))
    result = train_segmentation(model, scenes, steps=40)
    losses = result["losses"]
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    assert result["train"]["accuracy"] > 0.6
