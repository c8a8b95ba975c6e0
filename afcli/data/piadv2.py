"""PIADv2 (GREAT, Shao et al. 2025) in its own on-disk format (GREAT data_utils/dataset_PIAD_GREAT.py,
CMAT data/piadv2_dataset.py; ../shared/reference/metrics-and-formats.md §6):

    <root>/{Seen,Unseen_aff,Unseen_obj}/Img_{train,val,test}.txt, Point_{train,val,test}.txt
        one path per line, …/<Object>/<instance>/<affordance>/<file>
    point files: .npy (2048, 4) = x, y, z, ground-truth mask of that affordance

The object is the path's fourth-last component and the affordance its second-last. Test pairs
image i with point cloud i; training pairs each image with a random cloud of the same object and
affordance (a loader's job, not the reader's). ``val`` lists exist for ``Seen`` only; the unseen
settings validate on ``test``. List entries may be absolute or relative to the setting's folder or
its parent (the dataset root).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from afcli.errors import InputError

SETTINGS = ("Seen", "Unseen_aff", "Unseen_obj")
SPLITS = ("train", "val", "test")


@dataclass
class PiadV2Entry:
    path: Path
    object: str
    affordance: str


def _resolve(entry: str, bases: list[Path]) -> Path:
    path = Path(entry)
    if path.is_absolute():
        return path
    for base in bases:
        if (base / path).exists():
            return base / path
    return bases[0] / path


def read_list(root: str | Path, setting: str, split: str, kind: str) -> list[PiadV2Entry]:
    """The ``Img`` or ``Point`` list of one setting and split."""
    root = Path(root)
    if setting not in SETTINGS:
        raise InputError(f"unknown PIADv2 setting {setting!r} (choose from {', '.join(SETTINGS)})")
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")
    folder = root / setting
    listing = next(
        (
            folder / name
            for name in (f"{kind}_{split}.txt", f"{kind}_{split.capitalize()}.txt")
            if (folder / name).is_file()
        ),
        None,
    )
    if listing is None:
        hint = " (the unseen settings have no val list: use test)" if split == "val" and setting != "Seen" else ""
        raise InputError(f"no {kind}_{split}.txt{hint}", folder)
    entries = []
    for number, line in enumerate(listing.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = Path(line.strip()).parts
        if len(parts) < 4:
            raise InputError(
                f"line {number}: {line.strip()!r} is not …/<Object>/<instance>/<affordance>/<file>", listing
            )
        entries.append(PiadV2Entry(_resolve(line.strip(), [folder, root]), parts[-4], parts[-2]))
    return entries


def read_points(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """xyz (2048, 3) and the ground-truth mask (2048,) of a PIADv2 point file."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such point file", path)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise InputError(f"not a .npy array ({str(error).splitlines()[0]})", path) from None
    if data.ndim != 2 or data.shape[1] != 4:
        raise InputError(f"expected (N, 4) = x, y, z, mask; got {data.shape}", path)
    if not np.isfinite(data).all():
        raise InputError("NaN or Inf in points or mask", path)
    return data[:, :3].astype(np.float32), data[:, 3].astype(np.float32)
