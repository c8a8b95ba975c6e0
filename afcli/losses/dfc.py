"""Losses of dense functional correspondence (Stojanov et al. §4.2, Eq. 1–3; the released
``train.py`` / ``ConditionedDino.forward``), all at temperature τ on cosine similarities.

Functional InfoNCE: every (positive of image 1 i, positive of image 2 j) pair is one row whose
positive is sim(p1_i, p2_j). Its negatives:
- ``anchor: paper`` (Eq. 1): sim(p1_i, P2⁻) and sim(P1⁻, p2_j);
- ``anchor: code``: the released indexing takes the image-1 positive of column j against P2⁻,
  sim(p1_j, P2⁻) — an ``unsqueeze/expand`` slip the code trains with;
- ``negneg`` (the code's ``negneg_loss``, not in Eq. 1): also sim(n1_j, P2⁻), background against
  background (needs as many negatives as positives).
The 50·128·128 rows × 385 logits the code materialises are never built here: each row's loss is
``logaddexp(s, N) − s`` with N the log-sum-exp of its negatives, which factor by i and j — the same
value in O(P²) memory.

Spatial InfoNCE (Eq. 2): view-1 point k against all view-2 points, the positive on the diagonal,
one direction. Mask: BCE on the sampled points, the mean of four terms (positives and negatives of
both images). Total: Eq. 3's weighted sum, divided by the sum of the weights in the code
(``normalise: true``: /12 with λ_spatial 10, λ_mask 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ANCHORS = ("paper", "code")


def functional_infonce(
    pos1: torch.Tensor,
    neg1: torch.Tensor,
    pos2: torch.Tensor,
    neg2: torch.Tensor,
    tau: float = 0.1,
    anchor: str = "paper",
    negneg: bool = False,
) -> torch.Tensor:
    """Positives (B, P, D) and negatives (B, Q, D) of two images of one function → mean row loss."""
    if anchor not in ANCHORS:
        raise ValueError(f"anchor must be one of {ANCHORS}, got {anchor!r}")
    positive = torch.einsum("bid,bjd->bij", pos1, pos2) / tau  # (B, P, P)
    image1_vs_bg2 = torch.logsumexp(torch.einsum("bid,bqd->biq", pos1, neg2) / tau, -1)  # (B, P) by anchor
    bg1_vs_image2 = torch.logsumexp(torch.einsum("bjd,bqd->bjq", pos2, neg1) / tau, -1)  # (B, P) by column j
    first = image1_vs_bg2.unsqueeze(2) if anchor == "paper" else image1_vs_bg2.unsqueeze(1)
    negatives = torch.logaddexp(first, bg1_vs_image2.unsqueeze(1))
    if negneg:
        if neg1.shape[1] != pos1.shape[1]:
            raise ValueError("negneg needs as many negatives as positives (the code's n_pos == n_neg)")
        bg_vs_bg = torch.logsumexp(torch.einsum("bjd,bqd->bjq", neg1, neg2) / tau, -1)  # (B, P) by column j
        negatives = torch.logaddexp(negatives, bg_vs_bg.unsqueeze(1))
    return (torch.logaddexp(positive, negatives) - positive).mean()


def spatial_infonce(view1: torch.Tensor, view2: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """Corresponding points (B, P, D) of two views → InfoNCE with the diagonal as positives, view 1 → 2."""
    logits = torch.einsum("bkd,bld->bkl", view1, view2) / tau
    target = torch.arange(view1.shape[1], device=view1.device).expand(view1.shape[0], -1)
    return F.cross_entropy(logits.flatten(0, 1), target.flatten())


def mask_bce(pos1: torch.Tensor, pos2: torch.Tensor, neg1: torch.Tensor, neg2: torch.Tensor) -> torch.Tensor:
    """Mask logits of the sampled points → the mean of the four BCE terms."""
    terms = [
        F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))
        for logits, label in ((pos1, 1.0), (pos2, 1.0), (neg1, 0.0), (neg2, 0.0))
    ]
    return torch.stack(terms).mean()


def total_loss(terms: dict[str, torch.Tensor], weights: dict[str, float], normalise: bool) -> torch.Tensor:
    """Σ weight · term over the terms present, divided by Σ weight when ``normalise`` (the code)."""
    total = sum(weights[name] * value for name, value in terms.items())
    return total / sum(weights[name] for name in terms) if normalise else total
