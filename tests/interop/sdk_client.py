"""The official MCP Python SDK client, end to end against Warden's gateway.

Discovery (401 -> protected-resource metadata -> authorization-server metadata),
registration (a pre-registered client id, or dynamic registration when given "-"),
authorization code + PKCE (the harness plays the user: we print "AUTHORIZE <url>" and
read "CALLBACK <url>" back), a session with an SSE-streamed tool call, then a refresh
after the access token expired.

    python sdk_client.py SERVER_URL CLIENT_ID|- REDIRECT_URI

Prints "RESULT <json>" and exits 0 only if every check passed.
"""
import asyncio
import json
import sys
from urllib.parse import parse_qs, urlparse

from mcp.client import Client
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

SERVER_URL, CLIENT_ID, REDIRECT_URI = sys.argv[1:4]


def fail(msg: str) -> None:
    print("RESULT " + json.dumps({"ok": False, "error": msg}), flush=True)
    sys.exit(1)


class Memory(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None
        self.registered = False
        if CLIENT_ID != "-":
            self.client = OAuthClientInformationFull(
                client_id=CLIENT_ID,
                redirect_uris=[REDIRECT_URI],
                token_endpoint_auth_method="none",
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
            )

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        if self.client is None or self.client.client_id != client_info.client_id:
            self.registered = True
        self.client = client_info


seen = {}


async def redirect_handler(url: str) -> None:
    seen["authorize"] = url
    print("AUTHORIZE " + url, flush=True)


async def callback_handler() -> AuthorizationCodeResult:
    line = await asyncio.to_thread(sys.stdin.readline)
    q = parse_qs(urlparse(line.strip().removeprefix("CALLBACK ")).query)
    if "code" not in q:
        fail("no code in the callback: " + line)
    return AuthorizationCodeResult(code=q["code"][0], state=q.get("state", [None])[0], iss=q.get("iss", [None])[0])


async def main() -> None:
    storage = Memory()
    provider = OAuthClientProvider(
        server_url=SERVER_URL,
        client_metadata=OAuthClientMetadata(
            client_name="warden-interop-py",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    steps: list[float] = []

    async def on_progress(progress, total, message):
        steps.append(progress)

    async with create_mcp_http_client(auth=provider) as http:
        async with Client(streamable_http_client(SERVER_URL, http_client=http), mode="legacy", raise_exceptions=True) as client:
            tools = sorted(t.name for t in (await client.list_tools()).tools)
            listed = await client.call_tool("notes_list", {}, progress_callback=on_progress)
            who = await client.call_tool("whoami", {})
    first = storage.tokens
    if first is None or not first.refresh_token:
        fail("no tokens after the flow")
    if first.access_token in json.dumps(who.structured_content or {}):
        fail("the upstream saw the client's token")

    # Outwait the access token (30 s tokens, no leeway on this server), check that the
    # gateway now refuses it, then the SDK must refresh before its next request.
    await asyncio.sleep((first.expires_in or 30) + 1)
    async with create_mcp_http_client() as raw:
        expired = await raw.post(
            SERVER_URL,
            headers={
                "authorization": "Bearer " + first.access_token,
                "accept": "application/json, text/event-stream",
            },
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        )
    async with create_mcp_http_client(auth=provider) as http:
        async with Client(streamable_http_client(SERVER_URL, http_client=http), mode="legacy", raise_exceptions=True) as client:
            again = await client.call_tool("notes_list", {})
    second = storage.tokens
    if second.refresh_token == first.refresh_token:
        fail("the refresh token was not rotated")
    if second.access_token == first.access_token:
        fail("no new access token after refresh")
    q = parse_qs(urlparse(seen["authorize"]).query)
    print("RESULT " + json.dumps({
        "ok": True,
        "registered_dynamically": storage.registered,
        "resource": q.get("resource", [None])[0],
        "scope": q.get("scope", [None])[0],
        "tools": tools,
        "progress": steps,
        "listed_is_error": bool(listed.is_error),
        "expired_status": expired.status_code,
        "after_refresh_is_error": bool(again.is_error),
        "who": who.structured_content,
    }), flush=True)


asyncio.run(main())
