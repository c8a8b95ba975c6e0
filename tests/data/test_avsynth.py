"""The built-in audio-visual set: AVAGD's format, masks projected from the right parts, the
paper's splits, reproducible, real recordings picked up when present."""

import csv

import numpy as np
import pytest
from PIL import Image

from afcli.data.avsynth import ACTIONS, COLUMNS, UNSEEN, real_recordings, synthesize_av


@pytest.fixture(scope="module")
def avset(tmp_path_factory):
    soundfile = pytest.importorskip("soundfile")
    tux = tmp_path_factory.mktemp("tuxpaint")
    (tux / "household/tools").mkdir(parents=True)
    soundfile.write(tux / "household/tools/hammer.ogg", np.sin(np.arange(8000) / 5.0) * 0.5, 8000, subtype="VORBIS")
    out = tmp_path_factory.mktemp("avset")
    result = synthesize_av(out, shapes=5, views=1, size=64, clips=2, pairs=2, seed=1, real_root=tux)
    return out, result


def read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_format_and_splits(avset):
    out, result = avset
    splits = {name: read(out / f"{name}.csv") for name in ("train", "val", "unseen")}
    assert {name: len(rows) for name, rows in splits.items()} == result["pairs"]
    assert list(splits["train"][0]) == list(COLUMNS)
    seen_pairs = len(ACTIONS) - len(UNSEEN)
    # five shapes per action, one view, two sounds: shape 4 goes to val, unseen pairs only to unseen.csv
    assert result["pairs"] == {"train": seen_pairs * 4 * 2, "val": seen_pairs * 2, "unseen": len(UNSEEN) * 5 * 2}
    unseen_folders = {f"{c.lower()}/{a.replace(' ', '_')}" for c, a in UNSEEN}
    for name, rows in splits.items():
        for row in rows:
            folder = "/".join(row["image"].split("/")[1:3])
            assert (folder in unseen_folders) == (name == "unseen")
            assert row["pkl"] == "" and all(
                (out / row[k]).is_file() for k in ("image", "mask_func", "mask_dep", "audio")
            )


def test_masks_come_from_the_parts(avset):
    out, _ = avset
    for row in read(out / "train.csv")[::2]:
        image = np.asarray(Image.open(out / row["image"]))
        function = np.asarray(Image.open(out / row["mask_func"]))
        dependency = np.asarray(Image.open(out / row["mask_dep"]))
        assert image.shape == (64, 64, 3) and function.dtype == np.uint8
        assert set(np.unique(function)) <= {0, 255} and set(np.unique(dependency)) <= {0, 255}
        assert (function > 0).mean() >= 0.004 and not ((function > 0) & (dependency > 0)).any()
        if "knock" in row["image"]:
            assert not dependency.any()  # nothing is held when knocking


def test_real_recordings_join_their_kind(avset, tmp_path):
    out, result = avset
    assert result["real_recordings"] == 1
    impact_rows = [row for row in read(out / "train.csv") if row["image"].split("/")[2] in ("chop", "stab", "knock")]
    assert any(row["audio"] == "audio/real/impact/tools_hammer.ogg" for row in impact_rows)
    assert all(not paths for paths in real_recordings(tmp_path).values())


def test_same_seed_same_set(avset, tmp_path):
    out, _ = avset
    synthesize_av(tmp_path, shapes=5, views=1, size=64, clips=2, pairs=2, seed=1, real_root=tmp_path / "none")
    for name in (
        "images/mug/pour/mug_000_v0.jpg",
        "images/mug/pour/mug_000_v0_Function_mask.png",
        "audio/knife/chop/synth_0.wav",
    ):
        assert (out / name).read_bytes() == (tmp_path / name).read_bytes()


def test_another_set_in_the_same_folder_is_refused(avset):
    from afcli.errors import InputError

    out, _ = avset
    with pytest.raises(InputError, match="already holds a set made with"):
        synthesize_av(out, shapes=6, views=1, size=64, clips=2, pairs=2, seed=1)
