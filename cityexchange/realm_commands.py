"""Realm administration on the command line: clients, people, signing keys, federation."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from cityexchange.auth import admin
from cityexchange.auth.oauth_store import OAuthStore
from cityexchange.auth.records import GRANTS, ClientType, OAuthClient
from cityexchange.services import cities
from cityexchange.services.models import Affiliation, Person
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import OrganisationKind, Role
from cityexchange.settings import Settings


def _client_json(client: OAuthClient, secret: str | None = None) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "client_id": client.client_id, "city": client.city, "name": client.name,
        "type": client.type.value, "grants": list(client.grants),
        "redirect_uris": list(client.redirect_uris), "scope": " ".join(client.scopes),
        "created_at": client.created_at, "revoked_at": client.revoked_at,
        "organisation": client.organisation,
    }  # fmt: skip
    if secret is not None:
        shown["client_secret"] = secret  # shown this once; only its hash is stored
    return shown


def _client_add(args: argparse.Namespace, settings: Settings) -> None:
    from cityexchange.cli import print_json, with_store

    kind = ClientType.CONFIDENTIAL if args.confidential else ClientType.PUBLIC
    registered = with_store(settings, Path(args.data_dir), lambda store: admin.register_client(
        store, city=args.city, name=args.name, client_type=kind, grants=args.grant,
        redirect_uris=args.redirect_uri, scopes=args.scope.split(),
        organisation=args.organisation,
    ))  # fmt: skip
    print_json(_client_json(registered.client, registered.secret))


def _client_list(args: argparse.Namespace, settings: Settings) -> None:
    from cityexchange.cli import print_json, with_store

    found = with_store(
        settings, Path(args.data_dir), lambda store: admin.clients(store, city=args.city)
    )
    print_json([_client_json(c) for c in found])


def _client_rotate(args: argparse.Namespace, settings: Settings) -> None:
    from cityexchange.cli import print_json, with_store

    secret = with_store(
        settings,
        Path(args.data_dir),
        lambda store: admin.rotate_secret(store, city=args.city, client_id=args.client_id),
    )
    print_json({"client_id": args.client_id, "client_secret": secret})


def _client_revoke(args: argparse.Namespace, settings: Settings) -> None:
    from cityexchange.cli import print_json, with_store

    with_store(
        settings,
        Path(args.data_dir),
        lambda store: admin.revoke_client(
            store,
            city=args.city,
            client_id=args.client_id,
            access_ttl=settings.access_token_ttl_seconds,
        ),
    )
    print_json({"client_id": args.client_id, "revoked": True})


def _user_add(args: argparse.Namespace, settings: Settings) -> None:
    from cityexchange.cli import CommandError, print_json, with_db, with_store

    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else None
    if args.password_stdin and not password:
        raise CommandError("--password-stdin: no password on standard input")
    try:
        kind = OrganisationKind(args.organisation_kind.upper())
    except ValueError:
        raise CommandError(f"--organisation-kind: one of {', '.join(OrganisationKind)}") from None

    async def add(db: Database) -> Person:
        return await cities.add_person(db=db, person=Person(
            id="", city=args.city, username=args.username, name=args.name,
            role=Role(args.role), affiliation=Affiliation(args.organisation, kind),
            title=args.title))  # fmt: skip

    data_dir = Path(args.data_dir)
    if password is not None:  # check it before anything is stored
        admin.check_password(password)
    person = with_db(settings, data_dir, add)
    if password is not None:
        with_store(
            settings,
            data_dir,
            lambda store: admin.set_password(
                store, city=args.city, username=person.username, password=password
            ),
        )
    print_json(
        {
            "id": person.id,
            "city": person.city,
            "username": person.username,
            "name": person.name,
            "role": person.role.value,
            "organisation": {
                "name": person.affiliation.name,
                "kind": person.affiliation.kind.value,
            },
            "can_sign_in": password is not None,
        }
    )


def _user_link(args: argparse.Namespace, settings: Settings) -> None:
    from cityexchange.cli import print_json, with_store

    with_store(
        settings,
        Path(args.data_dir),
        lambda store: admin.link_federated_subject(
            store, city=args.city, username=args.username, issuer=args.issuer, subject=args.sub
        ),
    )
    linked = {"city": args.city, "username": args.username, "issuer": args.issuer}
    print_json({**linked, "sub": args.sub, "linked": True})


def _user_unlink(args: argparse.Namespace, settings: Settings) -> None:
    from cityexchange.cli import print_json, with_store

    with_store(
        settings,
        Path(args.data_dir),
        lambda store: admin.unlink_federated_subject(
            store, city=args.city, issuer=args.issuer, subject=args.sub
        ),
    )
    print_json({"city": args.city, "issuer": args.issuer, "sub": args.sub, "linked": False})


def _user_revoke(args: argparse.Namespace, settings: Settings) -> None:
    from cityexchange.cli import print_json, with_store

    with_store(
        settings,
        Path(args.data_dir),
        lambda store: admin.revoke_person(
            store,
            city=args.city,
            username=args.username,
            access_ttl=settings.access_token_ttl_seconds,
        ),
    )
    print_json({"city": args.city, "username": args.username, "revoked": True})


def _rotate_key(args: argparse.Namespace, settings: Settings) -> None:
    from cityexchange.cli import print_json, with_store

    kid = with_store(
        settings, Path(args.data_dir), lambda store: admin.rotate_key(store, city=args.city)
    )
    print_json({"city": args.city, "kid": kid})


def _discover_jwks_uri(issuer: str) -> str:
    """RFC 8414 / OpenID discovery: the issuer's metadata names its jwks_uri."""
    from cityexchange.cli import CommandError

    base = issuer.rstrip("/")
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        try:
            response = httpx.get(base + path, timeout=10)
            if response.status_code == 200 and isinstance(response.json().get("jwks_uri"), str):
                return str(response.json()["jwks_uri"])
        except (httpx.HTTPError, ValueError):
            continue
    raise CommandError(f"could not discover the JWKS of {issuer}; pass --jwks-uri")


