"""CMAT's Table 3 on the built-in set: random init / L_rec / L_rec + L_aff / full objective, each
pre-trained with recipes/cmat/pretrain-demo.yaml (lifted EfficientNet-Lite0 features), scored by a
linear part probe on held-out shapes and by CAST (recipes/cast/synth.yaml) fine-tuned from each
backbone and evaluated on the held-out test queries — for every seed. Resumable: finished runs and
scores are kept in OUT and skipped.

    python benchmarks/table3_cmat.py STORE [OUT] [SEEDS]
    python benchmarks/table3_cmat.py demo/shapes/store.h5 runs/table3 0,1,2
"""

import json
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

OBJECTIVES = {"L_rec": "rec", "L_rec + L_aff": "rec,aff", "full (L_rec + L_aff + L_div)": "rec,aff,div"}
RANDOM = "random init"


def afcli(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "afcli", *args], check=True, capture_output=True, text=True).stdout


def finished(run: Path) -> bool:
    """Whether ``run`` logged the summary of its last epoch."""
    if not (run / "config.yaml").is_file():
        return False
    epochs = yaml.safe_load((run / "config.yaml").read_text())["settings"]["epochs"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return any("seconds" in row and row["epoch"] == epochs - 1 for row in rows)


def train(verb: str, method: str, run: Path, *args: str) -> None:
    """Train ``run`` unless it finished; resume a run cut short."""
    if finished(run):
        return
    if (run / "last.pt").exists():
        afcli("-q", verb, method, "--run", str(run), "--resume")
    else:
        afcli("-q", verb, method, *args, "--run", str(run))


def folder(name: str) -> str:
    return {"L_rec": "rec", "L_rec + L_aff": "rec-aff", RANDOM: "scratch"}.get(name, "full")


def run_seed(store: str, out: Path, seed: int, scores: dict) -> None:
    runs = out / f"seed{seed}"
    for name, terms in OBJECTIVES.items():
        train(
            "pretrain",
            "cmat",
            runs / folder(name),
            "--recipe",
            "recipes/cmat/pretrain-demo.yaml",
            "--store",
            store,
            "--teacher",
            "effnet-lite0",
            "--set",
            f"seed={seed}",
            "--set",
            f"loss.terms={terms}",
        )
    key = f"probe/{seed}"
    if key not in scores:
        checkpoints = [arg for name in OBJECTIVES for arg in ("--checkpoint", str(runs / folder(name)))]
        rows = json.loads(afcli("--json", "eval", "probe", *checkpoints, "--store", store, "--seed", str(seed)))
        scores[key] = {RANDOM if r["model"] == RANDOM else _name(r["model"]): r["miou"] for r in rows}
        save(out, scores)
    for name in (RANDOM, *OBJECTIVES):
        key = f"cast/{seed}/{name}"
        if key in scores:
            continue
        run = runs / f"cast-{folder(name)}"
        backbone = [] if name == RANDOM else ["--backbone", str(runs / folder(name))]
        train(
            "finetune",
            "cast",
            run,
            "--recipe",
            "recipes/cast/synth.yaml",
            "--store",
            store,
            *backbone,
            "--set",
            f"seed={seed}",
        )
        result = json.loads(afcli("--json", "eval", "synth", "--checkpoint", str(run)))[0]
        scores[key] = result["results"]["all"]["overall"]["aiou"]
        save(out, scores)


def _name(path: str) -> str:
    return next(name for name in OBJECTIVES if Path(path).name == folder(name))


def save(out: Path, scores: dict) -> None:
    (out / "scores.json").write_text(json.dumps(scores, indent=1))


def spread(values: list[float], scale: float, digits: int) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{scale * statistics.mean(values):.{digits}f} ± {scale * sd:.{digits}f} (n={len(values)})"


def report(scores: dict, seeds: list[int]) -> None:
    print("| backbone | probe mIoU | CAST aIoU % (held-out test queries) |")
    print("|---|---|---|")
    for name in (RANDOM, *OBJECTIVES):
        probe = [scores[f"probe/{s}"][name] for s in seeds if f"probe/{s}" in scores]
        cast = [scores[f"cast/{s}/{name}"] for s in seeds if f"cast/{s}/{name}" in scores]
        print(f"| {name} | {spread(probe, 1, 4)} | {spread(cast, 100, 2)} |")


def main(store: str, out: Path, seeds: list[int]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    scores = json.loads((out / "scores.json").read_text()) if (out / "scores.json").exists() else {}
    for seed in seeds:
        run_seed(store, out, seed, scores)
        report(scores, seeds)


if __name__ == "__main__":
    main(
        sys.argv[1],
        Path(sys.argv[2] if len(sys.argv) > 2 else "runs/table3"),
        [int(s) for s in (sys.argv[3] if len(sys.argv) > 3 else "0,1,2").split(",")],
    )
