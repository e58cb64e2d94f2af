#!/usr/bin/env node
// The MCP Inspector's CLI, `mcpdo` (@modelcontextprotocol/inspector 2.12.0), as a person or an
// agent runs it, for Portcullis' tests.
//
//   node scripts/clients/inspector.mjs --server URL --steps STEPS [--email EMAIL] [--era legacy|auto]
//
// mcpdo keeps its connections in a daemon; with non-TTY stdin `mcpdo connect URL --transport
// http` answers `{"pendingAuth": true, "authUrl": …}` at once while the daemon waits for the
// OAuth redirect on http://127.0.0.1:6276/oauth/callback, a fixed port: only one run may be
// under way on a machine at a time (the Rust side holds a lock; see tests/it/clients). This
// script runs everything in a private daemon (`mcpdo private`) and a throwaway home, both
// removed at the end; the test browser (scripts/mcp/browser-cli.mjs --deliver) plays the person
// and delivers the redirect to the daemon; `connections/show` then completes the sign-in.
//
// It prints the JSON lines of scripts/mcp/client.mjs: a `connect` line (index -1), then one per
// step, each with `ok`, `result` or `error`, and `auth` (the authorizations the browser carried
// out during it). Steps, each may carry "server": URL (its own connection and sign-in):
//   {"listTools": {}}   {"callTool": {"name": …, "arguments": {…}}}
//   {"sleep": {"seconds": 2.5}}
//   {"show": {}}        the connection as mcpdo shows it: protocol version and era, the scope
//                       it holds, its client_id
// Exit status 0 when every step ran, whatever each reported.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values: options } = parseArgs({
  options: {
    server: { type: "string" },
    steps: { type: "string", default: "[]" },
    email: { type: "string", default: "inspector@example.com" },
    era: { type: "string", default: "legacy" },
  },
});
if (!options.server) {
  console.error("usage: inspector.mjs --server URL --steps JSON [--email EMAIL] [--era legacy|auto]");
  process.exit(2);
}
const steps = JSON.parse(options.steps);

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const inspector = dirname(require.resolve("@modelcontextprotocol/inspector/package.json"));
const manifest = JSON.parse(readFileSync(join(inspector, "package.json"), "utf8"));
const MCPDO = join(inspector, manifest.bin.mcpdo);
const BROWSER = join(here, "../mcp/browser-cli.mjs");

const note = (...parts) => console.error("[inspector]", ...parts);
const emit = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);

const home = mkdtempSync(join(tmpdir(), "portcullis-inspector."));
const record = join(home, "browser.jsonl");
const env = {
  ...process.env,
  HOME: home,
  XDG_CONFIG_HOME: join(home, ".config"),
  MCP_CATALOG_PATH: join(home, "mcp.json"),
  // No OS keychain here: its own file store, in the throwaway home (the fallback it picks anyway,
  // chosen explicitly so it does not warn).
  MCP_INSPECTOR_SECRET_STORE: "file",
};

function run(program, args, { json = true } = {}) {
  return new Promise((resolve, reject) => {
    execFile(program, args, { env, timeout: 30_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (stderr.trim()) note(stderr.trim());
      // Its notices (`[mcp-inspector] …`) aside, a failed command prints its JSON error on
      // stdout or stderr.
      const said = (stdout.trim() ? stdout : stderr.replace(/^\[mcp-inspector\].*$/gm, "")).trim();
      if (error && !said.startsWith("{")) return reject(new Error(`${args.slice(1, 5).join(" ")}: ${said || error.message}`));
      if (!json) return resolve(stdout);
      let parsed;
      try {
        parsed = JSON.parse(said);
      } catch {
        return reject(new Error(`${args.slice(0, 4).join(" ")} printed no JSON: ${stdout.slice(0, 300)}`));
      }
      if (parsed?.error) {
        const failure = new Error(parsed.error.message ?? JSON.stringify(parsed.error));
        failure.code = parsed.error.code;
        return reject(failure);
      }
      resolve(parsed);
    }).stdin?.end();
  });
}

const mcpdo = (...args) => run(process.execPath, [MCPDO, "--format", "json", ...args]);

