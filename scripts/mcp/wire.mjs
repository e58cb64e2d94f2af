// What happened on the wire for OAuth: every request the SDK makes in scripts/mcp/client.mjs
// goes through `Wire.fetch`, which records its method, path, status, grant type, registration
// and `WWW-Authenticate` challenge for the steps' `auth` reports.

export class Wire {
  // `note` logs one line per request (to stderr: stdout is the test's).
  constructor(note) {
    this.note = note;
    this.events = [];
  }

  mark() {
    return this.events.length;
  }

  // A marker with no status: moves `mark` on when nothing went over the wire (via mcp-remote).
  tick() {
    this.events.push({ tick: true });
  }

  // The OAuth activity since `mark`.
  since(mark, authorizations) {
    const events = this.events.slice(mark);
    const tokenRequests = events
      .filter((e) => e.grant_type)
      .map(({ grant_type, status }) => ({ grant_type, status }));
    return {
      authorizations: authorizations.filter((a) => a.mark >= mark).map(({ mark: _, ...a }) => a),
      registrations: events.filter((e) => e.registration).map(({ status }) => ({ status })),
      tokenRequests,
      refreshed: tokenRequests.some((t) => t.grant_type === "refresh_token" && t.status === 200),
      unauthorized: events.filter((e) => e.status === 401).length,
      forbidden: events
        .filter((e) => e.status === 403)
        .map(({ wwwAuthenticate }) => ({ wwwAuthenticate })),
    };
  }

  fetch = async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = (init.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
    const event = { method, path: url.pathname };
    const body = init.body;
    if (method === "POST" && body !== undefined) {
      const form =
        body instanceof URLSearchParams
          ? body
          : typeof body === "string" && !body.trimStart().startsWith("{") && !body.trimStart().startsWith("[")
            ? new URLSearchParams(body)
            : undefined;
      if (form?.has("grant_type")) event.grant_type = form.get("grant_type");
      if (typeof body === "string" && body.includes('"redirect_uris"')) event.registration = true;
    }
    const response = await fetch(input, init);
    event.status = response.status;
    const challenge = response.headers.get("www-authenticate");
    if (challenge) event.wwwAuthenticate = challenge;
    this.events.push(event);
    this.note(`${method} ${url.pathname} -> ${response.status}${event.grant_type ? ` (${event.grant_type})` : ""}`);
    return response;
  };
}
