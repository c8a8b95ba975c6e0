"""Recipes and settings: ``base:`` inheritance, merging, and what is refused."""

import pytest

from afcli.config import merged, read_recipe
from afcli.errors import InputError


def test_a_recipe_is_merged_over_its_base_chain(tmp_path):
    (tmp_path / "root.yaml").write_text(
        "stage: finetune\nsource: paper\nsettings:\n  optim: {lr: 0.1, weight_decay: 0.01}\n  epochs: 100\n"
    )
    (tmp_path / "seen.yaml").write_text("base: root.yaml\nsettings: {optim: {lr: 0.2}}\nexpected: {test: {aiou: 1}}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "unseen.yaml").write_text("base: ../seen.yaml\nexpected:\n  test: {aiou: 2}\n")
    recipe = read_recipe(tmp_path / "sub" / "unseen.yaml")
    assert recipe == {
        "stage": "finetune",
        "source": "paper",
        "settings": {"optim": {"lr": 0.2, "weight_decay": 0.01}, "epochs": 100},
        "expected": {"test": {"aiou": 2}},
    }


def test_merging_leaves_both_sides_alone():
    base, over = {"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": 3}, "d": [2]}
    assert merged(base, over) == {"a": {"b": 3, "c": 2}, "d": [2]}
    assert base == {"a": {"b": 1, "c": 2}, "d": [1]} and over == {"a": {"b": 3}, "d": [2]}


def test_a_loop_of_bases_or_a_missing_base_is_one_line(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\nsettings: {}\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\nsettings: {}\n")
    with pytest.raises(InputError, match="loop: a.yaml → b.yaml → a.yaml"):
        read_recipe(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: gone.yaml\nsettings: {}\n")
    with pytest.raises(InputError, match="gone.yaml: cannot read recipe"):
        read_recipe(tmp_path / "c.yaml")
