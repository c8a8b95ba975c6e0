"""The command line as users meet it: verbs, --json, exit codes, one-line errors, generated docs.
Wiring runs in this process (``afcli_run``); the entry point, exit codes and environment variables
in a fresh one (``afcli_cmd``)."""

import json

import h5py
import pytest

from afcli import __version__
from afcli.docgen import stale


def test_help_version_and_verbs(afcli_cmd):
    result = afcli_cmd("--help", check=0)
    for verb in ("data", "store", "doctor"):
        assert verb in result.stdout
    assert afcli_cmd("--version", check=0).stdout.strip() == f"afcli {__version__}"
    assert "synth" in afcli_cmd("data", "--help", check=0).stdout


def test_synth_import_info_json(afcli_run, tmp_path):
    shapes, store = tmp_path / "s", tmp_path / "s.h5"
    afcli_run("data", "synth", shapes, "--n", 13, "--seed", 1, check=0)
    imported = json.loads(
        afcli_run("--json", "data", "import", shapes, "--store", store, "--points", 256, check=0).stdout
    )
    assert imported["imported"] == 13 and imported["skipped"] == []
    again = json.loads(afcli_run("data", "import", shapes, "--store", store, "--points", 256, "--json", check=0).stdout)
    assert again["imported"] == 0 and again["already_done"] == 13
    info = json.loads(afcli_run("store", "info", store, "--json", check=0).stdout)
    arrays = {a["name"]: a for a in info["arrays"]}
    assert info["samples"] == 13
    assert arrays["points/xyz"]["shape"] == [13, 256, 3] and arrays["points/xyz"]["dtype"] == "float32"
    low, high = arrays["labels/affordance"]["range"]
    assert 0 <= low and high <= 1
    assert info["status"]["import"]["done"] == 13
    table = afcli_run("store", "info", store, check=0).stdout
    assert "labels/affordance" in table and "Mug" in table
    assert "ok (13 samples)" in afcli_run("store", "verify", store, check=0).stdout


def test_piad_import_and_merge(afcli_run, tmp_path, piad_demo):
    for rank in range(2):
        afcli_run("-q", "data", "import", piad_demo, "--store", tmp_path / "p.h5", "--shard", f"{rank}/2", check=0)
    shards = sorted(tmp_path.glob("p-*-of-00002.h5"))
    assert len(shards) == 2
    merged = json.loads(afcli_run("store", "merge", *shards, "--out", tmp_path / "all.h5", "--json", check=0).stdout)
    assert merged["samples"] == 2 and merged["virtual"]
    afcli_run("store", "verify", tmp_path / "all.h5", check=0)


@pytest.mark.slow
def test_doctor_json_names_every_backend(afcli_cmd):
    report = json.loads(afcli_cmd("doctor", "--json", check=0).stdout)
    assert set(report["ops"]) >= {"fps", "knn", "ball_query", "group", "scatter_sum", "scatter_mean", "scatter_max"}
    assert all(v == "torch" or v.startswith("compiled") for v in report["ops"].values())
    forced = json.loads(afcli_cmd("doctor", "--json", env={"AFCLI_OPS": "torch"}, check=0).stdout)
    assert set(forced["ops"].values()) == {"torch"}
    assert report["versions"]["torch"]
    assert report["text_encoders"]["minilm-l6"] == "ready (wheel)"  # make installs the wheel
    empty_cache = json.loads(afcli_cmd("doctor", "--json", env={"HF_HUB_CACHE": "/nonexistent-cache"}, check=0).stdout)
    assert "hf download FacebookAI/roberta-base" in empty_cache["text_encoders"]["roberta-base"]


def one_line_error(result, *fragments):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.slow
def test_bad_input_exit_codes(afcli_cmd, tmp_path, synth_store, piad_demo):
    result = afcli_cmd("data", "import", tmp_path / "nowhere", "--store", tmp_path / "x.h5", check=2)
    one_line_error(result, "nowhere", "no such file or folder")

    (tmp_path / "empty").mkdir()
    one_line_error(
        afcli_cmd("data", "import", tmp_path / "empty", "--store", tmp_path / "x.h5", check=2), "no shapes here"
    )

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.obj").write_text("")
    (bad / "nan.npy").write_bytes(b"")
    import numpy as np

    np.save(bad / "nan.npy", np.array([[0.0, np.nan, 0.0]] * 10))
    one_line_error(afcli_cmd("data", "import", bad, "--store", tmp_path / "x.h5", check=2), "empty.obj")
    skipped = json.loads(
        afcli_cmd("data", "import", bad, "--store", tmp_path / "y.h5", "--skip-bad", "--json", check=0).stdout
    )
    assert len(skipped["skipped"]) == 2

    one_line_error(afcli_cmd("store", "info", tmp_path / "missing.h5", check=2), "missing.h5", "no such store")
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = [1]
    one_line_error(afcli_cmd("store", "verify", plain, check=2), "plain.h5", "not an afcli store")
    one_line_error(afcli_cmd("data", "import", piad_demo, "--store", plain, check=2), "not an afcli store")
    with h5py.File(plain) as f:
        assert list(f) == ["x"]  # untouched

    before = (synth_store.stat().st_size, synth_store.read_bytes())
    one_line_error(afcli_cmd("data", "import", piad_demo, "--store", synth_store, check=2), "512 points per sample")
    assert (synth_store.stat().st_size, synth_store.read_bytes()) == before

    one_line_error(
        afcli_cmd("data", "import", piad_demo, "--store", tmp_path / "z.h5", "--shard", "x", check=2), "--shard"
    )
    assert afcli_cmd("data", "import", "--bogus", check=2).returncode == 2


def test_verify_exits_1_on_problems(afcli_run, tmp_path, piad_demo):
    store = tmp_path / "p.h5"
    afcli_run("-q", "data", "import", piad_demo, "--store", store, check=0)
    with h5py.File(store, "r+", libver="latest") as f:
        f["labels/affordance"][1, 7, 3] = float("inf")
    result = afcli_run("store", "verify", store, "--json", check=1)
    report = json.loads(result.stdout)
    assert not report["ok"] and "Inf" in report["problems"][0]


def test_generated_docs_are_current():
    assert stale() == [], "run `make docs` and commit completions/ and man/"
