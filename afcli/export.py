"""``afcli export``: a run's model as TorchScript or ONNX for deployment (traced by its method's
exporter, afcli.methods.METHODS, and checked against PyTorch), heat maps as coloured PLY clouds."""

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


def export_run(
    run: str | Path, fmt: str, out: str | Path, num_points: int = 2048, store: str | Path | None = None
) -> dict:
    """A run's model as ``fmt``, by its method's exporter (afcli.methods.METHODS)."""
    from afcli.methods import load, method_of_run

    run, out = Path(run), Path(out)
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    if out.is_dir():
        raise InputError("--out is a folder; name the file to write", out)
    if fmt == "onnx":
        _onnx_runtime()  # before any work
    method = method_of_run(run)
    if method.exporter is None:
        raise InputError(f"afcli cannot export a {method.name} model yet", run)
    return load(method.exporter)(run, fmt, out, num_points, store)


def export_graph(
    wrapper: torch.nn.Module, inputs: tuple, names: list[str], fmt: str, out: Path, output: str = "heat"
) -> dict:
    """Trace ``wrapper`` on ``inputs`` (called ``names``; its one output called ``output``) into ``out``
    and check the exported graph against PyTorch: the largest absolute difference of their outputs."""
    onnxruntime = _onnx_runtime() if fmt == "onnx" else None
    with torch.no_grad():
        reference = wrapper(*inputs)  # with whichever ops backend the user has
    with written(out) as tmp, torch.no_grad(), traceable():
        if fmt == "torchscript":
            torch.jit.trace(wrapper, inputs, check_trace=False).save(str(tmp))
            exported = torch.jit.load(str(tmp))(*inputs)
        else:
            exported = _onnx(wrapper, inputs, names, output, tmp, onnxruntime)
    return {
        "out": str(out),
        "format": fmt,
        "inputs": {n: list(t.shape) for n, t in zip(names, inputs)},
        "max_abs_difference": float((exported - reference).abs().max()),
    }


def _onnx_runtime():
    """onnxruntime (and onnx, which torch's exporter imports), checked before any work."""
    require("onnx", "ONNX export")
    return require("onnxruntime", "ONNX export")


def _onnx(wrapper, inputs, names, output: str, path: Path, onnxruntime) -> torch.Tensor:
    torch.onnx.export(
        wrapper, inputs, str(path), input_names=names, output_names=[output], dynamo=False, opset_version=17
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
