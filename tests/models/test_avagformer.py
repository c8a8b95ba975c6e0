"""AVAGFormer's head at the released sizes (parameter counts as the reference code prints them) and
at a tiny size (shapes, gradients, the mixer-bias readings), and the deformable encoder it uses."""

import math

import pytest
import torch

from afcli.models.avagformer import AVAGFormer, AVAGFormerConfig
from afcli.models.deformable import DeformableEncoder, MSDeformAttn, sine_position


def tiny(**overrides) -> AVAGFormerConfig:
    values = dict(
        image_channels=(8, 16, 32), dim=32, encoder_layers=1, heads=4, ffn=64, fpn_dim=16, mixer_heads=4,
        queries=6, generator_layers=1, generator_hidden=32, decoder_dim=8, decoder_heads=2, se_dim=16,
    )  # fmt: skip
    return AVAGFormerConfig(**(values | overrides))


def maps(batch=2, size=8, channels=(8, 16, 32)):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(batch, c, size >> i, size >> i, generator=g) for i, c in enumerate(channels)]


def millions(module) -> float:
    return round(sum(p.numel() for p in module.parameters()) / 1e6, 2)


def test_released_sizes_match_the_reference_counts():
    model = AVAGFormer()
    assert millions(model.encoder) == 7.55
    assert millions(model.generator) == 6.39
    assert millions(model.mixer) == 0.99
    assert millions(model.fpn) == 0.54


def test_shapes_and_gradients():
    model = AVAGFormer(tiny())
    out = model(maps(), torch.randn(2, 5, 128))
    assert out["function"].shape == out["dependency"].shape == (2, 1, 64, 64)
    assert out["function_queries"].shape == (2, 6, 8, 8)
    (out["function"].mean() + out["dependency"].mean()).backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    for name in (
        "in_proj.2.0.weight",
        "encoder.layers.0.attention.value_proj.weight",
        "mixer.fusion.vision_from_audio.gate.weight",
        "generator.query.weight",
        "decoders.function.attention.1.in_proj_weight",
        "mca.k.weight",
        "heads.dependency.out.weight",
        "audio_proj.weight",
    ):
        assert grads[name] is not None and grads[name].abs().sum() > 0, name
    # softmax cancels a bias that is constant per head: its last layer learns nothing
    assert grads["mixer.fusion.vision_from_audio.bias.2.weight"].abs().max() < 1e-6


@pytest.mark.parametrize("reading, changes", [("constant", False), ("pairwise", True)])
def test_mixer_bias_acts_only_when_pairwise(reading, changes):
    torch.manual_seed(0)
    fusion = AVAGFormer(tiny(mixer_bias=reading)).mixer.fusion
    vision, audio, prompts = (
        torch.randn(2, 12, 32) * torch.rand(2, 12, 1) * 3,
        torch.randn(2, 5, 32),
        torch.randn(2, 32),
    )
    before = fusion(vision, audio, prompts, prompts)
    with torch.no_grad():
        for net in (fusion.audio_from_vision.bias, fusion.vision_from_audio.bias):
            for parameter in net.parameters():
                parameter.normal_()
    after = fusion(vision, audio, prompts, prompts)
    difference = max((a - b).abs().max() for a, b in zip(after, before))
    assert (difference > 1e-3) == changes, difference


def test_save_and_load_round_trip(tmp_path):
    model = AVAGFormer(tiny(mixer_bias="pairwise")).eval()
    loaded = AVAGFormer.from_pretrained(model.save_pretrained(tmp_path / "head")).eval()
    inputs = (maps(batch=1), torch.randn(1, 3, 128))
    assert torch.equal(model(*inputs)["function"], loaded(*inputs)["function"])


def test_sine_position_is_raw_cumulative():
    position = sine_position(3, 4, channels=8)
    assert position.shape == (8, 3, 4)
    # channels 0..3: the row index (1-based) at frequencies 1, 1, 1e4^-0.5, 1e4^-0.5; 4..7: the column
    row, col = 2, 3  # zero-based → positions 3 and 4
    assert position[0, row, col] == pytest.approx(math.sin(3))
    assert position[1, row, col] == pytest.approx(math.cos(3))
    assert position[6, row, col] == pytest.approx(math.sin(4 / 100))


def test_deformable_attention_starts_radial_and_uniform():
    attention = MSDeformAttn(dim=16, levels=2, heads=4, points=3)
    offsets = attention.sampling_offsets.bias.view(4, 2, 3, 2)
    assert torch.allclose(offsets[0, 0, :, 0], torch.tensor([1.0, 2.0, 3.0]))  # head 0 looks right
    assert torch.allclose(offsets[1, 1, 2], torch.tensor([0.0, 3.0]), atol=1e-6)  # head 1 looks down
    encoder = DeformableEncoder(dim=16, levels=2, layers=1, heads=4, points=3, ffn=32)
    out = encoder([torch.randn(1, 16, 6, 6), torch.randn(1, 16, 3, 3)])
    assert [o.shape for o in out] == [(1, 16, 6, 6), (1, 16, 3, 3)]
    out[1].sum().backward()
    assert encoder.layers[0].attention.sampling_offsets.weight.grad.abs().sum() > 0
