"""Sound → a sequence of tokens, one per 0.96 s segment, behind one protocol (:class:`AudioEncoder`)
and one table (:data:`AUDIO_ENCODERS`), as the 2D teachers are.

``load_audio_encoder("vggish")`` or ``"soundnet8:conv7"``: a family and an optional variant after the
colon. Every encoder takes a mono waveform at any sample rate (resampled with :func:`resample`) and
returns exactly ``count`` tokens, a short clip filled by ``padding`` (:data:`PADDING`), a long one
cut — the fixed T that AVAGFormer's model is built for.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import torch

from afcli.audio.io import read_audio, resample
from afcli.audio.logmel import PADDING, SECONDS_PER_EXAMPLE
from afcli.errors import InputError
from afcli.variants import resolve_variant


class AudioEncoder(torch.nn.Module, abc.ABC):
    """Frozen audio network. Subclasses set the attributes and implement :meth:`encode`."""

    name: str  # canonical spec, e.g. "soundnet8:conv7"
    dim: int
    sample_rate: int  # the rate the network was trained at
    weights: str  # where the weights came from

    @abc.abstractmethod
    def encode(self, wave: torch.Tensor, count: int, padding: str) -> torch.Tensor:
        """Mono waveform (samples,) at :attr:`sample_rate` → (count, dim)."""

    @torch.no_grad()
    def forward(self, wave: torch.Tensor, rate: int, count: int, padding: str = "zeros") -> torch.Tensor:
        if padding not in PADDING:
            raise InputError(f"unknown audio padding {padding!r} (choose from {', '.join(PADDING)})")
        if count < 1:
            raise InputError(f"an audio prompt needs at least one segment, got {count}")
        wave = resample(wave.float(), rate, self.sample_rate)
        return self.encode(wave.to(self.device), count, padding)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def provenance(self) -> dict:
        return {"audio_encoder": self.name, "weights": self.weights, "sample_rate": self.sample_rate}


@dataclass(frozen=True)
class AudioEncoderEntry:
    factory: str  # "module:function", imported only when used
    default: str
    variants: tuple[str, ...]

    def build(self):
        module, function = self.factory.split(":")
        return getattr(__import__(module, fromlist=[function]), function)


AUDIO_ENCODERS = {
    "vggish": AudioEncoderEntry("afcli.audio.encoders:vggish", "audioset", ("audioset",)),
    "soundnet8": AudioEncoderEntry("afcli.audio.encoders:soundnet8", "conv7", ("conv5", "conv6", "conv7")),
}


def parse_audio_encoder(spec: str) -> tuple[str, str]:
    family, _, variant = spec.partition(":")
    return resolve_variant(AUDIO_ENCODERS, family, variant, "audio encoder", "soundnet8:conv5")


def load_audio_encoder(spec: str, weights: str | None = None, device="cpu") -> AudioEncoder:
    family, variant = parse_audio_encoder(spec)
    return AUDIO_ENCODERS[family].build()(variant, weights=weights).to(device)


def segments_of(samples: int, rate: int) -> int:
    """How many 0.96 s segments a clip of ``samples`` at ``rate`` fills (at least one)."""
    return max(1, int(samples / rate // SECONDS_PER_EXAMPLE))


__all__ = [
    "AUDIO_ENCODERS",
    "AudioEncoder",
    "PADDING",
    "load_audio_encoder",
    "parse_audio_encoder",
    "read_audio",
    "resample",
    "segments_of",
]
