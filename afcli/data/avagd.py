"""AVAGD (AVAGFormer's audio-visual affordance grounding dataset) in its own on-disk format, and the
built-in set written in it (``afcli data synth-av``), imported into an image store
(../shared/reference/metrics-and-formats.md §6; docs/store.md):

    <root>/{train,val,unseen}.csv   columns image, pkl, mask_func, mask_dep, audio (paths relative to root)
    image      RGB picture of any size           → /images/rgb (S, size, size, 3) u8, bilinear
    mask_func  *_Function_mask.png, 0/255        → /masks/function (S, size, size) u8 {0, 1}, nearest
    mask_dep   *_Dependency_mask.png (may be 0)  → /masks/dependency
    pkl        pickled torch tensor [T, 1, 96, 64] of VGGish log-mel examples (optional)
    audio      the sound file (wav/ogg/flac/mp3)  → /clips: log-mel (computed when there is no pkl) and
               16 kHz PCM

Each image becomes one sample (id: its path without extension, ``/`` → ``_``, as AVAGFormer names
samples; category: the object folder; /labels/action: ``object/action`` from the two folders above
the file; /labels/split: the csv it is listed in), each distinct sound one clip (its key: the two
folders above its file), each csv row one pair. Images are resized once, at import, to ``size``:
AVAGFormer resizes to 512 when loading and draws its RandomAffine at the original resolution
before that; afcli draws it on the stored image.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Callable

import numpy as np

from afcli.errors import InputError
from afcli.store.clips import PAIR_SPLITS, Clip, add_clips, add_pairs, ensure_clips
from afcli.store.schema import ID_DTYPE

SPLITS = PAIR_SPLITS  # the csv files, one per split
COLUMNS = ("image", "pkl", "mask_func", "mask_dep", "audio")
STAGE = "import"


def read_rows(root: Path) -> list[dict]:
    """Every row of the split files present under ``root``, with its split."""
    rows = []
    for split in SPLITS:
        path = root / f"{split}.csv"
        if not path.is_file():
            continue
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in ("image", "mask_func", "mask_dep") if c not in (reader.fieldnames or [])]
            if missing or not ({"pkl", "audio"} & set(reader.fieldnames or [])):
                raise InputError(
                    f"not an AVAGD split file (columns {reader.fieldnames}, needs {', '.join(COLUMNS)})", path
                )
            rows += [{**row, "split": split, "csv": str(path)} for row in reader]
    if not rows:
        raise InputError(f"no AVAGD split files ({', '.join(s + '.csv' for s in SPLITS)})", root)
    return rows


def sample_id(image: str) -> str:
    """AVAGFormer's sample name (the image path without extension, ``/`` → ``_``), shortened with a
    hash when it does not fit the store's id column."""
    name = str(Path(image).with_suffix("")).replace("/", "_")
    limit = np.dtype(ID_DTYPE).itemsize
    if len(name.encode("utf-8")) <= limit:
        return name
    return (
        name.encode("utf-8")[: limit - 17].decode("utf-8", "ignore")
        + "-"
        + hashlib.sha1(name.encode()).hexdigest()[:16]
    )


def action_key(path: str) -> tuple[str, str]:
    """(object, action) from ``…/<object>/<action>/<file>`` (an image's or a sound's path)."""
    parts = Path(path).parts
    if len(parts) < 3:
        raise InputError(f"path {path!r} is not <object>/<action>/<file> as AVAGD's")
    return parts[-3], parts[-2]


def read_image(path: Path, size: int, mask: bool) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise InputError("no such file", path)
    try:
        with Image.open(path) as image:
            image = image.convert("L" if mask else "RGB")
            image = image.resize((size, size), Image.NEAREST if mask else Image.BILINEAR)
            values = np.asarray(image)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise InputError(f"not a readable image ({' '.join(str(error).split())[:100]})", path) from None
    return (values > 127).astype(np.uint8) if mask else values


def read_clip(root: Path, row: dict) -> Clip:
    """The row's sound: its log-mel from ``pkl`` when given (AVAGD's released features), else computed
    from the audio file; the 16 kHz waveform whenever the audio file is there."""

    from afcli.audio import read_audio, resample
    from afcli.audio.logmel import SAMPLE_RATE, examples

    audio = root / row["audio"] if row.get("audio") else None
    pkl = root / row["pkl"] if row.get("pkl") else None
    wave = None
    if audio is not None and audio.is_file():
        samples, rate = read_audio(audio)
        wave = resample(samples.double(), rate, SAMPLE_RATE)
    if pkl is not None:
        logmel = _read_pkl(pkl)
    elif wave is not None:
        logmel = examples(wave)[:, 0].numpy()
    else:
        raise InputError("the row names neither a pkl file nor a readable audio file", audio or Path(row["csv"]))
    source = row["pkl"] or row["audio"]
    clip_id = str(Path(row.get("audio") or source).with_suffix("")).replace("/", "_")
    return Clip(clip_id, "/".join(action_key(source)), source, logmel, None if wave is None else wave.float().numpy())


