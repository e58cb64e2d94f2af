// The TypeScript MCP SDK 1.x client classes client.mjs drives (`--sdk 1`), from this directory's
// node modules.
export { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
export { Client } from "@modelcontextprotocol/sdk/client/index.js";
export { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
