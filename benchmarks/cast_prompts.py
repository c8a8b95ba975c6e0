"""Sound as a CAST prompt on the built-in set: one CAST per seed trained with text (MiniLM-L6) and
sound (SoundNet-8) prompts — recipes/cast/synth.yaml with the image encoder swapped for the audio
one, one modality dropped for half the training samples so one model answers either — then scored
on the held-out test queries with the text alone, the sound alone and both, on the queries whose
action makes a sound (the others have no sound prompt). Resumable like table3_cmat.py.

    python benchmarks/cast_prompts.py SHAPES_DIR OUT [SEEDS]
    python benchmarks/cast_prompts.py demo/shapes runs/cast-prompts 0,1,2
"""

import json
import statistics
import subprocess
import sys
from pathlib import Path

PROMPTS = ("text", "audio", "text+audio")


def afcli(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "afcli", *args], check=True, capture_output=True, text=True).stdout


def main(shapes: str, out: Path, seeds: list[int]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    store = out / "store.h5"
    afcli("-q", "data", "import", shapes, "--store", str(store))  # resumes; queries carry their sounds
    path = out / "scores.json"
    scores = json.loads(path.read_text()) if path.exists() else {}
    for seed in seeds:
        run = out / f"seed{seed}"
        if not (run / "best").is_dir():
            args = ["--resume"] if (run / "last.pt").exists() else [
                "--recipe", "recipes/cast/synth.yaml", "--store", str(store), "--image", "none",
                "--set", "prompts.audio=soundnet8", "--set", "prompts.drop=0.5", "--set", f"seed={seed}",
            ]  # fmt: skip
            afcli("-q", "finetune", "cast", "--run", str(run), *args)
        for prompt in PROMPTS:
            key = f"{seed}/{prompt}"
            if key not in scores:
                result = json.loads(afcli("--json", "eval", "synth", "--checkpoint", str(run), "--prompt", prompt))[0]
                scores[key] = {
                    "with sound": 100 * result["results"]["with sound"]["overall"]["aiou"],
                    "all": 100 * result["results"]["all"]["overall"]["aiou"],
                    "queries with sound": result["results"]["with sound"]["overall"]["samples"],
                }
                path.write_text(json.dumps(scores, indent=1))
    print("| prompt | aIoU % on test queries with a sound | aIoU % on all test queries |")
    print("|---|---|---|")
    for prompt in PROMPTS:
        rows = [scores[f"{s}/{prompt}"] for s in seeds if f"{s}/{prompt}" in scores]
        cells = []
        for column in ("with sound", "all"):
            values = [row[column] for row in rows]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.2f} ± {sd:.2f} (n={len(values)})")
        print(f"| {prompt} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main(
        sys.argv[1],
        Path(sys.argv[2] if len(sys.argv) > 2 else "runs/cast-prompts"),
        [int(s) for s in (sys.argv[3] if len(sys.argv) > 3 else "0").split(",")],
    )
