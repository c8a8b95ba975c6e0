"""Affordance metrics against an independent, literal implementation of the official formulas."""

import itertools
import json

import numpy as np
import pytest

from afcli.errors import InputError
from afcli.metrics.affordance import THRESHOLDS, evaluate, per_sample, pooled, roc_auc


def literal_auc(labels, scores):
    """Pairwise definition: P(score_pos > score_neg) + 0.5 P(tie)."""
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def literal_sample(pred, gt):
    """IAGNet evalization.py, written out sample by sample."""
    t = (gt >= 0.5).astype(int)
    if t.sum() == 0:
        aiou = auc = float("nan")
    else:
        ious = []
        for thr in np.linspace(0, 1, 20):
            m = (pred >= thr).astype(int)
            ious.append(np.sum(m & t) / np.sum(m | t))
        aiou = float(np.mean(ious))
        auc = literal_auc(t.astype(bool), pred)
    a = pred / (pred.sum() + 1e-12)
    b = gt / (gt.sum() + 1e-12)
    return aiou, auc, float(np.minimum(a, b).sum()), float(np.sum(np.abs(pred - gt)) / len(pred))


def cases():
    rng = np.random.default_rng(0)
    pred = rng.random((12, 64))
    gt = np.clip(rng.random((12, 64)) * 1.4 - 0.3, 0, 1)
    gt[3] = 0.0  # empty ground truth
    pred[4] = 0.37  # constant prediction
    pred[5] = np.round(pred[5] * 4) / 4  # many ties
    pred[6, :10] = 1.0  # exact ones (thr = 1 keeps them)
    gt[7] = (rng.random(64) > 0.5).astype(float)  # hard labels
    gt[8, :] = 0.5  # everything exactly on the binarisation threshold
    gt[8, 0] = 0.0
    return pred, gt


def test_per_sample_metrics_equal_the_literal_formulas():
    pred, gt = cases()
    ours = per_sample(pred, gt)
    for i in range(len(pred)):
        expected = literal_sample(pred[i], gt[i])
        for name, value in zip(("aiou", "auc", "sim", "mae"), expected):
            if np.isnan(value):
                assert np.isnan(ours[name][i]), (i, name)
            else:
                assert ours[name][i] == pytest.approx(value, abs=1e-6), (i, name)


def test_headline_is_nanmean_over_samples_with_empty_gt_kept_for_sim_and_mae():
    pred, gt = cases()
    objects = np.array(["Mug", "Bag"] * 6)
    result = evaluate(pred, gt, objects=objects, affordances=np.array(["grasp"] * 12))
    values = [literal_sample(p, g) for p, g in zip(pred, gt)]
    assert result["empty_gt_samples"] == 1
    assert result["overall"]["aiou"] == pytest.approx(np.nanmean([v[0] for v in values]), abs=1e-9)
    assert result["overall"]["auc"] == pytest.approx(np.nanmean([v[1] for v in values]), abs=1e-9)
    assert result["overall"]["sim"] == pytest.approx(np.mean([v[2] for v in values]), abs=1e-9)
    assert result["per_object"]["Mug"]["samples"] == 6
    assert result["per_object"]["Bag"]["mae"] == pytest.approx(np.mean([v[3] for v in values[1::2]]), abs=1e-9)


def test_thresholds_and_auc_match_sklearn_conventions():
    assert len(THRESHOLDS) == 20 and THRESHOLDS[0] == 0 and THRESHOLDS[-1] == 1
    labels = np.array([1, 0, 1, 0, 1], bool)
    scores = np.array([0.9, 0.9, 0.3, 0.1, 0.3])
    assert roc_auc(labels, scores) == pytest.approx(literal_auc(labels, scores))
    assert np.isnan(roc_auc(np.ones(3, bool), np.zeros(3)))


def test_cmat_pooled_protocol():
    pred, gt = cases()
    result = pooled(pred, gt)["overall"]
    p, t = pred.reshape(-1), gt.reshape(-1)
    binary = t > 0.5
    ious = []
    for thr in np.linspace(0, 1, 20):
        m = p > thr
        union = (m | binary).sum()
        ious.append(1.0 if union == 0 else (m & binary).sum() / union)
    assert result["aiou"] == pytest.approx(np.mean(ious), abs=1e-9)
    assert result["sim"] == pytest.approx(p @ t / (np.linalg.norm(p) + 1e-8) / (np.linalg.norm(t) + 1e-8), abs=1e-9)
    assert result["auc"] == pytest.approx(literal_auc(binary, p), abs=1e-9)
    assert pooled(np.full((1, 4), 0.2), np.zeros((1, 4)))["overall"]["auc"] == 0.5  # one class


def test_bad_predictions_are_input_errors(tmp_path, afcli_cmd):
    with pytest.raises(InputError, match="must both be"):
        per_sample(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        per_sample(np.full((1, 3), 2.0), np.zeros((1, 3)))
    with pytest.raises(InputError, match="NaN"):
        per_sample(np.full((1, 3), np.nan), np.zeros((1, 3)))
    bad = tmp_path / "bad.npz"
    np.savez(bad, pred=np.zeros((2, 4)))
    result = afcli_cmd("eval", "affordance", "--predictions", bad, check=2)
    assert "missing array 'gt'" in result.stderr and result.stderr.count("\n") == 1


def test_cli_scores_a_predictions_file(tmp_path, afcli_cmd):
    pred, gt = cases()
    path = tmp_path / "pred.npz"
    np.savez(
        path, pred=pred, gt=gt, object=np.array(["Mug", "Bag"] * 6), affordance=np.array(["grasp", "cut", "pour"] * 4)
    )
    report = json.loads(afcli_cmd("--json", "eval", "affordance", "--predictions", path, check=0).stdout)
    assert report["protocol"] == "standard" and set(report["per_affordance"]) == {"grasp", "cut", "pour"}
    pooled_report = json.loads(
        afcli_cmd("--json", "eval", "affordance", "--predictions", path, "--protocol", "cmat-pooled", check=0).stdout
    )
    assert pooled_report["protocol"] == "cmat-pooled"
    shown = afcli_cmd("eval", "affordance", "--predictions", path, check=0).stdout
    assert "standard protocol" in shown and "empty ground truth" in shown
