"""``afcli eval dfc``: label transfer and correspondence discovery on annotated trials in the
official layout (afcli.data.dfc), both directions of every trial, with the metrics of afcli.metrics.dfc.

A *scorer* gives pixel features: ``features(rgb, function, pixels) → (M, D)`` unit vectors.
Argmaxes run over the target's object-mask pixels only — the released ``heat·mask − 100·(1 − mask)``
restricted to them, ties to the first pixel in raster order as argmax; an empty target mask sends
every query to pixel (0, 0), as the code does — and every transfer is one matmul per chunk of queries.

Predictions (``--save-predictions``, and ``--predictions`` to score any codebase's): per trial
folder ``<action>/<obj1>|||<obj2>/<NNNN>/<trial>/``, for d in 1to2, 2to1, ``transfer_<d>.npy`` (K, 2)
(row, col) — the match of each GT point of the source image — and ``discovery_<d>.npz`` with
``points1``, ``points2`` (N, 2) (row, col) and ``scores`` (N,).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from afcli.data.dfc import SEPARATOR, Trial, read_view
from afcli.errors import InputError
from afcli.metrics.dfc import cycle_scores, discovery_entries, mean_of_entries, transfer_entry

Features = Callable[[np.ndarray, str, np.ndarray], torch.Tensor]  # (rgb, function, (M, 2) pixels) → (M, D)
CHUNK = 1024


def mask_pixels(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    return np.stack([cols, rows], 1)


def best_matches(queries: torch.Tensor, targets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Index of each query's most similar target (first on ties) and that similarity."""
    if len(targets) == 0 or len(queries) == 0:
        return np.full(len(queries), -1), np.zeros(len(queries))
    index, value = [], []
    for start in range(0, len(queries), CHUNK):
        sims = queries[start : start + CHUNK] @ targets.T
        v, i = sims.max(1)
        index.append(i.cpu().numpy())
        value.append(v.float().cpu().numpy())
    return np.concatenate(index), np.concatenate(value)


def _at(pixels: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Pixels of the matches; an empty target (index −1) gives (0, 0), as the released argmax does."""
    out = np.zeros((len(index), 2), np.int64)
    found = index >= 0
    out[found] = pixels[index[found]]
    return out


class ViewCache:
    """One scorer's features of each (object, image, function), computed once; with ``masks`` (a
    scorer with a mask head) also its predicted functional-part mask on the object. ``views``: the
    images read so far, shared by the caches of one evaluation so that each is read once."""

    def __init__(self, images: Path, features: Features | None, masks: Features | None = None, views=None):
        self.images, self.features, self.masks = images, features, masks
        self._views: dict = views if views is not None else {}
        self._features: dict = {}
        self._parts: dict = {}

    def view(self, obj: str, image: str):
        if (obj, image) not in self._views:
            rgb, mask = read_view(self.images, obj, image)
            self._views[(obj, image)] = (rgb, mask, mask_pixels(mask))
        return self._views[(obj, image)]

    def embedded(self, obj: str, image: str, function: str) -> torch.Tensor:
        key = (obj, image, function)
        if key not in self._features:
            rgb, _, pixels = self.view(obj, image)
            self._features[key] = self.features(rgb, function, pixels)
        return self._features[key]

    def part(self, obj: str, image: str, function: str) -> np.ndarray:
        """(M,) whether each object pixel is in the predicted part (sigmoid ≥ 0.5)."""
        key = (obj, image, function)
        if key not in self._parts:
            rgb, _, pixels = self.view(obj, image)
            self._parts[key] = np.asarray(self.masks(rgb, function, pixels), bool)
        return self._parts[key]


MIN_REGION = 16  # the code falls back to the object mask when a part region is smaller


def discover(f1: torch.Tensor, f2: torch.Tensor, pixels1: np.ndarray, pixels2: np.ndarray) -> dict:
    """Every query pixel's forward match, its similarity and its cycle distance → ranked pairs."""
    forward, similarity = best_matches(f1, f2)
    backward = best_matches(f2[np.maximum(forward, 0)], f1)[0] if len(f2) else np.full(len(f1), -1)
    cycle = np.linalg.norm(_at(pixels1, backward).astype(np.float64) - pixels1, axis=1)
    scores = cycle_scores(similarity, cycle) if len(pixels1) else np.zeros(0)
    return {"points1": pixels1, "points2": _at(pixels2, forward), "scores": scores}


