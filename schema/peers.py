"""Peer cities as GraphQL: `City.peers`, ranked edges with a score and the reasons."""

from __future__ import annotations

import strawberry

from cityexchange.schema.cities import City
from cityexchange.schema.context import Info
from cityexchange.schema.loaders import PeersKey
from cityexchange.schema.relay import PageInfo
from cityexchange.services import peers
from cityexchange.services.peers import ReasonCode

strawberry.enum(ReasonCode, name="MatchReasonCode", description="What a reason is about.")


@strawberry.type(description="One thing that makes a match: a code to act on, a text to read.")
class MatchReason:
    code: ReasonCode
    text: str

    @classmethod
    def from_domain(cls, reason: peers.MatchReason) -> MatchReason:
        return cls(code=reason.code, text=reason.text)


@strawberry.type(description="A peer city, how alike it is (0 to 1) and why.")
class CityPeerEdge:
    cursor: str
    node: City
    score: float
    reasons: list[MatchReason] = strawberry.field(description="Strongest first.")


@strawberry.type(description="Cities ranked by how alike they are to this one, best first.")
class CityPeerConnection:
    edges: list[CityPeerEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Cities with anything in common.")


async def peers_of(
    info: Info, slug: str, *, first: int | None, after: str | None
) -> CityPeerConnection:
    """The resolver of `City.peers`: one walk over the member cities for all of a level."""
    page = await info.context.loaders.peers_by_city.load(PeersKey(slug, first, after))
    edges = [
        CityPeerEdge(
            cursor=cursor,
            node=City.from_domain(peer.city),
            score=peer.match.score,
            reasons=[MatchReason.from_domain(r) for r in peer.match.reasons],
        )
        for peer, cursor in zip(page.items, page.cursors, strict=True)
    ]
    return CityPeerConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        ),
        total_count=await page.total_count(),
    )
