"""The official Python SDK's OAuth client against catwalk's own authorization server: it discovers, registers,
signs in (the redirect handler plays the person at the consent page, typing the sign-in code the test minted),
calls a tool, refreshes once its access token has expired, and prints one JSON line. Then it waits for a line
on stdin (the test revoked the subject meanwhile), tries again, and prints whether it was refused.

    python oauth_client.py URL SIGN_IN_CODE [CLIENT_METADATA_URL]

With a client metadata document's URL, the client is named by it instead of registering.
"""

import asyncio
import json
import sys
import time
from urllib.parse import parse_qs, urlparse

import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REDIRECT = "http://127.0.0.1:9/callback"


class Storage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Person:
    """Signs in at the consent page with the sign-in code, and hands the client what the redirect carried."""

    def __init__(self, code: str) -> None:
        self.sign_in_code = code
        self.result: AuthorizationCodeResult | None = None

    async def redirect(self, authorization_url: str) -> None:
        url = urlparse(authorization_url)
        form = {k: v[0] for k, v in parse_qs(url.query).items()}
        form["sign_in_code"] = self.sign_in_code
        async with httpx2.AsyncClient() as http:
            answer = await http.post(authorization_url.split("?")[0], data=form)
        if answer.status_code != 303:
            raise RuntimeError(f"sign-in refused: {answer.status_code}")
        back = parse_qs(urlparse(answer.headers["location"]).query)
        self.result = AuthorizationCodeResult(code=back["code"][0], state=back["state"][0], iss=back.get("iss", [None])[0])

    async def callback(self) -> AuthorizationCodeResult:
        assert self.result is not None
        return self.result


async def call(url: str, provider: OAuthClientProvider) -> str:
    async with Client(streamable_http_client(url, http_client=httpx2.AsyncClient(auth=provider))) as client:
        result = await client.call_tool("env", {"name": "TENANT_ID"})
        return result.content[0].text


async def main(url: str, code: str, document: str | None) -> None:
    storage = Storage()
    person = Person(code)
    metadata = OAuthClientMetadata(
        client_name="catwalk python oauth test",
        redirect_uris=[REDIRECT],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    provider = OAuthClientProvider(
        url, metadata, storage, person.redirect, person.callback, client_metadata_url=document
    )
    first = await call(url, provider)
    spent = storage.tokens.refresh_token
    # Time passes: the SDK's own record says the access token has expired, so it refreshes before the call.
    provider.context.token_expiry_time = time.time() - 1
    refreshed = await call(url, provider)
    print(
        json.dumps(
            {
                "first": first,
                "refreshed": refreshed,
                "rotated": storage.tokens.refresh_token != spent,
                "client_id": storage.client.client_id,
            }
        ),
        flush=True,
    )
    sys.stdin.readline()
    try:
        await call(url, provider)
        refused = False
    except Exception:
        refused = True
    print(json.dumps({"refused": refused}), flush=True)


asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None))
