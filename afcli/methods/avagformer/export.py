"""AVAGFormer for deployment: image and audio tokens in, function and dependency probabilities out,
traced to TorchScript or ONNX (afcli.export) and checked against PyTorch on the run's first training
pair. The graph has fixed shapes: ``image`` (1, 3, S, S) normalised with ImageNet's mean and std,
``audio`` (1, T, D) tokens of the run's audio encoder; ``masks`` (1, 2, S, S) = (function,
dependency) after a sigmoid. The audio encoder is not in the graph (VGGish / SoundNet-8 run apart,
as in the released model, which feeds precomputed log-mels)."""

from __future__ import annotations

from pathlib import Path

import torch


class Masks(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net.eval()

    def forward(self, image, audio):
        out = self.net(image, audio)
        return torch.sigmoid(torch.cat([out["function"], out["dependency"]], 1))


def export_model(run: Path, fmt: str, out: Path, num_points: int = 2048, store: str | Path | None = None) -> dict:
    from afcli.engine.checkpoint import load_checkpoint
    from afcli.engine.run import training_store
    from afcli.export import export_graph
    from afcli.methods.avagformer.audio import AUDIO_FILE
    from afcli.methods.avagformer.data import PairData
    from afcli.methods.avagformer.net import load_net

    run = Path(run)
    net, spec = load_net(run / "best" if (run / "best").is_dir() else run / "model")
    tokens = load_checkpoint(run / AUDIO_FILE, ("tokens",), what="AVAGFormer audio tokens")["tokens"]
    data = PairData(training_store(run, store, must_match=False), "train", tokens, spec["size"])
    pair = data[0]
    inputs = (pair["image"][None], pair["audio"][None])
    result = export_graph(Masks(net), inputs, ["image", "audio"], fmt, out, output="masks")
    return {**result, "checked_on": f"training pair 0 (sample row {int(data.samples[0])})"}
