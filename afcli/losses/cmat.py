"""CMAT pre-training objective (cmat-cast-3d-affordance.md §3.2, Eq. 1–6), each term switchable.

- ``rec``: the paper's MSE between predicted and true centres of the masked patches, or
  Point-MAE's Chamfer-L2 on the masked patches' points (squared nearest distances, the two
  directions' means summed per patch, averaged over patches) — whichever head the model has.
- ``aff`` (Eq. 3–4): cosine affinity matrices of patch features from the 2D teacher and the 3D
  student, mean squared difference over B·M·M entries (diagonal included, as Eq. 4 and the code).
  Settings pick the variant:
    * ``student_pass``: which encoder outputs the student features come from. ``full`` (paper
      reading): a second, unmasked pass of the encoder over all M patches — Eq. 2 pools "the output
      of Φ_3D" per patch, and only an unmasked pass has an output for every patch. ``masked``: the
      reconstruction pass's visible tokens (the authors' code; with ``aff_patches: all`` the
      visible tokens are propagated to every point, afcli 0.1 — which made masked patches blends of
      visible ones and put a floor under L_div, benchmarks/RESULTS.md);
    * ``aff_patches``: ``all`` M patches (paper) or the ``visible`` ones (authors' code);
    * ``aff_student``: ``points`` — per-point student features by three-NN propagation of the
      tokens, averaged over each patch's points (paper Eq. 2) — or ``tokens``, the encoder's output
      tokens (code);
    * ``aff_teacher``: ``group`` — the mean lifted feature over each patch's kNN points (paper
      Eq. 1) — or ``nearest``, over the points whose nearest centre is the patch's (code).
- ``div`` (Eq. 5, KoLeo): ℓ2-normalised student patch features, d_j the distance to the nearest
  other patch of the same shape (``koleo_scope: shape``, Eq. 5's set of M patches), or of any shape
  in the (per-process) batch (``batch``, as DINOv2 applies KoLeo), ``-mean(log(d_j + eps))``. Not in
  the authors' code.
Total = Σ λ_t · L_t over the enabled terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from afcli.errors import InputError
from afcli.ops import gather_points, knn, scatter_mean, three_nn_interpolate

TERMS = ("rec", "aff", "div")


@dataclass
class CMATLossConfig:
    terms: str = "rec,aff,div"
    lambda_rec: float = 1.0
    lambda_aff: float = 0.1
    lambda_div: float = 0.2
    student_pass: str = "full"
    aff_patches: str = "all"
    aff_student: str = "points"
    aff_teacher: str = "group"
    koleo_eps: float = 1e-8
    koleo_scope: str = "shape"  # nearest neighbour among the same shape's patches (Eq. 5) or the whole batch's

    @property
    def enabled(self) -> list[str]:
        return [term.strip() for term in self.terms.split(",") if term.strip()]

    def check(self) -> "CMATLossConfig":
        unknown = [t for t in self.enabled if t not in TERMS]
        if unknown or not self.enabled:
            raise InputError(f"loss.terms {self.terms!r}: choose from {', '.join(TERMS)}, comma-separated")
        for key, value, allowed in (
            ("student_pass", self.student_pass, ("full", "masked")),
            ("aff_patches", self.aff_patches, ("all", "visible")),
            ("aff_student", self.aff_student, ("points", "tokens")),
            ("aff_teacher", self.aff_teacher, ("group", "nearest")),
            ("koleo_scope", self.koleo_scope, ("shape", "batch")),
        ):
            if value not in allowed:
                raise InputError(f"loss.{key} must be one of {', '.join(allowed)}, got {value!r}")
        if self.aff_patches == "all" and self.aff_student == "tokens" and self.student_pass == "masked":
            raise InputError(
                "the masked pass has tokens of visible patches only: loss.aff_student tokens needs "
                "loss.aff_patches visible or loss.student_pass full"
            )
        return self

    @property
    def full_pass(self) -> bool:
        """Whether the model must also encode every patch unmasked."""
        return self.student_pass == "full" and ("aff" in self.enabled or "div" in self.enabled)


def chamfer_l2(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Point-MAE's ``cdl2`` on (P, K, 3) sets: mean over patches of mean(d1) + mean(d2), squared d."""
    distance = torch.cdist(prediction, target).pow(2)
    return (distance.min(dim=2).values.mean(dim=1) + distance.min(dim=1).values.mean(dim=1)).mean()


