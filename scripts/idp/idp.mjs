#!/usr/bin/env node
// The upstream OpenID provider Portcullis' end-to-end tests sign in at: oidc-provider 9 with one
// static confidential client, the built-in development login and consent forms, and an
// in-memory store that never evicts. Loopback only; for tests, never for anything else.
//
//   node scripts/idp/idp.mjs [--port N] [--access-ttl SECONDS] [--exit-with-parent]
//
// --port 0 (the default) picks a free port. Once listening it prints exactly one line on
// stdout, `READY <issuer>`; everything else (oidc-provider's development warnings) goes to stderr.
// --exit-with-parent: stop when the process that started this one dies, even by SIGKILL, so a
// killed test run leaves no IdP behind.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const CLIENT_ID = 'portcullis-test';
const CLIENT_SECRET = 'portcullis-test-secret';
// A service that gets JWT access tokens for SERVICE_AUDIENCE by client_credentials: what a
// trusted issuer's caller of Portcullis looks like.
const SERVICE_ID = 'portcullis-service';
const SERVICE_SECRET = 'portcullis-service-secret';
const SERVICE_AUDIENCE = 'urn:portcullis:test';
const SERVICE_SCOPES = 'rec:tools:call rec:echo:call';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'access-ttl': { type: 'string', default: '3600' },
    'exit-with-parent': { type: 'boolean', default: false },
  },
});

function positiveInteger(name, value, { allowZero = false } = {}) {
  const number = Number(value);
  if (!Number.isInteger(number) || number < (allowZero ? 0 : 1)) {
    process.stderr.write(`idp: --${name} must be a${allowZero ? ' non-negative' : ' positive'} integer, got ${JSON.stringify(value)}\n`);
    process.exit(2);
  }
  return number;
}

// stdout carries exactly one line, READY; oidc-provider's notices (console.info) go to stderr.
// A reader that closes its end after READY must not crash this process either.
console.log = console.error;
console.info = console.error;
process.stdout.on('error', () => {});

const port = positiveInteger('port', args.port, { allowZero: true });
const accessTtl = positiveInteger('access-ttl', args['access-ttl']);

// Portcullis listens on a port chosen at test time, so its callback
// `http://127.0.0.1:<port>/callback/<provider id>` cannot be registered in advance. RFC 8252 §7.3
// lets a loopback redirect URI use any port; this accepts any loopback port and any provider id.
const LOOPBACK_CALLBACK = /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d{1,5})?\/callback\/[A-Za-z0-9._~-]+$/;

// oidc-provider's default memory adapter is an LRU that starts evicting after ~1000 entries,
// which a long test run passes. This one keeps everything until it expires.
const store = new Map();
const grants = new Map(); // grantId -> Set of store keys issued under that grant

function live(key) {
  const entry = store.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return entry.value;
}

class MapAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined;
    store.set(key, { value: payload, expiresAt });
    if (this.model === 'Session' && payload.uid) {
      store.set(`sessionUid:${payload.uid}`, { value: id, expiresAt });
    }
    if (payload.userCode) {
      store.set(`userCode:${payload.userCode}`, { value: id, expiresAt });
    }
    if (payload.grantId) {
      if (!grants.has(payload.grantId)) grants.set(payload.grantId, new Set());
      grants.get(payload.grantId).add(key);
    }
  }

  async find(id) {
    return live(this.key(id));
  }

  async findByUid(uid) {
    const id = live(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = live(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const payload = live(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of grants.get(grantId) ?? []) store.delete(key);
    grants.delete(grantId);
  }
}

// A login names the person and, after `+`, the groups they are in: `carol+platform+ops` is
// carol@example.com in groups platform and ops (and a subject of its own). A name starting with
// `unverified-` has an email this provider did not verify. Like Google Workspace, an address
// outside example.com carries its domain as `hd`; like Entra, everyone has a `tid` and `oid`.
function claimsFor(login) {
  const [name, ...groups] = login.split('+');
  const email = name.includes('@') ? name : `${name}@example.com`;
  const domain = email.split('@')[1];
  return {
    sub: login,
    email,
    email_verified: !name.startsWith('unverified-'),
    name,
    groups,
    ...(domain === 'example.com' ? {} : { hd: domain }),
    tid: 'tenant-1',
    oid: `oid-${name}`,
  };
}

// A fresh signing key and cookie key per run: nothing about this IdP outlives the test run.
const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  adapter: MapAdapter,
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      client_name: 'Portcullis (tests)',
      // client_secret_post is accepted too: oidc-provider treats basic and post alike.
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      // Nominal; any loopback `/callback/<id>` is accepted, see LOOPBACK_CALLBACK.
      redirect_uris: ['http://127.0.0.1/callback/corp'],
    },
    {
      client_id: SERVICE_ID,
      client_secret: SERVICE_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
  ],
  jwks: { keys: [{ ...signingKey, kid: 'test-idp', use: 'sig', alg: 'RS256' }] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  claims: {
    openid: ['sub', 'groups', 'hd', 'tid', 'oid'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  // Like most real providers, put the scope's claims in the id_token too, not only in userinfo.
  conformIdTokenClaims: false,
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        return claimsFor(id);
      },
    };
  },
  pkce: { required: () => true },
  // oidc-provider drops `offline_access` unless `prompt=consent` was sent; issue a refresh
  // token whenever the client may use the grant instead, as many real providers do.
  async issueRefreshToken(_ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  expiresWithSession: async () => false,
  // Numbers rather than oidc-provider's default functions, which log a notice when called.
  ttl: {
    AccessToken: accessTtl,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 14 * 24 * 3600,
    Interaction: 3600,
    Session: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
  },
  features: {
    devInteractions: { enabled: true },
    // Portcullis sends no `resource` upstream. Should one arrive anyway, accept it rather than
    // fail with invalid_target (the default until getResourceServerInfo is configured).
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => undefined,
      useGrantedResource: async () => false,
      getResourceServerInfo: async (_ctx, resource) => (resource === SERVICE_AUDIENCE
        ? {
          scope: SERVICE_SCOPES,
          audience: resource,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }
        : {
          scope: 'openid email profile offline_access',
          audience: resource,
          accessTokenFormat: 'opaque',
        }),
    },
    revocation: { enabled: true },
    introspection: { enabled: true },
    clientCredentials: { enabled: true },
  },
});

const { redirectUriAllowed } = provider.Client.prototype;
provider.Client.prototype.redirectUriAllowed = function allowLoopbackCallbacks(value) {
  return LOOPBACK_CALLBACK.test(value) || redirectUriAllowed.call(this, value);
};

provider.on('server_error', (_ctx, error) => {
  process.stderr.write(`idp: server_error: ${error?.stack ?? error}\n`);
});

server.on('request', provider.callback());
process.stdout.write(`READY ${issuer}\n`);

function shutdown(signal) {
  process.stderr.write(`idp: ${signal}, shutting down\n`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  // Never hang a test run on a stuck connection.
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

if (args['exit-with-parent']) {
  const parent = process.ppid;
  // Orphans are re-parented (to init or a subreaper), which changes ppid.
  setInterval(() => {
    if (process.ppid !== parent) shutdown('parent process gone');
  }, 500).unref();
}
