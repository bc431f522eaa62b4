"""What the app's lifespan opens, handed to the GraphQL view and the routes."""

from __future__ import annotations

from dataclasses import dataclass

from auth.oauth_store import OAuthStore
from auth.tokens import TokenVerifier
from auth.web import OAuthRealms
from services.delivery import Deliverer
from services.live import Hub
from services.rate_limits import RateLimiter
from services.store.database import Database


@dataclass(slots=True)
class Resources:
    """What the lifespan opens, handed to requests; None outside the lifespan."""

    db: Database | None = None
    verifier: TokenVerifier | None = None
    hub: Hub | None = None
    deliverer: Deliverer | None = None
    oauth: OAuthStore | None = None
    realms: OAuthRealms | None = None
    limiter: RateLimiter | None = None

    def oauth_realms(self) -> OAuthRealms:
        if self.realms is None:
            raise RuntimeError("the app's lifespan is not running")
        return self.realms
