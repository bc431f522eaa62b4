"""Email digests: daily or weekly, per person, of what they and their city follow and what
their saved filters select (the selection of `viewer.feed`, follows.interests), in their
language, with a one-click unsubscribe link (RFC 8058). Sent through the mail outbox
(services/mail.py), so only where SMTP is configured.

The schedule is durable and shared by replicas: each subscription holds when its next digest
is due and where in the event log the last one ended. The replica that finds a digest due
first fixes where it ends (a claim on the subscription), queues the message under a key made
of the person and the due time, and only then moves the schedule on. One that stops between
the two leaves the claim behind; the next replica queues the same key again, which the
outbox takes once. A restart therefore never skips a digest, and replicas never send one
twice. A service that was down past a due time sends that digest when it is back, and the
next one is due at the next regular time after that.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cityexchange.services import events, follows, polling
from cityexchange.services.clock import now
from cityexchange.services.digest_texts import LANGUAGES, TEXTS
from cityexchange.services.errors import Forbidden, InvalidInput, NotFound, Unavailable
from cityexchange.services.ids import global_id
from cityexchange.services.mail import queue
from cityexchange.services.models import DigestFrequency, DigestSubscription, Event, Mail
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store import bounds
from cityexchange.services.store import cities as city_store
from cityexchange.services.store import digests as store
from cityexchange.services.store import events as event_store
from cityexchange.services.store import mail_outbox as mail_store
from cityexchange.services.store import people as people_store
from cityexchange.services.store import problems as problem_store
from cityexchange.services.store import solutions as solution_store
from cityexchange.services.store.database import Database
from cityexchange.services.visibility import Viewer

log = logging.getLogger("cityexchange.digests")

HOUR_UTC = 6  # digests are due at 06:00 UTC; weekly ones on Mondays
MAX_EVENTS = 1_000  # read for one digest; the rest is in the feed
MAX_THREADS = 50  # problems and solutions listed in one digest
BATCH = 20  # subscriptions handled per look
POLL_SECONDS = 60.0
EMAIL_MAX = 254  # RFC 5321's path limit, less the angle brackets
# An address of ASCII letters, digits and the usual punctuation, at a domain of labels: no
# spaces, no line breaks (which would start a header of their own), no display names.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_PATHS = {"Problem": "problems", "Solution": "solutions"}
TOKEN_LENGTH = 43
CONFIRM_PATH = "/digests/confirm"
UNSUBSCRIBE_PATH = "/digests/unsubscribe"
LEASE = timedelta(minutes=5)  # a claimed digest not queued by then is another replica's to make
MAX_ASKS_PER_DAY = 5  # requests to confirm an address one person may have sent: no mail cannon
RETRY = timedelta(hours=1)  # a digest whose making failed is tried again after this
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


def next_due(after: datetime, frequency: DigestFrequency) -> datetime:
    """The first regular time strictly after `after`: 06:00 UTC, on a Monday if weekly."""
    due = after.astimezone(UTC).replace(hour=HOUR_UTC, minute=0, second=0, microsecond=0)
    if due <= after:
        due += timedelta(days=1)
    if frequency is DigestFrequency.WEEKLY:
        due += timedelta(days=(7 - due.weekday()) % 7)  # Monday is 0
    return due


def checked_email(value: str) -> str:
    email = value.strip()
    if len(email) > EMAIL_MAX or not _EMAIL.match(email):
        raise InvalidInput("email", "must be an e-mail address such as cro@city.example")
    return email


async def subscribe(
    *,
    db: Database,
    actor: Principal,
    frequency: DigestFrequency,
    email: str,
    language: str | None = None,
    public_url: str,
) -> DigestSubscription:
    """Send the caller a digest at `frequency` to `email` (scope: read); again, to change it.
    It covers what happens from now on, once the address's owner confirmed it through the
    link mailed to it (asked again for a new address). `language` defaults to the city's
    first language the digest speaks, else English."""
    actor.require(Scope.READ)
    address = checked_email(email)
    if language is not None and language.strip().lower() not in LANGUAGES:
        raise InvalidInput("language", f"must be one of {', '.join(LANGUAGES)}")
    person = await people_store.active_person(db, city=actor.city, id=actor.subject)
    if person is None or not actor.personal:
        raise Forbidden("digests are sent to people: this token acts for no person")
    chosen = language.strip().lower() if language else await _city_language(db, actor.city)
    before = await store.get(db, city=actor.city, subject=actor.subject)
    kept = before is not None and before.email == address  # the same address: confirmed as was
    subscription = DigestSubscription(
        city=actor.city,
        subject=actor.subject,
        email=address,
        frequency=frequency,
        language=chosen,
        next_due=next_due(now(), frequency),
        sent_up_to=await event_store.latest_seq(db),
        token=before.token if before and kept else secrets.token_urlsafe(32),
        confirmed=before.confirmed if before and kept else False,
    )
    if not kept:  # a new address: asked first, so over the day's bound nothing changes
        await _ask(db, subscription, public_url)
    await store.save(db, subscription, at=now())
    saved = await store.get(db, city=actor.city, subject=actor.subject)
    if saved is None:  # stopped by its own link meanwhile
        raise NotFound("Digest", actor.subject)
    return saved


async def _ask(db: Database, subscription: DigestSubscription, public_url: str) -> None:
    """Queue the request to confirm a new address, unless the person had MAX_ASKS_PER_DAY
    sent in the last day. The count and the queueing hold together under concurrent calls
    (services/store/bounds.py)."""
    s = subscription
    prefix = f"digest-confirm:{s.city}:{s.subject}:"
    bound = f"digest-asks:{s.city}:{s.subject}"
    mail = _asking(s, public_url)

    async def write(session: Any) -> None:
        await bounds.hold(db, bound, session=session)
        since = now() - timedelta(days=1)
        asked = await mail_store.count_since(db, prefix=prefix, since=since, session=session)
        if asked >= MAX_ASKS_PER_DAY:
            raise InvalidInput(
                "email", f"{MAX_ASKS_PER_DAY} addresses were asked to confirm today: try tomorrow"
            )
        await mail_store.insert(db, f"{prefix}{s.token}", mail, session=session)

    await bounds.prepare(db, bound)
    await db.in_transaction(write)


def _asking(subscription: DigestSubscription, public_url: str) -> Mail:
    """The message that asks the address's owner to confirm it, before any digest goes."""
    t = TEXTS[subscription.language]
    link = f"{public_url}{CONFIRM_PATH}?token={subscription.token}"
    ask = t.ask[subscription.frequency]
    e = html.escape
    return Mail(
        to=subscription.email,
        subject=t.ask_subject,
        text=f"{ask}\n\n{t.ask_button}: {link}\n\n{t.ask_ignore}",
        html=f'<p>{e(ask)}</p><p><a href="{e(link)}">{e(t.ask_button)}</a></p>'
        f"<p><small>{e(t.ask_ignore)}</small></p>",
    )


