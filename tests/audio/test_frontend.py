"""The audio front end: VGGish log-mel against a numpy transcription of AudioSet's mel_features, the
Kaiser-sinc resampler against the signals it must keep and remove, padding readings, the reader."""

import math

import numpy as np
import pytest
import torch

from afcli.audio import read_audio, resample
from afcli.audio.logmel import examples, fit_examples, log_mel
from afcli.errors import InputError


# --- numpy transcription of vggish mel_features.py / vggish_input.py (float64 throughout) ---
def np_frame(data, window, hop):
    count = 1 + (data.shape[0] - window) // hop
    return np.stack([data[i * hop : i * hop + window] for i in range(count)])


def np_mel_matrix(bands=64, bins=257, rate=16000, low=125.0, high=7500.0):
    def mel(hz):
        return 1127.0 * np.log(1.0 + hz / 700.0)

    bins_mel = mel(np.linspace(0.0, rate / 2.0, bins))
    edges = np.linspace(mel(low), mel(high), bands + 2)
    weights = np.empty((bins, bands))
    for i in range(bands):
        lower, centre, upper = edges[i : i + 3]
        rising = (bins_mel - lower) / (centre - lower)
        falling = (upper - bins_mel) / (upper - centre)
        weights[:, i] = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights


def np_examples(wave, rate=16000):
    if wave.shape[0] < rate:  # AVAGFormer's pad_audio
        wave = np.pad(wave, (0, rate - wave.shape[0]))
    frames = np_frame(wave, 400, 160)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi / 400 * np.arange(400))
    magnitude = np.abs(np.fft.rfft(frames * hann, 512))
    log_mel = np.log(magnitude @ np_mel_matrix() + 0.01)
    return np_frame(log_mel, 96, 96).astype(np.float32)[:, None]


@pytest.mark.parametrize("seconds", [0.4, 1.0, 3.37])
def test_log_mel_matches_numpy_vggish(seconds):
    rng = np.random.default_rng(0)
    t = np.arange(int(16000 * seconds)) / 16000
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.shape)
    ours = examples(torch.from_numpy(wave))
    reference = np_examples(wave)
    assert ours.shape == reference.shape == (max(1, int(seconds * 100 - 1.5) // 96), 1, 96, 64)
    assert np.abs(ours.numpy() - reference).max() < 1e-5


def test_log_mel_is_batched_and_silence_is_log_offset():
    waves = torch.zeros(2, 16000)
    frames = log_mel(waves)
    assert frames.shape == (2, 98, 64)
    assert torch.allclose(frames, torch.full_like(frames, math.log(0.01)))


def test_fit_examples_readings():
    items = torch.arange(3.0)[:, None, None, None].expand(3, 1, 96, 64)
    assert torch.equal(fit_examples(items, 2), items[:2])
    zeros = fit_examples(items, 5, "zeros")
    assert zeros.shape == (5, 1, 96, 64) and (zeros[3:] == 0).all()
    assert (fit_examples(items, 5, "silence")[3:] == math.log(0.01)).all()
    assert fit_examples(items, 7, "repeat")[:, 0, 0, 0].tolist() == [0, 1, 2, 0, 1, 2, 0]
    with pytest.raises(InputError, match="unknown audio padding"):
        fit_examples(items, 5, "mirror")


def tone(frequency, rate, seconds=1.0):
    return torch.sin(2 * math.pi * frequency * torch.arange(int(rate * seconds), dtype=torch.float64) / rate)


@pytest.mark.parametrize("rate", [44100, 22050, 8000, 48000])
def test_resample_keeps_a_tone(rate):
    out = resample(tone(1000, rate), rate, 16000)
    assert out.shape[-1] == math.ceil(rate * 1.0 * 16000 / rate)
    middle = slice(2000, 14000)  # away from the edges, where the filter sees zeros
    assert (out[middle] - tone(1000, 16000)[middle]).abs().max() < 2e-3


def test_resample_removes_what_the_new_rate_cannot_hold():
    out = resample(tone(9000, 44100), 44100, 16000)  # above the new Nyquist rate of 8 kHz
    assert out[2000:14000].abs().max() < 1e-3


def test_resample_shapes_and_identity():
    wave = torch.randn(2, 3, 4410)
    assert resample(wave, 44100, 16000).shape == (2, 3, 1600)
    assert resample(wave, 16000, 16000) is wave


def test_read_audio_mixes_to_mono(tmp_path):
    soundfile = pytest.importorskip("soundfile")
    left, right = tone(440, 8000).numpy() * 0.5, np.zeros(8000)
    for suffix, subtype in ((".wav", "PCM_16"), (".flac", "PCM_16"), (".ogg", "VORBIS")):
        path = tmp_path / f"clip{suffix}"
        soundfile.write(path, np.stack([left, right], 1), 8000, subtype=subtype)
        wave, rate = read_audio(path)
        assert rate == 8000 and wave.dtype == torch.float32 and wave.dim() == 1
        tolerance = 2e-4 if subtype == "PCM_16" else 0.05
        assert np.abs(wave.numpy()[: len(left)] - left / 2).max() < tolerance


def test_read_audio_names_the_bad_file(tmp_path):
    pytest.importorskip("soundfile")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(InputError, match="broken.wav: not a readable audio file"):
        read_audio(broken)
    with pytest.raises(InputError, match="missing.ogg: no such audio file"):
        read_audio(tmp_path / "missing.ogg")
