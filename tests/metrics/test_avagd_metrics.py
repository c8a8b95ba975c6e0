"""AVAGD metrics against a plain transcription of AVAGFormer's utility.py (mask_iou, Eval_Fmeasure)
and its test.py / AVSBench's loops, on the edge cases that decide the numbers."""

import pytest
import torch

from afcli.metrics.avagd import f_curves, frame_iou, score, score_head


# --- the reference, written as the released code computes it, one frame or one batch at a time ---
def ref_mask_iou(logits, gt):
    n, h, w = logits.shape
    pred = (torch.sigmoid(logits) > 0.5).int()
    total = 0.0
    for i in range(n):
        inter = torch.sum(pred[i] * gt[i])
        union = torch.sum(torch.max(pred[i], gt[i].int()))
        if torch.sum(gt[i]) == 0:
            inter = torch.sum((1 - gt[i]) * (1 - pred[i]))
            union = h * w
        total += inter / (union + 1e-7)
    return total / n


def ref_fmeasure(logits, gt):
    probs = torch.sigmoid(logits)
    thresholds = torch.linspace(0, 1 - 1e-10, 255)
    curve, counted = torch.zeros(255), 0
    for i in range(probs.shape[0]):
        if torch.mean(gt[i]) == 0.0:
            continue
        prec, recall = torch.zeros(255), torch.zeros(255)
        for j in range(255):
            mask = (probs[i] >= thresholds[j]).float()
            tp = (mask * gt[i]).sum()
            prec[j], recall[j] = tp / (mask.sum() + 1e-20), tp / (gt[i].sum() + 1e-20)
        f = (1 + 0.3) * prec * recall / (0.3 * prec + recall)
        f[f != f] = 0
        curve += f
        counted += 1
    return (curve / counted).max().item() if counted else 0.0


def ref_test_protocol(func_logits, func_gt, dep_logits, dep_gt):
    iou_f, f_f, iou_d, f_d = [], [], [], []
    for i in range(func_logits.shape[0]):
        iou_f.append(float(ref_mask_iou(func_logits[i : i + 1], func_gt[i : i + 1])))
        f_f.append(ref_fmeasure(func_logits[i : i + 1], func_gt[i : i + 1]))
        if dep_gt[i].sum() > 0:
            iou_d.append(float(ref_mask_iou(dep_logits[i : i + 1], dep_gt[i : i + 1])))
            f_d.append(ref_fmeasure(dep_logits[i : i + 1], dep_gt[i : i + 1]))
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
    return mean(iou_f), mean(f_f), mean(iou_d), mean(f_d)


def cases(seed=0, n=7, size=24):
    """Random masks and logits, plus the edge cases: an empty function GT, empty dependency GTs, an
    all-background prediction, a prediction saturated at 1, a full GT."""
    g = torch.Generator().manual_seed(seed)
    func_gt = (torch.rand(n, size, size, generator=g) > 0.7).float()
    dep_gt = (torch.rand(n, size, size, generator=g) > 0.8).float()
    func_logits = torch.randn(n, size, size, generator=g) * 3 + 2 * func_gt
    dep_logits = torch.randn(n, size, size, generator=g) * 3 + 2 * dep_gt
    func_gt[1] = 0  # empty function GT
    dep_gt[2] = 0  # empty dependency GTs
    dep_gt[4] = 0
    func_logits[3] = -30.0  # all-zero prediction
    dep_logits[3] = -30.0
    func_logits[5] = 40.0  # sigmoid rounds to 1.0
    func_gt[6] = 1.0  # full GT
    return func_logits, func_gt, dep_logits, dep_gt


@pytest.mark.parametrize("seed", [0, 1])
def test_avagformer_protocol_equals_the_reference(seed):
    func_logits, func_gt, dep_logits, dep_gt = cases(seed)
    ours = score({"function": func_logits, "dependency": dep_logits}, {"function": func_gt, "dependency": dep_gt})
    reference = ref_test_protocol(func_logits, func_gt, dep_logits, dep_gt)
    got = (ours["function"]["miou"], ours["function"]["f"], ours["dependency"]["miou"], ours["dependency"]["f"])
    assert got == pytest.approx(reference, abs=1e-6)
    assert ours["function"]["samples"] == 7 and ours["dependency"]["samples"] == 5


def test_per_frame_pieces_on_edge_cases():
    func_logits, func_gt, _, _ = cases()
    iou = frame_iou(func_logits, func_gt)
    for i in range(7):
        assert float(iou[i]) == pytest.approx(float(ref_mask_iou(func_logits[i : i + 1], func_gt[i : i + 1])), abs=1e-7)
    assert float(iou[1]) > 0.2  # empty GT: the true-negative fraction, not 0
    curves = f_curves(func_logits, func_gt)
    assert curves[1].isnan().all() and not curves[0].isnan().any()
    assert float(curves[3].max()) == pytest.approx(ref_fmeasure(func_logits[3:4], func_gt[3:4]), abs=1e-6)
    # all-zero prediction on a non-empty GT: IoU 0; the lowest threshold still selects every pixel
    assert float(iou[3]) == 0.0 and float(curves[3, 0]) > 0


@pytest.mark.parametrize("batch", [3, 10])
def test_avsbench_protocol_equals_the_reference(batch):
    func_logits, func_gt, _, _ = cases(2, n=8)
    ours = score_head(func_logits, func_gt, "avsbench", batch=batch)
    ious, fs = [], []
    for start in range(0, 8, batch):
        part = slice(start, start + batch)
        ious.append(float(ref_mask_iou(func_logits[part], func_gt[part])))
        fs.append(ref_fmeasure(func_logits[part], func_gt[part]))
    assert ours["miou"] == pytest.approx(sum(ious) / len(ious), abs=1e-6)
    assert ours["f"] == pytest.approx(sum(fs) / len(fs), abs=1e-6)


def test_no_counted_dependency_is_nan_not_zero():
    logits, gt = torch.zeros(2, 8, 8), torch.zeros(2, 8, 8)
    result = score_head(logits, gt, head="dependency")
    assert result["samples"] == 0 and result["miou"] != result["miou"]
