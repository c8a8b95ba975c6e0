"""``afcli render`` / ``afcli lift`` end to end: stores, provenance, resume, determinism, recipes."""

import json
import shutil

import h5py
import numpy as np
import pytest
import torch
from conftest import ROOT

from afcli.config import load_recipe
from afcli.errors import InputError
from afcli.lift.pipeline import LiftSettings, RenderSettings, lift_store
from afcli.store.schema import DONE, PENDING


@pytest.fixture
def store_copy(synth_store, tmp_path):
    path = tmp_path / "shapes.h5"
    shutil.copy(synth_store, path)
    return path


@pytest.mark.slow
def test_lift_a_folder_of_shapes_then_skip_everything(afcli_cmd, tmp_path, tiny_weights):
    """The issue's "done means": synth 40, lift with DINOv3 (tiny weights), re-run skips all 40."""
    shapes = tmp_path / "shapes"
    afcli_cmd("data", "synth", shapes, "--n", "40", check=0)
    result = afcli_cmd("--json", "lift", "--teacher", "dinov3", shapes, "--weights", tiny_weights["dinov3"], check=0)
    report = json.loads(result.stdout)
    assert report["lifted"] == 40 and report["store"] == str(shapes / "store.h5")
    with h5py.File(shapes / "store.h5", "r") as f:
        features = f["features/dinov3-vitl16"]
        assert features.shape == (40, 2048, 32) and features.dtype == np.float16
        assert features.compression is None
        assert np.isfinite(features[:]).all() and np.abs(features[:]).sum(-1).min() > 0
        attrs = dict(features.attrs)
        assert attrs["teacher"] == "dinov3:vitl16" and attrs["weights"] == str(tiny_weights["dinov3"])
        assert attrs["views"] == 12 and attrs["size"] == 224 and attrs["interp"] == "nearest"
        assert len(attrs["weights_sha256"]) == 64 and attrs["afcli_version"]
        assert f["features/dinov3-vitl16_seen"][:].mean() > 0.8
    again = json.loads(
        afcli_cmd("--json", "lift", "--teacher", "dinov3", shapes, "--weights", tiny_weights["dinov3"], check=0).stdout
    )
    assert again["lifted"] == 0 and again["already_done"] == 40


@pytest.mark.parametrize("spec,key", [("dinov2:vits14-reg", "dinov2-reg"), ("clip", "clip")])
def test_other_teachers_lift(store_copy, tiny_weights, spec, key):
    report = lift_store(
        store_copy, LiftSettings(teacher=spec, weights=str(tiny_weights[key]), render=RenderSettings(size=112))
    )
    with h5py.File(store_copy, "r") as f:
        features = f[report["array"]]
        assert features.shape == (report["samples"], 512, report["dim"]) and features.dtype == np.float16
        assert features.attrs["size"] == 112


def test_same_inputs_same_bits_and_resume(store_copy, tmp_path, tiny_weights):
    settings = LiftSettings(
        teacher="dinov3:vits16", weights=str(tiny_weights["dinov3"]), render=RenderSettings(size=112)
    )
    other = tmp_path / "other.h5"
    shutil.copy(store_copy, other)
    first = lift_store(store_copy, settings)
    lift_store(other, settings)
    with h5py.File(store_copy, "r") as a, h5py.File(other, "r") as b:
        reference = a["features/dinov3-vits16"][:]
        assert np.array_equal(reference, b["features/dinov3-vits16"][:])
    with h5py.File(other, "r+") as f:  # as if killed after sample 9: later samples pending, half written
        later = np.flatnonzero(f["status/lift-dinov3-vits16"][:] == DONE)[10:]
        for row in later:
            f["status/lift-dinov3-vits16"][row] = PENDING
            f["features/dinov3-vits16"][row] = np.float16(7)
    report = lift_store(other, settings)
    assert report["lifted"] == first["lifted"] - 10 and report["already_done"] == 10
    with h5py.File(other, "r") as f:
        assert np.array_equal(reference, f["features/dinov3-vits16"][:])


