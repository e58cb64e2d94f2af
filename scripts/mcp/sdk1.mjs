// The TypeScript MCP SDK 1.x client classes client.mjs drives (`--sdk 1`), from this directory's
// node modules, and how a client of this SDK answers a server's elicitation request.
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";

export { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
export { Client } from "@modelcontextprotocol/sdk/client/index.js";
export { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
export { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

export const onElicitation = (client, handler) =>
  client.setRequestHandler(ElicitRequestSchema, (request) => handler(request.params));
