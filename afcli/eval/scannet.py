"""``afcli eval scannet --predictions DIR``: any codebase's ScanNet outputs scored with the released
evaluators' rules (afcli.metrics.scannet).

Predictions, one entry per scene at the top of DIR:

- instance segmentation, the benchmark's submission format: ``<scene>.txt`` with one line per instance,
  ``<mask file relative to DIR> <label id> <confidence>``, each mask file one 0/1 per vertex;
- semantic segmentation: ``<scene>.txt`` with one label id per vertex (ScanNet's semantic format), or
  ``<scene>.npy`` holding (V,) label ids or (V, C) class scores in the vocabulary's order (scores let
  the foreground protocol take its argmax over the 17 foreground classes, as RegionPLC does).

Label ids are the vocabulary's own (NYU40 ids for ScanNet20, ScanNet200 ids). Ground truth comes from a
store imported with ``afcli data import --benchmark scannet`` or from a folder of the evaluator's
``<scene>.txt`` files (``label · 1000 + instance + 1`` per vertex).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from afcli.data.scannet import vocabulary
from afcli.errors import InputError
from afcli.metrics.scannet import InstancePrediction, SemanticCounts, foreground_prediction, instance_ap

FOREGROUND_IGNORE = ("wall", "floor", "otherfurniture")  # RegionPLC's ignore_class_idx [0, 1, 19]
CLASS_SETS = ("benchmark", "sole")  # sole: SOLE's evaluator also leaves otherfurniture out


def _read_ints(path: Path, what: str) -> np.ndarray:
    try:
        return np.loadtxt(path, dtype=np.int64, ndmin=1)
    except FileNotFoundError:
        raise InputError(f"missing {what}", path) from None
    except (OSError, ValueError) as error:
        raise InputError(f"unreadable {what} ({' '.join(str(error).split())[:120]})", path) from None


def read_instance_predictions(path: Path) -> list[InstancePrediction]:
    """One scene's ``<scene>.txt`` of the instance submission format and the masks it names."""
    predictions = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3:
            raise InputError(f"line {number}: expected '<mask file> <label id> <confidence>'", path)
        try:
            label, score = int(parts[1]), float(parts[2])
        except ValueError:
            raise InputError(f"line {number}: label id must be an integer and confidence a number", path) from None
        if not np.isfinite(score):
            raise InputError(f"line {number}: confidence is not finite", path)
        mask = _read_ints(path.parent / parts[0], "prediction mask")
        predictions.append(InstancePrediction(mask, label, score))
    return predictions


