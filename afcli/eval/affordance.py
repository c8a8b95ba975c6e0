"""``afcli eval laso | piad | piadv2 | synth``: a fine-tuned CAST run scored on a store's queries.

The metrics are afcli.metrics.affordance (the benchmarks' own formulas). Per benchmark:
- LASO: the test split, seen and unseen filters (afcli.data.laso.subset_of) and all of it; 3 votes
  by default, as LASO's ``eval_lyc.py``.
- PIAD / PIADv2 / synth: the test split, 1 vote.
Obtained numbers are printed beside the recipe's ``expected:`` (copied into the run directory by
``afcli finetune``, or given with ``--recipe``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from afcli.errors import InputError

BENCHMARKS = {"laso": 3, "piad": 1, "piadv2": 1, "synth": 1}  # name → default votes


@dataclass
class EvalOptions:
    benchmark: str
    store: Path | None = None
    split: str = "test"
    votes: int | None = None
    protocol: str = "standard"
    use: str = "auto"  # text, image, both, auto (every encoder the run has)
    batch_size: int = 16
    device: str = "auto"
    save_predictions: Path | None = None
    figures: Path | None = None
    recipe: Path | None = None


def resolve_model(run: Path) -> Path:
    """A run's best-on-val model, else its last one, else ``run`` itself as a saved model."""
    from afcli.models.cast import CONFIG_NAME

    for folder in (run / "best", run / "model", run):
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise InputError("not a CAST run directory or saved CAST model", run)


def expected_numbers(run: Path, recipe: Path | None) -> dict:
    """``recipe``'s paper numbers, else those the run was started with."""
    from afcli.engine.run import read_expected

    if recipe is not None:
        from afcli.config import load_recipe
        from afcli.finetune.cast import CASTSettings

        return load_recipe(recipe, CASTSettings, "finetune")[1].get("expected") or {}
    return read_expected(run)


def evaluate_run(run: str | Path, options: EvalOptions, advance=None, on_total=None) -> dict:
    from afcli.engine.distributed import pick_device
    from afcli.engine.run import read_settings, training_store
    from afcli.finetune.cast import CASTSettings, QueryData, encode_prompts, predict
    from afcli.metrics.affordance import evaluate
    from afcli.models.cast import CAST

    run = Path(run)
    if options.benchmark not in BENCHMARKS:
        raise InputError(f"unknown benchmark {options.benchmark!r} (choose from {', '.join(BENCHMARKS)})")
    settings = read_settings(CASTSettings, run)
    store = training_store(run, options.store, must_match=False)
    device = pick_device(options.device)
    model = CAST.from_pretrained(resolve_model(run)).to(device)
    if options.use not in ("auto", "both", "text", "image"):
        raise InputError(f"--prompt must be text, image, both or auto, got {options.use!r}")
    use = (
        tuple(k for k in ("text", "image") if getattr(settings.prompts, k))
        if options.use in ("auto", "both")
        else (options.use,)
    )
    for kind in use:
        if options.use != "auto" and getattr(settings.prompts, kind) is None:
            raise InputError(f"--prompt {options.use}: the run has no {kind} encoder", run)
    if not model.config.null_prompt and options.use not in ("auto", "both"):
        raise InputError("this model has no null prompt: it needs every modality it was trained with", run)
    votes = options.votes if options.votes is not None else BENCHMARKS[options.benchmark]
    if votes < 1:
        raise InputError(f"--votes must be at least 1, got {votes}")

    from afcli.store import open_store
    from afcli.store.queries import read_queries

    with open_store(store) as f:
        table = read_queries(f, store)
    rows = table.rows(options.split)
    if not len(rows):
        raise InputError(f"no {options.split} queries in the store", store)
    import dataclasses

    wanted = dataclasses.replace(settings.prompts, **{kind: None for kind in ("text", "image") if kind not in use})
    prompts = encode_prompts(wanted, store, table, rows, all_questions=False, device=device)
    data = QueryData(store, options.split, prompts, training=False)
    (on_total or (lambda n: None))(-(-len(data) // options.batch_size))
    pred, gt = predict(model, data, batch_size=options.batch_size, device=device, votes=votes, use=use, advance=advance)
    objects = np.array([table.object[r] for r in data.rows])
    affordances = np.array([table.affordance[r] for r in data.rows])

    groups = {"all": np.ones(len(data), bool)}
    if options.benchmark == "laso":
        from afcli.data.laso import subset_of

        subsets = np.array([subset_of(o, a) or "" for o, a in zip(objects, affordances)])
        groups = {"seen": subsets == "seen", "unseen": subsets == "unseen", "all": groups["all"]}
    results = {}
    for name, keep in groups.items():
        if keep.any():
            results[name] = evaluate(pred[keep], gt[keep], objects[keep], affordances[keep], options.protocol)
    expected = expected_numbers(run, options.recipe)
    out = {
        "run": str(run),
        "model": str(resolve_model(run)),
        "store": str(store),
        "benchmark": options.benchmark,
        "split": options.split,
        "protocol": options.protocol,
        "votes": votes,
        "prompts": list(use),
        "prompt_encoders": prompts["provenance"],
        "queries": len(data),
        "results": results,
        "expected": expected,
    }
    if options.save_predictions is not None:
        out["predictions"] = str(
            save_predictions(options.save_predictions, pred, gt, objects, affordances, [table.id[r] for r in data.rows])
        )
    if options.figures is not None:
        out["figures"] = str(gallery(options.figures, store, data, pred, gt, table))
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


def gallery(folder: Path, store: Path, data, pred: np.ndarray, gt: np.ndarray, table, count: int = 6) -> Path:
    """``gallery.png``: the ``count`` worst and best queries by aIoU (then SIM), each as predicted
    and ground-truth heat maps from two views, the prompt in the title."""
    from afcli.metrics.affordance import per_sample
    from afcli.render.preview import heat_gallery, render_heat
    from afcli.store import open_store

    scores = per_sample(pred, gt)
    key = np.where(np.isnan(scores["aiou"]), scores["sim"], scores["aiou"])
    order = np.argsort(key, kind="stable")
    picked = [("worst", i) for i in order[:count]] + [
        ("best", i) for i in order[::-1][:count] if i not in order[:count]
    ]
    rows = []
    with open_store(store) as f:
        for label, i in picked:
            r = data.rows[i]
            row = data.sample_row(i, np.random.default_rng([data.seed, data.epoch, int(i)]))
            points, normals = f["points/xyz"][row], f["points/normal"][row]
            prompt = table.text[r][0] if table.text[r] else Path(table.image[r]).name
            title = f'{label}: {table.object[r]} / {table.affordance[r]}  aIoU {100 * key[i]:.1f}  "{prompt[:60]}"'
            images = render_heat(points, normals, pred[i], views=(1, 5)) + render_heat(
                points, normals, gt[i], views=(1, 5)
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
