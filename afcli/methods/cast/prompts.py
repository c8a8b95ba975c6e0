"""CAST's prompts: questions and images of a store's queries encoded by frozen encoders
(afcli.prompts), once per run into ``prompts.pt``, and read back by training, eval and export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from afcli.errors import InputError
from afcli.methods.cast.settings import PromptSettings

PROMPTS_FILE = "prompts.pt"
KINDS = ("text", "image", "audio")


def image_key(image: str, affordance: str) -> str:
    from afcli.prompts import RENDER_PREFIX

    return f"{image}#{affordance}" if image.startswith(RENDER_PREFIX) else image


class Pictures:
    """Image prompts of a store's queries as (H, W, 3) uint8: files relative to the store's folder,
    or ``render:<sample id>`` renders of the built-in set with the affordance highlighted."""

    def __init__(self, f, store: Path):
        from afcli.store.schema import decode

        self.f, self.folder = f, Path(store).resolve().parent
        self.ids = {sample_id: row for row, sample_id in enumerate(decode(f["samples/id"][:]))}
        self.channels = decode(f["labels/affordance"].attrs["channels"])
        self.store = store

    def __call__(self, image: str, affordance: str) -> torch.Tensor:
        from afcli.images import read_image
        from afcli.prompts import RENDER_PREFIX, render_prompt

        if not image.startswith(RENDER_PREFIX):
            return read_image(self.folder / image)
        other = self.ids.get(image[len(RENDER_PREFIX) :])
        if other is None:
            raise InputError(f"image prompt {image}: no such sample in the store", self.store)
        heat = self.f["labels/affordance"][other][:, self.channels.index(affordance)]
        return render_prompt(self.f["points/xyz"][other], self.f["points/normal"][other], heat)


def encode_prompts(
    settings: PromptSettings,
    store: Path,
    table,
    rows: np.ndarray,
    *,
    all_questions: bool,
    device,
    advance=None,
    on_total=None,
    image_encoder=None,
) -> dict:
    """``{"text": EncodedPrompts | None, "image": …, "audio": …, "provenance": {kind: encoder, weights,
    sha256}}`` for the queries ``rows`` of ``table``: every question of each (training) or only the
    first (evaluation), every image prompt and every sound prompt (queries without one are left
    out: they get the null token). ``image_encoder`` replaces the one ``settings`` name (a run's
    fine-tuned encoder)."""
    from afcli.images import square
    from afcli.prompts import EncodedPrompts, ImageEncoder, stack
    from afcli.store import open_store

    texts = (
        sorted({q for r in rows for q in (table.text[r] if all_questions else table.text[r][:1])})
        if settings.text
        else []
    )
    images = sorted({(table.image[r], table.affordance[r]) for r in rows if table.image[r]}) if settings.image else []
    sounds = sorted({table.audio[r] for r in rows if table.audio[r]}) if settings.audio else []
    if settings.text and any(not table.text[r] for r in rows):
        raise InputError(
            "some queries have no question but the model takes text prompts (set prompts.text: null)", store
        )
    if settings.image and any(not table.image[r] for r in rows):
        raise InputError(
            "some queries have no image but the model takes image prompts (set prompts.image: null)", store
        )
    batch, dtype = 32, getattr(torch, settings.token_dtype)
    (on_total or (lambda n: None))(-(-len(texts) // batch) + -(-len(images) // batch))
    advance = advance or (lambda: None)
    out = {"text": None, "image": None, "audio": None, "provenance": {}}
    if texts:
        encoder = text_encoder(settings).to(device)
        parts = []
        for start in range(0, len(texts), batch):
            parts.append(tuple(t.cpu() for t in encoder(texts[start : start + batch])))
            advance()
        out["text"] = EncodedPrompts({t: i for i, t in enumerate(texts)}, *stack(parts, dtype))
        out["provenance"]["text"] = encoder.provenance()
    if images:
        encoder = image_encoder or ImageEncoder(
            settings.image, weights=settings.image_weights, pool=settings.image_pool
        ).to(device)
        size = encoder.teacher.preprocess.size
        with open_store(store) as f:
            picture = Pictures(f, store)
            parts = []
            for start in range(0, len(images), batch):
                pictures = [square(picture(*key), size, settings.resize) for key in images[start : start + batch]]
                with torch.no_grad():
                    parts.append(tuple(t.cpu() for t in encoder(torch.stack(pictures).to(device))))
                advance()
        out["image"] = EncodedPrompts({image_key(i, a): k for k, (i, a) in enumerate(images)}, *stack(parts, dtype))
        out["provenance"]["image"] = encoder.provenance()
    if sounds:
        out["audio"] = _encode_sounds(settings, Path(store), sounds, device, dtype)
        out["provenance"]["audio"] = {"encoder": settings.audio, "weights": settings.audio_weights}
    return out


def _encode_sounds(settings: PromptSettings, store: Path, sounds: list[str], device, dtype):
    """Each sound prompt → ``audio_segments`` tokens of the run's audio encoder (all real: a short
    sound is filled by ``audio_padding``)."""
    from afcli.audio import load_audio_encoder
    from afcli.data.sounds import read_sound
    from afcli.prompts import EncodedPrompts

    encoder = load_audio_encoder(settings.audio, settings.audio_weights, device=device)
    folder = store.resolve().parent
    tokens = []
    for sound in sounds:
        wave, rate = read_sound(sound, folder)
        tokens.append(encoder(torch.from_numpy(wave), rate, settings.audio_segments, settings.audio_padding).cpu())
    stacked = torch.stack(tokens).to(dtype)
    return EncodedPrompts(
        {s: i for i, s in enumerate(sounds)}, stacked, torch.ones(stacked.shape[:2], dtype=torch.bool)
    )


def text_encoder(settings: PromptSettings):
    from afcli.prompts import TextEncoder

    return TextEncoder(
        settings.text, weights=settings.text_weights, pool=settings.text_pool, max_length=settings.max_length
    )


def save_prompts(prompts: dict, run_dir: Path) -> None:
    from afcli.engine.checkpoint import save_atomic

    state = {kind: None if prompts[kind] is None else prompts[kind].state() for kind in KINDS}
    save_atomic({**state, "provenance": prompts["provenance"]}, run_dir / PROMPTS_FILE)


def load_prompts(run_dir: Path) -> dict:
    """A run's encoded prompts (``prompts.pt``: tensors and plain data, loaded with weights_only)."""
    from afcli.engine.checkpoint import load_checkpoint
    from afcli.prompts import EncodedPrompts

    if not (run_dir / PROMPTS_FILE).is_file():
        raise InputError(f"no {PROMPTS_FILE} (not a CAST run directory)", run_dir)
    # runs from before sound prompts have no "audio" entry
    state = load_checkpoint(run_dir / PROMPTS_FILE, ("text", "image", "provenance"))
    return {
        **{kind: None if state.get(kind) is None else EncodedPrompts.from_state(state[kind]) for kind in KINDS},
        "provenance": state["provenance"],
    }


def merge_prompts(first: dict, second: dict) -> dict:
    from afcli.prompts import EncodedPrompts

    merged = {"provenance": {**second["provenance"], **first["provenance"]}}
    for kind in KINDS:
        a, b = first[kind], second[kind]
        if a is None or b is None:
            merged[kind] = a or b
            continue
        extra = [k for k in b.keys if k not in a.keys]
        index = torch.tensor([b.keys[k] for k in extra], dtype=torch.long)
        length = max(a.tokens.shape[1], b.tokens.shape[1])

        def pad(t, n):
            return torch.nn.functional.pad(t, (0, 0, 0, n - t.shape[1]) if t.dim() == 3 else (0, n - t.shape[1]))

        keys = dict(a.keys)
        keys.update({k: len(a.keys) + i for i, k in enumerate(extra)})
        merged[kind] = EncodedPrompts(
            keys,
            torch.cat([pad(a.tokens, length), pad(b.tokens[index], length)]),
            torch.cat([pad(a.mask, length), pad(b.mask[index], length)]),
        )
    return merged
