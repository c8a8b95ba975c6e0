"""Sound as CAST's third prompt modality: the built-in set's queries carry the sound of their
action, CAST fuses audio tokens (null token where there is no sound), and eval compares prompts."""

import dataclasses

import numpy as np
import pytest
import torch
from conftest import TINY_CAST

from afcli.config import apply_sets
from afcli.data.sounds import AFFORDANCE_SOUNDS, read_sound, sound_prompt
from afcli.models.cast import CAST, CASTConfig
from afcli.models.point_mae import PointMAEConfig
from afcli.store import open_store
from afcli.store.queries import read_queries


def tiny_config(**overrides) -> CASTConfig:
    backbone = PointMAEConfig(
        depth=1, trans_dim=32, encoder_dims=32, num_heads=2, decoder_heads=2, num_group=8, group_size=16
    )
    return CASTConfig(backbone=dataclasses.replace(backbone, reconstruction="none"), width=32, fusion_layers=1,
                      fusion_heads=2, fusion_ffn=32, head_hidden=16, **overrides)  # fmt: skip


def test_models_without_audio_keep_their_weights_and_audio_models_fuse_sound():
    plain = CAST(tiny_config(text_dim=8, image_dim=None))
    assert not any("audio" in key for key in plain.state_dict())  # CAST models saved before load unchanged
    model = CAST(tiny_config(text_dim=8, image_dim=None, audio_dim=6)).eval()
    points = torch.rand(2, 256, 3)
    audio, text = torch.randn(2, 3, 6), torch.randn(2, 4, 8)
    alone = model(points, audio=audio)
    assert alone.shape == (2, 256)
    with_text = model(points, text=text, audio=audio)
    silent = model(points, text=text, audio=audio, audio_present=torch.tensor([False, False]))
    assert not torch.allclose(with_text, silent)
    assert torch.allclose(silent, model(points, text=text))  # no sound: the null token, as with no audio input


def test_built_in_queries_carry_the_sound_of_their_action(cast_store):
    with open_store(cast_store) as f:
        table = read_queries(f, cast_store)
    for affordance, sound in zip(table.affordance, table.audio):
        assert bool(sound) == (affordance in AFFORDANCE_SOUNDS)
        if sound:
            assert sound.startswith(f"synth:{AFFORDANCE_SOUNDS[affordance]}:")
    wave, rate = read_sound(sound_prompt("pour", "mug_0001/pour"), cast_store.parent)
    assert rate == 16000 and wave.dtype == np.float32 and 0 < np.abs(wave).max() <= 1


@pytest.fixture(scope="module")
def audio_run(cast_store, tmp_path_factory):
    from afcli.methods import train
    from afcli.methods.cast.settings import CASTSettings

    settings = CASTSettings()
    settings.data.store, settings.device = str(cast_store), "cpu"
    settings.prompts.text, settings.prompts.image, settings.prompts.audio = "minilm-l6", None, "soundnet8"
    settings.prompts.drop = 0.5
    apply_sets(settings, [pair for pair in TINY_CAST if pair != "--set"])
    settings.epochs, settings.batch_size, settings.val_batch_size = 1, 8, 8
    run = tmp_path_factory.mktemp("cast-audio") / "run"
    train("cast", settings, run, show_progress=False)
    return run


def test_audio_prompts_train_and_are_scored_alone_and_with_text(audio_run):
    from afcli.eval.affordance import EvalOptions, evaluate_run
    from afcli.methods.cast.prompts import load_prompts

    prompts = load_prompts(audio_run)
    assert prompts["audio"].tokens.shape[1:] == (2, 1024) and prompts["image"] is None
    results = {}
    for use in ("text", "audio", "text+audio"):
        result = evaluate_run(audio_run, EvalOptions("synth", device="cpu", use=use))
        assert result["prompts"] == use.split("+")
        results[use] = result["results"]
    assert all("with sound" in scored for scored in results.values())  # the same queries, whatever is fed
    sounded = results["audio"]["with sound"]["overall"]["samples"]
    assert 0 < sounded < results["audio"]["all"]["overall"]["samples"]


def test_prompt_choices_are_checked(audio_run):
    from afcli.errors import InputError
    from afcli.eval.affordance import EvalOptions, evaluate_run

    with pytest.raises(InputError, match="the run has no image encoder"):
        evaluate_run(audio_run, EvalOptions("synth", device="cpu", use="image+audio"))
    with pytest.raises(InputError, match="--prompt must be auto, both, or text, image, audio joined by"):
        evaluate_run(audio_run, EvalOptions("synth", device="cpu", use="smell"))
