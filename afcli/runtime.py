"""The floor every layer stands on: which device a command runs on and how many processes it may
start, and what the launcher (torchrun, SLURM) already decided. Stages (render, lift) and training
both use it; it imports nothing of afcli but the error types."""

from __future__ import annotations

import os
import socket

import torch

from afcli.errors import InputError


def check_processes(gpus: int, device: str) -> None:
    """One rule for every verb's ``--gpus N``: N CUDA devices on this node, or N CPU processes when
    ``--device cpu`` asks for them."""
    if gpus < 1:
        raise InputError(f"--gpus must be at least 1, got {gpus}")
    if gpus == 1 or device == "cpu":
        return
    available = torch.cuda.device_count()
    if available < gpus:
        raise InputError(
            f"--gpus {gpus} needs {gpus} CUDA devices, this machine has {available} (add --device cpu to run "
            f"{gpus} CPU processes)"
        )


def pick_device(device: str) -> torch.device:
    """``auto`` (CUDA when visible, else CPU), ``cpu`` or ``cuda[:i]``; an unknown or absent
    device is an input error before any work starts."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise InputError(f"unknown device {device!r} (auto, cpu, cuda, cuda:1 …)") from None
    if chosen.type not in ("cpu", "cuda"):
        raise InputError(f"--device {device!r}: choose auto, cpu or cuda[:i]")
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device}: no CUDA device visible (use auto or cpu)")
    return chosen


def rank_device(device: str, rank: int) -> torch.device:
    """The device of rank ``rank`` of a ``--gpus N`` stage: the CPU when ``device`` is cpu, else ``cuda:rank``."""
    return torch.device("cpu") if device == "cpu" else torch.device(f"cuda:{rank}")


def external_rank() -> int:
    """This process's global rank as torchrun or SLURM set it (0 outside such a job)."""
    return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")))


def launched_externally() -> bool:
    """True inside torchrun or a multi-task SLURM step (afcli must not launch again)."""
    return (
        "RANK" in os.environ
        and "WORLD_SIZE" in os.environ
        or int(os.environ.get("SLURM_NTASKS", "1")) > 1
        and "SLURM_PROCID" in os.environ
    )


def free_port() -> int:
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return handle.getsockname()[1]
