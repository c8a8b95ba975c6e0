"""AVAGD's format into an image store: images, masks, splits, clips (log-mel from the audio, or from
AVAGD's pickled tensors, read without running pickled code), pairs; resumable and checked."""

import csv
import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from afcli.audio.logmel import examples
from afcli.data.avagd import import_avagd, sample_id
from afcli.data.avsynth import synthesize_av
from afcli.errors import InputError
from afcli.store import open_store
from afcli.store.clips import clip_logmel, clip_wave, read_clips, read_pairs
from afcli.store.inspect import verify_store


@pytest.fixture(scope="module")
def avset(tmp_path_factory):
    pytest.importorskip("soundfile")
    root = tmp_path_factory.mktemp("avset")
    synthesize_av(root, shapes=5, views=1, size=64, clips=2, pairs=2, seed=2, real_root=root / "none")
    return root


def rows(root, split):
    with open(root / f"{split}.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_import_holds_every_image_clip_and_pair(avset, tmp_path):
    store = tmp_path / "av.h5"
    result = import_avagd(avset, store, size=64)
    listed = {split: rows(avset, split) for split in ("train", "val", "unseen")}
    images = {row["image"] for split_rows in listed.values() for row in split_rows}
    assert result["images"] == len(images) and result["pairs"] == sum(len(r) for r in listed.values())
    assert verify_store(store)["ok"]
    with open_store(store) as f:
        ids = [i.decode() for i in f["samples/id"][:]]
        row = listed["train"][0]
        index = ids.index(sample_id(row["image"]))
        assert np.array_equal(f["images/rgb"][index], np.asarray(Image.open(avset / row["image"]).convert("RGB")))
        assert np.array_equal(f["masks/function"][index], np.asarray(Image.open(avset / row["mask_func"])) > 127)
        assert f["labels/split"][index] == b"train" and f["labels/action"][index] == b"knife/chop"
        table = read_clips(f)
        clip = table.id.index(row["audio"][: -len(".wav")].replace("/", "_"))
        wave = clip_wave(f, table, clip)
        assert np.allclose(clip_logmel(f, table, clip), examples(torch.from_numpy(wave))[:, 0].numpy(), atol=0.02)
        assert table.key[clip] == "knife/chop"
        samples, clips, splits = read_pairs(f)
        assert set(splits) == {"train", "val", "unseen"} and (samples >= 0).all() and (clips < len(table)).all()
    again = import_avagd(avset, store, size=64)  # a re-run adds nothing
    with open_store(store) as f:
        assert len(read_clips(f)) == again["clips"] and len(read_pairs(f)[0]) == result["pairs"]


def test_pickled_log_mels_are_read_as_tensors_only(avset, tmp_path):
    root = tmp_path / "pkl"
    (root / "a/chop").mkdir(parents=True)
    row = rows(avset, "train")[0]
    for key in ("image", "mask_func", "mask_dep"):
        (root / "a/chop" / os.path.basename(row[key])).write_bytes((avset / row[key]).read_bytes())
    logmel = torch.randn(20, 1, 96, 64)
    (root / "a/chop/x.pkl").write_bytes(pickle.dumps(logmel.requires_grad_()))
    image, function, dependency = (f"a/chop/{os.path.basename(row[k])}" for k in ("image", "mask_func", "mask_dep"))
    line = f"{image},a/chop/x.pkl,{function},{dependency},a/chop/x.mp3"
    (root / "train.csv").write_text("image,pkl,mask_func,mask_dep,audio\n" + line + "\n")
    import_avagd(root, tmp_path / "pkl.h5", size=64)
    with open_store(tmp_path / "pkl.h5") as f:
        table = read_clips(f)
        assert np.allclose(clip_logmel(f, table, 0), logmel[:, 0].detach().numpy(), atol=1e-2)
        assert clip_wave(f, table, 0) is None  # only the log-mel was given
    (root / "a/chop/x.pkl").write_bytes(pickle.dumps(os.system))
    with pytest.raises(InputError, match="x.pkl: not a pickled log-mel tensor.*refusing to load"):
        import_avagd(root, tmp_path / "evil.h5", size=64)


def test_bad_inputs_are_one_line_or_skipped(avset, tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "train.csv").write_text("image,mask_func\nx.jpg,y.png\n")
    with pytest.raises(InputError, match="train.csv: not an AVAGD split file"):
        import_avagd(root, tmp_path / "a.h5")
    with pytest.raises(InputError, match="no AVAGD split files"):
        import_avagd(tmp_path / "empty", tmp_path / "b.h5")
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in os.listdir(avset):
        if name != "train.csv":
            os.symlink(avset / name, broken / name)
    train = rows(avset, "train")
    (broken / "train.csv").write_text(
        "image,pkl,mask_func,mask_dep,audio\n"
        + "\n".join(",".join(r[k] for k in ("image", "pkl", "mask_func", "mask_dep", "audio")) for r in train)
        + "\nimages/knife/chop/missing.jpg,,images/knife/chop/m_F.png,images/knife/chop/m_D.png,nothing.wav\n"
    )
    with pytest.raises(InputError, match="missing.jpg: no such file"):
        import_avagd(broken, tmp_path / "c.h5", size=64)
    result = import_avagd(broken, tmp_path / "d.h5", size=64, skip_bad=True)
    assert result["failed"] == ["images/knife/chop/missing.jpg"]
    assert verify_store(tmp_path / "d.h5")["ok"]


def test_long_names_fit_the_id_column():
    long = "train/" + "x" * 100 + "/chop/image.jpg"
    assert len(sample_id(long).encode()) <= 64 and sample_id(long) != sample_id(long.replace("image", "other"))
