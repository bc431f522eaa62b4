"""Generated member cities, problems and solutions for bench/discovery_cost.py, seeded in bulk
and indexed through the real index code (services/store/search_index.replace).

The text is drawn word by word from a vocabulary per language with a Zipf distribution
(rank r has weight 1/r): the real words of the shipped case-study library
(cityexchange/data/*.jsonl) ranked by how often the library uses them, then a long tail of
compounds of two of them, so common words occur in most documents and tail words in few, as
in real text. Deterministic: the same seed gives the same corpus, and the first documents of
a larger corpus are those of a smaller one.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Any, cast

from bson import ObjectId

from cityexchange.services import ranking, search, text
from cityexchange.services.models import (
    City,
    Cost,
    Outcome,
    Problem,
    ResilienceProfile,
    Solution,
    SolutionDetails,
    Transferability,
)
from cityexchange.services.store import search_index
from cityexchange.services.store.database import Database, Document
from cityexchange.services.store.visibility import AUDIENCE
from cityexchange.services.taxonomy import (
    Hazard,
    IncomeGroup,
    ProblemStatus,
    Sector,
    SolutionStatus,
    Urgency,
)
from cityexchange.services.text import Language
from cityexchange.services.visibility import EVERYONE

TAIL_WORDS = 20_000  # compounds per language after the library's own words
TAGS = 400  # distinct tags, drawn by Zipf too
BATCH = 100  # solutions (and half as many problems) per bulk write and index transaction
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)

# Where the member cities' languages are spoken: (language, share of cities, countries).
LANGUAGES: tuple[tuple[Language, float, tuple[str, ...]], ...] = (
    (Language.EN, 0.35, ("GB", "US", "ZA", "AU", "NG", "KE", "PH")),
    (Language.ES, 0.15, ("ES", "MX", "CO", "CL", "PE")),
    (Language.PT, 0.10, ("BR", "PT", "MZ")),
    (Language.FR, 0.10, ("FR", "SN", "CI", "CA")),
    (Language.ID, 0.12, ("ID",)),
    (Language.NL, 0.08, ("NL", "BE")),
    (Language.TA, 0.10, ("IN", "LK")),
)
# Country codes by region, and those not of the World Bank's HIGH income group.
REGIONS = {
    country: region
    for region, countries in {
        "Europe": "GB ES PT FR NL BE",
        "North America": "US CA",
        "Latin America": "MX CO CL PE BR",
        "Africa": "ZA NG KE MZ SN CI",
        "Oceania": "AU",
        "Asia": "PH ID IN LK",
    }.items()
    for country in countries.split()
}
INCOME = {
    country: group
    for group, countries in {
        IncomeGroup.LOW: "MZ",
        IncomeGroup.LOWER_MIDDLE: "NG KE PH SN CI IN LK",
        IncomeGroup.UPPER_MIDDLE: "ID ZA MX CO PE BR",
    }.items()
    for country in countries.split()
}
CLIMATES = ("Af", "Am", "Aw", "BWh", "BSk", "Csa", "Csb", "Cfa", "Cfb", "Cwa", "Dfb", "Dfa")
RIVERS = ("Rhine", "Maas", "Ganges", "Ciliwung", "Magdalena", "Tagus", "Seine", "Niger")
NETWORKS = ("Resilient Cities Network", "C40", "ICLEI", "Making Cities Resilient 2030")
TEXT_FIELDS = ("title", "summary", "body", "successFactors", "limitingFactors")


def _library_words() -> dict[Language, list[str]]:
    """Each language's words in the shipped library, most used first."""
    counts: dict[Language, Counter[str]] = {language: Counter() for language in Language}
    for item in resources.files("cityexchange.data").iterdir():
        if not item.name.endswith(".jsonl"):
            continue
        for line in item.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record.get("kind") not in {"problem", "solution"}:
                continue
            language = Language(record.get("language") or "en")
            for name in TEXT_FIELDS:
                value: object = record.get(name) or ""
                parts = cast(list[object], value) if isinstance(value, list) else [value]
                for part in parts:
                    counts[language].update(
                        w for w in text.surface_words(str(part)) if not w.isdigit()
                    )
    return {language: [w for w, _ in c.most_common()] for language, c in counts.items()}


