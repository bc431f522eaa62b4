"""Webhooks for a city's admin: register, rotate, enable, delete, redeliver, and the log."""

from __future__ import annotations

from datetime import datetime

import strawberry

from cityexchange.schema.context import Info
from cityexchange.schema.errors import UserError, attempt
from cityexchange.schema.events import EventFilter, domain_filter
from cityexchange.schema.retries import RETRY_KEY, RETRY_KEY_ECHO, Retry, created, still_gone
from cityexchange.services import models, saved_filters, webhooks
from cityexchange.services.errors import InvalidInput, NotFound
from cityexchange.services.models import WebhookFormat

strawberry.enum(
    WebhookFormat,
    description="What a delivery's body is: STANDARD, the event's ids and facts as JSON; "
    "SLACK, a Slack incoming-webhook message; TEAMS, a Microsoft Teams Workflows webhook "
    "message (an Adaptive Card). Chat messages link to the event's page in the web app.",
)


@strawberry.type
class DeliveryAttempt:
    at: datetime
    status: int | None = strawberry.field(description="The receiver's HTTP status, if any.")
    error: str | None
    duration_ms: int


@strawberry.type
class WebhookDelivery:
    id: str
    event_cursor: str
    state: str = strawberry.field(description="pending, sending, delivered or failed.")
    attempts: list[DeliveryAttempt]
    next_attempt_at: datetime | None

    @classmethod
    def from_domain(cls, delivery: models.Delivery) -> WebhookDelivery:
        from cityexchange.services.events import event_cursor

        return cls(
            id=delivery.id,
            event_cursor=event_cursor(delivery.event_seq),
            state=delivery.state,
            attempts=[
                DeliveryAttempt(at=a.at, status=a.status, error=a.error, duration_ms=a.duration_ms)
                for a in delivery.attempts
            ],
            next_attempt_at=delivery.next_attempt_at,
        )


@strawberry.type
class Webhook:
    id: strawberry.ID
    url: str
    description: str | None
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None
    format: WebhookFormat
    crisis_alerts: bool = strawberry.field(
        description="Whether every active crisis that reaches your city is delivered too."
    )
    secret: str | None = strawberry.field(
        description="Shown only when registered or rotated; sign-check deliveries with it."
    )

    @classmethod
    def from_domain(cls, webhook: models.Webhook, *, show_secret: bool = False) -> Webhook:
        return cls(
            id=strawberry.ID(webhook.id),
            url=webhook.url,
            description=webhook.description,
            created_at=webhook.created_at,
            disabled_at=webhook.disabled_at,
            disabled_reason=webhook.disabled_reason,
            format=webhook.format,
            crisis_alerts=webhook.crisis_alerts,
            secret=webhook.secret if show_secret else None,
        )

    @strawberry.field(description="The delivery log, newest first.")
    async def deliveries(self, info: Info, first: int = 20) -> list[WebhookDelivery]:
        ctx = info.context
        found = await webhooks.deliveries(
            db=ctx.db, actor=ctx.actor(), webhook_id=str(self.id), limit=max(1, min(first, 100))
        )
        return [WebhookDelivery.from_domain(d) for d in found]


@strawberry.input
class RegisterWebhookInput:
    url: str
    filter: EventFilter | None = None
    saved_filter: str | None = strawberry.field(
        default=None,
        description="Instead of `filter`: the name of one of your saved filters, copied as "
        "it is now (changing or deleting the saved filter later leaves the webhook's alone).",
    )
    description: str | None = None
    format: WebhookFormat = WebhookFormat.STANDARD
    crisis_alerts: bool = strawberry.field(
        default=False,
        description="Also deliver every active crisis that reaches your city (a crisis with "
        "a hazard your city follows, or asked by a close peer of your city), whatever the "
        "filter says; each crisis once.",
    )
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type
class RegisterWebhookPayload:
    webhook: Webhook | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


@strawberry.input
class WebhookIdInput:
    id: strawberry.ID
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.input
class RedeliverInput:
    delivery_id: str
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type
class WebhookPayload:
    webhook: Webhook | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


@strawberry.type
class DeleteWebhookPayload:
    deleted_webhook_id: strawberry.ID | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


@strawberry.type
class RedeliverPayload:
    delivery: WebhookDelivery | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


