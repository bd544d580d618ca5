// panva's node-oidc-provider (npm `oidc-provider@9`), configured like Warden for the token
// benchmark (bench/token.sh): client_secret_basic confidential clients, resource indicators
// (RFC 8707) with one resource server whose access tokens are ES256-signed JWTs, the
// client_credentials grant, and introspection.
//
// oidc-provider refuses to introspect structured (JWT) access tokens ("Structured JWT Tokens
// cannot be introspected via the introspection_endpoint"), so a second resource indicator,
// OIDC_OPAQUE_RESOURCE, issues opaque tokens: those are what its introspection scenario
// measures. Tokens live in the provider's default in-memory adapter.
//
// Environment (all required, set by bench/token.sh):
//   OIDC_PORT                      loopback port to listen on
//   OIDC_JWT_RESOURCE              resource indicator whose tokens are JWTs
//   OIDC_OPAQUE_RESOURCE           resource indicator whose tokens are opaque
//   OIDC_CLIENT_ID / _SECRET       the machine client (client_credentials)
//   OIDC_RS_CLIENT_ID / _SECRET    the resource server client that introspects
// Prints one line `{"ready":true,...}` on stdout once it listens.

import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

function env(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`server.mjs: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

const port = Number(env('OIDC_PORT'));
const issuer = `http://127.0.0.1:${port}`;
const jwtResource = env('OIDC_JWT_RESOURCE');
const opaqueResource = env('OIDC_OPAQUE_RESOURCE');
const SCOPE = 'bench:read';

// One P-256 signing key, made fresh for the run (Warden's default alg is ES256 too).
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: 'bench-es256' };

const client = (id, secret) => ({
  client_id: id,
  client_secret: secret,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
  scope: SCOPE,
});

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey] },
  clients: [
    client(env('OIDC_CLIENT_ID'), env('OIDC_CLIENT_SECRET')),
    client(env('OIDC_RS_CLIENT_ID'), env('OIDC_RS_CLIENT_SECRET')),
  ],
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  scopes: ['openid', SCOPE],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo(_ctx, resourceIndicator) {
        const common = { scope: SCOPE, audience: resourceIndicator, accessTokenTTL: 15 * 60 };
        if (resourceIndicator === jwtResource) {
          return { ...common, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
        }
        if (resourceIndicator === opaqueResource) {
          return { ...common, accessTokenFormat: 'opaque' };
        }
        throw new Provider.errors.InvalidTarget();
      },
    },
  },
  ttl: { ClientCredentials: 15 * 60 },
});

provider.listen(port, '127.0.0.1');
// Written once the listener is up (listen() binds synchronously enough for a loopback
// client that retries, and token.sh also polls discovery before loading it).
process.stdout.write(`${JSON.stringify({ ready: true, issuer })}\n`);

const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
