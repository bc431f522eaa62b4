"""Ranked multilingual search over HTTP: ranking, inflections, taxonomy across languages,
highlights, filters, cursors, comments, re-indexing on edits, and hostile input. The corpus is
seeded once for the module; tests that write use words no other test searches for."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from cityexchange.app import create_app
from cityexchange.resources import open_database
from cityexchange.services import search, solutions
from cityexchange.services.store.database import Database
from cityexchange.services.store.indexes import ensure_indexes
from cityexchange.settings import Secret, Settings
from tests.conftest import Api, add_city, run_cli

SEARCH = """
query($q: String!, $filter: SearchFilter, $first: Int, $after: String) {
  search(query: $q, filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      cursor score highlights { field snippet }
      node {
        __typename
        ... on Problem { id title language }
        ... on Solution { id title language }
        ... on Comment { id body language }
      }
    }
  }
}"""
PROBLEM = """mutation($input: PublishProblemInput!) { publishProblem(input: $input) {
  problem { id language } userErrors { code field message } } }"""
SOLUTION = """mutation($input: PublishSolutionInput!) { publishSolution(input: $input) {
  solution { id language } userErrors { code field message } } }"""
COMMENT = """mutation($input: AddCommentInput!) { addComment(input: $input) {
  comment { id language } userErrors { code field message } } }"""


@dataclass
class Corpus:
    api: Api
    tokens: dict[str, str]
    ids: dict[str, str] = field(default_factory=dict[str, str])  # label -> global id

    async def search(self, q: str, first: int = 50, **variables: Any) -> dict[str, Any]:
        data = await self.api.data(
            SEARCH, {"q": q, "first": first, **variables}, token=self.tokens["rotterdam"]
        )
        result: dict[str, Any] = data["search"]
        return result

    async def found(self, q: str, **variables: Any) -> list[str]:
        """The labels of what `q` finds, best first (unlabelled results left out)."""
        labels = {id: label for label, id in self.ids.items()}
        edges = (await self.search(q, **variables))["edges"]
        return [labels[e["node"]["id"]] for e in edges if e["node"]["id"] in labels]

    async def publish(self, label: str, city: str, kind: str, **input: Any) -> dict[str, Any]:
        document = PROBLEM if kind == "problem" else SOLUTION
        input.setdefault("hazards", ["FLOOD"])
        data = await self.api.data(document, {"input": input}, token=self.tokens[city])
        payload = data["publishProblem" if kind == "problem" else "publishSolution"]
        assert payload["userErrors"] == [], payload
        node: dict[str, Any] = payload[kind]
        self.ids[label] = node["id"]
        return node


CITIES = ("rotterdam", "medellin", "jakarta", "paris", "recife", "chennai", "boston")


async def _seed(api: Api) -> Corpus:
    for slug in CITIES:
        await add_city(api.db, slug)
    corpus = Corpus(api, {slug: await api.token(slug) for slug in CITIES})
    p = corpus.publish
    # Ranking: a title match beats a body match; more matched words beat fewer.
    await p(
        "title",
        "rotterdam",
        "solution",
        title="Bioswale boulevard",
        summary="A street that keeps its rain.",
        status="IMPLEMENTED",
    )
    await p(
        "body",
        "rotterdam",
        "problem",
        title="District drainage plan",
        summary="Streets fill during storms.",
        body="The district asked whether one bioswale would be enough for the square.",
    )
    await p(
        "three",
        "rotterdam",
        "solution",
        title="Street retrofit",
        sectors=["WATER"],
        summary="Retrofitting the high street.",
        status="PILOT",
        body="Pilot <script>alert(1)</script> with a bioswale & permeable pavement.",
    )
    await p(
        "heat",
        "boston",
        "solution",
        title="Shaded corridor",
        hazards=["HEAT_WAVE"],
        summary="Trees along the corridor.",
        status="PILOT",
        body="Each block gets a bioswale under the trees.",
    )
    # Inflections, one language each.
    await p(
        "es",
        "medellin",
        "problem",
        language="ES",
        title="Inundación del valle de Aburrá",
        summary="Las lluvias intensas desbordan las quebradas del valle cada año.",
    )
    await p(
        "nl",
        "rotterdam",
        "problem",
        title="Overstroming van de binnenstad",
        summary="Wolkbreuken zetten de straten van de binnenstad onder water.",
    )
    await p(
        "id",
        "jakarta",
        "problem",
        title="Kawasan pesisir kebanjiran",
        summary="Kawasan pesisir utara kebanjiran setiap bulan purnama.",
    )
    await p(
        "fr",
        "paris",
        "solution",
        title="Des cours d'école contre les canicules",
        hazards=["HEAT_WAVE"],
        summary="Les cours d'école deviennent des îlots de fraîcheur pour le quartier.",
    )
    await p(
        "pt",
        "recife",
        "solution",
        title="Jardins de chuva contra enchentes",
        summary="Os jardins de chuva absorvem a água das enchentes nos bairros baixos.",
    )
    await p(
        "en",
        "boston",
        "problem",
        title="Flooded basements after every storm",
        summary="Basements in the harbour district are flooded after heavy rain.",
    )
    await p(
        "ta",
        "chennai",
        "problem",
        title="வெள்ளத்தால் சென்னை பாதிப்பு",
        summary="மழைக்காலத்தில் தெருக்கள் வெள்ளத்தில் மூழ்குகின்றன.",
    )
    # Only its hazard says FLOOD: found from other languages through the taxonomy.
    await p(
        "taxonomy",
        "boston",
        "solution",
        title="Rain gardens along Main Street",
        summary="Planted basins soak up runoff from the pavement.",
    )
    return corpus


@pytest.fixture(scope="module")
async def corpus(mongodb_uri: str) -> AsyncIterator[Corpus]:
    settings = Settings(
        mongodb_uri=Secret(mongodb_uri),
        db_name=f"cx_test_{uuid.uuid4().hex[:12]}",
        webhook_retry_seconds=0.1,
    )
    async with open_database(dataclasses.replace(settings, operation_timeout_ms=30_000)) as db:
        await ensure_indexes(db)
        async with LifespanManager(create_app(settings)) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                yield await _seed(Api(http=http, db=db, settings=settings))
        await db.client.drop_database(settings.db_name)


async def test_title_beats_body_and_more_words_beat_fewer(corpus: Corpus) -> None:
    found = await corpus.found("bioswale")
    assert found[0] == "title"
    assert found.index("title") < found.index("body")
    more = await corpus.found("bioswale permeable pavement")
    assert more[0] == "three"
    assert more.index("three") < more.index("body")
    scores = [e["score"] for e in (await corpus.search("bioswale"))["edges"]]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > 0


async def test_words_are_found_across_their_inflections(corpus: Corpus) -> None:
    for query, label in [
        ("inundaciones", "es"),
        ("overstromingen", "nl"),
        ("banjir", "id"),
        ("canicule", "fr"),
        ("enchente", "pt"),
        ("flooding", "en"),
        ("வெள்ளம்", "ta"),
    ]:
        found = await corpus.found(query)
        assert found[:1] == [label], (query, found)
    # The Dutch problem was published without a language: it was detected.
    edge = (await corpus.search("overstromingen"))["edges"][0]
    assert edge["node"]["language"] == "NL"


async def test_a_spanish_word_finds_an_english_solution_through_the_taxonomy(
    corpus: Corpus,
) -> None:
    found = await corpus.found("inundaciones")
    assert "taxonomy" in found  # "Rain gardens ..." says FLOOD only as its hazard
    assert found.index("es") < found.index("taxonomy")  # a word match ranks first
    assert "fr" not in found  # a HEAT_WAVE solution is not a flood measure


async def test_highlights_mark_the_words_and_escape_the_text(corpus: Corpus) -> None:
    edges = (await corpus.search("bioswale permeable"))["edges"]
    three = next(e for e in edges if e["node"]["id"] == corpus.ids["three"])
    body = next(h["snippet"] for h in three["highlights"] if h["field"] == "body")
    assert "<mark>bioswale</mark>" in body
    assert "<mark>permeable</mark>" in body
    assert "&lt;script&gt;" in body
    assert "<script>" not in body
    assert "&amp;" in body
    title = next(e for e in edges if e["node"]["id"] == corpus.ids["title"])
    assert title["highlights"][0] == {
        "field": "title",
        "snippet": "<mark>Bioswale</mark> boulevard",
    }
    es = (await corpus.search("inundaciones"))["edges"][0]["highlights"][0]
    assert es == {"field": "title", "snippet": "<mark>Inundación</mark> del valle de Aburrá"}


async def test_every_filter_applies_and_filters_combine(corpus: Corpus) -> None:
    async def found(**filter: Any) -> set[str]:
        return set(await corpus.found("bioswale", filter=filter))

    assert await found() == {"title", "body", "three", "heat"}
    assert await found(kinds=["PROBLEM"]) == {"body"}
    assert await found(cities=["boston"]) == {"heat"}
    assert await found(languages=["EN"]) == {"title", "body", "three", "heat"}
    assert await found(languages=["ES"]) == set()
    assert await found(kinds=["SOLUTION"], solutionStatus=["PILOT"]) == {"three", "heat"}
    assert await found(kinds=["SOLUTION"], solutionStatus=["PILOT"], hazards=["FLOOD"]) == {"three"}
    assert await found(sectors=["WATER"]) == {"three"}
    assert await found(problemStatus=["CLOSED"]) == {"title", "three", "heat"}
    assert await found(urgency=["ACTIVE_CRISIS"], kinds=["PROBLEM"]) == set()
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert await found(createdAfter=tomorrow) == set()
    assert await found(createdBefore=tomorrow, cities=["rotterdam"]) == {"title", "body", "three"}


async def test_cursors_page_without_duplicates_or_gaps(corpus: Corpus) -> None:
    whole = await corpus.search("bioswale flood rain", first=100)
    expected = [e["node"]["id"] for e in whole["edges"]]
    assert len(expected) >= 7
    assert whole["totalCount"] == len(expected)
    seen: list[str] = []
    after = None
    while True:
        page = await corpus.search("bioswale flood rain", first=3, after=after)
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == expected


async def test_comments_are_found_and_hidden_or_deleted_ones_are_not(corpus: Corpus) -> None:
    api, tokens = corpus.api, corpus.tokens
    subject = corpus.ids["title"]

    async def comment(body: str) -> str:
        data = await api.data(
            COMMENT, {"input": {"subjectId": subject, "body": body}}, token=tokens["boston"]
        )
        assert data["addComment"]["userErrors"] == []
        id_: str = data["addComment"]["comment"]["id"]
        return id_

    shown = await comment("We laid a geotextile under the gravel.")
    hidden = await comment("Buy cheap geotextile here!!!")
    deleted = await comment("Our geotextile clogged in a year.")
    found = [e["node"] for e in (await corpus.search("geotextile"))["edges"]]
    assert {n["id"] for n in found} == {shown, hidden, deleted}
    assert found[0]["__typename"] == "Comment"
    await api.data(
        'mutation($id: ID!) { hideComment(input: {id: $id, reason: "Spam"}) '
        "{ userErrors { code } } }",
        {"id": hidden},
        token=tokens["rotterdam"],
    )
    await api.data(
        "mutation($id: ID!) { deleteComment(input: {id: $id}) { userErrors { code } } }",
        {"id": deleted},
        token=tokens["boston"],
    )
    await api.data(
        'mutation($id: ID!) { editComment(input: {id: $id, body: "A filter fabric under gravel."}) '
        "{ userErrors { code } } }",
        {"id": shown},
        token=tokens["boston"],
    )
    assert (await corpus.search("geotextile"))["edges"] == []
    assert [e["node"]["id"] for e in (await corpus.search("fabric"))["edges"]] == [shown]


async def test_an_edit_reindexes_the_document(corpus: Corpus) -> None:
    node = await corpus.publish(
        "edited",
        "rotterdam",
        "problem",
        title="Sinkhole on Kade street",
        summary="The quay sags.",
        hazards=["LANDSLIDE"],
    )
    assert await corpus.found("sinkhole") == ["edited"]
    data = await corpus.api.data(
        """mutation($input: UpdateProblemInput!) { updateProblem(input: $input) {
            userErrors { code } } }""",
        {"input": {"id": node["id"], "version": 1, "title": "Subsidence on Kade street"}},
        token=corpus.tokens["rotterdam"],
    )
    assert data["updateProblem"]["userErrors"] == []
    assert await corpus.found("sinkhole") == []
    assert await corpus.found("subsidence") == ["edited"]


def _codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"q": ""}, "query"),
        ({"q": "   "}, "query"),
        ({"q": "flood " * 1_667}, "query"),  # 10,002 characters
        ({"q": "flood\x00"}, "query"),
        ({"q": "flood", "filter": {"languages": ["KLINGON"]}}, None),
        ({"q": "flood", "first": 1_000}, "first"),
        ({"q": "flood", "after": "not-a-cursor"}, "after"),
    ],
)
async def test_bad_input_is_a_clear_error(
    corpus: Corpus, variables: dict[str, Any], field: str | None
) -> None:
    body = await corpus.api.gql(SEARCH, variables, token=corpus.tokens["rotterdam"])
    assert _codes(body) == ["BAD_USER_INPUT"], body
    if field is not None:
        assert field in body["errors"][0]["message"]


async def test_operators_and_regex_characters_are_plain_text(corpus: Corpus) -> None:
    for query in ["(.*)+[", "$where: 1", '{"$gt": ""}', "a|b\\", "^bioswale$", "!!!", "🌊"]:
        body = await corpus.api.gql(SEARCH, {"q": query}, token=corpus.tokens["rotterdam"])
        assert "errors" not in body, (query, body)
    assert await corpus.found("^bioswale$") == await corpus.found("bioswale")
    other = (await corpus.search("flood", first=1))["pageInfo"]["endCursor"]
    body = await corpus.api.gql(
        SEARCH, {"q": "bioswale", "after": other}, token=corpus.tokens["rotterdam"]
    )
    assert _codes(body) == ["BAD_USER_INPUT"]
    assert "another search" in body["errors"][0]["message"]


def _commands(metrics: str) -> float:
    pattern = r'^cityexchange_db_commands_total\{[^}]*origin="request"[^}]*\} (\S+)$'
    return sum(float(v) for v in re.findall(pattern, metrics, re.MULTILINE))


async def test_round_trips_do_not_grow_with_the_page_size(corpus: Corpus) -> None:
    counts: list[float] = []
    for first in (2, 5):
        before = _commands((await corpus.api.http.get("/metrics")).text)
        page = await corpus.search(
            "bioswale flood rain", first=first, filter={"kinds": ["SOLUTION"]}
        )
        counts.append(_commands((await corpus.api.http.get("/metrics")).text) - before)
        assert len(page["edges"]) == first
    assert counts[0] == counts[1], counts


SET_VISIBILITY = """mutation($input: SetVisibilityInput!) { setVisibility(input: $input) {
  solution { id version } userErrors { code field message } } }"""


async def test_a_change_of_visibility_reaches_the_index(corpus: Corpus) -> None:
    """The postings of what every viewer may see say so, and a search then does not read
    those documents again; narrowing takes that back in the same transaction, widening
    gives it again, and what a viewer may not see is never found."""
    api, db = corpus.api, corpus.api.db
    solution = await corpus.publish(
        "visibility", "rotterdam", "solution", title="Quillwort marsh", summary="A reed bed."
    )
    raw = _raw(solution["id"])
    postings = db.db["search_postings"]

    async def found_by(city: str) -> tuple[int, float]:
        before = _commands((await api.http.get("/metrics")).text)
        data = await api.data(SEARCH, {"q": "quillwort"}, token=corpus.tokens[city])
        spent = _commands((await api.http.get("/metrics")).text) - before
        return data["search"]["totalCount"], spent

    async def set_level(level: str, version: int) -> int:
        data = await api.data(
            SET_VISIBILITY,
            {
                "input": {
                    "subjectId": solution["id"],
                    "version": version,
                    "visibility": {"level": level},
                }
            },
            token=corpus.tokens["rotterdam"],
        )
        assert data["setVisibility"]["userErrors"] == [], data
        version_now: int = data["setVisibility"]["solution"]["version"]
        return version_now

    assert await postings.count_documents({"d": raw}) > 0
    assert await postings.count_documents({"d": raw, "o": {"$ne": True}}) == 0
    (boston, open_cost), (own, own_open_cost) = (
        await found_by("boston"),
        await found_by("rotterdam"),
    )
    assert (boston, own) == (1, 1)
    assert own_open_cost == open_cost

    version = await set_level("CITY", 1)
    assert await postings.count_documents({"d": raw, "o": True}) == 0
    assert (await found_by("boston"))[0] == 0
    own, checked_cost = await found_by("rotterdam")
    assert own == 1
    assert checked_cost == open_cost + 1  # the one read that checks the candidate's document

    await set_level("PUBLIC", version)
    assert await postings.count_documents({"d": raw, "o": {"$ne": True}}) == 0
    assert await found_by("boston") == (1, open_cost)


async def test_related_finds_documents_like_one(corpus: Corpus) -> None:
    """The service behind suggestions: "more like this", never the document itself."""
    from cityexchange.services.principal import Principal

    actor = Principal("rotterdam", "tester", frozenset({"read"}), "tests")
    (three,) = await solutions.by_ids(
        db=corpus.api.db, actor=actor, ids=[_raw(corpus.ids["three"])]
    )
    assert three is not None
    found = await search.related(
        db=corpus.api.db,
        document=search.search_document_of_solution(three),
        kinds={"Solution", "Problem"},
        exclude_city="boston",
        limit=5,
    )
    ids = [id for _, id, _, _ in found]
    assert three.id not in ids
    assert _raw(corpus.ids["heat"]) not in ids
    kind, id, relevance, terms = found[0]
    assert (kind, id) in {
        ("Solution", _raw(corpus.ids["title"])),
        ("Problem", _raw(corpus.ids["body"])),
    }
    assert 0 < relevance <= 1
    assert "bioswale" in terms


async def test_postings_are_read_through_their_index(corpus: Corpus) -> None:
    """The embedded database plans the term's index and scans only the impacts asked for."""
    from cityexchange.services.store import search_index

    plan = await search_index.explain_postings(corpus.api.db, "en:bioswal", at_least=1)
    stages = json.dumps(plan["queryPlanner"]["winningPlan"])
    assert '"IXSCAN"' in stages
    assert "term_impact" in stages
    assert "COLLSCAN" not in stages
    assert plan["executionStats"]["totalDocsExamined"] == 4