async def _city_language(db: Database, slug: str) -> str:
    (city,) = await city_store.cities_by_slugs(db, [slug])
    spoken = [code for code in (city.languages if city else ()) if code in LANGUAGES]
    return spoken[0] if spoken else "en"


async def of(*, db: Database, actor: Principal) -> DigestSubscription | None:
    actor.require(Scope.READ)
    return await store.get(db, city=actor.city, subject=actor.subject)


async def current(*, db: Database, actor: Principal) -> DigestSubscription:
    """The caller's digest; NotFound if they have none."""
    found = await of(db=db, actor=actor)
    if found is None:
        raise NotFound("Digest", actor.subject)
    return found


async def stop(*, db: Database, actor: Principal) -> None:
    actor.require(Scope.READ)
    if not await store.delete(db, city=actor.city, subject=actor.subject):
        raise NotFound("Digest", actor.subject)


async def unsubscribe(db: Database, token: str) -> bool:
    """The one-click unsubscribe of a digest's link (RFC 8058); whether it stopped one."""
    if not _plausible(token):
        return False
    return await store.delete_by_token(db, token)


def _plausible(token: str) -> bool:
    """Whether `token` could be one (secrets.token_urlsafe(32): 43 URL-safe characters)."""
    return len(token) == TOKEN_LENGTH and _TOKEN.match(token) is not None


async def confirm(db: Database, token: str) -> bool:
    """The confirmation link's POST: digests may go to the address; whether one was asked."""
    return _plausible(token) and await store.confirm_by_token(db, token)


async def language_of_token(db: Database, token: str) -> str | None:
    """The language of the digest `token` unsubscribes from, for the page that asks."""
    if not _plausible(token):
        return None
    found = await store.by_token(db, token)
    return found.language if found else None


