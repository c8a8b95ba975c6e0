"""Bad input, verb by verb: each row is one mistake a user makes (or one damaged file), and each must
end with exit 2 and one line naming the file or option and the problem, with every file that existed
before left as it was and no temporary left behind.

The rows run in this process through Typer's test runner (the same app, the same error handling as
the console script) so that the table stays quick enough for ``make test``.
"""

import hashlib
import json
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest
import torch
from conftest import TINY_MODEL
from typer.testing import CliRunner

from afcli.cli import app
from afcli.console import options

READ_ONLY = Path("/sys/afcli-test")  # refused even to root: sysfs takes no new entries


@dataclass
class World:
    """Shared inputs, copied once: a shape folder, stores, a CMAT run and a CAST run."""

    root: Path
    shapes: Path
    store: Path  # 24 built-in shapes, 512 points, imported only
    lifted: Path  # the same with tiny-DINOv3 features
    cmat: Path  # a finished one-epoch CMAT run on ``lifted``
    cast: Path  # a finished CAST run (its training store stays where the session made it)
    cast_store: Path


@pytest.fixture(scope="module")
def world(synth_dir, synth_store, lifted_store, cast_run, cast_store, tmp_path_factory) -> World:
    from afcli.config import apply_sets
    from afcli.methods import train
    from afcli.methods.cmat.settings import CMATSettings

    root = tmp_path_factory.mktemp("world")
    shutil.copytree(synth_dir, root / "shapes")
    shutil.copy(synth_store, root / "store.h5")
    shutil.copy(lifted_store, root / "lifted.h5")
    shutil.copytree(cast_run[0], root / "cast")
    settings = CMATSettings()
    settings.data.store, settings.data.teacher = str(root / "lifted.h5"), "dinov3-vits16"
    apply_sets(settings, [pair for pair in TINY_MODEL if pair != "--set"])
    settings.epochs, settings.batch_size, settings.device = 1, 4, "cpu"
    train("cmat", settings, root / "cmat", show_progress=False)
    return World(root, root / "shapes", root / "store.h5", root / "lifted.h5", root / "cmat", root / "cast", cast_store)


# -- helpers that make one damaged input each ------------------------------------------------------
def folder_with(tmp: Path, name: str, write: Callable[[Path], None]) -> Path:
    folder = tmp / "shapes"
    folder.mkdir(exist_ok=True)
    write(folder / name)
    return folder


def npy(array) -> Callable[[Path], None]:
    return lambda path: np.save(path, array, allow_pickle=False)


def text(content: str | bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content if isinstance(content, bytes) else content.encode())


def synth_with_manifest(w: World, tmp: Path, manifest) -> Path:
    folder = tmp / "set"
    shutil.copytree(w.shapes, folder)
    (folder / "manifest.json").write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return folder


def broken_manifest(w: World, tmp: Path, change: Callable[[dict], None]) -> Path:
    manifest = json.loads((w.shapes / "manifest.json").read_text())
    change(manifest)
    return synth_with_manifest(w, tmp, manifest)


def copy_of(path: Path, tmp: Path) -> Path:
    target = tmp / path.name
    (shutil.copytree if path.is_dir() else shutil.copy)(path, target)
    return target


def store_with_inf(w: World, tmp: Path) -> Path:
    store = copy_of(w.lifted, tmp)
    with h5py.File(store, "r+") as f:
        f["points/xyz"][2, 5, 0] = np.inf
    return store


class Evil:
    """A pickle that would run code when loaded: afcli must refuse it, not run it."""

    def __reduce__(self):
        return (print, ("this ran",))


def run_with(w: World, tmp: Path, run: Path, name: str, content: Callable[[Path], None]) -> Path:
    copied = copy_of(run, tmp)
    content(copied / name)
    return copied


def torch_file(value) -> Callable[[Path], None]:
    return lambda path: torch.save(value, path)


def pickled(value) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(pickle.dumps(value))


def truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


