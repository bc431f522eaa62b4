"""Typed reads of one JSON object a client wrote (a library record, services/library_records.py):
every value checked for its type and the API's limits, every error naming the field's path."""

from __future__ import annotations

import math
from datetime import date
from enum import StrEnum
from typing import Any, TypeVar

from cityexchange.services import limits
from cityexchange.services.errors import InvalidInput

E = TypeVar("E", bound=StrEnum)


class Fields:
    """Typed reads of one JSON object; every error names the field's path."""

    def __init__(self, value: object, path: tuple[str, ...] = ()) -> None:
        if not isinstance(value, dict):
            raise InvalidInput(path or ("record",), "must be a JSON object")
        self._doc: dict[str, Any] = value  # pyright: ignore[reportUnknownVariableType]
        self._path = path
        self._read: set[str] = set()

    def _get(self, name: str, required: bool) -> object:
        self._read.add(name)
        value = self._doc.get(name)
        if value is None and required:
            raise InvalidInput(self.at(name), "is required")
        return value

    def at(self, name: str) -> tuple[str, ...]:
        return (*self._path, name)

    def text(self, name: str, *, max_length: int = limits.SHORT_TEXT_MAX) -> str:
        value = self._get(name, True)
        if not isinstance(value, str):
            raise InvalidInput(self.at(name), "must be a string")
        return limits.text(self.at(name), value, max_length=max_length)

    def optional_text(self, name: str, *, max_length: int = limits.SHORT_TEXT_MAX) -> str | None:
        return None if self._doc.get(name) is None else self.text(name, max_length=max_length)

    def texts(self, name: str, *, max_length: int = limits.SHORT_TEXT_MAX) -> tuple[str, ...]:
        values = self._list(name)
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise InvalidInput((*self.at(name), str(i)), "must be a string")
        return limits.texts(self.at(name), values, max_length=max_length)  # pyright: ignore[reportArgumentType]

    def _list(self, name: str) -> tuple[object, ...]:
        value = self._get(name, False)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise InvalidInput(self.at(name), "must be a list")
        items: list[object] = value  # pyright: ignore[reportUnknownVariableType]
        if len(items) > limits.LIST_MAX:
            raise InvalidInput(self.at(name), f"must have at most {limits.LIST_MAX} items")
        return tuple(items)

    def integer(
        self, name: str, *, low: int = 0, high: int = 10**12, required: bool = False
    ) -> int | None:
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(self.at(name), f"must be a whole number from {low} to {high}")
        return value

    def number(self, name: str, *, required: bool = False) -> float | None:
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(self.at(name), "must be a number")
        if not math.isfinite(value) or abs(value) > 1e15:
            raise InvalidInput(self.at(name), "must be a finite number below 10^15")
        return float(value)

    def boolean(self, name: str) -> bool | None:
        value = self._get(name, False)
        if value is not None and not isinstance(value, bool):
            raise InvalidInput(self.at(name), "must be true or false")
        return value

    def day(self, name: str) -> date | None:
        value = self._get(name, False)
        if value is None:
            return None
        if isinstance(value, str) and len(value) == 10:
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise InvalidInput(self.at(name), "must be a date written YYYY-MM-DD")

    def choice(self, name: str, enum: type[E], *, required: bool = False) -> E | None:
        value = self._get(name, required)
        if value is None:
            return None
        try:
            return enum(value)
        except ValueError:
            names = ", ".join(e.value for e in enum)
            raise InvalidInput(self.at(name), f"must be one of {names}") from None

    def choices(self, name: str, enum: type[E]) -> tuple[E, ...]:
        found: list[E] = []
        for i, value in enumerate(self._list(name)):
            try:
                found.append(enum(value))
            except ValueError:
                raise InvalidInput(
                    (*self.at(name), str(i)), f"{value!r} is not a {enum.__name__}"
                ) from None
        return tuple(found)

    def nested(self, name: str) -> Fields | None:
        value = self._get(name, False)
        return None if value is None else Fields(value, self.at(name))

    def objects(self, name: str) -> list[Fields]:
        return [Fields(v, (*self.at(name), str(i))) for i, v in enumerate(self._list(name))]

    def done(self) -> None:
        """Refuse fields nobody read: a misspelt field must not be dropped silently."""
        unknown = sorted(set(self._doc) - self._read)
        if unknown:
            raise InvalidInput(self.at(unknown[0]), "is not a field of this record")
