"""Store: round trips (fixed, ragged), merge, reader, SWMR following, verification, schema errors."""

import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest
import torch

from afcli.errors import InputError
from afcli.store import (
    DONE,
    FAILED,
    RAGGED,
    StoreDataset,
    StoreWriter,
    merge_stores,
    shard_path,
    store_info,
    verify_store,
)


def write_store(path, layout="fixed", count=6, prefix="s", num_points=32, seed=0):
    """A small store with points, fp16 features and labels; returns what was written per id."""
    rng = np.random.default_rng(seed)
    written = {}
    with StoreWriter(path, create=True, layout=layout, num_points=num_points) as w:
        w.ensure_array("points/xyz", (3,), "f4")
        w.ensure_array("features/toy", (8,), "f2")
        w.ensure_array("labels/affordance", (2,), "f4", attrs={"channels": ["grasp", "cut"]})
        w.ensure_stage("import")
        w.begin()
        ids = [f"{prefix}{i}" for i in range(count)]
        rows = w.add_samples(ids, ["mug" if i % 2 else "knife" for i in range(count)])
        for row, sample_id in zip(rows, ids):
            n = num_points if layout == "fixed" else int(rng.integers(1, 50))
            if layout == RAGGED:
                w.append_points(row, n)
            arrays = {
                "points/xyz": rng.random((n, 3), dtype=np.float32),
                "features/toy": rng.random((n, 8)).astype(np.float16),
                "labels/affordance": rng.random((n, 2), dtype=np.float32),
            }
            w.write(row, arrays)
            w.mark("import", row, DONE)
            written[sample_id] = arrays
    return written


@pytest.mark.parametrize("layout", ["fixed", "ragged"])
def test_round_trip(tmp_path, layout):
    path = tmp_path / "s.h5"
    written = write_store(path, layout)
    dataset = StoreDataset(path, ["points/xyz", "features/toy", "labels/affordance"])
    assert len(dataset) == 6
    for i in range(len(dataset)):
        item = dataset[i]
        for name, value in written[item["id"]].items():
            assert np.array_equal(item[name].numpy(), value)
    batch = dataset.collate([dataset[0], dataset[1]])
    if layout == "ragged":
        lengths = [len(written["s0"]["points/xyz"]), len(written["s1"]["points/xyz"])]
        assert batch["offsets"].tolist() == [0, lengths[0], sum(lengths)]
    else:
        assert batch["points/xyz"].shape == (2, 32, 3)
    assert verify_store(path)["ok"]
    info = store_info(path)
    assert info["samples"] == 6 and info["layout"] == layout and info["teachers"] == ["toy"]
    assert info["status"]["import"] == {"pending": 0, "done": 6, "failed": 0}
    features = next(a for a in info["arrays"] if a["name"] == "features/toy")
    assert features["dtype"] == "float16"


def test_reader_with_workers(tmp_path):
    path = tmp_path / "s.h5"
    written = write_store(path, count=10)
    dataset = StoreDataset(path, ["points/xyz"])
    loader = torch.utils.data.DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=dataset.collate)
    seen = {}
    for batch in loader:
        for sample_id, xyz in zip(batch["id"], batch["points/xyz"]):
            seen[sample_id] = xyz.numpy()
    assert seen.keys() == written.keys()
    assert all(np.array_equal(seen[k], written[k]["points/xyz"]) for k in seen)


def test_existing_ids_keep_rows_and_pending_only_redone(tmp_path):
    path = tmp_path / "s.h5"
    write_store(path, count=3)
    with StoreWriter(path) as w:
        w.begin()
        rows = w.add_samples(["s1", "new"], ["mug", "mug"])
        assert rows == [1, 3]
        assert w.pending("import") == [3]
    with pytest.raises(InputError, match="duplicate"):
        with StoreWriter(path) as w:
            w.add_samples(["a", "a"], ["x", "x"])


def test_incompatible_array_is_refused(tmp_path):
    path = tmp_path / "s.h5"
    write_store(path, count=2)
    with StoreWriter(path) as w, pytest.raises(InputError, match="labels/affordance"):
        w.ensure_array("labels/affordance", (2,), "f4", attrs={"channels": ["sit", "lay"]})


