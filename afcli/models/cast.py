"""CAST — Cross-modal Affordance Segmentation Transformer (cmat-cast-3d-affordance.md §3.3, Eq. 7–9,
Fig. 4), and the authors' code's version of it ("LAS", ../shared/reference/cmat-official-code.md §2),
as settings of one model. Prompt encoders (RoBERTa, DINOv3, MiniLM, …) live outside: CAST takes
their output tokens (B, T, D) with a padding mask.

- Geometric tokens: a Point-MAE encoder over all patches, no masking.
- Every input is projected to one ``width``; learned type embeddings mark the source —
  ``type_embeddings: modality`` (paper: point, text, image) or ``shared`` (code: point, prompt).
- A prompt is one vector per modality (paper: "a text feature vector", "an image feature vector")
  or all of an encoder's tokens (code) — both arrive as (B, T, D); T = 1 for vectors.
- ``null_prompt`` (paper): a learned token stands in for a missing modality, so one model takes text
  only, image only, or both (afcli accepts any non-empty subset at inference). A model trained with
  one encoder (LASO: text; PIAD, PIADv2: images) always fuses the other modality's null token, as the
  paper's single-modality benchmarks do. Without it (code) a model takes the modalities it was built
  for.
- ``fusion: patches`` (paper): [patch tokens ; prompt tokens] through L post-norm transformer
  blocks, then feature propagation (three-NN, 1/(d² + 1e-8)) to every point; ``fusion: points``
  (code): propagate the patch tokens to every point first, then fuse [point tokens ; prompt tokens].
- Head: per-point MLP width → hidden → hidden → 1 (ReLU, dropout); logits, sigmoid heat map.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from afcli.errors import InputError
from afcli.models.point_mae import BatchNorm1d, PointMAE, PointMAEConfig
from afcli.models.pretrained import PretrainedModel
from afcli.ops import three_nn_interpolate

FUSIONS = ("patches", "points")


def _encoder_config() -> PointMAEConfig:
    return PointMAEConfig(reconstruction="none")


@dataclass
class CASTConfig:
    backbone: PointMAEConfig = field(default_factory=_encoder_config)
    width: int = 256
    fusion: str = "patches"
    fusion_layers: int = 6
    fusion_heads: int = 8
    fusion_ffn: int = 512
    dropout: float = 0.1
    head_hidden: int = 128
    text_dim: int | None = 768  # RoBERTa-base; None: no text prompts
    image_dim: int | None = 768  # DINOv3 ViT-B/16; None: no image prompts
    audio_dim: int | None = None  # afcli: the sound of the action (afcli.audio encoders); None: none
    type_embeddings: str = "modality"
    null_prompt: bool = True

    def check(self) -> "CASTConfig":
        self.backbone.check()
        if self.backbone.reconstruction != "none":
            raise InputError("CAST's backbone is an encoder: backbone.reconstruction must be none")
        if self.fusion not in FUSIONS:
            raise InputError(f"fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        if self.type_embeddings not in ("modality", "shared"):
            raise InputError(f"type_embeddings must be modality or shared, got {self.type_embeddings!r}")
        if self.text_dim is None and self.image_dim is None and self.audio_dim is None:
            raise InputError("CAST needs a text, image or audio prompt encoder (text_dim / image_dim / audio_dim)")
        if self.width % self.fusion_heads:
            raise InputError(f"width {self.width} must divide by fusion_heads {self.fusion_heads}")
        return self


class Propagate(nn.Module):
    """PointNet++ feature propagation as the Point-MAE/CMAT code: three-NN with 1/(d² + 1e-8)
    weights, then two (Conv1d, BN, ReLU) layers."""

    def __init__(self, width: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Conv1d(width, width, 1),
            BatchNorm1d(width),
            nn.ReLU(inplace=True),
            nn.Conv1d(width, width, 1),
            BatchNorm1d(width),
            nn.ReLU(inplace=True),
        )

    def forward(self, points, centres, tokens):
        carried = three_nn_interpolate(points, centres, tokens, squared=True)
        return self.mlp(carried.transpose(1, 2)).transpose(1, 2)


class CAST(PretrainedModel, nn.Module):
    model_type = "cast"
    config_class = CASTConfig
    display_name = "CAST model"

    def __init__(self, config: CASTConfig):
        super().__init__()
        self.config = c = config.check()
        self.backbone = PointMAE(c.backbone)
        self.point_projection = nn.Linear(c.backbone.trans_dim, c.width)
        self.text_projection = nn.Linear(c.text_dim, c.width) if c.text_dim else None
        self.image_projection = nn.Linear(c.image_dim, c.width) if c.image_dim else None
        self.audio_projection = nn.Linear(c.audio_dim, c.width) if c.audio_dim else None
        # Text and image always have their type and null tokens (a model trained with one encoder
        # still fuses the other's null token); audio, afcli's addition, only in models that take it,
        # so that CAST models saved before it load unchanged.
        prompt_kinds = ["text", "image"] + (["audio"] if c.audio_dim else [])
        kinds = ["point", *prompt_kinds] if c.type_embeddings == "modality" else ["point", "prompt"]
        self.type_embedding = nn.ParameterDict(
            {kind: nn.Parameter(torch.randn(1, 1, c.width) * 0.02) for kind in kinds}
        )
        if c.null_prompt:
            self.null_token = nn.ParameterDict(
                {kind: nn.Parameter(torch.randn(1, 1, c.width) * 0.02) for kind in prompt_kinds}
            )
        self.propagate = Propagate(c.width)
        layer = nn.TransformerEncoderLayer(
            c.width, c.fusion_heads, c.fusion_ffn, c.dropout, activation="gelu", batch_first=True
        )
        self.fusion = nn.TransformerEncoder(
            layer, c.fusion_layers, norm=nn.LayerNorm(c.width), enable_nested_tensor=False
        )
        self.head = nn.Sequential(
            nn.Linear(c.width, c.head_hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(c.dropout),
            nn.Linear(c.head_hidden, c.head_hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(c.dropout),
            nn.Linear(c.head_hidden, 1),
        )
        for projection in (self.point_projection, self.text_projection, self.image_projection, self.audio_projection):
            if projection is not None:
                nn.init.xavier_uniform_(projection.weight)
                nn.init.zeros_(projection.bias)

    def _prompt(self, kind: str, tokens, mask, present, batch: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        projection = getattr(self, f"{kind}_projection")
        type_key = kind if self.config.type_embeddings == "modality" else "prompt"
        if tokens is None:
            if not self.config.null_prompt or kind not in self.null_token:
                return None
            null = self.null_token[kind].expand(batch, -1, -1) + self.type_embedding[type_key]
            return null, torch.zeros(batch, 1, dtype=torch.bool, device=null.device)
        if projection is None:
            raise InputError(f"this CAST has no {kind} prompt encoder ({kind}_dim is unset)")
        if tokens.dim() != 3 or tokens.shape[-1] != projection.in_features:
            raise InputError(f"{kind} prompt must be (B, T, {projection.in_features}), got {tuple(tokens.shape)}")
        padding = (
            torch.zeros(tokens.shape[:2], dtype=torch.bool, device=tokens.device) if mask is None else ~mask.bool()
        )
        projected = projection(tokens)
        if present is not None:  # per-sample null prompts: the null token first, the rest masked
            if not self.config.null_prompt:
                raise InputError("per-sample missing prompts need a model with null_prompt")
            absent = ~present.bool().view(-1, 1)
            first = torch.zeros_like(padding)
            first[:, 0] = True
            projected = torch.where(
                (absent & first).unsqueeze(-1), self.null_token[kind].to(projected.dtype), projected
            )
            padding = torch.where(absent, ~first, padding)
        return projected + self.type_embedding[type_key], padding

    def forward(
        self,
        points,
        text=None,
        text_mask=None,
        image=None,
        image_mask=None,
        text_present=None,
        image_present=None,
        audio=None,
        audio_mask=None,
        audio_present=None,
    ) -> torch.Tensor:
        """Per-point logits (B, N). ``text`` / ``image`` / ``audio``: prompt-encoder tokens (B, T, D)
        with masks (B, T), True = a real token; any may be None when the model has null prompts.
        ``*_present`` (B,) bool, optional: False swaps that sample's prompt for the null token
        (training with modality dropout; queries whose action makes no sound)."""
        if text is None and image is None and audio is None:
            raise InputError("CAST needs a prompt: text, image, audio or several")
        batch = points.shape[0]
        tokens, centres, _ = self.backbone.forward_features(points)
        geometry = self.point_projection(tokens)
        if self.config.fusion == "points":
            geometry = self.propagate(points, centres, geometry)
        prompts = [
            p
            for p in (
                self._prompt("text", text, text_mask, text_present, batch),
                self._prompt("image", image, image_mask, image_present, batch),
                self._prompt("audio", audio, audio_mask, audio_present, batch),
            )
            if p is not None
        ]
        sequence = torch.cat([geometry + self.type_embedding["point"]] + [p[0] for p in prompts], dim=1)
        padding = torch.cat(
            [torch.zeros(geometry.shape[:2], dtype=torch.bool, device=points.device)] + [p[1] for p in prompts], dim=1
        )
        fused = self.fusion(sequence, src_key_padding_mask=padding)[:, : geometry.shape[1]]
        if self.config.fusion == "patches":
            fused = self.propagate(points, centres, fused)
        return self.head(fused).squeeze(-1)

    # -- weights -----------------------------------------------------------------------------------
    def load_backbone(self, folder: str | Path) -> list[str]:
        """Take over a pre-trained Point-MAE's encoder (e.g. ``runs/cmat/model``); returns the
        reconstruction-head weights that were left behind. Architectures must match; the grouping
        (num_group, group_size) holds no weights and may differ — the CMAT code pre-trains with 256
        groups and fine-tunes with 64 or 128."""
        pretrained = PointMAE.from_pretrained(folder)
        mine, theirs = asdict(self.config.backbone), asdict(pretrained.config)
        different = [
            k
            for k in mine
            if k not in ("reconstruction", "centre_target", "mask_ratio", "drop_path", "num_group", "group_size")
            and mine[k] != theirs[k]
        ]
        if different:
            raise InputError(
                f"backbone {different[0]} is {theirs[different[0]]} in the checkpoint, {mine[different[0]]} here",
                folder,
            )
        state = pretrained.encoder_state()
        self.backbone.load_state_dict(state, strict=True)
        return sorted(set(pretrained.state_dict()) - set(state))
