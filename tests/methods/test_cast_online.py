"""CAST with prompts encoded every step (prompts.online): the official code's RoBERTa dropout,
fine-tuned image-encoder blocks (+ DINOv3 post-LayerNorm) and PIAD's box-preserving crop and colour
jitter — each a setting of the one implementation."""

import numpy as np
import pytest
import torch
from conftest import TINY_CAST
from formats import write_piad_lists

from afcli.errors import InputError
from afcli.images import box_crop, color_jitter


def test_box_crop_keeps_the_interaction_and_varies():
    rows, columns = torch.meshgrid(torch.arange(60), torch.arange(80), indexing="ij")
    picture = torch.stack([rows, columns, rows * 0], -1).to(torch.uint8)  # each pixel knows where it is
    boxes = {"subject": [30.4, 10, 50, 40.2], "object": [45, 20, 70, 35]}
    rng = np.random.default_rng(0)
    shapes = set()
    for _ in range(30):
        crop = box_crop(picture, boxes, rng)
        shapes.add(tuple(crop.shape))
        top, left = int(crop[0, 0, 0]), int(crop[0, 0, 1])
        assert top <= 10 and left <= 30 and top + crop.shape[0] >= 41 and left + crop.shape[1] >= 70
    assert len(shapes) > 10
    assert box_crop(picture, {}, rng) is picture  # no boxes (PIADv2, renders): the whole image


