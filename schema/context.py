"""The typed per-request context: the only way dependencies reach resolvers."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import strawberry

from auth.admin import RealmAdmin
from auth.errors import Unauthenticated
from schema.loaders import Loaders
from services.errors import Unavailable
from services.live import Hub
from services.principal import Principal
from services.rate_limits import Charge, RateLimiter
from services.store.database import Database


@dataclass(slots=True)
class LiveRole:
    """How the `events` resolver runs inside a shared subscription (schema/sharing.py): as
    the group's one live execution (`on_live` is called once it listens), or, with
    `catch_up`, as a member's replay of what it missed, from the log only."""

    on_live: Callable[[], None] = lambda: None
    catch_up: bool = False
    seq: int = 0  # the event the resolver yielded last
    finished: bool = False  # the resolver ran to its end (a catch-up that completed)


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
    on_redeliver: Callable[[], None] | None = None
    connection_params: dict[str, object] | None = None
    close_socket: Callable[[int, str], Awaitable[None]] | None = None
    on_close: list[Callable[[], object]] = field(default_factory=list[Callable[[], object]])
    tasks: set[object] = field(default_factory=set[object])  # keeps background tasks alive
    public_url: str = ""
    live: LiveRole | None = None
    limiter: RateLimiter | None = None
    deadline: float | None = None  # time.monotonic() past which resolvers do not start
    rate: Charge | None = None  # this request's charge to the caller's budget of points
    on_rate: Callable[[Charge], None] = lambda charge: None  # the view's headers and status
    _loaders: Loaders | None = field(default=None, init=False)

    @property
    def loaders(self) -> Loaders:
        """This request's DataLoaders, made on first use: a socket whose subscription shares
        a group's execution never needs its own."""
        if self._loaders is None:
            self._loaders = Loaders(db=self.db, actor=self.actor)
        return self._loaders

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
