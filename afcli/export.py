"""``afcli export``: CAST as TorchScript or ONNX for deployment, heat maps as coloured PLY clouds.

Exported CAST graphs have fixed shapes — 2048 points and the prompt token counts of the run's
encoders — and take ``points`` (B, N, 3) plus, per modality the model has, ``<kind>`` tokens
(B, T, D) and ``<kind>_mask`` (B, T); they return the sigmoid heat map (B, N). Each export is checked
against the PyTorch model on a store sample with the run's own encoded prompts.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from afcli.errors import InputError
from afcli.extras import require
from afcli.files import make_folder, written
from afcli.ops.backend import pure_torch


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
    from afcli.finetune.cast import load_prompts
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
    kinds = tuple(kind for kind in ("text", "image") if prompts[kind] is not None)
    tensors = [points]
    for kind in kinds:
        tensors += [prompts[kind].tokens[:1].float(), prompts[kind].mask[:1]]
    return tuple(tensors), kinds, sample


FORMATS = ("torchscript", "onnx")


@contextmanager
def traceable():
    """Pure-PyTorch point ops and no fused Transformer fast path while tracing: both would put
    operators into the graph that ONNX cannot express and TorchScript files would need at load."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with pure_torch(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on Python control flow, fixed here by design
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def export_cast(
    run: str | Path, fmt: str, out: str | Path, num_points: int = 2048, store: str | Path | None = None
) -> dict:
    from afcli.eval.affordance import resolve_model
    from afcli.models.cast import CAST

    run, out = Path(run), Path(out)
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    if out.is_dir():
        raise InputError("--out is a folder; name the file to write", out)
    onnxruntime = _onnx_runtime() if fmt == "onnx" else None
    model = CAST.from_pretrained(resolve_model(run)).eval()
    inputs, kinds, sample = example_inputs(run, num_points, store)
    wrapper = HeatMap(model, kinds).eval()
    with torch.no_grad():
        reference = wrapper(*inputs)  # with whichever ops backend the user has
    names = ["points"] + [name for kind in kinds for name in (kind, f"{kind}_mask")]
    with written(out) as tmp, torch.no_grad(), traceable():
        if fmt == "torchscript":
            torch.jit.trace(wrapper, inputs, check_trace=False).save(str(tmp))
            exported = torch.jit.load(str(tmp))(*inputs)
        else:
            exported = _onnx(wrapper, inputs, names, tmp, onnxruntime)
    difference = float((exported - reference).abs().max())
    return {
        "out": str(out),
        "format": fmt,
        "inputs": {n: list(t.shape) for n, t in zip(names, inputs)},
        "checked_on": sample,
        "max_abs_difference": difference,
    }


def _onnx_runtime():
    """onnxruntime (and onnx, which torch's exporter imports), checked before any work."""
    require("onnx", "ONNX export")
    return require("onnxruntime", "ONNX export")


def _onnx(wrapper, inputs, names, path: Path, onnxruntime) -> torch.Tensor:
    torch.onnx.export(
        wrapper, inputs, str(path), input_names=names, output_names=["heat"], dynamo=False, opset_version=17
    )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {name: t.numpy() for name, t in zip(names, inputs)})[0])


def write_ply(path: Path, points: np.ndarray, colours: np.ndarray) -> None:
    """Binary little-endian PLY with float x, y, z and uchar red, green, blue."""
    vertex = np.empty(
        len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
    )
    vertex["x"], vertex["y"], vertex["z"] = points[:, 0], points[:, 1], points[:, 2]
    vertex["red"], vertex["green"], vertex["blue"] = colours[:, 0], colours[:, 1], colours[:, 2]
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )
    with written(path) as tmp, open(tmp, "wb") as handle:
        handle.write(header.encode("ascii"))
        handle.write(vertex.tobytes())


def export_ply(store: str | Path, predictions: str | Path, out: str | Path) -> dict:
    """One ``<query>.pred.ply`` and ``<query>.gt.ply`` per saved prediction (``afcli eval
    --save-predictions``), points coloured grey → red by the heat map."""
    from afcli.metrics.affordance import load_predictions
    from afcli.render.preview import heat_colours
    from afcli.store import open_store
    from afcli.store.queries import read_queries

    arrays = load_predictions(predictions)
    if "query" not in arrays:
        raise InputError("no 'query' array: write the file with afcli eval --save-predictions", predictions)
    out = Path(out)
    with open_store(store) as f:
        table = read_queries(f, store)
        row_of = {query_id: r for r, query_id in enumerate(table.id)}
        samples = []
        for query_id in arrays["query"].astype(str):  # every query checked before anything is written
            r = row_of.get(query_id)
            if r is None or table.sample[r] < 0:
                raise InputError(f"query {query_id} is not a paired query of this store", store)
            samples.append(int(table.sample[r]))
        points_per_sample = f["points/xyz"].shape[1]
        if points_per_sample != arrays["pred"].shape[1]:
            raise InputError(
                f"{arrays['pred'].shape[1]} predictions per query for {points_per_sample} points per sample",
                predictions,
            )
        make_folder(out)
        count = 0
        for i, (query_id, sample) in enumerate(zip(arrays["query"].astype(str), samples)):
            points = f["points/xyz"][sample]
            stem = query_id.replace("/", "_")
            for name in ("pred", "gt"):
                colours = (heat_colours(arrays[name][i]) * 255).round().astype(np.uint8)
                write_ply(out / f"{stem}.{name}.ply", points, colours)
                count += 1
    return {"out": str(out), "files": count}
