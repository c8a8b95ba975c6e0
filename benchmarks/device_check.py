"""afcli on one GPU, in one run: lifting with the torch rasteriser and a ViT-L-shaped DINOv3 in
bf16 (render + lift + write against the teacher, per shape), a CMAT training step with AMP, a CAST
training step, the pure-PyTorch point ops, and a pure-PyTorch sparse-voxel U-Net step (SpUNet,
forward + backward). Prints one Markdown table for RESULTS.md.

    python benchmarks/device_check.py [--cpu] [--out FILE.md]

The teachers are random weights of the real architectures (no download): timings only. ``--cpu``
runs every path on the CPU at small sizes, to prove the script end to end where no GPU is; its
numbers are not GPU numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import median_seconds  # noqa: E402
from bench_lift import per_shape, save_dinov3  # noqa: E402
from bench_ops import op_cases  # noqa: E402

# (GPU, --cpu) sizes
VIT_L = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16)
VIT_TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
SIZES = {
    "gpu": {
        "shapes": 16,
        "teacher": ("ViT-L/16-shaped DINOv3, bf16", VIT_L),
        "cmat_batch": 32,
        "cast_batch": 16,
        "ops_batch": 32,
        "voxels": 100_000,
    },
    "cpu": {
        "shapes": 2,
        "teacher": ("tiny DINOv3 (64-d, 2 blocks)", VIT_TINY),
        "cmat_batch": 2,
        "cast_batch": 2,
        "ops_batch": 2,
        "voxels": 2_000,
    },
}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def lift_rows(device: torch.device, size: dict, tmp: Path) -> list[tuple[str, str]]:
    from transformers.utils import logging

    from afcli.data.importer import import_shapes
    from afcli.data.synth import synthesize
    from afcli.lift.pipeline import LiftSettings, RenderSettings, lift_store

    name, config = size["teacher"]
    logging.disable_progress_bar()
    save_dinov3(tmp / "teacher", **config)
    synthesize(tmp / "shapes", size["shapes"], seed=0)
    import_shapes(tmp / "shapes", tmp / "store.h5")
    settings = LiftSettings(
        teacher="dinov3:vitl16",
        weights=str(tmp / "teacher"),
        device=str(device),
        render=RenderSettings(backend="torch"),
    )
    start = time.perf_counter()
    report = lift_store(tmp / "store.h5", settings)
    wall = time.perf_counter() - start
    count = size["shapes"]
    per, overhead = per_shape(report, count)
    label = f"lift: {count} built-in shapes, 12 views at 224², torch rasteriser, {name}"
    return [
        (
            f"{label}: render / teacher / lift / write per shape",
            f"{per['render'] * 1e3:.1f} / {per['teacher'] * 1e3:.1f} / {per['lift'] * 1e3:.1f} / "
            f"{per['write'] * 1e3:.1f} ms",
        ),
        (
            "lift: (render + lift + write) / teacher",
            f"{overhead * 100:.1f} %" + (" (target ≤ 10 %)" if device.type == "cuda" else ""),
        ),
        ("lift: wall clock per shape (model load included)", f"{wall / count * 1e3:.0f} ms"),
    ]


def train_step_seconds(device: torch.device, model: torch.nn.Module, loss_of) -> tuple[float, float]:
    """Median forward + backward + AdamW step under the trainer's AMP (bf16 on CUDA), and its peak memory."""
    model = model.to(device).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    amp = device.type == "cuda"

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            total = loss_of(model)
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        optimiser.step()
        synchronize(device)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = median_seconds(step, repeats=5, warmup=2)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return seconds, peak


