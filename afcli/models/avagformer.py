"""AVAGFormer (audio-visual affordance grounding; ../shared/papers/avagformer-audio-visual-affordance.md
§5): an image and the sound of an action → logits of the *function* region (what moves or is acted
on) and the *dependency* region (what supports or is held).

Image features of three scales (strides 8/16/32, from any backbone) → 1×1 conv + GroupNorm to 256 →
6-layer deformable encoder (:mod:`afcli.models.deformable`) → SimpleFPN to 128 → the
semantic-conditioned cross-modal mixer, once per scale and task (function, dependency) → 300 queries
from a 6-layer generator attending to the audio tokens → per task a 3-scale decoder (16 channels) and
a query-conditioned mask head (300 maps); the dependency branch attends to the mean function map
(mask-conditioned attention) → SE aggregation of the 300 maps and ×8 progressive upsampling.

Sizes and forms are those of the released code (../shared/reference/avagformer-official-code.md §1);
modules it builds but never calls (a transformer decoder, a stage-1 projection, FiLM layers, a second
audio projection) are left out. ``mixer_bias`` chooses how the mixer's attention bias is read:
- ``constant`` (released code, and Eq. 4 taken literally with m̄ ∈ R^{B×1}): one scalar per head from
  (prompt, mean vision magnitude, mean audio magnitude), which softmax cancels — it is kept, with its
  parameters, but only the gates (Eq. 6) condition on the task;
- ``pairwise`` (afcli's reading of "adaptive attention biases" that can act): the same network fed each
  vision token's and each audio token's own magnitude, so the bias varies per query–key pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from afcli.models.deformable import DeformableEncoder
from afcli.models.pretrained import PretrainedModel

TASKS = ("function", "dependency")
MIXER_BIASES = ("constant", "pairwise")


@dataclass
class AVAGFormerConfig:
    image_channels: tuple[int, ...] = (128, 320, 512)  # PVT-v2-b5 stages 2-4
    audio_dim: int = 128  # VGGish
    dim: int = 256
    encoder_layers: int = 6
    heads: int = 8
    points: int = 4
    ffn: int = 2048
    dropout: float = 0.1
    fpn_dim: int = 128
    mixer_heads: int = 8
    mixer_bias: str = "constant"
    queries: int = 300
    generator_layers: int = 6
    generator_hidden: int = 1024
    decoder_dim: int = 16
    decoder_heads: int = 4
    se_dim: int = 64
    upsample_stages: int = 3  # stride 8 → full resolution

    def check(self) -> None:
        if self.mixer_bias not in MIXER_BIASES:
            raise ValueError(f"mixer_bias must be one of {', '.join(MIXER_BIASES)}, got {self.mixer_bias!r}")


class SimpleFPN(nn.Module):
    def __init__(self, levels: int, dim: int, out: int):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(dim, out, 1) for _ in range(levels))
        self.output = nn.ModuleList(nn.Conv2d(out, out, 3, padding=1) for _ in range(levels))

    def forward(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        lateral = [conv(m) for conv, m in zip(self.lateral, maps)]
        for i in range(len(lateral) - 2, -1, -1):
            lateral[i] = lateral[i] + F.interpolate(lateral[i + 1], size=lateral[i].shape[-2:], mode="bilinear")
        return [conv(m) for conv, m in zip(self.output, lateral)]


class GatedCrossAttention(nn.Module):
    """One direction of the fusion block: queries attend to keys with a bias from (task prompt,
    vision magnitude, audio magnitude) added to the logits (Eq. 4-5), and a task gate mixes the result
    with the queries (Eq. 6). No norm, no FFN."""

    def __init__(self, dim: int, heads: int, pairwise: bool, queries_are_vision: bool):
        super().__init__()
        self.heads, self.scale, self.pairwise, self.queries_are_vision = (
            heads,
            (dim // heads) ** -0.5,
            pairwise,
            queries_are_vision,
        )
        self.q, self.k, self.v, self.out, self.gate = (nn.Linear(dim, dim) for _ in range(5))
        self.bias = nn.Sequential(nn.Linear(dim + 2, dim), nn.ReLU(), nn.Linear(dim, heads))

    def forward(self, queries, keys, prompt, query_norm, key_norm):
        batch, nq, dim = queries.shape
        split = lambda x: x.view(batch, x.shape[1], self.heads, -1).transpose(1, 2)  # noqa: E731
        logits = split(self.q(queries)) @ split(self.k(keys)).transpose(-1, -2) * self.scale
        attended = (logits + self._bias(prompt, query_norm, key_norm)).softmax(-1) @ split(self.v(keys))
        fused = self.out(attended.transpose(1, 2).reshape(batch, nq, dim))
        gate = torch.sigmoid(self.gate(prompt))[:, None]
        return gate * fused + (1 - gate) * queries

    def _bias(self, prompt, query_norm, key_norm) -> torch.Tensor:
        """(B, heads, 1 or Nq, 1 or Nk); the magnitudes enter as (vision, audio), as released."""
        if self.pairwise:
            nq, nk = query_norm.shape[1], key_norm.shape[1]
            q, k = query_norm[:, :, None, None].expand(-1, nq, nk, 1), key_norm[:, None, :, None].expand(-1, nq, nk, 1)
            prompt = prompt[:, None, None].expand(-1, nq, nk, -1)
        else:
            q, k = query_norm.mean(1, keepdim=True), key_norm.mean(1, keepdim=True)
        vision, audio = (q, k) if self.queries_are_vision else (k, q)
        bias = self.bias(torch.cat([prompt, vision, audio], -1))
        return bias.permute(0, 3, 1, 2) if self.pairwise else bias[:, :, None, None]


class ConditionedFusion(nn.Module):
    """The SC2 fusion block: audio attends to vision, then vision to the updated audio."""

    def __init__(self, dim: int, heads: int, bias: str):
        super().__init__()
        self.audio_from_vision = GatedCrossAttention(dim, heads, bias == "pairwise", queries_are_vision=False)
        self.vision_from_audio = GatedCrossAttention(dim, heads, bias == "pairwise", queries_are_vision=True)

    def forward(self, vision, audio, prompt_vision, prompt_audio):
        v_norm, a_norm = vision.norm(dim=-1), audio.norm(dim=-1)  # (B, Nv), (B, T): magnitudes of the inputs
        audio = self.audio_from_vision(audio, vision, prompt_audio, a_norm, v_norm)
        return self.vision_from_audio(vision, audio, prompt_vision, v_norm, a_norm), audio


class Mixer(nn.Module):
    """The cross-modal mixer: per scale, vision 128 → 256, one shared fusion block per task with that
    task's prompts, back to 128. Returns {task: ([vision maps], [audio tokens])}."""

    def __init__(self, config: AVAGFormerConfig, levels: int):
        super().__init__()
        self.vision_in = nn.ModuleList(nn.Linear(config.fpn_dim, config.dim) for _ in range(levels))
        self.vision_out = nn.ModuleList(nn.Linear(config.dim, config.fpn_dim) for _ in range(levels))
        self.prompt_vision, self.prompt_audio = nn.Embedding(2, config.dim), nn.Embedding(2, config.dim)
        self.fusion = ConditionedFusion(config.dim, config.mixer_heads, config.mixer_bias)

    def forward(self, maps: list[torch.Tensor], audio: torch.Tensor) -> dict:
        out = {}
        for task_index, task in enumerate(TASKS):
            index = torch.full((audio.shape[0],), task_index, dtype=torch.long, device=audio.device)
            pv, pa = self.prompt_vision(index), self.prompt_audio(index)
            visions, audios = [], []
            for level, m in enumerate(maps):
                batch, _, h, w = m.shape
                vision, mixed_audio = self.fusion(self.vision_in[level](m.flatten(2).transpose(1, 2)), audio, pv, pa)
                visions.append(self.vision_out[level](vision).transpose(1, 2).reshape(batch, -1, h, w))
                audios.append(mixed_audio)
            out[task] = (visions, audios)
        return out


