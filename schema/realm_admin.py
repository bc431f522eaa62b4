"""A city admin's realm in GraphQL: OAuth clients and inviting people — own city only."""

from __future__ import annotations

from datetime import datetime

import strawberry

from cityexchange.auth.admin import RealmAdmin, RegisteredClient
from cityexchange.auth.records import ClientType, OAuthClient
from cityexchange.schema.cities import Person
from cityexchange.schema.context import Info
from cityexchange.schema.errors import UserError, attempt
from cityexchange.schema.relay import expect_global_id, to_global_id
from cityexchange.schema.retries import RETRY_KEY, RETRY_KEY_ECHO, Retry, created
from cityexchange.schema.taxonomy import OrganisationKind, Role
from cityexchange.services import cities, models
from cityexchange.services.errors import NotFound

strawberry.enum(
    ClientType,
    name="ClientType",
    description="CONFIDENTIAL: a back end with a secret; PUBLIC: an app with PKCE.",
)


@strawberry.type(name="OAuthClient", description="A client of your city's realm.")
class OAuthClientType:
    client_id: str
    name: str
    type: ClientType
    grants: list[str]
    redirect_uris: list[str]
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None
    organisation_id: strawberry.ID | None = strawberry.field(
        description="The organisation it acts for: its tokens carry it as `org`."
    )

    @classmethod
    def from_domain(cls, client: OAuthClient) -> OAuthClientType:
        organisation = client.organisation
        return cls(
            organisation_id=to_global_id("Organisation", organisation) if organisation else None,
            client_id=client.client_id,
            name=client.name,
            type=client.type,
            grants=list(client.grants),
            redirect_uris=list(client.redirect_uris),
            scopes=list(client.scopes),
            created_at=client.created_at,
            revoked_at=client.revoked_at,
        )


def _admin(info: Info) -> RealmAdmin:
    admin = info.context.realm_admin
    if admin is None:
        raise RuntimeError("realm administration is not configured")
    return admin


@strawberry.input
class RegisterClientInput:
    name: str
    type: ClientType
    grants: list[str] = strawberry.field(
        description="authorization_code, client_credentials and/or refresh_token"
    )
    scope: str = strawberry.field(description='Space-separated, e.g. "read publish".')
    redirect_uris: list[str] | None = None
    organisation_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Bind it to one of your city's organisations (or an international one): "
        "its tokens act for it. Its own admins may register these too; never with admin.",
    )
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type
class RegisterClientPayload:
    client: OAuthClientType | None
    client_secret: str | None = strawberry.field(
        description="Shown once, for confidential clients; only its hash is kept (so a "
        "retry with the same clientMutationId returns null)."
    )
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


@strawberry.input
class ClientIdInput:
    client_id: str
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type
class RotateClientSecretPayload:
    client_id: str
    client_secret: str | None = strawberry.field(
        description="Shown once; null on a retry with the same clientMutationId."
    )
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


@strawberry.type
class RevokeClientPayload:
    client_id: str
    revoked: bool
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


@strawberry.input
class InvitePersonInput:
    username: str
    name: str
    role: Role
    organisation_name: str
    organisation_kind: OrganisationKind
    title: str | None = None
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type
class InvitePersonPayload:
    person: Person | None
    invitation_code: str | None = strawberry.field(
        description="Single use, 7 days; give it to the person with invitationUrl. Null on "
        "a retry with the same clientMutationId: only its hash is kept."
    )
    invitation_url: str | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


async def _registered(info: Info, client_id: str) -> RegisteredClient:
    """A registration's retry: the client as it is now, without the secret shown once."""
    for client in await _admin(info).clients(info.context.actor()):
        if client.client_id == client_id:
            return RegisteredClient(client=client, secret=None)
    raise NotFound("OAuthClient", client_id)


async def _shown_once() -> str | None:
    """A secret rotation's retry: the secret was shown once and only its hash is kept."""
    return None


