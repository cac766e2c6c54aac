// The OpenID provider of the interop suite (../../interop_test.go): panva's
// oidc-provider, configured for loopauth's cases, on 127.0.0.1.
//
//	node provider.mjs
//
// It listens on a free port and prints one JSON line on standard output,
// {"issuer": "http://127.0.0.1:PORT", ...secrets}, and exits when standard
// input closes, so it never outlives the test that started it. With
// INTEROP_TLS_CERT and INTEROP_TLS_KEY (PEM files) in its environment it
// serves https instead, with that certificate: the issuer is then
// https://127.0.0.1:PORT.
//
// Clients (every redirect URI http://127.0.0.1/callback; as native clients,
// any loopback port matches, RFC 8252 §7.3):
//   native        public, PKCE, RS256 ID tokens, refresh tokens (rotated)
//   native-es256  the same with ES256 ID tokens
//   basic         confidential, client_secret_basic only
//   post          confidential, client_secret_post only
//
// oidc-provider accepts a client secret by either method whatever the
// client registered; Ory Hydra and others refuse the other method. The
// request handler below refuses it too, so that the suite proves the method
// loopauth sends.
//
// Test-only endpoints, loopback only:
//   POST /-/rotate  new RS256 and ES256 signing keys, the old ones still
//                   published after them (a provider rotating its keys)
//   GET  /-/stats   {"jwks": number of key set requests served}

import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createTLSServer } from 'node:https';

import Provider from 'oidc-provider';

const secrets = {
  // Characters that RFC 6749 §2.3.1's form-encoding before base64 must
  // escape: a client that skips it sends another secret.
  basic: 'b4sic s:e%c+r/et',
  post: 'p0st s:e%c+r/et',
};

const redirectURIs = ['http://127.0.0.1/callback'];

const clients = [
  { client_id: 'native', token_endpoint_auth_method: 'none', id_token_signed_response_alg: 'RS256' },
  { client_id: 'native-es256', token_endpoint_auth_method: 'none', id_token_signed_response_alg: 'ES256' },
  { client_id: 'basic', client_secret: secrets.basic, token_endpoint_auth_method: 'client_secret_basic' },
  { client_id: 'post', client_secret: secrets.post, token_endpoint_auth_method: 'client_secret_post' },
].map((c) => ({
  application_type: 'native',
  redirect_uris: redirectURIs,
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  ...c,
}));

const authMethodOf = Object.fromEntries(clients.map((c) => [c.client_id, c.token_endpoint_auth_method]));

function newKeys() {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return [{ ...rsa, alg: 'RS256', use: 'sig' }, { ...ec, alg: 'ES256', use: 'sig' }];
}

let keys = newKeys();
let jwksRequests = 0;

function newProvider(issuer) {
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys },
    // The built-in login and consent pages (any login, any password), and
    // RFC 7009 revocation at /token/revocation.
    features: { devInteractions: { enabled: true }, revocation: { enabled: true } },
    pkce: { required: () => true },
    rotateRefreshToken: true,
    // Fixed, so that a provider made after a rotation reads the sessions of
    // the one before (the in-memory store is shared by every instance).
    cookies: { keys: ['loopauth-interop-cookies'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    // The email scope's claims in the ID token too, as Google and most
    // providers put them (by default only the userinfo endpoint has them).
    conformIdTokenClaims: false,
    async findAccount(_ctx, sub) {
      return {
        accountId: sub,
        async claims() { return { sub, email: `${sub}@example.com`, email_verified: true }; },
      };
    },
  });
  return provider.callback();
}

// readBody reads a form body (oidc-provider's own reader takes req.body
// when the stream has been read).
async function readBody(req) {
  const chunks = [];
  let n = 0;
  for await (const chunk of req) {
    n += chunk.length;
    if (n > 64 << 10) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

// basicClientID is the client ID of an HTTP Basic Authorization header.
function basicClientID(header) {
  const [scheme, value] = (header || '').split(' ');
  if (scheme?.toLowerCase() !== 'basic' || !value) return undefined;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  try {
    return decodeURIComponent(decoded.slice(0, decoded.indexOf(':')).replace(/\+/g, '%20'));
  } catch {
    return undefined;
  }
}

// wrongAuthMethod names the method a token request used when the client
// registered the other one; undefined when it is fine.
function wrongAuthMethod(req, body) {
  const form = new URLSearchParams(body);
  const basicID = basicClientID(req.headers.authorization);
  const used = basicID !== undefined ? 'client_secret_basic' : form.has('client_secret') ? 'client_secret_post' : 'none';
  const registered = authMethodOf[basicID ?? form.get('client_id')];
  if (registered && registered !== 'none' && used !== registered) {
    return `the client registered ${registered}, but ${used} was used`;
  }
  return undefined;
}

function json(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(value));
}

const loopback = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
let handle;
let issuer;

const tls = process.env.INTEROP_TLS_CERT && {
  cert: readFileSync(process.env.INTEROP_TLS_CERT),
  key: readFileSync(process.env.INTEROP_TLS_KEY),
};

async function serve(req, res) {
  try {
    const path = req.url.split('?')[0];
    if (path.startsWith('/-/')) {
      if (!loopback.has(req.socket.remoteAddress)) return json(res, 403, { error: 'loopback only' });
      if (req.method === 'POST' && path === '/-/rotate') {
        keys = [...newKeys(), ...keys];
        handle = newProvider(issuer);
        return json(res, 200, { keys: keys.length });
      }
      if (req.method === 'GET' && path === '/-/stats') return json(res, 200, { jwks: jwksRequests });
      return json(res, 404, { error: 'not found' });
    }
    if (path === '/jwks') jwksRequests += 1;
    if (req.method === 'POST' && (path === '/token' || path === '/token/revocation')) {
      req.body = await readBody(req);
      const wrong = wrongAuthMethod(req, req.body);
      if (wrong) return json(res, 401, { error: 'invalid_client', error_description: wrong });
    }
    return handle(req, res);
  } catch (err) {
    return json(res, 500, { error: 'server_error', error_description: String(err) });
  }
}

const server = tls ? createTLSServer(tls, serve) : createServer(serve);
server.listen(0, '127.0.0.1', () => {
  issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`;
  handle = newProvider(issuer);
  process.stdout.write(`${JSON.stringify({ issuer, secrets })}\n`);
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