class QueryGenerator(nn.Module):
    """Learned queries that self-attend, cross-attend to the audio tokens and pass an FFN, ``layers``
    times (post-norm, no attention biases, Xavier init)."""

    def __init__(self, dim: int, queries: int, layers: int, heads: int, hidden: int):
        super().__init__()
        self.query = nn.Embedding(queries, dim)
        self.self_attn = nn.ModuleList(
            nn.MultiheadAttention(dim, heads, bias=False, batch_first=True) for _ in range(layers)
        )
        self.cross_attn = nn.ModuleList(
            nn.MultiheadAttention(dim, heads, bias=False, batch_first=True) for _ in range(layers)
        )
        self.ffn = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)) for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3 * layers))
        for parameter in self.parameters():
            if parameter.dim() > 1:
                nn.init.xavier_uniform_(parameter)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        q = self.query.weight[None].expand(tokens.shape[0], -1, -1)
        for i, (self_attn, cross_attn, ffn) in enumerate(zip(self.self_attn, self.cross_attn, self.ffn)):
            q = self.norms[3 * i](q + self_attn(q, q, q, need_weights=False)[0])
            q = self.norms[3 * i + 1](q + cross_attn(q, tokens, tokens, need_weights=False)[0])
            q = self.norms[3 * i + 2](q + ffn(q))
        return q


