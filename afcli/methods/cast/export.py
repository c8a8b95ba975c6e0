"""CAST for deployment: a heat-map wrapper with positional inputs, traced to TorchScript or ONNX
(afcli.export) and checked against PyTorch on a store sample with the run's own encoded prompts.

Exported CAST graphs have fixed shapes — 2048 points and the prompt token counts of the run's
encoders — and take ``points`` (B, N, 3) plus, per modality the model has, ``<kind>`` tokens
(B, T, D) and ``<kind>_mask`` (B, T); they return the sigmoid heat map (B, N).
"""

from __future__ import annotations

from pathlib import Path

import torch

from afcli.errors import InputError


class HeatMap(torch.nn.Module):
    """CAST with positional inputs and a sigmoid, as deployment runtimes want it."""

    def __init__(self, model, kinds: tuple[str, ...]):
        super().__init__()
        self.model, self.kinds = model.eval(), kinds

    def forward(self, points, *prompts):
        inputs = {}
        for k, kind in enumerate(self.kinds):
            inputs[kind], inputs[f"{kind}_mask"] = prompts[2 * k], prompts[2 * k + 1]
        return torch.sigmoid(self.model(points, **inputs))


def example_inputs(
    run: Path, num_points: int, store: Path | None = None
) -> tuple[tuple[torch.Tensor, ...], tuple[str, ...], str]:
    """A sample of ``store`` (default: the run's) and the run's first encoded prompt of each modality."""
    from afcli.engine.run import training_store
    from afcli.methods.cast.prompts import load_prompts
    from afcli.store import open_store

    prompts = load_prompts(run)
    store = training_store(run, store, must_match=False)
    with open_store(store) as f:
        if f["samples/id"].shape[0] == 0 or "points/xyz" not in f:
            raise InputError("no imported sample to check the export on", store)
        points = torch.from_numpy(f["points/xyz"][0][:num_points]).float()[None]
        sample = f["samples/id"][0].decode()
    if points.shape[1] != num_points:
        raise InputError(f"store samples have {points.shape[1]} points, the export takes {num_points}", store)
    kinds = tuple(kind for kind in ("text", "image", "audio") if prompts[kind] is not None)
    tensors = [points]
    for kind in kinds:
        tensors += [prompts[kind].tokens[:1].float(), prompts[kind].mask[:1]]
    return tuple(tensors), kinds, sample


def export_model(run: Path, fmt: str, out: Path, num_points: int = 2048, store: str | Path | None = None) -> dict:
    """``afcli export torchscript|onnx`` of a CAST run (afcli.export.export_run checked the format)."""
    from afcli.engine.run import saved_model
    from afcli.export import export_graph
    from afcli.models.cast import CAST

    model = CAST.from_pretrained(saved_model(run, "cast", "a CAST run or saved CAST model")).eval()
    inputs, kinds, sample = example_inputs(run, num_points, store)
    names = ["points"] + [name for kind in kinds for name in (kind, f"{kind}_mask")]
    return {**export_graph(HeatMap(model, kinds).eval(), inputs, names, fmt, out), "checked_on": sample}
