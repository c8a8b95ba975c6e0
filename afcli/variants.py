"""``family:variant`` names, as every model table of afcli takes them (teachers, image backbones,
audio encoders): a family of the table and one of its variants, its default when none is given."""

from __future__ import annotations

from afcli.errors import InputError


def resolve_variant(table: dict, family: str, variant: str, what: str, example: str) -> tuple[str, str]:
    """(family, variant) checked against ``table``, whose entries have ``default`` and ``variants``
    (``None``: any name the backend knows)."""
    if family not in table:
        raise InputError(f"unknown {what} {family!r} (choose from {', '.join(table)}; variants as {example})")
    entry = table[family]
    variant = variant or entry.default
    if entry.variants is not None and variant not in entry.variants:
        raise InputError(f"unknown {family} variant {variant!r} (choose from {', '.join(entry.variants)})")
    return family, variant
