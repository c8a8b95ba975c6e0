"""Reading sound files and changing their sample rate, in torch (torchaudio does not load on every
machine this runs on).

:func:`read_audio` decodes WAV, FLAC, OGG/Vorbis and MP3 through ``soundfile`` (libsndfile ≥ 1.1
reads MP3) and mixes to mono by the channel mean, as VGGish's reader does. :func:`resample` is
band-limited sinc interpolation under a Kaiser window, with the constants of resampy's
``kaiser_best`` filter (64 zero crossings, roll-off 0.9476, β 14.77) — the resampler VGGish and
AVAGFormer's front end call — computed as one strided convolution per rate pair.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from afcli.errors import InputError
from afcli.extras import require

KAISER_BEST = {"zero_crossings": 64, "rolloff": 0.9475937167399596, "beta": 14.769656459379492}


def read_audio(path: str | Path) -> tuple[torch.Tensor, int]:
    """``path`` → (mono float32 waveform in [-1, 1], sample rate). A file that does not decode, holds
    no samples or holds NaNs is one :class:`InputError` naming it."""
    soundfile = require("soundfile", "reading audio")
    path = Path(path)
    if not path.is_file():
        raise InputError("no such audio file", path)
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, TypeError, ValueError) as error:
        raise InputError(f"not a readable audio file ({' '.join(str(error).split())[:120]})", path) from None
    if data.shape[0] == 0:
        raise InputError("audio file holds no samples", path)
    if not np.isfinite(data).all():
        raise InputError("audio file holds NaN or infinite samples", path)
    return torch.from_numpy(data.mean(axis=1)), int(rate)


def resample(wave: torch.Tensor, rate: int, new_rate: int, **filter_settings) -> torch.Tensor:
    """``wave`` (..., samples) at ``rate`` → (..., ceil(samples · new_rate / rate)) at ``new_rate``."""
    if rate <= 0 or new_rate <= 0:
        raise InputError(f"sample rates must be positive, got {rate} -> {new_rate}")
    if rate == new_rate:
        return wave
    common = math.gcd(rate, new_rate)
    up, down = new_rate // common, rate // common
    kernel, width = _sinc_kernel(up, down, dtype=wave.dtype, device=wave.device, **(KAISER_BEST | filter_settings))
    shape, samples = wave.shape[:-1], wave.shape[-1]
    flat = torch.nn.functional.pad(wave.reshape(-1, 1, samples), (width, width + down))
    phases = torch.nn.functional.conv1d(flat, kernel, stride=down)  # (N, up, steps): output k·up + phase
    out = phases.transpose(1, 2).reshape(flat.shape[0], -1)
    return out[:, : math.ceil(samples * up / down)].reshape(*shape, -1)


def _sinc_kernel(up, down, zero_crossings, rolloff, beta, dtype, device) -> tuple[torch.Tensor, int]:
    """One filter per output phase: row p interpolates output sample ``k·up + p`` from the input
    around ``k·down``, low-passed at ``rolloff`` times the lower Nyquist rate."""
    cutoff = min(up, down) * rolloff  # in cycles per input-and-output common sample
    width = math.ceil(zero_crossings * down / cutoff)
    taps = torch.arange(-width, width + down, dtype=torch.float64) / down
    times = (taps[None, :] - torch.arange(up, dtype=torch.float64)[:, None] / up) * cutoff
    times = times.clamp(-zero_crossings, zero_crossings)
    window = torch.special.i0(beta * torch.sqrt(1 - (times / zero_crossings) ** 2)) / torch.special.i0(
        torch.tensor(beta, dtype=torch.float64)
    )
    kernel = torch.special.sinc(times) * window * cutoff / down
    return kernel.to(dtype=dtype, device=device).unsqueeze(1), width
