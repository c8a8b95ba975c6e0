"""Built-in shape set, import of meshes / clouds / PIAD files, bad input, SIGKILL-and-resume."""

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from afcli.data.affordance import PIAD_AFFORDANCES
from afcli.data.importer import import_shapes
from afcli.data.synth import CATEGORIES, synthesize
from afcli.errors import InputError
from afcli.store import StoreDataset, open_store, verify_store


def tree_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def arrays(path):
    with open_store(path) as f:
        out = {}
        f.visititems(lambda name, item: out.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
        return out


def test_synth_is_deterministic_and_complete(tmp_path, synth_dir):
    again = tmp_path / "again"
    synthesize(again, count=24, seed=3)
    assert tree_bytes(again) == tree_bytes(synth_dir)
    other = tmp_path / "other"
    synthesize(other, count=24, seed=4)
    assert tree_bytes(other)["meshes/mug_0000.ply"] != tree_bytes(synth_dir)["meshes/mug_0000.ply"]
    manifest = json.loads((synth_dir / "manifest.json").read_text())
    assert len(CATEGORIES) >= 10
    assert {s["category"] for s in manifest["shapes"]} == set(CATEGORIES)
    for shape in manifest["shapes"]:
        for affordance, questions in shape["questions"].items():
            assert affordance in PIAD_AFFORDANCES and 3 <= len(questions) <= 5
            assert all(q.endswith("?") and shape["category"].lower() in q for q in questions)
        assert all(a in PIAD_AFFORDANCES for part in shape["parts"] for a in part["affordances"])


def test_import_synth(synth_store):
    with h5py.File(synth_store) as f:
        xyz, heat, part = f["points/xyz"][:], f["labels/affordance"][:], f["labels/part"][:]
        assert xyz.shape == (24, 512, 3) and xyz.dtype == np.float32
        assert np.allclose(np.linalg.norm(xyz, axis=-1).max(1), 1.0, atol=1e-5)  # unit sphere
        assert np.abs(xyz.mean(1)).max() < 1e-5
        assert heat.min() >= 0 and heat.max() <= 1 and (heat == 1).any()
        assert list(f["labels/affordance"].attrs["channels"]) == PIAD_AFFORDANCES
        assert part.min() >= 0
        # Heat is 1 on parts offering the affordance, and decays (strictly between 0 and 1) near them.
        row = [i.decode() for i in f["samples/id"][:]].index("mug_0000")
        parts = json.loads(f["text/parts"][row])
        handle = [p["name"] for p in parts].index("handle")
        grasp = heat[row, :, PIAD_AFFORDANCES.index("grasp")]
        assert (grasp[part[row] == handle] == 1).all()
        assert ((grasp > 0) & (grasp < 1)).any()
        normals = f["points/normal"][:]
        assert np.allclose(np.linalg.norm(normals, axis=-1), 1, atol=1e-4)
        questions = json.loads(f["text/questions"][row])
        assert set(questions) == {"grasp", "contain", "pour", "wrapgrasp"}
    assert verify_store(synth_store)["ok"]


def test_import_piad_values_equal_the_files(tmp_path, any_piad_demo):
    store = tmp_path / "piad.h5"
    result = import_shapes(any_piad_demo, store)
    assert result["samples"] == 2
    dataset = StoreDataset(store, ["points/xyz", "labels/affordance", "points/normal"])
    for item in (dataset[0], dataset[1]):
        rows = [line.split() for line in (any_piad_demo / f"{item['id']}.txt").read_text().splitlines()]
        values = np.array([row[2:] for row in rows], np.float32)
        assert item["category"] == rows[0][1]
        assert np.array_equal(item["points/xyz"].numpy(), values[:, :3])
        assert np.array_equal(item["labels/affordance"].numpy(), values[:, 3:])
        assert item["points/normal"].shape == (2048, 3)


def test_import_meshes_and_clouds(tmp_path):
    import trimesh

    src = tmp_path / "src"
    (src / "mug").mkdir(parents=True)
    trimesh.creation.box((1, 2, 3)).export(src / "mug" / "box.obj")
    trimesh.creation.icosphere().export(src / "mug" / "ball.off")
    np.save(src / "cloud.npy", np.random.default_rng(0).random((5000, 3)))
    np.savetxt(src / "small.txt", np.random.default_rng(1).random((100, 3)))
    result = import_shapes(src, tmp_path / "s.h5", num_points=256)
    assert result["done"] == 4
    dataset = StoreDataset(tmp_path / "s.h5", ["points/xyz"])
    assert sorted(dataset.ids) == ["cloud", "mug/ball", "mug/box", "small"]
    assert dict(zip(dataset.ids, dataset.categories))["mug/box"] == "mug"
    with h5py.File(tmp_path / "s.h5") as f:
        assert "labels/affordance" not in f  # nothing here carries labels


def test_bad_inputs_stop_with_the_file_named(tmp_path, synth_store):
    with pytest.raises(InputError, match="no such file or folder"):
        import_shapes(tmp_path / "missing", tmp_path / "x.h5")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no shapes here"):
        import_shapes(tmp_path / "empty", tmp_path / "x.h5")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.obj").write_text("v 0 0 0\nthis is not obj\n")
    np.savetxt(bad / "nan.txt", np.array([[0, 0, np.nan], [1, 1, 1]]))
    with pytest.raises(InputError, match="broken.obj"):
        import_shapes(bad, tmp_path / "x.h5")
    result = import_shapes(bad, tmp_path / "x.h5", skip_bad=True)
    assert {s["id"] for s in result["skipped"]} == {"broken", "nan"}
    assert any("NaN" in s["error"] for s in result["skipped"])
    # A bad import into an existing store leaves what it held untouched.
    before = arrays(synth_store)
    with pytest.raises(InputError):
        import_shapes(bad, synth_store, num_points=512)
    after = arrays(synth_store)
    assert {k: v for k, v in after.items() if k in before and not k.startswith(("samples", "status"))}.keys() == {
        k for k in before if not k.startswith(("samples", "status"))
    }
    for name, value in before.items():
        assert np.array_equal(after[name][: len(value)], value)


@pytest.mark.slow
def test_sigkill_then_resume_gives_identical_store(tmp_path):
    src = tmp_path / "shapes"
    synthesize(src, count=64, seed=5)
    clean = tmp_path / "clean.h5"
    import_shapes(src, clean, num_points=1024)

    killed = tmp_path / "killed.h5"
    cmd = [sys.executable, "-m", "afcli", "-q", "data", "import", str(src), "--store", str(killed), "--points", "1024"]
    for _ in range(2):  # kill twice at different points, then let it finish
        process = subprocess.Popen(cmd, env={**os.environ, "AFCLI_OPS": "torch"})
        deadline = time.time() + 120
        target = None
        while process.poll() is None and time.time() < deadline:
            try:
                with h5py.File(killed, "r", swmr=True) as f:
                    done = int((f["status/import"][:] == 1).sum())
            except (OSError, KeyError):
                done = 0
            target = target if target is not None else done + 5
            if done >= target:
                break
            time.sleep(0.02)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
        report = verify_store(killed)  # opens, reads every chunk, no problems
        assert report["ok"], report
    status = arrays(killed)["status/import"]
    assert 0 < (status == 1).sum() < 64
    import_shapes(src, killed, num_points=1024)
    expected, got = arrays(clean), arrays(killed)
    assert expected.keys() == got.keys()
    for name in expected:
        assert np.array_equal(expected[name], got[name]), name
