"""Verbs built from tables: pretrain / finetune from the method table, eval from the benchmark table,
export by a run's method, and the recipe shelf — checked in this process."""

import dataclasses
import json

import pytest
from conftest import ROOT

from afcli.errors import InputError
from afcli.methods import METHODS, get_method, load

CLI_FLAGS = ("--store", "--recipe", "--set", "--epochs", "--batch-size", "--workers", "--run", "--resume", "--gpus")


@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_method_has_the_shared_flags_and_its_own(name, afcli_run):
    method = METHODS[name]
    text = afcli_run(method.stage, name, "--help", check=0).stdout
    options = load(method.options)
    for flag in (*CLI_FLAGS, "--nodes", "--device", "--json"):
        assert flag in text
    for flag in options.flags:  # Annotated[T, typer.Option("--flag", …)]: the name is the first argument
        assert flag.annotation.__metadata__[0].default in text
    defaults = method.settings_type()
    assert options.defaults == {"epochs": defaults.epochs, "batch_size": defaults.batch_size}  # what --help says
    for flag in options.flags:  # every flag names a real setting
        target = defaults
        for part in flag.setting.split("."):
            assert part in {f.name for f in dataclasses.fields(target)}, flag.setting
            target = getattr(target, part)


def test_an_unknown_method_names_the_known_ones(afcli_run):
    assert afcli_run("pretrain", "nope").returncode == 2
    with pytest.raises(InputError, match="known: cast"):
        get_method("nope", "finetune")


def test_resume_refuses_a_method_flag(afcli_run, tmp_path):
    result = afcli_run("finetune", "cast", "--resume", "--run", tmp_path, "--text", "minilm-l6", check=2)
    assert "only --epochs, --device and --store" in result.stderr


def test_eval_and_export_follow_the_runs_method(afcli_run, tmp_path):
    """A CMAT run makes no heat maps: eval and export say so in one line, naming the run."""
    run = tmp_path / "cmat-run"
    run.mkdir()
    (run / "config.yaml").write_text("stage: pretrain\nmethod: cmat\nsettings: {data: {store: x.h5}}\n")
    result = afcli_run("eval", "synth", "--checkpoint", run, check=2)
    assert "a cmat run makes no heat maps" in result.stderr
    result = afcli_run("export", "torchscript", "--checkpoint", run, "--out", tmp_path / "m.pt", check=2)
    assert "cannot export a cmat model" in result.stderr
    (run / "config.yaml").write_text("stage: pretrain\nmethod: mystery\nsettings: {}\n")
    assert "unknown method 'mystery'" in afcli_run("eval", "synth", "--checkpoint", run, check=2).stderr


def test_recipes_lists_every_recipe_with_its_method_and_numbers(afcli_run):
    rows = json.loads(afcli_run("recipes", "--folder", ROOT / "recipes", "--json", check=0).stdout)
    by_name = {row["recipe"]: row for row in rows}
    assert len(rows) == 25 and not any(name.split("/")[-1].startswith("_") for name in by_name)
    assert by_name["avagformer/avagd-paper.yaml"]["expected"]["unseen"]["miou_f"] == 19.59
    assert by_name["avagformer/synth.yaml"]["source"] == "afcli"
    assert by_name["dfc/synth.yaml"]["source"] == "afcli" and by_name["dfc/objaverse-official.yaml"]["method"] == "dfc"
    assert by_name["dfc/objaverse-paper.yaml"]["expected"]["synthetic"]["pck@23"] == 0.48
    assert by_name["cmat/pretrain-demo.yaml"]["source"] == "afcli"
    assert by_name["sole/lift-openscene.yaml"]["method"] == "lift"
    assert by_name["cast/piad-unseen-paper.yaml"]["method"] == "cast"
    assert by_name["cast/piad-unseen-paper.yaml"]["source"] == "paper"
    assert by_name["cast/piad-unseen-paper.yaml"]["expected"]["test"]["aiou"] == 8.4
    assert by_name["cmat/pretrain-official.yaml"]["method"] == "cmat"
    assert by_name["cmat/lift.yaml"]["method"] == "lift"
    table = afcli_run("recipes", "--folder", ROOT / "recipes", check=0).stdout
    assert "laso-paper.yaml" in table and "unseen 17.5" in table


def test_recipes_show_resolves_the_base_chain(afcli_run):
    from afcli.config import load_recipe
    from afcli.methods.cast.settings import CASTSettings

    path = ROOT / "recipes" / "cast" / "piadv2-unseen-object-official.yaml"
    shown = json.loads(afcli_run("recipes", "show", path, "--json", check=0).stdout)
    built = load_recipe(path, CASTSettings, "finetune")[0]
    assert shown["settings"] == json.loads(json.dumps(dataclasses.asdict(built)))
    assert shown["source"] == "official-code" and shown["settings"]["prompts"]["image"] == "dinov2:vitb14"
    assert shown["settings"]["optim"]["lr"] == 4e-5  # from piadv2-seen-official, over _base-official
    text = afcli_run("recipes", "show", path, check=0).stdout
    assert "fusion: points" in text and "expected:" in text
    assert afcli_run("recipes", "show", ROOT / "recipes" / "nope.yaml", check=2).returncode == 2
