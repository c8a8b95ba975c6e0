"""Why does the full CMAT objective lose to L_rec + L_aff on the built-in set? Measurements on the
shapes of a store, grouped as the backbone groups them (64 FPS patches x 32 kNN points):

- the teacher's affinity structure: mean cosine of lifted patch features within a part and across
  parts (each patch labelled by the majority part of its points);
- L_div at the teacher's geometry: KoLeo depends only on the cosines of the ℓ2-normalised patch
  features, so a student whose affinity matrix equals the teacher's (L_aff = 0) has exactly the
  teacher's KoLeo value;
- L_div of random unit tokens pooled as each ``loss.student_pass`` pools them (the floor an
  untrained student already reaches);
- L_aff and L_div of trained backbones (CMAT runs or saved models given on the command line),
  whatever terms they were trained with.

    python benchmarks/cmat_diagnostics.py STORE TEACHER_ID [RUN ...]
    python benchmarks/cmat_diagnostics.py demo/shapes/store.h5 effnet-lite0-s16 runs/table3/seed0/rec-aff
"""

import sys

import numpy as np
import torch

from afcli.engine.run import saved_model
from afcli.eval.probe import load_parts
from afcli.losses.cmat import CMATLossConfig, affinity, affinity_loss, koleo_loss, patch_features
from afcli.models.point_mae import PointMAE, PointMAEConfig
from afcli.store import open_store
from afcli.store.schema import DONE

SHAPES = 64


def main(store: str, teacher_id: str, runs: list[str]) -> None:
    points, labels, *_ = load_parts(store, 0.25)
    with open_store(store) as f:
        rows = np.flatnonzero(f["status/import"][:] == DONE)[:SHAPES]
        teacher = torch.from_numpy(f[f"features/{teacher_id}"][rows]).float()
    points, labels = torch.from_numpy(points[:SHAPES]).float(), torch.from_numpy(labels[:SHAPES])
    torch.manual_seed(0)
    grouping = PointMAE(PointMAEConfig(depth=1, trans_dim=192, encoder_dims=192, num_heads=3, decoder_heads=3)).eval()
    with torch.no_grad():
        out = grouping(points, torch.rand(len(points), 64), full_pass=True)
    index = out["index"]
    patch_labels = torch.stack([torch.mode(labels[b][index[b]], dim=1).values for b in range(len(points))])
    _, target = patch_features(out, teacher, CMATLossConfig())
    cosine = affinity(target)
    same = patch_labels.unsqueeze(1) == patch_labels.unsqueeze(2)
    off_diagonal = ~torch.eye(64, dtype=torch.bool)
    print(f"teacher {teacher_id}, {len(points)} shapes, 64 patches each")
    print(f"| teacher patch cosine within a part | {cosine[same & off_diagonal].mean():.3f} |")
    print(f"| teacher patch cosine across parts | {cosine[~same].mean():.3f} |")
    print(f"| L_div at the teacher's geometry (L_aff = 0) | {koleo_loss(target):.3f} |")
    for student_pass in ("full", "masked"):
        random = dict(out, tokens=torch.randn_like(out["tokens"]), all_tokens=torch.randn_like(out["all_tokens"]))
        student, _ = patch_features(random, None, CMATLossConfig(student_pass=student_pass))
        print(f"| L_div of random tokens, student_pass {student_pass} | {koleo_loss(student):.3f} |")
        print(f"| L_aff of random tokens, student_pass {student_pass} | {affinity_loss(student, target):.3f} |")
    for run in runs:
        model = PointMAE.from_pretrained(saved_model(run, "point-mae", "a CMAT run")).eval()
        with torch.no_grad():
            trained = model(points, torch.rand(len(points), 64), full_pass=True)
            student, target = patch_features(trained, teacher, CMATLossConfig())
        print(f"| {run}: L_aff | {affinity_loss(student, target):.3f} | L_div | {koleo_loss(student):.3f} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
