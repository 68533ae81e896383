// A real OpenID Connect provider (the `oidc-provider` package) on loopback, for redbutton's OIDC
// client tests (tests/oidc_client.rs). Not for production: fresh keys each run, everything in
// memory, and the package's built-in development login form, which takes any login and password.
//
// oidc-provider is pinned at 8.8.1 (package-lock.json): 9.x needs a newer Node.js (it calls
// URL.parse, which Node 18, Debian 12's nodejs, does not have).
//
//   node tests/oidc-provider/provider.mjs [--port N] [--client-secret S] [--redirect-uri URI]
//
// Options, each also readable from the environment (the option wins):
//   --port N             OIDC_TEST_PORT           listen port on 127.0.0.1 (default 0: any free port)
//   --client-secret S    OIDC_TEST_CLIENT_SECRET  secret of the confidential client `redbutton`
//                                                 (default "redbutton-test-secret")
//   --redirect-uri URI   OIDC_TEST_REDIRECT_URI   the client's registered redirect URI (default
//                                                 http://127.0.0.1/oidc/callback); the client is a
//                                                 native application, so a loopback redirect URI
//                                                 matches on any port (RFC 8252, section 7.3)
// The one account's claims come from the environment:
//   OIDC_TEST_EMAIL (default alice@example.com), OIDC_TEST_NAME (default "Alice Example"),
//   OIDC_TEST_GROUPS (comma-separated, default "responders"),
//   OIDC_TEST_EMAIL_VERIFIED ("false" makes email_verified false; default true).
//
// Once listening it prints one line of JSON to stdout, {"issuer": "http://127.0.0.1:PORT"}, and
// nothing else goes to stdout. It exits when its standard input closes (so it does not outlive the
// test that started it) or on SIGTERM/SIGINT.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

// The package writes notices with console.info; keep stdout for the one issuer line.
console.info = (...args) => console.error(...args);

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string' },
  },
});

const env = process.env;
const port = Number(args.port ?? env.OIDC_TEST_PORT ?? 0);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`provider.mjs: not a port: ${args.port ?? env.OIDC_TEST_PORT}`);
  process.exit(2);
}
const clientSecret = args['client-secret'] ?? env.OIDC_TEST_CLIENT_SECRET ?? 'redbutton-test-secret';
const redirectUri = args['redirect-uri'] ?? env.OIDC_TEST_REDIRECT_URI ?? 'http://127.0.0.1/oidc/callback';

const account = {
  email: env.OIDC_TEST_EMAIL ?? 'alice@example.com',
  name: env.OIDC_TEST_NAME ?? 'Alice Example',
  groups: (env.OIDC_TEST_GROUPS ?? 'responders')
    .split(',')
    .map((group) => group.trim())
    .filter((group) => group.length > 0),
  emailVerified: (env.OIDC_TEST_EMAIL_VERIFIED ?? 'true') !== 'false',
};

// Signing keys made for this run only: one RSA (RS256, the default for ID tokens) and one P-256.
function signingKey(type, options, alg, kid) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid };
}
const jwks = {
  keys: [
    signingKey('rsa', { modulusLength: 2048 }, 'RS256', 'test-rsa-1'),
    signingKey('ec', { namedCurve: 'P-256' }, 'ES256', 'test-ec-1'),
  ],
};

// Listen first, so the issuer can carry the port the system gave us.
const server = createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'redbutton',
        client_secret: clientSecret,
        application_type: 'native',
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    pkce: { required: () => true },
    jwks,
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups'],
    // Put the scope's claims in the ID token itself (redbutton reads only the ID token).
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: true } },
    ttl: { AuthorizationCode: 60, IdToken: 300, AccessToken: 300, Interaction: 300, Session: 600, Grant: 600 },
    async findAccount(_ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            email: account.email,
            email_verified: account.emailVerified,
            name: account.name,
            groups: account.groups,
          };
        },
      };
    },
  });
  // Errors the provider answered to a client (bad code, reused code...) are expected in tests;
  // say them on stderr only.
  provider.on('server_error', (_ctx, error) => console.error('provider.mjs: server_error', error));

  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

function stop() {
  server.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
