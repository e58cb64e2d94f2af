#!/usr/bin/env node
// A 2026-07-28-era MCP server for Portcullis' tests, built on the TypeScript SDK 2.x server
// (`@modelcontextprotocol/server`), strictly modern: it speaks only the stateless 2026-07-28
// protocol (`server/discover`, the per-request `_meta` envelope, `resultType`, no `initialize`,
// no `Mcp-Session-Id`) and answers 2025-era traffic with the SDK's unsupported-protocol-version
// error, so whatever reaches it from a 2025-era client went through Portcullis' bridge.
//
//   node scripts/clients/modern-server.mjs [--port N] [--exit-with-parent]   Streamable HTTP
//   node scripts/clients/modern-server.mjs --stdio                           stdio
//
// HTTP: listens on 127.0.0.1 only (--port 0, the default, picks a free port) and prints exactly
// one line on stdout once it listens, `READY http://127.0.0.1:PORT/mcp`. stdio: newline-delimited
// JSON-RPC on stdin/stdout. Notices go to stderr. --legacy serves 2025-era requests too (the
// SDK's stateless fallback), for a test that wants a backend speaking both eras.
//
// Its tools mirror server-everything's names and answers, so one test can run against either
// backend and assert the same things:
//   echo {message}                     text `Echo: <message>`
//   get-sum {a, b}                     text `The sum of <a> and <b> is <a+b>.`, structured {sum}
//   trigger-long-running-operation {duration, steps}
//                                      sleeps, one notifications/progress per step when the
//                                      request carries a progressToken, then text
//                                      `Long running operation completed. Duration: <d> seconds, Steps: <s>.`
//   whoami-env {}                      the PORTCULLIS_USER / PORTCULLIS_EMAIL a per-user stdio
//                                      process was started with (text, and structured)
//   confirm {action}                   asks the person through MRTR (`input_required` with a
//                                      form elicitation `confirm`), then answers `Confirmed: <action>`
//                                      or `Declined: <action>`
import { createServer } from "node:http";
import { parseArgs } from "node:util";

import { toNodeHandler } from "@modelcontextprotocol/node";
import { acceptedContent, createMcpHandler, inputRequired, McpServer } from "@modelcontextprotocol/server";
import { serveStdio } from "@modelcontextprotocol/server/stdio";
import * as z from "zod/v4";

import { stopWithParent } from "../mcp/lifetime.mjs";

const { values: args } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    stdio: { type: "boolean", default: false },
    legacy: { type: "boolean", default: false },
    "exit-with-parent": { type: "boolean", default: false },
  },
});

const NAME = "portcullis-test-modern";
const INSTRUCTIONS = "A 2026-07-28-era test server: echo, get-sum, trigger-long-running-operation, confirm.";

const note = (...parts) => console.error("[modern-server]", ...parts);
// stdout is the protocol (stdio) or carries exactly one line, READY (HTTP).
console.log = console.error;
console.info = console.error;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const text = (value) => ({ type: "text", text: value });

function build() {
  const server = new McpServer(
    { name: NAME, version: "2.4.0-test" },
    { instructions: INSTRUCTIONS, capabilities: { logging: {} } },
  );

  server.registerTool(
    "echo",
    { description: "Echoes back the input", inputSchema: z.object({ message: z.string() }) },
    async ({ message }) => ({ content: [text(`Echo: ${message}`)] }),
  );

  server.registerTool(
    "get-sum",
    {
      description: "Returns the sum of two numbers",
      inputSchema: z.object({ a: z.number(), b: z.number() }),
      outputSchema: z.object({ sum: z.number() }),
    },
    async ({ a, b }) => ({
      content: [text(`The sum of ${a} and ${b} is ${a + b}.`)],
      structuredContent: { sum: a + b },
    }),
  );

  server.registerTool(
    "trigger-long-running-operation",
    {
      description: "Sleeps, reporting progress once per step",
      inputSchema: z.object({ duration: z.number().default(10), steps: z.number().int().default(5) }),
    },
    async ({ duration, steps }, ctx) => {
      const token = ctx.mcpReq._meta?.progressToken;
      for (let step = 1; step <= steps; step++) {
        await sleep((duration * 1000) / steps);
        if (token !== undefined) {
          await ctx.mcpReq.notify({
            method: "notifications/progress",
            params: { progress: step, total: steps, progressToken: token },
          });
        }
      }
      return { content: [text(`Long running operation completed. Duration: ${duration} seconds, Steps: ${steps}.`)] };
    },
  );

  server.registerTool(
    "whoami-env",
    { description: "The identity a per-user stdio process was started with", inputSchema: z.object({}) },
    async () => {
      const me = { user: process.env.PORTCULLIS_USER ?? null, email: process.env.PORTCULLIS_EMAIL ?? null };
      return { content: [text(JSON.stringify(me))], structuredContent: me };
    },
  );

  const confirmation = z.object({ confirm: z.boolean() });
  server.registerTool(
    "confirm",
    { description: "Asks the person to confirm an action (MRTR elicitation)", inputSchema: z.object({ action: z.string() }) },
    async ({ action }, ctx) => {
      const answer = acceptedContent(ctx.mcpReq.inputResponses, "confirm", confirmation);
      if (answer === undefined) {
        return inputRequired({
          inputRequests: {
            confirm: inputRequired.elicit({ message: `Confirm ${action}?`, requestedSchema: confirmation }),
          },
        });
      }
      return { content: [text(`${answer.confirm ? "Confirmed" : "Declined"}: ${action}`)] };
    },
  );

  return server;
}

stopWithParent(args["exit-with-parent"]);

const legacy = args.legacy;
if (args.stdio) {
  serveStdio(build, { legacy: legacy ? "serve" : "reject", onerror: (error) => note(error.message) });
} else {
  const handler = toNodeHandler(
    createMcpHandler(build, { legacy: legacy ? "stateless" : "reject", onerror: (error) => note(error.message) }),
  );
  const http = createServer((req, res) => {
    if (new URL(req.url, "http://127.0.0.1").pathname !== "/mcp") {
      res.writeHead(404).end();
      return;
    }
    handler(req, res).catch((error) => {
      note("request failed:", error);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  http.listen(Number(args.port), "127.0.0.1", () => {
    process.stdout.write(`READY http://127.0.0.1:${http.address().port}/mcp\n`);
  });
}
