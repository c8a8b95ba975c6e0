"""A run's audio tokens: every clip of the store through the frozen audio encoder once (the released
model runs VGGish under no_grad always), kept in ``audio.pt`` in the run directory."""

from __future__ import annotations

from pathlib import Path

import torch

from afcli.errors import InputError

AUDIO_FILE = "audio.pt"


def encode_clips(settings, store: Path, device) -> tuple[torch.Tensor, list[str]]:
    """(C, T, D) float16 tokens of every clip in ``store`` with the run's audio encoder, and the clip ids."""
    from afcli.audio import load_audio_encoder
    from afcli.audio.logmel import SAMPLE_RATE, fit_examples
    from afcli.console import progress
    from afcli.store import open_store
    from afcli.store.clips import clip_logmel, clip_wave, read_clips

    a = settings.audio
    encoder = load_audio_encoder(a.encoder, a.weights, device=device)
    tokens = []
    with open_store(store) as f, progress("encode sounds") as (advance, set_total):
        table = read_clips(f, store)
        set_total(len(table))
        for row in range(len(table)):
            if a.encoder.startswith("vggish"):
                examples = torch.from_numpy(clip_logmel(f, table, row))[:, None]
                tokens.append(encoder.embed_examples(fit_examples(examples, a.segments, a.padding)))
            else:
                wave = clip_wave(f, table, row)
                if wave is None:
                    raise InputError(
                        f"clip {table.id[row]} holds only a log-mel: {a.encoder} needs its waveform", store
                    )
                tokens.append(encoder(torch.from_numpy(wave), SAMPLE_RATE, a.segments, a.padding))
            advance()
    return torch.stack(tokens).cpu().half(), table.id