class ScaleDecoder(nn.Module):
    """Per scale: vision 128 → 16 attends to that scale's audio tokens (256 → 16), concat, 3×3 conv,
    GroupNorm, ReLU; the scales summed at the finest resolution."""

    def __init__(self, config: AVAGFormerConfig, levels: int):
        super().__init__()
        d = config.decoder_dim
        self.vision = nn.ModuleList(nn.Conv2d(config.fpn_dim, d, 1) for _ in range(levels))
        self.audio = nn.ModuleList(nn.Linear(config.dim, d) for _ in range(levels))
        self.attention = nn.ModuleList(
            nn.MultiheadAttention(d, config.decoder_heads, batch_first=True) for _ in range(levels)
        )
        self.fuse = nn.ModuleList(
            nn.Sequential(nn.Conv2d(2 * d, d, 3, padding=1), nn.GroupNorm(4, d), nn.ReLU()) for _ in range(levels)
        )

    def forward(self, maps: list[torch.Tensor], audios: list[torch.Tensor]) -> torch.Tensor:
        out = None
        for level, (m, a) in enumerate(zip(maps, audios)):
            v = self.vision[level](m)
            batch, d, h, w = v.shape
            tokens = v.flatten(2).transpose(1, 2)
            k = self.audio[level](a)
            attended = (
                self.attention[level](tokens, k, k, need_weights=False)[0].transpose(1, 2).reshape(batch, d, h, w)
            )
            x = self.fuse[level](torch.cat([v, attended], 1))
            out = x if out is None else out + F.interpolate(x, size=out.shape[-2:], mode="bilinear")
        return out


