"""Keyword search without text indexes: normalised words, matched by prefix."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_WORD = re.compile(r"\w+")
MAX_TERMS = 8


def words(text: str) -> list[str]:
    """Lower-case, accent-free words of `text` ("Medellín's" -> ["medellin", "s"])."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _WORD.findall(plain)


def keywords(*texts: str | None, extra: Iterable[str] = ()) -> list[str]:
    """The distinct words a document can be found by."""
    found: dict[str, None] = {}
    for text in (*texts, *extra):
        for word in words(text or ""):
            found.setdefault(word, None)
    return list(found)


def terms(query: str) -> list[str]:
    """Search terms of a user's query; each must prefix-match one keyword of a result."""
    return list(dict.fromkeys(words(query)))[:MAX_TERMS]
