"""CAST trained with prompts encoded in every step (``prompts.online``): the official code's
RoBERTa dropout, fine-tuned image-encoder blocks and augmented interaction images.

The fine-tuned parts of the image encoder belong to the trained model (:class:`PromptedCAST`), so
the optimiser, DDP and checkpoints see them; a saved run keeps them beside the CAST model in
``prompt_encoder.safetensors`` and evaluation rebuilds the encoder from its recorded weights plus
those parts. The text encoder stays frozen (dropout is a mode, not weights) and is kept by the task.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from afcli.errors import InputError
from afcli.methods.cast.settings import PromptSettings
from afcli.models.cast import CAST

TUNED_FILE = "prompt_encoder.safetensors"


def image_encoder(settings: PromptSettings):
    """The run's image prompt encoder with its ``image_finetune_blocks`` trainable."""
    from afcli.prompts import ImageEncoder, TunedImageEncoder

    encoder = ImageEncoder(settings.image, weights=settings.image_weights, pool=settings.image_pool)
    return TunedImageEncoder(encoder, settings.image_finetune_blocks)


class PromptedCAST(nn.Module):
    """CAST whose image prompts arrive as pictures and go through ``image_encoder`` in the forward
    pass (gradients reach its fine-tuned blocks)."""

    def __init__(self, cast: CAST, encoder):
        super().__init__()
        self.cast, self.image_encoder = cast, encoder

    def forward(self, points: torch.Tensor, picture: torch.Tensor | None = None, **prompts) -> torch.Tensor:
        if picture is not None:
            with torch.set_grad_enabled(torch.is_grad_enabled() and self.image_encoder.blocks > 0):
                prompts["image"], prompts["image_mask"] = self.image_encoder(picture)
        return self.cast(points, **prompts)

    def save(self, folder: Path) -> None:
        """The CAST model, and the encoder's fine-tuned parts when it has any."""
        from safetensors.torch import save_file

        self.cast.save_pretrained(folder)
        state = {k: v.detach().contiguous().cpu() for k, v in self.image_encoder.state_dict().items()}
        if state:
            save_file(state, Path(folder) / TUNED_FILE, metadata={"blocks": str(self.image_encoder.blocks)})


def tuned_image_encoder(settings: PromptSettings, folder: Path):
    """The fine-tuned image encoder saved with a model folder, or None when the run has none."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(folder) / TUNED_FILE
    if not path.is_file():
        return None
    with safe_open(str(path), "pt") as f:
        blocks = int(f.metadata()["blocks"])
    if blocks != settings.image_finetune_blocks:
        raise InputError(f"{blocks} fine-tuned blocks; the run's settings say {settings.image_finetune_blocks}", path)
    encoder = image_encoder(settings)
    encoder.load_state_dict(load_file(str(path)), strict=True)
    return encoder.eval()
