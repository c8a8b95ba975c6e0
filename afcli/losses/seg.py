"""Heat-map segmentation losses of the affordance benchmarks (sources in
../shared/reference/metrics-and-formats.md §7), both against soft ground truth in [0, 1].

- :func:`cast_loss` — the CMAT authors' ``LASLoss`` (their code's name for CAST): logits → sigmoid,
  p clamped to [1e-6, 1 - 1e-6], everything flattened over the batch;
  focal = mean(-α(1-p)^γ·t·log p - (1-α)·p^γ·(1-t)·log(1-p)) with α = 0.25, γ = 2;
  dice = 1.5 - (2Σpt + 1e-6)/(Σ(p+t) + 1e-6) - (2Σ(1-p)(1-t) + 1e-6)/(Σ(2-p-t) + 1e-6);
  total = w_focal·focal + w_dice·dice (paper 1.0 / 1.0; the LASO and PIADv2 configs 0.5 / 1.0).
- :func:`hm_loss` — ``HM_Loss`` of LASO / IAGNet / GREAT on probabilities, per sample:
  focal = mean(-(1-α)p^γ(1-t)log(1-p+1e-6) - α(1-p)^γ·t·log(p+1e-6));
  dice± without the factor 2 (so each is at most 0.5), loss = focal + mean_B(1.5 - dice+ - dice-).
"""

from __future__ import annotations

import torch

ALPHA, GAMMA, SMOOTH = 0.25, 2.0, 1e-6


def cast_loss(
    logits: torch.Tensor, target: torch.Tensor, focal_weight: float = 1.0, dice_weight: float = 1.0
) -> dict[str, torch.Tensor]:
    p = torch.sigmoid(logits.float()).clamp(1e-6, 1 - 1e-6).reshape(-1)
    t = target.float().reshape(-1)
    focal = (
        -ALPHA * (1 - p).pow(GAMMA) * t * torch.log(p) - (1 - ALPHA) * p.pow(GAMMA) * (1 - t) * torch.log(1 - p)
    ).mean()
    positive = (2 * (p * t).sum() + SMOOTH) / ((p + t).sum() + SMOOTH)
    negative = (2 * ((1 - p) * (1 - t)).sum() + SMOOTH) / ((2 - p - t).sum() + SMOOTH)
    dice = 1.5 - positive - negative
    return {"focal": focal, "dice": dice, "total": focal_weight * focal + dice_weight * dice}


def hm_loss(probabilities: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p, t = probabilities.float(), target.float()
    focal = (
        -(1 - ALPHA) * p.pow(GAMMA) * (1 - t) * torch.log(1 - p + SMOOTH)
        - ALPHA * (1 - p).pow(GAMMA) * t * torch.log(p + SMOOTH)
    ).mean()
    positive = ((p * t).sum(-1) + SMOOTH) / ((p.abs() + t.abs()).sum(-1) + SMOOTH)
    negative = (((1 - p) * (1 - t)).sum(-1) + SMOOTH) / ((2 - p.abs() - t.abs()).sum(-1) + SMOOTH)
    return focal + (1.5 - positive - negative).mean()
