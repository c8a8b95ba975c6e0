"""2D teachers behind one protocol (:class:`Teacher`): RGB (B, H, W, 3) → patch features (B, D, h, w).

``load_teacher("dinov3:vitb16")`` — a family from :data:`TEACHERS` and an optional variant after the
colon. One entry in the table adds a teacher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from afcli.errors import InputError
from afcli.teachers.base import Teacher


@dataclass(frozen=True)
class TeacherEntry:
    factory: str  # "module:function", imported only when used (keeps `afcli --help` fast)
    default: str
    variants: tuple[str, ...] | None  # None: any name the backend knows (open_clip)
    default_size: int | None

    def build(self) -> Callable[..., Teacher]:
        module, function = self.factory.split(":")
        return getattr(__import__(module, fromlist=[function]), function)


TEACHERS = {
    "dinov3": TeacherEntry(
        "afcli.teachers.vit:dinov3", "vitl16", ("vits16", "vits16plus", "vitb16", "vitl16", "vith16plus"), 224
    ),
    "dinov2": TeacherEntry(
        "afcli.teachers.vit:dinov2",
        "vitb14",
        ("vits14", "vitb14", "vitl14", "vitg14", "vits14-reg", "vitb14-reg", "vitl14-reg", "vitg14-reg"),
        224,
    ),
    "clip": TeacherEntry("afcli.teachers.clip:clip", "ViT-B-16@openai", None, None),
    "effnet-lite0": TeacherEntry("afcli.teachers.effnet:effnet_lite0", "s16", ("s16", "s32"), 224),
}


def parse_teacher(spec: str) -> tuple[str, str]:
    family, _, variant = spec.partition(":")
    if family not in TEACHERS:
        raise InputError(f"unknown teacher {spec!r} (choose from {', '.join(TEACHERS)}; variants as dinov3:vitb16)")
    entry = TEACHERS[family]
    variant = variant or entry.default
    if entry.variants is not None and variant not in entry.variants:
        raise InputError(f"unknown {family} variant {variant!r} (choose from {', '.join(entry.variants)})")
    return family, variant


def load_teacher(
    spec: str, *, weights: str | None = None, offline: bool = False, blocks: int = 1, input_size: int | None = None, device="cpu"
) -> Teacher:
    family, variant = parse_teacher(spec)
    entry = TEACHERS[family]
    size = input_size if input_size is not None else entry.default_size
    teacher = entry.build()(variant, weights=weights, offline=offline, blocks=blocks, input_size=size)
    return teacher.to(device)


__all__ = ["TEACHERS", "Teacher", "load_teacher", "parse_teacher"]
