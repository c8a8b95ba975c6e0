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
import torch

from afcli.errors import InputError
from afcli.store.schema import decode

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

    def depth(self, index: int) -> np.ndarray:
        """Frame ``index``'s depth (H, W) in metres, 0 where none was measured."""
        path = self.folder / "depth" / f"{self.names[index]}.png"
        depth = np.asarray(_open_image(path), dtype=np.float32) / DEPTH_SCALE
        if depth.ndim != 2:
            raise InputError(f"depth should be one channel, got shape {depth.shape}", path)
        return depth

    def colour(self, index: int, size: tuple[int, int]) -> np.ndarray:
        """Frame ``index``'s colour image (H, W, 3) u8, resized to ``size`` (H, W): the depth image's."""
        from PIL import Image

        colour = _open_image(self.folder / "color" / f"{self.names[index]}.jpg").convert("RGB")
        if colour.size != (size[1], size[0]):
            colour = colour.resize((size[1], size[0]), Image.BILINEAR)
        return np.asarray(colour)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(rgb (H, W, 3) u8 at the depth image's size, depth (H, W) metres) of frame ``index``."""
        depth = self.depth(index)
        return self.colour(index, depth.shape), depth


def _open_image(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError:
        raise InputError("missing frame image", path) from None
    except (UnidentifiedImageError, OSError) as error:
        raise InputError(f"unreadable frame image ({error})", path) from None
    return image


def frame_visibility(
    points: torch.Tensor,
    K: torch.Tensor,
    poses: torch.Tensor,
    depth: torch.Tensor,
    mode: str = "relative",
    tolerance: float = 0.25,
    border: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixels (V, N, 2) of ``points`` (N, 3) in frames with intrinsics ``K`` (3, 3), camera-to-world
    ``poses`` (V, 4, 4) and ``depth`` maps (V, H, W), whether each point is seen there (inside the image
    less ``border`` pixels and passing the depth test of afcli.lift.core.depth_visibility) and the
    test's weight."""
    from afcli.lift.core import depth_visibility, pixel_lookup
    from afcli.render.cameras import Cameras

    views, height, width = depth.shape
    pixels, z = Cameras(K.float().expand(views, 3, 3), poses.float(), height, width).project(points)
    flat, inside = pixel_lookup(pixels, height, width)
    inside &= (pixels[..., 0] >= border) & (pixels[..., 0] <= width - 1 - border)
    inside &= (pixels[..., 1] >= border) & (pixels[..., 1] <= height - 1 - border)
    visible, weight = depth_visibility(z, depth.reshape(views, -1).gather(1, flat), mode, tolerance)
    return pixels, visible & inside, weight


def scene_frames(f, store: Path, row: int, root: str | None, step: int = 1) -> Frames:
    """The frames of the store's scene ``row`` (see :func:`frames_folder`)."""
    scene = decode(f["samples/id"][row : row + 1])[0]
    source = decode(f["samples/source"][row : row + 1])[0]
    folder = frames_folder(scene, store.resolve().parent / source if source else None, Path(root) if root else None)
    return read_frames(folder, step)


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
