"""AVAGFormer's losses (../shared/reference/avagformer-official-code.md §2; paper §5.5, Eq. 8-9) on
(B, 1, H, W) logits against {0, 1} masks.

- :func:`focal_dice` — the released ``FocalDiceLoss``: p = sigmoid(logit); dice per sample
  1 - (2Σpt + 1e-6)/(Σp + Σt + 1e-6), averaged; focal = mean over pixels of
  [α(1-p)^γ·t + (1-α)p^γ·(1-t)] · BCE(p, t) (``binary_cross_entropy`` on probabilities, logs floored
  at -100), α 0.25, γ 2; loss = 0.4·dice + 0.6·focal.
- :func:`iou_loss` — the paper's IoU loss of the final function mask: 1 - Σpt / (Σp + Σt - Σpt) per
  sample, averaged (the released code uses focal-dice here too).
- dependency: focal-dice on the foreground plus 0.2 × BCE-with-logits towards 0 over every
  background pixel of the batch. Which samples the foreground term sees: ``batch`` (released: the
  whole batch as soon as any pixel of it is dependency) or ``annotated`` (paper: "on annotated
  samples" — only samples whose dependency mask is non-empty).
- auxiliary: the mean of the query maps, bilinear-upsampled to the mask size, scored by the same
  function / dependency losses (focal-dice for the function in both readings), weight 0.1 each.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from afcli.losses.seg import ALPHA, GAMMA

DICE_WEIGHT = 0.4
FUNCTION_LOSSES = ("focal-dice", "iou")
DEPENDENCY_FOREGROUND = ("batch", "annotated")


def focal_dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p, t = torch.sigmoid(logits.float()), target.float()
    dice = 1 - (2 * (p * t).flatten(1).sum(1) + 1e-6) / (p.flatten(1).sum(1) + t.flatten(1).sum(1) + 1e-6)
    weight = ALPHA * (1 - p).pow(GAMMA) * t + (1 - ALPHA) * p.pow(GAMMA) * (1 - t)
    focal = (weight * F.binary_cross_entropy(p, t, reduction="none")).mean()
    return DICE_WEIGHT * dice.mean() + (1 - DICE_WEIGHT) * focal


def iou_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p, t = torch.sigmoid(logits.float()).flatten(1), target.float().flatten(1)
    inter = (p * t).sum(1)
    return (1 - inter / (p.sum(1) + t.sum(1) - inter).clamp(min=1e-6)).mean()


def dependency_loss(logits, target, foreground: str = "batch", background_weight: float = 0.2) -> torch.Tensor:
    target = target.float()
    annotated = target.flatten(1).sum(1) > 0
    if foreground == "annotated":
        fg = focal_dice(logits[annotated], target[annotated]) if annotated.any() else logits.sum() * 0
    else:
        fg = focal_dice(logits, target) if annotated.any() else logits.sum() * 0
    background = target == 0
    bg = F.binary_cross_entropy_with_logits(logits[background].float(), torch.zeros_like(logits[background].float()))
    return fg + background_weight * bg


def avagd_loss(
    out: dict[str, torch.Tensor],
    function: torch.Tensor,
    dependency: torch.Tensor,
    function_loss: str = "focal-dice",
    dependency_foreground: str = "batch",
    background_weight: float = 0.2,
    aux_weight: float = 0.1,
) -> dict[str, torch.Tensor]:
    """The model's outputs (:class:`afcli.models.avagformer.AVAGFormer`) and (B, 1, H, W) masks →
    the terms and their total."""
    final = iou_loss if function_loss == "iou" else focal_dice
    size = function.shape[-2:]
    aux = {
        task: F.interpolate(out[f"{task}_queries"].mean(1, keepdim=True), size=size, mode="bilinear")
        for task in ("function", "dependency")
    }
    terms = {
        "function": final(out["function"], function),
        "dependency": dependency_loss(out["dependency"], dependency, dependency_foreground, background_weight),
        "aux_function": focal_dice(aux["function"], function),
        "aux_dependency": dependency_loss(aux["dependency"], dependency, dependency_foreground, background_weight),
    }
    terms["total"] = (
        terms["function"] + terms["dependency"] + aux_weight * (terms["aux_function"] + terms["aux_dependency"])
    )
    return terms
