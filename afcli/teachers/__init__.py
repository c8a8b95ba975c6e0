"""2D teachers behind one protocol (:class:`Teacher`): RGB (B, H, W, 3) → patch features (B, D, h, w).

``load_teacher("dinov3:vitb16")`` — a family from :data:`TEACHERS` and an optional variant after the
colon. One entry in the table adds a teacher.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from afcli.errors import InputError
from afcli.teachers.base import Teacher, store_id
from afcli.variants import resolve_variant


@dataclass(frozen=True)
class TeacherEntry:
    factory: str  # "module:function", imported only when used (keeps `afcli --help` fast)
    default: str
    variants: tuple[str, ...] | None  # None: any name the backend knows (open_clip)
    default_size: int | None
    package: str  # the optional package it runs on (afcli.extras.OPTIONAL), for `afcli doctor`

    def build(self) -> Callable[..., Teacher]:
        module, function = self.factory.split(":")
        return getattr(__import__(module, fromlist=[function]), function)


TEACHERS = {
    "dinov3": TeacherEntry(
        "afcli.teachers.vit:dinov3",
        "vitl16",
        ("vits16", "vits16plus", "vitb16", "vitl16", "vith16plus"),
        224,
        "transformers",
    ),
    "dinov2": TeacherEntry(
        "afcli.teachers.vit:dinov2",
        "vitb14",
        ("vits14", "vitb14", "vitl14", "vitg14", "vits14-reg", "vitb14-reg", "vitl14-reg", "vitg14-reg"),
        224,
        "transformers",
    ),
    "clip": TeacherEntry("afcli.teachers.clip:clip", "ViT-B-16@openai", None, None, "open_clip"),
    "effnet-lite0": TeacherEntry(
        "afcli.teachers.effnet:effnet_lite0", "s16", ("s16", "s32"), 224, "efficientnet_lite_pytorch"
    ),
}


def _split(spec: str) -> tuple[str, str, int]:
    """``family[:variant]`` or a store id ``family-variant[-lastK]`` → (family, variant or "", blocks)."""
    if ":" in spec:
        family, _, variant = spec.partition(":")
        return family, variant, 1
    for family in sorted(TEACHERS, key=len, reverse=True):  # "effnet-lite0" itself holds a hyphen
        if spec == family:
            return family, "", 1
        if spec.startswith(family + "-"):
            variant, blocks = spec[len(family) + 1 :], 1
            match = re.fullmatch(r"(.+)-last(\d+)", variant)
            if match:
                variant, blocks = match.group(1), int(match.group(2))
            return family, variant, blocks
    return spec, "", 1


def _resolve(spec: str) -> tuple[str, str, int]:
    family, variant, blocks = _split(spec)
    family, variant = resolve_variant(TEACHERS, family, variant, "teacher", "dinov3:vitb16")
    return family, variant, blocks


def parse_teacher(spec: str) -> tuple[str, str]:
    """A teacher named as any verb accepts it — ``dinov3``, ``dinov3:vitb16`` or the store id
    ``dinov3-vitb16`` — as (family, variant), the family's default variant filled in."""
    return _resolve(spec)[:2]


def teacher_id(spec: str) -> str:
    """The store id of a teacher name (``effnet-lite0`` → ``effnet-lite0-s16``), as :attr:`Teacher.id`
    names it when lifting."""
    family, variant, blocks = _resolve(spec)
    return store_id(f"{family}:{variant}", blocks)


def lifted_teacher(store, spec: str) -> str:
    """The id of the teacher features in ``store`` that ``spec`` names, as ``lift`` names them: an id
    the store holds as it is, else the teacher name resolved (``effnet-lite0`` → ``effnet-lite0-s16``)."""
    from afcli.store import open_store
    from afcli.store.inspect import lifted_teachers

    with open_store(store) as f:
        have = lifted_teachers(f)
    if spec in have:
        return spec
    wanted = teacher_id(spec)
    if wanted not in have:
        raise InputError(
            f"no features of teacher {spec!r} (features/{wanted}) in the store; it has {', '.join(have) or 'none'}: "
            f"run `afcli lift --teacher {spec}` first",
            store,
        )
    return wanted


def load_teacher(
    spec: str,
    *,
    weights: str | None = None,
    offline: bool = False,
    blocks: int = 1,
    input_size: int | None = None,
    device="cpu",
) -> Teacher:
    family, variant = parse_teacher(spec)
    entry = TEACHERS[family]
    size = input_size if input_size is not None else entry.default_size
    teacher = entry.build()(variant, weights=weights, offline=offline, blocks=blocks, input_size=size)
    return teacher.to(device)


__all__ = ["TEACHERS", "Teacher", "load_teacher", "lifted_teacher", "parse_teacher", "teacher_id"]
