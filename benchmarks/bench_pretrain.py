"""CMAT training step on CPU, batch 8, 2048 points, the paper's backbone (12 blocks, 384-d, 64
patches × 32): the full objective (centre MSE + affinity + KoLeo, 1024-d teacher features) against
the same backbone with L_rec alone — the cost of the affinity and KoLeo terms as a ratio, with the
student taken from the masked pass (afcli 0.1, the code) or from a second, unmasked pass (the paper
reading) — and the grouping (FPS + kNN + gather) per batch on each op backend.
"""

import os
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _timing import median_seconds, op_backends  # noqa: E402

from afcli.losses.cmat import CMATLossConfig, cmat_loss  # noqa: E402
from afcli.models.point_mae import PointMAE, PointMAEConfig  # noqa: E402

BATCH, POINTS, TEACHER_DIM = 8, 2048, 1024


def step_seconds(terms: str, student_pass: str = "full") -> float:
    torch.manual_seed(0)
    model = PointMAE(PointMAEConfig()).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    points = torch.rand(BATCH, POINTS, 3)
    teacher = torch.randn(BATCH, POINTS, TEACHER_DIM)
    mask_noise, drop_noise = torch.rand(BATCH, 64), torch.rand(BATCH, 16, 2)
    config = CMATLossConfig(terms=terms, student_pass=student_pass)

    def step():
        losses = cmat_loss(model(points, mask_noise, drop_noise, full_pass=config.full_pass), teacher, config)
        optimiser.zero_grad()
        losses["total"].backward()
        optimiser.step()

    return median_seconds(step, repeats=5, warmup=1)


def grouping_seconds(backend: str) -> float:
    os.environ["AFCLI_OPS"] = backend  # read on every op call
    model = PointMAE(PointMAEConfig())
    points = torch.rand(BATCH, POINTS, 3)
    return median_seconds(lambda: model.group(points))


def main() -> None:
    print(f"batch {BATCH}, {POINTS} points, torch threads {torch.get_num_threads()}")
    rec = step_seconds("rec")
    print("| objective | step (forward + backward + AdamW) | vs rec only |")
    print("|---|---|---|")
    print(f"| L_rec | {rec * 1000:.0f} ms | 1.00× |")
    for student_pass in ("masked", "full"):
        full = step_seconds("rec,aff,div", student_pass)
        name = f"L_rec + 0.1 L_aff + 0.2 L_div, student_pass {student_pass}"
        print(f"| {name} | {full * 1000:.0f} ms | {full / rec:.2f}× |")
    print("| grouping backend | FPS 64 + kNN 32 + gather, per batch |")
    print("|---|---|")
    for backend in op_backends():
        print(f"| {backend} | {grouping_seconds(backend) * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
