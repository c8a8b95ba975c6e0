"""Dense functional correspondence metrics (Stojanov et al.), as the released scripts compute them
(../shared/reference/metrics-and-formats.md §3). Images are 224 × 224; points are (x, y) = (column,
row); the annotation files' (row, column) pairs are swapped on reading.

Label transfer (``inference_2D_objaverse.py`` + ``gather_results.py``): each GT point of image 1 is
sent to the argmax of its heat map over image 2 restricted to the object mask (``heat·mask −
100·(1 − mask)``), and back; distance = pixel distance to the paired GT point. Per (trial,
direction): mean distance / 223 and the fraction of distances ≤ k for k ∈ {23, 15, 10}; the table
numbers are the means over all (trial, direction) entries.

Discovery (``inference_2D_discovery_objaverse.py``): every mask pixel of image 1 is a query; its
forward argmax, the heat value there (min-max normalised over the queries), the cycle distance back
to the query (min-max normalised); score = (1 − dist) · sim, predictions ranked by descending score.
For a radius k a prediction is correct when one GT pair lies within k (≤) of both its points;
a GT pair is recovered at the first rank whose prediction lies within k of both of its points. Over
the cutoffs ``np.arange(0.01, 1.01, 0.01)``: top = int(n · cutoff), precision = correct[:top] / top,
recall = share of GT pairs recovered before top, F1 = 2PR / (P + R) (0 when P + R = 0). Best F1 =
the maximum over cutoffs; AP = Σ (R_i − R_{i−1}) P_i with (R, P) = (0, 1) prepended. A cutoff with
top = 0 (fewer than 100 predictions) selects nothing: the released code divides 0 by 0 there; afcli
skips it.
"""

from __future__ import annotations

import numpy as np

NORMALISER = 223.0
PCK_RADII = (23, 15, 10)
DISCOVERY_RADII = (23, 15, 10, 5)
CUTOFFS = np.arange(0.01, 1.01, 0.01)


def argmax_in_mask(heat: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(Q, H, W) heat maps over the target image and its (H, W) object mask → (Q, 2) (x, y) of each
    map's maximum inside the mask."""
    scores = heat * mask - 100.0 * (1 - mask)
    flat = scores.reshape(len(scores), -1).argmax(1)
    rows, cols = np.divmod(flat, heat.shape[-1])
    return np.stack([cols, rows], 1)


def transfer_entry(predicted: np.ndarray, truth: np.ndarray) -> dict:
    """One (trial, direction): predicted and GT (K, 2) points → mean normalised distance and PCK."""
    distance = np.linalg.norm(predicted.astype(np.float64) - truth, axis=1)
    return {
        "dist": float((distance / NORMALISER).mean()),
        **{f"pck@{k}": float((distance <= k).mean()) for k in PCK_RADII},
    }


def mean_of_entries(entries: list[dict]) -> dict:
    """The table's numbers: each metric averaged over (trial, direction) entries."""
    return {key: float(np.mean([e[key] for e in entries])) for key in entries[0]} if entries else {}


def minmax(values: np.ndarray) -> np.ndarray:
    span = values.max() - values.min()
    return (values - values.min()) / span if span > 0 else np.zeros_like(values, dtype=np.float64)


def cycle_scores(similarity: np.ndarray, cycle_distance: np.ndarray) -> np.ndarray:
    """Discovery score of each query: (1 − normalised cycle distance) · normalised similarity."""
    return (1 - minmax(cycle_distance.astype(np.float64))) * minmax(similarity.astype(np.float64))


def discovery_entry(points1, points2, scores, truth1, truth2, radius: float) -> dict:
    """One (trial, direction) at one radius: ranked predicted pairs (N, 2) + (N, 2) with their scores
    and the GT pairs (K, 2) + (K, 2) → best F1 and AP."""
    return discovery_entries(points1, points2, scores, truth1, truth2, (radius,))[radius]


def _squared_distances(points: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N, K) squared distances; integer pixels stay exact in int64."""
    kind = np.int64 if points.dtype.kind in "iu" and np.asarray(truth).dtype.kind in "iu" else np.float64
    a, b = np.asarray(points, kind), np.asarray(truth, kind)
    return (a[:, :1] - b[None, :, 0]) ** 2 + (a[:, 1:] - b[None, :, 1]) ** 2


def discovery_entries(points1, points2, scores, truth1, truth2, radii=DISCOVERY_RADII) -> dict:
    """:func:`discovery_entry` at every radius, the distances computed once (≤ r as r² on squares)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    p1, p2 = np.asarray(points1)[order], np.asarray(points2)[order]
    d1, d2 = _squared_distances(p1, truth1), _squared_distances(p2, truth2)
    return {radius: _ranked(d1, d2, radius) for radius in radii}


def _ranked(d1: np.ndarray, d2: np.ndarray, radius: float) -> dict:
    hits = (d1 <= radius * radius) & (d2 <= radius * radius)  # (N, K)
    correct = hits.any(1)
    recovered = np.where(hits.any(0), hits.argmax(0), np.inf)
    precisions, recalls = [], []
    for cutoff in CUTOFFS:
        top = int(len(correct) * cutoff)
        if top == 0:
            continue
        precisions.append(correct[:top].sum() / top)
        recalls.append(float((recovered < top).mean()))
    p, r = np.array(precisions), np.array(recalls)
    f1 = np.where(p + r > 0, 2 * p * r / np.where(p + r > 0, p + r, 1), 0.0)
    ap = float(np.sum(np.diff(np.concatenate([[0.0], r])) * p))
    return {"f1": float(f1.max()) if len(f1) else 0.0, "ap": ap}


RADII_3D = (0.05, 0.1, 0.2)


def transfer_3d_entry(predicted: np.ndarray, truth: np.ndarray, diameter: float) -> dict:
    """Correspondence between point clouds (afcli's 3D extension of label transfer): predicted and GT
    (K, 3) points of the target object → mean distance and PCK (≤ k) in units of its diameter (the
    bounding-box diagonal)."""
    distance = np.linalg.norm(np.asarray(predicted, np.float64) - truth, axis=1) / diameter
    return {"dist": float(distance.mean()), **{f"pck@{k}": float((distance <= k).mean()) for k in RADII_3D}}
