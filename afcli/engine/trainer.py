"""The training loop every method shares (CMAT pre-training, CAST fine-tuning).

A *task* provides the model, the dataset and the loss; the loop provides the rest: AdamW with no
weight decay on biases, norms and tokens; a per-epoch cosine schedule with linear warm-up (timm's
``CosineLRScheduler`` as Point-MAE and the CMAT code step it; with no warm-up it equals torch's
``CosineAnnealingLR``, the CAST code's); AMP on CUDA; global batches split over ranks in a fixed
order; a Rich progress line (rank 0); ``metrics.jsonl``; and after every epoch an atomic ``last.pt``
holding everything a resumed run needs (model, optimiser, scaler, epoch, best score) plus the
exported model.

Optional task hooks: ``parameter_groups(model, weight_decay)`` returning groups with an ``lr_scale``
(fine-tuning's backbone / head learning rates), ``grad_clip`` (max gradient norm), and
``validate(model) -> dict`` with a ``score`` (higher is better): the loop then also exports the best
epoch's model to ``best/`` — selection on a validation split, chosen by the task.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch

from afcli.engine.checkpoint import load_checkpoint, save_atomic
from afcli.engine.distributed import Rank
from afcli.errors import InputError
from afcli.files import write_text, writing_to

CHECKPOINT = "last.pt"
METRICS = "metrics.jsonl"


@dataclass
class OptimSettings:
    lr: float = 1e-4
    weight_decay: float = 0.05
    warmup_epochs: int = 15
    warmup_lr: float = 1e-6
    min_lr: float = 1e-6
    # How a parameter group's lr_scale meets the floor: "scaled" — the whole schedule times the
    # scale (timm-style one scheduler); "group" — each group anneals from lr x scale to min_lr
    # itself (torch's CosineAnnealingLR over groups, as the CMAT fine-tuning code).
    min_lr_scope: str = "scaled"

    def check(self) -> "OptimSettings":
        if self.min_lr_scope not in ("scaled", "group"):
            raise InputError(f"optim.min_lr_scope must be scaled or group, got {self.min_lr_scope!r}")
        return self


class Task(Protocol):
    find_unused_parameters: bool

    def build_model(self) -> torch.nn.Module: ...

    def dataset(self) -> torch.utils.data.Dataset: ...  # with an ``epoch`` attribute the loop sets

    def loss(self, model: torch.nn.Module, batch: dict) -> dict[str, torch.Tensor]: ...  # has "total"

    def export(self, model: torch.nn.Module, folder: Path) -> None: ...


def _log(path: Path, record: dict) -> None:
    with writing_to(path), open(path, "a") as log:
        log.write(json.dumps(record) + "\n")


def _keep_metrics_before(path: Path, epoch: int) -> None:
    """Drop the rows of epochs a killed run logged past its last checkpoint: the resumed run logs
    them again, so each epoch appears once."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines()
    kept = [line for line in lines if _epoch_of(line) < epoch]
    if len(kept) != len(lines):
        write_text(path, "".join(line + "\n" for line in kept))


def _epoch_of(line: str) -> float:
    try:
        return json.loads(line)["epoch"]
    except (ValueError, KeyError, TypeError):
        return math.inf  # a line cut short by the kill


def learning_rate(epoch: int, epochs: int, optim: OptimSettings, scale: float = 1.0) -> float:
    """timm CosineLRScheduler stepped per epoch: linear warm-up from ``warmup_lr``, then a cosine
    from ``lr`` to ``min_lr`` over all ``epochs`` (the warm-up epochs included in its clock), for a
    parameter group at ``scale`` x lr (see ``OptimSettings.min_lr_scope``)."""
    peak, factor = (optim.lr, scale) if optim.min_lr_scope == "scaled" else (optim.lr * scale, 1.0)
    if epoch < optim.warmup_epochs:
        return factor * (optim.warmup_lr + epoch * (peak - optim.warmup_lr) / optim.warmup_epochs)
    return factor * (optim.min_lr + 0.5 * (peak - optim.min_lr) * (1 + math.cos(math.pi * epoch / max(epochs, 1))))


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay for 1-D parameters (biases, norms) and anything named *token* (Point-MAE)."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim <= 1 or name.endswith(".bias") or "token" in name else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def batch_order(count: int, batch_size: int, seed: int, epoch: int, rank: Rank) -> list[list[int]]:
    """This rank's share of each global batch of one epoch: a seeded permutation cut into global
    batches (the tail dropped), each split ``rank::world`` — the union over ranks is the batch one
    process would see."""
    steps = count // batch_size
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(count, generator=generator)[: steps * batch_size].tolist()
    return [order[k * batch_size : (k + 1) * batch_size][rank.rank :: rank.world_size] for k in range(steps)]


