"""The benchmark table behind ``afcli eval <benchmark>``: one row per benchmark, read at start-up to
build the commands (so: the standard library only)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Benchmark:
    help: str
    subsets: str | None = None  # "module:function" (object, affordance) → subset name, scored apart
    # What its runs predict: per-point heat maps (scored by afcli.eval.affordance, one command shape
    # for all such rows) or 2D masks (afcli.eval.avagd, its own command).
    output: str = "heat maps"


BENCHMARKS = {
    "laso": Benchmark(
        "LASO test queries (text prompts): seen and unseen filters and all.",
        "afcli.data.laso:subset_of",
    ),
    "piad": Benchmark("PIAD test queries (image prompts), Seen or Unseen as imported."),
    "piadv2": Benchmark("PIADv2 test queries (image prompts), the setting imported."),
    "synth": Benchmark("The built-in set's held-out queries (text and rendered-image prompts)."),
    "avagd": Benchmark(
        "AVAGD (or the built-in audio-visual set): function and dependency masks from sound, seen and unseen.",
        output="masks",
    ),
}
