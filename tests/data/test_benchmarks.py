"""The GPU check script stays runnable where no GPU is (``--cpu``: same code paths, small sizes)."""

import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_device_check_runs_on_cpu(tmp_path):
    out = tmp_path / "device_check.md"
    result = subprocess.run(
        [sys.executable, ROOT / "benchmarks" / "device_check.py", "--cpu", "--out", out], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(":")[0] for row in rows[:3]] == ["| lift"] * 3
    assert any(row.startswith("| CMAT step") for row in rows) and any(row.startswith("| CAST step") for row in rows)
    assert sum(row.startswith("| point op") for row in rows) == 3