@pytest.mark.parametrize("copy", [False, True])
@pytest.mark.parametrize("layout", ["fixed", "ragged"])
def test_merge(tmp_path, copy, layout):
    shards = [shard_path(tmp_path / "job.h5", rank, 2) for rank in range(2)]
    assert shards[1].name == "job-00001-of-00002.h5"
    written = {}
    for rank, shard in enumerate(shards):
        written.update(write_store(shard, layout, count=3 + rank, prefix=f"r{rank}_", seed=rank))
    out = tmp_path / "merged" / "all.h5"
    result = merge_stores(shards, out, copy=copy)
    assert result["samples"] == 7 and result["virtual"] is not copy
    with h5py.File(out) as f:
        assert f["points/xyz"].is_virtual is not copy
    dataset = StoreDataset(out, ["points/xyz", "features/toy"])
    assert len(dataset) == 7
    for i in range(7):
        item = dataset[i]
        assert np.array_equal(item["points/xyz"].numpy(), written[item["id"]]["points/xyz"])
    assert verify_store(out)["ok"]
    with pytest.raises(InputError, match="already exists"):
        merge_stores(shards, out)
    if not copy:
        with pytest.raises(InputError, match="read-only"):
            StoreWriter(out).__enter__()


def test_merge_refuses_overlapping_shards(tmp_path):
    write_store(tmp_path / "a.h5")
    write_store(tmp_path / "b.h5")
    with pytest.raises(InputError, match="share sample ids"):
        merge_stores([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


def test_verify_finds_nan_and_bad_status(tmp_path):
    path = tmp_path / "s.h5"
    write_store(path, count=4)
    with h5py.File(path, "r+", libver="latest") as f:
        f["points/xyz"][2, 5, 1] = np.nan
        f["status/import"][3] = 9
    report = verify_store(path)
    assert not report["ok"]
    assert any("NaN" in p and "s2" in p for p in report["problems"])
    assert any("unknown codes [9]" in p for p in report["problems"])


def test_not_a_store_and_wrong_schema(tmp_path):
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = [1]
    with pytest.raises(InputError, match="not an afcli store"):
        store_info(plain)
    path = tmp_path / "s.h5"
    write_store(path, count=1)
    with h5py.File(path, "r+", libver="latest") as f:
        f.attrs["schema"] = 99
    with pytest.raises(InputError, match="schema v99"):
        verify_store(path)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InputError, match="not an HDF5 file"):
        store_info(text)


WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from afcli.store import StoreWriter, DONE
    with StoreWriter(sys.argv[1], create=True, num_points=16) as w:
        w.ensure_array("points/xyz", (3,), "f4")
        w.ensure_stage("import")
        w.begin()
        for i in range(int(sys.argv[2])):
            (row,) = w.add_samples([f"s{i}"], ["mug"])
            w.write(row, {"points/xyz": np.full((16, 3), i, "f4")})
            w.mark("import", row, DONE)
            time.sleep(0.05)
    """
)


def test_reader_follows_a_running_writer(tmp_path):
    path = tmp_path / "live.h5"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "40"])
    try:
        deadline = time.time() + 60
        while True:
            try:
                dataset = StoreDataset(path, ["points/xyz"])
                break
            except (InputError, OSError):
                assert time.time() < deadline
                time.sleep(0.05)  # the writer has not created the store or switched to SWMR yet
        first = len(dataset)
        time.sleep(0.5)
        later = dataset.refresh()
        assert later > first
        item = dataset[later - 1]
        assert float(item["points/xyz"][0, 0]) == int(item["id"][1:])
    finally:
        writer.wait(timeout=60)
    dataset.close()
    report = verify_store(path)
    assert report["ok"], report


def test_failed_status_is_counted(tmp_path):
    path = tmp_path / "s.h5"
    write_store(path, count=2)
    with StoreWriter(path) as w:
        w.begin()
        w.mark("import", 1, FAILED)
    assert store_info(path)["status"]["import"]["failed"] == 1
    assert len(StoreDataset(path)) == 1


def test_verify_reports_damaged_bytes_and_goes_on(synth_store, tmp_path):
    """Random bytes over a query chunk are a problem in the report; over anything else, verify still
    answers (a report, or one input error when the file cannot even be opened), never a crash."""
    import shutil

    damaged = tmp_path / "queries.h5"
    shutil.copy(synth_store, damaged)
    with h5py.File(damaged, "r") as f:
        offset = f["queries/text"].id.get_chunk_info(0).byte_offset
    with open(damaged, "r+b") as handle:
        handle.seek(offset)
        handle.write(np.random.default_rng(0).bytes(512))
    report = verify_store(damaged)
    assert not report["ok"] and any(
        "queries/text" in problem or "query table" in problem for problem in report["problems"]
    )
    size = synth_store.stat().st_size
    for seed in range(12):
        copy = tmp_path / f"fuzz{seed}.h5"
        shutil.copy(synth_store, copy)
        rng = np.random.default_rng(seed)
        with open(copy, "r+b") as handle:
            handle.seek(int(rng.integers(4096, size - 256)))
            handle.write(rng.bytes(256))
        try:
            report = verify_store(copy)
        except InputError:
            continue
        assert isinstance(report["problems"], list)
