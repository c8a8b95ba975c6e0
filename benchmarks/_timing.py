"""Shared timing helper for the benchmark scripts."""

import statistics
import time


def median_seconds(fn, repeats: int = 7, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def op_backends() -> list[str]:
    """The point-op backends to time: pure PyTorch always, the compiled ops when torch-cluster and
    torch-scatter import (``make bench OPS=1``); their rows are skipped, saying so, otherwise."""
    from afcli.extras import available

    if available("torch_cluster") and available("torch_scatter"):
        return ["torch", "compiled"]
    print("compiled ops not installed (make bench OPS=1): their rows are skipped")
    return ["torch"]
