"""Email digests, as a person gets them: chosen over GraphQL, made on a durable schedule that
replicas share, sent to a real SMTP server on loopback and read back from it, in the
person's language, with only what they may see, and stopped with the one-click link."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import pytest

from cityexchange.services import comments, problems
from cityexchange.services.digests import LEASE, Digests, next_due
from cityexchange.services.models import Affiliation, DigestFrequency, Person
from cityexchange.services.principal import Principal
from cityexchange.services.store import digests as digest_store
from cityexchange.services.store import mail_outbox
from cityexchange.services.store import people as people_store
from cityexchange.services.store.events import latest_seq
from cityexchange.services.taxonomy import Hazard, OrganisationKind, Role
from cityexchange.services.visibility import Visibility, VisibilityLevel
from cityexchange.settings import Settings
from tests.conftest import Api, add_city
from tests.mail_support import MailServer, sending_to

SET = """mutation($input: SetDigestInput!) { setDigest(input: $input) {
  digest { frequency email language nextDueAt confirmed } userErrors { code field message } } }"""
DIGEST = """{ viewer { digest { frequency email language confirmed } } }"""
FOLLOW = """mutation { follow(input: {kind: HAZARD, value: "FLOOD"}) { userErrors { code } } }"""
ROTTERDAM = Principal("rotterdam", "cro", frozenset({"read", "publish", "comment"}), "tests")


@pytest.fixture
def settings(settings: Settings, mail: MailServer) -> Settings:
    """Mail through `mail`: the test's app runs the outbox, which sends what is queued."""
    return sending_to(settings, mail)


async def _until(condition: Callable[[], bool], seconds: float = 20) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.05)


async def _person(api: Api, city: str, username: str) -> tuple[str, str]:
    """A person of `city`: their id, and a token of theirs (its subject is that id)."""
    hall = Affiliation("City hall", OrganisationKind.CITY_AGENCY)
    person = await people_store.insert_person(
        api.db, Person("", city, username, username.title(), Role.MEMBER, hall)
    )
    return person.id, await api.token(city, ("read",), subject=person.id)


async def _flood(api: Api, title: str, visibility: Visibility | None = None) -> str:
    draft = problems.ProblemDraft(title, "s", [Hazard.FLOOD], visibility=visibility)
    return (await problems.publish(db=api.db, actor=ROTTERDAM, draft=draft)).id


async def _subscribe(api: Api, token: str, **input: object) -> dict[str, Any]:
    payload: dict[str, Any] = (await api.data(SET, {"input": input}, token=token))["setDigest"]
    return payload


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def _link(text: str, path: str) -> str:
    found = re.search(rf"https?://\S+{path}\?token=[A-Za-z0-9_-]+", text)
    assert found is not None, text
    return urlsplit(found.group()).path + "?" + urlsplit(found.group()).query


