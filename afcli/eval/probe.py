"""``afcli eval probe``: is a pre-trained representation any good? A linear probe of frozen per-point
features onto part labels, trained on some shapes and scored on held-out ones.

Classes are (category, part name) pairs read from ``/text/parts`` (the built-in set and any store
imported with part labels). A sample is held out when ``crc32(id)`` falls in the test fraction, so
the split does not depend on row order. Per-point features are the backbone's patch tokens carried
to the points by three-NN interpolation, standardised with the training statistics; the probe is a
linear layer trained full-batch with Adam on ``train_points`` random points per training shape.
Prediction is restricted to the parts of the shape's own category (as ShapeNet-Part evaluation
does). Reported: mIoU over classes (IoU = TP / (TP + FP + FN) over every point of the held-out
shapes) and point accuracy.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from afcli.errors import InputError
from afcli.models.point_mae import PointMAE, PointMAEConfig


@dataclass
class ProbeSettings:
    test_fraction: float = 0.25
    train_points: int = 256
    steps: int = 300
    lr: float = 0.01
    weight_decay: float = 1e-4
    batch_size: int = 16
    seed: int = 0

    def check(self) -> "ProbeSettings":
        from afcli.config import check_numbers

        check_numbers(self)
        if not 0 < self.test_fraction < 1:
            raise InputError(f"--test-fraction must be between 0 and 1, got {self.test_fraction}")
        return self


def load_parts(store: str | Path, test_fraction: float):
    """Points, global part labels (-1 = unlabelled), class names, each sample's allowed classes and
    whether it is held out."""
    from afcli.store import open_store
    from afcli.store.schema import DONE, decode, require_finite

    with open_store(store) as f:
        if "labels/part" not in f or "text/parts" not in f:
            raise InputError("no part labels in this store (/labels/part, /text/parts)", store)
        rows = np.flatnonzero(f["status/import"][:] == DONE)
        ids = decode(f["samples/id"][:])
        categories = decode(f["samples/category"][:])
        points = f["points/xyz"][rows]
        for i, row in enumerate(rows):
            require_finite(points[i], "points/xyz", ids[row], store)
        local = f["labels/part"][rows].astype(np.int64)
        parts = [json.loads(text) if text else [] for text in decode(f["text/parts"][rows])]
    classes: dict[str, int] = {}
    labels = np.full(local.shape, -1, np.int64)
    allowed = []
    for i, row in enumerate(rows):
        names = [f"{categories[row]}/{part['name']}" for part in parts[i]]
        ids_here = [classes.setdefault(name, len(classes)) for name in names]
        allowed.append(ids_here)
        for k, global_id in enumerate(ids_here):
            labels[i][local[i] == k] = global_id
    held_out = np.array([(zlib.crc32(ids[row].encode()) % 1000) < test_fraction * 1000 for row in rows])
    if held_out.all() or not held_out.any():
        raise InputError(f"test fraction {test_fraction} leaves no training or no test shapes", store)
    return points, labels, list(classes), allowed, held_out


@torch.no_grad()
def point_features(model: PointMAE, points: np.ndarray, batch_size: int, device) -> torch.Tensor:
    model.eval().to(device)
    out = []
    for start in range(0, len(points), batch_size):
        chunk = torch.from_numpy(points[start : start + batch_size]).float().to(device)
        out.append(model.point_features(chunk).float().cpu())
    return torch.cat(out)


def linear_probe(model: PointMAE, store: str | Path, settings: ProbeSettings, device="cpu") -> dict:
    points, labels, classes, allowed, held_out = load_parts(store, settings.test_fraction)
    features = point_features(model, points, settings.batch_size, device)
    generator = torch.Generator().manual_seed(settings.seed)
    train_rows = np.flatnonzero(~held_out)
    picks_x, picks_y = [], []
    for row in train_rows:
        labelled = torch.from_numpy(np.flatnonzero(labels[row] >= 0))
        chosen = labelled[torch.randperm(len(labelled), generator=generator)[: settings.train_points]]
        picks_x.append(features[row][chosen])
        picks_y.append(torch.from_numpy(labels[row])[chosen])
    x, y = torch.cat(picks_x), torch.cat(picks_y)
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    x = (x - mean) / std
    torch.manual_seed(settings.seed)
    probe = torch.nn.Linear(x.shape[1], len(classes))
    optimiser = torch.optim.Adam(probe.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    for _ in range(settings.steps):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(probe(x), y).backward()
        optimiser.step()
    confusion = torch.zeros(len(classes), len(classes), dtype=torch.long)
    with torch.no_grad():
        for row in np.flatnonzero(held_out):
            logits = probe((features[row] - mean) / std)
            mask = torch.full((len(classes),), float("-inf"))
            mask[allowed[row]] = 0
            predicted = (logits + mask).argmax(1)
            truth = torch.from_numpy(labels[row])
            keep = truth >= 0
            confusion += torch.bincount(truth[keep] * len(classes) + predicted[keep], minlength=len(classes) ** 2).view(
                len(classes), -1
            )
    true_positive = confusion.diag().float()
    union = confusion.sum(0).float() + confusion.sum(1).float() - true_positive
    present = confusion.sum(1) > 0
    iou = true_positive[present] / union[present]
    return {
        "miou": float(iou.mean()),
        "accuracy": float(true_positive.sum() / confusion.sum()),
        "classes": int(present.sum()),
        "train_shapes": int(len(train_rows)),
        "test_shapes": int(held_out.sum()),
        "per_class_iou": {name: round(float(v), 4) for name, v in zip(np.array(classes)[present.numpy()], iou)},
    }


def random_backbone(config: PointMAEConfig, seed: int = 0) -> PointMAE:
    torch.manual_seed(seed)
    return PointMAE(config)
