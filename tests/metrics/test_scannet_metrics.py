"""ScanNet instance AP and semantic IoU on hand-made scenes, against values worked out by hand from
the released evaluator's rules (afcli.metrics.scannet's docstring)."""

import math

import numpy as np
import pytest

from afcli.metrics.scannet import InstancePrediction, SemanticCounts, instance_ap

CHAIR, TABLE, WALL = 5, 7, 1
CLASSES = ([CHAIR, TABLE], ["chair", "table"])


def scene():
    """600 vertices: wall 0-199, chair instance 0 at 200-399, table instance 1 at 400-599."""
    gt = np.zeros(600, np.int64)
    gt[:200] = WALL * 1000
    gt[200:400] = CHAIR * 1000 + 1
    gt[400:] = TABLE * 1000 + 2
    return gt


def mask(start, stop, size=600):
    m = np.zeros(size, np.int64)
    m[start:stop] = 1
    return m


def ap(scenes):
    return instance_ap(scenes, *CLASSES)


def test_perfect_prediction_scores_one():
    result = ap(
        [(scene(), [InstancePrediction(mask(200, 400), CHAIR, 0.9), InstancePrediction(mask(400, 600), TABLE, 0.8)])]
    )
    assert (result["ap"], result["ap50"], result["ap25"]) == (1.0, 1.0, 1.0)
    assert result["classes"]["chair"] == {"ap": 1.0, "ap50": 1.0, "ap25": 1.0}


def test_ignored_class_predictions_are_dropped_and_void_overlap_is_not_a_false_positive():
    perfect = [InstancePrediction(mask(200, 400), CHAIR, 0.9), InstancePrediction(mask(400, 600), TABLE, 0.8)]
    on_wall_class = InstancePrediction(mask(0, 200), WALL, 0.99)  # wall is not evaluated: dropped
    chair_on_wall = InstancePrediction(mask(0, 200), CHAIR, 0.99)  # all its vertices are void: ignored
    assert ap([(scene(), perfect + [on_wall_class, chair_on_wall])])["ap"] == 1.0
    # The same chair prediction on the table's vertices is a false positive ranked first: ScanNet's
    # PR integration gives (P, R) = (1/2, 1), (0, 0), (1, 0) with steps 1/2, 1/2, 0 → AP 1/4.
    chair_on_table = InstancePrediction(mask(400, 600), CHAIR, 0.99)
    result = ap([(scene(), perfect + [chair_on_table])])
    assert result["classes"]["chair"]["ap"] == pytest.approx(0.25)
    assert result["classes"]["table"]["ap"] == 1.0


def test_overlapping_masks_second_match_is_a_false_positive_with_the_lower_score():
    # A covers the chair exactly (score 0.6); B covers 175 of its 200 vertices (IoU 0.875, score 0.8).
    # At overlaps 0.50…0.85 both match: the GT keeps 0.8, A's 0.6 becomes a false positive below it → AP 1.
    # At 0.90 only A matches; B is a false positive above it → AP 1/4. AP = (8 · 1 + 1/4) / 9.
    predictions = [InstancePrediction(mask(200, 400), CHAIR, 0.6), InstancePrediction(mask(225, 400), CHAIR, 0.8)]
    result = ap([(scene(), predictions)])
    chair = result["classes"]["chair"]
    assert chair["ap"] == pytest.approx((8 + 0.25) / 9)
    assert chair["ap50"] == 1.0 and chair["ap25"] == 1.0
    assert result["classes"]["table"]["ap"] == 0.0  # GT without predictions


def test_empty_scenes():
    empty = (np.zeros(300, np.int64), [])
    # No GT of any class and no predictions: every class NaN, the means too.
    alone = ap([empty])
    assert math.isnan(alone["ap"]) and math.isnan(alone["classes"]["chair"]["ap50"])
    # An empty scene beside a perfect one changes nothing; GT without predictions scores 0.
    perfect = (
        scene(),
        [InstancePrediction(mask(200, 400), CHAIR, 0.9), InstancePrediction(mask(400, 600), TABLE, 0.8)],
    )
    assert ap([empty, perfect])["ap"] == 1.0
    assert ap([(scene(), [])])["ap"] == 0.0


def test_small_masks_and_small_gt_are_dropped():
    gt = scene()
    gt[200:260] = CHAIR * 1000 + 3  # a 60-vertex chair: below 100, not a GT
    tiny = InstancePrediction(mask(200, 260), CHAIR, 0.9)  # below 100 vertices: dropped
    result = ap([(gt, [tiny, InstancePrediction(mask(260, 400), CHAIR, 0.8)])])
    assert result["classes"]["chair"]["ap"] == 1.0


def test_semantic_counts_accumulate_over_scenes():
    counts = SemanticCounts(3)
    counts.add(np.array([0, 0, 1, 2]), np.array([0, 1, 1, -1]))
    counts.add(np.array([2, 7]), np.array([2, 2]))  # 7 is outside the vocabulary: wrong for every class
    # class 0: I 1, pred 2, target 1 → 1/2; class 1: I 1, pred 1, target 2 → 1/2; class 2: I 1, pred 1, target 2 → 1/2
    scores = counts.scores()
    assert scores["iou"] == pytest.approx([0.5, 0.5, 0.5])
    assert scores["acc"] == pytest.approx([1.0, 0.5, 0.5])
    assert counts.scores([0, 1])["miou"] == pytest.approx(0.5)