async def _invited(info: Info, person_id: str) -> tuple[models.Person, str | None]:
    """An invitation's retry: the person as they are now; the code was shown once."""
    ctx = info.context
    [person] = await cities.people_by_ids(db=ctx.db, actor=ctx.actor(), ids=[person_id])
    if person is None:
        raise NotFound("Person", person_id)
    return person, None


@strawberry.type
class RealmAdminQueries:
    @strawberry.field(description="Your city's OAuth clients (scope: admin).")
    async def oauth_clients(self, info: Info) -> list[OAuthClientType]:
        found = await _admin(info).clients(info.context.actor())
        return [OAuthClientType.from_domain(c) for c in found]


@strawberry.type
class RealmAdminMutations:
    @strawberry.mutation(description="Register an OAuth client of your city (scope: admin).")
    async def register_client(
        self, info: Info, input: RegisterClientInput
    ) -> RegisterClientPayload:
        actor = info.context.actor()
        registered, errors = await attempt(
            lambda: _admin(info).register_client(
                actor,
                name=input.name,
                client_type=input.type,
                grants=input.grants,
                redirect_uris=input.redirect_uris or [],
                scopes=input.scope.split(),
                organisation=expect_global_id(
                    input.organisation_id, ("Organisation",), field="organisationId"
                )[1]
                if input.organisation_id
                else None,
            ),
            Retry(
                info,
                input,
                reload=created(lambda id: _registered(info, id)),
                result_id=lambda registered: registered.client.client_id,
            ),
        )
        return RegisterClientPayload(
            client=OAuthClientType.from_domain(registered.client) if registered else None,
            client_secret=registered.secret if registered else None,
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )

    @strawberry.mutation(
        description="Give a confidential client a new secret; the old one stops working at once."
    )
    async def rotate_client_secret(
        self, info: Info, input: ClientIdInput
    ) -> RotateClientSecretPayload:
        actor = info.context.actor()

        async def rotate() -> str | None:
            return await _admin(info).rotate_secret(actor, input.client_id)

        secret, errors = await attempt(rotate, Retry(info, input, reload=lambda _: _shown_once()))
        return RotateClientSecretPayload(
            client_id=input.client_id,
            client_secret=secret,
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )

    @strawberry.mutation(description="Revoke a client: its tokens stop working within seconds.")
    async def revoke_client(self, info: Info, input: ClientIdInput) -> RevokeClientPayload:
        actor = info.context.actor()

        async def revoke() -> bool:
            await _admin(info).revoke_client(actor, input.client_id)
            return True

        async def revoked_before() -> bool:
            return True

        revoked, errors = await attempt(
            revoke, Retry(info, input, reload=lambda _: revoked_before())
        )
        return RevokeClientPayload(
            client_id=input.client_id,
            revoked=bool(revoked),
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )

    @strawberry.mutation(
        description="Add a person to your city and get a single-use "
        "invitation code to hand over (scope: admin)."
    )
    async def invite_person(self, info: Info, input: InvitePersonInput) -> InvitePersonPayload:
        ctx = info.context
        actor = ctx.actor()

        async def invite() -> tuple[models.Person, str | None]:
            person = await cities.invite_person(
                db=ctx.db,
                actor=actor,
                person=models.Person(
                    id="",
                    city=actor.city,
                    username=input.username,
                    name=input.name,
                    role=input.role,
                    affiliation=models.Affiliation(
                        input.organisation_name, input.organisation_kind
                    ),
                    title=input.title,
                ),
            )
            return person, await _admin(info).invite(actor, person.username)

        invited, errors = await attempt(
            invite,
            Retry(
                info,
                input,
                reload=created(lambda id: _invited(info, id)),
                result_id=lambda invited: invited[0].id,
            ),
        )
        if invited is None:
            return InvitePersonPayload(
                person=None,
                invitation_code=None,
                invitation_url=None,
                user_errors=errors,
                client_mutation_id=input.client_mutation_id,
            )
        person, code = invited
        return InvitePersonPayload(
            person=Person.from_domain(person),
            invitation_code=code,
            invitation_url=f"{ctx.public_url}/realms/{actor.city}/invitation",
            user_errors=[],
            client_mutation_id=input.client_mutation_id,
        )