class MaskHead(nn.Module):
    """One map per query: the features plus the query's 16-d vector everywhere, 3×3 conv, ReLU, 1×1."""

    def __init__(self, dim: int, d: int):
        super().__init__()
        self.query = nn.Linear(dim, d)
        self.conv = nn.Sequential(nn.Conv2d(d, d, 3, padding=1), nn.ReLU(), nn.Conv2d(d, 1, 1))

    def forward(self, features: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        batch, d, h, w = features.shape
        x = features[:, None] + self.query(queries)[..., None, None]  # (B, Q, d, h, w)
        return self.conv(x.flatten(0, 1)).view(batch, -1, h, w)


class MaskConditionedAttention(nn.Module):
    """Dependency features attend over all positions of the mean function map (HW × HW), residual."""

    def __init__(self, d: int):
        super().__init__()
        self.q, self.k, self.v, self.out = (
            nn.Conv2d(d, d, 1),
            nn.Conv2d(1, d, 1),
            nn.Conv2d(1, d, 1),
            nn.Conv2d(d, d, 1),
        )
        self.scale = d**-0.5

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, d, h, w = features.shape
        q, k, v = self.q(features).flatten(2), self.k(mask).flatten(2), self.v(mask).flatten(2)
        attention = (q.transpose(1, 2) @ k * self.scale).softmax(-1)  # (B, HW, HW)
        return features + self.out((v @ attention.transpose(1, 2)).view(batch, d, h, w))


class SegmentationHead(nn.Module):
    """The query maps as channels → 1×1 to 64, BN, ReLU, squeeze-excitation, 1×1 to one map → ``stages``
    × (3×3 conv doubling channels, BN, ReLU, bilinear ×2) → 1×1 to logits."""

    def __init__(self, queries: int, se_dim: int, stages: int):
        super().__init__()
        self.compress = nn.Sequential(nn.Conv2d(queries, se_dim, 1), nn.BatchNorm2d(se_dim), nn.ReLU())
        self.excite = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(se_dim, se_dim // 8, 1),
            nn.ReLU(),
            nn.Conv2d(se_dim // 8, se_dim, 1),
            nn.Sigmoid(),
        )
        self.squeeze = nn.Conv2d(se_dim, 1, 1)
        self.up = nn.ModuleList(
            nn.Sequential(nn.Conv2d(2**i, 2 ** (i + 1), 3, padding=1), nn.BatchNorm2d(2 ** (i + 1)), nn.ReLU())
            for i in range(stages)
        )
        self.out = nn.Conv2d(2**stages, 1, 1)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        x = self.compress(maps)
        x = self.squeeze(x * self.excite(x))
        for stage in self.up:
            x = F.interpolate(stage(x), scale_factor=2, mode="bilinear")
        return self.out(x)


class AVAGFormer(PretrainedModel, nn.Module):
    model_type = "avagformer"
    config_class = AVAGFormerConfig
    display_name = "AVAGFormer head"

    def __init__(self, config: AVAGFormerConfig | None = None):
        super().__init__()
        self.config = config = config or AVAGFormerConfig()
        config.check()
        levels = len(config.image_channels)
        self.in_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, config.dim, 1), nn.GroupNorm(32, config.dim)) for c in config.image_channels
        )
        self.encoder = DeformableEncoder(
            config.dim, levels, config.encoder_layers, config.heads, config.points, config.ffn, config.dropout
        )
        self.fpn = SimpleFPN(levels, config.dim, config.fpn_dim)
        self.audio_proj = nn.Linear(config.audio_dim, config.dim)
        self.mixer = Mixer(config, levels)
        self.generator = QueryGenerator(
            config.dim, config.queries, config.generator_layers, config.heads, config.generator_hidden
        )
        self.learnable_query = nn.Embedding(config.queries, config.dim)
        self.decoders = nn.ModuleDict({task: ScaleDecoder(config, levels) for task in TASKS})
        self.mask_heads = nn.ModuleDict({task: MaskHead(config.dim, config.decoder_dim) for task in TASKS})
        self.mca = MaskConditionedAttention(config.decoder_dim)
        self.heads = nn.ModuleDict(
            {task: SegmentationHead(config.queries, config.se_dim, config.upsample_stages) for task in TASKS}
        )

    def forward(self, image_maps: list[torch.Tensor], audio: torch.Tensor) -> dict[str, torch.Tensor]:
        """Backbone maps [(B, C_l, H_l, W_l)] finest first and audio embeddings (B, T, audio_dim) →
        ``function`` / ``dependency`` logits (B, 1, 8·H_0, 8·W_0) and ``function_queries`` /
        ``dependency_queries`` (B, Q, H_0, W_0) for the auxiliary loss."""
        maps = self.fpn(self.encoder([proj(m) for proj, m in zip(self.in_proj, image_maps)]))
        audio = self.audio_proj(audio)
        mixed = self.mixer(maps, audio)
        learned = self.learnable_query.weight[None]
        out = {}
        for task in TASKS:
            visions, audios = mixed[task]
            queries = self.generator(torch.cat([audio, *audios], 1)) + learned
            features = self.decoders[task](visions, audios)
            if task == "dependency":
                features = self.mca(features, out["function_queries"].mean(1, keepdim=True))
            out[f"{task}_queries"] = self.mask_heads[task](features, queries)
            out[task] = self.heads[task](out[f"{task}_queries"])
        return out
