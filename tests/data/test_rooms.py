"""The built-in rooms: ScanNet scans that the ScanNet reader imports with every label, objects resting on
what supports them, and RGB-D frames whose depth lands on the mesh."""

import json

import numpy as np
import pytest
from PIL import Image

from afcli.data.furniture import LABELS
from afcli.data.rooms import synthesize_rooms
from afcli.data.scannet import read_label_map, vocabulary
from afcli.data.scenes import import_scenes
from afcli.errors import InputError
from afcli.store.schema import decode, open_store, read_sample


@pytest.fixture(scope="module")
def rooms(tmp_path_factory):
    out = tmp_path_factory.mktemp("rooms")
    synthesize_rooms(out, count=2, frames=3, max_edge=0.3, seed=5)
    return out


def test_rooms_import_with_every_instance_and_label(rooms, tmp_path):
    manifest = json.loads((rooms / "rooms.json").read_text())
    import_scenes(rooms, tmp_path / "s.h5")
    with open_store(tmp_path / "s.h5") as f:
        ids = decode(f["samples/id"][:])
        for room in manifest["rooms"]:
            row = ids.index(room["scene"])
            instance = read_sample(f, row, "labels/instance")
            semantic200 = read_sample(f, row, "labels/semantic200")
            assert sorted(np.unique(instance).tolist()) == [i["id"] for i in room["instances"]]
            names = vocabulary("scannet200").names
            for record in room["instances"]:
                labels = np.unique(semantic200[instance == record["id"]])
                assert [names[i] for i in labels] == [LABELS[record["category"]][0]]
        assert decode(f["labels/split"][:]) == ["train", "val"]


def test_label_map_holds_the_real_ids(rooms):
    table = read_label_map(rooms / "scannetv2-labels.combined.tsv")
    assert table["chair"] == (2, 5) and table["couch"] == (6, 6) and table["kitchen counter"][1] == 12


def test_small_objects_rest_on_their_supports(rooms):
    import trimesh

    for scene in ("room0000_00", "room0001_00"):
        folder = rooms / "scans" / scene
        mesh = trimesh.load(folder / f"{scene}_vh_clean_2.ply", process=False)
        segments = np.asarray(json.loads((folder / f"{scene}_vh_clean_2.0.010000.segs.json").read_text())["segIndices"])
        groups = json.loads((folder / f"{scene}.aggregation.json").read_text())["segGroups"]
        vertices = np.asarray(mesh.vertices)
        boxes = {g["id"]: (g["label"], vertices[np.isin(segments, g["segments"])]) for g in groups}
        tops = [
            v[:, 2].max()
            for label, v in boxes.values()
            if label
            in ("table", "desk", "nightstand", "kitchen counter", "cabinet", "bookshelf", "coffee table", "bed")
        ]
        for label, v in boxes.values():
            if label in ("cup", "bottle", "bowl", "book", "box", "lamp", "pillow", "bag", "water bottle", "sink"):
                assert min(abs(v[:, 2].min() - top) for top in tops) < 0.02, label


def test_frames_follow_scannet_layout_and_depth_hits_the_mesh(rooms):
    import trimesh

    folder = rooms / "scans" / "room0000_00"
    mesh = trimesh.load(folder / "room0000_00_vh_clean_2.ply", process=False)
    K = np.loadtxt(folder / "frames" / "intrinsic" / "intrinsic_depth.txt")[:3, :3]
    pose = np.loadtxt(folder / "frames" / "pose" / "1.txt")
    depth = np.asarray(Image.open(folder / "frames" / "depth" / "1.png")).astype(np.float64) / 1000
    assert depth.shape == (240, 320) and Image.open(folder / "frames" / "color" / "1.jpg").size == (320, 240)
    v, u = np.nonzero(depth > 0)
    pick = np.linspace(0, len(u) - 1, 200).astype(int)
    z = depth[v[pick], u[pick]]
    camera = np.c_[(u[pick] - K[0, 2]) * z / K[0, 0], (v[pick] - K[1, 2]) * z / K[1, 1], z]
    world = camera @ pose[:3, :3].T + pose[:3, 3]
    from scipy.spatial import cKDTree

    surface, _ = trimesh.sample.sample_surface(mesh, 400_000, seed=0)
    distance, _ = cKDTree(surface).query(world)
    assert np.median(distance) < 0.015 and np.percentile(distance, 95) < 0.03  # the samples are ~1.5 cm apart


def test_same_seed_same_rooms_and_another_seed_is_refused(rooms, tmp_path):
    synthesize_rooms(tmp_path / "again", count=2, frames=3, max_edge=0.3, seed=5)
    for name in ("room0001_00/room0001_00_vh_clean_2.ply", "room0001_00/room0001_00.aggregation.json"):
        assert (tmp_path / "again" / "scans" / name).read_bytes() == (rooms / "scans" / name).read_bytes()
    with pytest.raises(InputError, match="other rooms"):
        synthesize_rooms(rooms, count=2, frames=3, max_edge=0.3, seed=6)


def test_sweethome3d_catalogue_models_join_the_rooms(tmp_path, monkeypatch):
    from formats import write_sweethome_catalogue

    from afcli.data.sweethome import load_model, read_catalogues

    folder = write_sweethome_catalogue(tmp_path / "furniture")
    catalogue = read_catalogues(folder)
    assert list(catalogue) == ["chair"]  # the wall lamp's name is not one the rooms use
    mesh, shade = load_model(catalogue["chair"][0])
    size = mesh.vertices.max(0) - mesh.vertices.min(0)
    np.testing.assert_allclose(size, [0.5, 0.4, 0.9], atol=1e-6)  # width x, depth y, height z
    back = mesh.vertices[:, 2] > 0.6  # the backrest rises above the seat …
    assert mesh.vertices[back, 1].max() <= mesh.vertices[:, 1].min() + 0.05 + 1e-9  # … at -y, towards a wall
    assert sorted(np.unique(shade.round(3))) == [round(0.35 + 0.65 * 0.2, 3), round(0.35 + 0.65 * 0.8, 3)]
    monkeypatch.setenv("AFCLI_SWEETHOME3D", str(folder))
    result = synthesize_rooms(tmp_path / "rooms", count=5, frames=1, max_edge=0.3, seed=1)
    assert result["sweethome3d_models"] == 1
    manifest = json.loads((tmp_path / "rooms" / "rooms.json").read_text())
    sources = [i["source"] for room in manifest["rooms"] for i in room["instances"] if i["category"] == "chair"]
    assert any(s.startswith("sweethome3d: Test") for s in sources)
    assert "afcli built-in shape Chair" in sources  # half stay afcli's own
