"""Run directories shared by every training verb: ``config.yaml`` (the full settings), ``meta.json``
(afcli version, git revision, seed, command line), the checks for a new or a resumed run, and the
body of one training process."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Callable, TypeVar

from afcli import __version__
from afcli.engine.trainer import CHECKPOINT, train
from afcli.errors import InputError

CONFIG_FILE = "config.yaml"
T = TypeVar("T")


def git_revision() -> str:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5)
    except OSError:
        return "unknown"
    return result.stdout.strip() or "unknown"


def read_settings(settings_type: type[T], run_dir: Path) -> T:
    """The settings a run was started with."""
    import yaml

    from afcli.config import build

    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise InputError(f"not a run directory (no {CONFIG_FILE})", run_dir)
    return build(settings_type, yaml.safe_load(path.read_text())["settings"], path)


def settings_for_run(settings_type: type[T], settings: T | None, run_dir: Path, resume: dict | None) -> T:
    """New run: check ``settings`` and that ``run_dir`` holds no run. Resuming (``resume`` = the
    settings a resumed run may change): the recorded settings with those overrides."""
    from afcli.config import override

    if resume is not None:
        if not (run_dir / CHECKPOINT).is_file():
            raise InputError(f"nothing to resume: no {CHECKPOINT}", run_dir)
        return override(read_settings(settings_type, run_dir), **resume).check()
    settings.check()
    if (run_dir / CHECKPOINT).exists():
        raise InputError("run directory already holds a run (--resume to continue it, or choose another --run)", run_dir)
    return settings


def write_run(settings, run_dir: Path, stage: str, method: str) -> None:
    import yaml

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(yaml.safe_dump({"stage": stage, "method": method, "settings": asdict(settings)}, sort_keys=False))
    meta = {"afcli_version": __version__, "git_revision": git_revision(), "seed": settings.seed, "command": sys.argv}
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=2))


def train_rank(label: str, make_task: Callable, task_args: tuple, settings, run_dir: Path, resume: bool, show_progress: bool) -> dict:
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
                make_task(*task_args), epochs=settings.epochs, batch_size=settings.batch_size, seed=settings.seed,
                optim=settings.optim, workers=settings.data.workers, amp=settings.amp, run_dir=run_dir, rank=rank,
                resume=resume, advance=advance, on_total=set_total,
            )
        result.update(run=str(run_dir), world_size=rank.world_size, device=str(rank.device))
        return result
    finally:
        teardown()
