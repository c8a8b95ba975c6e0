"""Audio-visual affordance grounding metrics (AVAGD): mIoU and F-score of the function and the
dependency masks, as AVAGFormer's ``scripts/avaffordance/utility.py`` (AVSegFormer's ``utility.py``)
computes them. Inputs: ``logits`` (N, H, W) and ``gt`` (N, H, W) in {0, 1}, GT at the logits' size
(nearest-resized to 512² in the released protocol).

Per frame:
- IoU: pred = sigmoid(logit) > 0.5; IoU = |pred ∧ gt| / (|pred ∨ gt| + 1e-7); when the GT is empty,
  IoU = |¬pred ∧ ¬gt| / (H·W + 1e-7), the true-negative fraction;
- F curve: p = sigmoid(logit), for each of the 255 float32 thresholds ``torch.linspace(0, 1 - 1e-10,
  255)`` (the last one is exactly 1.0): m = p ≥ th, prec = tp / (|m| + 1e-20), rec = tp / (|gt| + 1e-20),
  F = (1 + β²)·prec·rec / (β²·prec + rec), β² = 0.3, NaN → 0; frames with an empty GT have no curve.

Protocols:
- ``avagformer`` (test.py, each call sees one frame): function — every sample counts, F_i = max of
  its curve (0 for an empty GT); dependency — only samples whose GT is non-empty; each result is the
  mean over the counted samples.
- ``avsbench`` (AVSBench / AVSegFormer test): per batch of frames, the mean IoU and the max over
  thresholds of the mean curve of the batch's non-empty frames (0 if none); then the mean over
  batches, a partial last batch included; the dependency head is scored the same way, unfiltered.
"""

from __future__ import annotations

import torch

BETA2 = 0.3
THRESHOLDS = torch.linspace(0, 1 - 1e-10, 255)  # float32: the last is 1.0, as the reference's
PROTOCOLS = ("avagformer", "avsbench")
HEADS = ("function", "dependency")


def frame_iou(logits: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """(N, H, W) logits and GT → (N,) IoU per frame (the true-negative fraction for an empty GT)."""
    pred = (torch.sigmoid(logits.float()) > 0.5).float()
    gt = gt.float()
    inter = (pred * gt).sum((1, 2))
    union = torch.maximum(pred, gt).sum((1, 2))
    empty = gt.sum((1, 2)) == 0
    negatives = ((1 - gt) * (1 - pred)).sum((1, 2))
    inter = torch.where(empty, negatives, inter)
    union = torch.where(empty, torch.full_like(union, gt.shape[1] * gt.shape[2]), union)
    return inter / (union + 1e-7)


def f_curves(logits: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """(N, H, W) → (N, 255) F_β curves over :data:`THRESHOLDS`; rows of empty-GT frames are NaN.

    Counts of p ≥ th come from sorted probabilities (a binary search per threshold), which gives the
    reference's comparisons exactly without its 255 full-size masks."""
    probs = torch.sigmoid(logits.float()).flatten(1)
    gt = gt.float().flatten(1) > 0.5
    thresholds = THRESHOLDS.to(probs.device)
    curves = torch.full((probs.shape[0], thresholds.numel()), float("nan"), device=probs.device)
    for i in range(probs.shape[0]):
        if not gt[i].any():
            continue
        every = torch.sort(probs[i]).values
        hits = torch.sort(probs[i][gt[i]]).values
        selected = (every.numel() - torch.searchsorted(every, thresholds)).float()
        tp = (hits.numel() - torch.searchsorted(hits, thresholds)).float()
        precision = tp / (selected + 1e-20)
        recall = tp / (float(hits.numel()) + 1e-20)
        f = (1 + BETA2) * precision * recall / (BETA2 * precision + recall)
        curves[i] = torch.nan_to_num(f, nan=0.0)
    return curves


def score_head(logits, gt, protocol: str = "avagformer", head: str = "function", batch: int = 10) -> dict:
    """mIoU and F of one head over N frames, with the sample counts behind them."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown AVAGD protocol {protocol!r} (choose from {', '.join(PROTOCOLS)})")
    iou, curves = frame_iou(logits, gt), f_curves(logits, gt)
    if protocol == "avagformer":
        best = torch.nan_to_num(curves, nan=0.0).max(1).values
        keep = torch.ones_like(iou, dtype=torch.bool) if head == "function" else ~curves[:, 0].isnan()
        count = int(keep.sum())
        miou = float(iou[keep].mean()) if count else float("nan")
        fscore = float(best[keep].mean()) if count else float("nan")
        return {"miou": miou, "f": fscore, "samples": count}
    batch_iou, batch_f = [], []
    for start in range(0, iou.numel(), batch):
        part = curves[start : start + batch]
        counted = part[~part[:, 0].isnan()]
        batch_iou.append(iou[start : start + batch].mean())
        batch_f.append(counted.mean(0).max() if counted.numel() else torch.tensor(0.0))
    return {
        "miou": float(torch.stack(batch_iou).mean()),
        "f": float(torch.stack(batch_f).mean()),
        "samples": iou.numel(),
    }


def score(predictions: dict, targets: dict, protocol: str = "avagformer", batch: int = 10) -> dict:
    """Both heads: ``predictions`` and ``targets`` map ``function`` / ``dependency`` to (N, H, W)."""
    return {head: score_head(predictions[head], targets[head], protocol, head, batch) for head in HEADS}
