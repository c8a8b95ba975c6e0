"""Training pairs of dense functional correspondence from a store's kept renders and pseudo-labels,
drawn as the released samplers draw them (../shared/reference/dense-functional-correspondence-official-code.md §2).

A training *item* is a (sample, view, function) whose part mask has more than ``min_part_pixels``
pixels; functions with fewer than 3 items are dropped. Each dataset index yields

- a functional pair: a function drawn uniformly (with replacement), then two distinct items of it
  (they may be views of one object, as in the code); per image 128 positive pixels in the part mask
  (repeated when fewer) and 128 negatives on the object off the part (else anywhere off the part);
- a spatial pair: a training sample and two of its views, a function whose part both views show, and
  128 correspondences inside that part in both views (the same surface point, afcli.render.correspondence;
  drawn with replacement when fewer; the whole object when the part has none).

Every draw is seeded by (seed, epoch, index). Only the training split is used.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from afcli.errors import InputError
from afcli.pseudolabel.voting import unpack
from afcli.render.correspondence import view_correspondences
from afcli.store import open_store
from afcli.store.schema import sample_splits

MIN_ITEMS = 3
VIEW_ARRAYS = ("rgb", "depth", "index", "K", "c2w")


def label_functions(f, labels: str) -> list[str]:
    if f"labels/{labels}" not in f:
        raise InputError(f"no pseudo-labels /labels/{labels} (run afcli pseudolabel STORE --name {labels})", f.filename)
    return json.loads(f[f"labels/{labels}"].attrs["channels"])


def background(image: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator, mode: str) -> torch.Tensor:
    """(H, W, 3) uint8 render on white → the object on a random background: ``colour`` (the paper)
    or ``code`` (solid 50 % / two-colour gradient 50 %, then ±U[0, 50) noise half the time, wrapping)."""
    if mode == "white":
        return image
    H, W = mask.shape
    if mode == "colour" or rng.random() < 0.5:
        fill = torch.tensor(rng.integers(0, 256, 3), dtype=torch.float32).expand(H, W, 3)
    else:
        start, end = (torch.tensor(rng.integers(0, 256, 3), dtype=torch.float32) for _ in range(2))
        vertical = rng.random() < 0.5
        ramp = torch.linspace(0, 1, H).view(H, 1, 1) if vertical else torch.linspace(0, 1, W).view(1, W, 1)
        fill = start + (end - start) * ramp
    out = torch.where(mask.unsqueeze(-1), image.float(), fill)
    if mode == "code" and rng.random() < 0.5:
        noise = torch.from_numpy(rng.integers(0, 50, (H, W, 3)) - rng.integers(0, 50, (H, W, 3)))
        return (out.long() + noise).remainder(256).to(torch.uint8)
    return out.round().to(torch.uint8)


def _pick(pixels: torch.Tensor, count: int, rng: np.random.Generator) -> torch.Tensor:
    """``count`` of ``pixels`` (M, 2): a permutation, repeated when there are fewer."""
    order = np.concatenate([rng.permutation(len(pixels)) for _ in range(-(-count // len(pixels)))])[:count]
    return pixels[torch.from_numpy(order)]


def _xy(mask: torch.Tensor) -> torch.Tensor:
    rows, cols = torch.nonzero(mask, as_tuple=True)
    return torch.stack([cols, rows], 1)


class PairData(torch.utils.data.Dataset):
    def __init__(self, settings, functions: list[str], grids: Path | None = None):
        d = settings.data
        self.store, self.labels, self.rig, self.points = Path(d.store), d.labels, d.rig, d.points
        self.background, self.min_pixels, self.capacity = d.background, d.min_part_pixels, d.cache_samples
        self.seed, self.epoch = settings.seed, 0
        self.length = settings.steps_per_epoch * settings.batch_size
        self.grids = grids
        with open_store(self.store) as f:
            stored = label_functions(f, self.labels)
            if f"views/{self.rig}/{self.labels}" not in f:
                raise InputError(
                    f"no part masks /views/{self.rig}/{self.labels} (afcli pseudolabel --rig {self.rig})", self.store
                )
            wanted = [name for name in functions if name in stored]  # the run's functions the labels hold
            columns = [stored.index(name) for name in wanted]
            ids = [functions.index(name) for name in wanted]
            splits = sample_splits(f, "train")
            done = f[f"status/pseudolabel-{self.labels}"][:] == 1
            self.size = int(f[f"views/{self.rig}/index"].shape[-1])
            items: dict[int, list[tuple[int, int]]] = {}
            spatial = []
            for row in np.flatnonzero(done & (np.array(splits) == "train")):
                counts = unpack(f[f"views/{self.rig}/{self.labels}"][row], self.size).sum((-1, -2))  # (V, F)
                shown = counts[:, columns] > self.min_pixels  # (V, F')
                for k, function in enumerate(ids):
                    items.setdefault(function, []).extend((int(row), int(view)) for view in np.flatnonzero(shown[:, k]))
                for a in range(len(shown)):
                    for b in range(a + 1, len(shown)):
                        common = np.flatnonzero(shown[a] & shown[b])
                        if len(common):
                            spatial.append((int(row), a, b, [ids[k] for k in common]))
        self.channel = dict(zip(ids, columns))
        self.items = {f: v for f, v in items.items() if len(v) >= MIN_ITEMS}
        self.spatial = spatial
        if not self.items or not self.spatial:
            raise InputError(
                f"no training items: no function has {MIN_ITEMS} training views with more than {self.min_pixels} "
                f"part pixels in /labels/{self.labels}",
                self.store,
            )
        self.functions = sorted(self.items)
        self._file, self._grids, self._cache = None, None, OrderedDict()

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_file": None, "_grids": None, "_cache": OrderedDict()}

    def _sample(self, row: int) -> dict:
        if row in self._cache:
            self._cache.move_to_end(row)
            return self._cache[row]
        if self._file is None:
            self._file = open_store(self.store).__enter__()
        group = f"views/{self.rig}"
        data = {k: torch.from_numpy(np.asarray(self._file[f"{group}/{k}"][row])) for k in VIEW_ARRAYS}
        data["masks"] = torch.from_numpy(unpack(self._file[f"{group}/{self.labels}"][row], self.size))
        if self.grids is not None:
            if self._grids is None:
                import h5py

                self._grids = h5py.File(self.grids, "r")
            data["grids"] = torch.from_numpy(self._grids["grids"][row])
        self._cache[row] = data
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return data

    def _image(self, sample: dict, view: int, rng: np.random.Generator) -> torch.Tensor:
        if self.grids is not None:
            return sample["grids"][view].float()
        return background(sample["rgb"][view], sample["index"][view] >= 0, rng, self.background)

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        function = self.functions[rng.integers(len(self.functions))]
        chosen = rng.choice(len(self.items[function]), 2, replace=False)
        images, positives, negatives = [], [], []
        for k in chosen:
            row, view = self.items[function][k]
            sample = self._sample(row)
            part = sample["masks"][view, self.channel[function]]
            on_object = sample["index"][view] >= 0
            off_part = on_object & ~part
            if off_part.sum() == 0:
                off_part = ~part
            images.append(self._image(sample, view, rng))
            positives.append(_pick(_xy(part), self.points, rng))
            negatives.append(_pick(_xy(off_part), self.points, rng))
        row, a, b, common = self.spatial[rng.integers(len(self.spatial))]
        sample = self._sample(row)
        spatial_function = common[rng.integers(len(common))]
        masks = sample["masks"][:, self.channel[spatial_function]]
        pick = [a, b] if rng.random() < 0.5 else [b, a]
        views = {k: sample[k][pick] for k in ("depth", "index", "K", "c2w")}
        first, second = view_correspondences(
            views["depth"], views["index"], views["K"], views["c2w"], masks[pick[0]], masks[pick[1]]
        )
        if len(first) == 0:
            objects = views["index"] >= 0
            first, second = view_correspondences(
                views["depth"], views["index"], views["K"], views["c2w"], objects[0], objects[1]
            )
        if len(first) == 0:  # no shared surface at all: the view pair itself as its own correspondence
            first = second = _xy(views["index"][0] >= 0)
        chosen = torch.from_numpy(rng.choice(len(first), self.points, replace=len(first) < self.points))
        return {
            "f_inputs": torch.stack(images),
            "f_pixels": torch.stack([torch.cat([p, n]) for p, n in zip(positives, negatives)]).float(),
            "f_function": torch.tensor(function),
            "s_inputs": torch.stack([self._image(sample, pick[0], rng), self._image(sample, pick[1], rng)]),
            "s_pixels": torch.stack([first[chosen], second[chosen]]).float(),
            "s_function": torch.tensor(spatial_function),
        }
