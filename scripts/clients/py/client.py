"""A real MCP client for Portcullis' tests, built on the Python MCP SDK 2.x (`mcp` on PyPI).

    scripts/clients/py/.venv/bin/python scripts/clients/py/client.py --server URL --steps STEPS
        [--email EMAIL] [--client-metadata-url URL] [--redirect-port N] [--elicit RESULT]

The SDK does all of OAuth (`mcp.client.auth.OAuthClientProvider`: discovery, registration or a
Client ID Metadata Document URL, PKCE, `resource`, the code exchange, refresh before an expired
token is used, a new authorization on 401 and on 403 `insufficient_scope`) and negotiates the
protocol era itself (`Client(mode="auto")`: `server/discover`, else `initialize`). This script only
plays the person: its `redirect_handler` runs the test browser (`scripts/mcp/browser-cli.mjs`)
through Portcullis' pages, and its `callback_handler` hands the SDK the redirect's code, state and
iss. Nothing listens on the loopback redirect URI.

It prints the same JSON lines as `scripts/mcp/client.mjs`: a `connect` line (index -1), then one
per step, each with `ok`, `result` or `error`, and `auth` (authorizations started, registrations,
token requests by grant type, 401s and 403 challenges seen during the step). Steps (each may
carry "server": URL for another MCP endpoint, which gets its own registration and tokens):
    {"listTools": {}}
    {"callTool": {"name": ..., "arguments": {...}}, "expectStepUp": true}
    {"sleep": {"seconds": S}}   let time pass, e.g. past the access token's lifetime, so the SDK
                                refreshes before its next request, as it does in real use
    {"tokens": {}}              scope, expiry, whether a refresh token is held, the access token
                                (only this step's line carries a token; none is ever logged)
--elicit RESULT (JSON, e.g. {"action": "accept", "content": {"name": "Ada"}}) gives the client an
`elicitation_callback` (so it declares the capability) that answers every elicitation request
with RESULT; each step line then lists the `elicitations` asked during it.
Exit status 0 when every step ran, whatever each reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx2
from mcp import types
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

BROWSER = Path(__file__).resolve().parents[2] / "mcp" / "browser-cli.mjs"


def note(*parts: object) -> None:
    print("[py-client]", *parts, file=sys.stderr, flush=True)


@dataclass
class Wire:
    """What happened on the wire: every HTTP exchange the SDK makes, auth flow included."""

    events: list[dict[str, Any]] = field(default_factory=list)

    async def on_response(self, response: httpx2.Response) -> None:
        request = response.request
        event: dict[str, Any] = {"method": request.method, "path": request.url.path, "status": response.status_code}
        if request.method == "POST":
            content_type = request.headers.get("content-type", "")
            body = request.content if hasattr(request, "_content") else b""
            if content_type.startswith("application/x-www-form-urlencoded"):
                form = parse_qs(body.decode(errors="replace"))
                if "grant_type" in form:
                    event["grant_type"] = form["grant_type"][0]
            elif b'"redirect_uris"' in body:
                event["registration"] = True
        challenge = response.headers.get("www-authenticate")
        if challenge:
            event["wwwAuthenticate"] = challenge
        self.events.append(event)
        note(f"{request.method} {request.url.path} -> {response.status_code}", event.get("grant_type", ""))

    def since(self, mark: int, authorizations: list[dict[str, Any]]) -> dict[str, Any]:
        events = self.events[mark:]
        token_requests = [{"grant_type": e["grant_type"], "status": e["status"]} for e in events if "grant_type" in e]
        return {
            "authorizations": [{k: v for k, v in a.items() if k != "mark"} for a in authorizations if a["mark"] >= mark],
            "registrations": [{"status": e["status"]} for e in events if e.get("registration")],
            "tokenRequests": token_requests,
            "refreshed": any(t["grant_type"] == "refresh_token" and t["status"] == 200 for t in token_requests),
            "unauthorized": sum(1 for e in events if e["status"] == 401),
            "forbidden": [{"wwwAuthenticate": e.get("wwwAuthenticate")} for e in events if e["status"] == 403],
        }


class MemoryStorage:
    """The SDK's `TokenStorage`, in memory: what a client keeps per server."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class Connection:
    """One MCP endpoint: its OAuth provider, its HTTP client and the SDK's `Client`."""

    def __init__(self, url: str, options: argparse.Namespace, wire: Wire, elicitations: list[dict[str, Any]]) -> None:
        self.url = url
        self.elicitations = elicitations
        self.options = options
        self.wire = wire
        self.storage = MemoryStorage()
        self.authorizations: list[dict[str, Any]] = []
        self.callback: AuthorizationCodeResult | None = None
        redirect_uri = f"http://127.0.0.1:{options.redirect_port}/callback"
        self.provider = OAuthClientProvider(
            server_url=url,
            client_metadata=OAuthClientMetadata(
                client_name="Python SDK Test Client",
                redirect_uris=[redirect_uri],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",
            ),
            storage=self.storage,
            redirect_handler=self.redirect,
            callback_handler=self.take_callback,
            client_metadata_url=options.client_metadata_url,
        )
        self.http = httpx2.AsyncClient(
            auth=self.provider,
            event_hooks={"response": [wire.on_response]},
            timeout=httpx2.Timeout(30.0, read=60.0),
        )
        self.client: Client | None = None

    async def redirect(self, authorization_url: str) -> None:
        """The person's part: the browser through Portcullis' pages, up to the redirect URI."""
        query = parse_qs(urlparse(authorization_url).query)
        first = lambda name: query.get(name, [None])[0]  # noqa: E731
        record = {
            "mark": len(self.wire.events),
            "scope": first("scope"),
            "resource": first("resource"),
            "prompt": first("prompt"),
            "client_id": first("client_id"),
        }
        self.authorizations.append(record)
        note(f"authorization requested (scope {record['scope']!r})")
        browser = await asyncio.create_subprocess_exec(
            "node",
            str(BROWSER),
            "--email",
            self.options.email,
            authorization_url,
            stdout=asyncio.subprocess.PIPE,
        )
        stdout, _ = await browser.communicate()
        if browser.returncode != 0:
            raise RuntimeError(f"the browser failed (status {browser.returncode})")
        back = parse_qs(urlparse(stdout.decode().strip()).query)
        if "error" in back:
            raise RuntimeError(f"authorization failed: {back['error'][0]} {back.get('error_description', [''])[0]}")
        if back.get("state", [None])[0] != first("state"):
            raise RuntimeError("the redirect came back with another state")
        record["iss"] = back.get("iss", [None])[0]
        self.callback = AuthorizationCodeResult(
            code=back["code"][0], state=back.get("state", [None])[0], iss=back.get("iss", [None])[0]
        )

    async def take_callback(self) -> AuthorizationCodeResult:
        callback, self.callback = self.callback, None
        if callback is None:
            raise RuntimeError("no authorization came back")
        return callback

    async def elicit(self, _context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        """The person filling the form: records what was asked, answers with --elicit."""
        schema = getattr(params, "requested_schema", None) or {}
        properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
        self.elicitations.append({"message": params.message, "fields": list(properties)})
        return types.ElicitResult.model_validate(json.loads(self.options.elicit))

    async def open(self, stack: Any) -> Client:
        if self.client is None:
            callback = {"elicitation_callback": self.elicit} if self.options.elicit else {}
            self.client = await stack.enter_async_context(
                Client(streamable_http_client(self.url, http_client=self.http), mode="auto", **callback)
            )
        return self.client


def dump(value: Any) -> Any:
    return value.model_dump(mode="json", by_alias=True, exclude_none=True) if hasattr(value, "model_dump") else value


def describe(error: BaseException) -> dict[str, Any]:
    # Task groups wrap the SDK's error; the innermost one says what happened.
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    described: dict[str, Any] = {"name": type(error).__name__, "message": str(error)}
    code = getattr(getattr(error, "error", None), "code", None)
    if code is not None:
        described["code"] = code
    return described


async def run_step(name: str, args: dict[str, Any], step: dict[str, Any], connection: Connection, stack: Any, extra: dict[str, Any]) -> Any:
    if name == "sleep":
        await asyncio.sleep(float(args.get("seconds", 1)))
        return {"slept": args.get("seconds", 1)}
    if name == "tokens":
        tokens = connection.storage.tokens
        if tokens is None:
            return {"present": False}
        return {
            "present": True,
            "scope": tokens.scope,
            "expires_in": tokens.expires_in,
            "has_refresh_token": bool(tokens.refresh_token),
            "access_token": tokens.access_token,
            "client_id": connection.storage.client_info.client_id if connection.storage.client_info else None,
        }
    client = await connection.open(stack)
    if name == "listTools":
        return dump(await client.list_tools())
    if name == "callTool":
        before = len(connection.authorizations)
        mark = len(connection.wire.events)
        try:
            return dump(await client.call_tool(args["name"], args.get("arguments", {})))
        finally:
            if step.get("expectStepUp"):
                events = connection.wire.events[mark:]
                challenges = [e for e in events if e["status"] == 403 and e.get("wwwAuthenticate")]
                again = connection.authorizations[before:]
                extra["stepUp"] = {
                    "challenged": any("insufficient_scope" in c["wwwAuthenticate"] for c in challenges),
                    "challenge": challenges[0]["wwwAuthenticate"] if challenges else None,
                    "reauthorized": bool(again),
                    "requestedScope": again[-1]["scope"] if again else None,
                    "refreshTried": any(e.get("grant_type") == "refresh_token" for e in events),
                }
    if name == "ping":
        return dump(await client.send_ping())
    raise ValueError(f"unknown step {name}")


STEPS = ("listTools", "callTool", "sleep", "tokens", "ping")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--steps", default="[]")
    parser.add_argument("--email", default="py@example.com")
    parser.add_argument("--client-metadata-url")
    parser.add_argument("--redirect-port", default="33420")
    parser.add_argument("--elicit")
    options = parser.parse_args()
    steps = json.loads(options.steps if options.steps.lstrip().startswith("[") else Path(options.steps).read_text())

    from contextlib import AsyncExitStack

    wire = Wire()
    elicitations: list[dict[str, Any]] = []
    connections: dict[str, Connection] = {}

    def connection_for(url: str) -> Connection:
        if url not in connections:
            connections[url] = Connection(url, options, wire, elicitations)
        return connections[url]

    def emit(line: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    async with AsyncExitStack() as stack:
        line: dict[str, Any] = {"step": "connect", "index": -1, "server": options.server}
        mark = len(wire.events)
        connection = connection_for(options.server)
        try:
            client = await connection.open(stack)
            info = client.server_info
            line.update(
                ok=True,
                result={
                    "serverVersion": dump(info) if info else None,
                    "protocolVersion": client.protocol_version,
                    "instructions": client.instructions,
                    "client_id": connection.storage.client_info.client_id if connection.storage.client_info else None,
                },
            )
        except Exception as error:  # noqa: BLE001 - reported, then the steps still run
            line.update(ok=False, error=describe(error))
        line["auth"] = wire.since(mark, connection.authorizations)
        emit(line)

        for index, step in enumerate(steps):
            name = next((k for k in step if k in STEPS), None)
            server = step.get("server", options.server)
            line = {"step": name or next(iter(step), None), "index": index}
            if "server" in step:
                line["server"] = server
            connection = connection_for(server)
            mark = len(wire.events)
            asked = len(elicitations)
            extra: dict[str, Any] = {}
            try:
                if name is None:
                    raise ValueError(f"unknown step {json.dumps(step)}")
                result = await run_step(name, step.get(name) or {}, step, connection, stack, extra)
                line.update(ok=True, result=result)
            except Exception as error:  # noqa: BLE001 - reported per step
                line.update(ok=False, error=describe(error))
            line.update(extra)
            if options.elicit:
                line["elicitations"] = elicitations[asked:]
            line["auth"] = wire.since(mark, connection.authorizations)
            emit(line)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(main())
