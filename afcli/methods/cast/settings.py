"""CAST fine-tuning settings: CMAT Stage 3, prompt-driven affordance segmentation on a store's queries.

The defaults are the paper's recipe (cmat-cast-3d-affordance.md §4.1: RoBERTa / DINOv3 ViT-B frozen,
L = 6, backbone lr 1e-5 and new modules 1e-4, focal 1.0 + dice 1.0, 100 epochs, batch 16); the
authors' code is ``recipes/cast/*-official.yaml``. Where the paper is silent afcli takes the code's
value and says so: weight decay 0.01, cosine to 1e-6 per epoch without warm-up, no clipping (the code
clips at 1.0: official recipes set ``grad_clip``).

With ``--gpus N`` each process takes 1/N of every global batch; the dice term is computed over each
process's share, as in the authors' DDP code, so N processes do not replay one process exactly.

Model selection uses the ``val`` split (the best validation aIoU is exported to ``best/``); the
official code selects on test, afcli does not. Prompts are encoded once, before training, into
``prompts.pt`` in the run directory (frozen encoders, as the paper), or every step with
``prompts.online`` (the official code's dropout, fine-tuned blocks and image augmentation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from afcli.audio.logmel import PADDING
from afcli.config import check_numbers
from afcli.engine.trainer import OptimSettings
from afcli.errors import InputError
from afcli.models.cast import CASTConfig
from afcli.runtime import pick_device

AUGMENTATIONS = ("none", "laso", "piad")
PROMPT_KINDS = ("text", "image", "audio")
TOKEN_DTYPES = ("float16", "float32")
IMAGE_AUGMENTATIONS = ("none", "piad")


@dataclass
class PromptSettings:
    text: str | None = "roberta-base"  # None: no text prompts
    text_weights: str | None = None
    text_pool: str = "mean"  # mean / cls: one vector (paper); tokens: every token state (code)
    max_length: int = 128
    image: str | None = None  # a 2D teacher, e.g. dinov3:vitb16 (paper), dinov2:vitb14 (code, PIADv2)
    image_weights: str | None = None
    image_pool: str = "mean"
    # How an image prompt is brought to the encoder's square input: bilinear (afcli, the DINOv3
    # processor) or bicubic (PIL's default resize in the CMAT/IAGNet loaders); antialiased either way.
    resize: str = "bilinear"
    token_dtype: str = "float16"  # the encoded-prompt cache: float16 (half the size) or float32 (CMAT code)
    # Training encodes each batch's prompts afresh (``online``) instead of reading the encode-once
    # cache — the default, exact for frozen encoders fed fixed inputs. The official-code settings
    # below change the encoder or its input per step and need it; validation and evaluation
    # encode the fixed val / test prompts once with the run's (fine-tuned) encoder.
    online: bool = False
    text_dropout: bool = False  # text encoder in train mode while training (CMAT code on LASO: RoBERTa's dropout on)
    image_finetune_blocks: int = 0  # train the image encoder's last k blocks, + DINOv3 post-LayerNorm (code: 2)
    image_augment: str = "none"  # piad: box-preserving random crop + ColorJitter(0.1 x 4) (PIAD training images)
    lr_scale: float = 0.1  # fine-tuned image-encoder parts at lr_scale x optim.lr (code: 0.1)
    drop: float = 0.0  # per training sample, chance that one present modality becomes the null token
    # afcli's third modality: the sound of the action (/queries/audio), tokens of an afcli.audio
    # encoder (soundnet8 offline, vggish), one per 0.96 s; queries without a sound get the null token.
    audio: str | None = None
    audio_weights: str | None = None
    audio_segments: int = 2
    audio_padding: str = "repeat"  # afcli.audio.logmel.PADDING


@dataclass
class CASTData:
    store: str | None = None
    augment: str = "none"  # laso: y-rotation, jitter 0.01, scale 0.8–1.2; piad: jitter 0.01, 50 % z-rotation
    workers: int = 0


@dataclass
class CASTLossSettings:
    focal_weight: float = 1.0
    dice_weight: float = 1.0


@dataclass
class CASTSettings:
    path_settings: ClassVar[tuple[str, ...]] = ("backbone",)  # made absolute when a run records them
    model: CASTConfig = field(default_factory=CASTConfig)
    backbone: str | None = None  # a CMAT run (or saved Point-MAE); None: from scratch
    prompts: PromptSettings = field(default_factory=PromptSettings)
    data: CASTData = field(default_factory=CASTData)
    loss: CASTLossSettings = field(default_factory=CASTLossSettings)
    optim: OptimSettings = field(default_factory=lambda: OptimSettings(lr=1e-4, weight_decay=0.01, warmup_epochs=0))
    backbone_lr_scale: float = 0.1  # paper 1e-5 / 1e-4; code 0.2
    grad_clip: float | None = None
    # Before each validation, re-estimate BatchNorm statistics over this many training batches
    # ("precise BN"). 0 (paper, code): keep the running averages, which is right for long runs. Short
    # runs need it: running variances start at 1 while Point-MAE's first BatchNorm sees activations
    # of variance ~1e-5, so the running average needs 100+ steps to come down, and until then
    # eval-mode patch embeddings are shrunk ~15x and the heat maps come out flat.
    precise_bn_batches: int = 0
    epochs: int = 100
    batch_size: int = 16
    val_batch_size: int = 16
    # Passes over seeded point orders averaged when the run is scored (afcli eval; --votes overrides):
    # LASO's own evaluator averages 3, IAGNet's / GREAT's and the CMAT code's take 1.
    votes: int = 1
    seed: int = 0
    device: str = "auto"
    amp: bool = True

    def check(self) -> "CASTSettings":
        check_numbers(self)
        self.optim.check()
        if self.data.store is None:
            raise InputError("no store given (--store S.h5)")
        if self.data.augment not in AUGMENTATIONS:
            raise InputError(f"data.augment must be one of {', '.join(AUGMENTATIONS)}")
        if self.prompts.resize not in ("bilinear", "bicubic") or self.prompts.token_dtype not in TOKEN_DTYPES:
            raise InputError(
                f"prompts.resize must be bilinear or bicubic and prompts.token_dtype one of {', '.join(TOKEN_DTYPES)}"
            )
        p = self.prompts
        if p.image_augment not in IMAGE_AUGMENTATIONS or p.image_finetune_blocks < 0:
            raise InputError(f"prompts.image_augment must be one of {', '.join(IMAGE_AUGMENTATIONS)}")
        per_step = [
            name
            for name, on in (
                ("text_dropout", p.text_dropout),
                ("image_finetune_blocks", p.image_finetune_blocks),
                ("image_augment", p.image_augment != "none"),
            )
            if on
        ]
        if per_step and not p.online:
            raise InputError(f"prompts.{per_step[0]} changes prompts every step: it needs prompts.online true")
        orphan = next((name for name in per_step if not (p.text if name == "text_dropout" else p.image)), None)
        if orphan:
            raise InputError(f"prompts.{orphan} needs that modality's encoder")
        encoders = [kind for kind in PROMPT_KINDS if getattr(self.prompts, kind)]
        if not encoders:
            raise InputError("CAST needs a text, image or audio prompt encoder (prompts.text / image / audio)")
        if self.prompts.drop and not (self.model.null_prompt and len(encoders) > 1):
            raise InputError("prompts.drop needs two encoders or more and model.null_prompt")
        if self.prompts.audio and not self.model.null_prompt:
            raise InputError("prompts.audio needs model.null_prompt: queries whose action makes no sound have none")
        if self.prompts.audio_padding not in PADDING:
            raise InputError(f"prompts.audio_padding must be one of {', '.join(PADDING)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError("epochs and batch_size must be positive")
        self.model.check()
        pick_device(self.device)
        return self
