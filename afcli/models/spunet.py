"""Sparse-voxel U-Nets on afcli.ops.sparse (either backend; weights load into both):

- ``SpUNet`` — Pointcept's ``SpUNet-v1m1``, the MinkUNet34C layout SOLE (Res16UNet34C) and MPEC's
  fine-tuning use: stem SubM k5 → 32; four stages of (SparseConv k2 s2 + BasicBlocks) with channels
  (32, 64, 128, 256) × layers (2, 3, 4, 6); four decoder stages (SparseInverseConv k2 + concat skip +
  BasicBlocks) with channels (256, 128, 96, 96) × (2, 2, 2, 2); BatchNorm eps 1e-3, momentum 0.01.
- ``SparseUNetIndoor`` — RegionPLC's SPUNet16/32 (PointGroup's UBlock), MPEC's OV-SemSeg encoder:
  input SubM k3 → m, a U of widths [m, 2m, …, 7m] with 2 pre-activation residual blocks per level on
  each side, output BN + ReLU; BatchNorm eps 1e-4, momentum 0.1.

Both return a :class:`SparseOutput`: the final per-voxel features and the decoder's per-level tensors,
coarse to fine (SpUNet: strides 16, 8, 4, 2, 1 with 256, 256, 128, 96, 96 channels — SOLE's 5-level
pyramid; ``SpUNet.levels`` starts with the bottleneck).
(../shared/reference/sole-mpec.md §1.1, §2.2, §2.3.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from afcli.config import check_numbers
from afcli.errors import InputError
from afcli.models.pretrained import PretrainedModel
from afcli.ops.sparse import (
    SparseConv3d,
    SparseInverseConv3d,
    SparseModule,
    SparseSequential,
    SparseTensor,
    SubMConv3d,
)


@dataclass
class SparseOutput:
    features: torch.Tensor  # (M, C) at the input voxels, in their order
    levels: list[SparseTensor]  # decoder outputs, coarse to fine


class BasicBlock(SparseModule):
    """Pointcept's residual block: SubM3-BN-ReLU-SubM3-BN, plus the input (1×1 + BN when widths differ)."""

    def __init__(self, in_channels: int, channels: int, eps: float, momentum: float, indice_key: str):
        super().__init__()
        norm = lambda c: nn.BatchNorm1d(c, eps=eps, momentum=momentum)  # noqa: E731
        self.proj = (
            None if in_channels == channels else SparseSequential(SubMConv3d(in_channels, channels, 1), norm(channels))
        )
        self.conv1 = SubMConv3d(in_channels, channels, 3, indice_key=indice_key)
        self.bn1 = norm(channels)
        self.conv2 = SubMConv3d(channels, channels, 3, indice_key=indice_key)
        self.bn2 = norm(channels)

    def forward(self, x: SparseTensor) -> SparseTensor:
        out = self.conv1(x)
        out = out.replace_feature(torch.relu(self.bn1(out.features)))
        out = self.conv2(out)
        residual = x.features if self.proj is None else self.proj(x).features
        return out.replace_feature(torch.relu(self.bn2(out.features) + residual))


@dataclass
class SpUNetConfig:
    in_channels: int = 6
    num_classes: int = 0  # 0: no final 1×1 classifier, features of the last decoder stage
    base_channels: int = 32
    channels: tuple[int, ...] = (32, 64, 128, 256, 256, 128, 96, 96)
    layers: tuple[int, ...] = (2, 3, 4, 6, 2, 2, 2, 2)
    bn_eps: float = 1e-3
    bn_momentum: float = 0.01

    def check(self) -> "SpUNetConfig":
        check_numbers(self)
        if len(self.channels) != len(self.layers) or len(self.channels) % 2 or not self.channels:
            raise InputError("model.channels and model.layers must have the same even length")
        if min(self.channels) < 1 or min(self.layers) < 1 or self.in_channels < 1 or self.base_channels < 1:
            raise InputError("model channels and layers must be positive")
        return self

    @property
    def out_channels(self) -> int:
        return self.num_classes or self.channels[-1]


class SpUNet(nn.Module, PretrainedModel):
    model_type = "spunet"
    config_class = SpUNetConfig
    display_name = "SpUNet"

    def __init__(self, config: SpUNetConfig):
        super().__init__()
        self.config = c = config.check()
        norm = lambda ch: nn.BatchNorm1d(ch, eps=c.bn_eps, momentum=c.bn_momentum)  # noqa: E731
        block = lambda i, o, key: BasicBlock(i, o, c.bn_eps, c.bn_momentum, key)  # noqa: E731
        stages = len(c.layers) // 2
        self.stem = SparseSequential(
            SubMConv3d(c.in_channels, c.base_channels, 5, indice_key="stem"), norm(c.base_channels), nn.ReLU()
        )
        self.down, self.enc, self.up, self.dec = (nn.ModuleList() for _ in range(4))
        enc_channels, dec_channels = c.base_channels, c.channels[-1]
        for s in range(stages):
            self.down.append(
                SparseSequential(
                    SparseConv3d(enc_channels, c.channels[s], 2, 2, indice_key=f"spconv{s + 1}"),
                    norm(c.channels[s]),
                    nn.ReLU(),
                )
            )
            self.enc.append(
                SparseSequential(*(block(c.channels[s], c.channels[s], f"subm{s + 1}") for _ in range(c.layers[s])))
            )
            up_in = c.channels[len(c.channels) - s - 2]
            self.up.append(
                SparseSequential(
                    SparseInverseConv3d(up_in, dec_channels, 2, indice_key=f"spconv{s + 1}"),
                    norm(dec_channels),
                    nn.ReLU(),
                )
            )
            depth = c.layers[len(c.channels) - s - 1]
            self.dec.append(
                SparseSequential(
                    *(
                        block(dec_channels + enc_channels if i == 0 else dec_channels, dec_channels, f"subm{s}")
                        for i in range(depth)
                    )
                )
            )
            enc_channels, dec_channels = c.channels[s], c.channels[len(c.channels) - s - 2]
        self.final = SubMConv3d(c.channels[-1], c.num_classes, 1, bias=True) if c.num_classes else None

    def forward(self, x: SparseTensor) -> SparseOutput:
        x = self.stem(x)
        skips = [x]
        for down, enc in zip(self.down, self.enc):
            x = enc(down(x))
            skips.append(x)
        x = skips.pop()
        levels = [x]
        for s in reversed(range(len(self.up))):
            x = self.up[s](x)
            skip = skips.pop()
            x = self.dec[s](x.replace_feature(torch.cat([x.features, skip.features], 1)))
            levels.append(x)
        features = self.final(x).features if self.final is not None else x.features
        return SparseOutput(features, levels)