def _raw(global_id: str) -> str:
    from cityexchange.services.ids import parse_global_id

    parsed = parse_global_id(global_id)
    assert parsed is not None
    return parsed[1]


async def test_reindex_rebuilds_the_index_and_detects_missing_languages(corpus: Corpus) -> None:
    """Last: it empties the index of the module's corpus and builds it again."""
    db = corpus.api.db
    await db.problems.update_many({}, {"$unset": {"language": ""}})
    await db.db["search_postings"].delete_many({})
    await db.db["search_terms"].delete_many({})
    assert await corpus.found("inundaciones") == []
    code, out, err = await run_cli(corpus.api, "reindex", "--batch-size", "3")
    assert code == 0, err
    assert '"Problem":' in out
    assert "reindex: Problem: 3" in err
    found = await corpus.found("inundaciones")
    assert found[0] == "es"
    assert "taxonomy" in found
    assert (await corpus.search("inundaciones"))["edges"][0]["node"]["language"] == "ES"
    assert await corpus.found("geotextile") == []  # hidden and deleted stay out
    # Every problem and solution here is public: their postings say so; comments' never do.
    postings = db.db["search_postings"]
    assert await postings.count_documents({"k": {"$ne": "Comment"}, "o": {"$ne": True}}) == 0
    assert await postings.count_documents({"k": "Comment", "o": True}) == 0


