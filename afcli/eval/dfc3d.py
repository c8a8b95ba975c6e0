"""``afcli eval dfc-3d``: functional correspondence directly between point clouds — afcli's extension
of the paper (no anchor offers it).

The function-conditioned pixel features of a run are lifted onto each object's points as the lift
stage lifts a teacher's: every view of the store's kept renders that sees a point (the exact-id
visibility test) contributes the feature at the point's pixel, the views are averaged and
L2-normalised, and points no view sees take the mean of their 8 nearest seen points. The ground truth
is the 2D protocol's, in 3D: pairs of held-out objects sharing a function, aligned by their
functional parts (afcli.data.dfc.align), the part points FPS-sampled and matched one-to-one by the
Hungarian method on aligned distance. Each GT point of one object is sent to its most similar point
of the other (any point of it, as the 2D argmax runs over the whole object mask); the error is the
distance to its GT partner in units of the target's diameter, PCK at 0.05 / 0.1 / 0.2, both
directions, macro over pair-directions. Beside it: the raw backbone lifted the same way, and chance.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from afcli.errors import InputError
from afcli.eval.dfc import Features, summarise
from afcli.metrics.dfc import transfer_3d_entry

Lifter = Callable[[dict, str], torch.Tensor]  # (sample views, function) → (N, D) point features


def lift_views(sample: dict, function: str, pixel_features: Features) -> torch.Tensor:
    """Mean over the views that see each point of ``pixel_features(rgb, function, pixels (M, 2)) → (M, D)``."""
    from afcli.lift.core import fill_unseen

    visible, pixels = sample["visible"], sample["pixels"]
    total, count = None, torch.zeros(visible.shape[1])
    for view in range(visible.shape[0]):
        seen = torch.nonzero(visible[view]).squeeze(1)
        if len(seen) == 0:
            continue
        features = pixel_features(sample["rgb"][view].numpy(), function, pixels[view, seen].cpu().numpy()).cpu()
        total = torch.zeros(visible.shape[1], features.shape[1]) if total is None else total
        total[seen] += features
        count[seen] += 1
    if total is None:
        raise InputError("no view sees any point of an object")
    seen = count > 0
    mean = torch.nn.functional.normalize(total / count.clamp(min=1).unsqueeze(1), dim=-1)
    return torch.nn.functional.normalize(fill_unseen(torch.from_numpy(sample["points"]), mean, seen, 8), dim=-1)


def evaluate_3d(
    store: Path,
    lifters: dict[str, Lifter | None],
    *,
    taxonomy: str = "builtin",
    rig: str = "sphere",
    split: str = "test",
    pairs_per_function: int = 20,
    max_points: int = 1000,
    seed: int = 1234,
    advance: Callable[[], None] = lambda: None,
) -> dict:
    """Each lifter (None: chance) on the same GT pairs; results macro over (pair, direction)."""
    from afcli.data.dfc import StoreObjects, align, dense_matches
    from afcli.data.taxonomy import load_taxonomy
    from afcli.store import open_store

    rng = np.random.default_rng(seed)
    chance = np.random.default_rng(seed + 1)
    entries: dict[str, list] = {name: [] for name in lifters}
    cache: dict = {}
    with open_store(store) as f:
        objects = StoreObjects(f, load_taxonomy(taxonomy), rig, split)
        pairs = objects.pairs(pairs_per_function, rng)
        if not pairs:
            raise InputError(f"no two {split} objects share a function of the taxonomy", store)
        for function, r1, r2 in pairs:
            s1, s2 = objects[r1], objects[r2]
            on1, on2 = objects.part_points(r1, function), objects.part_points(r2, function)
            if not on1.any() or not on2.any():
                continue
            p1, p2 = s1["points"], s2["points"]
            moved = align(p1[on1], p2[on2])
            part1, part2 = np.flatnonzero(on1), np.flatnonzero(on2)
            i, j = dense_matches(p1[part1], p1[part1], moved(p2[part2]), moved(p2[part2]), max_points, rng)
            gt1, gt2 = part1[i], part2[j]
            within = objects.categories[r1] == objects.categories[r2]
            for name, lifter in lifters.items():
                if lifter is None:
                    match12 = chance.integers(len(p2), size=len(gt1))
                    match21 = chance.integers(len(p1), size=len(gt2))
                else:
                    for row, sample in ((r1, s1), (r2, s2)):
                        if (name, row, function) not in cache:
                            cache[(name, row, function)] = lifter(sample, function)
                    f1, f2 = cache[(name, r1, function)], cache[(name, r2, function)]
                    match12 = (f1[gt1] @ f2.T).argmax(1).numpy()
                    match21 = (f2[gt2] @ f1.T).argmax(1).numpy()
                for source_gt, target_gt, match, target in ((gt1, gt2, match12, p2), (gt2, gt1, match21, p1)):
                    diameter = float(np.linalg.norm(target.max(0) - target.min(0)))
                    entries[name].append((within, transfer_3d_entry(target[match], target[target_gt], diameter)))
            advance()
    results = {name: summarise(scored) for name, scored in entries.items()}
    return {"store": str(store), "pairs": len(pairs), "results": results}


def run_eval_3d(
    store: Path | None, checkpoints: list[Path], *, baselines: bool = True, device: str = "auto", **options
) -> dict:
    """Each run (its training store unless ``store``), its raw backbone and chance on the same pairs."""
    from afcli.engine.run import read_run
    from afcli.methods import load, method_of_run
    from afcli.runtime import pick_device

    lifters: dict[str, Lifter | None] = {"chance": None} if baselines else {}
    for run in checkpoints:
        method = method_of_run(run)
        if method.predictor is None or "dfc" not in method.benchmarks:
            raise InputError(f"a {method.name} run is not scored on dense functional correspondence", run)
        scorer = load(method.predictor)(run, pick_device(device))
        if store is None:
            store = Path(read_run(run)["settings"]["data"]["store"])
        if baselines:
            lifters[f"backbone {scorer.spec['backbone']['name']} (raw)"] = partial(
                lift_views, pixel_features=scorer.raw
            )
        lifters[f"{run} (pseudo-labels: {scorer.labels})"] = partial(lift_views, pixel_features=scorer.features)
    if store is None:
        raise InputError("give --store (or a --checkpoint, whose training store is used)")
    return evaluate_3d(Path(store), lifters, **options)