def _trust_issuer(args: argparse.Namespace, settings: Settings) -> None:
    from cityexchange.cli import print_json, with_store

    jwks_uri = args.jwks_uri or _discover_jwks_uri(args.issuer)
    with_store(
        settings,
        Path(args.data_dir),
        lambda store: admin.trust_issuer(
            store,
            city=args.city,
            issuer=args.issuer,
            jwks_uri=jwks_uri,
            audience=args.audience,
            scope_claim=args.scope_claim,
            force=args.force,
            subject_claim=args.subject_claim,
        ),
    )
    print_json(
        {
            "city": args.city,
            "issuer": args.issuer,
            "jwks_uri": jwks_uri,
            "audience": args.audience,
            "scope_claim": args.scope_claim,
            "subject_claim": args.subject_claim,
        }
    )


def add_parsers(commands: Any, data_dir_option: Callable[[argparse.ArgumentParser], None]) -> None:
    """`client ...`, `user ...`, `realm rotate-key`, `city trust-issuer`."""
    client = commands.add_parser("client", help="OAuth clients of a city's realm")
    client_commands = client.add_subparsers(dest="client_command", required=True)
    add = client_commands.add_parser("add", help="register a client (prints its secret once)")
    add.add_argument("--city", required=True, help="the city (slug) whose realm it is")
    add.add_argument("--name", required=True, help="the client's name, shown on consent pages")
    kind = add.add_mutually_exclusive_group(required=True)
    kind.add_argument("--confidential", action="store_true", help="a back end with a secret")
    kind.add_argument("--public", action="store_true", help="a mobile or browser app (PKCE)")
    add.add_argument(
        "--grant", action="append", required=True, choices=GRANTS, help="a grant type (repeatable)"
    )
    add.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        help="an exact redirect URI for authorization_code (repeatable)",
    )
    add.add_argument("--scope", required=True, help='e.g. "read publish comment"')
    add.add_argument(
        "--organisation", help="the id of the organisation it acts for (its tokens carry `org`)"
    )
    add.set_defaults(run=_client_add)
    listing = client_commands.add_parser("list", help="a city's clients (JSON)")
    listing.add_argument("--city", required=True, help="the city (slug) whose realm it is")
    listing.set_defaults(run=_client_list)
    rotate = client_commands.add_parser("rotate-secret", help="new secret, old one stops")
    revoke = client_commands.add_parser("revoke", help="revoke a client and its tokens")
    for sub, run in ((rotate, _client_rotate), (revoke, _client_revoke)):
        sub.add_argument("--city", required=True, help="the city (slug) whose realm it is")
        sub.add_argument("--client-id", required=True, help="the client's client_id")
        sub.set_defaults(run=run)
    for sub in (add, listing, rotate, revoke):
        data_dir_option(sub)

    user = commands.add_parser("user", help="people of a city").add_subparsers(
        dest="user_command", required=True
    )
    user_add = user.add_parser("add", help="add a person who can sign in")
    user_add.add_argument("--city", required=True, help="the person's city (slug)")
    user_add.add_argument("--username", required=True, help="what the person signs in with")
    user_add.add_argument("--name", required=True, help="the person's full name")
    user_add.add_argument(
        "--role",
        required=True,
        choices=[r.value for r in Role],
        help="bounds the scopes the person can grant (only admin gets admin)",
    )
    user_add.add_argument(
        "--organisation", default="City", help="the person's organisation (default: City)"
    )
    user_add.add_argument(
        "--organisation-kind",
        default="CITY_AGENCY",
        help=f"one of {', '.join(k.value for k in OrganisationKind)} (default: CITY_AGENCY)",
    )
    user_add.add_argument("--title", help="the person's job title")
    user_add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    user_add.set_defaults(run=_user_add)
    user_revoke = user.add_parser("revoke", help="stop a person's sign-in and tokens")
    user_revoke.add_argument("--city", required=True, help="the person's city (slug)")
    user_revoke.add_argument("--username", required=True, help="the person's username")
    user_revoke.set_defaults(run=_user_revoke)
    link = user.add_parser(
        "link", help="let a trusted identity provider's subject speak for a person"
    )
    unlink = user.add_parser("unlink", help="stop a federated subject speaking for a person")
    for sub, run in ((link, _user_link), (unlink, _user_unlink)):
        sub.add_argument("--city", required=True, help="the person's city (slug)")
        sub.add_argument("--issuer", required=True, help="the identity provider's issuer")
        sub.add_argument("--sub", required=True, help="the subject (sub claim) of its tokens")
        sub.set_defaults(run=run)
    link.add_argument("--username", required=True, help="the person it speaks for")
    for sub in (user_add, user_revoke, link, unlink):
        data_dir_option(sub)

    realm = commands.add_parser("realm", help="a city's realm").add_subparsers(
        dest="realm_command", required=True
    )
    rotate_key = realm.add_parser("rotate-key", help="sign new tokens with a new key")
    rotate_key.add_argument("--city", required=True, help="the city (slug) whose realm it is")
    rotate_key.set_defaults(run=_rotate_key)
    data_dir_option(rotate_key)


def add_trust_issuer(
    city_commands: Any, data_dir_option: Callable[[argparse.ArgumentParser], None]
) -> None:
    """`city trust-issuer`: accept a city's own identity provider."""
    trust = city_commands.add_parser(
        "trust-issuer", help="accept tokens of the city's own identity provider"
    )
    trust.add_argument("--city", required=True, help="the city whose people it signs in")
    trust.add_argument("--issuer", required=True, help="exactly the tokens' `iss`")
    trust.add_argument("--jwks-uri", help="default: discovered from the issuer's metadata")
    trust.add_argument("--audience", required=True, help="the `aud` its tokens carry for us")
    trust.add_argument(
        "--scope-claim", default="scope", help="the claim carrying its scopes (default: scope)"
    )
    trust.add_argument(
        "--subject-claim", default="sub", help="the claim naming the person (default: sub)"
    )
    trust.add_argument(
        "--force", action="store_true", help="move an issuer another city trusts to this city"
    )
    trust.set_defaults(run=_trust_issuer)
    data_dir_option(trust)


__all__ = ["OAuthStore", "add_parsers", "add_trust_issuer"]
