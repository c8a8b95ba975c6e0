"""Nothing lost, ever: a full disk, a second path to the same store, a run resumed from another folder.

A full disk is injected two ways: a file-size limit (RLIMIT_FSIZE, so that HDF5's own writes fail
mid-sample, as on a real full disk) and a free-space report that runs out (afcli's check before each
sample). Either way the command says so in one line (exit 2), nothing finished is lost, and the same
command once space is back ends with arrays identical to an unbroken run.
"""

import os
import resource
import shutil
import subprocess
import sys
from collections import namedtuple

import h5py
import numpy as np
import pytest
import torch
from conftest import TINY_MODEL

from afcli.data.importer import import_shapes
from afcli.errors import InputError
from afcli.store import DONE, StoreWriter, verify_store
from afcli.store.inspect import reopen_unwritten


def arrays(path) -> dict:
    with h5py.File(path, "r", swmr=True) as f:
        names = []
        f.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
        return {name: f[name][:] for name in names}


def assert_same_arrays(a, b, skip=()):
    expected, got = arrays(a), arrays(b)
    assert expected.keys() == got.keys()
    for name in expected:
        if name not in skip:
            assert np.array_equal(expected[name], got[name]), name


def limited(limit_bytes: int, *args, cwd=None) -> subprocess.CompletedProcess:
    """``afcli *args`` unable to grow any file past ``limit_bytes`` (writes then fail with EFBIG)."""

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        [sys.executable, "-m", "afcli", *map(str, args)],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},
    )


