#!/usr/bin/env node
// A real MCP client for Portcullis' tests, built on the TypeScript MCP SDK.
//
//   node scripts/mcp/client.mjs --server URL --steps STEPS [--email EMAIL] [--provider ID]
//        [--sdk 1|2] [--client-metadata-url URL] [--redirect-port N] [--via mcp-remote]
//        [--elicit RESULT]
//
// --sdk 1 (the default) is `@modelcontextprotocol/sdk` 1.32.2 from this directory's node
// modules; --sdk 2 is `@modelcontextprotocol/client` 2.4.0 from scripts/clients' (see
// sdk2.mjs there), with version negotiation on (`mode: 'auto'`: it probes `server/discover` and
// speaks 2026-07-28 when offered), as its users turn it on. Both are driven the same way; the
// differences are the SDKs' own: 2.x checks `iss` in `finishAuth(callbackParams)`, stamps tokens
// with the issuer, unions scopes on step-up and skips the refresh when widening (SEP-2350).
// --client-metadata-url gives the SDK a Client ID Metadata Document URL (CIMD): the SDK then
// uses it as its client_id instead of registering, when the server advertises
// `client_id_metadata_document_supported`.
// --via mcp-remote puts mcp-remote 0.15.1 between this client and the server, as people run it
// (a stdio server their client spawns, doing OAuth itself with the browser it opens): see
// scripts/clients/mcp-remote.mjs. The client then speaks stdio to mcp-remote, `auth` reports the
// authorizations the browser carried out, and `forceRefresh` / `tokens` work on mcp-remote's
// tokens file.
// --elicit RESULT (JSON, e.g. {"action":"accept","content":{"name":"Ada"}}) declares the
// elicitation capability (form mode) and answers every elicitation request with RESULT, as a
// person filling the form would; each step line then lists the `elicitations` the client was
// asked during it (message and the fields asked for).
//
// STEPS is a JSON array, given inline (an argument starting with `[`) or as a file path.
// The SDK does all of OAuth: discovery (RFC 9728, RFC 8414), dynamic registration (RFC 7591),
// PKCE, `resource` (RFC 8707), the code exchange and refreshes. This script makes no OAuth
// request itself; it only plays the person: in `redirectToAuthorization` it acts as the browser
// through Portcullis' pages (provider choice, consent, the development sign-in form) and
// captures the redirect back to the client's redirect URI, which nothing needs to listen on.
//
// Each step prints one JSON line on stdout:
//   {"step":"callTool","index":1,"ok":true,"result":…,"auth":…}
//   {"step":"callTool","index":1,"ok":false,"error":{"name":…,"message":…,"code":…},"auth":…}
// `auth` is what happened on the wire for OAuth during the step (authorizations the SDK started,
// token-endpoint grants, 401s and 403s seen). Before the steps, a `connect` line reports the
// first connection (with its sign-in). Nothing else goes to stdout; notices go to stderr, and
// no token value is ever logged (only the `tokens` step's line carries the access token, for the
// test to read). The exit status is 0 when every step ran, whatever each reported.
//
// Steps (every step may also carry "server": URL to talk to another MCP endpoint, e.g.
// /mcp/{backend}; each endpoint gets its own in-memory client registration and tokens, as a
// real client keeps per server):
//   {"listTools": {}}
//   {"callTool": {"name": "…", "arguments": {…}}, "progress": true, "expectStepUp": true}
//   {"forceRefresh": {}}   corrupt the stored access token: the next request gets a 401 and the
//                          SDK refreshes (it never refreshes on `expires_in` by itself)
//   {"tokens": {}}         scope, expiry, whether a refresh token is held, the access token and
//                          its claims
//   {"ping": {}}
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { Browser } from "./browser.mjs";
import { Wire } from "./wire.mjs";

const { values: options } = parseArgs({
  options: {
    server: { type: "string" },
    steps: { type: "string", default: "[]" },
    email: { type: "string", default: "sdk@example.com" },
    provider: { type: "string", default: "dev" },
    "redirect-port": { type: "string", default: "33419" },
    sdk: { type: "string", default: "1" },
    "client-metadata-url": { type: "string" },
    via: { type: "string" },
    elicit: { type: "string" },
  },
});
if (options.via !== undefined && options.via !== "mcp-remote") {
  console.error(`--via takes mcp-remote, not ${options.via}`);
  process.exit(2);
}
const remote = options.via === "mcp-remote" ? await import("../clients/mcp-remote.mjs") : undefined;
const { StdioClientTransport } = remote ? await import("./sdk1.mjs") : {};
if (!["1", "2"].includes(options.sdk)) {
  console.error(`--sdk is 1 or 2, not ${options.sdk}`);
  process.exit(2);
}
const { Client, StreamableHTTPClientTransport, UnauthorizedError, onElicitation } =
  options.sdk === "2" ? await import("../clients/sdk2.mjs") : await import("./sdk1.mjs");
