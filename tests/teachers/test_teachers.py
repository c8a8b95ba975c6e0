"""Teachers load through the real loading path (tiny random checkpoints saved like real ones) and
produce (B, D, h, w) on the right grid; a missing model fails with a useful one-line error."""

import pytest
import torch

from afcli.errors import InputError
from afcli.teachers import load_teacher, parse_teacher

RGB = torch.randint(0, 256, (2, 224, 224, 3), dtype=torch.uint8)


@pytest.mark.parametrize(
    "spec,key,grid",
    [
        ("dinov3:vitb16", "dinov3", 14),
        ("dinov2:vitb14", "dinov2", 16),
        ("dinov2:vits14-reg", "dinov2-reg", 16),
        ("clip", "clip", 14),
    ],
)
def test_tiny_teachers_give_patch_grids(tiny_weights, spec, key, grid):
    teacher = load_teacher(spec, weights=str(tiny_weights[key]))
    features = teacher(RGB)
    assert features.shape[0] == 2 and features.shape[-2:] == (grid, grid)
    assert torch.isfinite(features).all()
    provenance = teacher.provenance()
    assert provenance["weights"] == str(tiny_weights[key]) and len(provenance["weights_sha256"]) == 64
    assert "mean" in provenance["preprocess"]


def test_dino_drops_cls_and_register_tokens(tiny_weights):
    from transformers import DINOv3ViTModel

    teacher = load_teacher("dinov3:vitb16", weights=str(tiny_weights["dinov3"]))
    reference = DINOv3ViTModel.from_pretrained(tiny_weights["dinov3"]).eval()
    images = teacher.preprocess(RGB)
    tokens = reference(pixel_values=images).last_hidden_state
    assert tokens.shape[1] == 1 + 4 + 14 * 14
    expected = tokens[:, 5:].transpose(1, 2).reshape(2, -1, 14, 14)
    assert torch.allclose(teacher(RGB), expected, atol=1e-5)


def test_last_blocks_are_stacked_without_final_norm(tiny_weights):
    from transformers import Dinov2Model

    teacher = load_teacher("dinov2:vitb14", weights=str(tiny_weights["dinov2"]), blocks=2)
    assert teacher.id == "dinov2-vitb14-last2"
    features = teacher(RGB)
    hidden = (
        Dinov2Model.from_pretrained(tiny_weights["dinov2"])
        .eval()(pixel_values=teacher.preprocess(RGB), output_hidden_states=True)
        .hidden_states
    )
    assert features.shape[1] == 2 * 32
    assert torch.allclose(features[:, 32:], hidden[-1][:, 1:].transpose(1, 2).reshape(2, 32, 16, 16), atol=1e-5)


def test_clip_tokens_live_in_the_joint_space(tiny_weights):
    teacher = load_teacher("clip", weights=str(tiny_weights["clip"]))
    assert teacher(RGB).shape[1] == 16  # the projection dim (embed_dim), not the tower width
    assert teacher.preprocess.resample == "bicubic"


def test_missing_weights_name_model_location_and_command(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(InputError) as error:
        load_teacher("dinov3", offline=True)
    message = str(error.value)
    assert (
        "facebook/dinov3-vitl16-pretrain-lvd1689m" in message and str(tmp_path) in message and "hf download" in message
    )
    assert "\n" not in message
    with pytest.raises(InputError, match="no such weights"):
        load_teacher("dinov3", weights=str(tmp_path / "nope"))


def test_teacher_names_are_checked():
    assert parse_teacher("dinov3") == ("dinov3", "vitl16")  # the paper's ViT-L
    assert parse_teacher("dinov2:vitg14-reg") == ("dinov2", "vitg14-reg")
    with pytest.raises(InputError, match="unknown teacher"):
        parse_teacher("sam")
    with pytest.raises(InputError, match="unknown dinov3 variant"):
        parse_teacher("dinov3:vitx")


def test_effnet_lite0_real_weights():
    pytest.importorskip("efficientnet_lite_pytorch")
    teacher = load_teacher("effnet-lite0")
    assert teacher(RGB[:1]).shape == (1, 112, 14, 14)
    assert load_teacher("effnet-lite0:s32")(RGB[:1]).shape == (1, 1280, 7, 7)


def test_teacher_names_resolve_as_lift_names_them():
    from afcli.teachers import parse_teacher, teacher_id

    assert (
        teacher_id("effnet-lite0")
        == teacher_id("effnet-lite0:s16")
        == teacher_id("effnet-lite0-s16")
        == "effnet-lite0-s16"
    )
    assert (
        teacher_id("dinov3") == "dinov3-vitl16" and teacher_id("dinov2-vitb14-reg-last4") == "dinov2-vitb14-reg-last4"
    )
    assert (
        parse_teacher("dinov2-vitb14-reg") == ("dinov2", "vitb14-reg") and teacher_id("clip") == "clip-ViT-B-16@openai"
    )
    with pytest.raises(InputError, match="unknown dinov3 variant"):
        teacher_id("dinov3-vitz99")
    with pytest.raises(InputError, match="unknown teacher"):
        teacher_id("sam2")
