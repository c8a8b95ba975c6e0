"""Dense functional correspondence on the built-in set, several seeds: the head trained with
recipes/dfc/synth.yaml (optionally an ablation: --set loss.spatial=false …) and scored on the held-out
pairs of ``make demo-dfc`` beside chance and the raw backbone. Resumable: finished seeds are kept.

    python benchmarks/dfc_seeds.py DFC_DIR OUT SEEDS [NAME --set k=v …]
    python benchmarks/dfc_seeds.py demo/dfc runs/dfc-seeds 0,1,2
    python benchmarks/dfc_seeds.py demo/dfc runs/dfc-seeds 0,1,2 functional-only --set loss.spatial=false
"""

import json
import statistics
import subprocess
import sys
from pathlib import Path

KEYS = ("dist", "pck@23", "pck@15", "pck@10", "f1@23", "f1@10", "ap@23", "ap@10")


def afcli(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "afcli", *args], check=True, capture_output=True, text=True).stdout


def main(dfc_dir: Path, out: Path, seeds: list[int], name: str, sets: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "scores.json"
    scores = json.loads(path.read_text()) if path.exists() else {}
    store, pairs = dfc_dir / "shapes" / "store.h5", dfc_dir / "pairs"
    for seed in seeds:
        key = f"{name}/{seed}"
        if key in scores:
            continue
        run = out / f"{name}-seed{seed}"
        if not (run / "model").is_dir():
            recipe = ["--recipe", "recipes/dfc/synth.yaml", "--store", str(store)]
            afcli("-q", "finetune", "dfc", *recipe, "--run", str(run), "--set", f"seed={seed}", *sets)
        baselines = ["--baselines"] if "chance" not in scores else ["--no-baselines"]
        result = json.loads(afcli("--json", "eval", "dfc", "--pairs", str(pairs), "--checkpoint", str(run), *baselines))
        for row, scored in result["results"].items():
            scores[key if row.startswith(str(run)) else row.split(" (")[0]] = scored["all"]
        path.write_text(json.dumps(scores, indent=1) + "\n")
    print(f"{'model':28s} " + " ".join(f"{k:>13s}" for k in KEYS))
    groups: dict[str, list[dict]] = {}
    for key, value in scores.items():
        groups.setdefault(key.split("/")[0], []).append(value)
    for group, values in groups.items():
        cells = []
        for k in KEYS:
            xs = [v[k] for v in values]
            cells.append(f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}" if len(xs) > 1 else f"{xs[0]:.3f}")
        print(f"{group + f' (n={len(values)})':28s} " + " ".join(f"{c:>13s}" for c in cells))


if __name__ == "__main__":
    extra = sys.argv[5:] if len(sys.argv) > 4 else []
    main(Path(sys.argv[1]), Path(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")],
         sys.argv[4] if len(sys.argv) > 4 else "full", extra)  # fmt: skip
