"""Run directories shared by every training verb: ``config.yaml`` (the full settings), ``meta.json``
(afcli version, git revision, seed, command line), the checks for a new or a resumed run, the saved
models inside a run, the body of one training process and the one way to start or resume a run.

Commands that read runs (eval, export, a fine-tuning backbone) go through here, never through a
method's training code."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Callable, TypeVar

from afcli import __version__
from afcli.console import note
from afcli.engine.trainer import CHECKPOINT, train
from afcli.errors import InputError
from afcli.files import check_creatable, write_text

CONFIG_FILE = "config.yaml"
EXPECTED_FILE = "expected.yaml"
T = TypeVar("T")


def git_revision() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except OSError:
        return "unknown"
    return result.stdout.strip() or "unknown"


def read_run(run_dir: Path) -> dict:
    """A run's ``config.yaml``: stage, method, settings and the identity of its store."""
    import yaml

    path = Path(run_dir) / CONFIG_FILE
    if Path(run_dir).exists() and not Path(run_dir).is_dir():
        raise InputError("not a run directory (a file)", run_dir)
    if not path.is_file():
        raise InputError(f"not a run directory (no {CONFIG_FILE})", run_dir)
    try:
        record = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise InputError(f"not an afcli run record ({type(error).__name__})", path) from None
    if not isinstance(record, dict) or not isinstance(record.get("settings"), dict):
        raise InputError("not an afcli run record (no settings)", path)
    return record


def read_settings(settings_type: type[T], run_dir: Path) -> T:
    """The settings a run was started with."""
    from afcli.config import build

    return build(settings_type, read_run(run_dir)["settings"], Path(run_dir) / CONFIG_FILE)


def training_store(run_dir: Path, given: str | Path | None = None, *, must_match: bool) -> Path:
    """The store a command on an existing run reads: ``given`` (``--store``: a copied or moved run
    names its store again) or the one the run recorded, by absolute path. A store other than the one
    the run was trained on (another sample count or other ids) is refused when resuming
    (``must_match``) and noted otherwise (scoring a run on another store is legitimate)."""
    record = read_run(run_dir)
    identity = record.get("store")
    path = Path(given if given is not None else identity["path"] if identity else record["settings"]["data"]["store"])
    if not path.exists():
        raise InputError(
            "no such store"
            + ("" if given is not None else f" (the store {run_dir} was trained on; give --store where it is now)"),
            path,
        )
    if identity is None:  # runs of afcli 0.1 recorded the path as typed, relative to where they started
        note(f"note: {run_dir} records no store identity (an older afcli): using {path.resolve()}")
        return path
    from afcli.store.inspect import store_identity

    current = store_identity(path)
    if (current["samples"], current["ids_sha256"]) != (identity["samples"], identity["ids_sha256"]):
        message = (
            f"not the store {run_dir} was trained on: {current['samples']} samples with ids {current['ids_sha256']}, "
            f"the run recorded {identity['samples']} with ids {identity['ids_sha256']} at {identity['path']}"
        )
        if must_match:
            raise InputError(message, path)
        note(f"note: {path}: {message}")
    return path


def _absolute_paths(settings) -> None:
    """Record where the store and the other files a method's settings name (its ``path_settings``)
    are, not how they were reached from the start folder."""
    settings.data.store = str(Path(settings.data.store).resolve())
    for name in getattr(settings, "path_settings", ()):
        value = getattr(settings, name)
        if value and Path(value).exists():
            setattr(settings, name, str(Path(value).resolve()))


def settings_for_run(settings_type: type[T], settings: T | None, run_dir: Path, resume: dict | None) -> T:
    """New run: check ``settings`` and that ``run_dir`` holds no run. Resuming (``resume`` = the
    settings a resumed run may change, and ``store``: where its store is now): the recorded settings
    with those overrides, on the store it was trained on."""
    from afcli.config import override

    run_dir = Path(run_dir)
    if resume is not None:
        read_run(run_dir)  # a run directory at all
        if not (run_dir / CHECKPOINT).is_file():
            command = _recorded_command(run_dir)
            raise InputError(
                f"nothing to resume: the run stopped before its first checkpoint; start it again{command}", run_dir
            )
        changes = {key: value for key, value in resume.items() if key != "store"}
        settings = override(read_settings(settings_type, run_dir), **changes).check()
        settings.data.store = str(training_store(run_dir, resume.get("store"), must_match=True))
        return settings
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError("--run must be a directory, this is a file", run_dir)
    settings.check()
    if (run_dir / CHECKPOINT).exists():
        raise InputError(
            "run directory already holds a run (--resume to continue it, or choose another --run)", run_dir
        )
    check_creatable(run_dir)
    _absolute_paths(settings)
    return settings


