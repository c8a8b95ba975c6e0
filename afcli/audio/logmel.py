"""VGGish's log-mel front end in torch, step for step as AudioSet's ``mel_features`` /
``vggish_input`` compute it (and AVAGFormer's copy of them):

16 kHz mono, zero-padded to at least 1 s (AVAGFormer's addition) → frames of 400 samples every 160,
no centring → periodic Hann → ``|rfft|`` of 512 points (magnitude, not power) → 64 triangular HTK-mel
bands over 125–7500 Hz with the DC row zeroed → ``log(mel + 0.01)`` → non-overlapping examples of
96 frames × 64 bands (0.96 s each; an incomplete tail is dropped).

Frames come from ``unfold`` + ``rfft``: ``torch.stft`` centres the 400-sample window inside the 512
FFT and drops a frame, which VGGish does not.

How a clip becomes exactly ``T`` examples (AVAGFormer's model needs 20) is not in the released code;
:func:`fit_examples` offers three readings (``PADDING``).
"""

from __future__ import annotations

import functools
import math

import torch

from afcli.errors import InputError

SAMPLE_RATE = 16000
WINDOW = 400  # 0.025 s
HOP = 160  # 0.010 s
FFT = 512  # the next power of two above the window
MEL_BANDS = 64
MEL_RANGE = (125.0, 7500.0)
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96  # 0.96 s windows, 0.96 s apart
MIN_SAMPLES = SAMPLE_RATE  # AVAGFormer pads every clip to at least one second
SECONDS_PER_EXAMPLE = EXAMPLE_FRAMES * HOP / SAMPLE_RATE

# How a clip of n examples becomes T (longer clips keep their first T):
# - zeros:   fill with log-mel value 0 — the only padding the released code has (VGGish._preprocess,
#            which AVAGFormer inherits from AVSBench), so the likeliest reading of its .pkl files;
# - silence: fill with log(0.01), the log-mel of digital silence, as if the clip were padded with zeros;
# - repeat:  tile the clip's own examples (the sound goes on).
PADDING = ("zeros", "silence", "repeat")


def hertz_to_mel(hertz: torch.Tensor) -> torch.Tensor:
    """HTK mel scale."""
    return 1127.0 * torch.log1p(hertz / 700.0)


@functools.cache
def mel_matrix(bands: int = MEL_BANDS, low: float = MEL_RANGE[0], high: float = MEL_RANGE[1]) -> torch.Tensor:
    """(FFT/2 + 1, bands) triangular weights in float64, spaced evenly on the HTK mel scale; the DC
    bin weighs nothing."""
    bins = hertz_to_mel(torch.linspace(0.0, SAMPLE_RATE / 2, FFT // 2 + 1, dtype=torch.float64))
    edges = torch.linspace(
        float(hertz_to_mel(torch.tensor(low, dtype=torch.float64))),
        float(hertz_to_mel(torch.tensor(high, dtype=torch.float64))),
        bands + 2,
        dtype=torch.float64,
    )
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins[:, None] - lower) / (centre - lower)
    falling = (upper - bins[:, None]) / (upper - centre)
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    weights[0] = 0.0
    return weights


def log_mel(wave: torch.Tensor) -> torch.Tensor:
    """16 kHz waveform (..., samples) → log-mel frames (..., frames, 64), float32."""
    if wave.shape[-1] < MIN_SAMPLES:
        wave = torch.nn.functional.pad(wave, (0, MIN_SAMPLES - wave.shape[-1]))
    frames = wave.double().unfold(-1, WINDOW, HOP)
    hann = 0.5 - 0.5 * torch.cos(2 * math.pi * torch.arange(WINDOW, dtype=torch.float64) / WINDOW)  # periodic
    magnitude = torch.fft.rfft(frames * hann.to(frames.device), n=FFT).abs()
    mel = magnitude @ mel_matrix().to(frames.device)
    return torch.log(mel + LOG_OFFSET).float()


def examples(wave: torch.Tensor) -> torch.Tensor:
    """16 kHz mono waveform (samples,) → VGGish input examples (n, 1, 96, 64)."""
    frames = log_mel(wave)
    count = (frames.shape[0] - EXAMPLE_FRAMES) // EXAMPLE_FRAMES + 1
    return frames[: count * EXAMPLE_FRAMES].reshape(count, 1, EXAMPLE_FRAMES, MEL_BANDS)


def fit_examples(items: torch.Tensor, count: int, padding: str = "zeros") -> torch.Tensor:
    """Examples (n, ...) → exactly ``count`` (the first ``count``, or filled by ``padding``)."""
    if padding not in PADDING:
        raise InputError(f"unknown audio padding {padding!r} (choose from {', '.join(PADDING)})")
    if items.shape[0] >= count:
        return items[:count]
    if padding == "repeat":
        return items.repeat(math.ceil(count / items.shape[0]), *([1] * (items.dim() - 1)))[:count]
    value = 0.0 if padding == "zeros" else math.log(LOG_OFFSET)
    fill = items.new_full((count - items.shape[0], *items.shape[1:]), value)
    return torch.cat([items, fill])
