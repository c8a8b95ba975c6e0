import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"  # real samples beside the checkout, not in a clone


def real_fixture(name: str) -> Path:
    """A folder of real benchmark samples from ../shared/fixtures: skipped where a clone has none,
    but under CI=true its absence fails, so that a skip never hides a check."""
    folder = FIXTURES / name
    if not folder.is_dir():
        message = f"real fixtures {folder} not here (they sit in ../shared beside a developer's checkout)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI must run them")
        pytest.skip(message)
    return folder


@pytest.fixture(scope="session")
def piad_demo(tmp_path_factory) -> Path:
    """PIAD's Demo/ folder written in its own format (two objects, their images and labelme boxes)."""
    from formats import write_piad_demo

    return write_piad_demo(tmp_path_factory.mktemp("piad-demo"))


@pytest.fixture
def real_piad_demo() -> Path:
    return real_fixture("piad-demo")


@pytest.fixture(params=["written", "real"])
def any_piad_demo(request) -> Path:
    """Both the written PIAD samples and the real ones: reader checks run on each."""
    return request.getfixturevalue("piad_demo" if request.param == "written" else "real_piad_demo")


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    from afcli.data.synth import synthesize

    out = tmp_path_factory.mktemp("synth")
    synthesize(out, count=24, seed=3)
    return out


@pytest.fixture(scope="session")
def rooms(tmp_path_factory) -> Path:
    """Three small built-in rooms (ScanNet scans with four RGB-D frames each) and ``store.h5``, their
    import. Tests that write copy the store beside it (scene sources are relative to the store)."""
    from afcli.data.rooms import synthesize_rooms
    from afcli.data.scenes import import_scenes

    out = tmp_path_factory.mktemp("rooms")
    synthesize_rooms(out, count=3, frames=4, max_edge=0.3, seed=4)
    import_scenes(out, out / "store.h5")
    return out


@pytest.fixture(scope="session")
def rooms_store(rooms) -> Path:
    return rooms / "store.h5"


@pytest.fixture(scope="session")
def synth_store(synth_dir, tmp_path_factory) -> Path:
    from afcli.data.importer import import_shapes

    store = tmp_path_factory.mktemp("store") / "shapes.h5"
    import_shapes(synth_dir, store, num_points=512)
    return store


@pytest.fixture(scope="session")
def cast_store(tmp_path_factory):
    """48 built-in shapes at 256 points: train, val and test queries with text and rendered-image prompts."""
    from afcli.data.importer import import_shapes
    from afcli.data.synth import synthesize

    root = tmp_path_factory.mktemp("cast")
    synthesize(root / "shapes", count=48, seed=5)
    import_shapes(root / "shapes", root / "store.h5", num_points=256)
    return root / "store.h5"


@pytest.fixture
def afcli_cmd():
    """Run the real console entry point in a subprocess (exit codes, stdout/stderr as users see them)."""
    import subprocess

    def run(*args, check=None, env=None):
        result = subprocess.run(
            [sys.executable, "-m", "afcli", *map(str, args)],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "120", **(env or {})},
        )
        if check is not None:
            assert result.returncode == check, result.stdout + result.stderr
        return result

    return run


