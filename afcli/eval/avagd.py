"""``afcli eval avagd``: AVAGFormer runs (or any codebase's saved masks) scored on AVAGD's seen and
unseen pairs with afcli.metrics.avagd, beside two baselines that need no model — every pixel
background, every pixel object — and the paper's Table 5 from the run's recipe.

Seen is the val split and unseen the unseen split, as the paper reports them. A run that selected
its best epoch on val (``selection: val``, the released protocol) has its seen numbers labelled as
scored on its selection split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from afcli.errors import InputError
from afcli.metrics.avagd import HEADS, PROTOCOLS, score

SPLITS = {"seen": "val", "unseen": "unseen"}
BASELINE_LOGIT = 30.0  # sigmoid(±30) is 0 or 1 in float32


@dataclass
class AVAGDOptions:
    store: Path | None = None
    splits: tuple[str, ...] = ("seen", "unseen")
    protocol: str = "avagformer"
    device: str = "auto"
    batch_size: int = 8
    save_predictions: Path | None = None
    figures: Path | None = None
    recipe: Path | None = None

    def check(self) -> "AVAGDOptions":
        if self.protocol not in PROTOCOLS:
            raise InputError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        unknown = [s for s in self.splits if s not in SPLITS]
        if unknown:
            raise InputError(f"--split must be seen, unseen or both, got {unknown[0]!r}")
        return self


def with_baselines(logits: dict, targets: dict, protocol: str) -> dict:
    """The model's scores and those of the two constant predictions, by name."""
    constant = {
        name: {h: torch.full_like(targets[h], value) for h in HEADS}
        for name, value in (("all background", -BASELINE_LOGIT), ("all object", BASELINE_LOGIT))
    }
    return {"model": score(logits, targets, protocol), **{n: score(c, targets, protocol) for n, c in constant.items()}}


def evaluate_run(run: str | Path, options: AVAGDOptions) -> dict:
    from afcli.engine.run import read_run, training_store
    from afcli.eval.affordance import expected_numbers
    from afcli.methods import load, method_of_run

    run = Path(run)
    method = method_of_run(run)
    if "avagd" not in method.benchmarks:
        raise InputError(f"{method.name} runs are not scored on avagd (fine-tune avagformer)", run)
    store = training_store(run, options.store, must_match=False)
    selected_on_val = read_run(run)["settings"].get("selection") == "val"
    out = {"run": str(run), "store": str(store), "protocol": options.protocol, "results": {}, "pairs": {}}
    found = {}
    for name in options.splits:
        found[name] = load(method.predictor)(run, store, SPLITS[name], options.device, options.batch_size)
        label = f"{name} (selection split, released protocol)" if name == "seen" and selected_on_val else name
        out["results"][label] = with_baselines(found[name]["logits"], found[name]["targets"], options.protocol)
        out["pairs"][label] = len(found[name]["samples"])
        out["model"] = found[name]["model"]
    out["expected"] = expected_numbers(run, options.recipe, method)
    if options.save_predictions is not None:
        out["predictions"] = str(save_predictions(options.save_predictions, found))
    if options.figures is not None:
        out["figures"] = str(gallery(options.figures, store, found))
    return out


def comparison(result: dict) -> list[tuple]:
    """(split, metric, obtained, paper) rows, in percent, for the splits the recipe has numbers for."""
    rows = []
    for label, by_model in result["results"].items():
        split = label.split(" ")[0]
        for metric, wanted in (result["expected"].get(split) or {}).items():
            head = by_model["model"]["function" if metric.endswith("_f") else "dependency"]
            rows.append((label, metric, f"{100 * head['miou' if metric.startswith('miou') else 'f']:.2f}", str(wanted)))
    return rows


