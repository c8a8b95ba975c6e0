"""``afcli pretrain cmat`` and ``afcli eval probe``: run directories, resume, DDP on CPU, recipes."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from conftest import ROOT, TINY_MODEL
from safetensors.torch import load_file

from afcli.config import apply_sets, load_recipe
from afcli.engine.distributed import Launch
from afcli.engine.trainer import OptimSettings, learning_rate, parameter_groups
from afcli.errors import InputError
from afcli.methods import train
from afcli.methods.cmat.settings import CMATSettings
from afcli.models.point_mae import PointMAE


def tiny_settings(store, **extra) -> CMATSettings:
    settings = CMATSettings()
    settings.data.store, settings.data.teacher = str(store), "dinov3-vits16"
    apply_sets(settings, [pair for pair in TINY_MODEL if pair != "--set"])
    settings.epochs, settings.batch_size, settings.device = 2, 4, "cpu"
    settings.optim.warmup_epochs, settings.optim.lr = 1, 1e-3
    for key, value in extra.items():
        setattr(settings, key, value)
    return settings


@pytest.mark.slow
def test_run_directory(afcli_cmd, lifted_store, tmp_path):
    run = tmp_path / "run"
    result = afcli_cmd(
        "--json",
        "pretrain",
        "cmat",
        "--store",
        lifted_store,
        "--teacher",
        "dinov3:vits16",
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--run",
        run,
        *TINY_MODEL,
        check=0,
    )
    report = json.loads(result.stdout)
    assert report["epochs"] == 2 and set(report["last_epoch"]) == {"rec", "aff", "div", "total"}
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["stage"] == "pretrain" and config["settings"]["model"]["depth"] == 2
    meta = json.loads((run / "meta.json").read_text())
    assert meta["seed"] == 0 and meta["git_revision"]
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines if "mean_total" in line] == [0, 1]
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["epoch"] == 1 and {"model", "optimizer", "scaler"} <= set(state)
    model = PointMAE.from_pretrained(run / "model")
    assert model.config.depth == 2
    again = afcli_cmd(
        "pretrain", "cmat", "--store", lifted_store, "--teacher", "dinov3:vits16", "--run", run, *TINY_MODEL, check=2
    )
    assert "--resume" in again.stderr


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_matches_an_unbroken_run(lifted_store, tmp_path):
    epochs = 12

    def command(run):
        return [
            sys.executable,
            "-m",
            "afcli",
            "-q",
            "pretrain",
            "cmat",
            "--store",
            str(lifted_store),
            "--teacher",
            "dinov3-vits16",
            "--epochs",
            str(epochs),
            "--batch-size",
            "4",
            "--run",
            str(run),
            "--device",
            "cpu",
            "--set",
            "optim.warmup_epochs=1",
            "--set",
            "optim.lr=1e-3",
            *TINY_MODEL,
        ]

    unbroken, killed = tmp_path / "unbroken", tmp_path / "killed"
    subprocess.run(command(unbroken), check=True)  # same process setup (threads …) as the killed run
    process = subprocess.Popen(command(killed))
    deadline = time.time() + 600  # generous: CI machines can be slow
    while process.poll() is None and time.time() < deadline:
        metrics = killed / "metrics.jsonl"
        if metrics.exists() and any('"epoch": 1, "step": 2' in line for line in metrics.read_text().splitlines()):
            break  # mid-way through epoch 1, after epoch 0's checkpoint
        time.sleep(0.01)
    assert process.poll() is None, "the run finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert torch.load(killed / "last.pt", weights_only=True)["epoch"] < epochs - 1
    subprocess.run(
        [sys.executable, "-m", "afcli", "-q", "pretrain", "cmat", "--run", str(killed), "--resume"], check=True
    )
    a, b = (load_file(run / "model" / "model.safetensors") for run in (unbroken, killed))
    assert all(torch.equal(a[key], b[key]) for key in a)
    rows = [json.loads(line) for line in (killed / "metrics.jsonl").read_text().splitlines()]
    steps = [(row["epoch"], row["step"]) for row in rows if "step" in row]
    assert len(steps) == len(set(steps)), "the interrupted epoch's steps are logged once"
    assert [row["epoch"] for row in rows if "mean_total" in row] == list(range(epochs))


def test_two_gloo_processes_follow_the_one_process_loss_curve(lifted_store, tmp_path):
    one = train("cmat", tiny_settings(lifted_store), tmp_path / "one", show_progress=False)
    two = train("cmat", tiny_settings(lifted_store), tmp_path / "two", plan=Launch(gpus=2), show_progress=False)
    assert two["world_size"] == 2 and len(one["history"]) == len(two["history"]) > 4
    # The same arithmetic up to the order in which gradients are summed: equal to float precision
    # over the first epoch; after that training amplifies those last-bit differences (measured:
    # ~3e-4 relative by the 10th step on the pure-PyTorch ops), so the later steps get a looser band.
    for a, b in zip(one["history"], two["history"]):
        for term in ("rec", "aff", "div", "total"):
            assert a[term] == pytest.approx(b[term], rel=1e-5 if a["epoch"] == 0 else 3e-3, abs=1e-6), (a, b)


def test_recipes_paper_is_the_default_and_official_differs_where_the_code_does():
    paper, recipe = load_recipe(ROOT / "recipes" / "cmat" / "pretrain-paper.yaml", CMATSettings, "pretrain")
    defaults = CMATSettings()
    defaults.data.teacher = "dinov3-vitl16"
    assert paper == defaults
    assert recipe["expected"]["piadv2_seen_aiou"]["full"] == 45.88
    official, _ = load_recipe(ROOT / "recipes" / "cmat" / "pretrain-official.yaml", CMATSettings, "pretrain")
    assert (official.batch_size, official.optim.warmup_epochs, official.data.num_points, official.model.num_group) == (
        96,
        5,
        1024,
        256,
    )
    assert official.model.reconstruction == "chamfer" and official.loss.enabled == ["rec", "aff"]
    assert (official.loss.aff_patches, official.loss.aff_student, official.loss.aff_teacher) == (
        "visible",
        "tokens",
        "nearest",
    )
    assert official.loss.student_pass == "masked" and not official.loss.full_pass
    assert paper.loss.student_pass == "full" and paper.model.centre_target == "matched"
    assert official.data.augment == "scale_translate" and official.data.sampling == "fps_random_start"


def test_schedule_and_weight_decay_groups():
    optim = OptimSettings(lr=1e-4, warmup_epochs=15, warmup_lr=1e-6, min_lr=1e-6)
    assert learning_rate(0, 150, optim) == pytest.approx(1e-6)
    assert learning_rate(5, 150, optim) == pytest.approx(1e-6 + 5 * (1e-4 - 1e-6) / 15)
    assert learning_rate(75, 150, optim) == pytest.approx(1e-6 + 0.5 * (1e-4 - 1e-6) * (1 + math.cos(math.pi / 2)))
    # A group at 0.1 x lr: the whole schedule scaled (one timm scheduler), or annealed to the same
    # floor as the others (CosineAnnealingLR over groups, the CMAT fine-tuning code).
    cosine = OptimSettings(lr=1e-5, warmup_epochs=0, min_lr=1e-6)
    assert learning_rate(10, 10, cosine, 0.1) == pytest.approx(1e-7)
    cosine.min_lr_scope = "group"
    assert learning_rate(0, 10, cosine, 0.1) == pytest.approx(1e-6) and learning_rate(10, 10, cosine) == 1e-6
    assert learning_rate(5, 10, cosine, 0.5) == pytest.approx(1e-6 + 0.5 * (5e-6 - 1e-6))
    cosine.min_lr_scope = "floor"
    with pytest.raises(InputError, match="min_lr_scope"):
        cosine.check()
    model = PointMAE(tiny_settings("x").model)
    decay, no_decay = parameter_groups(model, 0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.ndim > 1 for p in decay["params"]) and no_decay["weight_decay"] == 0
    assert any("norm" in names[id(p)] for p in no_decay["params"])


def test_settings_are_checked_before_work(lifted_store, tmp_path):
    settings = tiny_settings(lifted_store)
    with pytest.raises(InputError, match="unknown setting"):
        apply_sets(settings, ["optim.lrr=1"])
    with pytest.raises(InputError, match="must be float"):
        apply_sets(settings, ["optim.lr=fast"])
    settings.data.teacher = None
    with pytest.raises(InputError, match="affinity loss needs lifted features"):
        train("cmat", settings, tmp_path / "r", show_progress=False)
    settings.data.teacher = "clip-nothing"
    with pytest.raises(InputError, match=r"no features of teacher 'clip-nothing'.*it has dinov3-vits16"):
        train("cmat", settings, tmp_path / "r2", show_progress=False)
    settings.data.teacher = "dinov3"  # lift's default variant, vitl16: not what this store holds
    with pytest.raises(InputError, match=r"features/dinov3-vitl16\) in the store; it has dinov3-vits16"):
        train("cmat", settings, tmp_path / "r3", show_progress=False)
    assert not (tmp_path / "r2").exists() and not (tmp_path / "r3").exists()


@pytest.mark.parametrize("name", ["dinov3:vits16", "dinov3-vits16"])
def test_teacher_names_mean_what_lift_means(name, lifted_store, tmp_path):
    """The lift spec and the store id pick the same array, and the run records the id."""
    settings = tiny_settings(lifted_store)
    settings.data.teacher, settings.epochs = name, 1
    train("cmat", settings, tmp_path / "run", show_progress=False)
    assert (
        yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["settings"]["data"]["teacher"] == "dinov3-vits16"
    )


def test_probe_scores_held_out_shapes(afcli_cmd, lifted_store, tmp_path):
    train("cmat", tiny_settings(lifted_store), tmp_path / "run", show_progress=False)
    result = afcli_cmd(
        "--json", "eval", "probe", "--checkpoint", tmp_path / "run", "--store", lifted_store, "--steps", "50", check=0
    )
    rows = json.loads(result.stdout)
    assert [row["model"] for row in rows] == ["random init", str(tmp_path / "run")]
    for row in rows:
        assert 0 < row["miou"] <= 1 and row["test_shapes"] > 0 and row["train_shapes"] > row["test_shapes"]


def test_samples_are_seeded_by_seed_epoch_and_index(lifted_store):
    from afcli.methods.cmat.data import PretrainPoints

    settings = tiny_settings(lifted_store)
    settings.data.teacher_dim, settings.data.num_points, settings.data.augment = 8, 200, "scale_translate"
    data = PretrainPoints(settings)
    first = data[3]
    assert first["points"].shape == (200, 3) and first["teacher"].shape == (200, 8)
    assert first["mask_noise"].shape == (16,) and first["drop_noise"].shape == (3, 2)
    assert all(torch.equal(first[k], data[3][k]) for k in first)  # same (seed, epoch, index): same draw
    data.epoch = 1
    assert not torch.equal(first["mask_noise"], data[3]["mask_noise"])
    settings.data.sampling = "fps"
    settings.data.augment = "none"
    plain = PretrainPoints(settings)[3]
    from afcli.store import StoreDataset

    stored = StoreDataset(lifted_store, ["points/xyz"], require="lift-dinov3-vits16")[3]["points/xyz"]
    assert torch.equal(plain["points"][0], stored[0])  # FPS from point 0 keeps it first