@pytest.fixture
def afcli_run():
    """The CLI in this process (typer's CliRunner), with ``afcli_cmd``'s interface: for wiring and
    output, where a fresh interpreter adds nothing but torch's import time."""
    from types import SimpleNamespace

    from typer.testing import CliRunner

    from afcli.cli import app
    from afcli.console import options

    def run(*args, check=None):
        options.json = options.quiet = False
        options.verbose = 0
        invoked = CliRunner().invoke(app, [str(a) for a in args])
        result = SimpleNamespace(returncode=invoked.exit_code, stdout=invoked.stdout, stderr=invoked.stderr)
        if check is not None:
            assert result.returncode == check, (result.stdout + result.stderr, invoked.exception)
        return result

    return run


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> dict:
    """Tiny randomly initialised teachers saved the way real checkpoints are (same classes, same
    loading path as the real weights): {"dinov3": dir, "dinov2": dir, "dinov2-reg": dir, "clip": dir}."""
    import json

    import torch
    from transformers import (
        Dinov2Config,
        Dinov2Model,
        Dinov2WithRegistersConfig,
        Dinov2WithRegistersModel,
        DINOv3ViTConfig,
        DINOv3ViTModel,
    )

    root = tmp_path_factory.mktemp("tiny-weights")
    torch.manual_seed(0)
    vit = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4)
    DINOv3ViTModel(DINOv3ViTConfig(**vit, image_size=64, patch_size=16, num_register_tokens=4)).save_pretrained(
        root / "dinov3"
    )
    Dinov2Model(Dinov2Config(**vit, image_size=56, patch_size=14)).save_pretrained(root / "dinov2")
    Dinov2WithRegistersModel(
        Dinov2WithRegistersConfig(**vit, image_size=56, patch_size=14, num_register_tokens=4)
    ).save_pretrained(root / "dinov2-reg")
    import open_clip

    model_cfg = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 224, "layers": 2, "width": 32, "patch_size": 16, "head_width": 8},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 1},  # CLIP BPE ids
    }
    clip_dir = root / "tiny-clip"
    clip_dir.mkdir()
    preprocess = {
        "mean": list(open_clip.OPENAI_DATASET_MEAN),
        "std": list(open_clip.OPENAI_DATASET_STD),
        "interpolation": "bicubic",
    }
    (clip_dir / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess}))
    torch.save(open_clip.CLIP(**model_cfg).state_dict(), clip_dir / "open_clip_pytorch_model.bin")
    return {"dinov3": root / "dinov3", "dinov2": root / "dinov2", "dinov2-reg": root / "dinov2-reg", "clip": clip_dir}


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory) -> Path:
    """A tiny random RobertaModel saved with a tokenizer (MiniLM's, which ships offline): the paper's
    text encoder through the real loading code."""
    import torch
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel

    from afcli.prompts import _minilm_folder

    folder = tmp_path_factory.mktemp("tiny-roberta") / "roberta"
    tokenizer = AutoTokenizer.from_pretrained(_minilm_folder())
    torch.manual_seed(0)
    RobertaModel(
        RobertaConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            pad_token_id=tokenizer.pad_token_id,
        )
    ).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def lifted_store(synth_store, tiny_weights, tmp_path_factory):
    """The synth store with tiny-DINOv3 features lifted at 64 px: /features/dinov3-vits16 (32-d)."""
    import shutil

    from afcli.lift.pipeline import LiftSettings, RenderSettings, lift_store

    path = tmp_path_factory.mktemp("lifted") / "shapes.h5"
    shutil.copy(synth_store, path)
    lift_store(
        path, LiftSettings(teacher="dinov3:vits16", weights=str(tiny_weights["dinov3"]), render=RenderSettings(size=64))
    )
    return path


