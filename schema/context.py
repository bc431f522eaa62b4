"""The typed per-operation context: the only way dependencies reach resolvers."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import strawberry

from cityexchange.auth.admin import RealmAdmin
from cityexchange.auth.errors import Unauthenticated
from cityexchange.schema.loaders import Loaders
from cityexchange.schema.organisation_loaders import OrganisationLoaders
from cityexchange.services.errors import Unavailable
from cityexchange.services.live import Hub
from cityexchange.services.principal import Principal
from cityexchange.services.rate_limits import Charge, RateLimiter
from cityexchange.services.store.database import Database

if TYPE_CHECKING:
    from cityexchange.schema.live_execution import LiveExecution


class OutOfTime(Exception):
    """The operation's time budget is spent: what had not started yet does not start."""

    def __init__(self) -> None:
        super().__init__("the operation ran out of its time budget: ask for less, or retry")


@dataclass(slots=True)
class Context:
    db: Database
    request_id: str
    principal: Principal | None
    auth_error: Unauthenticated | Unavailable | None
    on_unavailable: Callable[[], None] = lambda: None
    observe: Callable[[str, str, str, float], None] = lambda name, kind, outcome, seconds: None
    realm_admin: RealmAdmin | None = None
    hub: Hub | None = None
    production: bool = False
    on_redeliver: Callable[[], None] | None = None  # wakes the webhook deliverer
    public_url: str = ""
    # Set inside a shared subscription only (schema/sharing.py): how `events` takes its events.
    live: LiveExecution | None = None
    limiter: RateLimiter | None = None
    deadline: float | None = None  # time.monotonic() past which resolvers do not start
    rate: Charge | None = None  # this operation's charge to the caller's budget of points
    on_rate: Callable[[Charge], None] = lambda charge: None  # the view's headers and status
    _loaders: Loaders | None = field(default=None, init=False)
    _organisation_loaders: OrganisationLoaders | None = field(default=None, init=False)

    def for_operation(self, *, live: LiveExecution | None = None) -> Context:
        """A copy for one operation, with its own loaders and charge (a socket's context
        serves every operation on the socket) and, in a shared subscription, its `live`."""
        return dataclasses.replace(self, live=live, rate=None)

    @property
    def loaders(self) -> Loaders:
        """This operation's DataLoaders, made on first use: a socket whose subscription
        shares a group's execution never needs its own."""
        if self._loaders is None:
            self._loaders = Loaders(db=self.db, actor=self.actor)
        return self._loaders

    @property
    def organisation_loaders(self) -> OrganisationLoaders:
        """This operation's DataLoaders of organisations, made on first use as `loaders`."""
        if self._organisation_loaders is None:
            self._organisation_loaders = OrganisationLoaders(db=self.db, actor=self.actor)
        return self._organisation_loaders

    def renew_loaders(self) -> None:
        """Loaders built afresh from now on: each event of a subscription is a fresh read
        of what it refers to, as a query of its own would be."""
        self._loaders = None
        self._organisation_loaders = None

    def actor(self) -> Principal:
        """The authenticated caller; UNAUTHENTICATED when the request carried no valid token
        (SERVICE_UNAVAILABLE when it could not be checked for want of the database), and
        OPERATION_TIMED_OUT past the operation's deadline: every resolver and every batch of
        a loader asks, so an operation stops starting work once its time is up."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise OutOfTime
        if self.principal is None:
            raise self.auth_error or Unauthenticated("missing bearer token")
        return self.principal


Info = strawberry.Info[Context, None]
