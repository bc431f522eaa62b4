"""Text analysis: folding, words and stems per language, detection, the taxonomy lexicon."""

from __future__ import annotations

import pytest

from cityexchange.services import text
from cityexchange.services.text import Language


def test_fold_strips_latin_accents_and_keeps_tamil_vowel_signs() -> None:
    assert text.fold("Inundação ÉTÉ Straße") == "inundacao ete strasse"
    assert text.fold("வெள்ளம்") == "வெள்ளம்"  # the vowel signs are combining marks
    assert text.fold("ﬁre") == "fire"


def test_tamil_words_are_whole_words() -> None:
    spans = [(t.start, t.end) for t in text.tokens("வெள்ளத்தால் சென்னை", Language.TA)]
    assert spans == [(0, 11), (12, 18)]


@pytest.mark.parametrize(
    ("language", "forms"),
    [
        (Language.ES, ["inundación", "inundaciones", "Inundacion"]),
        (Language.NL, ["overstroming", "overstromingen"]),
        (Language.PT, ["enchente", "enchentes"]),
        (Language.FR, ["inondation", "inondations"]),
        (Language.ID, ["banjir", "kebanjiran"]),
        (Language.TA, ["வெள்ளம்", "வெள்ளத்தால்", "வெள்ளத்தில்"]),
        (Language.EN, ["flood", "floods", "flooding", "Flooded"]),
    ],
)
def test_inflections_share_a_stem(language: Language, forms: list[str]) -> None:
    assert len({text.stem_word(form, language) for form in forms}) == 1


def test_stop_words_are_dropped_per_language() -> None:
    assert text.stems("the flood of the century", Language.EN) == ["flood", "centuri"]
    assert text.stems("de overstroming van de stad", Language.NL) == ["overstroom", "stad"]
    assert text.stems("de", Language.EN) == ["de"]  # a Dutch stop word, an English word


def test_words_are_bounded_and_the_pass_is_linear() -> None:
    assert text.tokens("x" * 100_000, Language.EN) == []  # not a word: too long
    many = text.stems("floods " * 20_000, Language.EN)
    assert many == ["flood"] * 20_000
    assert [t.stem for t in text.tokens("<b>bold</b>&amp;", Language.EN)] == [
        "b",
        "bold",
        "b",
        "amp",
    ]


def test_detect_names_the_language_and_falls_back_to_english() -> None:
    assert text.detect("Las inundaciones afectan el centro de la ciudad cada año") is Language.ES
    assert text.detect("Wolkbreuken zetten de straten van de binnenstad onder water") is Language.NL
    assert text.detect("Kawasan pesisir utara kebanjiran setiap bulan purnama") is Language.ID
    assert text.detect("மழைக்காலத்தில் தெருக்கள் வெள்ளத்தில் மூழ்குகின்றன") is Language.TA
    assert text.detect("flood") is Language.EN  # too short to tell
    assert text.detect("") is Language.EN


def test_the_lexicon_maps_words_of_every_language_to_the_taxonomy() -> None:
    for phrase, language in [
        ("inundaciones", Language.ES),
        ("overstromingen", Language.NL),
        ("enchentes", Language.PT),
        ("inondations", Language.FR),
        ("banjir", Language.ID),
        ("வெள்ளத்தால்", Language.TA),
        ("floods", Language.EN),
    ]:
        assert "hazard:FLOOD" in text.taxonomy_of(phrase, language), phrase
    assert text.taxonomy_of("una ola de calor", Language.ES) == {"hazard:HEAT_WAVE"}
    assert text.taxonomy_of("ola", Language.ES) == set()  # a phrase needs all its words
