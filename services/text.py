"""Text analysis for search: languages, folding, Snowball stems, the cross-language lexicon.

Pure and linear in its input: one regular-expression pass finds the words (no backtracking:
a character class repeated), each word is at most MAX_WORD characters, and a stemmer's work
is bounded by its word. Nothing is built at import: the language model (1.5 s to load) and the
stemmers are made on first use, the model under a lock, since detection may run in a thread.
"""

from __future__ import annotations

import importlib
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any, NamedTuple, Protocol

from cityexchange.services import lexicon


class Language(StrEnum):
    """The member cities' languages, stored as ISO 639-1 codes."""

    NL = "nl"
    ES = "es"
    PT = "pt"
    FR = "fr"
    ID = "id"
    TA = "ta"
    EN = "en"


_STEMMERS = {
    Language.NL: "dutch",
    Language.ES: "spanish",
    Language.PT: "portuguese",
    Language.FR: "french",
    Language.ID: "indonesian",
    Language.TA: "tamil",
    Language.EN: "english",
}
DETECT_CHARS = 2_000  # detection looks at the start of a text only
DETECT_MIN_CHARS = 20  # shorter texts say too little: EN
DETECT_MIN_CONFIDENCE = 0.6  # below this (of the seven, normalised) the text is EN
MAX_WORD = 64  # longer "words" (hashes, base64) are not words: skipped

# A word: a run of one character class (linear, nothing to backtrack): letters, digits and
# underscores, the combining marks of Latin accents and the whole Tamil block (Python's \w
# alone splits Tamil words at every vowel sign), and the joiners Indic scripts use.
_WORD = re.compile(r"[\w\u0300-\u036f\u0b80-\u0bff\u200c\u200d]+")


class Token(NamedTuple):
    """A word's span in the original text and its folded stem."""

    start: int
    end: int
    stem: str


def _is_latin(character: str) -> bool:
    code = ord(character)
    return code < 0x250 or 0x1E00 <= code <= 0x1EFF


def fold(text: str) -> str:
    """Case-folded, with the accents of Latin letters removed ("Inundación" -> "inundacion");
    marks on other scripts (Tamil vowel signs) stay."""
    folded = text.casefold()
    if folded.isascii():
        return folded
    kept: list[str] = []
    base_is_latin = False
    for character in unicodedata.normalize("NFKD", folded):
        if unicodedata.combining(character):
            if not base_is_latin:
                kept.append(character)
            continue
        base_is_latin = _is_latin(character)
        kept.append(character)
    return unicodedata.normalize("NFC", "".join(kept))


class _Stemmer(Protocol):
    def stemWord(self, word: str) -> str: ...  # PyStemmer's name


@cache
def _stemmer(language: Language) -> _Stemmer:
    # One per language, used from the event loop's thread only (a Stemmer is not
    # thread-safe); its own cache keeps the most recent words' stems.
    pystemmer: Any = importlib.import_module("Stemmer")  # compiled, without type stubs
    stemmer: _Stemmer = pystemmer.Stemmer(_STEMMERS[language])
    return stemmer


@cache
def _stop_words(language: Language) -> frozenset[str]:
    return frozenset(fold(word) for word in lexicon.STOP_WORDS[language.value].split())


def _words(text: str) -> Iterable[re.Match[str]]:
    return (m for m in _WORD.finditer(text) if m.end() - m.start() <= MAX_WORD)


def stem_word(word: str, language: Language) -> str | None:
    """The folded stem of one word, None for a stop word. Stemmed before folding: the
    Snowball rules know their language's accents ("inundação" -> "inund")."""
    lowered = unicodedata.normalize("NFC", word.casefold())
    if fold(lowered) in _stop_words(language):
        return None
    return fold(_stemmer(language).stemWord(lowered))


def tokens(text: str, language: Language) -> list[Token]:
    """Every word of `text` but stop words, with its span and folded stem."""
    found: list[Token] = []
    for match in _words(text):
        stem = stem_word(match.group(), language)
        if stem:
            found.append(Token(match.start(), match.end(), stem))
    return found


def stems(text: str, language: Language) -> list[str]:
    """The folded stems of `text`'s words, stop words dropped, in order."""
    return [token.stem for token in tokens(text, language)]


def surface_words(text: str) -> list[str]:
    """The words of `text` as written, case-folded (for queries, before stemming)."""
    return [m.group().casefold() for m in _words(text)]


@dataclass(frozen=True, slots=True)
class _Phrase:
    rest: tuple[str, ...]  # the stems after the first
    term: str


@cache
def _lexicon(language: Language) -> dict[str, tuple[_Phrase, ...]]:
    """Lexicon phrases of `language`, by the stem of their first word."""
    by_first: dict[str, list[_Phrase]] = {}
    for term, words in lexicon.TAXONOMY_WORDS.items():
        for phrase in words.get(language.value, "").split(";"):
            phrase_stems = stems(phrase, language)
            if phrase_stems:
                first, *rest = phrase_stems
                by_first.setdefault(first, []).append(_Phrase(tuple(rest), term))
    return {first: tuple(phrases) for first, phrases in by_first.items()}


def taxonomy_of(text: str, language: Language) -> set[str]:
    """Taxonomy terms ("hazard:FLOOD", "sector:WATER") whose words `text` uses in
    `language`; a phrase matches when all its words occur."""
    present = set(stems(text, language))
    phrases = _lexicon(language)
    return {
        phrase.term
        for stem in present
        for phrase in phrases.get(stem, ())
        if all(word in present for word in phrase.rest)
    }


class _Detector:
    """py3langid restricted to the seven languages, loaded once on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._identifier: Any = None

    def classify(self, text: str) -> tuple[str, float]:
        with self._lock:
            if self._identifier is None:
                langid: Any = importlib.import_module("py3langid.langid")  # untyped
                identifier = langid.LanguageIdentifier.from_model_file(
                    langid.MODEL_FILE, norm_probs=True
                )
                identifier.set_languages([language.value for language in Language])
                self._identifier = identifier
            identifier = self._identifier
        language, probability = identifier.classify(text)
        return str(language), float(probability)


_DETECTOR = _Detector()


def warm() -> None:
    """Load the language model now (about a second and a half, once per process), so the
    first write that detects a language does not spend its time budget on it."""
    _DETECTOR.classify("warm")


def detect(text: str) -> Language:
    """The language `text` is most likely in, of the seven; EN when too short or unsure."""
    sample = text[:DETECT_CHARS].strip()
    if len(sample) < DETECT_MIN_CHARS:
        return Language.EN
    code, probability = _DETECTOR.classify(sample)
    if probability < DETECT_MIN_CONFIDENCE:
        return Language.EN
    return Language(code)
