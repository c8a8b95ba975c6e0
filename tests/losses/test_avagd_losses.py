"""AVAGFormer's losses against values computed by hand from their definitions."""

import math

import pytest
import torch

from afcli.losses.avagd import avagd_loss, dependency_loss, focal_dice, iou_loss


def test_focal_dice_by_hand():
    logits = torch.tensor([[[[0.0, 2.0]]]])  # p = 0.5, sigmoid(2)
    target = torch.tensor([[[[1.0, 0.0]]]])
    p = [0.5, 1 / (1 + math.exp(-2))]
    dice = 1 - (2 * 0.5 + 1e-6) / (sum(p) + 1 + 1e-6)
    focal = (0.25 * 0.5**2 * -math.log(0.5) + 0.75 * p[1] ** 2 * -math.log(1 - p[1])) / 2
    assert float(focal_dice(logits, target)) == pytest.approx(0.4 * dice + 0.6 * focal, rel=1e-6)


def test_iou_loss_by_hand():
    logits = torch.tensor([[[[0.0, 0.0]]], [[[50.0, -50.0]]]])
    target = torch.tensor([[[[1.0, 0.0]]], [[[1.0, 0.0]]]])
    assert float(iou_loss(logits, target)) == pytest.approx((1 - 0.5 / 1.5 + 0.0) / 2, abs=1e-6)


def test_dependency_foreground_readings():
    torch.manual_seed(0)
    logits = torch.randn(3, 1, 4, 4)
    target = torch.zeros(3, 1, 4, 4)
    target[0, 0, :2] = 1  # only the first sample has a dependency region
    background = torch.nn.functional.binary_cross_entropy_with_logits(logits[target == 0], torch.zeros(40))
    batch = dependency_loss(logits, target, "batch")
    annotated = dependency_loss(logits, target, "annotated")
    assert float(batch) == pytest.approx(float(focal_dice(logits, target) + 0.2 * background), rel=1e-6)
    assert float(annotated) == pytest.approx(float(focal_dice(logits[:1], target[:1]) + 0.2 * background), rel=1e-6)
    empty = dependency_loss(logits, torch.zeros_like(target))  # no dependency anywhere: background only
    assert float(empty) == pytest.approx(0.2 * float(torch.nn.functional.softplus(logits).mean()), rel=1e-6)


def test_total_weights_and_aux_upsampling():
    torch.manual_seed(0)
    out = {
        "function": torch.randn(2, 1, 8, 8, requires_grad=True),
        "dependency": torch.randn(2, 1, 8, 8),
        "function_queries": torch.randn(2, 5, 2, 2, requires_grad=True),
        "dependency_queries": torch.randn(2, 5, 2, 2),
    }
    function, dependency = (torch.rand(2, 1, 8, 8) > 0.5).float(), (torch.rand(2, 1, 8, 8) > 0.7).float()
    terms = avagd_loss(out, function, dependency, function_loss="iou")
    expected = terms["function"] + terms["dependency"] + 0.1 * (terms["aux_function"] + terms["aux_dependency"])
    assert terms["total"].item() == pytest.approx(expected.item())
    assert terms["function"].item() == pytest.approx(iou_loss(out["function"], function).item())
    terms["total"].backward()
    assert out["function_queries"].grad.abs().sum() > 0
