"""Input limits (docs/security.md), checked by use cases so every entrypoint gets them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TypeVar

from cityexchange.services.errors import InvalidInput

T = TypeVar("T")
Field = str | tuple[str, ...]
"""A field name, or the path to a nested one: ("cost", "amount")."""

TITLE_MAX = 200
SUMMARY_MAX = 1_000
BODY_MAX = 50_000
COMMENT_MAX = 10_000
SHORT_TEXT_MAX = 200
NOTE_MAX = 5_000
LIST_MAX = 50


# Characters refused in every text: C0 and C1 controls but tab, line feed and carriage return
# (NUL among them), lone UTF-16 surrogates (which JSON can carry but UTF-8 cannot store), and
# the bidi overrides LRO/RLO (U+202D, U+202E), which make text display in an order other
# than the one it is read in (CVE-2021-42574, "Trojan Source").
_REFUSED_ALWAYS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u202d\u202e"
# Also refused in one-line texts (titles, names, tags, short texts): tabs and line breaks
# (U+2028 and U+2029 too),
# every other bidi control (U+061C, U+200E, U+200F, U+202A-U+202C, U+2066-U+2069) and
# invisible characters (U+00AD, U+200B, U+2060-U+2064, U+FEFF) that make two names look
# alike. ZWNJ and ZWJ (U+200C, U+200D) stay: Persian, Indic scripts and emoji need them.
_REFUSED_ONE_LINE = (
    "\t\n\r\u2028\u2029\u061c\u200e\u200f\u202a-\u202c\u2066-\u2069\u00ad\u200b\u2060-\u2064\ufeff"
)
_REFUSED_IN_TEXT = re.compile(f"[{_REFUSED_ALWAYS}]")
_REFUSED_IN_LINE = re.compile(f"[{_REFUSED_ALWAYS}{_REFUSED_ONE_LINE}]")


def text(field: Field, value: str, *, max_length: int) -> str:
    """A required text: stripped, not blank, at most `max_length` characters, with no
    refused character. Texts of at most SHORT_TEXT_MAX characters are one-line texts."""
    stripped = value.strip()
    if not stripped:
        raise InvalidInput(field, "must not be blank")
    if len(stripped) > max_length:
        raise InvalidInput(field, f"must be at most {max_length} characters")
    refusing = _REFUSED_IN_LINE if max_length <= SHORT_TEXT_MAX else _REFUSED_IN_TEXT
    refused = refusing.search(stripped)
    if refused is not None:
        character, position = ord(refused.group()), refused.start() + 1
        raise InvalidInput(
            field, f"must not contain the character U+{character:04X} (at {position})"
        )
    return stripped


def optional_text(field: Field, value: str | None, *, max_length: int) -> str | None:
    """An optional text: None or blank becomes None."""
    if value is None or not value.strip():
        return None
    return text(field, value, max_length=max_length)


def items(field: Field, values: Sequence[T] | None, *, max_items: int = LIST_MAX) -> tuple[T, ...]:
    """A list input of at most `max_items` distinct items, order kept."""
    if values is None:
        return ()
    if len(values) > max_items:
        raise InvalidInput(field, f"must have at most {max_items} items")
    return tuple(dict.fromkeys(values))


def tags(field: Field, values: Sequence[str] | None) -> tuple[str, ...]:
    """Tags: lower-cased, stripped, each 1..50 characters."""
    cleaned = [text(field, value, max_length=50).lower() for value in items(field, values)]
    return tuple(dict.fromkeys(cleaned))


SLUG = re.compile(r"^[a-z][a-z0-9-]{1,62}$")  # a city's slug, its realm's name
_SLUG_RULE = "must be 2-63 lower-case letters, digits or '-', starting with a letter"
_OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")


def slug(field: Field, value: str) -> str:
    if not SLUG.match(value):
        raise InvalidInput(field, _SLUG_RULE)
    return value


def slugs(field: Field, values: Sequence[str] | None) -> tuple[str, ...]:
    """City slugs, each of the shape `add_city` accepts (whether it is a member is not asked)."""
    return tuple(slug(field, value) for value in items(field, values))


def local_ids(field: Field, values: Sequence[str] | None) -> tuple[str, ...]:
    """The local parts of stored ids (24 hexadecimal digits), as global ids decode to them."""
    checked = items(field, values)
    for value in checked:
        if not _OBJECT_ID.match(value):
            raise InvalidInput(field, "must be the id of a problem or solution")
    return checked


def texts(
    field: Field, values: Sequence[str] | None, *, max_length: int = SHORT_TEXT_MAX
) -> tuple[str, ...]:
    """A list of short texts."""
    return tuple(text(field, value, max_length=max_length) for value in items(field, values))


def moment(field: Field, value: datetime | None) -> None:
    """A date and time the database can store: in UTC, within years 1 to 9999."""
    if value is None:
        return
    try:
        value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise InvalidInput(field, "is outside the years 1 to 9999 once in UTC") from None


def non_negative(field: Field, value: int | float | None) -> None:
    if value is not None and value < 0:
        raise InvalidInput(field, "must not be negative")