// What `new Client` gets besides the capabilities: 2.x negotiates the era only when asked to.
const clientOptions = options.sdk === "2" ? { versionNegotiation: { mode: "auto" } } : {};
const elicitAnswer = options.elicit === undefined ? undefined : JSON.parse(options.elicit);
const capabilities = elicitAnswer ? { elicitation: { form: {} } } : {};
// Every elicitation request the client answered, in order.
const elicitations = [];
if (!options.server) {
  console.error("usage: client.mjs --server URL --steps JSON|FILE [--email EMAIL]");
  process.exit(2);
}
const steps = JSON.parse(
  options.steps.trimStart().startsWith("[") ? options.steps : readFileSync(options.steps, "utf8"),
);
// A loopback redirect URI (RFC 8252 §7.3). Nothing listens there: the browser below stops at the
// redirect to it and hands the code over directly.
const REDIRECT_URL = `http://127.0.0.1:${options["redirect-port"]}/callback`;

const note = (...args) => console.error("[sdk-client]", ...args);
const emit = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);

const wire = new Wire(note);

const browser = new Browser(options.email, options.provider);

// ---------------------------------------------------------------------------------------------
// The OAuth client provider: everything in memory, one per MCP endpoint.

class TestOAuthProvider {
  constructor(label) {
    this.label = label;
    this.authorizations = []; // every authorization the SDK started: scope, resource, …
    this.pendingCallback = undefined; // the redirect's query: code, state, iss
    this._clientInformation = undefined;
    this._tokens = undefined;
    this._codeVerifier = undefined;
    this._discovery = undefined;
    this._state = undefined;
  }

  get redirectUrl() {
    return REDIRECT_URL;
  }

  get clientMetadataUrl() {
    return options["client-metadata-url"];
  }

  get clientMetadata() {
    return {
      client_name: "SDK Test Client",
      redirect_uris: [REDIRECT_URL],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }

  state() {
    this._state = randomBytes(16).toString("base64url");
    return this._state;
  }

  clientInformation() {
    return this._clientInformation;
  }

  saveClientInformation(information) {
    this._clientInformation = information;
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    this._tokens = tokens;
  }

  saveCodeVerifier(verifier) {
    this._codeVerifier = verifier;
  }

  codeVerifier() {
    if (!this._codeVerifier) throw new Error("no code verifier saved");
    return this._codeVerifier;
  }

  discoveryState() {
    return this._discovery;
  }

  saveDiscoveryState(state) {
    this._discovery = state;
  }

  invalidateCredentials(scope) {
    note(`${this.label}: the SDK invalidates credentials: ${scope}`);
    if (scope === "all" || scope === "client") this._clientInformation = undefined;
    if (scope === "all" || scope === "tokens") this._tokens = undefined;
    if (scope === "all" || scope === "verifier") this._codeVerifier = undefined;
    if (scope === "all" || scope === "discovery") this._discovery = undefined;
  }

  // The person's part. The SDK then throws UnauthorizedError from the request that needed it;
  // the caller hands `pendingCallback` to `transport.finishAuth` and reconnects.
  async redirectToAuthorization(authorizationUrl) {
    const url = new URL(authorizationUrl);
    const record = {
      mark: wire.mark(),
      scope: url.searchParams.get("scope"),
      resource: url.searchParams.get("resource"),
      prompt: url.searchParams.get("prompt"),
      client_id: url.searchParams.get("client_id"),
    };
    this.authorizations.push(record);
    note(`${this.label}: authorization requested (scope ${JSON.stringify(record.scope)})`);
    const back = await browser.authorize(url, REDIRECT_URL);
    if (back.get("error")) {
      throw new Error(`authorization failed: ${back.get("error")} ${back.get("error_description") ?? ""}`.trim());
    }
    const expected = url.searchParams.get("state");
    if (back.get("state") !== expected || expected !== this._state) {
      throw new Error("the redirect came back with another state");
    }
    record.iss = back.get("iss");
    const code = back.get("code");
    if (!code) throw new Error("the redirect came back without a code");
    this.pendingCallback = back;
  }

  // What `transport.finishAuth` takes: 1.x the code, 2.x the whole callback query (it checks
  // `iss` against the issuer itself).
  takeCallback() {
    const back = this.pendingCallback;
    this.pendingCallback = undefined;
    return options.sdk === "2" ? [back] : [back.get("code")];
  }
}

// ---------------------------------------------------------------------------------------------
// Connections, one per MCP endpoint, made on first use.

const connections = new Map();

async function connectTo(serverUrl) {
  let connection = connections.get(serverUrl);
  if (!connection) {
    connection = { url: serverUrl, provider: new TestOAuthProvider(serverUrl), client: undefined };
    if (remote) {
      connection.remote = new remote.McpRemote({ email: options.email, callbackPort: await remote.freePort() });
    }
    connections.set(serverUrl, connection);
  }
  if (!connection.client) await reconnect(connection);
  return connection;
}

// The SDK's documented flow: connect; on UnauthorizedError the person has been sent to the
// authorization URL; `finishAuth(code)` exchanges the code; then connect again with a new
// transport.
async function reconnect(connection) {
  await connection.client?.close().catch(() => {});
  connection.client = undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const transport = connection.remote
      ? new StdioClientTransport(connection.remote.serverParameters(connection.url))
      : new StreamableHTTPClientTransport(new URL(connection.url), {
          authProvider: connection.provider,
          fetch: wire.fetch,
        });
    const client = new Client({ name: "portcullis-sdk-test", version: "0.0.0" }, { capabilities, ...clientOptions });
    if (elicitAnswer) {
      onElicitation(client, (params) => {
        elicitations.push({ message: params.message, fields: Object.keys(params.requestedSchema?.properties ?? {}) });
        return elicitAnswer;
      });
    }
    try {
      await client.connect(transport);
      connection.client = client;
      connection.transport = transport;
      return;
    } catch (error) {
      await client.close().catch(() => {});
      if (!(error instanceof UnauthorizedError) || !connection.provider.pendingCallback) throw error;
      await transport.finishAuth(...connection.provider.takeCallback());
    }
  }
  throw new Error("still unauthorized after signing in three times");
}