def test_color_jitter_is_torchvisions():
    rng = np.random.default_rng(1)
    picture = torch.from_numpy(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    assert torch.equal(color_jitter(picture, np.random.default_rng(2), 0.0), picture)
    functional = pytest.importorskip("torchvision.transforms.functional")
    from afcli.images import _shift_hue

    rgb = picture.permute(2, 0, 1).float() / 255
    for turns in (-0.1, 0.03, 0.1):
        assert torch.allclose(_shift_hue(rgb, turns), functional.adjust_hue(rgb, turns), atol=2e-3)
    jittered = color_jitter(picture, np.random.default_rng(3), 0.1)
    assert jittered.dtype == torch.uint8 and not torch.equal(jittered, picture)
    assert (jittered.float() - picture.float()).abs().mean() < 30  # a jitter, not a new image


def test_tuned_encoder_holds_and_trains_only_its_last_blocks(tiny_weights):
    from afcli.prompts import ImageEncoder, TunedImageEncoder

    encoder = ImageEncoder("dinov3:vitb16", weights=str(tiny_weights["dinov3"]), pool="tokens")
    tuned = TunedImageEncoder(encoder, 1)
    assert set(tuned.state_dict()) and all(k.startswith(("tuned.0.", "post_layernorm.")) for k in tuned.state_dict())
    tokens, mask = tuned(torch.zeros(2, 64, 64, 3, dtype=torch.uint8) + 100)
    assert tokens.shape == (2, 196, 32) and mask.all()  # resized to 224 px, 16-px patches
    tokens.sum().backward()
    first, last = encoder.teacher.last_blocks(2)
    assert any(p.grad is not None for p in last.parameters()) and all(p.grad is None for p in first.parameters())
    assert tuned.post_layernorm.weight.grad is not None
    dinov2 = TunedImageEncoder(ImageEncoder("dinov2:vitb14", weights=str(tiny_weights["dinov2"])), 2)
    assert dinov2.post_layernorm is None  # the code adds it to DINOv3 only
    with pytest.raises(InputError, match="cannot fine-tune the last 3"):
        TunedImageEncoder(ImageEncoder("dinov2:vitb14", weights=str(tiny_weights["dinov2"])), 3)


def test_per_step_settings_need_online():
    from afcli.methods.cast.settings import CASTSettings

    settings = CASTSettings()
    settings.data.store = "x.h5"
    settings.prompts.text_dropout = True
    with pytest.raises(InputError, match="text_dropout changes prompts every step"):
        settings.check()
    settings.prompts.online = True
    settings.check()
    settings.prompts.image_augment = "piad"
    with pytest.raises(InputError, match="image_augment needs that modality"):
        settings.check()


def test_piad_with_tuned_blocks_and_augmented_images(tmp_path, afcli_run, piad_demo, tiny_weights):
    """The official PIAD settings end to end on PIAD's own format: boxes imported with the training
    images, pictures cropped and jittered per step, DINOv3's last block and post-LayerNorm trained,
    saved beside the model, and used to encode the test images at evaluation."""
    from safetensors.torch import load_file

    from afcli.store import open_store
    from afcli.store.queries import read_queries

    store = tmp_path / "piad.h5"
    afcli_run(
        "data", "import", write_piad_lists(tmp_path / "PIAD", piad_demo, 8), "--benchmark", "piad", "--store", store
    )
    with open_store(store) as f:
        table = read_queries(f)
    trained = [r for r in table.rows() if table.split[r] != "test"]
    assert len(table.rows("val")) and all(set(table.box[r]) == {"subject", "object"} for r in trained)
    assert not any(table.box[r] for r in table.rows("test"))
    old = tmp_path / "old.h5"  # a store written before /queries/box: boxes read as empty, still valid
    import shutil

    import h5py

    from afcli.store import verify_store
    from afcli.store.queries import ensure_queries

    shutil.copy(store, old)
    with h5py.File(old, "a") as f:
        del f["queries/box"]
    with open_store(old) as f:
        assert read_queries(f).box == [{}] * len(table)
    assert not verify_store(old)["problems"]
    with h5py.File(old, "a") as f:  # a re-import adds the column as long as the table
        ensure_queries(f)
        assert f["queries/box"].shape == f["queries/id"].shape
    assert not verify_store(old)["problems"]
    run = tmp_path / "run"
    afcli_run(
        "finetune",
        "cast",
        "--store",
        store,
        "--text",
        "none",
        "--image",
        "dinov3:vitb16",
        "--batch-size",
        "1",
        "--epochs",
        "2",
        "--run",
        run,
        "--set",
        f"prompts.image_weights={tiny_weights['dinov3']}",
        "--set",
        "prompts.image_pool=tokens",
        "--set",
        "model.null_prompt=false",
        "--set",
        "prompts.online=true",
        "--set",
        "prompts.image_finetune_blocks=1",
        "--set",
        "prompts.image_augment=piad",
        "--set",
        "optim.lr=1e-2",
        *TINY_CAST,
        check=0,
    )
    tuned = load_file(str(run / "model" / "prompt_encoder.safetensors"))
    assert set(tuned) >= {"post_layernorm.weight", "post_layernorm.bias"}
    assert not torch.allclose(tuned["post_layernorm.weight"], torch.ones_like(tuned["post_layernorm.weight"]))
    import json

    scored = json.loads(afcli_run("--json", "eval", "piad", "--checkpoint", run, "--store", store, check=0).stdout)[0]
    assert scored["queries"] == 2 and scored["prompt_encoders"]["image"]["fine_tuned_blocks"] == 1


def test_text_dropout_runs_roberta_in_train_mode(cast_store, tmp_path, tiny_roberta):
    from afcli.engine.run import read_settings
    from afcli.methods import train
    from afcli.methods.cast.data import QueryData
    from afcli.methods.cast.settings import CASTSettings
    from afcli.methods.cast.task import CASTTask

    settings = CASTSettings(epochs=1, batch_size=8)
    settings.data.store = str(cast_store)
    settings.prompts.text, settings.prompts.text_weights, settings.prompts.image = (
        "roberta-base",
        str(tiny_roberta),
        None,
    )
    settings.prompts.online, settings.prompts.text_dropout = True, True
    settings.model.null_prompt = False
    from afcli.config import apply_sets

    apply_sets(settings, [pair for pair in TINY_CAST if pair != "--set"])
    run = tmp_path / "run"
    train("cast", settings, run, show_progress=False)
    task = CASTTask(read_settings(CASTSettings, run), run)
    data = task.dataset()
    assert isinstance(data[0]["question"], str) and "text" not in data[0]
    batch = torch.utils.data.default_collate([data[i] for i in range(4)])
    model = task.build_model().train()
    torch.manual_seed(0)
    first = task.loss(model, batch)["total"]
    assert task._text.model.training  # dropout on while training
    assert not torch.equal(first, task.loss(model, batch)["total"])  # a fresh dropout mask each step
    assert "text" in QueryData(cast_store, "val", task.prompts, training=False)[0]  # validation reads the cache
