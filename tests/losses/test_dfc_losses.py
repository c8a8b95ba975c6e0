"""The factorised functional InfoNCE equals the released code's materialised rows (385 logits each),
in both anchor readings and with the bg-bg set."""

import torch
import torch.nn.functional as F

from afcli.losses.dfc import functional_infonce, spatial_infonce, total_loss


def explicit(pos1, neg1, pos2, neg2, tau, anchor, negneg):
    rows = []
    for b in range(pos1.shape[0]):
        for i in range(pos1.shape[1]):
            for j in range(pos2.shape[1]):
                anchor_point = pos1[b, i] if anchor == "paper" else pos1[b, j]
                logits = [pos1[b, i] @ pos2[b, j], *(anchor_point @ neg2[b].T), *(pos2[b, j] @ neg1[b].T)]
                if negneg:
                    logits += [*(neg1[b, j] @ neg2[b].T)]
                rows.append(torch.stack(logits) / tau)
    logits = torch.stack(rows)
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long))


def test_functional_infonce_equals_the_materialised_rows():
    torch.manual_seed(0)
    pos1, neg1, pos2, neg2 = (F.normalize(torch.randn(2, 5, 8), dim=-1) for _ in range(4))
    for anchor in ("paper", "code"):
        for negneg in (False, True):
            got = functional_infonce(pos1, neg1, pos2, neg2, 0.1, anchor, negneg)
            assert torch.allclose(got, explicit(pos1, neg1, pos2, neg2, 0.1, anchor, negneg), atol=1e-5)


def test_spatial_and_total():
    same = F.normalize(torch.eye(4)[None], dim=-1)
    assert spatial_infonce(same, same, 0.1) < 1e-3  # each point's own match wins by 1/τ = 10
    terms = {"functional": torch.tensor(1.0), "spatial": torch.tensor(2.0), "mask": torch.tensor(3.0)}
    weights = {"functional": 1.0, "spatial": 10.0, "mask": 1.0}
    assert float(total_loss(terms, weights, False)) == 24.0
    assert float(total_loss(terms, weights, True)) == 2.0  # the code's /12
