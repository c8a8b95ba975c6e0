"""The dense functional correspondence training task for the shared loop (afcli.engine.trainer), its
network (the frozen backbone kept outside the state dict, the trained head inside) and the run
preparation: the functions' text encoded once, the head's widths read off the backbone, and with
``data.cache_grids`` every training view's backbone grid computed once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from afcli.engine.checkpoint import load_checkpoint, save_atomic
from afcli.errors import InputError
from afcli.files import write_text
from afcli.losses.dfc import functional_infonce, mask_bce, spatial_infonce, total_loss
from afcli.methods.dfc.data import PairData, label_functions
from afcli.methods.dfc.settings import DFCSettings
from afcli.models.dfc import FunctionalCorrespondence

TEXT_FILE = "functions.pt"
GRIDS_FILE = "grids.h5"
SPEC_FILE = "dfc.json"


def backbone_spec(settings: DFCSettings) -> dict:
    """What rebuilds the frozen backbone: recorded in an exported model's dfc.json."""
    b = settings.backbone
    return {"name": b.name, "weights": b.weights, "blocks": b.blocks, "size": b.size}


def load_backbone(spec: dict, device="cpu"):
    from afcli.teachers import load_teacher

    return load_teacher(
        spec["name"], weights=spec["weights"], blocks=spec["blocks"], input_size=spec["size"], device=device
    )


