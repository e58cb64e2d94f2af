// The person in client.mjs: a browser through Portcullis' pages (provider choice, consent, the
// development sign-in form), keeping cookies per origin and following no redirect by itself.

const note = (...args) => console.error("[sdk-client]", ...args);

// ---------------------------------------------------------------------------------------------
// The browser: cookies per origin, no automatic redirects, forms filled like a person would.

export class Browser {
  constructor(email, provider) {
    this.email = email;
    this.provider = provider;
    this.jar = new Map(); // origin -> Map(name -> value)
  }

  cookieHeader(url) {
    const cookies = this.jar.get(url.origin);
    if (!cookies || cookies.size === 0) return undefined;
    return [...cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  keepCookies(url, response) {
    for (const header of response.headers.getSetCookie()) {
      const [pair, ...attributes] = header.split(";");
      const eq = pair.indexOf("=");
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => {
        const [k, v = ""] = a.split("=");
        const key = k.trim().toLowerCase();
        return (key === "max-age" && Number(v) <= 0) || (key === "expires" && Date.parse(v) < Date.now());
      });
      const cookies = this.jar.get(url.origin) ?? new Map();
      if (expired) cookies.delete(name);
      else cookies.set(name, value);
      this.jar.set(url.origin, cookies);
    }
  }

  async request(url, { method = "GET", form } = {}) {
    const headers = { accept: "text/html" };
    const cookie = this.cookieHeader(url);
    if (cookie) headers.cookie = cookie;
    const init = { method, headers, redirect: "manual" };
    if (form) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      init.body = new URLSearchParams(form).toString();
    }
    const response = await fetch(url, init);
    this.keepCookies(url, response);
    note(`browser ${method} ${url.pathname} -> ${response.status}`);
    return response;
  }

  // From the authorization URL to the redirect back to `redirectUrl`; returns that URL's query.
  async authorize(authorizationUrl, redirectUrl) {
    const target = new URL(redirectUrl);
    let url = new URL(authorizationUrl);
    let next = { method: "GET" };
    for (let hop = 0; hop < 20; hop++) {
      const response = await this.request(url, next);
      if (response.status >= 300 && response.status < 400) {
        await response.body?.cancel();
        const location = response.headers.get("location");
        if (!location) throw new Error(`${response.status} from ${url.pathname} without a Location`);
        url = new URL(location, url);
        if (url.origin === target.origin && url.pathname === target.pathname) return url.searchParams;
        next = { method: "GET" };
        continue;
      }
      const html = await response.text();
      if (response.status !== 200) {
        throw new Error(`${response.status} from ${url.pathname}: ${textOf(html).slice(0, 300)}`);
      }
      const form = parseForms(html)[0];
      if (!form) throw new Error(`no form on ${url.pathname}: ${textOf(html).slice(0, 300)}`);
      const fields = Object.fromEntries(form.hidden);
      if (form.inputs.includes("email")) {
        // The development provider's sign-in form.
        fields.email = this.email;
      } else if (form.buttons.some((b) => b.name === "decision" && b.value === "approve")) {
        // The consent page.
        fields.decision = "approve";
      } else if (form.buttons.some((b) => b.name === "provider")) {
        // The provider choice page.
        if (!form.buttons.some((b) => b.name === "provider" && b.value === this.provider)) {
          throw new Error(`provider ${this.provider} is not offered on ${url.pathname}`);
        }
        fields.provider = this.provider;
      } else {
        throw new Error(`an unknown form on ${url.pathname}: ${textOf(html).slice(0, 300)}`);
      }
      const action = new URL(form.action || url.href, url);
      url = action;
      next = { method: (form.method || "get").toUpperCase(), form: fields };
    }
    throw new Error("the sign-in did not come back to the redirect URI within 20 requests");
  }
}

const decodeEntities = (s) =>
  s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos);/gi, (_, e) => {
    const lower = e.toLowerCase();
    if (lower.startsWith("#x")) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith("#")) return String.fromCodePoint(parseInt(lower.slice(1), 10));
    return { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" }[lower];
  });

const attributes = (tag) => {
  const found = {};
  for (const m of tag.matchAll(/([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g)) {
    found[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? "");
  }
  return found;
};

const textOf = (html) =>
  html
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, "")
    .replace(/<[^>]+>/g, " ")
    .replace(/\s+/g, " ")
    .trim();

// The forms of a page: action, method, hidden fields, names of the other inputs, buttons.
// A small regex reader: enough for Portcullis' own server-rendered pages.
function parseForms(html) {
  const forms = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const form = attributes(m[1]);
    const hidden = [];
    const inputs = [];
    for (const input of m[2].matchAll(/<input\b([^>]*)>/gi)) {
      const a = attributes(input[1]);
      if (!a.name) continue;
      if ((a.type ?? "text").toLowerCase() === "hidden") hidden.push([a.name, a.value ?? ""]);
      else inputs.push(a.name);
    }
    const buttons = [...m[2].matchAll(/<button\b([^>]*)>/gi)].map((b) => attributes(b[1]));
    forms.push({ action: form.action, method: form.method, hidden, inputs, buttons });
  }
  return forms;
}
