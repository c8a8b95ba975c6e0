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