def test_changed_settings_need_overwrite(store_copy, tiny_weights):
    settings = LiftSettings(
        teacher="dinov3:vits16", weights=str(tiny_weights["dinov3"]), render=RenderSettings(size=64)
    )
    first = lift_store(store_copy, settings)
    settings.lift.interp = "bilinear"
    with pytest.raises(InputError, match="interp=nearest.*--overwrite"):
        lift_store(store_copy, settings)
    settings.overwrite = True
    assert lift_store(store_copy, settings)["lifted"] == first["lifted"]


@pytest.mark.slow
def test_lift_piad_point_clouds(afcli_cmd, tmp_path, tiny_weights, piad_demo):
    store = tmp_path / "piad.h5"
    result = afcli_cmd(
        "--json",
        "lift",
        piad_demo,
        "--store",
        store,
        "--teacher",
        "dinov3:vitb16",
        "--weights",
        tiny_weights["dinov3"],
        check=0,
    )
    report = json.loads(result.stdout)
    assert report["lifted"] > 0
    with h5py.File(store, "r") as f:
        assert (f["points/face"][:] == -1).all()  # clouds: splatted, no mesh
        assert f["features/dinov3-vitb16"].shape == (report["samples"], 2048, 32)
        assert f["features/dinov3-vitb16_seen"][:].mean() > 0.8


