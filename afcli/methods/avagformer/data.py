"""Image–sound pairs of one split of an image store, as AVAGFormer's loader yields them: the image
normalised with ImageNet's mean and std, the function and dependency masks, the clip's audio tokens
(encoded once per run, see task.prepare_run). Training augmentation (``avagformer``) as the released
loader: RandomAffine(degrees 20, scale 0.5-1, shear 10; nearest, fill 0) on image and masks alike,
horizontal flip with p 0.5, ColorJitter(0.2, 0.2, 0.2, 0.1) on the image; every draw seeded by
(seed, epoch, pair), so N processes and a resumed run see what one process would."""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from afcli.errors import InputError
from afcli.images import color_jitter
from afcli.store import open_store
from afcli.store.clips import read_pairs
from afcli.store.schema import decode
from afcli.teachers.base import IMAGENET_MEAN, IMAGENET_STD


def held_out(sample_id: str, fraction: float) -> bool:
    """Whether a training image is in the selection hold-out (a fixed share, by id hash)."""
    return zlib.crc32(sample_id.encode("utf-8")) % 10_000 < fraction * 10_000


class PairData(torch.utils.data.Dataset):
    """The pairs of ``split`` (train, val, unseen); ``holdout`` > 0 splits the training images: ``train``
    leaves the held-out share out, ``holdout`` is that share."""

    def __init__(
        self, store, split: str, tokens: torch.Tensor, size: int, training=False, augment="none", seed=0, holdout=0.0
    ):
        self.store, self.split, self.tokens, self.size = Path(store), split, tokens, size
        self.training, self.augment, self.seed, self.epoch = training, augment, seed, 0
        with open_store(self.store) as f:
            if "pairs/sample" not in f:
                raise InputError("not an audio-visual store (no /pairs: afcli data import --benchmark avagd)", store)
            samples, clips, splits = read_pairs(f)
            ids = decode(f["samples/id"][:])
        chosen = np.array(splits) == ("train" if split == "holdout" else split)
        if holdout > 0 and split in ("train", "holdout"):
            aside = np.array([held_out(ids[row], holdout) for row in samples], bool)
            chosen &= aside if split == "holdout" else ~aside
        keep = np.flatnonzero(chosen)
        self.samples, self.clips = samples[keep], clips[keep]
        self._file = None

    def __len__(self) -> int:
        return len(self.samples)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_file": None}  # DataLoader workers open their own handle

    def __getitem__(self, index: int) -> dict:
        if self._file is None:
            self._file = open_store(self.store).__enter__()
        row = int(self.samples[index])
        image = torch.from_numpy(self._file["images/rgb"][row])
        masks = torch.from_numpy(np.stack([self._file["masks/function"][row], self._file["masks/dependency"][row]]))
        if self.training and self.augment == "avagformer":
            image, masks = _augment(image, masks, np.random.default_rng([self.seed, self.epoch, index]))
        pixels = image.permute(2, 0, 1).float()[None] / 255
        masks = masks.float()[None]
        if pixels.shape[-1] != self.size:
            pixels = F.interpolate(pixels, size=(self.size, self.size), mode="bilinear", align_corners=False)
            masks = F.interpolate(masks, size=(self.size, self.size), mode="nearest")
        mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return {
            "image": ((pixels - mean) / std)[0],
            "function": masks[0, :1],
            "dependency": masks[0, 1:],
            "audio": self.tokens[int(self.clips[index])].float(),
            "pair": index,
        }


def _augment(image: torch.Tensor, masks: torch.Tensor, rng: np.random.Generator):
    """(H, W, 3) uint8 and (2, H, W) uint8 → both under one random affine and flip; the image jittered."""
    angle, scale, shear = math.radians(rng.uniform(-20, 20)), rng.uniform(0.5, 1.0), math.radians(rng.uniform(-10, 10))
    rotate = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    forward = rotate @ torch.tensor([[1.0, -math.tan(shear)], [0.0, 1.0]]) * scale  # about the centre
    theta = torch.cat([torch.linalg.inv(forward), torch.zeros(2, 1)], 1)[None]
    stacked = torch.cat([image.permute(2, 0, 1).float(), masks.float()])[None]
    grid = F.affine_grid(theta, list(stacked.shape), align_corners=False)
    moved = F.grid_sample(stacked, grid, mode="nearest", padding_mode="zeros", align_corners=False)[0]
    if rng.random() < 0.5:
        moved = moved.flip(-1)
    image = color_jitter(moved[:3].round().to(torch.uint8).permute(1, 2, 0), rng, 0.2, hue=0.1)
    return image, moved[3:].round().to(torch.uint8)
