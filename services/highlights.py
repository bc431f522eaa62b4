"""Highlights of a search hit: where its fields use the query's words, as escaped HTML."""

from __future__ import annotations

import html
import re
from collections.abc import Collection
from dataclasses import dataclass

from cityexchange.services import text
from cityexchange.services.ranking import FIELDS, SearchDocument

SCAN_CHARS = 20_000  # a field's words are looked for in its first 20,000 characters
BEFORE = 60  # characters of context before the first match
WIDTH = 240  # characters of a snippet, about
MAX_HIGHLIGHTS = 3
ALL_FIELDS = sum(spec.bit for spec in FIELDS.values())
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Highlight:
    field: str
    snippet: str  # HTML: escaped text, matched words in <mark>


def highlights(
    document: SearchDocument, terms: Collection[str], fields: int = ALL_FIELDS
) -> list[Highlight]:
    """Up to three fields' snippets, in field order, with the words that matched `terms`
    marked; only the fields in the `fields` mask are read."""
    prefix = f"{document.language.value}:"
    stems = {term[len(prefix) :] for term in terms if term.startswith(prefix)}
    found: list[Highlight] = []
    if not stems:
        return found
    for name, spec in FIELDS.items():
        content = document.fields.get(name)
        if not content or not fields & spec.bit:
            continue
        marks = [
            (token.start, token.end)
            for token in text.tokens(content[:SCAN_CHARS], document.language)
            if token.stem in stems
        ]
        if marks:
            found.append(Highlight(name, snippet(content, marks)))
            if len(found) == MAX_HIGHLIGHTS:
                break
    return found


def _escaped(segment: str) -> str:
    return html.escape(_SPACE.sub(" ", segment))


def snippet(content: str, marks: list[tuple[int, int]]) -> str:
    """About WIDTH characters of `content` around its first mark, cut between words,
    HTML-escaped, each mark inside it wrapped in <mark>."""
    first = marks[0][0]
    start = max(0, first - BEFORE)
    if start > 0:
        space = content.find(" ", start, first)
        start = space + 1 if space != -1 else start
    end = min(len(content), max(start + WIDTH, marks[0][1]))
    if end < len(content):
        space = content.rfind(" ", marks[0][1], end)
        end = space if space != -1 else end
    parts = ["…"] if start > 0 else []
    position = start
    for mark_start, mark_end in marks:
        if mark_start < position or mark_end > end:
            continue
        parts.append(_escaped(content[position:mark_start]))
        parts.append(f"<mark>{html.escape(content[mark_start:mark_end])}</mark>")
        position = mark_end
    parts.append(_escaped(content[position:end]))
    if end < len(content):
        parts.append("…")
    return "".join(parts).strip()