def cast_copy_elsewhere(w: World, tmp: Path) -> Path:
    """A CAST run copied to another machine: the store it records is not there."""
    import yaml

    run = copy_of(w.cast, tmp)
    record = yaml.safe_load((run / "config.yaml").read_text())
    record["store"]["path"] = record["settings"]["data"]["store"] = str(tmp / "gone" / "store.h5")
    (run / "config.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
    return run


def scans_with_broken_mesh(tmp: Path) -> Path:
    from formats import write_scannet_scans

    write_scannet_scans(tmp / "scannet")
    (tmp / "scannet" / "scans" / "scene0000_00" / "scene0000_00_vh_clean_2.ply").write_bytes(b"ply\nnot a mesh")
    return tmp / "scannet"


def semantic_predictions(tmp: Path) -> Path:
    (tmp / "pred").mkdir()
    (tmp / "pred" / "scene0000_00.txt").write_text("1\n2\n")
    return tmp / "pred"


def bad_predictions(tmp: Path) -> Path:
    path = tmp / "pred.npz"
    np.savez(
        path,
        pred=np.zeros((2, 256), np.float32),
        gt=np.zeros((2, 256), np.float32),
        query=np.array(["nope/grasp", "nope/cut"]),
    )
    return path


def pretrain(w: World, tmp: Path, *extra) -> list:
    return [
        "pretrain",
        "cmat",
        "--store",
        w.lifted,
        "--teacher",
        "dinov3-vits16",
        *TINY_MODEL,
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--run",
        tmp / "run",
        *extra,
    ]


def finetune(w: World, tmp: Path, *extra) -> list:
    from conftest import TINY_CAST

    return [
        "finetune",
        "cast",
        "--store",
        w.cast_store,
        "--text",
        "minilm-l6",
        "--image",
        "none",
        "--run",
        tmp / "run",
        "--device",
        "cpu",
        *TINY_CAST,
        *extra,
    ]


# (id, arguments from (world, tmp), fragments the one line must hold)
CASES = [
    # data synth
    ("synth-zero", lambda w, t: ["data", "synth", t / "s", "--n", "0"], ["--n must be at least 1"]),
    ("synth-into-a-file", lambda w, t: ["data", "synth", w.store, "--n", "2"], ["store.h5", "not a folder"]),
    (
        "synth-over-another-set",
        lambda w, t: ["data", "synth", copy_of(w.shapes, t), "--n", "3"],
        ["already holds a set of 24 shapes"],
    ),
    # data import: the source
    (
        "import-missing",
        lambda w, t: ["data", "import", t / "nowhere", "--store", t / "s.h5"],
        ["nowhere", "no such file or folder"],
    ),
    (
        "import-empty-folder",
        lambda w, t: ["data", "import", folder_with(t, "notes.md", text("hi")), "--store", t / "s.h5"],
        ["no shapes here"],
    ),
    (
        "npy-zero-bytes",
        lambda w, t: ["data", "import", folder_with(t, "a.npy", text(b"")), "--store", t / "s.h5"],
        ["a.npy", "cannot read point cloud"],
    ),
    (
        "npy-empty-array",
        lambda w, t: ["data", "import", folder_with(t, "a.npy", npy(np.zeros((0, 3)))), "--store", t / "s.h5"],
        ["a.npy", "shape (0, 3)"],
    ),
    (
        "npy-structured",
        lambda w, t: [
            "data",
            "import",
            folder_with(t, "a.npy", npy(np.zeros(8, [("x", "f4"), ("y", "f4")]))),
            "--store",
            t / "s.h5",
        ],
        ["a.npy", "real numbers"],
    ),
    (
        "npy-strings",
        lambda w, t: [
            "data",
            "import",
            folder_with(t, "a.npy", npy(np.array([["a", "b", "c"]] * 4))),
            "--store",
            t / "s.h5",
        ],
        ["a.npy", "real numbers"],
    ),
    (
        "npy-complex",
        lambda w, t: ["data", "import", folder_with(t, "a.npy", npy(np.ones((8, 3)) * 1j)), "--store", t / "s.h5"],
        ["a.npy", "complex"],
    ),
    (
        "npy-object-pickle",
        lambda w, t: [
            "data",
            "import",
            folder_with(t, "a.npy", lambda p: np.save(p, np.array([Evil()], object))),
            "--store",
            t / "s.h5",
        ],
        ["a.npy", "cannot read point cloud"],
    ),
    (
        "npy-one-dimensional",
        lambda w, t: ["data", "import", folder_with(t, "a.npy", npy(np.zeros(9))), "--store", t / "s.h5"],
        ["a.npy", "(N, 3+)"],
    ),
    (
        "npy-nan",
        lambda w, t: ["data", "import", folder_with(t, "a.npy", npy(np.full((8, 3), np.nan))), "--store", t / "s.h5"],
        ["a.npy", "NaN or Inf"],
    ),
    (
        "npy-inf",
        lambda w, t: ["data", "import", folder_with(t, "a.npy", npy(np.full((8, 3), np.inf))), "--store", t / "s.h5"],
        ["a.npy", "NaN or Inf"],
    ),
    ("txt-empty", lambda w, t: ["data", "import", folder_with(t, "a.txt", text("")), "--store", t / "s.h5"], ["a.txt"]),
    (
        "txt-words",
        lambda w, t: ["data", "import", folder_with(t, "a.xyz", text("one two three\n")), "--store", t / "s.h5"],
        ["a.xyz", "cannot read point cloud"],
    ),
    (
        "mesh-garbage",
        lambda w, t: ["data", "import", folder_with(t, "a.obj", text(bytes(range(256)) * 4)), "--store", t / "s.h5"],
        ["a.obj"],
    ),
    (
        "mesh-empty",
        lambda w, t: ["data", "import", folder_with(t, "a.ply", text("")), "--store", t / "s.h5"],
        ["a.ply"],
    ),
    (
        "file-name-not-utf8",
        lambda w, t: [
            "data",
            "import",
            folder_with(t, "caf\udce9.npy", npy(np.random.rand(16, 3))),
            "--store",
            t / "s.h5",
        ],
        ["not valid UTF-8"],
    ),
    (
        "manifest-not-json",
        lambda w, t: ["data", "import", synth_with_manifest(w, t, "{shapes: ["), "--store", t / "s.h5"],
        ["manifest.json", "unreadable"],
    ),
    (
        "manifest-a-list",
        lambda w, t: ["data", "import", synth_with_manifest(w, t, []), "--store", t / "s.h5"],
        ["manifest.json", "not an afcli-synth"],
    ),
    (
        "manifest-shapes-not-a-list",
        lambda w, t: [
            "data",
            "import",
            broken_manifest(w, t, lambda m: m.update(shapes={"a": 1})),
            "--store",
            t / "s.h5",
        ],
        ["manifest.json", "'shapes' is not a list"],
    ),
    (
        "manifest-shape-without-mesh",
        lambda w, t: [
            "data",
            "import",
            broken_manifest(w, t, lambda m: m["shapes"][3].pop("mesh")),
            "--store",
            t / "s.h5",
        ],
        ["manifest.json", "shapes[3] has no str 'mesh'"],
    ),
    # data import: the store
    ("store-is-a-folder", lambda w, t: ["data", "import", w.shapes, "--store", t], ["is a directory"]),
    (
        "store-plain-hdf5",
        lambda w, t: ["data", "import", w.shapes, "--store", plain_hdf5(t)],
        ["plain.h5", "not an afcli store"],
    ),
    (
        "store-without-schema",
        lambda w, t: ["data", "import", w.shapes, "--store", plain_hdf5(t, format="afcli-store", schema=1)],
        ["plain.h5", "not an afcli store"],
    ),
    (
        "store-random-bytes",
        lambda w, t: ["data", "import", w.shapes, "--store", random_file(t / "r.h5")],
        ["r.h5", "not an HDF5 file"],
    ),
    (
        "store-other-points",
        lambda w, t: ["data", "import", w.shapes, "--store", w.store, "--points", "1024"],
        ["512 points per sample"],
    ),
    (
        "store-read-only-place",
        lambda w, t: ["data", "import", w.shapes, "--store", READ_ONLY / "s.h5"],
        ["afcli-test", "cannot create"],
    ),
    (
        "points-zero",
        lambda w, t: ["data", "import", w.shapes, "--store", t / "s.h5", "--points", "0"],
        ["--points must be positive"],
    ),
    (
        "shard-out-of-range",
        lambda w, t: ["data", "import", w.shapes, "--store", t / "s.h5", "--shard", "3/2"],
        ["--shard"],
    ),
    # store
    ("verify-missing", lambda w, t: ["store", "verify", t / "missing.h5"], ["missing.h5", "no such store"]),
    ("info-plain-hdf5", lambda w, t: ["store", "info", plain_hdf5(t)], ["not an afcli store"]),
    ("merge-onto-a-shard", lambda w, t: ["store", "merge", w.store, "--out", w.store], ["already exists"]),
    # render / lift
    ("render-tiny-size", lambda w, t: ["render", w.store, "--size", "4"], ["--size must be at least 8"]),
    ("lift-unknown-teacher", lambda w, t: ["lift", w.store, "--teacher", "dinov9"], ["dinov9"]),
    (
        "lift-gpus-without-gpus",
        lambda w, t: ["lift", w.store, "--teacher", "effnet-lite0", "--gpus", "4"],
        ["--gpus 4 needs 4 CUDA devices"],
    ),
    (
        "lift-inf-coordinates",
        lambda w, t: ["lift", store_with_inf(w, t), "--teacher", "effnet-lite0", "--size", "64", "--overwrite"],
        ["lifted.h5", "NaN or Inf"],
    ),
    # pretrain
    ("lr-negative", lambda w, t: pretrain(w, t, "--set", "optim.lr=-1"), ["optim.lr must be above 0"]),
    ("lr-nan", lambda w, t: pretrain(w, t, "--set", "optim.lr=nan"), ["optim.lr must be a finite number"]),
    ("workers-negative", lambda w, t: pretrain(w, t, "--workers", "-1"), ["data.workers must be 0 or more"]),
    ("depth-zero", lambda w, t: pretrain(w, t, "--set", "model.depth=0"), ["model.depth must be at least 1"]),
    ("teacher-dim-zero", lambda w, t: pretrain(w, t, "--teacher-dim", "0"), ["data.teacher_dim must be at least 1"]),
    ("run-is-a-file", lambda w, t: pretrain(w, t)[:-2] + ["--run", w.store], ["store.h5", "--run must be a directory"]),
    (
        "run-in-read-only-place",
        lambda w, t: pretrain(w, t)[:-2] + ["--run", READ_ONLY / "run"],
        ["afcli-test", "cannot create"],
    ),
    ("pretrain-gpus-without-gpus", lambda w, t: pretrain(w, t, "--gpus", "8"), ["--gpus 8 needs 8 CUDA devices"]),
    (
        "pretrain-inf-coordinates",
        lambda w, t: pretrain(w, t)[:2] + ["--store", store_with_inf(w, t)] + pretrain(w, t)[4:],
        ["NaN or Inf"],
    ),
    (
        "resume-truncated-checkpoint",
        lambda w, t: ["pretrain", "cmat", "--resume", "--run", run_with(w, t, w.cmat, "last.pt", truncated)],
        ["last.pt", "not an afcli checkpoint"],
    ),
    (
        "resume-pickle-with-code",
        lambda w, t: ["pretrain", "cmat", "--resume", "--run", run_with(w, t, w.cmat, "last.pt", pickled(Evil()))],
        ["last.pt", "not an afcli checkpoint"],
    ),
    (
        "resume-tensor-not-a-checkpoint",
        lambda w, t: [
            "pretrain",
            "cmat",
            "--resume",
            "--run",
            run_with(w, t, w.cmat, "last.pt", torch_file(torch.ones(3))),
        ],
        ["last.pt", "holds a Tensor"],
    ),
    (
        "resume-another-store",
        lambda w, t: ["pretrain", "cmat", "--resume", "--run", copy_of(w.cmat, t), "--store", w.cast_store],
        ["store.h5", "not the store"],
    ),
    (
        "resume-a-store-file-only",
        lambda w, t: ["pretrain", "cmat", "--resume", "--run", w.store],
        ["store.h5", "not a run directory"],
    ),
    # finetune
    ("drop-above-one", lambda w, t: finetune(w, t, "--set", "prompts.drop=2"), ["prompts.drop must be a fraction"]),
    (
        "backbone-damaged-weights",
        lambda w, t: finetune(w, t, "--backbone", run_with(w, t, w.cmat, "model/model.safetensors", truncated)),
        ["model.safetensors", "not an afcli model file"],
    ),
    (
        "backbone-damaged-config",
        lambda w, t: finetune(w, t, "--backbone", run_with(w, t, w.cmat, "model/config.json", text("{depth: 2"))),
        ["model", "unreadable config.json"],
    ),
    (
        "backbone-config-out-of-range",
        lambda w, t: finetune(
            w, t, "--backbone", run_with(w, t, w.cmat, "model/config.json", config_with(w.cmat, depth=-3))
        ),
        ["config.json", "depth must be at least 1"],
    ),
    (
        "text-encoder-unknown",
        lambda w, t: finetune(w, t)[:4] + ["--text", "no-such-encoder-anywhere"] + finetune(w, t)[6:],
        ["no-such-encoder-anywhere", "not found"],
    ),
    # eval
    (
        "probe-zero-steps",
        lambda w, t: ["eval", "probe", "--checkpoint", w.cmat, "--store", w.store, "--steps", "0"],
        ["steps must be at least 1"],
    ),
    (
        "probe-inf-coordinates",
        lambda w, t: ["eval", "probe", "--checkpoint", w.cmat, "--store", store_with_inf(w, t), "--steps", "5"],
        ["lifted.h5", "NaN or Inf"],
    ),
    (
        "probe-pickle-with-code",
        lambda w, t: [
            "eval",
            "probe",
            "--checkpoint",
            run_with(w, t, w.cmat, "model/model.safetensors", pickled(Evil())),
            "--store",
            w.store,
        ],
        ["model.safetensors", "not an afcli model file"],
    ),
    (
        "eval-copied-run-without-store",
        lambda w, t: ["eval", "synth", "--checkpoint", cast_copy_elsewhere(w, t), "--device", "cpu"],
        ["gone", "give --store where it is now"],
    ),
    (
        "export-damaged-prompts",
        lambda w, t: [
            "export",
            "torchscript",
            "--checkpoint",
            run_with(w, t, w.cast, "prompts.pt", truncated),
            "--out",
            t / "m.pt",
        ],
        ["prompts.pt", "not an afcli checkpoint"],
    ),
    (
        "eval-predictions-not-npz",
        lambda w, t: ["eval", "affordance", "--predictions", random_file(t / "p.npz")],
        ["p.npz"],
    ),
    # export
    (
        "export-out-is-a-folder",
        lambda w, t: ["export", "torchscript", "--checkpoint", w.cast, "--out", t],
        ["is a folder"],
    ),
    (
        "export-damaged-model",
        lambda w, t: [
            "export",
            "onnx",
            "--checkpoint",
            run_with(w, t, w.cast, "best/model.safetensors", truncated),
            "--out",
            t / "m.onnx",
        ],
        ["model.safetensors", "not an afcli model file"],
    ),
    (
        "export-ply-other-store",
        lambda w, t: ["export", "ply", "--store", w.store, "--predictions", bad_predictions(t), "--out", t / "ply"],
        ["is not a paired query of this store"],
    ),
    # scenes
    (
        "synth-rooms-zero",
        lambda w, t: ["data", "synth-rooms", t / "r", "--n", "0"],
        ["--n and --frames must be at least 1"],
    ),
    (
        "scannet-empty-folder",
        lambda w, t: [
            "data",
            "import",
            folder_with(t, "notes.md", text("hi")),
            "--benchmark",
            "scannet",
            "--store",
            t / "s.h5",
        ],
        ["no ScanNet scenes found"],
    ),
    (
        "scannet-unknown-format",
        lambda w, t: ["data", "import", t, "--benchmark", "scannet", "--format", "kitti", "--store", t / "s.h5"],
        ["unknown ScanNet format 'kitti'"],
    ),
    (
        "scannet-broken-mesh",
        lambda w, t: ["data", "import", scans_with_broken_mesh(t), "--benchmark", "scannet", "--store", t / "s.h5"],
        ["scene0000_00_vh_clean_2.ply", "unreadable mesh"],
    ),
    ("caption-object-store", lambda w, t: ["caption", w.store], ["store.h5", "not a scene store"]),
    (
        "caption-unknown-chunker",
        lambda w, t: ["caption", w.store, "--phrases", "nltk"],
        ["unknown noun-phrase chunker"],
    ),
    (
        "eval-scannet-no-folder",
        lambda w, t: ["eval", "scannet", "--predictions", t / "none", "--gt", w.store],
        ["none", "no such predictions folder"],
    ),
    (
        "eval-scannet-object-store",
        lambda w, t: ["eval", "scannet", "--predictions", semantic_predictions(t), "--gt", w.store],
        ["store.h5", "not a ScanNet scene store"],
    ),
    (
        "scene-probe-unlifted",
        lambda w, t: ["eval", "scene-probe", "--store", w.store],
        ["give --features", "no lifted"],
    ),
]


def plain_hdf5(tmp: Path, **attrs) -> Path:
    path = tmp / "plain.h5"
    with h5py.File(path, "w") as f:
        f["x"] = [1]
        f.attrs.update(attrs)
    return path


def random_file(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path


def config_with(run: Path, **values) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        config = json.loads((run / "model" / "config.json").read_text())
        path.write_text(json.dumps({**config, **values}))

    return write


def fingerprint(path: Path) -> dict[str, str]:
    """A store by the contents of each array (a failed command may add arrays, never change one);
    any other file by its bytes."""
    if path.suffix == ".h5" and h5py.is_hdf5(path):
        for swmr in (False, True):  # a handle the failed command left open in this process fixes the mode
            try:
                with h5py.File(path, "r", swmr=swmr, locking=False) as f:
                    found = {}
                    f.visititems(
                        lambda name, item: (
                            found.update({name: hashlib.sha256(item[()].tobytes()).hexdigest()})
                            if isinstance(item, h5py.Dataset)
                            else None
                        )
                    )
                    return found
            except (OSError, KeyError, ValueError):
                continue
    return {"bytes": hashlib.sha256(path.read_bytes()).hexdigest()}


def snapshot(*folders: Path) -> dict[Path, dict[str, str]]:
    return {path: fingerprint(path) for folder in folders for path in folder.rglob("*") if path.is_file()}


def kept(before: dict, after: dict) -> list[str]:
    """Files or arrays that existed before and are gone or different now."""
    lost = []
    for path, parts in before.items():
        now = after.get(path, {})
        lost += [f"{path}:{name}" for name, digest in parts.items() if now.get(name) != digest]
    return lost


def test_the_table_is_long_enough():
    assert len(CASES) >= 40 and len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("name, arguments, fragments", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_one_line_exit_2_and_loses_nothing(name, arguments, fragments, world, tmp_path):
    args = [str(a) for a in arguments(world, tmp_path)]
    before = snapshot(world.root, tmp_path)
    options.json = options.quiet = False
    result = CliRunner().invoke(app, args)
    lines = [line for line in result.stderr.splitlines() if line.strip() and "━" not in line]
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    after = snapshot(world.root, tmp_path)
    assert not kept(before, after), f"changed or removed: {kept(before, after)}"
    assert not [path for path in after if ".tmp" in path.name], "a temporary was left behind"


def test_skip_bad_skips_every_kind_of_unreadable_file(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    np.save(folder / "good.npy", np.random.default_rng(0).random((64, 3)))
    for name, write in [
        ("zero.npy", text(b"")),
        ("complex.npy", npy(np.ones((8, 3)) * 1j)),
        ("words.xyz", text("a b c\n")),
        ("strings.npy", npy(np.array([["a", "b", "c"]] * 4))),
        ("caf\udce9.npy", npy(np.ones((8, 3)))),
        ("garbage.obj", text(bytes(range(256)) * 4)),
    ]:
        write(folder / name)
    options.json = options.quiet = False
    result = CliRunner().invoke(
        app,
        ["--json", "data", "import", str(folder), "--store", str(tmp_path / "s.h5"), "--points", "64", "--skip-bad"],
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["imported"] == 1 and report["done"] == 1 and len(report["skipped"]) == 6
    options.json = False
