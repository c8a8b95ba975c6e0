"""The Point-MAE backbone and the CMAT losses."""

import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from afcli.errors import InputError
from afcli.losses.cmat import CMATLossConfig, affinity_loss, chamfer_l2, cmat_loss, koleo_loss, patch_features
from afcli.models.point_mae import PointMAE, PointMAEConfig, matched_targets

TINY = dict(
    depth=2, trans_dim=48, encoder_dims=48, num_heads=2, decoder_heads=2, decoder_depth=1, num_group=16, group_size=8
)


def batch(b=3, n=128, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.rand(b, n, 3, generator=generator),
        torch.rand(b, 16, generator=generator),
        torch.rand(b, 3, 2, generator=generator),
    )


@pytest.mark.parametrize("reconstruction", ["centers", "chamfer"])
def test_masking_grouping_and_shapes(reconstruction):
    model = PointMAE(PointMAEConfig(reconstruction=reconstruction, **TINY))
    points, mask_noise, drop_noise = batch()
    out = model(points, mask_noise, drop_noise)
    assert out["visible"].shape == (3, 16 - int(0.6 * 16)) and out["masked"].shape == (3, int(0.6 * 16))
    both = torch.cat([out["visible"], out["masked"]], 1).sort(1).values
    assert torch.equal(both, torch.arange(16).expand(3, -1))  # every patch is visible or masked
    assert torch.equal(out["masked"], mask_noise.argsort(1)[:, :9].sort(1).values)  # the smallest noise is masked
    assert out["tokens"].shape == (3, 7, 48)
    assert torch.allclose(out["centres"][:, 0], points[:, 0])  # FPS starts at point 0
    if reconstruction == "centers":
        assert out["prediction"].shape == out["target"].shape == (3, 9, 3)
    else:
        assert out["prediction"].shape == out["target"].shape == (3, 9, 8, 3)
        assert out["target"].norm(dim=-1).max() <= (points.max() - points.min()) * 3**0.5  # centre-relative
    assert model.point_features(points).shape == (3, 128, 48)


def test_same_noise_same_output_and_the_noise_matters():
    model = PointMAE(PointMAEConfig(**TINY)).train()
    points, mask_noise, drop_noise = batch()
    a, b = model(points, mask_noise, drop_noise), model(points, mask_noise, drop_noise)
    assert torch.equal(a["prediction"], b["prediction"])
    c = model(points, mask_noise, torch.zeros_like(drop_noise))  # every branch dropped
    assert not torch.equal(a["tokens"], c["tokens"])


def test_save_and_strict_load(tmp_path):
    model = PointMAE(PointMAEConfig(reconstruction="chamfer", **TINY)).eval()
    model.save_pretrained(tmp_path / "m")
    again = PointMAE.from_pretrained(tmp_path / "m").eval()
    points = batch()[0]
    assert torch.equal(model.point_features(points), again.point_features(points))
    weights = tmp_path / "m" / "model.safetensors"
    state = load_file(weights)
    state.pop("norm.weight")
    save_file(state, weights)
    with pytest.raises(InputError, match="missing weights"):
        PointMAE.from_pretrained(tmp_path / "m")
    state["norm.weight"], state["surprise"] = torch.ones(48), torch.zeros(1)
    save_file(state, weights)
    with pytest.raises(InputError, match="unexpected weights"):
        PointMAE.from_pretrained(tmp_path / "m")
    with pytest.raises(InputError, match="not a saved Point-MAE"):
        PointMAE.from_pretrained(tmp_path)


def test_models_saved_by_afcli_0_1_still_load(tmp_path):
    """config.json without model_type and model.pt (torch, tensors only): the layout before safetensors."""
    import json

    model = PointMAE(PointMAEConfig(**TINY)).eval()
    folder = tmp_path / "old"
    folder.mkdir()
    config = {
        key: value
        for key, value in json.loads(
            model.save_pretrained(tmp_path / "new").joinpath("config.json").read_text()
        ).items()
        if key != "model_type"
    }
    (folder / "config.json").write_text(json.dumps(config))
    torch.save(model.state_dict(), folder / "model.pt")
    again = PointMAE.from_pretrained(folder).eval()
    assert all(torch.equal(again.state_dict()[k], v) for k, v in model.state_dict().items())


def test_a_folder_of_another_model_family_is_refused(tmp_path):
    from afcli.models.cast import CAST, CASTConfig

    cast = CAST(
        CASTConfig(
            backbone=PointMAEConfig(reconstruction="none", **TINY),
            width=16,
            fusion_heads=2,
            fusion_ffn=16,
            head_hidden=8,
            text_dim=8,
            image_dim=None,
            fusion_layers=1,
        )
    )
    cast.save_pretrained(tmp_path / "cast")
    with pytest.raises(InputError, match="holds a saved cast model, not a Point-MAE"):
        PointMAE.from_pretrained(tmp_path / "cast")


def test_chamfer_l2_is_point_maes_cdl2():
    a = torch.tensor([[[0.0, 0, 0], [1, 0, 0]]])
    b = torch.tensor([[[0.0, 0, 0], [0, 2, 0], [0, 0, 3]]])
    # a→b: 0 and 1 (squared); b→a: 0, 4, 9 → mean(0, 1) + mean(0, 4, 9)
    assert chamfer_l2(a, b).item() == pytest.approx(0.5 + 13 / 3)


