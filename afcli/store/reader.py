"""Reading a store as a ``torch.utils.data.Dataset``.

The HDF5 handle is opened lazily in the process that reads (each DataLoader worker gets its own:
h5py handles must not cross a fork), in SWMR read mode when a writer is running, so a training job
can follow a store that is still being filled (:meth:`StoreDataset.refresh`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from afcli.errors import InputError
from afcli.store.schema import DONE, RAGGED, array_names, decode, open_store, require_finite, status_path


class StoreDataset(torch.utils.data.Dataset):
    """Samples of a store, each a dict of tensors named like the arrays (``"points/xyz"`` …).

    Args:
        path: the store file.
        arrays: array names to read, relative to the store root.
        require: only samples whose status for this stage is done (``None`` keeps every sample).
    """

    def __init__(self, path: str | Path, arrays: Sequence[str] = ("points/xyz",), require: str | None = "import"):
        self.path = Path(path)
        self.arrays = list(arrays)
        self.require = require
        self._file = None
        self._pid = None
        self._datasets: dict = {}
        with open_store(self.path) as f:
            missing = [name for name in self.arrays if name not in f]
            if missing:
                raise InputError(f"no array {missing[0]!r} in store (have: {', '.join(array_names(f))})", self.path)
            if require is not None and status_path(require) not in f:
                raise InputError(f"no stage {require!r} in store", self.path)
            self.ragged = f.attrs["layout"] == RAGGED
            self._per_point = {name: bool(f[name].attrs.get("per_point", False)) for name in self.arrays}
            self._load_index(f)

    def _load_index(self, f) -> None:
        if self.require is None:
            self.rows = np.arange(f["samples/id"].shape[0])
        else:
            self.rows = np.flatnonzero(f[status_path(self.require)][:] == DONE)
        self.ids = decode(f["samples/id"][:])
        self.categories = decode(f["samples/category"][:])
        self.offsets = f["points/offsets"][:] if self.ragged else None

    def _open(self) -> None:
        """Open this process's handle (DataLoader workers each open their own)."""
        if self._file is None or self._pid != os.getpid():
            self._file = open_store(self.path)
            self._pid = os.getpid()
            self._datasets = {name: self._file[name] for name in self.arrays}

    @property
    def file(self):
        self._open()
        return self._file

    @property
    def datasets(self) -> dict:
        self._open()
        return self._datasets

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._datasets = {}

    def refresh(self) -> int:
        """See samples a running writer has finished since the last look; returns the new length.

        The stage status is refreshed first: a writer flips a sample to done only after flushing
        its arrays, so arrays refreshed afterwards hold every sample the status calls done.
        """
        f = self.file
        if f.swmr_mode:
            names = [status_path(self.require)] if self.require else []
            names += ["samples/id", "samples/category"] + (["points/offsets"] if self.ragged else [])
            for name in names:
                f[name].refresh()
            for dataset in self._datasets.values():
                dataset.refresh()
        self._load_index(f)
        return len(self)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        row = int(self.rows[index])
        item: dict = {"index": row, "id": self.ids[row], "category": self.categories[row]}
        for name, dataset in self.datasets.items():
            if self.ragged and self._per_point[name]:
                value = dataset[int(self.offsets[row]) : int(self.offsets[row + 1])]
            else:
                value = dataset[row]
            if name.startswith("points/"):  # coordinates feed FPS and kNN, where Inf and NaN go unnoticed
                require_finite(value, name, self.ids[row], self.path)
            item[name] = torch.from_numpy(np.ascontiguousarray(value))
        return item

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"] = None
        state["_datasets"] = {}
        return state

    def collate(self, items: list[dict]) -> dict:
        """Stack fixed arrays; concatenate ragged per-point arrays and add ``offsets`` (B+1,)."""
        batch: dict = {key: [item[key] for item in items] for key in ("index", "id", "category")}
        batch["index"] = torch.tensor(batch["index"])
        for name in self.arrays:
            values = [item[name] for item in items]
            if self.ragged and self._per_point[name]:
                batch[name] = torch.cat(values)
                lengths = torch.tensor([0] + [len(v) for v in values])
                batch["offsets"] = torch.cumsum(lengths, 0)
            else:
                batch[name] = torch.stack(values)
        return batch
