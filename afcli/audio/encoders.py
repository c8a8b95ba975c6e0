"""The two audio networks of :data:`afcli.audio.AUDIO_ENCODERS`."""

from __future__ import annotations

import torch

from afcli.audio import AudioEncoder, segments_of
from afcli.audio.logmel import SECONDS_PER_EXAMPLE, examples, fit_examples
from afcli.engine.checkpoint import load_checkpoint
from afcli.models import soundnet as soundnet_model
from afcli.models import vggish as vggish_model


class VGGishEncoder(AudioEncoder):
    """16 kHz log-mel examples (:mod:`afcli.audio.logmel`) → VGGish 128-d embeddings, one per 0.96 s;
    the clip is filled or cut to ``count`` examples in the log-mel domain, as AVAGFormer's .pkl files."""

    sample_rate = 16000

    def __init__(self, variant: str, weights: str | None = None):
        super().__init__()
        path = vggish_model.find_weights(weights)
        state = load_checkpoint(path, what="VGGish weights file")
        self.net = vggish_model.VGGish.from_state_dict(state, path).eval().requires_grad_(False)
        self.name, self.weights, self.dim = f"vggish:{variant}", str(path), self.net.config.dim

    def encode(self, wave: torch.Tensor, count: int, padding: str) -> torch.Tensor:
        return self.embed_examples(fit_examples(examples(wave), count, padding))

    @torch.no_grad()
    def embed_examples(self, items: torch.Tensor) -> torch.Tensor:
        """Log-mel examples (..., 1, 96, 64) — e.g. an AVAGD ``.pkl`` — → (..., dim)."""
        return self.net(items.reshape(-1, *items.shape[-3:]).to(self.device)).reshape(*items.shape[:-3], -1)


class SoundNetEncoder(AudioEncoder):
    """SoundNet-8 features of one layer on the whole clip at 22 050 Hz, resampled in time to one token
    per 0.96 s segment. The clip is filled in the waveform domain (silence: zeros; repeat: tiled),
    ``zeros`` gives zero tokens, as the log-mel reading does."""

    sample_rate = soundnet_model.SAMPLE_RATE
    LAYERS = {"conv5": 5, "conv6": 6, "conv7": 7}

    def __init__(self, variant: str, weights: str | None = None):
        super().__init__()
        path = soundnet_model.find_weights(weights)
        self.net = soundnet_model.SoundNet8.from_arrays(soundnet_model.read_weights(path), path)
        self.net.requires_grad_(False)
        self.depth = self.LAYERS[variant]
        self.name, self.weights = f"soundnet8:{variant}", str(path)
        self.dim = self.net.config.channels[self.depth - 1]

    def encode(self, wave: torch.Tensor, count: int, padding: str) -> torch.Tensor:
        segment = round(self.sample_rate * SECONDS_PER_EXAMPLE)
        if padding == "zeros":
            have = min(count, segments_of(wave.shape[-1], self.sample_rate))
        else:
            have = count
            if padding == "repeat":
                wave = wave.repeat(-(-count * segment // wave.shape[-1]))
        wave = wave[: have * segment]
        wave = torch.nn.functional.pad(wave, (0, max(0, have * segment - wave.shape[-1])))  # silence
        features = self.net.features(wave[None], self.depth)
        tokens = torch.nn.functional.interpolate(features, size=have, mode="linear", align_corners=False)[0].T
        return fit_examples(tokens, count, "zeros")


def vggish(variant: str, weights: str | None = None) -> VGGishEncoder:
    return VGGishEncoder(variant, weights)


def soundnet8(variant: str, weights: str | None = None) -> SoundNetEncoder:
    return SoundNetEncoder(variant, weights)