def save_predictions(path: Path, found: dict) -> Path:
    """``function`` / ``dependency`` logits and ``function_gt`` / ``dependency_gt`` (N, S, S), ``split``,
    ``sample`` and ``clip`` (N,): what ``afcli eval avagd --predictions`` scores."""
    from afcli.files import written

    path = Path(path)
    if path.suffix != ".npz":
        raise InputError("predictions are written as .npz", path)
    arrays = {}
    for head in HEADS:
        arrays[head] = np.concatenate([f["logits"][head].numpy() for f in found.values()]).astype(np.float32)
        arrays[f"{head}_gt"] = np.concatenate([f["targets"][head].numpy() for f in found.values()]).astype(np.uint8)
    arrays["split"] = np.concatenate([[name] * len(f["samples"]) for name, f in found.items()]).astype(str)
    arrays["sample"] = np.concatenate([f["samples"] for f in found.values()]).astype(str)
    arrays["clip"] = np.concatenate([f["clips"] for f in found.values()]).astype(str)
    with written(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    return path


def score_file(path: Path, protocol: str = "avagformer") -> dict:
    """Scores of saved masks (the format of :func:`save_predictions`; logits, or probabilities with
    ``kind = "probabilities"``), per ``split`` when the file has one."""
    path = Path(path)
    try:
        data = dict(np.load(path, allow_pickle=False))
    except (OSError, ValueError) as error:
        raise InputError(f"not a readable .npz ({' '.join(str(error).split())[:100]})", path) from None
    missing = [k for h in HEADS for k in (h, f"{h}_gt") if k not in data]
    if missing:
        raise InputError(f"no {missing[0]!r} array (needs function, dependency, function_gt, dependency_gt)", path)
    shapes = {data[k].shape for h in HEADS for k in (h, f"{h}_gt")}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise InputError(f"masks must all be (N, H, W), got {sorted(shapes)}", path)
    values = {h: torch.from_numpy(data[h].astype(np.float32)) for h in HEADS}
    if not all(torch.isfinite(v).all() for v in values.values()):
        raise InputError("predictions hold NaN or Inf", path)
    if str(data.get("kind", "logits")) == "probabilities":
        values = {h: torch.logit(v.clamp(1e-7, 1 - 1e-7)) for h, v in values.items()}
    targets = {h: torch.from_numpy((data[f"{h}_gt"] > 0).astype(np.float32)) for h in HEADS}
    splits = data["split"] if "split" in data else np.array(["all"] * len(values["function"]))
    results = {}
    for name in dict.fromkeys(splits.tolist()):
        keep = torch.from_numpy(splits == name)
        results[name] = with_baselines(
            {h: v[keep] for h, v in values.items()}, {h: t[keep] for h, t in targets.items()}, protocol
        )
    return {"predictions": str(path), "protocol": protocol, "results": results}


def gallery(folder: Path, store: Path, found: dict, count: int = 4) -> Path:
    """``gallery.png``: per split, the ``count`` worst and best pairs by function IoU — the image, the
    ground truth and the prediction (function red, dependency blue)."""
    from afcli.images import square
    from afcli.metrics.avagd import frame_iou
    from afcli.render.preview import heat_gallery
    from afcli.store import open_store

    rows = []
    with open_store(store) as f:
        for name, result in found.items():
            iou = frame_iou(result["logits"]["function"], result["targets"]["function"]).numpy()
            order = np.argsort(iou, kind="stable")
            for i in dict.fromkeys([*order[:count], *order[::-1][:count]]):
                label = "worst" if i in order[:count] else "best"
                row = int(result["rows"][i])
                action = f["labels/action"][row].decode()
                truth = {h: result["targets"][h][i].numpy() > 0.5 for h in HEADS}
                guess = {h: torch.sigmoid(result["logits"][h][i]).numpy() > 0.5 for h in HEADS}
                size = truth["function"].shape[-1]
                image = square(torch.from_numpy(f["images/rgb"][row]), size).numpy()
                title = f"{name} {label}: {action}, sound {result['clips'][i][-40:]}  IoU_f {100 * iou[i]:.1f}"
                rows.append((title, [image, _overlay(image, truth), _overlay(image, guess)]))
    columns = ["image", "truth: function red", "predicted, dependency blue"]
    return heat_gallery(rows, columns, Path(folder) / "gallery.png")


def _overlay(image: np.ndarray, masks: dict) -> np.ndarray:
    out = image.astype(np.float32) * 0.45
    out[masks["function"]] += np.array([255, 40, 40]) * 0.55
    out[masks["dependency"]] += np.array([40, 90, 255]) * 0.55
    return out.clip(0, 255).astype(np.uint8)
