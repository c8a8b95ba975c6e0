"""3D affordance heat-map metrics — aIoU, AUC, SIM, MAE — exactly as the benchmarks' code computes them.

Inputs: ``pred`` (S, P) probabilities and ``gt`` (S, P) soft labels in [0, 1].

``standard`` — the protocol of IAGNet ``evalization.py`` (PIAD), GREAT ``evalization.py`` (PIADv2)
and LASO ``eval_lyc.py``, per sample i:
- t = (gt >= 0.5) for aIoU and AUC; a sample whose t is empty gets NaN for both and is left out by
  the nan-mean (it still counts for SIM and MAE);
- aIoU_i = mean over thr in ``numpy.linspace(0, 1, 20)`` of |(pred >= thr) ∧ t| / |(pred >= thr) ∨ t|;
- AUC_i = ``sklearn.metrics.roc_auc_score(t, pred)`` — here the Mann-Whitney form with average ranks
  for ties, which is the same number; NaN when t has a single class;
- SIM_i = Σ min(pred / (Σpred + 1e-12), gt / (Σgt + 1e-12)) on the soft GT (histogram intersection);
- MAE_i = mean |pred - gt|.
Headline: nan-mean of aIoU and AUC, mean of SIM and MAE, over samples; the same per object class
and per affordance.

``cmat-pooled`` — what the CMAT authors' ``utils/metrics.py::compute_metrics`` does: every point of
the split in one vector (NaN entries dropped); t = gt > 0.5 (strict); AUC of the pooled vector (0.5
with one class); aIoU with pred > thr (strict) and IoU = 1 when the union is empty; SIM = cosine
similarity pred·gt / ((‖pred‖ + 1e-8)(‖gt‖ + 1e-8)); MAE pooled. Offered for comparison with the
code's printed numbers; it is not comparable with the baselines in the papers' tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from afcli.errors import InputError

THRESHOLDS = np.linspace(0, 1, 20)
PROTOCOLS = ("standard", "cmat-pooled")
METRICS = ("aiou", "auc", "sim", "mae")


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of binary ``labels`` ranked by ``scores`` (ties count half); NaN
    when only one class is present."""
    labels = labels.astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    first_rank = np.cumsum(counts) - counts + 1
    average_rank = first_rank + (counts - 1) / 2.0
    rank_sum = average_rank[inverse][labels].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def check_inputs(pred: np.ndarray, gt: np.ndarray, where: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.ndim != 2 or pred.shape != gt.shape:
        raise InputError(f"pred and gt must both be (samples, points), got {pred.shape} and {gt.shape}", where)
    for name, array in (("pred", pred), ("gt", gt)):
        if not np.isfinite(array).all():
            raise InputError(f"{name} contains NaN or Inf", where)
        if array.min() < 0 or array.max() > 1:
            raise InputError(
                f"{name} must lie in [0, 1] (probabilities / soft labels), found [{array.min():.3g}, "
                f"{array.max():.3g}]",
                where,
            )
    return pred, gt


def per_sample(pred: np.ndarray, gt: np.ndarray) -> dict[str, np.ndarray]:
    """The standard protocol's per-sample aIoU, AUC, SIM and MAE, each (S,)."""
    pred, gt = check_inputs(pred, gt)
    binary = gt >= 0.5
    empty = ~binary.any(1)
    above = pred[:, None, :] >= THRESHOLDS[None, :, None]  # (S, 20, P)
    intersection = (above & binary[:, None, :]).sum(-1)
    union = (above | binary[:, None, :]).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        aiou = (intersection / union).mean(1)
    aiou[empty] = np.nan
    auc = np.array([roc_auc(b, p) for b, p in zip(binary, pred)])
    a = pred / (pred.sum(1, keepdims=True) + 1e-12)
    b = gt / (gt.sum(1, keepdims=True) + 1e-12)
    sim = np.minimum(a, b).sum(1)
    mae = np.abs(pred - gt).mean(1)
    return {"aiou": aiou, "auc": auc, "sim": sim, "mae": mae}


def _summary(values: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, float]:
    out = {}
    for name in METRICS:
        picked = values[name][rows]
        finite = picked[~np.isnan(picked)]
        out[name] = float(finite.mean()) if finite.size else float("nan")
    out["samples"] = int(rows.sum())
    return out


def standard(pred, gt, objects=None, affordances=None) -> dict:
    """Headline, per-object and per-affordance means of the per-sample metrics."""
    values = per_sample(pred, gt)
    count = len(values["mae"])
    result = {
        "protocol": "standard",
        "overall": _summary(values, np.ones(count, bool)),
        "empty_gt_samples": int(np.isnan(values["aiou"]).sum()),
    }
    for key, labels in (("per_object", objects), ("per_affordance", affordances)):
        if labels is not None:
            labels = np.asarray(labels).astype(str)
            result[key] = {name: _summary(values, labels == name) for name in sorted(set(labels.tolist()))}
    return result


def pooled(pred, gt) -> dict:
    """The CMAT code's pooled protocol over every point of the split."""
    pred, gt = check_inputs(pred, gt)
    p, t = pred.reshape(-1), gt.reshape(-1)
    binary = t > 0.5
    auc = roc_auc(binary, p)
    ious = []
    for threshold in THRESHOLDS:
        mask = p > threshold
        intersection, union = (mask & binary).sum(), (mask | binary).sum()
        ious.append(1.0 if union == 0 else intersection / union)
    sim = float(np.dot(p / (np.linalg.norm(p) + 1e-8), t / (np.linalg.norm(t) + 1e-8)))
    return {
        "protocol": "cmat-pooled",
        "overall": {
            "aiou": float(np.mean(ious)),
            "auc": 0.5 if np.isnan(auc) else auc,
            "sim": sim,
            "mae": float(np.abs(p - t).mean()),
            "samples": int(pred.shape[0]),
        },
    }


def evaluate(pred, gt, objects=None, affordances=None, protocol: str = "standard") -> dict:
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r} (choose from {', '.join(PROTOCOLS)})")
    return standard(pred, gt, objects, affordances) if protocol == "standard" else pooled(pred, gt)


def load_predictions(path: str | Path) -> dict:
    """A predictions file: ``pred`` (S, P), ``gt`` (S, P) and optionally ``object`` / ``affordance`` (S,)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such predictions file", path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise InputError(f"not a readable .npz file ({str(error).splitlines()[0]})", path) from None
    missing = [key for key in ("pred", "gt") if key not in arrays]
    if missing:
        raise InputError(
            f"missing array {missing[0]!r} (a predictions file holds pred, gt and optionally object, affordance)", path
        )
    arrays["pred"], arrays["gt"] = check_inputs(arrays["pred"], arrays["gt"], path)
    for key in ("object", "affordance"):
        if key in arrays and arrays[key].shape != (arrays["pred"].shape[0],):
            raise InputError(
                f"{key} must hold one label per sample ({arrays['pred'].shape[0]}), got shape {arrays[key].shape}", path
            )
    return arrays