let seen = 0;
function authorizations() {
  let lines = [];
  try {
    lines = readFileSync(record, "utf8").split("\n").filter(Boolean);
  } catch {
    return [];
  }
  const fresh = lines.slice(seen).map((line) => JSON.parse(line));
  seen = lines.length;
  return fresh.map(({ client_id, scope, resource, prompt, error }) => ({ client_id, scope, resource, prompt, error }));
}

// mcpdo names an ad-hoc connection by its URL.
const connected = new Set();
async function connect(url) {
  if (connected.has(url)) return;
  const answer = await mcpdo("connect", url, "--transport", "http", "--era", options.era);
  if (answer.pendingAuth) {
    note(`signing in for ${url}`);
    await run(process.execPath, [BROWSER, "--deliver", "--email", options.email, "--record", record, answer.authUrl], {
      json: false,
    });
  }
  const shown = await mcpdo("connections/show", "--connection", url);
  if (shown.pendingAuth) {
    // Signed in, but the connection is not up: connecting again with the stored tokens says
    // why (e.g. the server refused the connection after the sign-in).
    const again = await mcpdo("connect", url, "--transport", "http", "--era", options.era);
    if (again.pendingAuth) throw new Error(`still waiting for a sign-in: ${JSON.stringify(again)}`);
  }
  connected.add(url);
}

const show = async (url) => {
  const shown = await mcpdo("connections/show", "--connection", url);
  return {
    serverInfo: shown.serverInfo ?? null,
    protocolVersion: shown.protocolVersion ?? null,
    protocolEra: shown.protocolEra ?? null,
    instructions: shown.instructions ?? null,
    scope: shown.auth?.scope ?? null,
    client_id: shown.auth?.clientId ?? null,
    transport: shown.transport ?? null,
  };
};

const runners = {
  // Lets the access token expire (the test gives it seconds): the next call gets a 401 and the
  // daemon refreshes.
  sleep: async (_url, args) => {
    await new Promise((resolve) => setTimeout(resolve, (args.seconds ?? 1) * 1000));
    return { slept: args.seconds ?? 1 };
  },
  listTools: (url) => mcpdo("tools/list", "--connection", url),
  callTool: (url, args) =>
    mcpdo("tools/call", "--connection", url, args.name, JSON.stringify(args.arguments ?? {})),
  show,
};

function describe(error) {
  const described = { name: error?.constructor?.name ?? typeof error, message: String(error?.message ?? error) };
  if (error?.code !== undefined) described.code = error.code;
  return described;
}

async function main() {
  // A private daemon, named in the environment of every later mcpdo command.
  const exports = await run(process.execPath, [MCPDO, "private"], { json: false });
  for (const [, name, value] of exports.matchAll(/^export (\w+)='([^']*)'$/gm)) env[name] = value;

  {
    const line = { step: "connect", index: -1, server: options.server };
    try {
      await connect(options.server);
      Object.assign(line, { ok: true, result: await show(options.server) });
    } catch (error) {
      Object.assign(line, { ok: false, error: describe(error) });
    }
    line.auth = { authorizations: authorizations() };
    emit(line);
  }
  for (const [index, step] of steps.entries()) {
    const name = Object.keys(step).find((k) => k in runners);
    const url = step.server ?? options.server;
    const line = { step: name ?? Object.keys(step)[0] ?? null, index };
    if (step.server) line.server = step.server;
    try {
      if (!name) throw new Error(`unknown step ${JSON.stringify(step)}`);
      await connect(url);
      Object.assign(line, { ok: true, result: await runners[name](url, step[name] ?? {}) });
    } catch (error) {
      Object.assign(line, { ok: false, error: describe(error) });
    }
    line.auth = { authorizations: authorizations() };
    emit(line);
  }
}

try {
  await main();
} finally {
  if (env.MCP_INSPECTOR_DAEMON_DIR) {
    await run(process.execPath, [MCPDO, "daemon", "stop"], { json: false }).catch((error) => note(error.message));
    rmSync(env.MCP_INSPECTOR_DAEMON_DIR, { recursive: true, force: true });
  }
  rmSync(home, { recursive: true, force: true });
}
