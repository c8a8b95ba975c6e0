"""Scene foundation speed (issue 16), on this machine's CPU:

1. sparse convolution — afcli's pure-PyTorch backend against spconv 2.3 on CPU, forward + backward of
   one SubMConv3d (32 → 32, 3³) and of a small SpUNet, at 20k / 50k / 100k voxels. spconv runs on one
   thread (afcli.ops.sparse: its CPU kernels race otherwise), the torch backend on all of them;
2. voxelisation (first-point mode + the per-voxel mean of 6 channels) with torch-scatter and with the
   pure-PyTorch scatter, 100k / 1M points;
3. lift per scene against the teacher's own time, EfficientNet-Lite0 on the built-in rooms' frames.

    python benchmarks/bench_scenes.py [--rooms N]
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch


def timed(fn, repeats: int = 3) -> float:
    fn()  # warm-up (kernel maps, spconv's tuning)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def cloud(voxels: int, size: float = 0.02) -> torch.Tensor:
    """Points on the surfaces of a box room whose voxelisation at ``size`` has about ``voxels`` voxels."""
    side = (voxels / 6) ** 0.5 * size  # six faces of side² / size² voxels
    faces = []
    generator = torch.Generator().manual_seed(0)
    for axis in range(3):
        for value in (0.0, side):
            p = torch.rand(voxels * 3, 3, generator=generator) * side
            p[:, axis] = value
            faces.append(p)
    return torch.cat(faces)


def sparse_rows() -> list[tuple]:
    from afcli.models.spunet import SpUNet, SpUNetConfig
    from afcli.ops.backend import _import
    from afcli.ops.sparse import SparseTensor, SubMConv3d, voxelize

    if _import("spconv") is None:
        return [("sparse convolution", "spconv not installed (pip install 'afcli[sparse]')", "", "", "")]
    rows = []
    for target in (20_000, 50_000, 100_000):
        voxels = voxelize(cloud(target), 0.02)
        count = len(voxels.coords)
        times = {}
        for backend in ("torch", "compiled"):
            os.environ["AFCLI_OPS"] = backend
            torch.manual_seed(0)
            layer = SubMConv3d(32, 32, 3)
            net = SpUNet(SpUNetConfig(in_channels=6, channels=(32, 64, 64, 64, 64, 64, 32, 32), layers=(1,) * 8))
            features = torch.randn(count, 32)

            def conv():
                x = features.clone().requires_grad_(True)
                layer(SparseTensor.from_voxels(x, voxels)).features.square().sum().backward()

            def unet():
                net(SparseTensor.from_voxels(features[:, :6].clone(), voxels)).features.square().sum().backward()

            times[backend] = (timed(conv), timed(unet, 2))
        for i, name in enumerate(("SubMConv3d 32→32", "SpUNet (32-64, 1 block/stage)")):
            torch_s, spconv_s = times["torch"][i], times["compiled"][i]
            rows.append((name, f"{count:,}", f"{torch_s:.3f}", f"{spconv_s:.3f}", f"{torch_s / spconv_s:.2f}"))
    os.environ.pop("AFCLI_OPS", None)
    return rows


def voxel_rows() -> list[tuple]:
    from afcli.ops.backend import _import
    from afcli.ops.sparse import voxel_mean, voxelize

    rows = []
    for count in (100_000, 1_000_000):
        points = torch.rand(count, 3) * 5
        values = torch.randn(count, 6)
        result = {}
        for backend in ("torch", "compiled"):
            if backend == "compiled" and _import("torch_scatter") is None:
                continue
            os.environ["AFCLI_OPS"] = backend
            result[backend] = timed(lambda: voxel_mean(values, voxelize(points, 0.02)))
        os.environ.pop("AFCLI_OPS", None)
        compiled = result.get("compiled")
        rows.append(
            (
                f"{count:,} points",
                f"{result['torch']:.3f}",
                f"{compiled:.3f}" if compiled else "torch-scatter not installed",
                f"{result['torch'] / compiled:.2f}" if compiled else "",
            )
        )
    return rows


def lift_rows(rooms: int) -> list[tuple]:
    from afcli.data.rooms import synthesize_rooms
    from afcli.data.scenes import import_scenes
    from afcli.lift.pipeline import LiftSettings, lift_store

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthesize_rooms(tmp, count=rooms, frames=16, seed=0)
        import_scenes(tmp, tmp / "store.h5")
        start = time.perf_counter()
        report = lift_store(tmp / "store.h5", LiftSettings(teacher="effnet-lite0", device="cpu"))
        wall = time.perf_counter() - start
    seconds = report["seconds"]
    own = seconds["frames"] + seconds["lift"] + seconds["write"]
    return [
        (
            f"{rooms} rooms × 16 frames (320×240)",
            f"{wall / rooms:.2f}",
            f"{seconds['teacher'] / rooms:.2f}",
            f"{own / rooms:.2f}",
            f"{own / seconds['teacher']:.2f}",
        )
    ]


def table(header: tuple, rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rooms", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(table(("sparse conv, forward + backward", "voxels", "torch s", "spconv s", "torch / spconv"), sparse_rows()))
    print()
    print(table(("voxelise + voxel mean", "pure PyTorch s", "torch-scatter s", "ratio"), voxel_rows()))
    print()
    header = ("lift, EfficientNet-Lite0", "s / scene", "teacher s / scene", "afcli s / scene", "afcli / teacher")
    print(table(header, lift_rows(args.rooms)))


if __name__ == "__main__":
    main()