def _recorded_command(run_dir: Path) -> str:
    try:
        command = json.loads((run_dir / "meta.json").read_text())["command"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return ": " + shlex.join(["afcli", *map(str, command[1:])])


def write_run(settings, run_dir: Path, stage: str, method: str, expected: dict | None = None) -> None:
    """``config.yaml`` (settings and the store's identity), ``meta.json`` (versions, command) and,
    given a recipe's paper numbers, ``expected.yaml`` for eval to print beside its own."""
    import yaml

    from afcli.store.inspect import store_identity

    record = {
        "stage": stage,
        "method": method,
        "settings": asdict(settings),
        "store": store_identity(settings.data.store),
    }
    write_text(run_dir / CONFIG_FILE, yaml.safe_dump(record, sort_keys=False))
    meta = {"afcli_version": __version__, "git_revision": git_revision(), "seed": settings.seed, "command": sys.argv}
    write_text(run_dir / "meta.json", json.dumps(meta, indent=2))
    if expected:
        write_text(run_dir / EXPECTED_FILE, yaml.safe_dump(expected, sort_keys=False))


def read_expected(run_dir: Path) -> dict:
    """The paper numbers a run was started with (``{}`` when its recipe had none)."""
    import yaml

    path = Path(run_dir) / EXPECTED_FILE
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def saved_model(path: str | Path, model_type: str, what: str) -> Path:
    """The saved ``model_type`` model a path names: a run's best-on-val model (``best/``), else its
    last one (``model/``), else ``path`` itself as a saved model folder. ``what`` names the wanted
    thing in the one-line error."""
    from afcli.models.pretrained import saved_model_type

    path = Path(path)
    found = {folder: saved_model_type(folder) for folder in (path / "best", path / "model", path)}
    for folder, kind in found.items():
        if kind == model_type:
            return folder
    others = sorted({kind for kind in found.values() if kind not in (None, "unreadable")})
    if others:
        raise InputError(f"holds a {others[0]} model, not {what}", path)
    if "unreadable" in found.values():  # the model's own loader says what is wrong with it
        return next(folder for folder, kind in found.items() if kind == "unreadable")
    raise InputError(f"neither a run directory nor a saved model: {what} expected", path)


def train_rank(
    label: str, make_task: Callable, task_args: tuple, settings, run_dir: Path, resume: bool, show_progress: bool
) -> dict:
    """One process of a training job (the only one without --gpus): join the group, build the task
    ``make_task(*task_args)`` and run the shared loop with ``settings``' epochs, batch, optimiser."""
    from afcli.console import options, progress
    from afcli.engine.distributed import setup, teardown

    rank = setup(settings.device)
    try:
        if not rank.main or not show_progress:
            options.quiet = True
        with progress(label) as (advance, set_total):
            result = train(
                make_task(*task_args),
                epochs=settings.epochs,
                batch_size=settings.batch_size,
                seed=settings.seed,
                optim=settings.optim,
                workers=settings.data.workers,
                amp=settings.amp,
                run_dir=run_dir,
                rank=rank,
                resume=resume,
                advance=advance,
                on_total=set_total,
            )
        result.update(run=str(run_dir), world_size=rank.world_size, device=str(rank.device))
        return result
    finally:
        teardown()


def run_training(
    method,
    settings,
    run_dir: str | Path,
    *,
    resume: dict | None,
    plan=None,
    show_progress: bool = True,
    expected: dict | None = None,
) -> dict:
    """Start a run of ``method`` (a row of afcli.methods.METHODS) with ``settings`` in a new
    ``run_dir``, or resume the one there (``resume``: the settings a resumed run may change —
    epochs, device — and ``store``, where its store is now). Bad input fails here, in the launching
    process, once, before any rank starts; ``expected`` (a recipe's paper numbers) is kept for eval."""
    from afcli.engine.distributed import Launch, launch
    from afcli.runtime import external_rank, launched_externally

    run_dir = Path(run_dir)
    plan = plan or Launch()
    if resume is None:
        plan.check(settings.device)  # before the run directory is written
    settings = settings_for_run(method.settings_type, settings, run_dir, resume)
    settings = method.prepare_run(settings, run_dir, resume is None)
    if resume is None and not (launched_externally() and external_rank() != 0):
        write_run(settings, run_dir, method.stage, method.name, expected)  # rank 0 writes the record
    if resume is not None:
        plan.check(settings.device)
    label = f"{method.stage} {method.name}"
    return launch(
        plan,
        train_rank,
        label,
        method.task_type,
        (settings, run_dir),
        settings,
        run_dir,
        resume is not None,
        show_progress,
    )
