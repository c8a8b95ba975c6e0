"""Lift cost per shape, split into render, teacher, lifting (projection + visibility + sampling +
scatter) and store write, for a tiny teacher and a ViT-B-shaped random DINOv3 (86 M parameters,
the size of dinov3:vitb16). Target: everything but the teacher ≤ 10 % of the ViT-B teacher's time.

    python benchmarks/bench_lift.py [SHAPES]
"""

import sys
import tempfile
from pathlib import Path

import torch


def save_dinov3(folder: Path, **config) -> Path:
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    torch.manual_seed(0)
    DINOv3ViTModel(DINOv3ViTConfig(patch_size=16, num_register_tokens=4, **config)).save_pretrained(folder)
    return folder


def per_shape(report: dict, count: int) -> tuple[dict, float]:
    """Seconds per shape of each lift stage, and (render + lift + write) / teacher."""
    per = {key: value / count for key, value in report["seconds"].items()}
    return per, (per["render"] + per["lift"] + per["write"]) / per["teacher"]


def main(count: int) -> None:
    from afcli.data.importer import import_shapes
    from afcli.data.synth import synthesize
    from afcli.lift.pipeline import LiftSettings, lift_store

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthesize(tmp / "shapes", count, seed=0)
        teachers = {
            "tiny (32-d, 2 blocks)": save_dinov3(
                tmp / "tiny", hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4
            ),
            "ViT-B/16-shaped (768-d, 12 blocks)": save_dinov3(
                tmp / "vitb", hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12
            ),
        }
        print(f"{count} built-in shapes, 2048 points, 12 views at 224², torch threads {torch.get_num_threads()}")
        print("| teacher | render | teacher | lift | write | (render+lift+write) / teacher |")
        print("|---|---|---|---|---|---|")
        for name, weights in teachers.items():
            store = tmp / f"{weights.name}.h5"
            import_shapes(tmp / "shapes", store)
            report = lift_store(store, LiftSettings(teacher="dinov3:vitb16", weights=str(weights)))
            per, overhead = per_shape(report, count)
            print(
                f"| {name} | {per['render'] * 1000:.0f} ms | {per['teacher'] * 1000:.0f} ms | "
                f"{per['lift'] * 1000:.1f} ms "
                f"| {per['write'] * 1000:.1f} ms | {overhead * 100:.1f} % |"
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 12)
