"""Does CMAT pre-training help? Pre-train the paper's backbone with L_rec, L_rec + L_aff and the full
objective on the built-in set, then a linear part probe of each (and of a random-init backbone) on
held-out shapes. Pre-training sees every shape but no labels; the probe trains on 3/4 of the shapes
and is scored on the rest.

    python benchmarks/probe_cmat.py STORE TEACHER_ID [EPOCHS] [OUT]
    python benchmarks/probe_cmat.py demo/shapes/store.h5 effnet-lite0-s16 40 /tmp/probe_runs
"""

import json
import subprocess
import sys
from pathlib import Path

OBJECTIVES = {"rec": "rec", "rec-aff": "rec,aff", "rec-aff-div": "rec,aff,div"}


def afcli(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "afcli", *args], check=True, capture_output=True, text=True).stdout


def main(store: str, teacher: str, epochs: int, out: Path) -> None:
    for name, terms in OBJECTIVES.items():
        run = out / name
        if not (run / "last.pt").exists():
            afcli(
                "-q",
                "pretrain",
                "cmat",
                "--store",
                store,
                "--teacher",
                teacher,
                "--epochs",
                str(epochs),
                "--batch-size",
                "16",
                "--set",
                f"optim.warmup_epochs={max(1, epochs // 10)}",
                "--set",
                f"loss.terms={terms}",
                "--run",
                str(run),
            )
    checkpoints = [arg for name in OBJECTIVES for arg in ("--checkpoint", str(out / name))]
    rows = json.loads(afcli("--json", "eval", "probe", *checkpoints, "--store", store))
    print(f"| backbone ({epochs} epochs, batch 16) | probe mIoU | point accuracy |")
    print("|---|---|---|")
    for row in rows:
        print(f"| {Path(row['model']).name} | {row['miou']:.4f} | {row['accuracy']:.4f} |")


if __name__ == "__main__":
    main(
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]) if len(sys.argv) > 3 else 40,
        Path(sys.argv[4] if len(sys.argv) > 4 else "runs/probe"),
    )
