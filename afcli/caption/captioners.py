"""Image captioners for scene instances, through transformers: BLIP (``blip``:
Salesforce/blip-image-captioning-base) and GIT (``git``: microsoft/git-base-coco), any hub id of
either family, or a saved folder; weights from a folder or the local Hugging Face cache (a missing
model is one line naming it).

An instance is captioned from its best views: the scene's RGB-D frames (afcli.lift.frames) where most
of its points are visible (the depth test of the scene lift), cropped to the box of those points'
pixels with a margin. SOLE's captions come from DeCap on CLIP features and MPEC's from SceneVerse's
pipeline; a view captioner is the common stand-in (SOLE Table 13: better captions help).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from afcli.errors import InputError
from afcli.extras import require

CAPTIONERS = {"blip": "Salesforce/blip-image-captioning-base", "git": "microsoft/git-base-coco"}
MIN_VISIBLE = 30  # points an instance must show in a frame to be captioned from it
MARGIN = 0.1  # of the crop's side, around the visible points' pixels
MIN_CROP = 16  # pixels


@dataclass
class Captioner:
    name: str
    model: torch.nn.Module
    processor: object
    weights: str
    max_tokens: int = 24

    @torch.no_grad()
    def __call__(self, images: list[np.ndarray]) -> list[str]:
        device = next(self.model.parameters()).device
        inputs = self.processor(images=images, return_tensors="pt").to(device)
        tokens = self.model.generate(pixel_values=inputs["pixel_values"], max_new_tokens=self.max_tokens)
        return [" ".join(text.split()) for text in self.processor.batch_decode(tokens, skip_special_tokens=True)]


def load_captioner(name: str, weights: str | None = None, offline: bool = False, device="cpu") -> Captioner:
    from afcli.teachers.vit import load_pretrained

    transformers = require("transformers", f"captioner {name}")
    model_id = CAPTIONERS.get(name, name)
    config = _config(transformers, model_id, weights, offline)
    if config.model_type == "blip":
        model_class = transformers.BlipForConditionalGeneration
    elif config.model_type == "git":
        model_class = transformers.GitForCausalLM
    else:
        raise InputError(f"captioner {name}: a {config.model_type} model, not BLIP or GIT")
    model, source, _ = load_pretrained(model_class, model_id, weights, offline)
    processor = transformers.AutoProcessor.from_pretrained(weights or model_id, local_files_only=True)
    return Captioner(name, model.to(device), processor, source)


def _config(transformers, model_id: str, weights: str | None, offline: bool):
    from afcli.teachers.base import check_weights_path, missing_weights, offline_mode

    path = check_weights_path(weights)
    try:
        return transformers.AutoConfig.from_pretrained(
            str(path) if path else model_id, local_files_only=offline_mode(offline) or path is not None
        )
    except (OSError, ValueError) as error:
        if path is not None:
            raise InputError(f"not a captioner folder ({str(error).splitlines()[0]})", path) from None
        raise missing_weights(model_id, str(error).splitlines()[0]) from None


def best_crops(frames, points: np.ndarray, instance: np.ndarray, tolerance: float = 0.25, views: int = 1):
    """Per instance id, up to ``views`` crops (H, W, 3) u8 of the frames that see most of its points
    (depth maps read for every frame, colour images only for the chosen ones)."""
    from afcli.lift.frames import frame_visibility

    ids = np.unique(instance[instance >= 0]).tolist()
    seen: dict[int, list[tuple[int, int, tuple[int, int, int, int]]]] = {i: [] for i in ids}
    xyz, label = torch.from_numpy(points).float(), torch.from_numpy(instance)
    K = torch.from_numpy(frames.K)
    sizes = {}
    for index in range(len(frames)):
        depth = torch.from_numpy(frames.depth(index))[None]
        pose = torch.from_numpy(frames.poses[index])[None]
        pixels, visible, _ = frame_visibility(xyz, K, pose, depth, "relative", tolerance)
        height, width = sizes[index] = tuple(depth.shape[1:])
        for ident in ids:
            mine = visible[0] & (label == ident)
            count = int(mine.sum())
            if count >= MIN_VISIBLE:
                u, v = pixels[0, mine, 0], pixels[0, mine, 1]
                box = _padded(float(u.min()), float(v.min()), float(u.max()), float(v.max()), width, height)
                seen[ident].append((count, index, box))
    crops: dict[int, list[np.ndarray]] = {}
    for ident, found in seen.items():
        for _, index, (x0, y0, x1, y1) in sorted(found, reverse=True)[:views]:
            rgb = frames.colour(index, sizes[index])
            crops.setdefault(ident, []).append(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
    return crops


def _padded(x0, y0, x1, y1, width, height) -> tuple[int, int, int, int]:
    side = max(x1 - x0, y1 - y0, MIN_CROP)
    pad = MARGIN * side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_w, half_h = max((x1 - x0) / 2 + pad, MIN_CROP / 2), max((y1 - y0) / 2 + pad, MIN_CROP / 2)
    left, top = int(max(0, cx - half_w)), int(max(0, cy - half_h))
    right, bottom = int(min(width, cx + half_w + 1)), int(min(height, cy + half_h + 1))
    return left, top, max(right, left + 1), max(bottom, top + 1)
