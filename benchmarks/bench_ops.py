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


def op_cases(device: str, batch: int = 32) -> dict:
    """The timed calls: fps 2048→64 and knn k=32 on ``batch`` clouds, scatter_mean over 100k rows."""
    generator = torch.Generator().manual_seed(0)
    points = torch.rand(batch, 2048, 3, generator=generator).to(device)
    centres = ops.gather_points(points, ops.fps(points, 64))
    src = torch.randn(100_000, 64, generator=generator).to(device)
    index = torch.randint(0, 2_000, (100_000,), generator=generator).to(device)
    return {
        f"fps 2048→64, B={batch}": lambda: ops.fps(points, 64),
        f"knn k=32, 64 queries in 2048, B={batch}": lambda: ops.knn(points, centres, 32),
        "scatter_mean 100k×64 → 2000": lambda: ops.scatter_mean(src, index, dim=0, dim_size=2000),
    }


def main() -> None:
    device = "cuda" if torch.cuda.is_available() and "--cuda" in sys.argv else "cpu"
    cases = op_cases(device)
    backends = op_backends()
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}"
    )
    print("| op | torch (fallback) | compiled | fallback / compiled |")
    print("|---|---|---|---|")
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for name, fn in cases.items():
        timings = {}
        for backend in backends:
            os.environ["AFCLI_OPS"] = backend
            timings[backend] = median_seconds(lambda: (fn(), sync()))
        compiled = timings.get("compiled")
        ratio = f"{timings['torch'] / compiled:.2f}×" if compiled else "n/a"
        print(
            f"| {name} | {timings['torch'] * 1e3:.2f} ms | "
            f"{f'{compiled * 1e3:.2f} ms' if compiled else 'skipped'} | {ratio} |"
        )


if __name__ == "__main__":
    main()
