"""One way to run on several devices: torch.distributed, launched by torchrun, by SLURM (one task
per GPU), or by afcli itself through torch's elastic launcher for ``--gpus N [--nodes M]``.

Inside a rank, :func:`setup` reads the environment the launcher left (torchrun's ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``, or SLURM's ``SLURM_PROCID``,
``SLURM_NTASKS``, ``SLURM_LOCALID``) and starts the process group: NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch

from afcli.errors import InputError, RunError
from afcli.runtime import check_processes, free_port, pick_device

DEFAULT_PORT = 29500


@dataclass
class Launch:
    gpus: int = 1  # processes per node
    nodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int | None = None

    @property
    def world_size(self) -> int:
        return self.gpus * self.nodes

    def check(self, device: str | None = None) -> "Launch":
        """The numbers make sense; given the run's ``device``, this node has the devices asked for."""
        if self.gpus < 1 or self.nodes < 1 or not 0 <= self.node_rank < self.nodes:
            raise InputError(
                f"--gpus {self.gpus} --nodes {self.nodes} --node-rank {self.node_rank}: need gpus ≥ 1, nodes ≥ 1, "
                "0 ≤ node-rank < nodes"
            )
        if device is not None:
            check_processes(self.gpus, device)
        return self


@dataclass
class Rank:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device: str) -> Rank:
    """Join the job's process group when there is one; pick this rank's device."""
    import torch.distributed as dist

    env = os.environ
    if "RANK" not in env and "SLURM_PROCID" in env and int(env.get("SLURM_NTASKS", "1")) > 1:
        env["RANK"], env["WORLD_SIZE"] = env["SLURM_PROCID"], env["SLURM_NTASKS"]
        env["LOCAL_RANK"] = env.get("SLURM_LOCALID", "0")
        env.setdefault("MASTER_PORT", str(DEFAULT_PORT))
        if "MASTER_ADDR" not in env:
            raise InputError("SLURM job without MASTER_ADDR: export it in the sbatch script (see scripts/slurm/)")
    world = int(env.get("WORLD_SIZE", "1"))
    rank, local = int(env.get("RANK", "0")), int(env.get("LOCAL_RANK", "0"))
    chosen = pick_device(device)
    if chosen.type == "cuda" and world > 1:
        chosen = torch.device(f"cuda:{local}")
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
    return Rank(rank, world, local, chosen)


def teardown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def launch(plan: Launch, entrypoint: Callable, *args):
    """Run ``entrypoint(*args)`` in ``plan.gpus`` processes on this node (``plan.nodes`` nodes in
    all) through torch's elastic launcher; returns rank 0's result when it runs on this node."""
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    plan.check()
    if plan.world_size == 1:
        return entrypoint(*args)
    if "RANK" in os.environ or int(os.environ.get("SLURM_NTASKS_PER_NODE", "1")) > 1:
        raise InputError(
            "already one process per GPU (torchrun or srun): drop --gpus/--nodes, the launcher made the ranks"
        )
    port = plan.master_port or (free_port() if plan.nodes == 1 else DEFAULT_PORT)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // plan.gpus)))
    config = LaunchConfig(
        min_nodes=plan.nodes,
        max_nodes=plan.nodes,
        nproc_per_node=plan.gpus,
        run_id=f"afcli-{port}",
        rdzv_backend="static",
        rdzv_endpoint=f"{plan.master_addr}:{port}",
        rdzv_configs={"rank": plan.node_rank},
        max_restarts=0,
        start_method="spawn",
    )
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    try:
        results = elastic_launch(config, entrypoint)(*args)
    except ChildFailedError as error:
        rank, failure = error.get_first_failure()
        raise RunError(
            f"rank {rank} stopped with exit code {failure.exitcode} (its traceback is above); run again with "
            "--resume to continue"
        ) from None
    return results.get(0)
