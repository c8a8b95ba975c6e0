"""Procedural action sounds for the built-in audio-visual set: each action makes a sound of one of
these kinds, synthesised from a seed, so every variant is reproducible and the set needs no download.

Each kind models how the sound is made, not what one recording sounds like:
- ``impact`` — a struck object: a few damped low modes (0.1–1 kHz) excited by a short noise burst,
  repeated (chopping, knocking, stabbing);
- ``scrape`` — friction along a surface: noise of about 0.7–3.5 kHz in strokes of irregular
  amplitude (dragging, sawing);
- ``pour`` — liquid: low hiss (below ~1 kHz) under dense bubbles, short sine chirps rising in pitch as
  cavities close (pouring, filling);
- ``click`` — a mechanism catching: pairs of sub-millisecond broadband clicks through a small, high
  (3–7 kHz) resonance (snipping, switching, uncapping);
- ``creak`` — stick-slip: a pulse train of drifting, jittered low pitch (sitting, a door swinging);
- ``flow`` — steady running water: hiss of 2–7 kHz with a slight slow swell (a faucet).

Sounds are mono float32 in [-1, 1] at :data:`RATE` (16 kHz, VGGish's rate).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

RATE = 16000
KINDS = ("impact", "scrape", "pour", "click", "creak", "flow")
SYNTH_PREFIX = "synth:"
VARIANTS = 8  # sound variants per kind that the built-in set's queries draw from

# The sound an affordance's action makes on the built-in shapes (PIAD's vocabulary); grasping, lifting
# and wearing make none, so their queries have no sound prompt.
AFFORDANCE_SOUNDS = {
    "cut": "scrape",
    "stab": "impact",
    "pour": "pour",
    "contain": "pour",
    "open": "click",
    "sit": "creak",
    "push": "creak",
    "move": "scrape",
    "support": "impact",
}


def sound_prompt(affordance: str, key: str) -> str:
    """The built-in set's sound prompt for a query (``synth:<kind>:<variant>``, the variant by a hash
    of ``key``), or "" when the affordance makes no sound."""
    kind = AFFORDANCE_SOUNDS.get(affordance)
    return f"{SYNTH_PREFIX}{kind}:{zlib.crc32(key.encode('utf-8')) % VARIANTS}" if kind else ""


def read_sound(spec: str, folder: Path) -> tuple[np.ndarray, int]:
    """A sound prompt as (mono float32 samples, rate): ``synth:<kind>:<variant>`` made here, else an
    audio file relative to ``folder``."""
    if spec.startswith(SYNTH_PREFIX):
        kind, _, variant = spec[len(SYNTH_PREFIX) :].partition(":")
        return synthesize(kind, int(variant)), RATE
    from afcli.audio import read_audio

    wave, rate = read_audio(folder / spec)
    return wave.numpy(), rate


def synthesize(kind: str, seed: int, seconds: float = 2.0, rate: int = RATE) -> np.ndarray:
    """One variant of ``kind``: the same (kind, seed, seconds, rate) gives the same samples."""
    if kind not in KINDS:
        raise ValueError(f"unknown sound kind {kind!r} (choose from {', '.join(KINDS)})")
    rng = np.random.default_rng([KINDS.index(kind), seed])
    count = int(seconds * rate)
    t = np.arange(count) / rate
    wave = globals()[f"_{kind}"](rng, t, rate)
    wave = wave / (np.abs(wave).max() + 1e-9) * rng.uniform(0.5, 0.9)
    return wave.astype(np.float32)


def _band(rng, count: int, low: float, high: float, rate: int) -> np.ndarray:
    """White noise kept between ``low`` and ``high`` Hz (in the frequency domain)."""
    spectrum = np.fft.rfft(rng.standard_normal(count))
    frequencies = np.fft.rfftfreq(count, 1 / rate)
    spectrum[(frequencies < low) | (frequencies > high)] = 0
    return np.fft.irfft(spectrum, count)


def _impact(rng, t, rate):
    wave = np.zeros_like(t)
    modes = rng.uniform(100, 1000, size=rng.integers(2, 5))
    decays = rng.uniform(10, 40, size=modes.size)
    period = rng.uniform(0.25, 0.6)
    for start in np.arange(rng.uniform(0.02, 0.2), t[-1], period * rng.uniform(0.8, 1.2)):
        local = t - start
        on = local >= 0
        strike = rng.uniform(0.5, 1.0)
        ring = sum(
            np.sin(2 * np.pi * f * local[on] + rng.uniform(0, 2 * np.pi)) * np.exp(-d * local[on])
            for f, d in zip(modes, decays)
        )
        burst = rng.standard_normal(on.sum()) * np.exp(-400 * local[on])
        wave[on] += strike * (ring + 0.5 * burst)
    return wave


def _scrape(rng, t, rate):
    low = rng.uniform(700, 1200)
    noise = _band(rng, t.size, low, low * rng.uniform(2, 3), rate)
    stroke = rng.uniform(0.3, 0.8)
    envelope = np.abs(np.sin(np.pi * t / stroke)) ** rng.uniform(1, 2)
    jitter = _band(rng, t.size, 0.5, 20, rate)
    return noise * envelope * (1 + 0.5 * jitter / (np.abs(jitter).max() + 1e-9))


def _pour(rng, t, rate):
    wave = _band(rng, t.size, 150, rng.uniform(800, 1500), rate) * 0.2
    for start in rng.uniform(0, t[-1], size=int(rng.uniform(25, 50) * t[-1])):
        local = t - start
        on = (local >= 0) & (local < 0.03)
        f0 = rng.uniform(400, 1500)
        phase = 2 * np.pi * (f0 * local[on] + f0 * 8 * local[on] ** 2)  # rising pitch
        wave[on] += np.sin(phase) * np.exp(-120 * local[on]) * rng.uniform(0.3, 1)
    return wave


def _click(rng, t, rate):
    wave = np.zeros_like(t)
    resonance = rng.uniform(3000, 7000)
    gap = rng.uniform(0.02, 0.08)
    for start in np.arange(rng.uniform(0.05, 0.3), t[-1] - gap, rng.uniform(0.4, 0.9)):
        for offset in (0.0, gap):
            local = t - start - offset
            on = (local >= 0) & (local < 0.02)
            wave[on] += np.sin(2 * np.pi * resonance * local[on]) * np.exp(-600 * local[on])
            wave[on] += rng.standard_normal(on.sum()) * np.exp(-3000 * local[on])
    return wave


def _creak(rng, t, rate):
    pitch = rng.uniform(40, 120) * (1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.2, 1) * t))
    phase = np.cumsum(pitch * (1 + 0.05 * rng.standard_normal(t.size))) / rate
    pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(float)
    ring = np.exp(-t[: int(0.01 * rate)] * 500) * np.sin(2 * np.pi * rng.uniform(600, 1800) * t[: int(0.01 * rate)])
    body = np.convolve(pulses, ring)[: t.size]
    swell = np.sin(np.pi * np.clip(t / t[-1], 0, 1)) ** 0.5
    return body * swell


def _flow(rng, t, rate):
    noise = _band(rng, t.size, rng.uniform(1500, 2500), rng.uniform(5000, 7500), rate)
    swell = 1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t + rng.uniform(0, 2 * np.pi))
    return noise * swell
