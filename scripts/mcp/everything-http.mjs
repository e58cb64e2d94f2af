#!/usr/bin/env node
// @modelcontextprotocol/server-everything over Streamable HTTP, on 127.0.0.1 only.
//
//   node scripts/mcp/everything-http.mjs [--port N] [--exit-with-parent]
//
// The package's own launcher (`node dist/index.js streamableHttp`, port from $PORT, default
// 3001) listens on every interface (`app.listen(PORT)` with no host). This wrapper runs that same
// launcher but makes its listen bind 127.0.0.1, so a test's backend is never reachable from
// elsewhere. --port 0 (the default) picks a free port; once listening it prints exactly one line
// on stdout, `READY http://127.0.0.1:PORT/mcp`; the server's own chatter goes to stderr.
// The server is stateful: `initialize` answers with an `mcp-session-id` that later requests carry.
// --exit-with-parent: stop when the process that started this one dies, even by SIGKILL.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

import { stopWithParent } from "./lifetime.mjs";

const { values: args } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    "exit-with-parent": { type: "boolean", default: false },
  },
});

// stdout carries exactly one line, READY; a reader that closes its end must not crash the server.
console.log = console.error;
console.info = console.error;
process.stdout.on("error", () => {});

// Bind the package's one listening socket to loopback, and report where it listens.
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...listenArgs) {
  net.Server.prototype.listen = listen;
  if (["number", "string"].includes(typeof listenArgs[0]) && typeof listenArgs[1] !== "string") {
    listenArgs.splice(1, 0, "127.0.0.1");
  }
  this.once("listening", () => {
    process.stdout.write(`READY http://127.0.0.1:${this.address().port}/mcp\n`);
  });
  return listen.apply(this, listenArgs);
};

stopWithParent(args["exit-with-parent"]);

const require = createRequire(import.meta.url);
const packageJson = require.resolve("@modelcontextprotocol/server-everything/package.json");
const { bin } = JSON.parse(readFileSync(packageJson, "utf8"));
const launcher = join(dirname(packageJson), typeof bin === "string" ? bin : Object.values(bin)[0]);
process.env.PORT = args.port;
process.argv.splice(2, process.argv.length - 2, "streamableHttp");
await import(pathToFileURL(launcher).href);
