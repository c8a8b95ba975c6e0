"""``afcli eval <benchmark>``: a trained run scored on a store's queries, whatever its method.

The benchmark table (:data:`BENCHMARKS`) says what each benchmark scores and how; the run's method
(afcli.methods.METHODS, read from its ``config.yaml``) supplies the predictor that turns the run and
the store's queries into heat maps (:class:`Predictions`). The metrics are
afcli.metrics.affordance (the benchmarks' own formulas). Per benchmark:
- LASO: the test split, seen and unseen filters (afcli.data.laso.subset_of) and all of it.
- PIAD / PIADv2 / synth: the test split.
Votes (passes over seeded point orders) are the run's recipe's: 3 as LASO's ``eval_lyc.py`` in
``laso-paper.yaml``, 1 elsewhere (IAGNet's / GREAT's evaluators, the CMAT code); ``--votes`` overrides.
Obtained numbers are printed beside the recipe's ``expected:`` (copied into the run directory by
``afcli finetune``, or given with ``--recipe``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from afcli.errors import InputError
from afcli.eval.benchmarks import BENCHMARKS


@dataclass
class EvalOptions:
    benchmark: str
    store: Path | None = None
    split: str = "test"
    votes: int | None = None
    protocol: str = "standard"
    use: str = "auto"  # auto (every encoder the run has), both (text + image), or kinds joined by +
    batch_size: int = 16
    device: str = "auto"
    save_predictions: Path | None = None
    figures: Path | None = None
    recipe: Path | None = None


@dataclass
class Predictions:
    """What a method's predictor returns: heat maps and ground truth (Q, N) of Q queries, what each
    query asks, the store row its cloud is, the prompt shown for it, and what the run fed."""

    pred: np.ndarray
    gt: np.ndarray
    objects: np.ndarray
    affordances: np.ndarray
    ids: list[str]
    samples: np.ndarray
    prompts: list[str]
    model: Path
    info: dict = field(default_factory=dict)
    groups: dict[str, np.ndarray] = field(default_factory=dict)  # further subsets scored apart, by name


def expected_numbers(run: Path, recipe: Path | None, method) -> dict:
    """``recipe``'s paper numbers (a recipe of the run's ``method``), else those the run was started with."""
    from afcli.engine.run import read_expected

    if recipe is not None:
        from afcli.config import load_recipe

        return load_recipe(recipe, method.settings_type, method.stage)[1].get("expected") or {}
    return read_expected(run)


def evaluate_run(run: str | Path, options: EvalOptions, advance=None, on_total=None) -> dict:
    from afcli.engine.run import training_store
    from afcli.methods import load, method_of_run
    from afcli.metrics.affordance import evaluate

    run = Path(run)
    benchmark = BENCHMARKS.get(options.benchmark)
    if benchmark is None:
        raise InputError(f"unknown benchmark {options.benchmark!r} (choose from {', '.join(BENCHMARKS)})")
    method = method_of_run(run)
    if method.predictor is None:
        raise InputError(f"a {method.name} run makes no heat maps to score (fine-tune a task model on it)", run)
    if options.benchmark not in method.benchmarks:
        raise InputError(
            f"{method.name} runs are scored on {', '.join(method.benchmarks)}, not {options.benchmark}", run
        )
    store = training_store(run, options.store, must_match=False)
    if options.votes is not None and options.votes < 1:
        raise InputError(f"--votes must be at least 1, got {options.votes}")
    found = load(method.predictor)(run, store, options.split, options, advance, on_total)
    groups = {"all": np.ones(len(found.pred), bool)}
    if benchmark.subsets:
        subset_of = load(benchmark.subsets)
        subsets = np.array([subset_of(o, a) or "" for o, a in zip(found.objects, found.affordances)])
        groups = {"seen": subsets == "seen", "unseen": subsets == "unseen", "all": groups["all"]}
    groups.update(found.groups)
    results = {}
    for name, keep in groups.items():
        if keep.any():
            results[name] = evaluate(
                found.pred[keep], found.gt[keep], found.objects[keep], found.affordances[keep], options.protocol
            )
    out = {
        "run": str(run),
        "model": str(found.model),
        "store": str(store),
        "benchmark": options.benchmark,
        "split": options.split,
        "protocol": options.protocol,
        **found.info,
        "queries": len(found.pred),
        "results": results,
        "expected": expected_numbers(run, options.recipe, method),
    }
    if options.save_predictions is not None:
        out["predictions"] = str(
            save_predictions(
                options.save_predictions, found.pred, found.gt, found.objects, found.affordances, found.ids
            )
        )
    if options.figures is not None:
        out["figures"] = str(gallery(options.figures, store, found))
    return out


def save_predictions(path: Path, pred, gt, objects, affordances, ids) -> Path:
    """``pred``, ``gt`` (S, P), ``object``, ``affordance``, ``query`` (S,) — what ``afcli eval
    affordance --predictions`` scores; written atomically."""
    path = Path(path)
    if path.suffix != ".npz":
        raise InputError("predictions are written as .npz", path)
    from afcli.files import written

    with written(path, suffix=".npz") as tmp:
        np.savez_compressed(
            tmp,
            pred=pred.astype(np.float32),
            gt=gt.astype(np.float32),
            object=np.asarray(objects).astype(str),
            affordance=np.asarray(affordances).astype(str),
            query=np.asarray(ids).astype(str),
        )
    return path


def gallery(folder: Path, store: Path, found: Predictions, count: int = 6) -> Path:
    """``gallery.png``: the ``count`` worst and best queries by aIoU (then SIM), each as predicted
    and ground-truth heat maps from two views, the prompt in the title."""
    from afcli.metrics.affordance import per_sample
    from afcli.render.preview import heat_gallery, render_heat
    from afcli.store import open_store

    scores = per_sample(found.pred, found.gt)
    key = np.where(np.isnan(scores["aiou"]), scores["sim"], scores["aiou"])
    order = np.argsort(key, kind="stable")
    picked = [("worst", i) for i in order[:count]] + [
        ("best", i) for i in order[::-1][:count] if i not in order[:count]
    ]
    rows = []
    with open_store(store) as f:
        for label, i in picked:
            row = int(found.samples[i])
            points, normals = f["points/xyz"][row], f["points/normal"][row]
            title = (
                f"{label}: {found.objects[i]} / {found.affordances[i]}  aIoU {100 * key[i]:.1f}  "
                f'"{found.prompts[i][:60]}"'
            )
            images = render_heat(points, normals, found.pred[i], views=(1, 5)) + render_heat(
                points, normals, found.gt[i], views=(1, 5)
            )
            rows.append((title, images))
    return heat_gallery(
        rows, ["predicted", "predicted (back)", "ground truth", "ground truth (back)"], Path(folder) / "gallery.png"
    )


def comparison_rows(result: dict) -> list[tuple]:
    """(subset, metric, obtained, expected) for the printed table; aIoU and AUC in percent."""
    rows = []
    for subset, scored in result["results"].items():
        wanted = result["expected"].get("test" if subset == "all" else subset) or {}
        for metric in ("aiou", "auc", "sim", "mae"):
            value = scored["overall"][metric]
            shown = f"{100 * value:.2f}" if metric in ("aiou", "auc") else f"{value:.4f}"
            target = wanted.get(metric)
            rows.append((subset, metric, shown, "-" if target is None else str(target)))
    return rows