def _is_instance_file(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as handle:
        first = next((line for line in handle if line.strip()), "")
    return len(first.split()) == 3 or first == ""


def prediction_files(folder: Path) -> tuple[str, dict[str, Path]]:
    """The kind of predictions in ``folder`` (instance or semantic) and each scene's file."""
    if not folder.is_dir():
        raise InputError("no such predictions folder", folder)
    files = {p.stem: p for p in sorted(folder.glob("*.txt"))} | {p.stem: p for p in sorted(folder.glob("*.npy"))}
    if not files:
        raise InputError("no <scene>.txt or <scene>.npy predictions", folder)
    kinds = {"semantic" if p.suffix == ".npy" or not _is_instance_file(p) else "instance" for p in files.values()}
    if len(kinds) > 1:
        raise InputError("mixes instance (<mask> <label> <score> lines) and per-vertex label files", folder)
    return kinds.pop(), files


class GroundTruth:
    """Per scene ``label · 1000 + instance + 1`` ids, from a store or a folder of evaluator files."""

    def __init__(self, source: Path, benchmark: str):
        self.source, self.vocabulary = Path(source), vocabulary(benchmark)
        if self.source.is_dir():
            self._ids = None
        elif self.source.is_file():
            from afcli.store.schema import decode, open_store

            self._store = open_store(self.source)
            self._ids = {sample: row for row, sample in enumerate(decode(self._store["samples/id"][:]))}
            self._labels = f"labels/semantic{benchmark.removeprefix('scannet')}"
            if self._labels not in self._store or "labels/instance" not in self._store:
                raise InputError(f"no /{self._labels} and /labels/instance: not a ScanNet scene store", self.source)
        else:
            raise InputError("no such ground-truth store or folder", self.source)

    def __call__(self, scene: str) -> np.ndarray:
        if self._ids is None:
            return _read_ints(self.source / f"{scene}.txt", f"ground truth of {scene}")
        from afcli.store.schema import read_sample

        if scene not in self._ids:
            raise InputError(f"scene {scene} has predictions but is not in the store", self.source)
        row = self._ids[scene]
        label = self.vocabulary.label_ids(read_sample(self._store, row, self._labels)).astype(np.int64)
        instance = read_sample(self._store, row, "labels/instance").astype(np.int64)
        return label * 1000 + np.where(instance >= 0, instance + 1, 0)

    def close(self) -> None:
        if self._ids is not None:
            self._store.close()


def _semantic_prediction(path: Path, count: int, vocab, foreground: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Class indices over all classes and over the foreground classes only, from labels or scores."""
    values = np.load(path, allow_pickle=False) if path.suffix == ".npy" else _read_ints(path, "label predictions")
    if len(values) != count:
        raise InputError(f"{len(values)} predictions for {count} vertices", path)
    if values.ndim == 2:
        if values.shape[1] != len(vocab.ids) or not np.isfinite(values).all():
            raise InputError(f"scores should be finite (V, {len(vocab.ids)}), got {tuple(values.shape)}", path)
        ignore = [i for i in range(len(vocab.ids)) if i not in foreground]
        return values.argmax(1), foreground_prediction(values, ignore)
    index = vocab.index(values)
    return index, index


def score_predictions(
    predictions: Path, ground_truth: Path, benchmark: str = "scannet20", classes: str = "benchmark"
) -> dict:
    """Score every scene of ``predictions`` against ``ground_truth`` (a store or an evaluator folder)."""
    if classes not in CLASS_SETS:
        raise InputError(f"unknown class set {classes!r} (choose from {', '.join(CLASS_SETS)})")
    kind, files = prediction_files(Path(predictions))
    truth = GroundTruth(ground_truth, benchmark)
    vocab = truth.vocabulary
    try:
        if kind == "instance":
            class_ids, names = vocab.instance_classes
            if classes == "sole":
                kept = [(i, n) for i, n in zip(class_ids, names) if n != "otherfurniture"]
                class_ids, names = [i for i, _ in kept], [n for _, n in kept]
            scenes = []
            for scene, path in files.items():
                gt = truth(scene)
                predicted = read_instance_predictions(path)
                for p in predicted:
                    if len(p.mask) != len(gt):
                        raise InputError(f"a mask has {len(p.mask)} vertices, {scene} has {len(gt)}", path)
                scenes.append((gt, predicted))
            result = instance_ap(scenes, class_ids, names)
            if vocab.splits:  # ScanNet200: nanmean of the per-class values within each split
                result["splits"] = {
                    split: {
                        key: _nanmean([result["classes"][n][key] for n in members if n in result["classes"]])
                        for key in ("ap", "ap50", "ap25")
                    }
                    for split, members in vocab.splits
                }
        else:
            foreground = [i for i, n in enumerate(vocab.names) if n not in FOREGROUND_IGNORE]
            everything, fore = SemanticCounts(len(vocab.ids)), SemanticCounts(len(vocab.ids))
            for scene, path in files.items():
                gt = vocab.index(truth(scene) // 1000)
                full, restricted = _semantic_prediction(path, len(gt), vocab, foreground)
                everything.add(full, gt)
                fore.add(restricted, np.where(np.isin(gt, foreground), gt, -1))
            overall, fg = everything.scores(), fore.scores(foreground)
            result = {
                "miou": overall["miou"],
                "macc": overall["macc"],
                "f_miou": fg["miou"],
                "f_macc": fg["macc"],
                "classes": {
                    name: {"iou": overall["iou"][i], "acc": overall["acc"][i], "points": int(everything.target[i])}
                    for i, name in enumerate(vocab.names)
                },
            }
    finally:
        truth.close()
    return _json_safe(
        {"kind": kind, "benchmark": benchmark, "scenes": len(files), "predictions": str(predictions), **result}
    )


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if v == v]
    return float(np.mean(kept)) if kept else float("nan")


def _json_safe(value):
    """NaN (a class without ground truth) as None, so that --json prints strict JSON."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, float) and value != value:
        return None
    return value
