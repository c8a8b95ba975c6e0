"""The method table: every pre-training method and task model afcli reproduces, one row each.

A row names, as lazy ``"module:attr"`` specs (imported only when used, so ``afcli --help`` stays
fast — the pattern of the teacher table), what the shared machinery needs of a method: its typed
settings, its training task, the run preparation, its command-line options, and where it has them
the benchmark predictor (with the benchmarks it is scored on) and the exporter. ``afcli pretrain
<m>``, ``afcli finetune <m>``, ``afcli eval <benchmark>`` and ``afcli export`` are built from this
table; adding a paper is one folder under ``afcli/methods/``, one row here and its recipes
(docs/adding-a-method.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from afcli.errors import InputError


def load(spec: str):
    """The object a ``"module:attr"`` spec names."""
    module, _, attr = spec.partition(":")
    return getattr(import_module(module), attr)


@dataclass(frozen=True)
class Method:
    name: str
    stage: str  # the verb that trains it: pretrain | finetune
    summary: str  # one line for --help and `afcli recipes`
    settings: str  # the typed settings dataclass; a recipe's ``settings:`` are its fields
    task: str  # the engine's Task, built as Task(settings, run_dir) in every training process
    prepare: str  # prepare(settings, run_dir, new) -> settings: checks and files a run needs before ranks start
    options: str  # afcli.cli.train.MethodOptions: its own command-line options (typer and stdlib only)
    predictor: str | None = None  # predict(run, store, split, options) -> Predictions, for eval <benchmark>
    benchmarks: tuple[str, ...] = ()  # the rows of afcli.eval.benchmarks.BENCHMARKS its runs are scored on
    exporter: str | None = None  # export(run, fmt, out, points, store) -> dict, for export torchscript|onnx

    @property
    def settings_type(self) -> type:
        return load(self.settings)

    @property
    def task_type(self) -> type:
        return load(self.task)

    def prepare_run(self, settings, run_dir, new: bool):
        return load(self.prepare)(settings, run_dir, new)


METHODS: dict[str, Method] = {
    "cmat": Method(
        name="cmat",
        stage="pretrain",
        summary="CMAT pre-training: Point-MAE distilled from lifted 2D features (reconstruction, affinity, KoLeo).",
        settings="afcli.methods.cmat.settings:CMATSettings",
        task="afcli.methods.cmat.task:CMATTask",
        prepare="afcli.methods.cmat.task:prepare_run",
        options="afcli.methods.cmat.cli:OPTIONS",
    ),
    "cast": Method(
        name="cast",
        stage="finetune",
        summary="CAST fine-tuning: geometric + prompt tokens → per-point affordance heat map; best epoch on val.",
        settings="afcli.methods.cast.settings:CASTSettings",
        task="afcli.methods.cast.task:CASTTask",
        prepare="afcli.methods.cast.task:prepare_run",
        options="afcli.methods.cast.cli:OPTIONS",
        predictor="afcli.methods.cast.predict:predict_run",
        benchmarks=("laso", "piad", "piadv2", "synth"),
        exporter="afcli.methods.cast.export:export_model",
    ),
    "avagformer": Method(
        name="avagformer",
        stage="finetune",
        summary="AVAGFormer: function and dependency masks of an image from the sound of an action; best on val.",
        settings="afcli.methods.avagformer.settings:AVAGFormerSettings",
        task="afcli.methods.avagformer.task:AVAGFormerTask",
        prepare="afcli.methods.avagformer.task:prepare_run",
        options="afcli.methods.avagformer.cli:OPTIONS",
        predictor="afcli.methods.avagformer.predict:predict_run",
        benchmarks=("avagd",),
        exporter="afcli.methods.avagformer.export:export_model",
    ),
    "dfc": Method(
        name="dfc",
        stage="finetune",
        summary="Dense functional correspondence: function-conditioned pixel features on a frozen backbone.",
        settings="afcli.methods.dfc.settings:DFCSettings",
        task="afcli.methods.dfc.task:DFCTask",
        prepare="afcli.methods.dfc.task:prepare_run",
        options="afcli.methods.dfc.cli:OPTIONS",
        predictor="afcli.methods.dfc.predict:RunFeatures",
        benchmarks=("dfc",),
    ),
}


def get_method(name: str, stage: str | None = None) -> Method:
    """The table row ``name`` (of ``stage`` when given); an unknown name is one line listing the known."""
    known = [m for m in METHODS.values() if stage is None or m.stage == stage]
    for method in known:
        if method.name == name:
            return method
    raise InputError(f"unknown method {name!r} (known: {', '.join(m.name for m in known)})")


def method_of_run(run) -> Method:
    """The method a run directory was trained with (its ``config.yaml`` records it)."""
    from afcli.engine.run import read_run

    record = read_run(run)
    try:
        return get_method(str(record.get("method")))
    except InputError as error:
        raise InputError(str(error), run) from None


def train(name: str, settings, run_dir, *, plan=None, show_progress: bool = True, expected: dict | None = None) -> dict:
    """Train method ``name`` with ``settings`` into a new ``run_dir`` (what ``afcli pretrain|finetune
    <name>`` does); ``plan`` (afcli.engine.distributed.Launch) starts several processes."""
    from afcli.engine.run import run_training

    return run_training(
        get_method(name), settings, run_dir, resume=None, plan=plan, show_progress=show_progress, expected=expected
    )


def resume(
    run_dir, *, epochs: int | None = None, device: str | None = None, store=None, plan=None, show_progress: bool = True
) -> dict:
    """Continue the run in ``run_dir`` from its last epoch (optionally to more ``epochs``) with the
    method it records; ``store``: where its store is now, if it moved (it must be the same store)."""
    from afcli.engine.run import run_training

    changes = {"epochs": epochs, "device": device, "store": store}
    return run_training(method_of_run(run_dir), None, run_dir, resume=changes, plan=plan, show_progress=show_progress)
