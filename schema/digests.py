"""Email digests: a person chooses daily or weekly mail of what they follow
(services/digests.py); `viewer.digest` shows the choice."""

from __future__ import annotations

from datetime import datetime

import strawberry

from cityexchange.schema.context import Info
from cityexchange.schema.errors import UserError, attempt
from cityexchange.schema.retries import RETRY_KEY, RETRY_KEY_ECHO, Retry, still_gone
from cityexchange.services import digests
from cityexchange.services.digest_texts import LANGUAGES
from cityexchange.services.models import DigestFrequency, DigestSubscription

strawberry.enum(
    DigestFrequency, description="How often a digest comes: at 06:00 UTC, weekly on Mondays."
)


@strawberry.type(description="Your email digest of what you follow and your saved filters.")
class Digest:
    frequency: DigestFrequency
    email: str
    language: str = strawberry.field(description=f"One of {', '.join(LANGUAGES)}.")
    next_due_at: datetime = strawberry.field(description="When the next one is due.")
    confirmed: bool = strawberry.field(
        description="Whether the address's owner confirmed it through the link mailed to it: "
        "no digest goes before."
    )

    @classmethod
    def from_domain(cls, subscription: DigestSubscription) -> Digest:
        return cls(
            frequency=subscription.frequency,
            email=subscription.email,
            language=subscription.language,
            next_due_at=subscription.next_due,
            confirmed=subscription.confirmed,
        )


@strawberry.input
class SetDigestInput:
    frequency: DigestFrequency
    email: str = strawberry.field(description="Where to send it.")
    language: str | None = strawberry.field(
        default=None,
        description=f"One of {', '.join(LANGUAGES)}; by default your city's first language "
        "among them, else en.",
    )
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type
class SetDigestPayload:
    digest: Digest | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


@strawberry.input
class StopDigestInput:
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type
class StopDigestPayload:
    stopped: bool
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


@strawberry.type
class DigestMutations:
    @strawberry.mutation(
        description="Receive (or change) an email digest of what you and your city follow "
        "and your saved filters select, from now on, once the address is confirmed through "
        "the link mailed to it. Needs a person's token. Sent only where the service has SMTP "
        "configured; each has a one-click unsubscribe link."
    )
    async def set_digest(self, info: Info, input: SetDigestInput) -> SetDigestPayload:
        ctx = info.context
        actor = ctx.actor()
        saved, errors = await attempt(
            lambda: digests.subscribe(
                db=ctx.db,
                actor=actor,
                frequency=input.frequency,
                email=input.email,
                language=input.language,
                public_url=ctx.public_url,
            ),
            Retry(info, input, reload=lambda _: digests.current(db=ctx.db, actor=actor)),
        )
        return SetDigestPayload(
            digest=Digest.from_domain(saved) if saved else None,
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )

    @strawberry.mutation(description="Stop your email digest.")
    async def stop_digest(self, info: Info, input: StopDigestInput) -> StopDigestPayload:
        ctx = info.context
        actor = ctx.actor()
        _, errors = await attempt(
            lambda: digests.stop(db=ctx.db, actor=actor),
            Retry(info, input, reload=still_gone),
        )
        return StopDigestPayload(
            stopped=not errors, user_errors=errors, client_mutation_id=input.client_mutation_id
        )
