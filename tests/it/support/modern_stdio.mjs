// A tiny MCP server over stdio that speaks only the 2026-07-28 revision, no dependencies: it
// answers `server/discover`, refuses `initialize` naming the versions it speaks (as the revision
// asks of a modern-only server), requires the `_meta` fields on every request and marks every
// result with `resultType`. The peer of the gateway's era tests for stdio backends.
import { createInterface } from "node:readline";

const VERSION = "2026-07-28";
const send = (message) => process.stdout.write(JSON.stringify(message) + "\n");
const result = (id, value) => send({ jsonrpc: "2.0", id, result: { resultType: "complete", ...value } });
const error = (id, code, message, data) => send({ jsonrpc: "2.0", id, error: { code, message, ...(data ? { data } : {}) } });
const text = (value) => ({ content: [{ type: "text", text: value }] });
let discovers = 0;

function handle({ id, method, params }) {
  if (id === undefined) return;
  if (method === "initialize") {
    return error(id, -32022, `Unsupported protocol version: this server speaks ${VERSION} only`, {
      supported: [VERSION],
      requested: params?.protocolVersion ?? "unknown",
    });
  }
  const meta = params?._meta ?? {};
  const claimed = meta["io.modelcontextprotocol/protocolVersion"];
  if (claimed !== VERSION) {
    return error(id, -32022, "Unsupported protocol version", { supported: [VERSION], requested: claimed ?? "unknown" });
  }
  if (typeof meta["io.modelcontextprotocol/clientCapabilities"] !== "object") {
    return error(id, -32602, "_meta clientCapabilities is required");
  }
  switch (method) {
    case "server/discover":
      discovers++;
      return result(id, {
        supportedVersions: [VERSION],
        capabilities: { tools: {}, prompts: {} },
        _meta: { "io.modelcontextprotocol/serverInfo": { name: "modern-stdio", version: "2.0.0" } },
        instructions: "Modern stdio fixture: echo repeats.",
        ttlMs: 60000,
        cacheScope: "public",
      });
    case "tools/list":
      return result(id, {
        tools: [{ name: "echo", inputSchema: { type: "object" } }, { name: "meta", inputSchema: { type: "object" } }],
        ttlMs: 1000,
        cacheScope: "public",
      });
    case "tools/call":
      if (params.name === "echo") return result(id, text(`modern stdio echo: ${params.arguments?.text ?? ""}`));
      if (params.name === "meta") return result(id, text(JSON.stringify({ meta, discovers })));
      return error(id, -32602, `unknown tool ${params.name}`);
    case "prompts/list":
      return result(id, { prompts: [{ name: "greet" }], ttlMs: 0, cacheScope: "public" });
    default:
      return error(id, -32601, `method ${method} not found`);
  }
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (line.trim() === "") return;
  try {
    handle(JSON.parse(line));
  } catch (e) {
    process.stderr.write(`modern fixture: error: ${e}\n`);
  }
});
lines.on("close", () => process.exit(0));