def predict_trial(
    trial: Trial, cache: ViewCache, direction: str, rng: np.random.Generator | None, pred_mask: bool = False
) -> dict:
    """One direction of one trial: the transfer of the GT points and the ranked discovery pairs.
    ``rng`` given: the chance baseline (uniform mask pixels, random scores). ``pred_mask`` (the code's
    ``--pred_mask``): transfer restricted to the target's predicted part (empty: pixel (0, 0)); discovery
    run on the predicted parts and on the rest separately, the part's pairs ranked first, both falling
    back to the whole object when a region has fewer than 16 pixels."""
    (o1, i1, q_points), (o2, i2) = (
        ((trial.obj1, trial.image1, trial.points1), (trial.obj2, trial.image2))
        if direction == "1to2"
        else ((trial.obj2, trial.image2, trial.points2), (trial.obj1, trial.image1))
    )
    rgb1, _, pixels1 = cache.view(o1, i1)
    _, _, pixels2 = cache.view(o2, i2)
    if rng is not None:
        pick = lambda pixels, n: pixels[rng.integers(len(pixels), size=n)] if len(pixels) else np.zeros((n, 2), int)  # noqa: E731
        return {
            "transfer": pick(pixels2, len(q_points)),
            "points1": pixels1,
            "points2": pick(pixels2, len(pixels1)),
            "scores": rng.random(len(pixels1)),
        }
    f1, f2 = cache.embedded(o1, i1, trial.action), cache.embedded(o2, i2, trial.action)
    queries = cache.features(rgb1, trial.action, q_points) if len(q_points) else f1[:0]
    if not pred_mask:
        return {"transfer": _at(pixels2, best_matches(queries, f2)[0]), **discover(f1, f2, pixels1, pixels2)}
    part1, part2 = cache.part(o1, i1, trial.action), cache.part(o2, i2, trial.action)
    transfer = _at(pixels2[part2], best_matches(queries, f2[torch.from_numpy(part2)])[0])
    regions = [(part1, part2), (~part1, ~part2)]
    if min(int(r.sum()) for pair in regions for r in pair) < MIN_REGION:
        return {"transfer": transfer, **discover(f1, f2, pixels1, pixels2)}
    found = [discover(f1[torch.from_numpy(a)], f2[torch.from_numpy(b)], pixels1[a], pixels2[b]) for a, b in regions]
    return {
        "transfer": transfer,
        "points1": np.concatenate([d["points1"] for d in found]),
        "points2": np.concatenate([d["points2"] for d in found]),
        "scores": np.concatenate([found[0]["scores"] + 1, found[1]["scores"]]),  # the part's pairs first
    }


def score_trial(trial: Trial, direction: str, prediction: dict) -> dict:
    truth1, truth2 = (trial.points1, trial.points2) if direction == "1to2" else (trial.points2, trial.points1)
    entry = transfer_entry(np.asarray(prediction["transfer"]), truth2)
    found = discovery_entries(prediction["points1"], prediction["points2"], prediction["scores"], truth1, truth2)
    for radius, values in found.items():
        entry[f"f1@{radius}"], entry[f"ap@{radius}"] = values["f1"], values["ap"]
    return entry


def summarise(entries: list[tuple[bool, dict]]) -> dict:
    """Macro means over (pair, direction) entries, each marked within-category or not: all, within, across."""
    out = {"all": mean_of_entries([e for _, e in entries]), "entries": len(entries)}
    for name, keep in (("within", True), ("across", False)):
        chosen = [e for within, e in entries if within == keep]
        if chosen:
            out[name] = mean_of_entries(chosen)
    return out


def evaluate(
    trials: list[Trial],
    cache: ViewCache,
    *,
    pred_mask: bool = False,
    chance_seed: int | None = None,
    save: Path | None = None,
    advance: Callable[[], None] = lambda: None,
) -> dict:
    """Score the cache's scorer (or, with ``chance_seed``, the chance baseline) on every trial, both directions."""
    rng = np.random.default_rng(chance_seed) if chance_seed is not None else None
    entries = []
    for trial in trials:
        for direction in ("1to2", "2to1"):
            prediction = predict_trial(trial, cache, direction, rng, pred_mask)
            if save is not None:
                save_prediction(save, trial, direction, prediction)
            entries.append((trial.within, score_trial(trial, direction, prediction)))
        advance()
    return summarise(entries)


def _folder(root: Path, trial: Trial) -> Path:
    return root / trial.action / f"{trial.obj1}{SEPARATOR}{trial.obj2}" / trial.trial


def save_prediction(root: Path, trial: Trial, direction: str, prediction: dict) -> None:
    from afcli.files import make_folder

    folder = _folder(root, trial)
    make_folder(folder)
    np.save(folder / f"transfer_{direction}.npy", np.asarray(prediction["transfer"])[:, ::-1].astype(np.int64))
    np.savez(
        folder / f"discovery_{direction}.npz",
        points1=np.asarray(prediction["points1"])[:, ::-1].astype(np.int64),
        points2=np.asarray(prediction["points2"])[:, ::-1].astype(np.int64),
        scores=np.asarray(prediction["scores"], np.float64),
    )