class DFCNet(torch.nn.Module):
    """Head + frozen backbone; inputs are uint8 images (B, H, W, 3) or precomputed grids (B, C, h, w)."""

    def __init__(self, head: FunctionalCorrespondence, backbone: dict | None):
        super().__init__()
        self.head = head
        object.__setattr__(self, "backbone", load_backbone(backbone) if backbone else None)

    def _apply(self, fn, recurse=True):
        if self.backbone is not None:
            self.backbone._apply(fn)
        return super()._apply(fn, recurse)

    def grids(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.is_floating_point():
            return inputs
        if self.backbone is None:
            raise InputError("this network was built for precomputed grids")
        return self.backbone(inputs)

    def forward(self, inputs: torch.Tensor, pixels: torch.Tensor, text: torch.Tensor):
        return self.head(self.head.fuse(self.grids(inputs)), pixels, text)


class DFCTask:
    def __init__(self, settings: DFCSettings, run_dir: Path):
        self.settings = settings
        state = load_checkpoint(run_dir / TEXT_FILE, ("functions", "vectors"), what="encoded functions")
        self.functions, self.text = list(state["functions"]), state["vectors"].float()
        self.grids = run_dir / GRIDS_FILE if settings.data.cache_grids else None
        self.find_unused_parameters = settings.model.mask_head and not settings.loss.mask
        self._data = None

    def build_model(self) -> DFCNet:
        return DFCNet(
            FunctionalCorrespondence(self.settings.model), None if self.grids else backbone_spec(self.settings)
        )

    def dataset(self) -> PairData:
        self._data = PairData(self.settings, self.functions, self.grids)
        return self._data

    def loss(self, model, batch: dict) -> dict[str, torch.Tensor]:
        s, points = self.settings.loss, self.settings.data.points
        B = batch["f_function"].shape[0]
        inputs = torch.cat([batch["f_inputs"].flatten(0, 1), batch["s_inputs"].flatten(0, 1)])
        spatial_pixels = batch["s_pixels"].flatten(0, 1)
        pixels = torch.cat([batch["f_pixels"].flatten(0, 1), torch.cat([spatial_pixels, spatial_pixels], 1)])
        which = torch.cat([batch["f_function"].repeat_interleave(2), batch["s_function"].repeat_interleave(2)])
        features, logits = model(inputs, pixels, self.text.to(inputs.device)[which])
        with torch.autocast(inputs.device.type, enabled=False):
            features = features.float()
            f = features[: 2 * B].view(B, 2, 2 * points, -1)
            pos1, neg1, pos2, neg2 = f[:, 0, :points], f[:, 0, points:], f[:, 1, :points], f[:, 1, points:]
            spatial = features[2 * B :, :points].view(B, 2, points, -1)
            terms, weights = {}, {"functional": 1.0, "spatial": s.spatial_weight, "mask": s.mask_weight}
            if s.functional:
                terms["functional"] = functional_infonce(pos1, neg1, pos2, neg2, s.tau, s.anchor, s.negneg)
            if s.spatial:
                terms["spatial"] = spatial_infonce(spatial[:, 0], spatial[:, 1], s.tau)
            if s.mask:
                m = logits[: 2 * B].float().view(B, 2, 2 * points)
                terms["mask"] = mask_bce(m[:, 0, :points], m[:, 1, :points], m[:, 0, points:], m[:, 1, points:])
            return {"total": total_loss(terms, weights, s.normalise), **terms}

    def export(self, net: DFCNet, folder: Path) -> None:
        s = self.settings
        net.head.save_pretrained(folder)
        save_atomic({"functions": self.functions, "vectors": self.text}, folder / TEXT_FILE)
        spec = {"backbone": backbone_spec(s), "text": {"encoder": s.text.encoder, "weights": s.text.weights}}
        write_text(folder / SPEC_FILE, json.dumps(spec, indent=1) + "\n")


def prepare_run(settings: DFCSettings, run_dir: Path, new: bool) -> DFCSettings:
    """A new run encodes the store's functions and sizes the head from the backbone (and caches grids)."""
    if not new:
        return settings
    from afcli.prompts import sentence_embeddings
    from afcli.runtime import pick_device
    from afcli.store import open_store

    store = Path(settings.data.store)
    with open_store(store) as f:
        functions = label_functions(f, settings.data.labels)
        size = int(f[f"views/{settings.data.rig}/index"].shape[-1]) if f"views/{settings.data.rig}/index" in f else None
    if size is None:
        raise InputError(f"no kept renders /views/{settings.data.rig}", store)
    from afcli.data.taxonomy import prompt_text

    vectors = sentence_embeddings(settings.text.encoder, [prompt_text(f) for f in functions], settings.text.weights)
    save_atomic({"functions": functions, "vectors": vectors.cpu()}, run_dir / TEXT_FILE)
    device = pick_device(settings.device)
    b = settings.backbone
    backbone = load_backbone(backbone_spec(settings), device)
    probe = backbone(torch.zeros(1, size, size, 3, dtype=torch.uint8, device=device))
    channels = int(probe.shape[1])
    if channels % b.blocks:
        raise InputError(f"backbone {b.name} gives {channels} channels, not {b.blocks} equal blocks")
    settings.model.blocks, settings.model.block_dim = b.blocks, channels // b.blocks
    settings.model.text_dim, settings.model.image_size = int(vectors.shape[1]), size
    PairData(settings, functions)  # no training items: one line now, not in every rank
    if settings.data.cache_grids:
        _cache_grids(settings, backbone, device, run_dir / GRIDS_FILE, tuple(probe.shape[1:]))
    return settings


def _cache_grids(settings: DFCSettings, backbone, device, path: Path, grid_shape: tuple) -> None:
    """Every training view's backbone grid (S, V, C, h, w) f16, computed once (rows of other splits stay 0)."""
    import h5py

    from afcli.store import open_store
    from afcli.store.schema import sample_splits

    with open_store(settings.data.store) as f, h5py.File(path.with_suffix(".tmp"), "w") as out:
        rgb = f[f"views/{settings.data.rig}/rgb"]
        splits = sample_splits(f, "train")
        grids = out.create_dataset(
            "grids", (rgb.shape[0], rgb.shape[1], *grid_shape), "f2", chunks=(1, rgb.shape[1], *grid_shape)
        )
        for row in np.flatnonzero(np.array(splits) == "train"):
            views = torch.from_numpy(np.asarray(rgb[row])).to(device)
            grids[row] = backbone(views).cpu().numpy().astype(np.float16)
    path.with_suffix(".tmp").replace(path)
