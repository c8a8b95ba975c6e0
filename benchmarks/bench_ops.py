"""fps 2048→64 and knn k=32 on batch 32, scatter_mean over 100k points: per backend, and the
ratio fallback (pure PyTorch) / compiled (torch-cluster, torch-scatter). Target: ratio ≤ 3."""

import os
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import median_seconds, op_backends  # noqa: E402

from afcli import ops  # noqa: E402

torch.manual_seed(0)
device = "cuda" if torch.cuda.is_available() and "--cuda" in sys.argv else "cpu"
points = torch.rand(32, 2048, 3, device=device)
centres = ops.gather_points(points, ops.fps(points, 64))
src = torch.randn(100_000, 64, device=device)
index = torch.randint(0, 2_000, (100_000,), device=device)

cases = {
    "fps 2048→64, B=32": lambda: ops.fps(points, 64),
    "knn k=32, 64 queries in 2048, B=32": lambda: ops.knn(points, centres, 32),
    "scatter_mean 100k×64 → 2000": lambda: ops.scatter_mean(src, index, dim=0, dim_size=2000),
}
backends = op_backends()
print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
print("| op | torch (fallback) | compiled | fallback / compiled |")
print("|---|---|---|---|")
for name, fn in cases.items():
    timings = {}
    for backend in backends:
        os.environ["AFCLI_OPS"] = backend
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        timings[backend] = median_seconds(lambda: (fn(), sync()))
    compiled = timings.get("compiled")
    ratio = f"{timings['torch'] / compiled:.2f}×" if compiled else "n/a"
    print(f"| {name} | {timings['torch'] * 1e3:.2f} ms | {f'{compiled * 1e3:.2f} ms' if compiled else 'skipped'} | {ratio} |")
