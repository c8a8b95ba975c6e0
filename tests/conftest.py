import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
PIAD_DEMO = FIXTURES / "piad-demo"


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    from afcli.data.synth import synthesize

    out = tmp_path_factory.mktemp("synth")
    synthesize(out, count=24, seed=3)
    return out


@pytest.fixture(scope="session")
def synth_store(synth_dir, tmp_path_factory) -> Path:
    from afcli.data.importer import import_shapes

    store = tmp_path_factory.mktemp("store") / "shapes.h5"
    import_shapes(synth_dir, store, num_points=512)
    return store


@pytest.fixture
def afcli_cmd():
    """Run the real console entry point in a subprocess (exit codes, stdout/stderr as users see them)."""
    import subprocess

    def run(*args, check=None, env=None):
        result = subprocess.run(
            [sys.executable, "-m", "afcli", *map(str, args)],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "120", **(env or {})},
        )
        if check is not None:
            assert result.returncode == check, result.stdout + result.stderr
        return result

    return run
