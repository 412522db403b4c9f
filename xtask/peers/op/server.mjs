// The OpenID Provider of the matrix-oidc conformance harness.
//
// oidc-provider (pinned in package.json) configured for Matrix's OAuth 2.0 profile, plus what a test
// harness needs around it: the dynamic Matrix scopes, a sign-up interaction for `prompt=create`,
// provisioning of users and devices in Synapse, and runtime switches that make the provider misbehave
// for negative tests (`/__harness/config`).
//
// Started by `cargo xtask peers up` as `node server.mjs <config.json>`; the configuration file is
// written by the harness (see xtask/src/peers/mod.rs, `OpConfig`). Everything lives in memory: clients,
// grants, tokens and sign-ups are lost when the process stops.

import { readFileSync } from 'node:fs';
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';

import Provider, { interactionPolicy } from 'oidc-provider';
// oidc-provider keeps its resolved configuration in a module-private cache. The dynamic Matrix scopes
// have to be added to the configured scope set itself (a scope missing from it is dropped before the
// request is processed), and this helper is the only handle on that set. The version is pinned, so
// this internal path is stable for us.
import instance from 'oidc-provider/lib/helpers/weak_cache.js';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { issuer } = config;
const issuerOrigin = new URL(issuer).origin;

// ---------------------------------------------------------------------------------------------------
// Misbehaviour switches
// ---------------------------------------------------------------------------------------------------

const DEFAULT_SWITCHES = Object.freeze({
  // Metadata served to clients (never to Synapse) names another issuer. `true` or the issuer to serve.
  wrong_issuer_in_metadata: false,
  // Metadata served to clients lists only `plain` in `code_challenge_methods_supported`.
  no_s256_in_metadata: false,
  // Metadata served to clients has no `registration_endpoint` (the endpoint itself keeps working).
  no_registration_endpoint: false,
  // RFC 9207 `iss` in authorization responses: null (correct), "wrong" or "missing".
  iss_in_callback: null,
  // Lifetime in seconds of access tokens issued from now on; null for the normal lifetime.
  access_token_ttl: null,
  // The consent step rejects the Matrix device scope: tokens are issued without it.
  device_scope_not_granted: false,
  // Refresh tokens are not rotated: a refresh returns the same refresh token.
  no_refresh_token_rotation: false,
  // Fields merged into the metadata served to clients; a null value removes the field.
  metadata_overrides: {},
  // `interval` (seconds) in device authorization responses; null leaves it out, as oidc-provider
  // does (clients then wait the default 5 s between polls).
  device_interval: null,
  // The first N token polls of each device code answer `slow_down` (oidc-provider never does).
  device_slow_down: 0,
});

let switches = { ...DEFAULT_SWITCHES };

function applySwitches(patch) {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
    throw new Error('the body must be a JSON object of switches');
  }
  const next = { ...switches };
  for (const [key, value] of Object.entries(patch)) {
    if (!(key in DEFAULT_SWITCHES)) {
      throw new Error(`unknown switch "${key}"; known: ${Object.keys(DEFAULT_SWITCHES).join(', ')}`);
    }
    const ok = {
      wrong_issuer_in_metadata: typeof value === 'boolean' || typeof value === 'string',
      iss_in_callback: value === null || value === 'wrong' || value === 'missing',
      access_token_ttl: value === null || (Number.isInteger(value) && value > 0),
      device_interval: value === null || (Number.isInteger(value) && value > 0),
      device_slow_down: Number.isInteger(value) && value >= 0,
      metadata_overrides: value !== null && typeof value === 'object' && !Array.isArray(value),
    }[key] ?? typeof value === 'boolean';
    if (!ok) {
      throw new Error(`invalid value for switch "${key}": ${JSON.stringify(value)}`);
    }
    next[key] = value;
  }
  switches = next;
}

// ---------------------------------------------------------------------------------------------------
// Accounts (in memory) and their provisioning in Synapse
// ---------------------------------------------------------------------------------------------------

const accounts = new Map(config.users.map((u) => [u.username, { ...u }]));
const LOCALPART = /^[a-z0-9._=\-/]{1,64}$/;