def _read_pkl(path: Path) -> np.ndarray:
    from afcli.pickles import ERRORS, load_tensors

    if not path.is_file():
        raise InputError("no such file", path)
    try:
        with open(path, "rb") as handle:
            value = load_tensors(handle)
    except (*ERRORS, RuntimeError) as error:
        raise InputError(f"not a pickled log-mel tensor ({' '.join(str(error).split())[:100]})", path) from None
    values = np.asarray(value.detach().float().numpy() if hasattr(value, "detach") else value)
    if values.ndim != 4 or values.shape[1:] != (1, 96, 64):
        raise InputError(f"log-mel tensor of shape {list(values.shape)}, expected [T, 1, 96, 64]", path)
    if not np.isfinite(values).all():
        raise InputError("log-mel tensor holds NaN or Inf", path)
    return values[:, 0]


def import_avagd(
    root: str | Path,
    store: str | Path,
    size: int = 512,
    skip_bad: bool = False,
    advance: Callable[[], None] = lambda: None,
) -> dict:
    """Import the split files under ``root`` into ``store`` (created if missing; resumable)."""
    from afcli.store import StoreWriter
    from afcli.store.schema import DONE, FAILED

    root, store = Path(root), Path(store)
    if size < 32 or size % 32:
        raise InputError(f"--size must be a positive multiple of 32, got {size}")
    rows = read_rows(root)
    images = list(dict.fromkeys(row["image"] for row in rows))
    split_of = {}
    for row in rows:
        if split_of.setdefault(row["image"], row["split"]) != row["split"]:
            raise InputError(
                f"image {row['image']} is listed in two splits ({split_of[row['image']]}, {row['split']})", root
            )
    first = {row["image"]: row for row in reversed(rows)}
    failed: list[str] = []
    with StoreWriter(store, create=True, num_points=0) as writer:
        writer.ensure_array("images/rgb", (size, size, 3), "u1", per_point=False, attrs={"size": size})
        for name in ("masks/function", "masks/dependency"):
            writer.ensure_array(name, (size, size), "u1", per_point=False, attrs={"size": size})
        writer.ensure_array("labels/split", (), "S16", per_point=False)
        writer.ensure_array("labels/action", (), "S96", per_point=False)
        arrays = ["images/rgb", "masks/function", "masks/dependency", "labels/split", "labels/action"]
        writer.ensure_stage(STAGE, arrays)
        writer.ensure_table(ensure_clips)
        writer.begin()
        sample_rows = writer.add_samples(
            [sample_id(i) for i in images], [action_key(i)[0] for i in images], [str(Path(i)) for i in images]
        )
        row_of = dict(zip(images, sample_rows))
        for image in images:
            row = row_of[image]
            if row not in writer.pending(STAGE, [row]):
                advance()
                continue
            try:
                values = {
                    "images/rgb": read_image(root / image, size, mask=False),
                    "masks/function": read_image(root / first[image]["mask_func"], size, mask=True),
                    "masks/dependency": read_image(root / first[image]["mask_dep"], size, mask=True),
                    "labels/split": np.bytes_(split_of[image]),
                    "labels/action": np.bytes_("/".join(action_key(image))),
                }
            except InputError:
                if not skip_bad:
                    raise
                writer.mark(STAGE, row, FAILED)
                failed.append(image)
                advance()
                continue
            writer.write(row, values)
            writer.mark(STAGE, row, DONE)
            advance()
        clips, pairs, clip_of_row = {}, [], {}
        for index, row in enumerate(rows):
            if row["image"] in failed:
                continue
            try:
                clip = read_clip(root, row)
            except InputError:
                if not skip_bad:
                    raise
                failed.append(row.get("audio") or row.get("pkl"))
                continue
            clips.setdefault(clip.id, clip)
            clip_of_row[index] = clip.id
        clip_rows = writer.add_rows(add_clips, list(clips.values()))
        for index, clip_id in clip_of_row.items():
            pairs.append((row_of[rows[index]["image"]], clip_rows[clip_id], rows[index]["split"]))
        writer.add_rows(add_pairs, pairs)
    return {"store": str(store), "images": len(images), "clips": len(clips), "pairs": len(pairs), "failed": failed}