def cmat_row(device: torch.device, batch: int) -> tuple[str, str]:
    from afcli.methods.cmat.settings import CMATSettings
    from afcli.methods.cmat.task import CMATTask
    from afcli.models.point_mae import PointMAE

    settings = CMATSettings()  # the paper's recipe: 12 blocks, 384-d, 64 patches × 32 points, all three losses
    task = CMATTask(settings, Path("."))
    model = settings.model
    generator = torch.Generator().manual_seed(0)
    data = {
        "points": torch.rand(batch, 2048, 3, generator=generator),
        "teacher": torch.randn(batch, 2048, 1024, generator=generator),
        "mask_noise": torch.rand(batch, model.num_group, generator=generator),
        "drop_noise": torch.rand(batch, model.depth + model.decoder_depth, 2, generator=generator),
    }
    data = {key: value.to(device) for key, value in data.items()}
    seconds, peak = train_step_seconds(device, PointMAE(model), lambda m: task.loss(m, data)["total"])
    memory = "" if peak != peak else f", peak {peak:.2f} GiB"
    return (
        f"CMAT step (paper recipe, AMP), batch {batch}, 2048 points, 1024-d teacher",
        f"{seconds * 1e3:.1f} ms ({batch / seconds:.0f} samples/s{memory})",
    )


def cast_row(device: torch.device, batch: int) -> tuple[str, str]:
    from afcli.losses.seg import cast_loss
    from afcli.models.cast import CAST, CASTConfig

    generator = torch.Generator().manual_seed(0)
    points = torch.rand(batch, 2048, 3, generator=generator).to(device)
    text, image = (
        torch.randn(batch, 1, 768, generator=generator).to(device),
        torch.randn(batch, 1, 768, generator=generator).to(device),
    )
    mask = torch.ones(batch, 1, dtype=torch.bool, device=device)
    target = (torch.rand(batch, 2048, generator=generator) > 0.8).float().to(device)

    def loss_of(model):
        logits = model(points, text=text, text_mask=mask, image=image, image_mask=mask)
        with torch.autocast(device.type, enabled=False):
            return cast_loss(logits.float(), target)["total"]

    seconds, peak = train_step_seconds(device, CAST(CASTConfig()), loss_of)
    memory = "" if peak != peak else f", peak {peak:.2f} GiB"
    return (
        f"CAST step (paper: 6 fusion blocks over patches, text + image prompts), batch {batch}",
        f"{seconds * 1e3:.1f} ms ({batch / seconds:.0f} samples/s{memory})",
    )


def ops_rows(device: torch.device, batch: int) -> list[tuple[str, str]]:
    os.environ["AFCLI_OPS"] = "torch"
    return [
        (f"point op (pure PyTorch): {name}", f"{median_seconds(lambda: (fn(), synchronize(device))) * 1e3:.2f} ms")
        for name, fn in op_cases(str(device), batch).items()
    ]


def sparse_row(device: torch.device, voxels: int) -> tuple[str, str]:
    """SpUNet (MinkUNet34C layout) forward + backward on the pure-PyTorch sparse convolution."""
    from bench_scenes import cloud

    from afcli.models.spunet import SpUNet
    from afcli.ops.sparse import SparseTensor, voxelize

    os.environ["AFCLI_OPS"] = "torch"
    found = voxelize(cloud(voxels).to(device), 0.02)
    model = SpUNet(SpUNet.config_class(in_channels=6)).to(device)
    features = torch.randn(len(found.coords), 6, device=device)

    def step():
        model(SparseTensor.from_voxels(features, found)).features.square().sum().backward()
        synchronize(device)

    seconds = median_seconds(step)
    return f"SpUNet-v1m1 step (pure-PyTorch sparse conv), {len(found.coords)} voxels", f"{seconds * 1e3:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="run on the CPU at small sizes (no GPU needed)")
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args()
    if args.cpu:
        device, size = torch.device("cpu"), SIZES["cpu"]
    elif torch.cuda.is_available():
        device, size = torch.device("cuda"), SIZES["gpu"]
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        sys.exit("device_check: no CUDA device visible (use --cpu to run it on the CPU)")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    header = [
        f"device: {name}; torch {torch.__version__} (CUDA {torch.version.cuda}); python {platform.python_version()}",
        "",
    ]
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += lift_rows(device, size, Path(tmp))
    rows.append(cmat_row(device, size["cmat_batch"]))
    rows.append(cast_row(device, size["cast_batch"]))
    rows += ops_rows(device, size["ops_batch"])
    rows.append(sparse_row(device, size["voxels"]))
    lines = header + ["| measurement | result |", "|---|---|"] + [f"| {what} | {result} |" for what, result in rows]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
