"""``afcli eval <benchmark>``: affordance benchmarks of CAST runs, saved predictions, the part probe."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from afcli.cli.common import JsonOption, apply_json, handle_errors
from afcli.console import emit, progress, stdout, table
from afcli.eval.benchmarks import BENCHMARKS

app = typer.Typer(
    help="Evaluate: CAST on LASO / PIAD / PIADv2 / the built-in set, AVAGFormer on AVAGD, saved predictions, "
    "the part probe.",
    no_args_is_help=True,
)


def _metric_row(name: str, m: dict) -> tuple:
    return (
        name,
        str(m["samples"]),
        f"{100 * m['aiou']:.2f}",
        f"{100 * m['auc']:.2f}",
        f"{m['sim']:.4f}",
        f"{m['mae']:.4f}",
    )


METRIC_COLUMNS = ["", "samples", "aIoU %", "AUC %", "SIM", "MAE"]


def _class_tables(scored: dict, prefix: str = "") -> None:
    """Per-object and per-affordance tables of one standard-protocol result."""
    for key, title in (("per_object", "per object"), ("per_affordance", "per affordance")):
        if key in scored:
            stdout.print(
                table(prefix + title, METRIC_COLUMNS, [_metric_row(name, m) for name, m in scored[key].items()])
            )


def _benchmark_command(benchmark: str):
    def command(
        checkpoint: List[Path] = typer.Option(
            ..., "--checkpoint", help="A CAST run directory (its best-on-val model); repeat to compare runs."
        ),
        store: Optional[Path] = typer.Option(
            None, "--store", help="Store with the queries [the run's training store]."
        ),
        split: str = typer.Option("test", "--split", help="Query split to score: test or val."),
        votes: Optional[int] = typer.Option(
            None,
            "--votes",
            help="Average this many passes over seeded point orders [the run's recipe: 3 for laso-paper, else 1].",
        ),
        protocol: str = typer.Option(
            "standard",
            "--protocol",
            help="standard (LASO / IAGNet / GREAT, per sample) or cmat-pooled (the CMAT code).",
        ),
        prompt: str = typer.Option(
            "auto",
            "--prompt",
            help="Prompts to feed: auto (every encoder of the run), text, image, audio, or several joined by + "
            "(text+audio); both = text+image. Absent modalities get the null token.",
        ),
        save_predictions: Optional[Path] = typer.Option(
            None, "--save-predictions", help="Write pred, gt, object, affordance to FILE.npz."
        ),
        figures: Optional[Path] = typer.Option(
            None, "--figures", help="Write DIR/gallery.png: worst and best queries, predicted vs GT."
        ),
        recipe: Optional[Path] = typer.Option(
            None, "--recipe", help="Compare with this recipe's expected numbers [the run's]."
        ),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        json: JsonOption = False,
    ) -> None:
        apply_json(json)
        from afcli.errors import InputError
        from afcli.eval.affordance import EvalOptions, comparison_rows, evaluate_run

        options = EvalOptions(
            benchmark,
            store,
            split,
            votes,
            protocol,
            prompt,
            device=device,
            save_predictions=save_predictions,
            figures=figures,
            recipe=recipe,
        )
        if len(checkpoint) > 1 and (save_predictions or figures):
            raise InputError("--save-predictions and --figures take one --checkpoint")
        results = []
        for run in checkpoint:
            with progress(f"eval {benchmark} {run}") as (advance, set_total):
                results.append(evaluate_run(run, options, advance, set_total))

        def show(rs: list) -> None:
            r = rs[0]
            title = (
                f"{r['benchmark']} {r['split']}: {r['queries']} queries, {r['protocol']} protocol, "
                f"{r['votes']} vote(s), prompts {'+'.join(r['prompts'])}"
            )
            rows = [
                (_metric_row(f"{x['run']} {name}" if len(rs) > 1 else name, scored["overall"]))
                for x in rs
                for name, scored in x["results"].items()
            ]
            if len(rs) == 1:
                _class_tables(r["results"]["all"])
            stdout.print(table(title, METRIC_COLUMNS, rows))
            for x in rs:
                if x["expected"]:
                    stdout.print(
                        table(
                            f"{x['run']}: obtained vs expected ({x['expected'].get('protocol', 'standard')} "
                            "protocol in the paper)",
                            ["subset", "metric", "obtained", "expected"],
                            comparison_rows(x),
                        )
                    )
                for key in ("predictions", "figures"):
                    if key in x:
                        stdout.print(f"{key}: {x[key]}")

        emit(results, show)

    command.__doc__ = BENCHMARKS[benchmark].help
    return command


for _name, _row in BENCHMARKS.items():
    if _row.output == "heat maps":
        app.command(_name)(handle_errors(_benchmark_command(_name)))


AVAGD_COLUMNS = ["", "pairs", "mIoU_f %", "F_f %", "mIoU_d %", "F_d %"]


def _avagd_rows(prefix: str, results: dict, pairs: dict | None = None) -> list[tuple]:
    rows = []
    for split, by_model in results.items():
        for model, heads in by_model.items():
            f, d = heads["function"], heads["dependency"]
            count = str(pairs[split]) if pairs else str(f["samples"])
            values = [f["miou"], f["f"], d["miou"], d["f"]]
            rows.append((f"{prefix}{split}: {model}", count, *(f"{100 * v:.2f}" for v in values)))
    return rows


@app.command("avagd")
@handle_errors
def avagd(
    checkpoint: Optional[List[Path]] = typer.Option(
        None, "--checkpoint", help="An AVAGFormer run directory (its best model); repeat to compare runs."
    ),
    predictions: Optional[Path] = typer.Option(
        None,
        "--predictions",
        help="Score saved masks instead: a .npz with function, dependency (logits; kind='probabilities' "
        "for sigmoid outputs), function_gt, dependency_gt (N, H, W) and optionally split (N,).",
    ),
    store: Optional[Path] = typer.Option(None, "--store", help="Image store with sounds [the run's training store]."),
    split: str = typer.Option("both", "--split", help="seen (the val split), unseen, or both."),
    protocol: str = typer.Option(
        "avagformer", "--protocol", help="avagformer (its test.py, per pair) or avsbench (batches of 10 frames)."
    ),
    save_predictions: Optional[Path] = typer.Option(
        None, "--save-predictions", help="Write the masks to FILE.npz (what --predictions scores)."
    ),
    figures: Optional[Path] = typer.Option(
        None, "--figures", help="Write DIR/gallery.png: worst and best pairs, image, truth and prediction."
    ),
    recipe: Optional[Path] = typer.Option(
        None, "--recipe", help="Compare with this recipe's expected numbers [the run's]."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    json: JsonOption = False,
) -> None:
    """Function and dependency mIoU and F-score (β² = 0.3) on AVAGD's seen and unseen pairs, beside an
    all-background and an all-object prediction and the paper's Table 5."""
    apply_json(json)
    from afcli.errors import InputError
    from afcli.eval.avagd import AVAGDOptions, comparison, evaluate_run, score_file

    if (predictions is None) == (not checkpoint):
        raise InputError("give --checkpoint RUN (one or more) or --predictions FILE.npz")
    if predictions is not None:
        result = score_file(predictions, AVAGDOptions(protocol=protocol).check().protocol)
        emit(
            result,
            lambda r: stdout.print(
                table(f"{r['predictions']} ({r['protocol']} protocol)", AVAGD_COLUMNS, _avagd_rows("", r["results"]))
            ),
        )
        return
    splits = ("seen", "unseen") if split == "both" else (split,)
    options = AVAGDOptions(store, splits, protocol, device, 8, save_predictions, figures, recipe).check()
    if len(checkpoint) > 1 and (save_predictions or figures):
        raise InputError("--save-predictions and --figures take one --checkpoint")
    results = []
    for run in checkpoint:
        with progress(f"eval avagd {run}"):
            results.append(evaluate_run(run, options))

    def show(rs: list) -> None:
        rows = [row for r in rs for row in _avagd_rows(f"{r['run']} " if len(rs) > 1 else "", r["results"], r["pairs"])]
        stdout.print(table(f"avagd ({rs[0]['protocol']} protocol)", AVAGD_COLUMNS, rows))
        for r in rs:
            if r["expected"]:
                stdout.print(
                    table(f"{r['run']}: obtained vs the paper", ["split", "metric", "obtained", "paper"], comparison(r))
                )
            for key in ("predictions", "figures"):
                if key in r:
                    stdout.print(f"{key}: {r[key]}")

    emit(results, show)