def test_affinity_and_koleo():
    torch.manual_seed(0)
    student = torch.randn(2, 5, 7)
    assert affinity_loss(student, student * 3).item() == pytest.approx(0.0, abs=1e-10)  # cosine: scale-free
    orthogonal = torch.eye(4).unsqueeze(0)
    assert koleo_loss(orthogonal).item() == pytest.approx(-math.log(math.sqrt(2)), rel=1e-6)
    clumped = torch.tensor([[[1.0, 0], [1.0, 0.01], [0, 1.0]]])
    assert koleo_loss(clumped) > koleo_loss(torch.tensor([[[1.0, 0], [-1.0, 0], [0, 1.0]]]))


def test_variants_pick_patch_sets_and_pooling():
    model = PointMAE(PointMAEConfig(**TINY)).eval()
    points, mask_noise, drop_noise = batch()
    out = model(points, mask_noise, drop_noise, full_pass=True)
    teacher = torch.randn(3, 128, 5)
    student, target = patch_features(out, teacher, CMATLossConfig())
    assert student.shape == (3, 16, 48) and target.shape == (3, 16, 5)
    index = out["index"][0, 4]
    assert torch.allclose(target[0, 4], teacher[0, index].mean(0), atol=1e-6)  # mean over the kNN group
    # The paper reading: the student of every patch is pooled from the unmasked encoder's per-point
    # output, exactly what a downstream model sees.
    per_point = model.point_features(points)
    assert torch.allclose(student[0, 4], per_point[0, index].mean(0), atol=1e-5)
    tokens, _ = patch_features(out, None, CMATLossConfig(aff_student="tokens"))
    assert torch.equal(tokens, out["all_tokens"])
    official = CMATLossConfig(student_pass="masked", aff_patches="visible", aff_student="tokens", aff_teacher="nearest")
    student, target = patch_features(out, teacher, official)
    assert torch.equal(student, out["tokens"]) and target.shape == (3, 7, 5)
    nearest = torch.cdist(points[0], out["centres"][0]).argmin(1)
    cell = out["visible"][0, 2]
    assert torch.allclose(target[0, 2], teacher[0][nearest == cell].mean(0), atol=1e-6)
    assert CMATLossConfig().full_pass and not official.full_pass and not CMATLossConfig(terms="rec").full_pass
    losses = cmat_loss(out, teacher, CMATLossConfig())
    assert set(losses) == {"rec", "aff", "div", "total"}
    assert losses["total"].item() == pytest.approx(
        (losses["rec"] + 0.1 * losses["aff"] + 0.2 * losses["div"]).item(), rel=1e-6
    )
    with pytest.raises(InputError, match="visible patches only"):
        CMATLossConfig(student_pass="masked", aff_student="tokens").check()
    with pytest.raises(InputError, match="loss.terms"):
        CMATLossConfig(terms="rec,contrast").check()


def test_koleo_scope_batch_spans_shapes():
    same = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])  # two shapes, identical patches
    per_shape = koleo_loss(same)
    across = koleo_loss(same.reshape(1, -1, 2))  # each patch has an identical twin in the other shape
    assert per_shape.item() == pytest.approx(-math.log(math.sqrt(2)), rel=1e-6) and across > per_shape
    with pytest.raises(InputError, match="koleo_scope"):
        CMATLossConfig(koleo_scope="world").check()
    CMATLossConfig(koleo_scope="batch").check()


def test_full_pass_lifts_the_koleo_floor_of_propagated_tokens():
    """With random encoder tokens, students pooled from visible tokens spread to every point are
    blends of a few tokens (nearest neighbours close: a high L_div floor); the unmasked pass gives
    each patch its own token."""
    torch.manual_seed(0)
    points = torch.rand(4, 512, 3)
    model = PointMAE(PointMAEConfig(**{**TINY, "num_group": 32})).eval()
    out = model(points, torch.rand(4, 32), None, full_pass=True)
    out["tokens"] = torch.randn_like(out["tokens"])
    out["all_tokens"] = torch.randn_like(out["all_tokens"])
    floors = {
        name: koleo_loss(patch_features(out, None, CMATLossConfig(student_pass=name))[0]).item()
        for name in ("masked", "full")
    }
    assert floors["full"] < floors["masked"] - 0.3


def test_matched_centre_target_is_order_free():
    model = PointMAE(PointMAEConfig(**TINY)).eval()
    points, mask_noise, _ = batch()
    out = model(points, mask_noise)
    prediction, target = out["prediction"], out["target"]
    masked_centres = torch.gather(out["centres"], 1, out["masked"].unsqueeze(-1).expand(-1, -1, 3))
    assert torch.equal(target.sort(1).values, masked_centres.sort(1).values)  # the same set, re-paired
    shuffled = masked_centres[:, torch.randperm(masked_centres.shape[1])]
    assert torch.equal(matched_targets(prediction, shuffled), target)  # whatever order the patches come in
    best = torch.nn.functional.mse_loss(prediction, target)
    for _ in range(20):  # no other pairing scores lower
        other = masked_centres[:, torch.randperm(masked_centres.shape[1])]
        assert torch.nn.functional.mse_loss(prediction, other) >= best - 1e-7
    rank = PointMAE(PointMAEConfig(centre_target="rank", **TINY))
    assert torch.equal(rank(points, mask_noise)["target"], masked_centres)  # slot k: the k-th masked patch
    with pytest.raises(InputError, match="centre_target"):
        PointMAEConfig(centre_target="chamfer").check()
