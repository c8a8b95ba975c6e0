"""Peak resident memory of ``afcli lift`` over 50 vs 500 built-in shapes (tiny DINOv3 teacher):
lifting streams one sample at a time, so the peak should not grow with the number of shapes.

    python benchmarks/bench_lift_memory.py [SMALL LARGE]
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys
from afcli.lift.pipeline import LiftSettings, lift_store
report = lift_store(sys.argv[1], LiftSettings(teacher="dinov3:vits16", weights=sys.argv[2]))
print(json.dumps({"lifted": report["lifted"], "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main(sizes: list[int]) -> None:
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    from afcli.data.importer import import_shapes
    from afcli.data.synth import synthesize

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        DINOv3ViTModel(
            DINOv3ViTConfig(
                hidden_size=32,
                intermediate_size=37,
                num_hidden_layers=2,
                num_attention_heads=4,
                patch_size=16,
                num_register_tokens=4,
            )
        ).save_pretrained(tmp / "tiny")
        print("| shapes | peak RSS of the lift process |")
        print("|---|---|")
        for count in sizes:
            synthesize(tmp / f"shapes{count}", count, seed=0)
            store = tmp / f"s{count}.h5"
            import_shapes(tmp / f"shapes{count}", store)
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(store), str(tmp / "tiny")], capture_output=True, text=True, check=True
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {result['lifted']} | {result['peak_mib']:.0f} MiB |")


if __name__ == "__main__":
    main([int(n) for n in sys.argv[1:]] or [50, 500])
