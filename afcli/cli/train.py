"""``afcli pretrain <method>`` and ``afcli finetune <method>``, built from the method table.

The flags every training verb shares (``--store``, ``--recipe``, ``--set``, ``--epochs``,
``--batch-size``, ``--workers``, ``--run``, ``--resume``, ``--gpus``, ``--nodes`` …) are defined here
once; a method adds its own (``MethodOptions`` in ``afcli/methods/<m>/cli.py``: typer and the standard
library only, since every row's options are read to build ``--help``). Typer reads a command's
parameters from its signature, so each command is one generic body with a signature made of both.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, List, Optional

import typer

from afcli.cli.common import JsonOption, apply_json, handle_errors
from afcli.console import emit, options, stdout, table
from afcli.methods import METHODS, Method, load


@dataclass(frozen=True)
class Flag:
    """One method-specific option: its parameter name, its Typer annotation, the setting it sets
    (dotted) and how the typed value becomes the setting's value."""

    name: str
    annotation: Any  # Annotated[Optional[T], typer.Option(...)]
    setting: str
    convert: Callable[[Any], Any] = lambda value: value


@dataclass(frozen=True)
class MethodOptions:
    store_help: str
    recipe_help: str
    set_example: str  # e.g. "--set optim.lr=3e-4 --set loss.terms=rec,aff"
    defaults: dict  # the settings' own epochs and batch_size, shown in --help (a test holds them equal)
    flags: tuple[Flag, ...] = ()
    score: str | None = None  # the validation score's name, for methods that select on val


def _shared(method: Method, opts: MethodOptions) -> list[inspect.Parameter]:
    def option(name: str, annotation, default=None) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)

    return [
        option("store", Annotated[Optional[Path], typer.Option("--store", help=opts.store_help)]),
        option("recipe", Annotated[Optional[Path], typer.Option("--recipe", help=opts.recipe_help)]),
        option(
            "set_",
            Annotated[Optional[List[str]], typer.Option("--set", help=f"Override any setting: {opts.set_example}.")],
        ),
        option(
            "epochs",
            Annotated[
                Optional[int],
                typer.Option(
                    "--epochs", help=f"Epochs [{opts.defaults['epochs']}]; with --resume, train on to this many."
                ),
            ],
        ),
        option(
            "batch_size",
            Annotated[
                Optional[int],
                typer.Option(
                    "--batch-size", help=f"Global batch size, split over all processes [{opts.defaults['batch_size']}]."
                ),
            ],
        ),
        option(
            "workers", Annotated[Optional[int], typer.Option("--workers", help="DataLoader workers per process [0].")]
        ),
        option(
            "run", Annotated[Optional[Path], typer.Option("--run", help=f"Run directory [runs/{method.name}-<time>].")]
        ),
        option(
            "resume",
            Annotated[bool, typer.Option("--resume", help="Continue the run in --run from its last epoch.")],
            False,
        ),
        option(
            "gpus",
            Annotated[
                int,
                typer.Option("--gpus", help="Processes per node, one per GPU (gloo CPU processes with --device cpu)."),
            ],
            1,
        ),
        option("nodes", Annotated[int, typer.Option("--nodes", help="Nodes in the job.")], 1),
        option("node_rank", Annotated[int, typer.Option("--node-rank", help="This node's rank.")], 0),
        option(
            "master_addr",
            Annotated[str, typer.Option("--master-addr", help="Address of node 0 (multi-node).")],
            "127.0.0.1",
        ),
        option(
            "master_port",
            Annotated[
                Optional[int], typer.Option("--master-port", help="Port on node 0 [a free one; 29500 multi-node].")
            ],
        ),
        option("device", Annotated[Optional[str], typer.Option("--device", help="auto, cpu or cuda [auto].")]),
        *(option(flag.name, flag.annotation) for flag in opts.flags),
        option("json", JsonOption, False),
    ]