def score_predictions(trials: list[Trial], root: Path) -> dict:
    """Score saved predictions (the layout above) against the trials."""
    entries = []
    for trial in trials:
        folder = _folder(Path(root), trial)
        for direction in ("1to2", "2to1"):
            try:
                transfer = np.load(folder / f"transfer_{direction}.npy")[:, ::-1]
                with np.load(folder / f"discovery_{direction}.npz") as found:
                    prediction = {
                        "transfer": transfer,
                        "points1": found["points1"][:, ::-1],
                        "points2": found["points2"][:, ::-1],
                        "scores": found["scores"],
                    }
            except (OSError, KeyError, ValueError, IndexError) as error:
                raise InputError(
                    f"missing or unreadable prediction ({' '.join(str(error).split())[:100]})", folder
                ) from None
            truth = trial.points2 if direction == "1to2" else trial.points1
            if len(prediction["transfer"]) != len(truth):
                raise InputError(
                    f"transfer_{direction}.npy has {len(prediction['transfer'])} points, the trial {len(truth)}", folder
                )
            entries.append((trial.within, score_trial(trial, direction, prediction)))
    return summarise(entries)


def figure(trials: list[Trial], cache: ViewCache, path: Path, count: int = 3, points: int = 12) -> Path:
    """Rows of (source with query points, target with the transferred matches), the same colour per
    query: the first ``count`` trials, ``points`` GT points each spread by FPS-like striding."""
    from PIL import Image, ImageDraw

    from afcli.files import written

    rows = []
    for trial in trials[:count]:
        rgb1, _, _ = cache.view(trial.obj1, trial.image1)
        rgb2, _, pixels2 = cache.view(trial.obj2, trial.image2)
        chosen = trial.points1[np.linspace(0, len(trial.points1) - 1, min(points, len(trial.points1))).astype(int)]
        index, _ = best_matches(
            cache.features(rgb1, trial.action, chosen), cache.embedded(trial.obj2, trial.image2, trial.action)
        )
        matches = _at(pixels2, index)
        pictures = [Image.fromarray(rgb1), Image.fromarray(rgb2)]
        for k, (p, q) in enumerate(zip(chosen, matches)):
            colour = tuple(int(255 * c) for c in _hue(k / max(len(chosen), 1)))
            for picture, (x, y) in zip(pictures, (p, q)):
                ImageDraw.Draw(picture).ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour, outline=(0, 0, 0))
        ImageDraw.Draw(pictures[0]).text((4, 4), f"{trial.action}: {trial.obj1.split('---')[-1]}", fill=(0, 0, 0))
        ImageDraw.Draw(pictures[1]).text((4, 4), trial.obj2.split("---")[-1], fill=(0, 0, 0))
        rows.append(pictures)
    size = rows[0][0].size[0]
    sheet = Image.new("RGB", (2 * size, size * len(rows)), (255, 255, 255))
    for r, pictures in enumerate(rows):
        for c, picture in enumerate(pictures):
            sheet.paste(picture, (c * size, r * size))
    with written(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path


def _hue(h: float) -> tuple[float, float, float]:
    import colorsys

    return colorsys.hsv_to_rgb(h, 0.9, 1.0)


def run_eval(
    pairs: Path,
    checkpoints: list[Path],
    *,
    baselines: bool = True,
    device: str = "auto",
    save: Path | None = None,
    figure_path: Path | None = None,
    pred_mask: bool = False,
    seed: int = 1234,
    advance: Callable[[], None] = lambda: None,
) -> dict:
    """Every run (and its backbone alone, and chance) on the trials of ``pairs`` (a folder written by
    ``afcli data dfc-pairs``: images/, 2d_annotations/, selected_annotations.json)."""
    from afcli.data.dfc import load_trials
    from afcli.methods import load, method_of_run
    from afcli.runtime import pick_device

    trials = load_trials(pairs)
    images, views = Path(pairs) / "images", {}
    rows: dict[str, dict] = {}
    if baselines:
        rows["chance"] = evaluate(trials, ViewCache(images, None, views=views), chance_seed=seed, advance=advance)
    for run in checkpoints:
        method = method_of_run(run)
        if method.predictor is None or "dfc" not in method.benchmarks:
            raise InputError(f"a {method.name} run is not scored on dense functional correspondence", run)
        scorer = load(method.predictor)(run, pick_device(device))
        if pred_mask and not scorer.head.config.mask_head:
            raise InputError("--pred-mask needs a run trained with a mask head (model.mask_head)", run)
        if baselines:
            raw = ViewCache(images, scorer.raw, views=views)
            rows[f"backbone {scorer.spec['backbone']['name']} (raw)"] = evaluate(trials, raw, advance=advance)
        cache = ViewCache(images, scorer.features, scorer.masks, views)  # the two protocols share its features
        name = f"{run} (pseudo-labels: {scorer.labels})"
        rows[name] = evaluate(trials, cache, save=save, advance=advance)
        if pred_mask:
            rows[f"{name} + predicted part mask"] = evaluate(trials, cache, pred_mask=True)
        if figure_path is not None:
            figure(trials, cache, figure_path)
    return {"pairs": str(pairs), "trials": len(trials), "results": rows}