def error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip() and "━" not in line]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_failed_write_leaves_the_sample_pending_and_a_rerun_finishes_it(synth_dir, tmp_path):
    reference, store = tmp_path / "reference.h5", tmp_path / "store.h5"
    import_shapes(synth_dir, reference, num_points=512)
    result = limited(reference.stat().st_size // 2, "data", "import", synth_dir, "--store", store, "--points", 512)
    assert result.returncode == 2, result.stderr
    assert "disk full" in error_line(result) and str(store) in error_line(result)
    report = verify_store(store)
    assert report["ok"], report["problems"]
    with h5py.File(store, "r", swmr=True) as f:
        done = int((f["status/import"][:] == DONE).sum())
    assert 0 < done < 24
    import_shapes(synth_dir, store, num_points=512)  # space is back: the same command
    assert_same_arrays(reference, store)
    assert verify_store(store)["ok"]


@pytest.mark.slow
def test_a_failed_lift_write_leaves_features_pending(lifted_store, tiny_weights, tmp_path):
    store = tmp_path / "store.h5"
    shutil.copy(lifted_store, store)
    with h5py.File(store, "r+") as f:  # the same store before its lift
        del f["features/dinov3-vits16"], f["features/dinov3-vits16_seen"], f["status/lift-dinov3-vits16"]
    lift = [
        "lift",
        store,
        "--teacher",
        "dinov3:vits16",
        "--weights",
        tiny_weights["dinov3"],
        "--size",
        64,
        "--device",
        "cpu",
    ]
    result = limited(store.stat().st_size + 120_000, *lift)
    assert result.returncode == 2 and "disk full" in error_line(result), result.stderr
    with h5py.File(store, "r", swmr=True) as f:
        assert 0 < int((f["status/lift-dinov3-vits16"][:] == DONE).sum()) < 24
    assert subprocess.run([sys.executable, "-m", "afcli", "-q", *map(str, lift)]).returncode == 0
    assert_same_arrays(lifted_store, store)


def test_running_out_of_space_stops_before_the_sample_that_does_not_fit(synth_dir, tmp_path, monkeypatch):
    reference, store = tmp_path / "reference.h5", tmp_path / "store.h5"
    import_shapes(synth_dir, reference, num_points=512)
    real = shutil.disk_usage
    calls = []

    def running_out(path):
        calls.append(path)
        usage = real(path)
        return usage._replace(free=usage.free if len(calls) < 10 else 1000)

    monkeypatch.setattr("afcli.store.writer.shutil.disk_usage", running_out)
    with pytest.raises(InputError, match="disk full .* MB free"):
        import_shapes(synth_dir, store, num_points=512)
    monkeypatch.undo()
    assert verify_store(store)["ok"] and not verify_store(store)["notes"]  # closed cleanly
    import_shapes(synth_dir, store, num_points=512)
    assert_same_arrays(reference, store)


def lose_chunks(store, names, rows) -> None:
    """Rewrite ``names`` without the chunks of ``rows``: what a lost write left in afcli 0.1."""
    with h5py.File(store, "r+") as f:
        for name in names:
            data, attrs = f[name][:], dict(f[name].attrs)
            del f[name]
            f.create_dataset(name, data.shape, data.dtype, chunks=(1, *data.shape[1:]), compression="lzf")
            for row in range(len(data)):
                if row not in rows:
                    f[name][row] = data[row]
            f[name].attrs.update(attrs)


def test_verify_finds_samples_done_but_never_written_and_fix_reopens_them(synth_dir, tmp_path):
    """What a full disk did before afcli checked its writes: samples marked done, chunks never written."""
    reference, store = tmp_path / "reference.h5", tmp_path / "store.h5"
    import_shapes(synth_dir, reference, num_points=512)
    shutil.copy(reference, store)
    lose_chunks(store, ("points/xyz", "points/normal"), (3, 7))
    report = verify_store(store)
    assert not report["ok"] and report["unwritten"] == {"import": [3, 7]}
    assert any("2 samples marked done in import were never written" in problem for problem in report["problems"])
    assert reopen_unwritten(store, report["unwritten"]) == {"import": 2}
    assert verify_store(store)["ok"]
    assert import_shapes(synth_dir, store, num_points=512)["imported"] == 2
    assert_same_arrays(reference, store)


def test_fix_reopens_a_lost_import_in_the_stages_after_it(lifted_store, tmp_path):
    store = tmp_path / "store.h5"
    shutil.copy(lifted_store, store)
    lose_chunks(store, ("points/xyz",), (5,))
    assert reopen_unwritten(store, verify_store(store)["unwritten"]) == {"import": 1, "lift-dinov3-vits16": 1}
    assert verify_store(store)["ok"]


@pytest.mark.parametrize("link", ["symlink", "hard link", "other relative path"])
def test_a_second_writer_through_another_name_is_refused(synth_store, tmp_path, monkeypatch, link):
    store = tmp_path / "store.h5"
    shutil.copy(synth_store, store)
    (tmp_path / "sub").mkdir()
    other = {
        "symlink": tmp_path / "alias.h5",
        "hard link": tmp_path / "twin.h5",
        "other relative path": "sub/../store.h5",
    }[link]
    if link == "symlink":
        other.symlink_to("store.h5")
    elif link == "hard link":
        os.link(store, other)
    monkeypatch.chdir(tmp_path)
    before = arrays(store)
    with StoreWriter(store):
        with pytest.raises(InputError, match="another afcli process is writing this store"):
            with StoreWriter(other):
                pass
    after = arrays(store)
    assert all(np.array_equal(before[name], after[name]) for name in before)


def test_the_cli_refuses_a_second_writer_through_a_symlink(synth_store, tmp_path, afcli_cmd, piad_demo):
    store, alias = tmp_path / "store.h5", tmp_path / "alias.h5"
    shutil.copy(synth_store, store)
    alias.symlink_to(store.name)
    before = store.read_bytes()
    with StoreWriter(store):  # another process's writer, as far as the command can tell
        result = afcli_cmd("data", "import", piad_demo, "--store", alias, check=2)
    assert "another afcli process is writing this store" in error_line(result)
    assert store.read_bytes() == before


Runs = namedtuple("Runs", "home elsewhere store other")


@pytest.fixture
def runs(lifted_store, tmp_path, monkeypatch):
    """A CMAT run started in ``home`` with a relative --store, and ``elsewhere`` with another ``shapes.h5``."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir(), elsewhere.mkdir()
    shutil.copy(lifted_store, home / "shapes.h5")
    shutil.copy(lifted_store, elsewhere / "shapes.h5")
    with h5py.File(elsewhere / "shapes.h5", "r+") as f:  # the same layout, other samples
        f["samples/id"][0] = b"another_shape"
    monkeypatch.chdir(home)
    return Runs(home, elsewhere, home / "shapes.h5", elsewhere / "shapes.h5")


def tiny_cmat(**changes):
    from afcli.config import apply_sets
    from afcli.methods.cmat.settings import CMATSettings

    settings = CMATSettings()
    settings.data.store, settings.data.teacher = "shapes.h5", "dinov3-vits16"
    apply_sets(settings, [pair for pair in TINY_MODEL if pair != "--set"])
    settings.epochs, settings.batch_size, settings.device = 1, 4, "cpu"
    for key, value in changes.items():
        setattr(settings, key, value)
    return settings


def test_a_run_resumed_from_another_folder_trains_on_its_own_store(runs, monkeypatch):
    import yaml
    from safetensors.torch import load_file

    from afcli.methods import resume, train

    train("cmat", tiny_cmat(), "run", show_progress=False)
    record = yaml.safe_load((runs.home / "run" / "config.yaml").read_text())
    assert record["settings"]["data"]["store"] == str(runs.store) and record["store"]["samples"] == 24
    train("cmat", tiny_cmat(epochs=2), "unbroken", show_progress=False)
    monkeypatch.chdir(runs.elsewhere)  # a shapes.h5 here too: the run must not pick it up
    result = resume(runs.home / "run", epochs=2, show_progress=False)
    assert result["epochs"] == 2 and result["resumed_from"] == 1
    resumed, unbroken = (load_file(runs.home / name / "model" / "model.safetensors") for name in ("run", "unbroken"))
    assert all(torch.equal(resumed[key], unbroken[key]) for key in unbroken)
    with pytest.raises(InputError, match="not the store .* was trained on"):
        resume(runs.home / "run", epochs=3, store=runs.other, show_progress=False)


def test_a_copied_run_names_its_store_again(runs):
    from afcli.methods import resume, train

    train("cmat", tiny_cmat(), "run", show_progress=False)
    shutil.copytree(runs.home / "run", runs.elsewhere / "run")
    moved = runs.elsewhere / "moved.h5"
    runs.store.rename(moved)
    with pytest.raises(InputError, match="give --store where it is now"):
        resume(runs.elsewhere / "run", epochs=2, show_progress=False)
    assert resume(runs.elsewhere / "run", epochs=2, store=moved, show_progress=False)["epochs"] == 2


def test_a_run_killed_before_its_first_checkpoint_says_to_start_again(runs, afcli_cmd):
    from afcli.engine.run import write_run

    run = runs.home / "run"
    write_run(tiny_cmat(), run, "pretrain", "cmat")  # what a kill during epoch 0 leaves
    result = afcli_cmd("pretrain", "cmat", "--run", run, "--resume", check=2)
    assert "nothing to resume" in error_line(result) and "start it again" in error_line(result)


@pytest.mark.slow
def test_a_run_that_cannot_write_its_checkpoint_leaves_no_temporaries(runs):
    """Pre-training that cannot write its model (a file-size limit here) stops with one line and
    removes its temporaries; the same command then starts the run afresh."""
    command = [
        "pretrain",
        "cmat",
        "--store",
        "shapes.h5",
        "--teacher",
        "dinov3-vits16",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--run",
        "run",
        *TINY_MODEL,
    ]
    result = limited(60_000, *command, cwd=runs.home)
    assert result.returncode == 2 and "disk full" in error_line(result), result.stderr
    assert not [path for path in (runs.home / "run").rglob("*") if ".tmp" in path.name]
    assert subprocess.run([sys.executable, "-m", "afcli", "-q", *command], cwd=runs.home).returncode == 0
    assert (runs.home / "run" / "last.pt").is_file()