def _html(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


async def test_a_daily_digest_in_spanish_of_what_ada_may_see_then_one_click_unsubscribe(
    api: Api, mail: MailServer
) -> None:
    for city in ("lagos", "rotterdam"):
        await add_city(api.db, city)
    ada_id, ada = await _person(api, "lagos", "ada")
    assert (await api.data(FOLLOW, token=ada))["follow"]["userErrors"] == []
    chosen = await _subscribe(
        api, ada, frequency="DAILY", email="ada@lagos.example.org", language="es"
    )
    assert chosen["userErrors"] == []
    due = datetime.fromisoformat(chosen["digest"]["nextDueAt"])
    assert (due.hour, due.minute, chosen["digest"]["confirmed"]) == (6, 0, False)
    assert (await api.data(DIGEST, token=ada))["viewer"]["digest"] == {
        "frequency": "DAILY",
        "email": "ada@lagos.example.org",
        "language": "es",
        "confirmed": False,
    }
    # The address's owner is asked first: nothing goes to an address nobody confirmed.
    await _until(lambda: len(mail.received) == 1)
    ((to, asking),) = mail.received
    assert (to, asking["Subject"]) == (
        ["ada@lagos.example.org"],
        "Confirma tu resumen de Peer City Exchange",
    )
    confirm = _link(_text(asking), "/digests/confirm")

    shared = await _flood(api, "Barrier <opens> & closes")
    await _flood(api, "Rotterdam only", Visibility(VisibilityLevel.CITY))
    await comments.add(
        db=api.db,
        actor=ROTTERDAM,
        subject_kind="Problem",
        subject_id=shared,
        parent_id=None,
        body="Update",
    )
    digests = Digests(api.db, public_url=api.settings.public_url)
    assert await digests.send_due(at=due + timedelta(minutes=1)) == 0  # not confirmed
    page = await api.http.get(confirm)
    assert page.status_code == 200
    assert "¿Enviar los resúmenes a esta dirección?" in page.text
    assert (await api.data(DIGEST, token=ada))["viewer"]["digest"]["confirmed"] is False
    confirmed = await api.http.post(confirm)
    assert "Confirmado: tus resúmenes llegarán a esta dirección." in confirmed.text
    assert (await api.data(DIGEST, token=ada))["viewer"]["digest"]["confirmed"] is True

    assert await digests.send_due(at=due - timedelta(minutes=1)) == 0  # not yet
    assert await digests.send_due(at=due + timedelta(minutes=1)) == 1
    await _until(lambda: len(mail.received) == 2)
    assert await digests.send_due(at=due + timedelta(minutes=2)) == 0  # once
    to, message = mail.received[1]
    assert to == ["ada@lagos.example.org"]
    assert message["Subject"] == "Tu resumen diario (2)"
    text = _text(message)
    assert "Barrier <opens> & closes (Rotterdam), Novedades: 2" in text
    assert "Rotterdam only" not in text
    assert "Rotterdam only" not in _html(message)
    assert "Barrier &lt;opens&gt; &amp; closes" in _html(message)
    assert "Recibes este correo porque pediste un resumen diario" in text
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = str(message["List-Unsubscribe"]).strip("<>")
    assert link.startswith(f"{api.settings.public_url}/digests/unsubscribe?token=")
    assert link in text
    assert link.replace("&", "&amp;") in _html(message)
    after = await digest_store.get(api.db, city="lagos", subject=ada_id)
    assert after is not None
    assert after.next_due == next_due(due + timedelta(minutes=1), DigestFrequency.DAILY)

    # The link opens a page that asks (a link checker must not unsubscribe anyone) ...
    local = urlsplit(link)
    here = f"{local.path}?{local.query}"
    page = await api.http.get(here)
    assert page.status_code == 200
    assert "¿Dejar de recibir estos resúmenes?" in page.text
    assert '<form method="post">' in page.text
    assert (await api.data(DIGEST, token=ada))["viewer"]["digest"] is not None
    # ... and the mail client's one-click POST (RFC 8058) stops it, with no sign-in.
    clicked = await api.http.post(
        here,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert clicked.status_code == 200
    assert "Ya no recibirás más resúmenes." in clicked.text
    assert (await api.data(DIGEST, token=ada))["viewer"]["digest"] is None
    again = await api.http.post(here)
    assert again.status_code == 200  # a second click is as good as the first
    gone = await api.http.get(here)
    assert gone.status_code == 404


async def test_replicas_send_a_due_digest_once_even_after_one_stopped_halfway(
    api: Api, mail: MailServer
) -> None:
    for city in ("lagos", "rotterdam"):
        await add_city(api.db, city)
    ada_id, ada = await _person(api, "lagos", "ada")
    await api.data(FOLLOW, token=ada)
    chosen = await _subscribe(api, ada, frequency="WEEKLY", email="ada@lagos.example.org")
    due = datetime.fromisoformat(chosen["digest"]["nextDueAt"])
    assert (due.weekday(), chosen["digest"]["language"]) == (0, "en")  # a Monday; Lagos: en
    await _flood(api, "Lagoon floods")
    subscription = await digest_store.get(api.db, city="lagos", subject=ada_id)
    assert subscription is not None
    assert await digest_store.confirm_by_token(api.db, subscription.token)
    await _until(lambda: len(mail.received) == 1)  # the request to confirm
    # A replica fixed the digest's range and stopped, ten minutes ago, before it queued it ...
    at = due + timedelta(minutes=1)
    crashed_at = await latest_seq(api.db)
    crashed = await digest_store.claim_range(
        api.db, subscription, up_to=crashed_at, at=at - timedelta(minutes=10), lease=LEASE
    )
    assert crashed is not None
    # ... then three replicas find it due at once: one takes it over, with the range the
    # first fixed, and the others leave it to that one's live claim. One message.
    replicas = [Digests(api.db, public_url=api.settings.public_url) for _ in range(3)]
    await asyncio.gather(*(r.send_due(at=at) for r in replicas))
    await _until(lambda: len(mail.received) == 2)
    assert mail.received[1][1]["Subject"] == "Your weekly digest (1)"
    keys = await api.db.db[mail_outbox.COLLECTION].distinct("_id")
    assert [k for k in keys if k.startswith("digest:")] == [
        f"digest:lagos:{ada_id}:{due.astimezone(UTC).isoformat()}"
    ]
    after = await digest_store.get(api.db, city="lagos", subject=ada_id)
    assert after is not None
    assert (after.next_due, after.sent_up_to, after.claimed_up_to) == (
        due + timedelta(days=7),
        crashed_at,
        None,
    )
    # Nothing new by the next one: no mail, and the schedule moves on.
    later = after.next_due + timedelta(minutes=1)
    assert await replicas[0].send_due(at=later) == 1
    await asyncio.sleep(0.5)
    assert len(mail.received) == 2


async def test_what_cannot_be_a_digest_is_refused(api: Api) -> None:
    await add_city(api.db, "lagos")
    _, ada = await _person(api, "lagos", "ada")
    for email in ("ada", "ada@lagos", "ada@lagos.example.org\r\nBcc: x@evil.example", "a" * 300):
        refused = await _subscribe(api, ada, frequency="DAILY", email=email)
        assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
            ("BAD_USER_INPUT", ["input", "email"])
        ], email
    refused = await _subscribe(
        api, ada, frequency="DAILY", email="ada@lagos.example.org", language="de"
    )
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
        ("BAD_USER_INPUT", ["input", "language"])
    ]
    # A token that acts for no person of the city (a client's, say) has no one to mail.
    client = await api.token("lagos", ("read",), subject="portal-client")
    input = {"frequency": "DAILY", "email": "portal@lagos.example.org"}
    body = await api.gql(SET, {"input": input}, token=client)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await api.data(DIGEST, token=ada))["viewer"]["digest"] is None
    # Each new address is mailed a request to confirm: five a day, so no one mails at will.
    for i in range(5):
        asked = await _subscribe(api, ada, frequency="DAILY", email=f"ada{i}@lagos.example.org")
        assert asked["userErrors"] == []
    again = await _subscribe(api, ada, frequency="WEEKLY", email="ada4@lagos.example.org")
    assert again["userErrors"] == []  # the same address: no new request
    over = await _subscribe(api, ada, frequency="DAILY", email="ada5@lagos.example.org")
    assert [(e["code"], e["field"]) for e in over["userErrors"]] == [
        ("BAD_USER_INPUT", ["input", "email"])
    ]
    for token in ("", "x" * 43, "y" * 5000):
        for path in ("/digests/unsubscribe", "/digests/confirm"):
            page = await api.http.get(path, params={"token": token})
            assert page.status_code == 404
        confirmed = await api.http.post("/digests/confirm", params={"token": token})
        assert confirmed.status_code == 404


