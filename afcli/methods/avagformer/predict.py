"""AVAGFormer's masks for every pair of a split, and their scores (afcli.metrics.avagd)."""

from __future__ import annotations

import torch

from afcli.metrics.avagd import HEADS


@torch.no_grad()
def predict(net, data, batch_size: int, device) -> tuple[dict, dict]:
    """(logits, targets): ``function`` / ``dependency`` → (N, S, S) over the pairs of ``data``."""
    net.eval()
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
    logits, targets = {h: [] for h in HEADS}, {h: [] for h in HEADS}
    for batch in loader:
        out = net(batch["image"].to(device), batch["audio"].to(device))
        for head in HEADS:
            logits[head].append(out[head][:, 0].float().cpu())
            targets[head].append(batch[head][:, 0])
    return {h: torch.cat(v) for h, v in logits.items()}, {h: torch.cat(v) for h, v in targets.items()}


def predict_run(run, store, split: str, device: str = "auto", batch_size: int = 8) -> dict:
    """A run's best-on-selection model over the pairs of ``split`` (val, unseen, train) of ``store``:
    logits, ground truth, and which image and sound each pair is."""
    from pathlib import Path

    from afcli.engine.checkpoint import load_checkpoint
    from afcli.engine.run import read_settings
    from afcli.errors import InputError
    from afcli.methods.avagformer.audio import AUDIO_FILE, encode_clips
    from afcli.methods.avagformer.data import PairData
    from afcli.methods.avagformer.net import load_net
    from afcli.runtime import pick_device
    from afcli.store import open_store
    from afcli.store.clips import read_clips
    from afcli.store.schema import decode

    run = Path(run)
    folder = run / "best" if (run / "best").is_dir() else run / "model"
    net, spec = load_net(folder)
    device = pick_device(device)
    saved = load_checkpoint(run / AUDIO_FILE, ("tokens", "ids"), what="AVAGFormer audio tokens")
    with open_store(store) as f:
        clip_ids = read_clips(f, store).id
        sample_ids = decode(f["samples/id"][:])
    if clip_ids == list(saved["ids"]):
        tokens = saved["tokens"]
    else:  # another store: its sounds through the run's audio encoder
        from afcli.methods.avagformer.settings import AVAGFormerSettings

        tokens, _ = encode_clips(read_settings(AVAGFormerSettings, run), Path(store), device)
    data = PairData(store, split, tokens, spec["size"])
    if not len(data):
        raise InputError(f"the store has no {split} pairs", store)
    logits, targets = predict(net.to(device), data, batch_size, device)
    return {
        "logits": logits,
        "targets": targets,
        "samples": [sample_ids[int(row)] for row in data.samples],
        "clips": [clip_ids[int(row)] for row in data.clips],
        "rows": data.samples,
        "model": str(folder),
    }
