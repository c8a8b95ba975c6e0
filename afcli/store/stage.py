"""The one resumable per-sample stage runner: what ``render``, ``lift`` and later ``pseudolabel``,
``caption`` and scene lifting share.

A stage says what it is (:class:`Stage`: its name in ``/status``, the arrays it writes, how to
declare them, how to open its model on a device and how to process one row); the runner does the
rest: the imported rows not done yet, one sample at a time (process → write → mark done → next, so
a killed run keeps every finished sample), ``--gpus N`` as N spawned processes that each write a
shard of the store, and the shards of an interrupted run absorbed into the store when it runs again.
The dependency points this way — the store layer runs a stage it knows only by this protocol — so
the stages' own packages (render, lift) are free to use the store.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Protocol

import h5py
import numpy as np
import torch

from afcli.errors import AfcliError, InputError, RunError
from afcli.store.schema import DONE, RAGGED, decode, open_store, read_sample, shard_path, status_path
from afcli.store.writer import StoreWriter, abandoned_writes


class Stage(Protocol):
    """A per-sample stage. It must pickle (``--gpus`` sends it to spawned processes): models are
    loaded by :meth:`open` in the process that uses them."""

    name: str | None  # /status/<name>; None: a stage that writes nothing (it runs over ``limit`` rows)
    arrays: tuple[str, ...]  # the per-sample arrays it writes, all committed with the sample

    def declare(self, writer: StoreWriter) -> None: ...  # ensure its arrays and its status

    def open(self, device: torch.device) -> None: ...  # load models on this process's device

    def process(self, f: h5py.File, path: Path, row: int, device: torch.device) -> dict[str, np.ndarray]: ...

    def report(self) -> dict: ...  # this process's numbers, for the caller to combine (the runner adds write_seconds)


def shards(store: Path, stage: Stage) -> list[Path]:
    """The shard files ``--gpus`` ranks of ``stage`` left beside ``store``."""
    return sorted(store.parent.glob(f"{store.stem}.{stage.name}-*-of-*.h5"))


def run_stage(
    store: str | Path,
    stage: Stage,
    *,
    device: torch.device,
    gpus: int = 1,
    rank_device: Callable[[int], torch.device] | None = None,
    overwrite: bool = False,
    limit: int | None = None,
    advance: Callable[[], None] = lambda: None,
    on_total: Callable[[int], None] = lambda total: None,
) -> dict:
    """Run ``stage`` over every imported sample of ``store`` it has not done (the first ``limit``
    of them, when given). ``gpus > 1`` splits the rows over that many processes, rank ``r`` on
    ``rank_device(r)``. Returns the rows processed, those done before, and each process's report."""
    store = Path(store)
    with StoreWriter(store) as writer:
        if overwrite and stage.name:
            for old in (*stage.arrays, status_path(stage.name)):
                if old in writer.f:
                    del writer.f[old]
            for old in shards(store, stage):
                old.unlink(missing_ok=True)
        stage.declare(writer)
        writer.begin()
        absorbed = _absorb_shards(writer, stage) if stage.name else 0
        imported = np.flatnonzero(writer.status("import") == DONE).tolist()
        todo = imported
        if stage.name:
            wanted = set(imported)
            todo = [row for row in writer.pending(stage.name) if row in wanted]
        todo = todo[:limit] if limit is not None else todo
        on_total(len(todo) + absorbed)
        for _ in range(absorbed):
            advance()
        if gpus == 1:
            stage.open(device)
            seconds = _process_rows(writer.f, writer.path, writer, [(row, row) for row in todo], stage, device, advance)
            reports = [{**stage.report(), "write_seconds": seconds}]
    if gpus > 1:
        reports = _run_ranks(store, stage, todo, gpus, rank_device, advance)
        with StoreWriter(store) as writer:
            writer.begin()
            _absorb_shards(writer, stage)
    return {"processed": len(todo) + absorbed, "already_done": len(imported) - len(todo), "reports": reports}