def reconstruction_loss(out: dict) -> torch.Tensor:
    prediction, target = out["prediction"], out["target"]
    if prediction.dim() == 3:  # centres (B, M, 3)
        return torch.nn.functional.mse_loss(prediction, target)
    return chamfer_l2(prediction.flatten(0, 1), target.flatten(0, 1))


def affinity(features: torch.Tensor) -> torch.Tensor:
    """Cosine similarity matrices (B, M, M) of patch features (B, M, C)."""
    normed = torch.nn.functional.normalize(features, dim=-1)
    return normed @ normed.transpose(1, 2)


def affinity_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    return (affinity(student) - affinity(teacher)).pow(2).mean()


def koleo_loss(features: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """KoLeo over each shape's patch features (B, M, C): -mean log(distance to nearest other)."""
    normed = torch.nn.functional.normalize(features, dim=-1)
    distance = torch.cdist(normed, normed)
    eye = torch.eye(distance.shape[1], dtype=torch.bool, device=distance.device)
    nearest = distance.masked_fill(eye, float("inf")).min(dim=-1).values
    return -torch.log(nearest + eps).mean()


def _patch_mean(features: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Mean of per-point features (B, N, C) over each patch's kNN points (B, G, K) → (B, G, C)."""
    return gather_points(features, index).mean(dim=2)


def _nearest_centre_mean(points, centres, features) -> torch.Tensor:
    """Mean feature of the points whose nearest centre is each centre (a Voronoi cell; empty → 0)."""
    batch, count, _ = points.shape
    groups = centres.shape[1]
    owner, _ = knn(centres, points, 1)
    flat = (owner[..., 0] + torch.arange(batch, device=points.device).unsqueeze(1) * groups).reshape(-1)
    return scatter_mean(features.reshape(batch * count, -1), flat, dim=0, dim_size=batch * groups).reshape(
        batch, groups, -1
    )


def patch_features(
    out: dict, teacher: torch.Tensor | None, config: CMATLossConfig
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(student, teacher) patch features over the patch set the settings choose (teacher None when
    no teacher features are given)."""
    points, centres, index, visible = out["points"], out["centres"], out["index"], out["visible"]
    full = config.student_pass == "full"
    if full and "all_tokens" not in out:
        raise InputError("loss.student_pass full needs the unmasked pass: call the model with full_pass=True")
    tokens, token_centres = (out["all_tokens"], centres) if full else (out["tokens"], gather_points(centres, visible))
    if config.aff_student == "tokens":
        student = tokens
    else:
        student = _patch_mean(three_nn_interpolate(points, token_centres, tokens), index)
    target = None
    if teacher is not None:
        with torch.no_grad():
            target = (
                _patch_mean(teacher, index)
                if config.aff_teacher == "group"
                else _nearest_centre_mean(points, centres, teacher)
            )
    if config.aff_patches == "visible":
        target = None if target is None else gather_points(target, visible)
        if full or config.aff_student == "points":
            student = gather_points(student, visible)
    return student, target


def cmat_loss(out: dict, teacher: torch.Tensor | None, config: CMATLossConfig) -> dict[str, torch.Tensor]:
    """Each enabled term and ``total``; ``teacher`` (B, N, D) holds the lifted per-point features."""
    terms = config.enabled
    losses: dict[str, torch.Tensor] = {}
    if "rec" in terms:
        losses["rec"] = reconstruction_loss(out)
    if "aff" in terms or "div" in terms:
        if teacher is None and "aff" in terms:
            raise InputError("the affinity loss needs teacher features (--teacher)")
        student, target = patch_features(out, teacher, config)
        if "aff" in terms:
            losses["aff"] = affinity_loss(student, target.to(student.dtype))
        if "div" in terms:
            spread = student if config.koleo_scope == "shape" else student.reshape(1, -1, student.shape[-1])
            losses["div"] = koleo_loss(spread, config.koleo_eps)
    weights = {"rec": config.lambda_rec, "aff": config.lambda_aff, "div": config.lambda_div}
    losses["total"] = sum(weights[name] * value for name, value in losses.items())
    return losses