async def test_one_bad_subscription_holds_up_no_other_and_stop_ends_one(
    api: Api, mail: MailServer
) -> None:
    for city in ("lagos", "rotterdam"):
        await add_city(api.db, city)
    people = [await _person(api, "lagos", name) for name in ("ada", "bola")]
    for _, token in people:
        await api.data(FOLLOW, token=token)
        chosen = await _subscribe(api, token, frequency="DAILY", email="x@lagos.example.org")
        assert chosen["userErrors"] == []
    await _flood(api, "Lagoon floods")
    (ada_id, _), (bola_id, bola) = people
    for id in (ada_id, bola_id):
        subscription = await digest_store.get(api.db, city="lagos", subject=id)
        assert subscription is not None
        assert await digest_store.confirm_by_token(api.db, subscription.token)
    # Ada's document went bad (a language no digest speaks): hers fails, Bola's goes.
    collection = api.db.db[digest_store.COLLECTION]
    await collection.update_one({"_id": f"lagos:{ada_id}"}, {"$set": {"language": "xx"}})
    ada = await digest_store.get(api.db, city="lagos", subject=ada_id)
    assert ada is not None
    at = ada.next_due + timedelta(minutes=1)
    assert await Digests(api.db, public_url=api.settings.public_url).send_due(at=at) == 2
    await _until(lambda: len(mail.received) == 3)  # two requests to confirm, one digest
    assert mail.received[2][1]["Subject"] == "Your daily digest (1)"
    put_off = await digest_store.get(api.db, city="lagos", subject=ada_id)
    assert put_off is not None
    assert (put_off.next_due, put_off.claimed_up_to) == (at + timedelta(hours=1), None)

    stop = """mutation { stopDigest(input: {}) { stopped userErrors { code } } }"""
    assert (await api.data(stop, token=bola))["stopDigest"] == {"stopped": True, "userErrors": []}
    assert (await api.data(stop, token=bola))["stopDigest"] == {
        "stopped": False,
        "userErrors": [{"code": "NOT_FOUND"}],
    }
    assert (await api.data(DIGEST, token=bola))["viewer"]["digest"] is None


async def test_concurrent_new_addresses_stop_at_the_days_bound(api: Api) -> None:
    """Counting the day's requests to confirm and queueing one race; the bound is held by the
    write: of ten new addresses given at once, five are asked."""
    await add_city(api.db, "lagos")
    chidi_id, chidi = await _person(api, "lagos", "chidi")

    async def subscribe(i: int) -> list[dict[str, Any]]:
        email = f"chidi{i}@lagos.example.org"
        errors: list[dict[str, Any]] = (
            await _subscribe(api, chidi, frequency="DAILY", email=email)
        )["userErrors"]
        return errors

    results = await asyncio.gather(*(subscribe(i) for i in range(10)))
    assert sum(not errors for errors in results) == 5
    keys = await api.db.db[mail_outbox.COLLECTION].distinct("_id")
    assert len([k for k in keys if k.startswith(f"digest-confirm:lagos:{chidi_id}:")]) == 5
