"""Open-vocabulary box detectors through transformers (``AutoModelForZeroShotObjectDetection`` +
``AutoProcessor``): what ``afcli pseudolabel`` asks for functional parts.

The paper prompts CogVLM-17B's grounding model; its released pipeline runs it behind a server on two
GPUs. afcli takes any zero-shot detector that transformers loads — OWLv2 and Grounding DINO by name,
any hub id or local folder otherwise — with weights from ``--weights`` or the Hugging Face cache and a
one-line error naming the model when neither has them. Boxes are decoded here from the model's own
outputs (scores = sigmoid of the logits; boxes = centre-size in [0, 1] of the square input), so the
processors' changing post-processing APIs do not matter: OWL models score every query at once,
Grounding DINO scores one part phrase per forward (its score is the best token of the phrase).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from afcli.errors import InputError
from afcli.extras import require

DETECTORS = {
    "owlv2": "google/owlv2-base-patch16-ensemble",
    "owlvit": "google/owlvit-base-patch32",
    "grounding-dino": "IDEA-Research/grounding-dino-tiny",
}


@dataclass
class Detections:
    boxes: torch.Tensor  # (B, 4) x0, y0, x1, y1 in pixels of the image
    scores: torch.Tensor  # (B,)


class Detector:
    """``detect(rgb, prompts, top)`` → for each prompt, its ``top`` boxes by score."""

    def __init__(self, name: str, *, weights: str | None = None, offline: bool = False, device="cpu"):
        from afcli.teachers.vit import load_pretrained

        transformers = require("transformers", f"detector {name}")
        if weights is None and Path(name).is_dir():
            weights = name  # a local folder named as the detector
        model_id = DETECTORS.get(name, name)
        self.name = name
        self.model, self.weights, self.weights_sha256 = load_pretrained(
            transformers.AutoModelForZeroShotObjectDetection, model_id, weights, offline
        )
        self.model.to(device)
        self.device = torch.device(device)
        self.processor = transformers.AutoProcessor.from_pretrained(self.weights, local_files_only=True)
        self.grounding = "grounding" in type(self.model).__name__.lower()

    def provenance(self) -> dict:
        return {"detector": self.name, "detector_weights": self.weights, "detector_sha256": self.weights_sha256}

    def _run(self, rgb: np.ndarray, text) -> tuple[torch.Tensor, torch.Tensor, dict]:
        text_config = getattr(self.model.config, "text_config", None)
        longest = getattr(text_config, "max_position_embeddings", None) if not self.grounding else None
        inputs = self.processor(
            text=text, images=[rgb], return_tensors="pt", padding=True, truncation=True, max_length=longest
        )
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.no_grad():
            out = self.model(**inputs)
        return out.logits[0].float().cpu(), out.pred_boxes[0].float().cpu(), inputs

    @staticmethod
    def _pixels(boxes: torch.Tensor, size: int) -> torch.Tensor:
        cx, cy, w, h = boxes.unbind(-1)
        corners = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1) * size
        return corners.clamp(0, size - 1)

    def detect(self, rgb: np.ndarray, prompts: list[str], top: int) -> list[Detections]:
        size = rgb.shape[0]
        if rgb.shape[0] != rgb.shape[1]:
            raise InputError(f"detector input must be square, got {rgb.shape[1]}x{rgb.shape[0]}")
        found = []
        if self.grounding:
            for prompt in prompts:
                logits, boxes, inputs = self._run(rgb, prompt.rstrip(".") + ".")
                ids = inputs["input_ids"][0].cpu()
                tokenizer = self.processor.tokenizer
                skip = torch.tensor([*tokenizer.all_special_ids, tokenizer.convert_tokens_to_ids(".")])
                tokens = inputs["attention_mask"][0].bool().cpu() & ~torch.isin(ids, skip)  # the phrase's own words
                scores = logits[:, : len(tokens)][:, tokens].sigmoid().amax(-1)
                found.append(self._top(boxes, scores, size, top))
            return found
        logits, boxes, _ = self._run(rgb, [prompts])
        for column in range(len(prompts)):
            found.append(self._top(boxes, logits[:, column].sigmoid(), size, top))
        return found

    def _top(self, boxes: torch.Tensor, scores: torch.Tensor, size: int, top: int) -> Detections:
        order = scores.argsort(descending=True)[:top]
        return Detections(self._pixels(boxes[order], size), scores[order])
