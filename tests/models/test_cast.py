"""The CAST model: paper and official-code settings, null prompts, loading a CMAT backbone."""

import pytest
import torch

from afcli.errors import InputError
from afcli.models.cast import CAST, CASTConfig
from afcli.models.point_mae import PointMAE, PointMAEConfig

BACKBONE = dict(
    depth=2, trans_dim=48, encoder_dims=48, num_heads=2, decoder_heads=2, decoder_depth=1, num_group=16, group_size=8
)


def config(**extra):
    values = dict(
        width=32,
        fusion_layers=2,
        fusion_heads=4,
        fusion_ffn=64,
        head_hidden=16,
        text_dim=12,
        image_dim=20,
        backbone=PointMAEConfig(reconstruction="none", **BACKBONE),
    )
    values.update(extra)
    return CASTConfig(**values)


def inputs(b=2, n=128):
    torch.manual_seed(0)
    text_mask = torch.ones(b, 5, dtype=torch.bool)
    text_mask[1, 3:] = False  # padded text
    return torch.rand(b, n, 3), torch.randn(b, 5, 12), text_mask, torch.randn(b, 1, 20)


@pytest.mark.parametrize("fusion", ["patches", "points"])
def test_any_prompt_subset_gives_a_heat_map_per_point(fusion):
    model = CAST(config(fusion=fusion)).eval()
    points, text, text_mask, image = inputs()
    for kwargs in (
        {"text": text, "text_mask": text_mask},
        {"image": image},
        {"text": text, "text_mask": text_mask, "image": image},
    ):
        logits = model(points, **kwargs)
        assert logits.shape == (2, 128) and torch.isfinite(logits).all()
    both = model(points, text=text, text_mask=text_mask, image=image)
    assert not torch.allclose(both, model(points, text=text, text_mask=text_mask))  # the image prompt counts
    with pytest.raises(InputError, match="needs a prompt"):
        model(points)


def test_padding_is_ignored():
    model = CAST(config()).eval()
    points, text, text_mask, _ = inputs()
    changed = text.clone()
    changed[1, 3:] = 100.0  # only padded positions change
    assert torch.allclose(
        model(points, text=text, text_mask=text_mask), model(points, text=changed, text_mask=text_mask), atol=1e-5
    )


def test_a_one_encoder_model_fuses_the_other_modalitys_null_token():
    """LASO (text only) and PIAD (images only) with the paper's null prompts: the absent modality's
    null token exists and is part of every forward pass."""
    model = CAST(config(image_dim=None)).eval()
    points, text, text_mask, image = inputs()
    assert set(model.null_token) == {"text", "image"} and model.image_projection is None
    before = model(points, text=text, text_mask=text_mask)
    with torch.no_grad():
        model.null_token["image"].add_(1.0)
    assert not torch.allclose(before, model(points, text=text, text_mask=text_mask))
    with pytest.raises(InputError, match="no image prompt encoder"):
        model(points, image=image)


def test_official_settings_have_one_prompt_type_and_no_null_token():
    model = CAST(config(type_embeddings="shared", null_prompt=False, image_dim=None, fusion="points"))
    assert set(model.type_embedding) == {"point", "prompt"} and not hasattr(model, "null_token")
    points, text, text_mask, image = inputs()
    with pytest.raises(InputError, match="no image prompt encoder"):
        model(points, text=text, image=image)


def test_takes_over_a_cmat_backbone_and_saves_strictly(tmp_path):
    pretrained = PointMAE(PointMAEConfig(reconstruction="centers", **BACKBONE))
    pretrained.save_pretrained(tmp_path / "cmat")
    model = CAST(config())
    left = model.load_backbone(tmp_path / "cmat")
    assert left and all(key.startswith(("slot_embed", "centre_head")) for key in left)
    assert torch.equal(model.backbone.norm.weight, pretrained.norm.weight)
    wider = CAST(
        config(backbone=PointMAEConfig(reconstruction="none", **{**BACKBONE, "trans_dim": 64, "encoder_dims": 64}))
    )
    with pytest.raises(InputError, match="trans_dim"):
        wider.load_backbone(tmp_path / "cmat")
    model.eval().save_pretrained(tmp_path / "cast")
    again = CAST.from_pretrained(tmp_path / "cast").eval()
    points, text, text_mask, image = inputs()
    assert torch.equal(model(points, text=text, text_mask=text_mask), again(points, text=text, text_mask=text_mask))
