"""ScanNet metrics as the released evaluators compute them (../shared/reference/metrics-and-formats.md §4–5).

Instance segmentation (ScanNet's ``evaluate_semantic_instance.py``, as Mask3D and SOLE run it):

- Ground truth per vertex is ``label · 1000 + instance + 1`` (``label · 1000`` for vertices of no
  instance; 0 for unannotated ones). A GT instance counts when its label is an evaluated class and it
  has at least ``min_region_size`` (100) vertices. Vertices whose label is not evaluated are *void*.
- A prediction is a binary vertex mask, a label id and a confidence; masks under 100 vertices and
  labels outside the evaluated classes are dropped.
- For each overlap ``t`` in 0.50, 0.55 … 0.90 and 0.25 and each class: per GT, its candidate
  predictions (same label, intersecting, in prediction order) are visited greedily; a candidate not
  yet used with ``IoU > t`` (strict) matches. A second match of the same GT is a false positive
  with the lower score (and, as in the released code, the candidate is not marked used). A GT left
  unmatched is a hard false negative. A prediction that matches no GT at ``t`` is a false positive
  unless the share of its vertices on void vertices, on GT groups (id < 1000) or on too-small GT of
  its class is above ``t``.
- Precision–recall over the unique scores, the last point set to (recall 0, precision 1);
  ``AP = precision · convolve(recall padded with its first value and 0, [-0.5, 0, 0.5], 'valid')``.
  A class with no GT is NaN; GT but no prediction gives 0.
- AP = nanmean over classes × the nine overlaps 0.5:0.95; AP50 and AP25 = nanmean over classes.

Semantic segmentation: intersection, union and target counts accumulated over the whole set (not per
scene); ``IoU_c = I_c / (U_c + 1e-10)``, ``Acc_c = I_c / (T_c + 1e-10)``, means over the listed
classes. The foreground variant of the RegionPLC protocol (MPEC's f-mIoU / f-mAcc) drops points whose
ground truth is wall, floor or otherfurniture and predicts over the 17 other classes only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

OVERLAPS = np.append(np.arange(0.5, 0.95, 0.05), 0.25)
MIN_REGION_SIZE = 100
EPSILON = 1e-10


@dataclass
class InstancePrediction:
    mask: np.ndarray  # (V,) non-zero = inside
    label_id: int
    score: float


@dataclass
class _Pred:
    uid: int
    vert_count: int
    confidence: float
    void_intersection: int
    matched_gt: list = field(default_factory=list)  # (gt instance id, gt vert_count, intersection)


@dataclass
class _Gt:
    instance_id: int
    vert_count: int
    matched_pred: list = field(default_factory=list)  # _Pred, intersection


def _scene_matches(gt_ids: np.ndarray, predictions: Sequence[InstancePrediction], class_ids, first_uid: int):
    """The released ``assign_instances_for_scan``: GT instances and predictions of each class, each
    with the others it intersects."""
    gt_ids = np.asarray(gt_ids, np.int64)
    valid = set(int(c) for c in class_ids)
    gts: dict[int, list[_Gt]] = {c: [] for c in valid}
    ids, counts = np.unique(gt_ids, return_counts=True)
    for instance_id, count in zip(ids.tolist(), counts.tolist()):
        if instance_id != 0 and instance_id // 1000 in valid:
            gts[instance_id // 1000].append(_Gt(instance_id, count))
    void = ~np.isin(gt_ids // 1000, list(valid))
    preds: dict[int, list[_Pred]] = {c: [] for c in valid}
    uid = first_uid
    for prediction in predictions:
        label = int(prediction.label_id)
        if label not in valid:
            continue
        mask = np.asarray(prediction.mask) != 0
        if len(mask) != len(gt_ids):
            raise ValueError(f"a prediction mask has {len(mask)} vertices, the scene has {len(gt_ids)}")
        count = int(mask.sum())
        if count < MIN_REGION_SIZE:
            continue
        pred = _Pred(uid, count, float(prediction.score), int((void & mask).sum()))
        uid += 1
        inside, hits = np.unique(gt_ids[mask], return_counts=True)
        hit = dict(zip(inside.tolist(), hits.tolist()))
        for gt in gts[label]:
            intersection = hit.get(gt.instance_id, 0)
            if intersection > 0:
                pred.matched_gt.append((gt.instance_id, gt.vert_count, intersection))
                gt.matched_pred.append((pred, intersection))
        preds[label].append(pred)
    return gts, preds, uid


def _average_precision(y_true: np.ndarray, y_score: np.ndarray, hard_false_negatives: int) -> float:
    order = np.argsort(y_score)
    y_score_sorted, y_true_sorted = y_score[order], y_true[order]
    cumsum = np.cumsum(y_true_sorted)
    _, unique_indices = np.unique(y_score_sorted, return_index=True)
    num_examples = len(y_score_sorted)
    num_true = cumsum[-1] if len(cumsum) else 0
    precision = np.zeros(len(unique_indices) + 1)
    recall = np.zeros(len(unique_indices) + 1)
    cumsum = np.append(cumsum, 0)
    for i, index in enumerate(unique_indices):
        before = cumsum[index - 1]  # index 0 reads the appended 0
        tp = num_true - before
        fp = num_examples - index - tp
        fn = before + hard_false_negatives
        precision[i] = tp / (tp + fp)
        recall[i] = tp / (tp + fn)
    precision[-1], recall[-1] = 1.0, 0.0
    steps = np.convolve(np.concatenate([recall[:1], recall, [0.0]]), [-0.5, 0, 0.5], "valid")
    return float(np.dot(precision, steps))


def instance_ap(
    scenes: Iterable[tuple[np.ndarray, Sequence[InstancePrediction]]],
    class_ids: Sequence[int],
    class_names: Sequence[str],
    overlaps: np.ndarray = OVERLAPS,
) -> dict:
    """AP / AP50 / AP25 overall and per class over ``scenes`` of (GT ids (V,), predictions)."""
    matches, uid = [], 0
    for gt_ids, predictions in scenes:
        gts, preds, uid = _scene_matches(gt_ids, predictions, class_ids, uid)
        matches.append((gts, preds))
    ap = np.zeros((len(class_ids), len(overlaps)))
    for oi, threshold in enumerate(overlaps):
        visited = np.zeros(uid, bool)
        for ci, label in enumerate(class_ids):
            y_true, y_score, hard_false_negatives = [], [], 0
            has_gt = has_pred = False
            for gts, preds in matches:
                scene_gts = [gt for gt in gts[label] if gt.vert_count >= MIN_REGION_SIZE]
                has_gt |= bool(scene_gts)
                has_pred |= bool(preds[label])
                true = [1.0] * len(scene_gts)
                score = [-np.inf] * len(scene_gts)
                matched = [False] * len(scene_gts)
                for gi, gt in enumerate(scene_gts):
                    found = False
                    for pred, intersection in gt.matched_pred:
                        if visited[pred.uid]:
                            continue
                        if intersection / (gt.vert_count + pred.vert_count - intersection) > threshold:
                            if matched[gi]:
                                low, score[gi] = sorted((score[gi], pred.confidence))
                                true.append(0.0)
                                score.append(low)
                                matched.append(True)
                            else:
                                found = matched[gi] = True
                                score[gi] = pred.confidence
                                visited[pred.uid] = True
                    hard_false_negatives += not found
                y_true += [t for t, m in zip(true, matched) if m]
                y_score += [s for s, m in zip(score, matched) if m]
                for pred in preds[label]:
                    if any(i / (v + pred.vert_count - i) > threshold for _, v, i in pred.matched_gt):
                        continue
                    ignored = pred.void_intersection + sum(
                        i for gid, v, i in pred.matched_gt if gid < 1000 or v < MIN_REGION_SIZE
                    )
                    if ignored / pred.vert_count <= threshold:
                        y_true.append(0.0)
                        y_score.append(pred.confidence)
            if has_gt and has_pred:
                ap[ci, oi] = _average_precision(np.array(y_true), np.array(y_score), hard_false_negatives)
            else:
                ap[ci, oi] = 0.0 if has_gt else np.nan
    main = ~np.isclose(overlaps, 0.25)
    at50, at25 = np.isclose(overlaps, 0.5), np.isclose(overlaps, 0.25)
    with warnings.catch_warnings():  # the nanmean of an all-NaN slice is NaN, as in the released code
        warnings.simplefilter("ignore", RuntimeWarning)
        result = {
            "ap": float(np.nanmean(ap[:, main])),
            "ap50": float(np.nanmean(ap[:, at50])),
            "ap25": float(np.nanmean(ap[:, at25])),
            "classes": {
                name: {
                    "ap": float(np.average(ap[ci, main])),
                    "ap50": float(ap[ci, at50][0]),
                    "ap25": float(ap[ci, at25][0]),
                }
                for ci, name in enumerate(class_names)
            },
        }
    return result


class SemanticCounts:
    """Intersection, prediction and target counts per class, accumulated scene by scene.

    Labels are class indices 0..C-1; a GT below 0 is ignored; a prediction outside 0..C-1 is wrong
    for every class (it adds to its GT class's union only).
    """

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.intersection = np.zeros(num_classes, np.int64)
        self.predicted = np.zeros(num_classes, np.int64)
        self.target = np.zeros(num_classes, np.int64)

    def add(self, prediction: np.ndarray, target: np.ndarray) -> None:
        prediction, target = np.asarray(prediction, np.int64), np.asarray(target, np.int64)
        if prediction.shape != target.shape:
            raise ValueError(f"{prediction.shape[0]} predicted labels for {target.shape[0]} points")
        keep = (target >= 0) & (target < self.num_classes)
        prediction, target = prediction[keep], target[keep]
        inside = (prediction >= 0) & (prediction < self.num_classes)
        C = self.num_classes
        self.intersection += np.bincount(target[prediction == target], minlength=C)[:C]
        self.predicted += np.bincount(prediction[inside], minlength=C)[:C]
        self.target += np.bincount(target, minlength=C)[:C]

    def scores(self, classes: Sequence[int] | None = None) -> dict:
        """mIoU and mAcc over ``classes`` (all by default) and the per-class values."""
        classes = list(range(self.num_classes)) if classes is None else list(classes)
        union = self.predicted + self.target - self.intersection
        iou = self.intersection / (union + EPSILON)
        acc = self.intersection / (self.target + EPSILON)
        return {
            "miou": float(iou[classes].mean()),
            "macc": float(acc[classes].mean()),
            "iou": iou.tolist(),
            "acc": acc.tolist(),
        }


def foreground_prediction(scores: np.ndarray, ignore: Sequence[int]) -> np.ndarray:
    """RegionPLC's argmax over the valid classes only (ignored classes' logits set to -1e6)."""
    scores = np.array(scores, np.float64, copy=True)
    scores[:, list(ignore)] = -1e6
    return scores.argmax(1)