@dataclass(slots=True)
class Digests:
    """Queues the digests that are due, until stopped (one loop per process)."""

    db: Database
    public_url: str  # the service's, for the web app's links and the unsubscribe link
    poll_seconds: float = POLL_SECONDS

    async def run(self, stopping: asyncio.Event) -> None:
        async def round() -> None:
            while await self.send_due() == BATCH:
                pass  # more are due: go on at once

        paused = "digests paused: the database is unreachable"
        await polling.every(self.poll_seconds, stopping, round, log=log, paused=paused)

    async def send_due(self, at: datetime | None = None) -> int:
        """Queue every digest due at `at` (now unless given), up to BATCH; how many were
        looked at (queued, empty, another replica's, or failed and put off)."""
        moment = at or now()
        found = await store.due(self.db, at=moment, limit=BATCH)
        for subscription in found:
            try:
                await self.send(subscription, at=moment)
            except Unavailable:
                raise
            except Exception:  # one subscription's failure must not hold up the others'
                log.exception("digest of %s:%s failed", subscription.city, subscription.subject)
                await store.postpone(self.db, subscription, until=moment + RETRY)
        return len(found)

    async def send(self, subscription: DigestSubscription, *, at: datetime) -> None:
        latest = await event_store.latest_seq(self.db)
        claimed = await store.claim_range(self.db, subscription, up_to=latest, at=at, lease=LEASE)
        if claimed is None or claimed.claimed_up_to is None:
            return  # another replica has it, or moved it on
        person = await people_store.active_person(self.db, city=claimed.city, id=claimed.subject)
        if person is None:  # revoked, or gone: nobody to send it to
            await store.delete(self.db, city=claimed.city, subject=claimed.subject)
            return
        actor = Principal(
            claimed.city,
            claimed.subject,
            frozenset({Scope.READ.value}),
            "digest",
            organisation=person.organisation_id,
        )
        viewer = Viewer.of(actor)
        interests = await follows.interests(db=self.db, actor=actor)
        ended = {"_id": {"$lte": claimed.claimed_up_to}}
        found = await event_store.events_after(
            self.db,
            {"$and": [events.interests_query(interests), ended]},
            after=claimed.sent_up_to,
            limit=MAX_EVENTS,
            viewer=viewer,
        )
        # At the cap, this digest ends at its last event; the next one goes on from there.
        reached = found[-1].seq if len(found) == MAX_EVENTS else claimed.claimed_up_to
        threads = await _threads(self.db, found, viewer)
        if threads:  # else nothing new, or nothing they may still see: no mail
            due = claimed.next_due.astimezone(UTC).isoformat()
            key = f"digest:{claimed.city}:{claimed.subject}:{due}"
            await queue(self.db, key, self.mail(claimed, threads, found))
        await store.advance(
            self.db, claimed, next_due=next_due(at, claimed.frequency), sent_up_to=reached
        )

    def mail(
        self, subscription: DigestSubscription, threads: list[Thread], found: list[Event]
    ) -> Mail:
        return digest_mail(
            subscription,
            threads,
            events=len(found),
            since=found[0].occurred_at,
            app_url=f"{self.public_url}/app",
            unsubscribe_url=f"{self.public_url}{UNSUBSCRIBE_PATH}?token={subscription.token}",
        )


@dataclass(frozen=True, slots=True)
class Thread:
    """A problem or solution that had news, as a digest lists it."""

    kind: str
    id: str
    title: str
    city: str  # its city's name
    updates: int


async def _threads(db: Database, found: list[Event], viewer: Viewer) -> list[Thread]:
    """The problems and solutions `found` is about that `viewer` may read, most news first."""
    counts = Counter(e.thread_id for e in found if e.thread_id)
    ids = [id for id, _ in counts.most_common(MAX_THREADS)]
    problems = await problem_store.problems_by_ids(db, ids, viewer=viewer)
    missing = [id for id, p in zip(ids, problems, strict=True) if p is None]
    solutions = dict(
        zip(missing, await solution_store.solutions_by_ids(db, missing, viewer=viewer), strict=True)
    )
    visible = [
        ("Problem" if problem else "Solution", id, item)
        for id, problem in zip(ids, problems, strict=True)
        if (item := problem or solutions.get(id)) is not None  # else hidden from them, or gone
    ]
    slugs = sorted({item.city for _, _, item in visible})
    names = {c.slug: c.name for c in await city_store.cities_by_slugs(db, slugs) if c}
    return [
        Thread(kind, id, item.title, names.get(item.city, item.city), counts[id])
        for kind, id, item in visible
    ]


def digest_mail(
    subscription: DigestSubscription,
    threads: list[Thread],
    *,
    events: int,
    since: datetime,
    app_url: str,
    unsubscribe_url: str,
) -> Mail:
    """The digest as text and HTML, in the subscriber's language, with RFC 8058's headers."""
    t = TEXTS[subscription.language]
    date = since.astimezone(UTC).date().isoformat()
    listed = sum(thread.updates for thread in threads)
    lines = [t.intro.format(date=date), ""]
    items: list[str] = []
    e = html.escape
    for thread in threads:
        link = f"{app_url}/{_PATHS[thread.kind]}/{global_id(thread.kind, thread.id)}"
        lines += [f"- {thread.title} ({thread.city}), {t.updates.format(n=thread.updates)}"]
        lines += [f"  {link}"]
        items.append(
            f'<li><a href="{e(link)}">{e(thread.title)}</a> ({e(thread.city)}), '
            f"{e(t.updates.format(n=thread.updates))}</li>"
        )
    rest = events - listed
    more = [t.more.format(n=rest)] if rest > 0 else []
    why = t.why[subscription.frequency]
    text = "\n".join(
        [*lines, *(["", *more] if more else []), "", why, f"{t.unsubscribe}: {unsubscribe_url}"]
    )
    body = (
        f"<p>{e(t.intro.format(date=date))}</p><ul>{''.join(items)}</ul>"
        + "".join(f'<p><a href="{e(app_url)}">{e(m)}</a></p>' for m in more)
        + f'<p><small>{e(why)} <a href="{e(unsubscribe_url)}">{e(t.unsubscribe)}</a>'
        "</small></p>"
    )
    return Mail(
        to=subscription.email,
        subject=t.subject[subscription.frequency].format(n=events),
        text=text,
        html=body,
        headers={
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",  # RFC 8058
        },
    )
