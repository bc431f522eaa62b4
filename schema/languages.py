"""The member cities' languages as a GraphQL enum (the domain's, registered in place)."""

from __future__ import annotations

import strawberry

from cityexchange.services.text import Language

strawberry.enum(
    Language,
    description="The language a text is written in (ISO 639-1 codes: NL is Dutch, ES Spanish, "
    "PT Portuguese, FR French, ID Indonesian, TA Tamil, EN English).",
)

__all__ = ["Language"]
