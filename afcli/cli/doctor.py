"""``afcli doctor``: versions, devices and which backend each point op runs on."""

from __future__ import annotations

import importlib.metadata
import platform

from afcli.cli.common import JsonOption, apply_json, handle_errors
from afcli.console import emit, stdout, table

PACKAGES = ("torch", "numpy", "h5py", "torch-scatter", "torch-cluster", "transformers", "open_clip_torch", "timm", "trimesh", "typer", "rich")


def diagnose() -> dict:
    import h5py
    import torch

    from afcli import __version__
    from afcli.ops import report

    versions = {"python": platform.python_version(), "afcli": __version__}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions["hdf5"] = h5py.version.hdf5_version
    cuda = torch.cuda.is_available()
    return {
        "versions": versions,
        "torch_cuda": torch.version.cuda,
        "cuda_available": cuda,
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "ops": report(),
    }


@handle_errors
def doctor(json: JsonOption = False) -> None:
    """Print versions, CUDA devices and the backend (compiled or torch) of every point op."""
    apply_json(json)
    result = diagnose()

    def render(r: dict) -> None:
        stdout.print(table("versions", ["package", "version"], [(k, v or "not installed") for k, v in r["versions"].items()]))
        cuda = f"CUDA {r['torch_cuda']}" if r["torch_cuda"] else "CPU-only build"
        devices = ", ".join(r["devices"]) or "no GPU visible"
        stdout.print(f"torch: {cuda}; {devices}")
        stdout.print(table("point ops", ["op", "backend"], list(r["ops"].items())))

    emit(result, render)