async def _webhook(info: Info, id: str) -> models.Webhook:
    """The endpoint as it is now: what a retry with the same clientMutationId returns."""
    found = await webhooks.of_city(db=info.context.db, actor=info.context.actor())
    for webhook in found:
        if webhook.id == id:
            return webhook
    raise NotFound("Webhook", id)


async def _delivery(info: Info, webhook_id: str, delivery_id: str) -> models.Delivery:
    ctx = info.context
    log = await webhooks.deliveries(db=ctx.db, actor=ctx.actor(), webhook_id=webhook_id)
    for delivery in log:
        if delivery.id == delivery_id:
            return delivery
    raise NotFound("Delivery", delivery_id)


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="Your city's webhooks (scope: admin).")
    async def webhooks(self, info: Info) -> list[Webhook]:
        ctx = info.context
        return [
            Webhook.from_domain(w) for w in await webhooks.of_city(db=ctx.db, actor=ctx.actor())
        ]


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        description="Register an endpoint for your city's admin: every "
        "matching event is POSTed to it, signed."
    )
    async def register_webhook(
        self, info: Info, input: RegisterWebhookInput
    ) -> RegisterWebhookPayload:
        ctx = info.context
        actor = ctx.actor()

        async def register() -> models.Webhook:
            event_filter = domain_filter(input.filter)
            if input.saved_filter is not None:
                if input.filter is not None:
                    raise InvalidInput("savedFilter", "give a filter or a saved filter, not both")
                saved = await saved_filters.named(db=ctx.db, actor=actor, name=input.saved_filter)
                event_filter = saved.event_filter
            return await webhooks.register(
                db=ctx.db,
                actor=actor,
                url=input.url,
                event_filter=event_filter,
                description=input.description,
                production=ctx.production,
                format=input.format,
                crisis_alerts=input.crisis_alerts,
            )

        hook, errors = await attempt(
            register,
            Retry(info, input, reload=created(lambda id: _webhook(info, id))),
        )
        return RegisterWebhookPayload(
            webhook=Webhook.from_domain(hook, show_secret=True) if hook else None,
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )

    @strawberry.mutation(description="A new signing secret (shown once).")
    async def rotate_webhook_secret(self, info: Info, input: WebhookIdInput) -> WebhookPayload:
        ctx = info.context
        actor = ctx.actor()
        hook, errors = await attempt(
            lambda: webhooks.rotate_secret(db=ctx.db, actor=actor, id=str(input.id)),
            Retry(info, input, reload=lambda _: _webhook(info, str(input.id))),
        )
        return WebhookPayload(
            webhook=Webhook.from_domain(hook, show_secret=True) if hook else None,
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )

    @strawberry.mutation(description="Turn a disabled endpoint back on.")
    async def enable_webhook(self, info: Info, input: WebhookIdInput) -> WebhookPayload:
        ctx = info.context
        actor = ctx.actor()
        hook, errors = await attempt(
            lambda: webhooks.enable(db=ctx.db, actor=actor, id=str(input.id)),
            Retry(info, input, reload=lambda _: _webhook(info, str(input.id))),
        )
        return WebhookPayload(
            webhook=Webhook.from_domain(hook) if hook else None,
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )

    @strawberry.mutation(
        description="Remove an endpoint: nothing more is sent to it, and its queued "
        "deliveries and delivery log go with it."
    )
    async def delete_webhook(self, info: Info, input: WebhookIdInput) -> DeleteWebhookPayload:
        ctx = info.context
        actor = ctx.actor()
        _, errors = await attempt(
            lambda: webhooks.delete(db=ctx.db, actor=actor, id=str(input.id)),
            Retry(info, input, reload=still_gone),
        )
        return DeleteWebhookPayload(
            deleted_webhook_id=None if errors else input.id,
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )

    @strawberry.mutation(description="Send a delivery again, now.")
    async def redeliver_webhook(self, info: Info, input: RedeliverInput) -> RedeliverPayload:
        ctx = info.context
        actor = ctx.actor()
        delivery, errors = await attempt(
            lambda: webhooks.redeliver(db=ctx.db, actor=actor, delivery_id=input.delivery_id),
            Retry(
                info,
                input,
                reload=created(lambda webhook_id: _delivery(info, webhook_id, input.delivery_id)),
                result_id=lambda delivery: delivery.webhook_id,
            ),
        )
        if delivery is not None and ctx.on_redeliver is not None:
            ctx.on_redeliver()
        return RedeliverPayload(
            delivery=WebhookDelivery.from_domain(delivery) if delivery else None,
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )
