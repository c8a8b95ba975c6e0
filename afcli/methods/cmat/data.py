"""CMAT batches: a store's points and lifted teacher features, with every random draw seeded by
``(seed, epoch, index)`` so that N processes and a resumed run see the batches one process would."""

from __future__ import annotations

import numpy as np
import torch

from afcli.methods.cmat.settings import CMATSettings


class PretrainPoints(torch.utils.data.Dataset):
    """Samples of a store as CMAT batches: points, teacher features and the per-sample noise for
    masking and drop path, all seeded by ``(seed, epoch, index)``."""

    def __init__(self, settings: CMATSettings):
        from afcli.store import StoreDataset

        data = settings.data
        arrays = ["points/xyz"] + ([f"features/{data.teacher_id}"] if data.teacher_id else [])
        require = f"lift-{data.teacher_id}" if data.teacher_id else "import"
        self.base = StoreDataset(data.store, arrays, require=require)
        self.settings = settings
        self.epoch = 0
        self.projection = None
        if data.teacher_id and data.teacher_dim:
            with torch.no_grad():
                dim = self.base[0][f"features/{data.teacher_id}"].shape[-1]
                generator = torch.Generator().manual_seed(settings.seed)
                self.projection = torch.randn(dim, data.teacher_dim, generator=generator) / data.teacher_dim**0.5

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        settings, data = self.settings, self.settings.data
        rng = np.random.default_rng([settings.seed, self.epoch, index])
        item = self.base[index]
        points = item["points/xyz"].float()
        keep = self._sample(points, rng)
        points = points[keep]
        if data.augment == "scale_translate":  # Point-MAE's PointcloudScaleAndTranslate, per axis
            scale = torch.from_numpy(rng.uniform(2 / 3, 3 / 2, 3)).float()
            shift = torch.from_numpy(rng.uniform(-0.2, 0.2, 3)).float()
            points = points * scale + shift
        model = settings.model
        out = {
            "points": points,
            "mask_noise": torch.from_numpy(rng.random(model.num_group)).float(),
            "drop_noise": torch.from_numpy(rng.random((model.depth + model.decoder_depth, 2))).float(),
        }
        if data.teacher_id:
            teacher = item[f"features/{data.teacher_id}"][keep].float()
            out["teacher"] = teacher @ self.projection if self.projection is not None else teacher
        return out

    def _sample(self, points: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        count, wanted = points.shape[0], self.settings.data.num_points
        if count == wanted:
            return torch.arange(count)
        if count < wanted:  # pad with random repeats (the CMAT code)
            return torch.from_numpy(np.concatenate([np.arange(count), rng.choice(count, wanted - count)]))
        if self.settings.data.sampling == "random":
            return torch.from_numpy(rng.choice(count, wanted, replace=False))
        from afcli.ops import fps

        start = int(rng.integers(count)) if self.settings.data.sampling == "fps_random_start" else 0
        return fps(points.unsqueeze(0), wanted, start=start)[0]
