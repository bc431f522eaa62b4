"""A city's admin runs its realm: clients and invitations in GraphQL, and the same on the
command line, each limited to the admin's own city."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError

from tests.conftest import Api, add_city
from tests.oauth_support import REDIRECT_URI, Realm, authorize, hidden_fields, oauth_client

CLI = str(Path(sys.executable).parent / "cityexchange")
REGISTER = """mutation($input: RegisterClientInput!) { registerClient(input: $input) {
    client { clientId type grants scopes } clientSecret userErrors { code field message } } }"""
VIEWER = "{ viewer { subject city { slug } person { name } } }"

pytestmark = pytest.mark.usefixtures("two_cities")


def transport(api: Api) -> httpx.AsyncBaseTransport:
    return api.http._transport


async def _client_token(api: Api, city: str, client_id: str, secret: str) -> str:
    async with oauth_client(transport(api), client_id=client_id, client_secret=secret) as c:
        token = await c.fetch_token(
            f"{api.settings.public_url}/realms/{city}/token", grant_type="client_credentials"
        )
    return str(token["access_token"])


async def test_an_admin_registers_rotates_and_revokes_its_citys_clients(api: Api) -> None:
    admin_token = await api.token("rotterdam")
    data = await api.data(
        REGISTER,
        {
            "input": {
                "name": "Open data portal",
                "type": "CONFIDENTIAL",
                "grants": ["client_credentials"],
                "scope": "read",
            }
        },
        token=admin_token,
    )
    payload = data["registerClient"]
    client_id, secret = payload["client"]["clientId"], payload["clientSecret"]
    assert payload["client"]["scopes"] == ["read"]
    token = await _client_token(api, "rotterdam", client_id, secret)
    assert (await api.data(VIEWER, token=token))["viewer"]["city"] == {"slug": "rotterdam"}

    listed = await api.data("{ oauthClients { clientId name } }", token=admin_token)
    assert listed["oauthClients"] == [
        # The service registered its web app in the realm at start (docs/web-app.md).
        {"clientId": "rotterdam-web", "name": "Peer City Exchange web app"},
        {"clientId": client_id, "name": "Open data portal"},
    ]

    # Another city's admin can neither see nor touch it.
    lagos_admin = await api.token("lagos")
    assert (await api.data("{ oauthClients { clientId } }", token=lagos_admin)) == {
        "oauthClients": [{"clientId": "lagos-web"}]
    }
    revoke = """mutation($id: String!) { revokeClient(input: {clientId: $id}) { revoked
        userErrors { code } } }"""
    foreign = await api.data(revoke, {"id": client_id}, token=lagos_admin)
    assert foreign["revokeClient"] == {"revoked": False, "userErrors": [{"code": "NOT_FOUND"}]}
    # Without the admin scope: FORBIDDEN.
    publisher = await api.token("rotterdam", scopes=("read", "publish"))
    body = await api.gql(revoke, {"id": client_id}, token=publisher)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    rotate = """mutation($id: String!) { rotateClientSecret(input: {clientId: $id}) {
        clientSecret } }"""
    new_secret = (await api.data(rotate, {"id": client_id}, token=admin_token))[
        "rotateClientSecret"
    ]["clientSecret"]
    with pytest.raises(OAuthError):
        await _client_token(api, "rotterdam", client_id, secret)
    await _client_token(api, "rotterdam", client_id, new_secret)

    done = await api.data(revoke, {"id": client_id}, token=admin_token)
    assert done["revokeClient"] == {"revoked": True, "userErrors": []}
    with pytest.raises(OAuthError):
        await _client_token(api, "rotterdam", client_id, new_secret)


async def test_bad_client_registrations_are_user_errors(api: Api) -> None:
    admin_token = await api.token("rotterdam")
    for bad, field in (
        ({"type": "PUBLIC", "grants": ["client_credentials"]}, "grants"),
        ({"grants": ["authorization_code"]}, "redirectUris"),
        (
            {"grants": ["authorization_code"], "redirectUris": ["http://evil.example/cb"]},
            "redirectUris",
        ),
        ({"grants": ["implicit"]}, "grants"),
        ({"scope": "read root"}, "scope"),
    ):
        data = await api.data(
            REGISTER,
            {
                "input": {
                    "name": "App",
                    "type": "CONFIDENTIAL",
                    "grants": ["client_credentials"],
                    "scope": "read",
                    **bad,
                }
            },
            token=admin_token,
        )
        errors = data["registerClient"]["userErrors"]
        assert [(e["code"], e["field"]) for e in errors] == [("BAD_USER_INPUT", ["input", field])]


async def test_an_invited_person_sets_a_password_and_signs_in(api: Api) -> None:
    admin_token = await api.token("rotterdam")
    invite = """mutation($input: InvitePersonInput!) { invitePerson(input: $input) {
        person { name } invitationCode invitationUrl userErrors { code field } } }"""
    data = await api.data(
        invite,
        {
            "input": {
                "username": "s.bakker",
                "name": "Sem Bakker",
                "role": "MEMBER",
                "organisationName": "Waterschap",
                "organisationKind": "UTILITY",
            }
        },
        token=admin_token,
    )
    payload = data["invitePerson"]
    code, url = payload["invitationCode"], payload["invitationUrl"]
    assert url == f"{api.settings.public_url}/realms/rotterdam/invitation"

    async with httpx.AsyncClient(transport=transport(api)) as browser:
        page = await browser.get(url)
        wrong = await browser.post(
            url,
            data={
                **hidden_fields(page.text),
                "username": "s.bakker",
                "code": "nope",
                "password": "a long enough password",
            },
        )
        assert wrong.status_code == 400
        page = await browser.get(url)
        ok = await browser.post(
            url,
            data={
                **hidden_fields(page.text),
                "username": "s.bakker",
                "code": code,
                "password": "a long enough password",
            },
        )
        assert ok.status_code == 200, ok.text
        page = await browser.get(url)
        again = await browser.post(
            url,
            data={
                **hidden_fields(page.text),
                "username": "s.bakker",
                "code": code,
                "password": "another password here",
            },
        )
        assert again.status_code == 400  # single use

    registered = await api.data(
        REGISTER,
        {
            "input": {
                "name": "Mobile",
                "type": "PUBLIC",
                "grants": ["authorization_code"],
                "redirectUris": [REDIRECT_URI],
                "scope": "read",
            }
        },
        token=admin_token,
    )
    mobile_id = registered["registerClient"]["client"]["clientId"]
    realm = Realm(
        city="rotterdam",
        issuer=f"{api.settings.public_url}/realms/rotterdam",
        portal_id="",
        portal_secret="",
        mobile_id=mobile_id,
        username="s.bakker",
        person_id="",
    )
    async with oauth_client(
        transport(api),
        client_id=mobile_id,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as client:
        location, verifier = await authorize(
            client, realm, scope="read", password="a long enough password"
        )
        token = await client.fetch_token(
            f"{realm.issuer}/token", authorization_response=location, code_verifier=verifier
        )
    viewer = (await api.data(VIEWER, token=token["access_token"]))["viewer"]
    assert viewer["person"] == {"name": "Sem Bakker"}

    lagos_admin = await api.token("lagos")
    other = await api.data(
        invite,
        {
            "input": {
                "username": "s.bakker",
                "name": "Someone",
                "role": "ADMIN",
                "organisationName": "X",
                "organisationKind": "NGO",
            }
        },
        token=lagos_admin,
    )
    assert other["invitePerson"]["invitationCode"]  # lagos invites into lagos, not rotterdam


async def _cli(api: Api, *args: str, stdin: bytes | None = None) -> dict[str, object]:
    uri = api.settings.mongodb_uri
    assert uri is not None
    env = {
        **os.environ,
        "CITYEXCHANGE_MONGODB_URI": uri.value,
        "CITYEXCHANGE_DB": api.settings.db_name,
    }
    process = await asyncio.create_subprocess_exec(
        CLI,
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin)
    assert process.returncode == 0, err.decode()
    result: dict[str, object] = (
        json.loads(out) if out.strip().startswith(b"{") else {"items": json.loads(out)}
    )
    return result


async def test_the_command_line_runs_a_realm(api: Api) -> None:
    await add_city(api.db, "chennai", "Chennai", "IN")
    added = await _cli(
        api,
        "client",
        "add",
        "--city",
        "chennai",
        "--name",
        "Portal",
        "--confidential",
        "--grant",
        "client_credentials",
        "--scope",
        "read",
    )
    client_id, secret = str(added["client_id"]), str(added["client_secret"])
    token = await _client_token(api, "chennai", client_id, secret)
    assert (await api.data(VIEWER, token=token))["viewer"]["city"] == {"slug": "chennai"}
    listed = await _cli(api, "client", "list", "--city", "chennai")
    assert [c["client_id"] for c in listed["items"]] == [client_id]  # type: ignore[union-attr]
    assert "client_secret" not in json.dumps(listed)

    person = await _cli(
        api,
        "user",
        "add",
        "--city",
        "chennai",
        "--username",
        "k.raman",
        "--name",
        "Kavya Raman",
        "--role",
        "cro",
        "--password-stdin",
        stdin=b"a long enough password\n",
    )
    assert person["can_sign_in"] is True

    rotated = await _cli(api, "realm", "rotate-key", "--city", "chennai")
    new_token = await _client_token(api, "chennai", client_id, secret)
    header = json.loads(__import__("base64").urlsafe_b64decode(new_token.split(".")[0] + "=="))
    assert header["kid"] == rotated["kid"]
    await api.data(VIEWER, token=token)  # signed before the rotation: still valid

    await _cli(api, "client", "revoke", "--city", "chennai", "--client-id", client_id)
    async with asyncio.timeout(5):
        while not (await api.gql(VIEWER, token=token)).get("errors"):
            await asyncio.sleep(0.25)


async def test_revoking_a_person_stops_their_tokens_and_sign_in(api: Api) -> None:
    person = await _cli(
        api,
        "user",
        "add",
        "--city",
        "lagos",
        "--username",
        "f.adeyemi",
        "--name",
        "Folake Adeyemi",
        "--role",
        "cro",
        "--password-stdin",
        stdin=b"a long enough password\n",
    )
    token = await api.token("lagos", subject=str(person["id"]))
    assert (await api.data(VIEWER, token=token))["viewer"]["person"] == {"name": "Folake Adeyemi"}
    await _cli(api, "user", "revoke", "--city", "lagos", "--username", "f.adeyemi")
    async with asyncio.timeout(5):
        while not (await api.gql(VIEWER, token=token)).get("errors"):
            await asyncio.sleep(0.25)
    # A token minted after the revocation of someone else in the city still works.
    other = await api.token("lagos", subject="portal")
    assert (await api.data(VIEWER, token=other))["viewer"]["city"] == {"slug": "lagos"}
