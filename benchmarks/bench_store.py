"""Store throughput (samples/s): 2048 points + 384-d fp16 features per sample, written through
StoreWriter (each sample checked for space, flushed and committed) and read through StoreDataset,
against the common alternative of one .npz file per sample."""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from afcli.store import DONE, StoreDataset, StoreWriter

SAMPLES, POINTS, DIM = 512, 2048, 384


def throughput(read, count: int, order) -> float:
    start = time.perf_counter()
    for i in order:
        read(int(i))
    return count / (time.perf_counter() - start)


def main() -> None:
    rng = np.random.default_rng(0)
    xyz = rng.random((SAMPLES, POINTS, 3), dtype=np.float32)
    features = rng.standard_normal((SAMPLES, POINTS, DIM)).astype(np.float16)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = {}
        for codec in (None, "lzf"):
            path = tmp / f"bench-{codec}.h5"
            start = time.perf_counter()
            with StoreWriter(path, create=True, num_points=POINTS) as w:
                w.ensure_array("points/xyz", (3,), "f4", compression=codec)
                w.ensure_array("features/bench", (DIM,), "f2", compression=codec)
                w.ensure_stage("import")
                w.begin()
                for row in w.add_samples([f"s{i}" for i in range(SAMPLES)], ["x"] * SAMPLES):
                    w.write(row, {"points/xyz": xyz[row], "features/bench": features[row]})
                    w.mark("import", row, DONE)
            writes = SAMPLES / (time.perf_counter() - start)
            dataset = StoreDataset(path, ["points/xyz", "features/bench"])
            rows[f"HDF5 store ({codec or 'no compression'})"] = (dataset.__getitem__, path.stat().st_size, writes)
        npz_dir = tmp / "npz"
        npz_dir.mkdir()
        start = time.perf_counter()
        for i in range(SAMPLES):
            np.savez(npz_dir / f"s{i}.npz", xyz=xyz[i], features=features[i])
        npz_writes = SAMPLES / (time.perf_counter() - start)

        def read_npz(i: int) -> dict:
            with np.load(npz_dir / f"s{i}.npz") as data:
                return {"xyz": torch.from_numpy(data["xyz"]), "features": torch.from_numpy(data["features"])}

        npz_bytes = sum(p.stat().st_size for p in npz_dir.iterdir())
        rows["one .npz per sample"] = (read_npz, npz_bytes, npz_writes)
        shuffled = np.random.default_rng(1).permutation(SAMPLES)
        results = {}
        for name, (read, size, writes) in rows.items():
            read(0)
            results[name] = (
                throughput(read, SAMPLES, range(SAMPLES)),
                throughput(read, SAMPLES, shuffled),
                size,
                writes,
            )
        base = results["one .npz per sample"]
        print(f"{SAMPLES} samples × ({POINTS}×3 f32 + {POINTS}×{DIM} f16), page cache warm, 1 process")
        print(
            "| format | written samples/s | sequential samples/s | shuffled samples/s | on disk | vs .npz (shuffled) |"
        )
        print("|---|---|---|---|---|---|")
        for name, (seq, shuf, size, writes) in results.items():
            print(
                f"| {name} | {writes:.0f} | {seq:.0f} | {shuf:.0f} | {size / 2**20:.0f} MiB | {shuf / base[1]:.2f}× |"
            )


if __name__ == "__main__":
    sys.exit(main())