async def test_candidates_past_one_read_are_all_checked(db: Database) -> None:
    """`matching` reads candidates in slices (search_index.IDS_PER_READ); what it keeps across
    slices is exactly what one read would keep: the viewer's and the filter's."""
    from cityexchange.services.store import search_index
    from cityexchange.services.visibility import EVERYONE, Viewer, city_key

    count = 2 * search_index.IDS_PER_READ + 50
    docs = [
        {
            "hazards": ["FLOOD"] if i % 3 == 0 else ["HEAT_WAVE"],
            "createdAt": datetime(2026, 1, 1, tzinfo=UTC),
            "aud": [EVERYONE] if i % 5 else [city_key("rotterdam")],
        }
        for i in range(count)
    ]
    inserted = (await db.problems.insert_many(docs)).inserted_ids
    ids = [str(oid) for oid in inserted]
    lagos = await search_index.matching(
        db, "Problem", ids, viewer=Viewer.of_city("lagos"), hazards=["FLOOD"]
    )
    assert lagos == {ids[i] for i in range(count) if i % 3 == 0 and i % 5}
    rotterdam = await search_index.matching(
        db, "Problem", [*ids, "not-an-id"], viewer=Viewer.of_city("rotterdam"), hazards=["FLOOD"]
    )
    assert rotterdam == {ids[i] for i in range(count) if i % 3 == 0}
