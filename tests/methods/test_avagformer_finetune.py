"""AVAGFormer's method wiring: the released augmentation keeps masks on the image, the backbone
freeze schedule, a trained run saved and loaded whole."""

import numpy as np
import pytest
import torch
from conftest import TINY_AVAGFORMER

from afcli.config import apply_sets
from afcli.methods.avagformer.data import _augment
from afcli.methods.avagformer.net import load_net
from afcli.methods.avagformer.settings import AVAGFormerSettings
from afcli.methods.avagformer.task import AVAGFormerTask


def test_augmentation_moves_masks_with_the_image():
    mask = torch.zeros(2, 64, 64, dtype=torch.uint8)
    mask[0, 10:40, 20:30] = 1
    mask[1, 40:60, 5:50] = 1
    image = (mask[0] * 255)[..., None].expand(64, 64, 3).contiguous()
    for seed in range(6):
        moved_image, moved = _augment(image, mask, np.random.default_rng(seed))
        assert set(moved.unique().tolist()) <= {0, 1}
        assert torch.equal(moved_image.float().mean(-1) > 100, moved[0].bool())
        again_image, again = _augment(image, mask, np.random.default_rng(seed))
        assert torch.equal(again, moved) and torch.equal(again_image, moved_image)
    assert not torch.equal(
        _augment(image, mask, np.random.default_rng(0))[1], _augment(image, mask, np.random.default_rng(1))[1]
    )


@pytest.fixture
def task(av_store, tmp_path):
    from afcli.methods.avagformer.task import prepare_run

    settings = AVAGFormerSettings()
    settings.data.store, settings.device = str(av_store), "cpu"
    settings.image_backbone.name, settings.audio.encoder = "effnet-lite0", "soundnet8"
    settings.image_backbone.unfreeze_from, settings.image_backbone.unfreeze_until = 1, 2
    apply_sets(settings, TINY_AVAGFORMER)
    settings = prepare_run(settings.check(), tmp_path, new=True)
    return AVAGFormerTask(settings, tmp_path)


def test_backbone_trains_only_in_its_epochs(task):
    net, data = task.build_model(), task.dataset()
    batch = torch.utils.data.default_collate([data[i] for i in range(2)])
    assert [task.backbone_trains(e) for e in range(4)] == [False, True, False, False]
    for epoch, trains in ((0, False), (1, True)):
        net.zero_grad(set_to_none=True)
        data.epoch = epoch
        task.loss(net, batch)["total"].backward()
        grads = [p.grad for p in net.backbone.parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in grads) == trains
        assert net.head.in_proj[0][0].weight.grad.abs().sum() > 0


def test_saved_run_predicts_the_same(task, tmp_path):
    net = task.build_model().eval()
    task.dataset().epoch = 1  # the backbone has trained: its weights are saved too
    task.export(net, tmp_path / "model")
    loaded, spec = load_net(tmp_path / "model")
    assert spec["backbone"] == "effnet-lite0" and (tmp_path / "model" / "backbone.safetensors").is_file()
    batch = torch.utils.data.default_collate([task.dataset()[i] for i in range(2)])
    with torch.no_grad():
        assert torch.equal(
            net(batch["image"], batch["audio"])["function"], loaded(batch["image"], batch["audio"])["function"]
        )
    result = task.validate(net)
    assert {"score", "function_miou", "dependency_f", "dependency_samples"} <= set(result)


@pytest.fixture(scope="module")
def avagformer_run(av_store, tmp_path_factory):
    from afcli.methods import train

    settings = AVAGFormerSettings()
    settings.data.store, settings.device = str(av_store), "cpu"
    settings.image_backbone.name, settings.audio.encoder = "effnet-lite0", "soundnet8"
    apply_sets(settings, TINY_AVAGFORMER)
    settings.epochs, settings.batch_size, settings.val_batch_size = 1, 8, 8
    run = tmp_path_factory.mktemp("avagformer") / "run"
    expected = {"seen": {"miou_f": 63.08}, "unseen": {"miou_f": 19.59, "f_d": 74.09}}
    train("avagformer", settings, run, show_progress=False, expected=expected)
    return run


def test_eval_scores_runs_and_their_saved_masks_alike(avagformer_run, tmp_path, afcli_run):
    import json

    from afcli.eval.avagd import AVAGDOptions, comparison, evaluate_run, score_file

    options = AVAGDOptions(device="cpu", save_predictions=tmp_path / "p.npz", figures=tmp_path / "fig")
    result = evaluate_run(avagformer_run, options)
    assert set(result["results"]) == {"seen", "unseen"}
    seen = result["results"]["seen"]
    assert set(seen) == {"model", "all background", "all object"}
    assert seen["all background"]["function"]["miou"] == 0.0  # every seen image shows its function part
    assert (tmp_path / "fig" / "gallery.png").is_file()
    rescored = score_file(tmp_path / "p.npz")["results"]
    for split in ("seen", "unseen"):
        for head in ("function", "dependency"):
            for key in ("miou", "f", "samples"):
                assert rescored[split]["model"][head][key] == pytest.approx(
                    result["results"][split]["model"][head][key], abs=1e-6
                )
    assert [row[:2] for row in comparison(result)] == [("seen", "miou_f"), ("unseen", "miou_f"), ("unseen", "f_d")]
    shown = json.loads(
        afcli_run(
            "--json", "eval", "avagd", "--checkpoint", avagformer_run, "--split", "unseen", "--device", "cpu"
        ).stdout
    )
    assert shown[0]["results"]["unseen"]["model"] == result["results"]["unseen"]["model"]


def test_eval_refuses_bad_prediction_files(tmp_path, afcli_run):
    np.savez(tmp_path / "short.npz", function=np.zeros((2, 4, 4)))
    out = afcli_run("eval", "avagd", "--predictions", tmp_path / "short.npz", check=2)
    assert "short.npz: no 'function_gt' array" in out.stderr
    arrays = {k: np.zeros((2, 4, 4)) for k in ("function", "dependency", "function_gt", "dependency_gt")}
    arrays["function"][0, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", **arrays)
    assert (
        "nan.npz: predictions hold NaN"
        in afcli_run("eval", "avagd", "--predictions", tmp_path / "nan.npz", check=2).stderr
    )
    assert "give --checkpoint" in afcli_run("eval", "avagd", check=2).stderr


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_matches_pytorch(avagformer_run, tmp_path, fmt):
    from afcli.export import export_run

    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    result = export_run(avagformer_run, fmt, tmp_path / f"model.{fmt}")
    assert result["inputs"] == {"image": [1, 3, 64, 64], "audio": [1, 3, 1024]}
    assert result["max_abs_difference"] < 1e-4
