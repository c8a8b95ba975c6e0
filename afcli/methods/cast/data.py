"""CAST batches: a split's queries as points, ground truth and prompt indices, every random draw
seeded by ``(seed, epoch, index)``, and the official loaders' training augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from afcli.errors import InputError
from afcli.methods.cast.prompts import Pictures, image_key


class QueryData(torch.utils.data.Dataset):
    """Queries of one split as CAST batches: points, ground truth and prompt indices, seeded by
    ``(seed, epoch, index)``. Training draws a question from the second on (the first is the
    evaluation question, as LASO's loader) and a cloud for unpaired queries. Given ``online``
    prompt settings, training items carry the prompts themselves instead of cache indices: the
    question string, and the image as a (S, S, 3) uint8 picture for an encoder of input size
    ``picture_size``, augmented as ``online.image_augment`` says."""

    def __init__(
        self,
        store: str | Path,
        split: str,
        prompts: dict,
        *,
        training: bool,
        augment: str = "none",
        seed: int = 0,
        drop: float = 0.0,
        online=None,
        picture_size: int | None = None,
    ):
        from afcli.store import open_store
        from afcli.store.queries import read_queries
        from afcli.store.schema import decode, sample_splits

        self.store, self.prompts, self.training, self.augment, self.seed, self.drop = (
            Path(store),
            prompts,
            training,
            augment,
            seed,
            drop,
        )
        self.epoch, self._file, self._pictures = 0, None, None
        self.online, self.picture_size = (online if training and online and online.online else None), picture_size
        with open_store(store) as f:
            self.table = read_queries(f, store)
            self.rows = self.table.rows(split)
            if not len(self.rows):
                raise InputError(f"no {split} queries in the store", store)
            self.channels = decode(f["labels/affordance"].attrs["channels"])
            categories = [c.lower() for c in decode(f["samples/category"][:])]
            splits = sample_splits(f, "")
            annotated = (
                f["labels/annotated"][:]
                if "labels/annotated" in f
                else np.ones((len(categories), len(self.channels)), np.uint8)
            )
            done = f["status/import"][:] == 1
        self.pools: dict[tuple[str, str, str], np.ndarray] = {}
        for r in self.rows:
            if self.table.sample[r] < 0:
                key = (self.table.object[r], self.table.affordance[r], self.table.split[r])
                if key not in self.pools:
                    channel = self.channels.index(key[1])
                    pool = np.flatnonzero(
                        [
                            c == key[0] and s == key[2] and a[channel] and d
                            for c, s, a, d in zip(categories, splits, annotated, done)
                        ]
                    )
                    if not len(pool):
                        raise InputError(
                            f"no {key[2]} cloud of {key[0]} with {key[1]} annotated for query {self.table.id[r]}", store
                        )
                    self.pools[key] = pool
            elif not done[self.table.sample[r]]:
                raise InputError(f"query {self.table.id[r]} asks about a sample that is not imported", store)

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_file": None, "_pictures": None}

    def sample_row(self, index: int, rng: np.random.Generator) -> int:
        r = self.rows[index]
        if self.table.sample[r] >= 0:
            return int(self.table.sample[r])
        pool = self.pools[(self.table.object[r], self.table.affordance[r], self.table.split[r])]
        return int(pool[rng.integers(len(pool))])

    def __getitem__(self, index: int) -> dict:
        from afcli.store import open_store

        if self._file is None:
            self._file = open_store(self.store)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        r = self.rows[index]
        row = self.sample_row(index, rng)
        points = torch.from_numpy(self._file["points/xyz"][row]).float()
        gt = torch.from_numpy(
            self._file["labels/affordance"][row][:, self.channels.index(self.table.affordance[r])]
        ).float()
        if self.training:
            points = _augment(points, self.augment, rng)
        item = {"points": points, "gt": gt, "query": torch.tensor(r)}
        text, image, audio = self.prompts["text"], self.prompts["image"], self.prompts.get("audio")
        kinds = [kind for kind, encoded in (("text", text), ("image", image), ("audio", audio)) if encoded]
        keep = dict.fromkeys(kinds, True)
        if self.training and self.drop and rng.random() < self.drop:  # one modality becomes the null token
            keep[kinds[int(rng.random() * len(kinds))]] = False
        keep_text, keep_image = keep.get("text", True), keep.get("image", True)
        if text is not None:
            questions = self.table.text[r]
            question = (
                questions[1 + int(rng.integers(len(questions) - 1))]
                if self.training and len(questions) > 1
                else questions[0]
            )
            if self.online:
                item["question"] = question
            else:
                item["text"] = torch.tensor(text.keys[question])
            item["text_present"] = torch.tensor(keep_text)
        if image is not None:
            if self.online:
                item["picture"] = self._picture(r, rng)
            else:
                item["image"] = torch.tensor(image.keys[image_key(self.table.image[r], self.table.affordance[r])])
            item["image_present"] = torch.tensor(keep_image)
        if audio is not None:
            sound = self.table.audio[r]
            item["audio"] = torch.tensor(audio.keys.get(sound, 0))
            item["audio_present"] = torch.tensor(keep["audio"] and sound in audio.keys)
        return item

    def _picture(self, r: int, rng: np.random.Generator) -> torch.Tensor:
        from afcli.images import box_crop, color_jitter, square

        if self._pictures is None:
            self._pictures = Pictures(self._file, self.store)
        picture = self._pictures(self.table.image[r], self.table.affordance[r])
        if self.online.image_augment == "piad":  # IAGNet's order: crop, jitter, then resize
            picture = color_jitter(box_crop(picture, self.table.box[r], rng), rng, 0.1)
        return square(picture, self.picture_size, self.online.resize)


def _rotation(axis: int, angle: float) -> torch.Tensor:
    c, s = np.cos(angle), np.sin(angle)
    i, j = [k for k in range(3) if k != axis]
    matrix = np.eye(3)
    matrix[i, i], matrix[i, j], matrix[j, i], matrix[j, j] = c, -s, s, c
    return torch.from_numpy(matrix).float()


def _augment(points: torch.Tensor, kind: str, rng: np.random.Generator) -> torch.Tensor:
    """The official loaders' training augmentation (../shared/reference/cmat-official-code.md)."""
    if kind == "laso":
        points = points @ _rotation(1, rng.uniform(0, 2 * np.pi)).T
        points = points + torch.from_numpy(rng.normal(0, 0.01, points.shape)).float()
        return points * float(rng.uniform(0.8, 1.2))
    if kind == "piad":
        points = points + torch.from_numpy(rng.normal(0, 0.01, points.shape)).float()
        return points @ _rotation(2, rng.uniform(0, 2 * np.pi)).T if rng.random() < 0.5 else points
    return points