def _process_rows(source: h5py.File, source_path: Path, writer: StoreWriter, pairs, stage: Stage, device, advance):
    """Process rows ``source_row`` of the store ``source`` into ``dest_row`` of ``writer``, one at a
    time, committing each; returns the seconds spent writing."""
    seconds = 0.0
    for source_row, dest_row in pairs:
        arrays = stage.process(source, source_path, source_row, device)
        start = time.perf_counter()
        if stage.name:
            points = next((len(v) for k, v in arrays.items() if writer.f[k].attrs.get("per_point", False)), None)
            offsets = writer.f["points/offsets"] if writer.layout == RAGGED else None
            if (
                points is not None
                and offsets is not None
                and int(offsets[dest_row + 1]) - int(offsets[dest_row]) != points
            ):
                writer.append_points(dest_row, points)  # a fresh shard row gets its point range
            writer.write(dest_row, arrays)
            writer.mark(stage.name, dest_row, DONE)
        seconds += time.perf_counter() - start
        advance()
    return seconds


def _absorb_shards(writer: StoreWriter, stage: Stage) -> int:
    """Copy the samples finished in this stage's shards into the main store; delete the shards."""
    index = {sample_id: row for row, sample_id in enumerate(writer.ids())}
    absorbed = 0
    for shard in shards(writer.path, stage):
        with open_store(shard) as part:
            if status_path(stage.name) not in part:
                continue
            ids = decode(part["samples/id"][:])
            for row in np.flatnonzero(part[status_path(stage.name)][:] == DONE):
                target = index[ids[row]]
                if writer.status(stage.name)[target] == DONE:
                    continue
                writer.write(target, {name: read_sample(part, int(row), name) for name in stage.arrays})
                writer.mark(stage.name, target, DONE)
                absorbed += 1
        shard.unlink(missing_ok=True)
    return absorbed


def _run_ranks(store: Path, stage: Stage, rows: list[int], gpus: int, rank_device, advance) -> list[dict]:
    import multiprocessing as mp
    import queue as queues

    context = mp.get_context("spawn")
    messages = context.Queue()
    workers = [
        context.Process(
            target=rank_main,
            args=(rank, gpus, rank_device(rank), store, stage, rows[rank::gpus], messages),
            daemon=True,
        )
        for rank in range(gpus)
    ]
    for worker in workers:
        worker.start()
    reports: dict[int, dict] = {}
    try:
        while len(reports) < gpus:
            try:
                kind, rank, *payload = messages.get(timeout=1.0)
            except queues.Empty:
                dead = [r for r, w in enumerate(workers) if r not in reports and not w.is_alive()]
                if dead:
                    raise RunError(
                        f"{stage.name} rank {dead[0]} died (exit code {workers[dead[0]].exitcode}); run again to resume"
                    ) from None
                continue
            if kind == "sample":
                advance()
            elif kind == "finished":
                reports[rank] = payload[0]
            else:
                message, code = payload
                raise (InputError if code == 2 else RunError)(f"rank {rank}: {message}")
    finally:
        for worker in workers:
            if worker.is_alive() and len(reports) < gpus:
                worker.terminate()
            worker.join()
    return [reports[rank] for rank in range(gpus)]


def rank_main(rank: int, world: int, device: torch.device, store: Path, stage: Stage, rows: list[int], messages):
    """One process of a ``--gpus N`` stage: its rows into its own shard of the store."""
    try:
        if device.type == "cpu":
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
        else:
            torch.cuda.set_device(device)
        stage.open(device)
        shard = shard_path(store.with_name(f"{store.stem}.{stage.name}.h5"), rank, world)
        with open_store(store) as source:
            layout = str(source.attrs["layout"])
            with StoreWriter(shard, create=True, layout=layout, num_points=int(source.attrs["num_points"])) as writer:
                stage.declare(writer)
                writer.begin()
                ids = decode(source["samples/id"][:])
                shard_rows = writer.add_samples([ids[r] for r in rows], ["" for _ in rows])
                pending = set(writer.pending(stage.name, shard_rows))
                pairs = [(row, shard_row) for row, shard_row in zip(rows, shard_rows) if shard_row in pending]
                seconds = _process_rows(
                    source, store, writer, pairs, stage, device, lambda: messages.put(("sample", rank))
                )
        messages.put(("finished", rank, {**stage.report(), "write_seconds": seconds}))
    except AfcliError as error:
        messages.put(("error", rank, str(error), error.exit_code))
        if abandoned_writes():  # see StoreWriter.__exit__: deliver the message, then skip HDF5's shutdown
            messages.close()
            messages.join_thread()
            os._exit(error.exit_code)
    except Exception as error:  # report anything else as one line; the parent stops every rank
        messages.put(("error", rank, f"{type(error).__name__}: {error}", 1))