@pytest.mark.slow
def test_offline_without_weights_exits_2(afcli_cmd, tmp_path):
    shapes = tmp_path / "shapes"
    afcli_cmd("data", "synth", shapes, "--n", "2", check=0)
    result = afcli_cmd(
        "lift", "--teacher", "dinov3", shapes, "--offline", check=2, env={"HF_HUB_CACHE": str(tmp_path / "cache")}
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "facebook/dinov3-vitl16-pretrain-lvd1689m" in lines[0] and "hf download" in lines[0]
    assert afcli_cmd("lift", "--teacher", "dinov9", shapes, check=2).stderr.count("\n") == 1


@pytest.mark.slow
def test_real_weights_separate_parts_better_than_random(store_copy, tmp_path):
    """EfficientNet-Lite0's ImageNet features, lifted, tell the parts of the built-in shapes apart
    better than the same network with random weights (nearest part-centroid accuracy)."""
    pytest.importorskip("efficientnet_lite_pytorch")
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    random_weights = tmp_path / "random.pth"
    torch.save(EfficientNet.from_name("efficientnet-lite0").state_dict(), random_weights)
    random_store = tmp_path / "random.h5"
    shutil.copy(store_copy, random_store)
    lift_store(store_copy, LiftSettings(teacher="effnet-lite0"))
    lift_store(random_store, LiftSettings(teacher="effnet-lite0", weights=str(random_weights)))

    def accuracy(path):
        with h5py.File(path, "r") as f:
            features = torch.tensor(f["features/effnet-lite0-s16"][:].astype(np.float32))
            parts = torch.tensor(f["labels/part"][:].astype(np.int64))
        scores = []
        for feats, labels in zip(features, parts):
            feats = torch.nn.functional.normalize(feats - feats.mean(0), dim=1)
            names = labels.unique()
            centroids = torch.nn.functional.normalize(torch.stack([feats[labels == k].mean(0) for k in names]), dim=1)
            scores.append((names[(feats @ centroids.T).argmax(1)] == labels).float().mean().item())
        return float(np.mean(scores))

    real, random = accuracy(store_copy), accuracy(random_store)
    assert real > random + 0.03, (real, random)


def test_render_keeps_views_and_writes_a_preview(afcli_cmd, store_copy, tmp_path):
    sheet = tmp_path / "sheet.png"
    result = afcli_cmd(
        "--json", "render", store_copy, "--views", "4", "--size", "64", "--keep-views", "--preview", sheet, check=0
    )
    report = json.loads(result.stdout)
    with h5py.File(store_copy, "r") as f:
        count = f["samples/id"].shape[0]
        assert report["rendered"] == (f["status/import"][:] == 1).sum() and report["points_seen"] > 0.8
        assert f["views/sphere/rgb"].shape == (count, 4, 64, 64, 3)
        assert f["views/sphere/index"].dtype == np.int32 and f["views/sphere/index"][:].min() == -1
        assert f["views/sphere/c2w"].shape == (count, 4, 4, 4) and "OpenCV" in f["views/sphere/rgb"].attrs["convention"]
        depth, index = f["views/sphere/depth"][0], f["views/sphere/index"][0]
        assert ((depth > 0) == (index >= 0)).all()
    from PIL import Image

    from afcli.render.preview import LABEL, THUMB

    assert Image.open(sheet).size == (4 * THUMB, 4 * (3 * THUMB + LABEL))


def test_recipes_parse_and_reject_unknown_keys(tmp_path):
    paper, recipe = load_recipe(ROOT / "recipes" / "cmat" / "lift.yaml", LiftSettings, "lift")
    assert paper.teacher == "dinov3:vitl16" and paper.render.views == 12 and paper.lift.interp == "nearest"
    official, _ = load_recipe(ROOT / "recipes" / "cmat" / "lift-official.yaml", LiftSettings, "lift")
    assert (
        official.teacher == "dinov2:vits14-reg" and official.lift.interp == "bilinear" and official.teacher_size == 448
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: lift\nsettings:\n  render: {veiws: 3}\n")
    with pytest.raises(InputError, match="unknown setting render.veiws"):
        load_recipe(bad, LiftSettings, "lift")


@pytest.mark.slow
def test_several_processes_match_one_and_leave_no_shards(store_copy, tmp_path, tiny_weights):
    """--gpus 2 logic on CPU processes: the merged result equals a one-process lift."""
    settings = LiftSettings(
        teacher="dinov3:vits16", weights=str(tiny_weights["dinov3"]), device="cpu", render=RenderSettings(size=64)
    )
    single = tmp_path / "single.h5"
    shutil.copy(store_copy, single)
    one = lift_store(single, settings)
    two = lift_store(store_copy, settings, gpus=2)
    assert two["lifted"] == one["lifted"] and two["done"] == one["done"]
    assert not list(tmp_path.glob("shapes.lift-*"))
    with h5py.File(single, "r") as a, h5py.File(store_copy, "r") as b:
        assert np.allclose(a["features/dinov3-vits16"][:], b["features/dinov3-vits16"][:], atol=2e-3)
        assert np.array_equal(a["features/dinov3-vits16_seen"][:], b["features/dinov3-vits16_seen"][:])
    with pytest.raises(InputError, match="CUDA devices"):
        lift_store(single, LiftSettings(teacher="dinov3:vits16", weights=str(tiny_weights["dinov3"])), gpus=64)


def test_shards_of_an_interrupted_run_are_merged_on_rerun(store_copy, tmp_path, tiny_weights):
    import queue

    from afcli.lift.pipeline import LiftStage, feature_attrs, load_settings_teacher
    from afcli.store import StoreWriter
    from afcli.store.stage import rank_main

    settings = LiftSettings(
        teacher="dinov3:vits16", weights=str(tiny_weights["dinov3"]), device="cpu", render=RenderSettings(size=64)
    )
    reference = tmp_path / "reference.h5"
    shutil.copy(store_copy, reference)
    lift_store(reference, settings)
    teacher = load_settings_teacher(settings)
    stage = LiftStage(settings, teacher.id, 32, feature_attrs(teacher, settings))
    with h5py.File(store_copy, "r") as f:
        rows = np.flatnonzero(f["status/import"][:] == DONE).tolist()
    messages = queue.Queue()
    with StoreWriter(store_copy) as writer:  # the parent had prepared the arrays before starting ranks
        stage.declare(writer)
    threads = torch.get_num_threads()
    try:  # rank 0 finished; rank 1 was killed
        rank_main(0, 2, torch.device("cpu"), store_copy, stage, rows[0::2], messages)
    finally:
        torch.set_num_threads(threads)  # a rank sets its own share of the cores
    assert messages.get()[0] == "sample"
    assert len(list(tmp_path.glob("shapes.lift-dinov3-vits16-00000-of-00002.h5"))) == 1
    report = lift_store(store_copy, settings)
    assert report["lifted"] == len(rows)  # half merged from the shard, half lifted now
    assert not list(tmp_path.glob("shapes.lift-*"))
    with h5py.File(reference, "r") as a, h5py.File(store_copy, "r") as b:
        assert np.allclose(a["features/dinov3-vits16"][:], b["features/dinov3-vits16"][:], atol=2e-3)


@pytest.mark.slow
def test_ragged_store_of_clouds(tmp_path, tiny_weights):
    """Scene-style stores (a different number of points per sample) lift in one process and in two."""
    from afcli.store import StoreWriter

    rng = np.random.default_rng(0)
    sizes = [300, 800, 450]
    stores = [tmp_path / "one.h5", tmp_path / "two.h5"]
    for path in stores:
        with StoreWriter(path, create=True, layout="ragged") as writer:
            for name in ("points/xyz", "points/normal"):
                writer.ensure_array(name, (3,), "f4")
            writer.ensure_array("points/face", (), "i4", fill=-1)
            writer.ensure_stage("import")
            writer.begin()
            rows = writer.add_samples([f"scene{i}" for i in range(3)], ["scene"] * 3)
            for row, count in zip(rows, sizes):
                xyz = rng.normal(size=(count, 3)).astype(np.float32)
                xyz /= np.linalg.norm(xyz, axis=1, keepdims=True)  # points on a sphere, normals outward
                writer.append_points(row, count)
                writer.write(
                    row, {"points/xyz": xyz, "points/normal": xyz, "points/face": np.full(count, -1, np.int32)}
                )
                writer.mark("import", row, DONE)
        rng = np.random.default_rng(0)
    settings = LiftSettings(
        teacher="dinov3:vits16", weights=str(tiny_weights["dinov3"]), device="cpu", render=RenderSettings(size=64)
    )
    lift_store(stores[0], settings)
    lift_store(stores[1], settings, gpus=2)
    with h5py.File(stores[0], "r") as a, h5py.File(stores[1], "r") as b:
        assert a["features/dinov3-vits16"].shape == (sum(sizes), 32)
        assert np.allclose(a["features/dinov3-vits16"][:], b["features/dinov3-vits16"][:], atol=2e-3)
        assert a["features/dinov3-vits16_seen"][:].mean() > 0.5


@pytest.mark.slow
def test_sigkill_then_resume_gives_identical_features(store_copy, tmp_path, tiny_weights):
    import os
    import signal
    import subprocess
    import sys
    import time

    from afcli.store import open_store, verify_store

    killed = tmp_path / "killed.h5"
    shutil.copy(store_copy, killed)

    def command(store):
        return [
            sys.executable,
            "-m",
            "afcli",
            "-q",
            "lift",
            str(store),
            "--teacher",
            "dinov3:vits16",
            "--weights",
            str(tiny_weights["dinov3"]),
            "--size",
            "64",
        ]

    subprocess.run(command(store_copy), check=True)
    process = subprocess.Popen(command(killed))
    deadline, done = time.time() + 120, 0
    while process.poll() is None and time.time() < deadline and done < 4:
        try:
            with h5py.File(killed, "r", swmr=True) as f:
                done = int((f["status/lift-dinov3-vits16"][:] == DONE).sum())
        except (OSError, KeyError):
            done = 0
        time.sleep(0.02)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert verify_store(killed)["ok"]
    with open_store(killed) as f:  # still marked "open for write" by the killed writer
        finished = int((f["status/lift-dinov3-vits16"][:] == DONE).sum())
    subprocess.run(command(killed), check=True)
    with h5py.File(store_copy, "r") as a, h5py.File(killed, "r") as b:
        assert 0 < finished < int((a["status/import"][:] == DONE).sum())
        for name in ("features/dinov3-vits16", "features/dinov3-vits16_seen", "status/lift-dinov3-vits16"):
            assert np.array_equal(a[name][:], b[name][:]), name
