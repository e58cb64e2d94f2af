// The TypeScript MCP SDK 2.x client classes scripts/mcp/client.mjs drives (`--sdk 2`), from this
// directory's node modules.
export { Client, StreamableHTTPClientTransport, UnauthorizedError } from "@modelcontextprotocol/client";
