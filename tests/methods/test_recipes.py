"""Every recipe in recipes/ runs: resolved through its base chain, built into its settings, and
trained (or lifted) for one short epoch on CPU — at tiny model sizes and with tiny random encoders
standing in for the real ones (same classes, same loading code), everything else as the recipe says."""

import dataclasses
import shutil

import pytest
from conftest import ROOT, TINY_AVAGFORMER, TINY_CAST, TINY_MODEL

from afcli.config import apply_sets
from afcli.recipes import recipe_files, resolve

RECIPES = recipe_files(ROOT / "recipes")


def tiny(pairs: list[str]) -> list[str]:
    return [pair for pair in pairs if pair != "--set"]


def stand_ins(settings, tiny_weights, tiny_roberta) -> None:
    """Point each encoder the recipe names at a tiny random one of the same family (the offline
    MiniLM and EfficientNet ship their real weights and are used as they are)."""
    prompts = settings.prompts
    if prompts.text == "roberta-base":
        prompts.text_weights = str(tiny_roberta)
    if prompts.image:
        family = prompts.image.split(":")[0]
        if family in ("dinov3", "dinov2"):
            prompts.image_weights = str(tiny_weights[family])


def test_every_recipe_is_found():
    names = {path.relative_to(ROOT / "recipes").as_posix() for path in RECIPES}
    assert {"cmat/pretrain-paper.yaml", "cmat/lift.yaml", "cast/laso-paper.yaml", "cast/synth.yaml"} <= names
    assert not any(name.split("/")[-1].startswith("_") for name in names)  # bases run through others


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.relative_to(ROOT / "recipes").as_posix())
def test_every_recipe_runs(recipe, tmp_path, request, tiny_weights, tiny_roberta):
    from afcli.methods import train

    method, settings, raw = resolve(recipe)
    settings.device = "cpu"
    if method == "lift":
        from afcli.lift.pipeline import lift_store
        from afcli.teachers import parse_teacher

        family = parse_teacher(settings.teacher)[0]
        settings.weights = str(tiny_weights["dinov2-reg" if "reg" in settings.teacher else family])
        settings.teacher_size = None
        settings.render = dataclasses.replace(settings.render, size=64, views=2)
        scenes = "frames" in raw.get("settings", {})  # a scene recipe lifts the built-in rooms' frames
        source = request.getfixturevalue("rooms_store" if scenes else "synth_store")
        store = source.parent / f"{recipe.stem}.h5"  # beside its source: scene frames are found from there
        shutil.copy(source, store)
        report = lift_store(store, settings)
        assert report["lifted"] > 0 and report["done"] == report["lifted"] + report["already_done"]
        return
    if method == "cmat":
        store = tmp_path / "store.h5"
        shutil.copy(request.getfixturevalue("lifted_store"), store)
        settings.data.store, settings.data.teacher = str(store), "dinov3-vits16"
        apply_sets(settings, tiny(TINY_MODEL))
        settings.epochs, settings.batch_size = 1, 4
    elif method == "avagformer":
        settings.data.store = str(request.getfixturevalue("av_store"))
        if settings.image_backbone.name.startswith("pvt-v2"):
            settings.image_backbone.weights = str(request.getfixturevalue("tiny_pvt"))
        if settings.audio.encoder == "vggish":
            settings.audio.weights = str(request.getfixturevalue("tiny_vggish"))
        apply_sets(settings, TINY_AVAGFORMER)
        settings.epochs, settings.batch_size, settings.val_batch_size = 1, 8, 8
    elif method == "dfc":
        settings.data.store = str(request.getfixturevalue("dfc_store"))
        if settings.backbone.name.startswith("dinov2"):
            settings.backbone.weights, settings.backbone.size = str(tiny_weights["dinov2"]), 56
            settings.backbone.blocks = 2  # the tiny DINOv2 has 2 blocks
        if settings.text.encoder.startswith("clip"):
            settings.text.weights = str(tiny_weights["clip"])  # its text tower, CLIP's own tokenizer
        settings.model.hidden, settings.data.points, settings.data.min_part_pixels = 32, 8, 4
        settings.epochs, settings.batch_size, settings.steps_per_epoch = 1, 2, 2
    else:
        settings.data.store = str(request.getfixturevalue("cast_store"))
        stand_ins(settings, tiny_weights, tiny_roberta)
        apply_sets(settings, tiny(TINY_CAST))
        settings.epochs, settings.batch_size, settings.val_batch_size = 1, 8, 8
    result = train(method, settings, tmp_path / "run", show_progress=False, expected=raw.get("expected"))
    assert result["epochs"] == 1 and all(row["total"] == row["total"] for row in result["history"])  # no NaN
    saved = "head/model.safetensors" if method == "avagformer" else "model.safetensors"
    assert (tmp_path / "run" / "model" / saved).is_file()


def test_votes_come_from_the_recipe():
    """LASO's own evaluator averages 3 passes; IAGNet's, GREAT's and the CMAT code's take one."""
    votes = {path.name: resolve(path)[1].votes for path in RECIPES if path.parent.name == "cast"}
    assert votes.pop("laso-paper.yaml") == 3
    assert set(votes.values()) == {1}
