#!/usr/bin/env node
// The person, as a command: the browser of browser.mjs for clients that open a real browser
// (mcp-remote through `xdg-open`/$BROWSER, the Inspector CLI, the conformance suite) or take a
// redirect handler (the Python SDK).
//
//   node scripts/mcp/browser-cli.mjs [--email EMAIL] [--provider ID] [--deliver] [--record FILE] URL
//
// It walks Portcullis' pages from the authorization URL (provider choice, consent, the
// development sign-in form) up to the redirect to the request's `redirect_uri`. Without
// --deliver it prints that redirect URL (with `code`, `state`, `iss`) as one line on stdout and
// exits 0. With --deliver it then GETs that URL, as a browser would, so the client's own loopback
// callback server receives it, and exits 0 when it answered below 400.
// --record FILE appends one JSON line per run: what the authorization asked for (`client_id`,
// `scope`, `resource`, `redirect_uri`, `prompt`) and how it ended (`delivered` status or
// `error`); a test reads it to see what a client it cannot look inside did.
// Every option may also come from the environment, for clients that start the browser with the
// URL alone ($BROWSER): PORTCULLIS_TEST_EMAIL, PORTCULLIS_TEST_PROVIDER,
// PORTCULLIS_TEST_DELIVER=1, PORTCULLIS_TEST_BROWSER_RECORD.
import { appendFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { Browser } from "./browser.mjs";

const env = process.env;
const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    email: { type: "string", default: env.PORTCULLIS_TEST_EMAIL ?? "sdk@example.com" },
    provider: { type: "string", default: env.PORTCULLIS_TEST_PROVIDER ?? "dev" },
    deliver: { type: "boolean", default: env.PORTCULLIS_TEST_DELIVER === "1" },
    record: { type: "string", default: env.PORTCULLIS_TEST_BROWSER_RECORD },
  },
});
if (positionals.length !== 1) {
  console.error("usage: browser-cli.mjs [--email EMAIL] [--provider ID] [--deliver] [--record FILE] URL");
  process.exit(2);
}

const url = new URL(positionals[0]);
const asked = Object.fromEntries(
  ["client_id", "scope", "resource", "redirect_uri", "prompt"].map((k) => [k, url.searchParams.get(k)]),
);
const record = (line) => {
  if (options.record) appendFileSync(options.record, `${JSON.stringify({ ...asked, ...line })}\n`);
};

// GETs the redirect. A client may open the browser before its callback server listens again
// (mcp-remote 0.15.1 does on a step-up, when the person is rarely that fast): a refused
// connection is retried for a few seconds, as a person reloads the page.
async function deliver(redirect) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await fetch(redirect);
    } catch (error) {
      if (error?.cause?.code !== "ECONNREFUSED" || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

try {
  if (!asked.redirect_uri) throw new Error("the authorization URL has no redirect_uri");
  const back = await new Browser(options.email, options.provider).authorize(url, asked.redirect_uri);
  const redirect = new URL(asked.redirect_uri);
  redirect.search = back.toString();
  if (back.get("error")) record({ error: back.get("error"), error_description: back.get("error_description") });
  if (options.deliver) {
    const response = await deliver(redirect);
    await response.body?.cancel();
    if (!back.get("error")) record({ delivered: response.status });
    if (response.status >= 400) throw new Error(`the client's callback answered ${response.status}`);
  } else {
    if (!back.get("error")) record({ redirected: true });
    process.stdout.write(`${redirect}\n`);
  }
} catch (error) {
  record({ error: String(error?.message ?? error) });
  console.error("[browser]", error);
  process.exit(1);
}
