"""RGB-D frames of a scene in ScanNet's exported layout (its SensReader's output; afcli's built-in rooms
write the same): ``color/<i>.jpg``, ``depth/<i>.png`` (uint16, millimetres), ``pose/<i>.txt`` (4×4
camera-to-world, OpenCV axes) and ``intrinsic/intrinsic_depth.txt`` (4×4; its top-left 3×3 is K of the
depth image). Colour images are resized to the depth image (OpenScene's fusion does the same) and
frames whose pose is not finite (ScanNet marks lost tracking with -inf) are skipped.

A scene's frames are looked for in ``<root>/<scene>/`` when a frames root is given, else beside the
scene's source (its folder, or the folder of its file): ``<folder>/frames/`` or the folder itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from afcli.errors import InputError

DEPTH_SCALE = 1000.0  # ScanNet depth PNGs hold millimetres
LAYOUT = ("color", "depth", "pose", "intrinsic")


@dataclass
class Frames:
    folder: Path
    names: list[str]  # frame stems, numeric order
    poses: np.ndarray  # (F, 4, 4)
    K: np.ndarray  # (3, 3) of the depth image

    def __len__(self) -> int:
        return len(self.names)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(rgb (H, W, 3) u8 at the depth image's size, depth (H, W) metres) of frame ``index``."""
        from PIL import Image, UnidentifiedImageError

        name = self.names[index]
        paths = (self.folder / "color" / f"{name}.jpg", self.folder / "depth" / f"{name}.png")
        try:
            depth = np.asarray(Image.open(paths[1]), dtype=np.float32) / DEPTH_SCALE
            colour = Image.open(paths[0]).convert("RGB")
        except FileNotFoundError as error:
            raise InputError("missing frame image", Path(error.filename)) from None
        except (UnidentifiedImageError, OSError) as error:
            raise InputError(f"unreadable frame image ({error})", paths[0]) from None
        if depth.ndim != 2:
            raise InputError(f"depth should be one channel, got shape {depth.shape}", paths[1])
        if colour.size != (depth.shape[1], depth.shape[0]):
            colour = colour.resize((depth.shape[1], depth.shape[0]), Image.BILINEAR)
        return np.asarray(colour), depth


def frames_folder(scene: str, source: Path | None, root: Path | None) -> Path:
    candidates = [root / scene] if root is not None else []
    if root is None and source is not None:
        folder = source if source.is_dir() else source.parent  # a scene folder, or its mesh / .npy file
        candidates += [folder / "frames", folder]
    for folder in candidates:
        if all((folder / part).is_dir() for part in LAYOUT):
            return folder
    where = candidates[0] if candidates else Path(scene)
    raise InputError(
        f"no RGB-D frames for scene {scene} (color/, depth/, pose/, intrinsic/ as ScanNet exports them; "
        "--frames-root ROOT reads ROOT/<scene>/)",
        where,
    )


def read_frames(folder: Path, step: int = 1) -> Frames:
    """Every ``step``-th frame of ``folder`` with a finite pose."""
    stems = sorted((p.stem for p in (folder / "pose").glob("*.txt")), key=lambda s: (len(s), s))
    if not stems:
        raise InputError("no pose/*.txt frames", folder)
    intrinsic = folder / "intrinsic" / "intrinsic_depth.txt"
    try:
        K = np.loadtxt(intrinsic)[:3, :3]
    except (OSError, ValueError) as error:
        raise InputError(f"unreadable depth intrinsics ({error})", intrinsic) from None
    names, poses = [], []
    for stem in stems[::step]:
        try:
            pose = np.loadtxt(folder / "pose" / f"{stem}.txt").reshape(4, 4)
        except (OSError, ValueError) as error:
            raise InputError(f"unreadable pose ({error})", folder / "pose" / f"{stem}.txt") from None
        if np.isfinite(pose).all():
            names.append(stem)
            poses.append(pose)
    if not names:
        raise InputError("no frame has a finite pose", folder / "pose")
    return Frames(folder, names, np.stack(poses), K)