// Runs `operation(client)`; when the SDK stops it for a new authorization (a refresh that failed,
// or a step-up), finishes that authorization, reconnects and runs it once more.
async function withAuth(connection, operation) {
  try {
    return await operation(connection.client);
  } catch (error) {
    if (!(error instanceof UnauthorizedError) || !connection.provider.pendingCallback) throw error;
    await connection.transport.finishAuth(...connection.provider.takeCallback());
    await reconnect(connection);
    return await operation(connection.client);
  }
}

// Via mcp-remote: the authorizations its browser carried out, into the connection's record.
function syncRemote(connection) {
  if (!connection?.remote) return;
  for (const { client_id, scope, resource, prompt, error } of connection.remote.newAuthorizations()) {
    connection.provider.authorizations.push({ mark: wire.mark(), scope, resource, prompt, client_id, error });
  }
  wire.tick();
}

function describeError(error) {
  const described = { name: error?.constructor?.name ?? typeof error, message: String(error?.message ?? error) };
  if (error?.code !== undefined) described.code = error.code;
  if (error?.data !== undefined) described.data = error.data;
  return described;
}

function claimsOf(jwt) {
  try {
    return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString("utf8"));
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Steps.

const runners = {
  async listTools(connection) {
    return withAuth(connection, (client) => client.listTools());
  },

  async ping(connection) {
    return withAuth(connection, (client) => client.ping());
  },

  async callTool(connection, args, step, extra) {
    const progress = [];
    const requestOptions = {};
    if (step.progress) {
      requestOptions.onprogress = (p) => progress.push(p);
      requestOptions.resetTimeoutOnProgress = true;
    }
    if (step.timeoutMs) requestOptions.timeout = step.timeoutMs;
    const before = connection.provider.authorizations.length;
    const mark = wire.mark();
    const stepUp = () => {
      // What the SDK did about a 403 insufficient_scope (see the comment at the end of the file).
      syncRemote(connection);
      const challenges = wire.events.slice(mark).filter((e) => e.status === 403 && e.wwwAuthenticate);
      const challenge = challenges[0]?.wwwAuthenticate;
      const scope = challenge?.match(/scope="([^"]*)"/)?.[1] ?? null;
      const reauthorizations = connection.provider.authorizations.slice(before);
      return {
        challenged: challenges.some((c) => /error="?insufficient_scope/.test(c.wwwAuthenticate)),
        challenge: challenge ?? null,
        challengeScope: scope,
        reauthorized: reauthorizations.length > 0,
        requestedScope: reauthorizations.at(-1)?.scope ?? null,
        refreshTried: wire.events.slice(mark).some((e) => e.grant_type === "refresh_token"),
      };
    };
    try {
      const result = await withAuth(connection, (client) =>
        client.callTool({ name: args.name, arguments: args.arguments ?? {} }, undefined, requestOptions),
      );
      if (step.progress) extra.progress = { count: progress.length, notifications: progress };
      if (step.expectStepUp) extra.stepUp = stepUp();
      return result;
    } catch (error) {
      if (step.progress) extra.progress = { count: progress.length, notifications: progress };
      if (step.expectStepUp) extra.stepUp = stepUp();
      throw error;
    }
  },

  async forceRefresh(connection) {
    if (connection.remote) {
      const tokens = connection.remote.corruptAccessToken(`invalid-${randomBytes(12).toString("hex")}`);
      return { invalidated: true, hasRefreshToken: Boolean(tokens.refresh_token) };
    }
    const tokens = connection.provider.tokens();
    if (!tokens) throw new Error("no tokens to invalidate");
    // The SDK keeps no expiry of its own and refreshes only when a request gets a 401: a
    // garbage access token makes the next request do exactly that.
    connection.provider.saveTokens({ ...tokens, access_token: `invalid-${randomBytes(12).toString("hex")}` });
    return { invalidated: true, hasRefreshToken: Boolean(tokens.refresh_token) };
  },

  async tokens(connection) {
    const tokens = connection.remote ? connection.remote.tokens() : connection.provider.tokens();
    if (!tokens) return { present: false };
    return {
      present: true,
      scope: tokens.scope ?? null,
      token_type: tokens.token_type,
      expires_in: tokens.expires_in ?? null,
      has_refresh_token: Boolean(tokens.refresh_token),
      access_token: tokens.access_token,
      claims: claimsOf(tokens.access_token),
      client_id: connection.provider.clientInformation()?.client_id ?? null,
    };
  },
};

async function main() {
  const defaultServer = options.server;
  {
    const mark = wire.mark();
    const line = { step: "connect", index: -1, server: defaultServer };
    try {
      const connection = await connectTo(defaultServer);
      line.ok = true;
      line.result = {
        serverVersion: connection.client.getServerVersion() ?? null,
        protocolVersion:
          connection.client.getNegotiatedProtocolVersion?.() ?? connection.transport.protocolVersion ?? null,
        instructions: connection.client.getInstructions?.() ?? null,
        client_id: connection.provider.clientInformation()?.client_id ?? null,
      };
    } catch (error) {
      line.ok = false;
      line.error = describeError(error);
    }
    syncRemote(connections.get(defaultServer));
    line.auth = wire.since(mark, connections.get(defaultServer)?.provider.authorizations ?? []);
    emit(line);
  }

  for (const [index, step] of steps.entries()) {
    const name = Object.keys(step).find((k) => k in runners);
    const server = step.server ?? defaultServer;
    const line = { step: name ?? Object.keys(step)[0] ?? null, index };
    if (step.server) line.server = step.server;
    const mark = wire.mark();
    if (remote) wire.tick();
    const asked = elicitations.length;
    const extra = {};
    try {
      if (!name) throw new Error(`unknown step ${JSON.stringify(step)}`);
      const connection = await connectTo(server);
      const result = await runners[name](connection, step[name] ?? {}, step, extra);
      Object.assign(line, { ok: true, result: result ?? null });
    } catch (error) {
      line.ok = false;
      line.error = describeError(error);
    }
    Object.assign(line, extra);
    if (elicitAnswer) line.elicitations = elicitations.slice(asked);
    syncRemote(connections.get(server));
    line.auth = wire.since(mark, connections.get(server)?.provider.authorizations ?? []);
    emit(line);
  }

  for (const connection of connections.values()) await connection.client?.close().catch(() => {});
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error("[sdk-client] crashed:", error);
    process.exit(1);
  },
);

// About step-up (insufficient_scope), as @modelcontextprotocol/sdk 1.32.2 does it
// (client/streamableHttp.js, `send`; client/auth.js, `authInternal`):
// - A POST answered 403 with `WWW-Authenticate: Bearer error="insufficient_scope",
//   scope="…"` makes the transport call `auth()` with exactly that `scope` (not merged with the
//   scopes already granted) and the header's `resource_metadata`, then resend the message.
// - `auth()` first tries a refresh_token grant when a refresh token is stored, and a refresh
//   never widens the scope (typescript-sdk#2255). Portcullis answers that refresh
//   `invalid_grant` when the gateway had just refused the grant's token a scope the person may
//   have: `auth()` then drops the tokens and starts a new authorization with `scope` = the
//   challenge's scope, calling `redirectToAuthorization` and throwing UnauthorizedError, which
//   `withAuth` above answers with finishAuth + reconnect + one retry. (Against a server that
//   refreshes such a token as usual, the resent message gets the same 403 and the SDK gives up
//   with "Server returned 403 after trying upscoping".)
// - The `stepUp` field of a callTool step with "expectStepUp": true reports what happened:
//   the challenge, whether a refresh was tried, whether a new authorization happened and the
//   scope it asked for.
