#!/usr/bin/env node
// The TypeScript MCP SDK's own client, unmodified, signing in with a Client ID Metadata Document
// instead of registering: its OAuthClientProvider names `clientMetadataUrl`, and the SDK uses it
// as its client_id when the authorization server advertises client_id_metadata_document_supported.
//
//   node sdk_cimd.mjs --mcp-dir DIR --server URL --metadata-url URL --redirect-url URL
//
// DIR is scripts/mcp (its node modules and its browser, which plays the person through
// Portcullis' pages with the development provider). Prints one JSON line: the client_id the SDK
// used, the registrations it made, the tools it listed, and the grant types it used at /token
// (after a forced refresh).
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";

const { values: options } = parseArgs({
  options: {
    "mcp-dir": { type: "string" },
    server: { type: "string" },
    "metadata-url": { type: "string" },
    "redirect-url": { type: "string" },
  },
});
const dir = options["mcp-dir"];
const load = (path) => import(pathToFileURL(`${dir}/${path}`).href);
const sdk = "node_modules/@modelcontextprotocol/sdk/dist/esm/client";
const { Client } = await load(`${sdk}/index.js`);
const { StreamableHTTPClientTransport } = await load(`${sdk}/streamableHttp.js`);
const { UnauthorizedError } = await load(`${sdk}/auth.js`);
const { Browser } = await load("browser.mjs");

const seen = { registrations: 0, grants: [], clientIds: new Set() };
const wireFetch = async (input, init = {}) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  if (url.pathname.endsWith("/register")) seen.registrations++;
  if (url.pathname.endsWith("/token") && typeof init.body !== "undefined") {
    const form = new URLSearchParams(String(init.body));
    seen.grants.push(form.get("grant_type"));
    if (form.get("client_id")) seen.clientIds.add(form.get("client_id"));
  }
  if (url.pathname.endsWith("/authorize")) seen.clientIds.add(url.searchParams.get("client_id"));
  return fetch(input, init);
};

const browser = new Browser("cimd@example.com", "dev");
const redirectUrl = options["redirect-url"];

class Provider {
  pendingCode = undefined;
  _state = undefined;
  _client = undefined;
  _tokens = undefined;
  _verifier = undefined;
  _discovery = undefined;
  get redirectUrl() { return redirectUrl; }
  get clientMetadataUrl() { return options["metadata-url"]; }
  get clientMetadata() {
    return {
      client_name: "SDK CIMD Client",
      redirect_uris: [redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() { this._state = randomBytes(16).toString("base64url"); return this._state; }
  clientInformation() { return this._client; }
  saveClientInformation(information) { this._client = information; }
  tokens() { return this._tokens; }
  saveTokens(tokens) { this._tokens = tokens; }
  saveCodeVerifier(verifier) { this._verifier = verifier; }
  codeVerifier() { return this._verifier; }
  discoveryState() { return this._discovery; }
  saveDiscoveryState(state) { this._discovery = state; }
  invalidateCredentials(scope) {
    if (scope === "all" || scope === "client") this._client = undefined;
    if (scope === "all" || scope === "tokens") this._tokens = undefined;
  }
  async redirectToAuthorization(authorizationUrl) {
    seen.clientIds.add(new URL(authorizationUrl).searchParams.get("client_id"));
    const back = await browser.authorize(new URL(authorizationUrl), redirectUrl);
    if (back.get("state") !== this._state) throw new Error("the redirect came back with another state");
    if (!back.get("code")) throw new Error(`no code: ${back.get("error")} ${back.get("error_description")}`);
    this.pendingCode = back.get("code");
  }
}

const provider = new Provider();
async function connect() {
  for (let attempt = 0; attempt < 3; attempt++) {
    const transport = new StreamableHTTPClientTransport(new URL(options.server), {
      authProvider: provider,
      fetch: wireFetch,
    });
    const client = new Client({ name: "portcullis-cimd-test", version: "0.0.0" }, { capabilities: {} });
    try {
      await client.connect(transport);
      return client;
    } catch (error) {
      await client.close().catch(() => {});
      if (!(error instanceof UnauthorizedError) || !provider.pendingCode) throw error;
      const code = provider.pendingCode;
      provider.pendingCode = undefined;
      await transport.finishAuth(code);
    }
  }
  throw new Error("still unauthorized after three sign-ins");
}

let client = await connect();
const tools = await client.listTools();
// A 401 makes the SDK refresh with the document client_id and its refresh token.
await client.close();
provider._tokens = { ...provider._tokens, access_token: "expired" };
client = await connect();
const again = await client.listTools();
await client.close();
process.stdout.write(
  `${JSON.stringify({
    clientIds: [...seen.clientIds],
    registrations: seen.registrations,
    grants: seen.grants,
    tools: tools.tools.length,
    toolsAfterRefresh: again.tools.length,
    clientInformation: provider._client,
  })}\n`,
);
