// mcp-remote 0.15.1 as its users run it, for scripts/mcp/client.mjs `--via mcp-remote`: a stdio
// MCP server (`mcp-remote URL PORT`) that a stdio client spawns, which does OAuth by itself (the
// TypeScript SDK 1.x inside), opens the browser with `xdg-open` (which honours $BROWSER), and
// waits for the redirect on its loopback callback port. Here $BROWSER is the test browser
// (scripts/mcp/browser-cli.mjs, delivering the redirect to that port), and its state lives in a
// private MCP_REMOTE_CONFIG_DIR, removed at exit.
//
// The driver cannot see mcp-remote's HTTP traffic, so what it reports comes from what mcp-remote
// leaves behind: the browser's record of each authorization (scope, resource, client_id) and
// the tokens file it keeps (`<hash>_tokens.json`), read and, for `forceRefresh`, given a bad
// access token, as when a server stops accepting it.
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const PROXY = join(dirname(require.resolve("mcp-remote/package.json")), "dist/proxy.js");
const BROWSER = join(here, "../mcp/browser-cli.mjs");

// A free loopback port for mcp-remote's callback server (tests run in parallel: no fixed port).
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// One mcp-remote per MCP endpoint, each with its own state directory and callback port, as a
// person who adds two servers to their client has.
export class McpRemote {
  constructor({ email, callbackPort }) {
    this.dir = mkdtempSync(join(tmpdir(), "portcullis-mcp-remote."));
    this.record = join(this.dir, "browser.jsonl");
    this.email = email;
    this.callbackPort = callbackPort;
    this.seen = 0;
    chmodSync(BROWSER, 0o755); // $BROWSER is run as a program
    process.on("exit", () => rmSync(this.dir, { recursive: true, force: true }));
  }

  // What a stdio client's StdioClientTransport takes to start mcp-remote for `url`.
  serverParameters(url) {
    return {
      command: process.execPath,
      args: [PROXY, url, String(this.callbackPort), "--host", "127.0.0.1"],
      env: {
        ...process.env,
        BROWSER,
        PORTCULLIS_TEST_EMAIL: this.email,
        PORTCULLIS_TEST_DELIVER: "1",
        PORTCULLIS_TEST_BROWSER_RECORD: this.record,
        MCP_REMOTE_CONFIG_DIR: this.dir,
      },
      stderr: "inherit",
    };
  }

  // The authorizations the browser carried out since the last call.
  newAuthorizations() {
    let lines = [];
    try {
      lines = readFileSync(this.record, "utf8").split("\n").filter(Boolean);
    } catch {
      return [];
    }
    const fresh = lines.slice(this.seen).map((line) => JSON.parse(line));
    this.seen = lines.length;
    return fresh;
  }

  tokensFile() {
    const store = join(this.dir, "mcp-remote-v1");
    let names = [];
    try {
      names = readdirSync(store).filter((name) => name.endsWith("_tokens.json"));
    } catch {
      return undefined;
    }
    if (names.length > 1) throw new Error(`more than one server's tokens in ${store}: ${names}`);
    return names.length ? join(store, names[0]) : undefined;
  }

  tokens() {
    const file = this.tokensFile();
    return file ? JSON.parse(readFileSync(file, "utf8")) : undefined;
  }

  corruptAccessToken(garbage) {
    const file = this.tokensFile();
    if (!file) throw new Error("mcp-remote holds no tokens");
    const tokens = JSON.parse(readFileSync(file, "utf8"));
    writeFileSync(file, JSON.stringify({ ...tokens, access_token: garbage }));
    return tokens;
  }
}