@pytest.fixture(scope="session")
def tiny_pvt(tmp_path_factory) -> Path:
    """A tiny random PVT-v2 saved as OpenGVLab's hub checkpoints are (an image classifier)."""
    import torch
    from transformers import PvtV2Config, PvtV2ForImageClassification

    config = PvtV2Config(
        hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 1, 1], mlp_ratios=[2, 2, 2, 2]
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("pvt")
    PvtV2ForImageClassification(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_vggish(tmp_path_factory) -> Path:
    """A small random VGGish saved as torchvggish's weight file is (a flat state dict)."""
    import torch

    from afcli.models.vggish import VGGish, VGGishConfig

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vggish") / "vggish-10086976.pth"
    torch.save(VGGish(VGGishConfig(channels=(4, 4, 8, 8, 8, 8), hidden=16, dim=8)).state_dict(), path)
    return path


@pytest.fixture(scope="session")
def av_store(tmp_path_factory) -> Path:
    """The built-in audio-visual set at 64 px (5 objects per action, one view, two sounds each),
    imported: train, val and unseen pairs."""
    from afcli.data.avagd import import_avagd
    from afcli.data.avsynth import synthesize_av

    root = tmp_path_factory.mktemp("av")
    synthesize_av(root / "set", shapes=5, views=1, size=64, clips=2, pairs=1, seed=0, real_root=root / "none")
    import_avagd(root / "set", root / "av.h5", size=64)
    return root / "av.h5"


TINY_MODEL = [
    "--set",
    "model.depth=2",
    "--set",
    "model.trans_dim=48",
    "--set",
    "model.encoder_dims=48",
    "--set",
    "model.num_heads=2",
    "--set",
    "model.decoder_heads=2",
    "--set",
    "model.decoder_depth=1",
    "--set",
    "model.num_group=16",
    "--set",
    "model.group_size=16",
    "--set",
    "data.num_points=256",
]


TINY_CAST = [
    "--set",
    "model.backbone.depth=1",
    "--set",
    "model.backbone.trans_dim=32",
    "--set",
    "model.backbone.encoder_dims=32",
    "--set",
    "model.backbone.num_heads=2",
    "--set",
    "model.backbone.decoder_heads=2",
    "--set",
    "model.backbone.num_group=8",
    "--set",
    "model.backbone.group_size=16",
    "--set",
    "model.width=32",
    "--set",
    "model.fusion_layers=1",
    "--set",
    "model.fusion_heads=2",
    "--set",
    "model.fusion_ffn=32",
    "--set",
    "model.head_hidden=16",
]


@pytest.fixture(scope="session")
def cast_run(cast_store, tmp_path_factory):
    import json
    import subprocess

    run = tmp_path_factory.mktemp("runs") / "cast"
    recipe = run.parent / "recipe.yaml"
    recipe.write_text(
        "stage: finetune\nsettings: {epochs: 2}\nexpected:\n  protocol: standard\n  test: "
        "{aiou: 50.0, auc: 90.0, sim: 0.7, mae: 0.1}\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "afcli",
            "finetune",
            "cast",
            "--store",
            cast_store,
            "--recipe",
            recipe,
            "--text",
            "minilm-l6",
            "--image",
            "effnet-lite0:s32",
            "--batch-size",
            "8",
            "--run",
            run,
            "--device",
            "cpu",
            "--set",
            "prompts.drop=0.5",
            *TINY_CAST,
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return run, json.loads(result.stdout)


TINY_AVAGFORMER = [
    f"{key}={value}"
    for key, value in {
        "model.dim": 32,
        "model.encoder_layers": 1,
        "model.heads": 4,
        "model.ffn": 64,
        "model.fpn_dim": 16,
        "model.mixer_heads": 4,
        "model.queries": 6,
        "model.generator_layers": 1,
        "model.generator_hidden": 32,
        "model.decoder_dim": 8,
        "model.decoder_heads": 2,
        "model.se_dim": 16,
        "image_backbone.size": 64,
        "audio.segments": 3,
    }.items()
]


@pytest.fixture(scope="session")
def dfc_store(synth_store, tmp_path_factory) -> Path:
    """The synth store with 4 kept 64-px views and oracle pseudo-labels (/labels/oracle)."""
    import shutil

    from afcli.pseudolabel.stage import PseudolabelSettings, pseudolabel_store
    from afcli.render.stage import RenderSettings, render_store

    path = tmp_path_factory.mktemp("dfc") / "shapes.h5"
    shutil.copy(synth_store, path)
    render_store(path, RenderSettings(views=4, size=64), keep_views=True, device="cpu")
    pseudolabel_store(path, PseudolabelSettings(noise=0.1, device="cpu"))
    return path