function findAccountByLogin(login, password) {
  const account = accounts.get(String(login ?? '').trim().toLowerCase());
  if (!account) return undefined;
  const a = Buffer.from(account.password);
  const b = Buffer.from(String(password ?? ''));
  return a.length === b.length && crypto.timingSafeEqual(a, b) ? account : undefined;
}

// How users and devices are created in Synapse: through its admin API with the msc3861 admin token,
// or (flavour mas) through the API Synapse offers MAS, with the shared secret.
const synapseApi = config.synapse_api;

async function synapseCall(method, path, body) {
  const res = await fetch(`${config.homeserver_url}${path}`, {
    method,
    headers: { authorization: `Bearer ${synapseApi.token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) {
    const text = await res.text();
    throw new Error(`Synapse ${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`);
  }
  return res.text();
}

const provisionedUsers = new Set();
const provisionedDevices = new Set();

function matrixUserId(localpart) {
  return `@${localpart}:${config.server_name}`;
}

async function provisionUser(localpart) {
  if (provisionedUsers.has(localpart)) return;
  const displayname = accounts.get(localpart)?.displayname;
  if (synapseApi.kind === 'mas') {
    await synapseCall('POST', '/_synapse/mas/provision_user', {
      localpart,
      ...(displayname ? { set_displayname: displayname } : {}),
    });
  } else {
    await synapseCall(
      'PUT',
      `/_synapse/admin/v2/users/${encodeURIComponent(matrixUserId(localpart))}`,
      displayname ? { displayname } : {},
    );
  }
  provisionedUsers.add(localpart);
}

async function provisionDevice(localpart, deviceId) {
  const key = `${localpart}\u0000${deviceId}`;
  if (provisionedDevices.has(key)) return;
  await provisionUser(localpart);
  if (synapseApi.kind === 'mas') {
    await synapseCall('POST', '/_synapse/mas/upsert_device', { localpart, device_id: deviceId });
  } else {
    await synapseCall(
      'POST',
      `/_synapse/admin/v2/users/${encodeURIComponent(matrixUserId(localpart))}/devices`,
      { device_id: deviceId },
    );
  }
  provisionedDevices.add(key);
}

// ---------------------------------------------------------------------------------------------------
// Matrix scopes
// ---------------------------------------------------------------------------------------------------

const API_SCOPES = ['urn:matrix:client:api:*', 'urn:matrix:org.matrix.msc2967.client:api:*'];
const DEVICE_SCOPE = /^urn:matrix:(?:client|org\.matrix\.msc2967\.client):device:([A-Za-z0-9._~!$&'()*+,;=:@/-]{1,255})$/;

function deviceIdsOf(scope) {
  return String(scope ?? '').split(' ').map((s) => DEVICE_SCOPE.exec(s)?.[1]).filter(Boolean);
}

// ---------------------------------------------------------------------------------------------------
// Pages (plain HTML forms; the scripted browser in xtask/src/peers/browser.rs reads them)
// ---------------------------------------------------------------------------------------------------

function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, kind, inner) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="harness-page" content="${esc(kind)}"></head>
<body><main><h1>${esc(title)}</h1>
${inner}
</main></body></html>`;
}

function errorParagraph(message) {
  return message ? `<p id="error" role="alert">${esc(message)}</p>` : '';
}

function loginPage(uid, client, params, message) {
  return page('Sign in', 'login', `${errorParagraph(message)}
<p>to continue to <strong>${esc(client?.clientName || params.client_id)}</strong></p>
<form id="login-form" method="post" action="/interaction/${esc(uid)}/login">
<label>Username <input type="text" name="login" autocomplete="username" value="${esc(params.login_hint)}"></label>
<label>Password <input type="password" name="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button>
</form>
<p><a id="abort" href="/interaction/${esc(uid)}/abort">Cancel</a></p>`);
}

function signUpPage(uid, client, params, message) {
  return page('Create an account', 'create', `${errorParagraph(message)}
<p>for <strong>${esc(client?.clientName || params.client_id)}</strong></p>
<form id="create-form" method="post" action="/interaction/${esc(uid)}/create">
<label>Username <input type="text" name="username" autocomplete="username"></label>
<label>Password <input type="password" name="password" autocomplete="new-password"></label>
<label>Display name <input type="text" name="displayname"></label>
<button type="submit">Create account</button>
</form>
<p><a id="abort" href="/interaction/${esc(uid)}/abort">Cancel</a></p>`);
}

function consentPage(uid, client, details, accountId) {
  const scopes = [...(details.missingOIDCScope ?? [])];
  return page('Authorize', 'consent', `<p><strong>${esc(client?.clientName || client?.clientId)}</strong>
asks to act as <strong>${esc(accountId)}</strong> with:</p>
<ul>${scopes.map((s) => `<li><code>${esc(s)}</code></li>`).join('')}</ul>
<form id="consent-form" method="post" action="/interaction/${esc(uid)}/confirm">
<button type="submit">Allow</button>
</form>
<p><a id="abort" href="/interaction/${esc(uid)}/abort">Deny</a></p>`);
}

// ---------------------------------------------------------------------------------------------------
// Provider configuration
// ---------------------------------------------------------------------------------------------------

const policy = interactionPolicy.base();
// prompt=create: a requestable prompt with no check of its own; oidc-provider adds the check that asks
// for it when requested and not yet resolved by an interaction result carrying `create`.
policy.add(new interactionPolicy.Prompt({ name: 'create', requestable: true }), 0);

function signingKeys() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'rs256-1', use: 'sig', alg: 'RS256' }] };
}