def _settings(method: Method, opts: MethodOptions, values: dict):
    """A new run's settings: the recipe (or the defaults), then the options given, then ``--set``."""
    from afcli.config import apply_sets, assign, load_recipe

    recipe = values["recipe"]
    settings, raw = (
        load_recipe(recipe, method.settings_type, method.stage) if recipe is not None else (method.settings_type(), {})
    )
    shared = {
        "epochs": values["epochs"],
        "batch_size": values["batch_size"],
        "device": values["device"],
        "data.store": None if values["store"] is None else str(values["store"]),
        "data.workers": values["workers"],
    }
    for key, value in shared.items():
        if value is not None:
            assign(settings, key, value)
    for flag in opts.flags:  # a method's flag may set None on purpose (--text none)
        if values[flag.name] is not None:
            assign(settings, flag.setting, flag.convert(values[flag.name]))
    apply_sets(settings, values["set_"] or [])
    return settings, raw.get("expected")


def _train(method: Method, opts: MethodOptions, values: dict) -> dict:
    from afcli.engine.distributed import Launch
    from afcli.engine.run import run_training
    from afcli.errors import InputError

    plan = Launch(
        values["gpus"], values["nodes"], values["node_rank"], values["master_addr"], values["master_port"]
    ).check()
    show = not (options.json or options.quiet)  # ranks run in fresh processes: tell them
    run = values["run"]
    if values["resume"]:
        if run is None:
            raise InputError("--resume needs --run DIR (the run to continue)")
        fixed = ["recipe", "set_", "batch_size", "workers", *(flag.name for flag in opts.flags)]
        if any(values[name] not in (None, []) for name in fixed):
            raise InputError(
                "--resume continues a run with its recorded settings; only --epochs, --device and --store (where "
                "its store is now) may change"
            )
        resume = {"epochs": values["epochs"], "device": values["device"], "store": values["store"]}
        return run_training(method, None, run, resume=resume, plan=plan, show_progress=show)
    settings, expected = _settings(method, opts, values)
    run = run or Path("runs") / time.strftime(f"{method.name}-%Y%m%d-%H%M%S")
    return run_training(method, settings, run, resume=None, plan=plan, show_progress=show, expected=expected)


def _show(method: Method, opts: MethodOptions, result: dict) -> None:
    history = result.pop("history")
    last = [r for r in history if r["epoch"] == result["epochs"] - 1]
    terms = [key for key in (last[0] if last else {}) if key not in ("epoch", "step", "lr")]
    result["last_epoch"] = {term: sum(r[term] for r in last) / len(last) for term in terms}

    def show(r: dict) -> None:
        rows = [
            ("run", r["run"]),
            ("epochs", str(r["epochs"])),
            ("steps per epoch", str(r["steps_per_epoch"])),
            ("processes", f"{r['world_size']} ({r['device']})"),
        ]
        if opts.score:
            rows.append((f"best val {opts.score}", "-" if r["best_score"] is None else f"{100 * r['best_score']:.2f}"))
        rows += [(f"last epoch {term}", f"{value:.5g}") for term, value in r["last_epoch"].items()]
        stdout.print(table(f"{method.stage} {method.name}", ["", ""], rows, header=False))

    emit(result, show)


def training_command(method: Method) -> Callable:
    opts: MethodOptions = load(method.options)

    def command(**values) -> None:
        apply_json(values.pop("json"))
        _show(method, opts, _train(method, opts, values))

    command.__signature__ = inspect.Signature(_shared(method, opts))
    command.__doc__ = method.summary
    command.__name__ = method.name
    return handle_errors(command)


def stage_app(stage: str, what: str) -> typer.Typer:
    """The ``pretrain`` or ``finetune`` group: one command per method of that stage, named in its help."""
    methods = [method for method in METHODS.values() if method.stage == stage]
    app = typer.Typer(help=f"{what}: {', '.join(m.name for m in methods)}.", no_args_is_help=True)
    for method in methods:
        app.command(method.name, help=method.summary)(training_command(method))
    return app
