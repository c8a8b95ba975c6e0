"""The affordance segmentation losses against element-by-element transcriptions of the formulas."""

import math

import pytest
import torch

from afcli.losses.seg import cast_loss, hm_loss


def inputs():
    torch.manual_seed(0)
    return torch.randn(2, 6) * 3, torch.rand(2, 6) * (torch.rand(2, 6) > 0.4)


def test_cast_loss_is_the_cmat_codes_lasloss():
    logits, target = inputs()
    p = [min(max(1 / (1 + math.exp(-x)), 1e-6), 1 - 1e-6) for x in logits.reshape(-1).tolist()]
    t = target.reshape(-1).tolist()
    focal = sum(
        -0.25 * (1 - pi) ** 2 * ti * math.log(pi) - 0.75 * pi**2 * (1 - ti) * math.log(1 - pi) for pi, ti in zip(p, t)
    ) / len(p)
    positive = (2 * sum(pi * ti for pi, ti in zip(p, t)) + 1e-6) / (sum(pi + ti for pi, ti in zip(p, t)) + 1e-6)
    negative = (2 * sum((1 - pi) * (1 - ti) for pi, ti in zip(p, t)) + 1e-6) / (
        sum(2 - pi - ti for pi, ti in zip(p, t)) + 1e-6
    )
    losses = cast_loss(logits, target, focal_weight=0.5, dice_weight=1.0)
    assert losses["focal"].item() == pytest.approx(focal, rel=1e-5)
    assert losses["dice"].item() == pytest.approx(1.5 - positive - negative, rel=1e-5)
    assert losses["total"].item() == pytest.approx(0.5 * focal + 1.5 - positive - negative, rel=1e-5)


def test_hm_loss_is_lasos_iagnets_and_greats():
    logits, target = inputs()
    probabilities = torch.sigmoid(logits)
    total_focal, dice_terms = 0.0, []
    for p_row, t_row in zip(probabilities.tolist(), target.tolist()):
        for p, t in zip(p_row, t_row):
            total_focal += -0.75 * p**2 * (1 - t) * math.log(1 - p + 1e-6) - 0.25 * (1 - p) ** 2 * t * math.log(
                p + 1e-6
            )
        positive = (sum(p * t for p, t in zip(p_row, t_row)) + 1e-6) / (sum(p + t for p, t in zip(p_row, t_row)) + 1e-6)
        negative = (sum((1 - p) * (1 - t) for p, t in zip(p_row, t_row)) + 1e-6) / (
            sum(2 - p - t for p, t in zip(p_row, t_row)) + 1e-6
        )
        dice_terms.append(1.5 - positive - negative)
    expected = total_focal / probabilities.numel() + sum(dice_terms) / len(dice_terms)
    assert hm_loss(probabilities, target).item() == pytest.approx(expected, rel=1e-5)


def test_perfect_hard_predictions_minimise_the_dice_terms():
    target = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    assert cast_loss(torch.tensor([[20.0, -20.0, 20.0, -20.0]]), target)["dice"].item() == pytest.approx(-0.5, abs=1e-4)
    assert hm_loss(target, target).item() == pytest.approx(0.5, abs=1e-4)  # no factor 2: each dice term peaks at 0.5
