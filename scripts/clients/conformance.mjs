#!/usr/bin/env node
// The MCP conformance suite's authorization-server scenarios
// (@modelcontextprotocol/conformance 0.2.0-alpha.12) against Portcullis, for its tests.
//
//   node scripts/clients/conformance.mjs --url ISSUER --client-id ID --port N
//        [--resource URI] [--email EMAIL] [--scenario NAME]
//
// `conformance authorization` needs Node 22 or later: it runs on the Node binary the npm package
// `node` installed in this directory's node modules, whatever node runs this script. `--url` must
// be the issuer exactly as the metadata says it; the client (registered beforehand, public, with
// the redirect URI http://127.0.0.1:PORT/callback) is the suite's. When the suite prints the
// authorization URL for a person to open, the test browser (scripts/mcp/browser-cli.mjs
// --deliver) signs in and delivers the redirect to the suite's callback server.
//
// Prints one JSON line per check the suite reports: {"scenario", "id", "status", "errorMessage"},
// then {"exit": status}. Exit status 0 when the suite ran, whatever it found.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values: options } = parseArgs({
  options: {
    url: { type: "string" },
    "client-id": { type: "string" },
    port: { type: "string" },
    resource: { type: "string" },
    email: { type: "string", default: "conformance@example.com" },
    scenario: { type: "string" },
  },
});
if (!options.url || !options["client-id"] || !options.port) {
  console.error("usage: conformance.mjs --url ISSUER --client-id ID --port N [--resource URI] [--email EMAIL]");
  process.exit(2);
}

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const NODE22 = join(dirname(require.resolve("node/package.json")), "bin/node");
const suite = dirname(require.resolve("@modelcontextprotocol/conformance/package.json"));
const CONFORMANCE = join(suite, JSON.parse(readFileSync(join(suite, "package.json"), "utf8")).bin.conformance);
const BROWSER = join(here, "../mcp/browser-cli.mjs");
const note = (...parts) => console.error("[conformance]", ...parts);

const output = mkdtempSync(join(tmpdir(), "portcullis-conformance."));
process.on("exit", () => rmSync(output, { recursive: true, force: true }));

// `--option=value`: a client id may begin with `-`.
const args = [CONFORMANCE, "authorization", `--url=${options.url}`, `--client-id=${options["client-id"]}`];
args.push("--port", options.port, "--output-dir", output);
if (options.resource) args.push("--resource", options.resource);
if (options.scenario) args.push("--scenario", options.scenario);
const child = spawn(NODE22, args, { stdio: ["ignore", "pipe", "inherit"] });

const browsing = [];
for await (const line of createInterface({ input: child.stdout })) {
  note(line);
  if (/^https?:\/\/\S+\?\S*response_type=code/.test(line.trim())) {
    browsing.push(
      new Promise((resolve) => {
        const browser = spawn(process.execPath, [BROWSER, "--deliver", "--email", options.email, line.trim()], {
          stdio: ["ignore", "ignore", "inherit"],
        });
        browser.on("exit", (code) => resolve(code));
      }),
    );
  }
}
const status = await new Promise((resolve) => {
  if (child.exitCode !== null) resolve(child.exitCode);
  else child.on("exit", (code) => resolve(code));
});
await Promise.all(browsing);

// One folder per scenario: `authorization-server-<scenario>-<timestamp>/checks.json`.
for (const folder of readdirSync(output).sort()) {
  const scenario = folder.replace(/^authorization-server-/, "").replace(/-\d{4}-\d\d-\d\dT.*$/, "");
  const checks = JSON.parse(readFileSync(join(output, folder, "checks.json"), "utf8"));
  for (const { id, status: result, errorMessage } of checks) {
    process.stdout.write(`${JSON.stringify({ scenario, id, status: result, errorMessage: errorMessage ?? null })}\n`);
  }
}
process.stdout.write(`${JSON.stringify({ exit: status })}\n`);
