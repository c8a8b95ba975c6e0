"""The benchmark table behind ``afcli eval <benchmark>``: one row per benchmark, read at start-up to
build the commands (so: the standard library only)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Benchmark:
    help: str
    votes: int  # passes over seeded point orders averaged by default
    subsets: str | None = None  # "module:function" (object, affordance) → subset name, scored apart


BENCHMARKS = {
    "laso": Benchmark(
        "LASO test queries (text prompts): seen and unseen filters and all; 3 votes as LASO's evaluation.",
        3,
        "afcli.data.laso:subset_of",
    ),
    "piad": Benchmark("PIAD test queries (image prompts), Seen or Unseen as imported.", 1),
    "piadv2": Benchmark("PIADv2 test queries (image prompts), the setting imported.", 1),
    "synth": Benchmark("The built-in set's held-out queries (text and rendered-image prompts).", 1),
}
