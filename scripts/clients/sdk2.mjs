// The TypeScript MCP SDK 2.x client classes scripts/mcp/client.mjs drives (`--sdk 2`), from this
// directory's node modules, and how a client of this SDK answers a server's elicitation request
// (over 2025-era server-to-client requests or 2026-07-28 MRTR alike: the SDK routes both here).
export { Client, StreamableHTTPClientTransport, UnauthorizedError } from "@modelcontextprotocol/client";

export const onElicitation = (client, handler) =>
  client.setRequestHandler("elicitation/create", (request) => handler(request.params));
