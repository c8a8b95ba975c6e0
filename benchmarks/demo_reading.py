"""The closing table of ``make demo`` and its one-line reading: CAST from the CMAT backbone vs from
scratch on held-out shapes, beside the linear part probe of the backbone and of a random init, read
against the seed spread that benchmarks/table3_cmat.py measured for the same recipes
(benchmarks/table3_scores.json).

    python benchmarks/demo_reading.py DEMO_DIR
"""

import json
import statistics
import sys
from pathlib import Path

from afcli.console import stdout, table

SCORES = Path(__file__).with_name("table3_scores.json")
FULL = "full (L_rec + L_aff + L_div)"


def seed_spread(scores: dict) -> float | None:
    """The larger standard deviation over seeds of CAST aIoU (%) from scratch and from the full objective."""
    spreads = []
    for name in ("random init", FULL):
        values = [100 * v for k, v in scores.items() if k.startswith("cast/") and k.endswith("/" + name)]
        if len(values) > 1:
            spreads.append(statistics.stdev(values))
    return max(spreads) if spreads else None


def main(demo: Path) -> None:
    probe = {row["model"]: row["miou"] for row in json.loads((demo / "probe.json").read_text())}
    cast = json.loads((demo / "cast.json").read_text())
    rows, aiou = [], {}
    for result, backbone, probed in zip(cast, ("CMAT (pretrain-demo.yaml)", "none (from scratch)"), (1, 0)):
        overall = result["results"]["all"]["overall"]
        aiou[backbone] = 100 * overall["aiou"]
        key = next(k for k in probe if k != "random init") if probed else "random init"
        rows.append(
            (
                backbone,
                f"{probe[key]:.4f}",
                f"{100 * overall['aiou']:.2f}",
                f"{100 * overall['auc']:.2f}",
                f"{overall['sim']:.3f}",
                f"{overall['mae']:.3f}",
            )
        )
    stdout.print(
        table(
            f"CAST on {cast[0]['queries']} held-out queries, by the backbone it started from",
            ["backbone", "probe mIoU", "aIoU %", "AUC %", "SIM", "MAE"],
            rows,
        )
    )
    gain = aiou["CMAT (pretrain-demo.yaml)"] - aiou["none (from scratch)"]
    spread = seed_spread(json.loads(SCORES.read_text())) if SCORES.is_file() else None
    if spread is None:
        verdict = "no seed spread measured yet (benchmarks/table3_cmat.py)"
    elif abs(gain) <= spread:
        verdict = f"within the seed spread ({spread:.2f} points sd, 3 seeds): no measurable effect at demo scale"
    else:
        side = "ahead of" if gain > 0 else "behind"
        verdict = f"CMAT is {side} scratch by more than the seed spread ({spread:.2f} points sd, 3 seeds)"
    stdout.print(f"Reading: CMAT - scratch = {gain:+.2f} aIoU points; {verdict}.")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo"))