def _to(batch: dict, device: torch.device) -> dict:
    return {
        key: value.to(device, non_blocking=True) if torch.is_tensor(value) else value for key, value in batch.items()
    }


def _reduce_mean(values: torch.Tensor, rank: Rank) -> torch.Tensor:
    if rank.world_size > 1:
        import torch.distributed as dist

        dist.all_reduce(values)
        values = values / rank.world_size
    return values


def train(
    task: Task,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    optim: OptimSettings,
    workers: int,
    amp: bool,
    run_dir: Path,
    rank: Rank,
    resume: bool = False,
    advance: Callable = lambda info=None: None,
    on_total: Callable[[int], None] = lambda total: None,
) -> dict:
    if batch_size % rank.world_size:
        raise InputError(f"global batch {batch_size} does not split over {rank.world_size} processes")
    torch.manual_seed(seed)  # the same initial weights on every rank and on every run with this seed
    model = task.build_model().to(rank.device)
    groups = (
        task.parameter_groups(model, optim.weight_decay)
        if hasattr(task, "parameter_groups")
        else parameter_groups(model, optim.weight_decay)
    )
    optimizer = torch.optim.AdamW(groups, lr=optim.lr)
    grad_clip = getattr(task, "grad_clip", None)
    best = -math.inf
    use_amp = amp and rank.device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    start = 0
    if resume:
        state = load_checkpoint(run_dir / CHECKPOINT, ("model", "optimizer", "scaler", "epoch"))
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scaler.load_state_dict(state["scaler"])
            start = int(state["epoch"]) + 1
        except (RuntimeError, ValueError, KeyError, TypeError) as error:
            raise InputError(
                f"does not fit this run's model ({' '.join(str(error).split())[:160]})", run_dir / CHECKPOINT
            ) from None
        best = float(state.get("best", -math.inf))
    trained = model
    if rank.world_size > 1:
        trained = torch.nn.parallel.DistributedDataParallel(
            model,
            device_ids=[rank.device.index] if rank.device.type == "cuda" else None,
            find_unused_parameters=task.find_unused_parameters,
        )
    data = task.dataset()
    if len(data) < batch_size:
        raise InputError(f"{len(data)} samples cannot fill one batch of {batch_size} (lower --batch-size)")
    steps = len(data) // batch_size
    if rank.main:
        _keep_metrics_before(run_dir / METRICS, start)
    on_total(max(0, epochs - start) * steps)
    history = []
    for epoch in range(start, epochs):
        lr = learning_rate(epoch, epochs, optim)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(epoch, epochs, optim, group.get("lr_scale", 1.0))
        data.epoch = epoch
        loader = torch.utils.data.DataLoader(
            data,
            batch_sampler=batch_order(len(data), batch_size, seed, epoch, rank),
            num_workers=workers,
            pin_memory=rank.device.type == "cuda",
        )
        trained.train()
        sums, began = None, time.perf_counter()
        for step, batch in enumerate(loader):
            batch = _to(batch, rank.device)
            with torch.autocast(rank.device.type, dtype=amp_dtype, enabled=use_amp):
                losses = task.loss(trained, batch)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(losses["total"]).backward()
            if grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
            names = list(losses)
            values = _reduce_mean(torch.stack([losses[n].detach().float() for n in names]), rank).cpu()
            record = {"epoch": epoch, "step": step, "lr": lr, **{n: float(v) for n, v in zip(names, values)}}
            history.append(record)
            sums = values if sums is None else sums + values
            seconds = time.perf_counter() - began
            advance(
                info=" ".join(f"{n} {float(v):.4g}" for n, v in zip(names, values))
                + f" lr {lr:.2e} {(step + 1) * batch_size / seconds:.1f} samples/s"
            )
            if rank.main:
                _log(run_dir / METRICS, record)
        seconds = time.perf_counter() - began
        summary = {
            "epoch": epoch,
            "lr": lr,
            "seconds": round(seconds, 3),
            "samples_per_s": round(steps * batch_size / seconds, 2),
            **{f"mean_{n}": float(v) / steps for n, v in zip(names, sums)},
        }
        if rank.main:
            if hasattr(task, "validate"):
                model.eval()
                summary["val"] = task.validate(model)
                if summary["val"]["score"] > best:
                    best = summary["val"]["score"]
                    summary["best"] = True
                    task.export(model, run_dir / "best")
            _log(run_dir / METRICS, summary)
            task.export(model, run_dir / "model")
            save_atomic(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "epoch": epoch,
                    "best": best,
                },
                run_dir / CHECKPOINT,
            )
        if rank.world_size > 1:
            import torch.distributed as dist

            dist.barrier()
    return {
        "epochs": epochs,
        "resumed_from": start if resume else None,
        "steps_per_epoch": steps,
        "history": history,
        "best_score": None if best == -math.inf else best,
    }