const ACCOUNT_ACTIONS = [
  'org.matrix.profile',
  'org.matrix.devices_list',
  'org.matrix.device_view',
  'org.matrix.device_delete',
  'org.matrix.account_deactivate',
  'org.matrix.cross_signing_reset',
];

const provider = new Provider(issuer, {
  clients: [{
    // The confidential client Synapse introspects tokens with (msc3861 `client_id`/`client_secret`).
    client_id: config.synapse_client.client_id,
    client_secret: config.synapse_client.client_secret,
    grant_types: [],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: signingKeys(),
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'offline_access', ...API_SCOPES],
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'] },
  responseTypes: ['code'],
  pkce: { required: () => true },
  routes: {
    // The path Synapse's newer `matrix_authentication_service` mode expects; harmless for msc3861.
    introspection: '/oauth2/introspect',
  },
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true, initialAccessToken: false },
    revocation: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: { enabled: false },
    deviceFlow: {
      enabled: true,
      charset: 'base-20',
      mask: '****-****',
      async userCodeInputSource(ctx, form, out, err) {
        let message = '';
        let kind = 'device-input';
        if (err?.name === 'AbortedError') {
          kind = 'device-aborted';
          message = 'The sign-in request was denied.';
        } else if (err) {
          message = err.userCode || err.name === 'NoCodeError'
            ? 'The code you entered is incorrect.'
            : `There was an error processing the request (${err.name}).`;
        }
        ctx.body = page('Connect a device', kind, `${errorParagraph(message)}
<p>Enter the code displayed on your device.</p>
${form}
<button type="submit" form="op.deviceInputForm">Continue</button>`);
      },
      async userCodeConfirmSource(ctx, form, client, deviceInfo, userCode) {
        ctx.body = page('Confirm the device', 'device-confirm', `<p><strong>${esc(client.clientName || client.clientId)}</strong>
asks to sign in. Check that the device shows <code id="user-code">${esc(userCode)}</code>.</p>
${form}
<button type="submit" form="op.deviceConfirmForm">Continue</button>
<button type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Deny</button>`);
      },
      async successSource(ctx) {
        ctx.body = page('Device connected', 'device-success', '<p id="device-success">You can return to your device.</p>');
      },
    },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.body = page('Sign out', 'logout', `${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button>
<button type="submit" form="op.logoutForm">Stay signed in</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out', 'logout-success', '<p id="logout-success">You are signed out.</p>');
      },
    },
  },
  discovery: {
    account_management_uri: `${issuer}/account`,
    account_management_actions_supported: ACCOUNT_ACTIONS,
    prompt_values_supported: ['none', 'login', 'consent', 'create'],
  },
  interactions: {
    policy,
    url: (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  async findAccount(ctx, sub) {
    const account = accounts.get(sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, preferred_username: sub, name: account.displayname ?? sub };
      },
    };
  },
  // Refresh tokens for every client allowed the grant (Matrix clients do not ask for offline_access).
  async issueRefreshToken(ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  rotateRefreshToken: () => !switches.no_refresh_token_rotation,
  // Matrix sessions outlive the browser session at the provider.
  expiresWithSession: async () => false,
  // Synapse needs `username` (the localpart) in the introspection response, and the user and device
  // to exist before it accepts the token: provision them before the token is handed out.
  async extraTokenClaims(ctx, token) {
    if (token.kind !== 'AccessToken' || !token.accountId) return undefined;
    const [deviceId] = deviceIdsOf(token.scope);
    if (deviceId) {
      await provisionDevice(token.accountId, deviceId);
    } else {
      await provisionUser(token.accountId);
    }
    return { username: token.accountId };
  },
  ttl: {
    AccessToken: () => switches.access_token_ttl ?? config.access_token_ttl,
    AuthorizationCode: 60,
    DeviceCode: 600,
    Grant: 14 * 24 * 3600,
    IdToken: 3600,
    Interaction: 3600,
    RefreshToken: 14 * 24 * 3600,
    Session: 14 * 24 * 3600,
  },
  async renderError(ctx, out, error) {
    ctx.type = 'html';
    ctx.body = page('Error', 'error', `<pre id="error" data-error="${esc(out.error)}">${esc(out.error)}: ${esc(out.error_description)}</pre>`);
  },
});

provider.proxy = false;
const staticScopes = instance(provider).configuration.scopes;

// ---------------------------------------------------------------------------------------------------
// Middleware around the provider
// ---------------------------------------------------------------------------------------------------

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function isForm(ctx) {
  return ctx.method === 'POST' && ctx.is('application/x-www-form-urlencoded');
}

// Access log: method, path and status only (queries carry codes and states).
provider.use(async (ctx, next) => {
  const started = Date.now();
  try {
    await next();
  } finally {
    console.log(`${ctx.method} ${ctx.path} -> ${ctx.status} (${Date.now() - started} ms)`);
  }
});

// Harness control endpoint.
provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith('/__harness/')) return next();
  ctx.set('cache-control', 'no-store');
  if (ctx.path === '/__harness/config' && ctx.method === 'GET') {
    ctx.body = switches;
  } else if (ctx.path === '/__harness/config' && ctx.method === 'POST') {
    try {
      applySwitches(JSON.parse((await readBody(ctx.req)) || 'null'));
      console.log(`switches now ${JSON.stringify(switches)}`);
      ctx.body = switches;
    } catch (err) {
      ctx.status = 400;
      ctx.body = { error: String(err.message ?? err) };
    }
  } else if (ctx.path === '/__harness/reset' && ctx.method === 'POST') {
    switches = { ...DEFAULT_SWITCHES };
    console.log('switches reset');
    ctx.body = switches;
  } else if (ctx.path === '/__harness/token_requests' && ctx.method === 'GET') {
    const clientId = ctx.query.client_id;
    ctx.body = clientId === undefined
      ? Object.fromEntries(tokenRequests)
      : tokenRequests.get(clientId) ?? {};
  } else if (ctx.path === '/__harness/health') {
    ctx.body = { ok: true };
  } else {
    ctx.status = 404;
    ctx.body = { error: `no harness endpoint ${ctx.method} ${ctx.path}` };
  }
  return undefined;
});

// Make every Matrix device scope of the request a known scope before the provider reads the request;
// scopes live in the query (authorization) or the form body (device authorization, PAR, token).
provider.use(async (ctx, next) => {
  if (ctx.path.startsWith('/interaction/')) return next();
  const scopes = [ctx.query.scope];
  if (isForm(ctx)) {
    const raw = await readBody(ctx.req);
    // The stream is consumed: oidc-provider's body parser then takes the body from `req.body`.
    ctx.req.body = raw;
    scopes.push(new URLSearchParams(raw).get('scope'));
  }
  for (const scope of scopes) {
    for (const s of String(scope ?? '').split(' ')) {
      if (DEVICE_SCOPE.test(s)) staticScopes.add(s);
    }
  }
  return next();
});

// Token endpoint requests per client and grant type (`GET /__harness/token_requests?client_id=`), so
// that a test can tell how many refreshes a client made. Public clients name themselves in the form.
const tokenRequests = new Map();
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path === '/token') {
    const form = new URLSearchParams(typeof ctx.req.body === 'string' ? ctx.req.body : '');
    const clientId = form.get('client_id') ?? '(authenticated)';
    const grantType = form.get('grant_type') ?? '(none)';
    const counts = tokenRequests.get(clientId) ?? {};
    counts[grantType] = (counts[grantType] ?? 0) + 1;
    tokenRequests.set(clientId, counts);
  }
  return next();
});

// Device grant pacing: `interval` in the device authorization response, `slow_down` on early polls.
const slowDownPolls = new Map();
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path === '/token' && switches.device_slow_down > 0) {
    const form = new URLSearchParams(typeof ctx.req.body === 'string' ? ctx.req.body : '');
    const deviceCode = form.get('device_code');
    if (form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:device_code' && deviceCode) {
      const polls = (slowDownPolls.get(deviceCode) ?? 0) + 1;
      slowDownPolls.set(deviceCode, polls);
      if (polls <= switches.device_slow_down) {
        ctx.status = 400;
        ctx.set('cache-control', 'no-store');
        ctx.body = { error: 'slow_down', error_description: 'you are polling too quickly (harness switch)' };
        return undefined;
      }
    }
  }
  await next();
  if (ctx.path === '/device/auth' && ctx.status === 200 && switches.device_interval && ctx.body?.device_code) {
    ctx.body = { ...ctx.body, interval: switches.device_interval };
  }
  return undefined;
});

// Metadata: switches apply to what clients read, never to what Synapse reads (it caches its copy).
provider.use(async (ctx, next) => {
  const wellKnown = ctx.path === '/.well-known/openid-configuration'
    || ctx.path === '/.well-known/oauth-authorization-server';
  if (!wellKnown || ctx.method !== 'GET') return next();
  const original = ctx.path;
  ctx.path = '/.well-known/openid-configuration';
  await next();
  ctx.path = original;
  if (ctx.status !== 200 || typeof ctx.body !== 'object') return undefined;
  const body = { ...ctx.body };
  // Device scopes are per request; advertising them all would grow without bound.
  body.scopes_supported = body.scopes_supported?.filter((s) => !DEVICE_SCOPE.test(s));
  if (!String(ctx.get('user-agent')).startsWith('Synapse')) {
    if (switches.wrong_issuer_in_metadata) {
      body.issuer = typeof switches.wrong_issuer_in_metadata === 'string'
        ? switches.wrong_issuer_in_metadata
        : `${issuer}/not-the-issuer`;
    }
    if (switches.no_s256_in_metadata) body.code_challenge_methods_supported = ['plain'];
    if (switches.no_registration_endpoint) delete body.registration_endpoint;
    for (const [key, value] of Object.entries(switches.metadata_overrides)) {
      if (value === null) delete body[key];
      else body[key] = value;
    }
  }
  ctx.body = body;
  return undefined;
});

// Introspection: Synapse bounds its cache of a token by `expires_in` (seconds from now). In flavour
// mas, Synapse authenticates with the shared secret as a bearer token, as it does towards MAS: that
// stands for the client Synapse is registered as.
const synapseBasic = `Basic ${Buffer.from(
  `${encodeURIComponent(config.synapse_client.client_id)}:${encodeURIComponent(config.synapse_client.client_secret)}`,
).toString('base64')}`;
provider.use(async (ctx, next) => {
  if (
    ctx.path === '/oauth2/introspect'
    && synapseApi.kind === 'mas'
    && ctx.get('authorization') === `Bearer ${synapseApi.token}`
  ) {
    ctx.req.headers.authorization = synapseBasic;
  }
  await next();
  if (ctx.path === '/oauth2/introspect' && ctx.status === 200 && ctx.body?.active && ctx.body.exp) {
    ctx.body = { ...ctx.body, expires_in: Math.max(0, ctx.body.exp - Math.floor(Date.now() / 1000)) };
  }
});

// RFC 9207 `iss` in authorization responses (query and fragment modes), per the switch.
provider.use(async (ctx, next) => {
  await next();
  if (!switches.iss_in_callback || ctx.status < 300 || ctx.status >= 400) return;
  const location = ctx.response.get('location');
  if (!location) return;
  let url;
  try {
    url = new URL(location);
  } catch {
    return;
  }
  // Redirects within the provider are not authorization responses.
  if (url.origin === issuerOrigin) return;
  const rewrite = (params) => {
    if (!params.has('iss') || !(params.has('code') || params.has('error'))) return false;
    if (switches.iss_in_callback === 'missing') params.delete('iss');
    else params.set('iss', `${issuer}/not-the-issuer`);
    return true;
  };
  if (rewrite(url.searchParams)) {
    ctx.set('location', url.href);
  } else if (url.hash) {
    const params = new URLSearchParams(url.hash.slice(1));
    if (rewrite(params)) {
      url.hash = params.toString();
      ctx.set('location', url.href);
    }
  }
});

// Interactions: login, consent, sign-up, abort.
provider.use(async (ctx, next) => {
  const m = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|create|abort))?$/.exec(ctx.path);
  if (!m) return next();
  const [, uid, action] = m;
  ctx.set('cache-control', 'no-store');
  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (err) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Error', 'error', `<pre id="error" data-error="invalid_request">invalid_request: ${esc(err.message)}</pre>`);
    return undefined;
  }
  if (details.uid !== uid) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Error', 'error', '<pre id="error" data-error="invalid_request">invalid_request: interaction mismatch</pre>');
    return undefined;
  }
  const { prompt, params } = details;
  const client = await provider.Client.find(params.client_id);

  const finish = async (result, merge) => {
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
    ctx.status = 303;
    ctx.set('location', returnTo);
    ctx.body = '';
  };
  const html = (body) => {
    ctx.type = 'html';
    ctx.body = body;
  };

  if (ctx.method === 'GET' && action === undefined) {
    switch (prompt.name) {
      case 'create': return html(signUpPage(uid, client, params));
      case 'login': return html(loginPage(uid, client, params));
      case 'consent': return html(consentPage(uid, client, prompt.details, details.session?.accountId));
      default:
        ctx.status = 501;
        return html(page('Error', 'error', `<pre id="error" data-error="server_error">unsupported prompt ${esc(prompt.name)}</pre>`));
    }
  }
  if (ctx.method === 'GET' && action === 'abort') {
    return finish({ error: 'access_denied', error_description: 'End-User aborted interaction' }, false);
  }
  if (ctx.method !== 'POST' || action === undefined || action === 'abort') {
    ctx.status = 405;
    return undefined;
  }
  const form = new URLSearchParams(await readBody(ctx.req));

  if (action === 'login' && prompt.name === 'login') {
    const account = findAccountByLogin(form.get('login'), form.get('password'));
    if (!account) return html(loginPage(uid, client, params, 'Invalid username or password.'));
    await provisionUser(account.username);
    return finish({ login: { accountId: account.username } }, false);
  }

  if (action === 'create' && prompt.name === 'create') {
    const username = String(form.get('username') ?? '').trim().toLowerCase();
    const password = String(form.get('password') ?? '');
    const displayname = String(form.get('displayname') ?? '').trim() || undefined;
    let problem;
    if (!LOCALPART.test(username)) problem = 'Usernames use a-z, 0-9 and ._=-/ only.';
    else if (accounts.has(username)) problem = 'This username is taken.';
    else if (password.length < 8) problem = 'Passwords have at least 8 characters.';
    if (problem) return html(signUpPage(uid, client, params, problem));
    accounts.set(username, { username, password, displayname });
    try {
      await provisionUser(username);
    } catch (err) {
      accounts.delete(username);
      throw err;
    }
    console.log(`signed up ${username}`);
    return finish({ create: { accountId: username }, login: { accountId: username } }, false);
  }

  if (action === 'confirm' && prompt.name === 'consent') {
    const { grantId, session } = details;
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details.missingOIDCScope ?? [];
    const rejected = switches.device_scope_not_granted ? missing.filter((s) => DEVICE_SCOPE.test(s)) : [];
    const granted = missing.filter((s) => !rejected.includes(s));
    if (granted.length) grant.addOIDCScope(granted.join(' '));
    if (rejected.length) grant.rejectOIDCScope(rejected.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    return finish({ consent: { grantId: await grant.save() } }, true);
  }

  ctx.status = 409;
  return html(page('Error', 'error', `<pre id="error" data-error="invalid_request">invalid_request: ${esc(action)} does not answer the ${esc(prompt.name)} prompt</pre>`));
});

// Account management page (the `account_management_uri`): shows the action it was asked for.
provider.use(async (ctx, next) => {
  if (ctx.path !== '/account') return next();
  const action = ctx.query.action ?? 'org.matrix.profile';
  ctx.type = 'html';
  ctx.body = page('Account', 'account', `<p id="action">${esc(action)}</p>
${ctx.query.device_id ? `<p id="device-id">${esc(ctx.query.device_id)}</p>` : ''}`);
  return undefined;
});

provider.on('server_error', (ctx, err) => console.error('server_error', err));
for (const event of ['authorization.error', 'grant.error', 'registration_create.error', 'introspection.error', 'revocation.error', 'code_verification.error']) {
  provider.on(event, (ctx, err) => console.log(`${event}: ${err.error ?? err.name}: ${err.error_description ?? err.message}`));
}

// ---------------------------------------------------------------------------------------------------
// Listen
// ---------------------------------------------------------------------------------------------------

function listen(handler, port, what) {
  const server = config.tls
    ? https.createServer({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) }, handler)
    : http.createServer(handler);
  server.listen(port, config.host, () => console.log(`${what} listening on ${config.host}:${port}`));
  return server;
}

// ---------------------------------------------------------------------------------------------------
// Homeserver front: a second homeserver URL for negative tests of discovery through the homeserver.
// Synapse loads the OP's metadata once and serves that copy from /auth_metadata forever, so switches
// cannot reach clients through it. The front answers the auth_metadata paths with the metadata the OP
// currently serves to clients (switches applied) and passes every other request through to Synapse.
// ---------------------------------------------------------------------------------------------------

const AUTH_METADATA_PATHS = new Set([
  '/_matrix/client/v1/auth_metadata',
  '/_matrix/client/unstable/org.matrix.msc2965/auth_metadata',
]);

async function front(req, res) {
  const path = req.url.split('?')[0];
  if (req.method === 'GET' && AUTH_METADATA_PATHS.has(path)) {
    try {
      const answer = await fetch(`${issuer}/.well-known/openid-configuration`, {
        headers: { 'user-agent': 'matrix-oidc-harness-front' },
      });
      const body = await answer.text();
      res.writeHead(answer.status, {
        'content-type': 'application/json',
        'access-control-allow-origin': '*',
        'cache-control': 'no-store',
      });
      res.end(body);
    } catch (err) {
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errcode: 'M_UNKNOWN', error: `harness front: ${err.message}` }));
    }
    console.log(`front ${req.method} ${path} -> switched metadata`);
    return;
  }
  const target = new URL(config.homeserver_url);
  const upstream = (target.protocol === 'https:' ? https : http).request({
    host: target.hostname,
    port: target.port,
    method: req.method,
    path: req.url,
    headers: { ...req.headers, host: target.host },
  }, (answer) => {
    res.writeHead(answer.statusCode, answer.headers);
    answer.pipe(res);
  });
  upstream.on('error', (err) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errcode: 'M_UNKNOWN', error: `harness front: ${err.message}` }));
  });
  req.pipe(upstream);
}

const servers = [listen(provider.callback(), config.port, `oidc-provider (issuer ${issuer})`)];
if (config.front_port) {
  servers.push(listen(front, config.front_port, `homeserver front (to ${config.homeserver_url})`));
}

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    for (const server of servers) server.close();
    process.exit(0);
  });
}
