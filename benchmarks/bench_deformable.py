"""Multi-scale deformable attention's sampling core at AVAGFormer's encoder sizes (512² input:
levels 64², 32², 16² = 5376 queries and values, 8 heads × 32 channels, 4 points), forward +
backward: afcli's one-canvas form (afcli.ops.deformable.ms_deform_attn) against Deformable DETR's
per-level grid_sample core written plainly (ms_deform_attn_per_level). Same numbers to float error.

    python benchmarks/bench_deformable.py [BATCH] [--cuda]
"""

import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import median_seconds  # noqa: E402

from afcli.ops.deformable import ms_deform_attn, ms_deform_attn_per_level  # noqa: E402

SHAPES = [(64, 64), (32, 32), (16, 16)]


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    batch = int(args[0]) if args else 1
    device = "cuda" if torch.cuda.is_available() and "--cuda" in sys.argv else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    g = torch.Generator().manual_seed(0)
    tokens = sum(h * w for h, w in SHAPES)
    value = torch.randn(batch, tokens, 8, 32, generator=g).to(device).requires_grad_(True)
    locations = torch.rand(batch, tokens, 8, 3, 4, 2, generator=g).to(device).requires_grad_(True)
    weights = torch.rand(batch, tokens, 8, 3, 4, generator=g).softmax(-1).to(device).requires_grad_(True)
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, batch {batch}, "
        f"{platform.processor() or platform.machine()}"
    )
    print("| core | forward | forward + backward |")
    print("|---|---|---|")
    timings = {}
    for name, fn in (
        ("per-level grid_sample (reference)", ms_deform_attn_per_level),
        ("one canvas (afcli)", ms_deform_attn),
    ):
        forward = median_seconds(lambda: (fn(value, SHAPES, locations, weights), sync()))
        both = median_seconds(lambda: (fn(value, SHAPES, locations, weights).sum().backward(), sync()))
        timings[name] = both
        print(f"| {name} | {forward * 1e3:.1f} ms | {both * 1e3:.1f} ms |")
    reference, ours = timings.values()
    print(f"reference / afcli, forward + backward: {reference / ours:.2f}×")


if __name__ == "__main__":
    main()
