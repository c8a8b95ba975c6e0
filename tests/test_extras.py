"""Every package afcli imports is declared where the README's commands install it, and a verb whose
optional package is absent says which extra brings it (one line, exit 2) instead of a traceback."""

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib

import pytest
from conftest import ROOT

from afcli.extras import OPTIONAL

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement).group()).lower()


def _imports(path):
    """Top-level names of the absolute ``import`` statements in a module, wherever they stand."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module.split(".")[0]


def test_optional_table_matches_the_extras():
    extras = {
        extra: {_name(r) for r in requirements} for extra, requirements in PYPROJECT["optional-dependencies"].items()
    }
    for module, (distribution, extra) in OPTIONAL.items():
        assert _name(distribution) in extras[extra], f"{module}: {distribution} is not in the {extra!r} extra"


def test_every_import_is_declared_and_optional_ones_go_through_require():
    core = {_name(r) for r in PYPROJECT["dependencies"]}
    distributions = importlib.metadata.packages_distributions()
    undeclared, direct = [], []
    for path in sorted((ROOT / "afcli").rglob("*.py")):
        for top in set(_imports(path)):
            if top in sys.stdlib_module_names or top in ("afcli", "__future__"):
                continue
            if top in OPTIONAL:
                direct.append(f"{path.relative_to(ROOT)}: import {top} (use afcli.extras.require)")
            elif not {_name(d) for d in distributions.get(top, [top])} & core:
                undeclared.append(f"{path.relative_to(ROOT)}: {top}")
    assert not undeclared, "imported but not a core dependency in pyproject.toml: " + ", ".join(undeclared)
    assert not direct, "; ".join(direct)


# (module made unimportable, afcli arguments; {store} is a copy of a built-in store with queries, {tmp} a folder)
MISSING = [
    ("transformers", ["lift", "{store}", "--teacher", "dinov3:vits16"], "afcli[teachers]"),
    ("open_clip", ["lift", "{store}", "--teacher", "clip"], "afcli[teachers]"),
    ("efficientnet_lite_pytorch", ["lift", "{store}", "--teacher", "effnet-lite0"], "afcli[offline]"),
    ("embreex", ["render", "{store}", "--backend", "embree"], "afcli[render]"),
    (
        "transformers",
        [
            "finetune",
            "cast",
            "--store",
            "{store}",
            "--recipe",
            str(ROOT / "recipes/cast/synth.yaml"),
            "--run",
            "{tmp}/run",
        ],
        "afcli[teachers]",
    ),
    ("onnxruntime", ["export", "onnx", "--checkpoint", "{tmp}/run", "--out", "{tmp}/cast.onnx"], "afcli[export]"),
]


def _without(module: str, args: list[str]) -> subprocess.CompletedProcess:
    code = (
        f"import sys; sys.modules[{module!r}] = None; sys.argv = ['afcli', *{args!r}]; "
        "from afcli.cli import main; main()"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}
    )


@pytest.mark.slow
@pytest.mark.parametrize("module, args, extra", MISSING, ids=[f"{a[0]}-{m}" for m, a, _ in MISSING])
def test_a_missing_extra_is_one_line_naming_it(module, args, extra, cast_store, tmp_path):
    import shutil

    shutil.copytree(cast_store.parent, tmp_path / "cast")  # the store and the meshes it was imported from
    store = tmp_path / "cast" / cast_store.name
    before = store.read_bytes()
    result = _without(module, [a.format(store=store, tmp=tmp_path) for a in args])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and f"pip install '{extra}'" in lines[0], lines[0]
    assert store.read_bytes() == before  # nothing written
    assert not (tmp_path / "cast.onnx").exists()


@pytest.mark.slow
def test_doctor_reports_a_missing_extra():
    result = _without("transformers", ["doctor", "--json"])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["teachers"]["dinov3"] == "needs transformers: pip install 'afcli[teachers]'"
    assert report["teachers"]["effnet-lite0"] == "ready"
