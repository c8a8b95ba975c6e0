"""Pixel features of a trained dense functional correspondence run, and of its frozen backbone alone
(the paper's DINO baseline: no text, no MLP), for ``afcli eval dfc``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from afcli.engine.checkpoint import load_checkpoint
from afcli.errors import InputError
from afcli.methods.dfc.task import SPEC_FILE, TEXT_FILE, load_backbone
from afcli.models.dfc import FunctionalCorrespondence, raw_features

CHUNK = 8192


def trained_on(run: Path) -> str:
    """What the run's pseudo-labels were: ``oracle, noise 0.2``, ``owlv2`` — so that every table names the oracle."""
    from afcli.engine.run import read_run
    from afcli.store import open_store

    data = read_run(run)["settings"]["data"]
    try:
        with open_store(data["store"]) as f:
            attrs = f[f"labels/{data['labels']}"].attrs
            labeller = str(attrs["labeller"])
            noise = json.loads(attrs["settings"]).get("noise")
            return f"{labeller}, noise {noise}" if bool(attrs["oracle"]) else labeller
    except (InputError, KeyError, OSError, ValueError):
        return str(data["labels"])  # the store moved: its name as the run recorded it


class RunFeatures:
    """``features(rgb, function, pixels)`` of a run; ``raw`` gives its backbone's own features and
    ``masks`` its mask head's part masks. The backbone runs once per image (the last one is kept:
    an evaluation asks for an image's features, masks and raw features in turn)."""

    def __init__(self, run: str | Path, device: torch.device):
        from afcli.engine.run import saved_model

        folder = saved_model(run, FunctionalCorrespondence.model_type, "a dense functional correspondence model")
        self.spec = json.loads((folder / SPEC_FILE).read_text())
        self.head = FunctionalCorrespondence.from_pretrained(folder).to(device).eval()
        state = load_checkpoint(folder / TEXT_FILE, ("functions", "vectors"), what="encoded functions")
        self.text = dict(zip(state["functions"], state["vectors"].float()))
        self.backbone = load_backbone(self.spec["backbone"], device)
        self.device = device
        self.run = str(run)
        self.labels = trained_on(Path(run))
        self._last: tuple[bytes, torch.Tensor] | None = None

    def _vector(self, function: str) -> torch.Tensor:
        if function not in self.text:
            from afcli.data.taxonomy import prompt_text
            from afcli.prompts import sentence_embeddings

            t = self.spec["text"]
            self.text[function] = sentence_embeddings(t["encoder"], [prompt_text(function)], t["weights"])[0].cpu()
        return self.text[function].to(self.device)

    def _grid(self, rgb: np.ndarray) -> torch.Tensor:
        key = hashlib.blake2b(np.ascontiguousarray(rgb).tobytes(), digest_size=16).digest()
        if self._last is None or self._last[0] != key:
            self._last = (key, self.backbone(torch.from_numpy(np.array(rgb))[None].to(self.device)))
        return self._last[1]

    @torch.no_grad()
    def _head(self, rgb: np.ndarray, function: str, pixels: np.ndarray, output: int) -> torch.Tensor:
        fused = self.head.fuse(self._grid(rgb))
        text = self._vector(function)[None]
        out = []
        for start in range(0, len(pixels), CHUNK):
            chunk = torch.from_numpy(pixels[start : start + CHUNK]).float().to(self.device)[None]
            out.append(self.head(fused, chunk, text)[output][0])
        empty = torch.zeros((0, self.head.config.out_dim) if output == 0 else (0,), device=self.device)
        return torch.cat(out) if out else empty

    def features(self, rgb: np.ndarray, function: str, pixels: np.ndarray) -> torch.Tensor:
        return self._head(rgb, function, pixels, 0)

    def masks(self, rgb: np.ndarray, function: str, pixels: np.ndarray) -> np.ndarray:
        """Whether the mask head puts each pixel in the function's part (sigmoid ≥ 0.5, the code's get_mask)."""
        return (self._head(rgb, function, pixels, 1).sigmoid() >= 0.5).cpu().numpy()

    @torch.no_grad()
    def raw(self, rgb: np.ndarray, function: str, pixels: np.ndarray) -> torch.Tensor:
        grid = self._grid(rgb)
        size = self.head.config.image_size
        return raw_features(
            grid, self.head.config.blocks, torch.from_numpy(pixels).float().to(self.device)[None], size
        )[0]