@app.command("affordance")
@handle_errors
def affordance(
    predictions: Path = typer.Option(
        ..., "--predictions", help="A .npz with pred (S, P), gt (S, P) and optionally object, affordance (S,)."
    ),
    protocol: str = typer.Option(
        "standard", "--protocol", help="standard (LASO / IAGNet / GREAT, per sample) or cmat-pooled (the CMAT code)."
    ),
    json: JsonOption = False,
) -> None:
    """Score saved heat-map predictions with aIoU, AUC, SIM and MAE, as the benchmarks' code does."""
    apply_json(json)
    from afcli.metrics.affordance import evaluate, load_predictions

    arrays = load_predictions(predictions)
    result = evaluate(arrays["pred"], arrays["gt"], arrays.get("object"), arrays.get("affordance"), protocol)

    def show(r: dict) -> None:
        stdout.print(
            table(
                f"affordance metrics ({r['protocol']} protocol)", METRIC_COLUMNS, [_metric_row("overall", r["overall"])]
            )
        )
        _class_tables(r)
        if r.get("empty_gt_samples"):
            stdout.print(
                f"{r['empty_gt_samples']} samples with empty ground truth: left out of aIoU and AUC, counted in "
                "SIM and MAE"
            )

    emit(result, show)


@app.command("probe")
@handle_errors
def probe(
    checkpoint: List[Path] = typer.Option(
        ..., "--checkpoint", help="Run directory or saved model; repeat to compare several."
    ),
    store: Path = typer.Option(..., "--store", help="Store with part labels (e.g. the built-in set)."),
    random_init: bool = typer.Option(
        True, "--random-init/--no-random-init", help="Also probe a randomly initialised backbone of the same shape."
    ),
    test_fraction: float = typer.Option(0.25, "--test-fraction", help="Share of shapes held out (by id hash)."),
    steps: int = typer.Option(300, "--steps", help="Full-batch Adam steps of the linear probe."),
    seed: int = typer.Option(0, "--seed", help="Seeds the probe's point picks and the random-init backbone."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    json: JsonOption = False,
) -> None:
    """Linear probe of frozen per-point features onto part labels; mIoU on held-out shapes."""
    apply_json(json)
    from afcli.engine.run import saved_model
    from afcli.eval.probe import ProbeSettings, linear_probe, random_backbone
    from afcli.models.point_mae import PointMAE

    settings = ProbeSettings(test_fraction=test_fraction, steps=steps, seed=seed).check()
    models = [
        (str(path), PointMAE.from_pretrained(saved_model(path, "point-mae", "a CMAT run or saved Point-MAE")))
        for path in checkpoint
    ]
    if random_init:
        models.insert(0, ("random init", random_backbone(models[0][1].config, settings.seed)))
    results = []
    with progress("probe") as (advance, set_total):
        set_total(len(models))
        for name, model in models:
            results.append({"model": name, **linear_probe(model, store, settings, device)})
            advance()

    def show(rows: list) -> None:
        stdout.print(
            table(
                f"linear part probe ({rows[0]['test_shapes']} held-out shapes, {rows[0]['classes']} part classes)",
                ["model", "mIoU", "accuracy"],
                [(r["model"], f"{r['miou']:.4f}", f"{r['accuracy']:.4f}") for r in rows],
            )
        )

    emit(results, show)
