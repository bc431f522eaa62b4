"""Input limits (BRIEF §7), checked by use cases so every entrypoint gets them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from services.errors import InvalidInput

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


def text(field: Field, value: str, *, max_length: int) -> str:
    """A required text: stripped, not blank, at most `max_length` characters."""
    stripped = value.strip()
    if not stripped:
        raise InvalidInput(field, "must not be blank")
    if len(stripped) > max_length:
        raise InvalidInput(field, f"must be at most {max_length} characters")
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


def texts(
    field: Field, values: Sequence[str] | None, *, max_length: int = SHORT_TEXT_MAX
) -> tuple[str, ...]:
    """A list of short texts."""
    return tuple(text(field, value, max_length=max_length) for value in items(field, values))


def non_negative(field: Field, value: int | float | None) -> None:
    if value is not None and value < 0:
        raise InvalidInput(field, "must not be negative")