@dataclass(frozen=True, slots=True)
class Vocabulary:
    words: list[str]
    cumulative: list[float]

    def draw(self, rng: random.Random, count: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cumulative, k=count)


def _zipf(items: Sequence[str], exponent: float = 1.0) -> Vocabulary:
    return Vocabulary(
        list(items),
        list(itertools.accumulate(1 / (r + 1) ** exponent for r in range(len(items)))),
    )


def vocabularies(seed: int = 11) -> dict[Language, Vocabulary]:
    rng = random.Random(seed)  # noqa: S311 - a reproducible corpus, not a secret
    found: dict[Language, Vocabulary] = {}
    for language, words in _library_words().items():
        head = words[: max(50, len(words) // 2)]  # compounds of the commoner half
        tail = {f"{rng.choice(head)}{rng.choice(head)}" for _ in range(TAIL_WORDS * 2)}
        known = set(words)
        found[language] = _zipf([*words, *sorted(tail - known)[:TAIL_WORDS]])
    return found


class Corpus:
    """The generated corpus: `city_list`, then problems and solutions from `batches()`."""

    def __init__(self, *, city_count: int, seed: int = 11) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - a reproducible corpus
        self.words = vocabularies(seed)
        tags = [w for w in self.words[Language.EN].words[100:3_000] if len(w) > 4][:TAGS]
        self.tags = _zipf(tags)
        self.hazards = _zipf([h.value for h in Hazard], 0.8)
        self.city_list = self._cities(city_count)
        self.made = 0  # solutions generated so far
        self.first_problems: list[Problem] = []  # the first batch's: the suggestions' askers

    def _sentence(self, language: Language, low: int, high: int) -> str:
        words = self.words[language].draw(self.rng, self.rng.randint(low, high))
        return " ".join(words).capitalize()

    def _text(self, language: Language, sentences: int, low: int, high: int) -> str:
        return ". ".join(self._sentence(language, low, high) for _ in range(sentences)) + "."

    def _cities(self, count: int) -> list[City]:
        rng = self.rng
        shares = [share for _, share, _ in LANGUAGES]
        made: list[City] = []
        for i in range(count):
            language, _, countries = rng.choices(LANGUAGES, weights=shares)[0]
            country = rng.choice(countries)
            hazards = dict.fromkeys(Hazard(h) for h in self.hazards.draw(rng, rng.randint(3, 7)))
            made.append(
                City(
                    slug=f"city-{i:03d}",
                    name=f"City {i}",
                    country=country,
                    created_at=EPOCH,
                    region=REGIONS[country],
                    population=int(10 ** rng.uniform(4.7, 7.3)),
                    languages=(language.value, "en") if language is not Language.EN else ("en",),
                    climate_zone=rng.choice(CLIMATES),
                    profile=ResilienceProfile(hazards=tuple(hazards)),
                    networks=tuple(rng.sample(NETWORKS, rng.randint(0, 2))),
                    coastal=rng.random() < 0.5,
                    rivers=tuple(rng.sample(RIVERS, rng.randint(0, 1))),
                    income_group=INCOME.get(country, IncomeGroup.HIGH),
                )
            )
        return made

    def _taxonomy(self, city: City) -> tuple[tuple[Hazard, ...], tuple[Sector, ...], list[str]]:
        rng = self.rng
        own = list(city.profile.hazards)
        hazards = tuple(dict.fromkeys(rng.sample(own, min(len(own), rng.randint(1, 3)))))
        sectors = tuple(dict.fromkeys(rng.choices(list(Sector), k=rng.randint(1, 2))))
        tags = list(dict.fromkeys(self.tags.draw(rng, rng.randint(1, 4))))
        return hazards, sectors, tags

    def problem(self, id: str, city: City, created: datetime) -> Problem:
        language = Language(city.languages[0])
        hazards, sectors, tags = self._taxonomy(city)
        return Problem(
            id=id,
            city=city.slug,
            title=self._sentence(language, 5, 10),
            summary=self._text(language, 2, 8, 16),
            body=self._text(language, 4, 8, 18),
            hazards=hazards,
            sectors=sectors,
            tags=tuple(tags),
            status=self.rng.choice(list(ProblemStatus)),
            urgency=self.rng.choices(list(Urgency), weights=(8, 3, 1))[0],
            stakeholders=(),
            affected_population=self.rng.randint(1_000, 2_000_000),
            answered_by=(),
            faced_by=(),
            version=1,
            created_at=created,
            updated_at=created,
            language=language,
        )

    def solution(self, id: str, city: City, problem_id: str, created: datetime) -> Solution:
        rng = self.rng
        language = Language(city.languages[0])
        hazards, sectors, tags = self._taxonomy(city)
        started = date(rng.randint(2005, 2025), rng.randint(1, 12), 1)
        amount = round(10 ** rng.uniform(4, 8), -3)
        details = SolutionDetails(
            body=self._text(language, rng.randint(4, 9), 8, 20),
            status=rng.choices(list(SolutionStatus), weights=(1, 3, 5, 2, 1))[0],
            started_on=started,
            completed_on=started + timedelta(days=rng.randint(200, 2_000)),
            cost=Cost(amount, "EUR", started.year, amount),
            outcomes=tuple(
                Outcome(self._sentence(language, 2, 4), rng.uniform(1, 100), "%", None)
                for _ in range(rng.randint(0, 2))
            ),
            success_factors=tuple(self._sentence(language, 4, 9) for _ in range(2)),
            limiting_factors=(self._sentence(language, 4, 9),),
            transferability=Transferability((), self._sentence(language, 6, 12), None),
            sectors=sectors,
            tags=tuple(tags),
        )
        return Solution(
            id=id,
            city=city.slug,
            title=self._sentence(language, 4, 9),
            summary=self._text(language, 2, 8, 16),
            hazards=hazards,
            problem_ids=(problem_id,),
            adapted_from=None,
            details=details,
            version=1,
            created_at=created,
            updated_at=created,
            language=language,
        )

    def batches(self, solutions: int) -> Iterator[tuple[list[Problem], list[Solution]]]:
        """`solutions` more solutions, in batches of BATCH, each with half as many problems
        (of random cities; a solution addresses a problem of its batch)."""
        goal = self.made + solutions
        while self.made < goal:
            size = min(BATCH, goal - self.made)
            problem_list = [
                self.problem(str(ObjectId()), self.rng.choice(self.city_list), self._when(i))
                for i in range(max(1, size // 2))
            ]
            solution_list = [
                self.solution(
                    str(ObjectId()),
                    self.rng.choice(self.city_list),
                    self.rng.choice(problem_list).id,
                    self._when(i),
                )
                for i in range(size)
            ]
            self.made += size
            self.first_problems = self.first_problems or problem_list
            yield problem_list, solution_list

    def _when(self, n: int) -> datetime:
        return EPOCH + timedelta(minutes=self.made + n)


def problem_document(p: Problem, answered_by: Sequence[str]) -> Document:
    """The stored form services/store/problems.py reads back (the fields it writes)."""
    return {
        "_id": ObjectId(p.id),
        "city": p.city,
        "title": p.title,
        "summary": p.summary,
        "body": p.body,
        "hazards": [h.value for h in p.hazards],
        "sectors": [s.value for s in p.sectors],
        "tags": list(p.tags),
        "status": p.status.value,
        "urgency": p.urgency.value,
        "stakeholders": [],
        "affectedPopulation": p.affected_population,
        "keywords": search.keywords(p.title, p.summary, extra=p.tags),
        "language": p.language.value,
        "answeredBy": [ObjectId(s) for s in answered_by],
        "facedBy": [],
        "version": p.version,
        "createdAt": p.created_at,
        "updatedAt": p.updated_at,
        AUDIENCE: [EVERYONE],  # PUBLIC, as everything the corpus stands for
    }


def solution_document(s: Solution) -> Document:
    """The stored form services/store/solutions.py reads back (the fields it writes)."""
    d = s.details
    assert d.cost is not None
    assert d.transferability is not None
    return {
        "_id": ObjectId(s.id),
        "city": s.city,
        "title": s.title,
        "summary": s.summary,
        "body": d.body,
        "hazards": [h.value for h in s.hazards],
        "sectors": [x.value for x in d.sectors],
        "tags": list(d.tags),
        "status": d.status.value,
        "problemIds": [ObjectId(p) for p in s.problem_ids],
        "startedOn": d.started_on.isoformat() if d.started_on else None,
        "completedOn": d.completed_on.isoformat() if d.completed_on else None,
        "cost": {"amount": d.cost.amount, "currency": d.cost.currency, "year": d.cost.year},
        "costEur": d.cost.eur,
        "costPerResidentEur": None,
        "residentsServed": None,
        "evidence": None,
        "fundingSources": [],
        "partners": [],
        "outcomes": [
            {"metric": o.metric, "value": o.value, "unit": o.unit, "note": o.note}
            for o in d.outcomes
        ],
        "successFactors": list(d.success_factors),
        "limitingFactors": list(d.limiting_factors),
        "transferability": {
            "prerequisites": [],
            "context": d.transferability.context,
            "doDifferently": None,
        },
        "contact": None,
        "links": [],
        "keywords": search.keywords(s.title, s.summary, extra=d.tags),
        "language": s.language.value,
        "adaptedFrom": None,
        "version": s.version,
        "createdAt": s.created_at,
        "updatedAt": s.updated_at,
        AUDIENCE: [EVERYONE],
    }


@dataclass(slots=True)
class SeedTimes:
    generate: float = 0.0  # seconds in this process making the models and documents
    analyse: float = 0.0  # ... analysing them for the index (ranking.analyse)
    write: float = 0.0  # wall seconds waiting for the database's bulk writes
    postings: int = 0


async def seed(
    db: Database,
    corpus: Corpus,
    solutions: int,
    *,
    progress: Callable[[int, SeedTimes], None] = lambda done, times: None,
) -> SeedTimes:
    """Write `solutions` more generated solutions (and half as many problems) and index
    them in bulk. About one problem in four is answered by one of its solutions."""
    times = SeedTimes()
    done = 0
    for problems, solutions_made in corpus.batches(solutions):
        started = time.perf_counter()
        answers: dict[str, list[str]] = {}
        for s in solutions_made:
            if corpus.rng.random() < 0.15:
                answers.setdefault(s.problem_ids[0], []).append(s.id)
        problem_docs = [problem_document(p, answers.get(p.id, ())) for p in problems]
        solution_docs = [solution_document(s) for s in solutions_made]
        generated = time.perf_counter()
        analyses = [
            *(ranking.analyse(ranking.search_document_of_problem(p)) for p in problems),
            *(ranking.analyse(ranking.search_document_of_solution(s)) for s in solutions_made),
        ]
        analysed = time.perf_counter()
        await db.problems.insert_many(problem_docs, ordered=False)
        await db.solutions.insert_many(solution_docs, ordered=False)

        async def index(session: Any, analyses: list[ranking.Analysis] = analyses) -> None:
            await search_index.replace(db, analyses, (), session=session)

        await db.in_transaction(index)
        written = time.perf_counter()
        times.generate += generated - started
        times.analyse += analysed - generated
        times.write += written - analysed
        times.postings += sum(len(a.postings) for a in analyses)
        done += len(solutions_made)
        progress(done, times)
        await asyncio.sleep(0)
    return times