class ResidualBlock(SparseModule):
    """PointGroup's pre-activation block: BN-ReLU-SubM3-BN-ReLU-SubM3, plus the input (1×1 when widths differ)."""

    def __init__(self, in_channels: int, channels: int, eps: float, momentum: float, indice_key: str):
        super().__init__()
        norm = lambda ch: nn.BatchNorm1d(ch, eps=eps, momentum=momentum)  # noqa: E731
        self.identity = None if in_channels == channels else SubMConv3d(in_channels, channels, 1)
        self.branch = SparseSequential(
            norm(in_channels),
            nn.ReLU(),
            SubMConv3d(in_channels, channels, 3, indice_key=indice_key),
            norm(channels),
            nn.ReLU(),
            SubMConv3d(channels, channels, 3, indice_key=indice_key),
        )

    def forward(self, x: SparseTensor) -> SparseTensor:
        out = self.branch(x)
        identity = x.features if self.identity is None else self.identity(x).features
        return out.replace_feature(out.features + identity)


class UBlock(SparseModule):
    def __init__(self, widths: list[int], reps: int, eps: float, momentum: float, level: int = 1):
        super().__init__()
        norm = lambda ch: nn.BatchNorm1d(ch, eps=eps, momentum=momentum)  # noqa: E731
        block = lambda i, o: ResidualBlock(i, o, eps, momentum, f"subm{level}")  # noqa: E731
        self.blocks = SparseSequential(*(block(widths[0], widths[0]) for _ in range(reps)))
        self.inner = None
        if len(widths) > 1:
            self.conv = SparseSequential(
                norm(widths[0]), nn.ReLU(), SparseConv3d(widths[0], widths[1], 2, 2, indice_key=f"spconv{level}")
            )
            self.inner = UBlock(widths[1:], reps, eps, momentum, level + 1)
            self.deconv = SparseSequential(
                norm(widths[1]), nn.ReLU(), SparseInverseConv3d(widths[1], widths[0], 2, indice_key=f"spconv{level}")
            )
            self.tail = SparseSequential(*(block(widths[0] * (2 - i), widths[0]) for i in range(reps)))

    def forward(self, x: SparseTensor, levels: list[SparseTensor]) -> SparseTensor:
        out = self.blocks(x)
        if self.inner is None:
            levels.append(out)
            return out
        decoded = self.deconv(self.inner(self.conv(out), levels))
        out = self.tail(out.replace_feature(torch.cat([out.features, decoded.features], 1)))
        levels.append(out)
        return out


@dataclass
class SparseUNetIndoorConfig:
    in_channels: int = 6  # RGB + xyz
    width: int = 16  # m: 16 = SPUNet16, 32 = SPUNet32
    num_levels: int = 7  # widths m, 2m, …, 7m
    block_reps: int = 2
    bn_eps: float = 1e-4
    bn_momentum: float = 0.1

    def check(self) -> "SparseUNetIndoorConfig":
        check_numbers(self)
        if min(self.in_channels, self.width, self.num_levels, self.block_reps) < 1:
            raise InputError("model in_channels, width, num_levels and block_reps must be positive")
        return self

    @property
    def out_channels(self) -> int:
        return self.width


class SparseUNetIndoor(nn.Module, PretrainedModel):
    model_type = "sparse-unet-indoor"
    config_class = SparseUNetIndoorConfig
    display_name = "SparseUNetIndoor"

    def __init__(self, config: SparseUNetIndoorConfig):
        super().__init__()
        self.config = c = config.check()
        self.input_conv = SubMConv3d(c.in_channels, c.width, 3, indice_key="subm1")
        widths = [c.width * (i + 1) for i in range(c.num_levels)]
        self.unet = UBlock(widths, c.block_reps, c.bn_eps, c.bn_momentum)
        self.output = nn.Sequential(nn.BatchNorm1d(c.width, eps=c.bn_eps, momentum=c.bn_momentum), nn.ReLU())

    def forward(self, x: SparseTensor) -> SparseOutput:
        levels: list[SparseTensor] = []
        out = self.unet(self.input_conv(x), levels)
        return SparseOutput(self.output(out.features), levels)


BACKBONES = {"spunet": SpUNet, "sparse-unet-indoor": SparseUNetIndoor}
