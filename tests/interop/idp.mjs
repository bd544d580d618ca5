// The organisation's identity provider for the federated sign-in tests: panva's
// `oidc-provider` (OpenID Certified), with one confidential client for Warden and users
// whose ID tokens carry a `groups` claim.
//
//   node idp.mjs CONFIG_JSON
//
// CONFIG_JSON: {"port": 0, "clients": [{"client_id", "client_secret", "redirect_uris"}],
//               "users": {"alice": {"email", "name", "groups": ["eng"]}}}
// A port of 0 picks a free one. Prints "READY <issuer>" once listening, then a line per
// request ("REQ <method> <path>") so a test can see what Warden asked for.
//
// Sign-in uses oidc-provider's development interactions: a form with `login` (the
// account id, one of `users`) and `password` (any), then a consent form.
import http from "node:http";
import Provider from "oidc-provider";

const config = JSON.parse(process.argv[2] ?? "{}");
const users = config.users ?? {};

const server = http.createServer();
await new Promise((resolve) => server.listen(config.port ?? 0, "127.0.0.1", resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: (config.clients ?? []).map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: c.token_endpoint_auth_method ?? "client_secret_basic",
  })),
  async findAccount(_ctx, id) {
    const user = users[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: user.email,
          email_verified: true,
          name: user.name ?? id,
          preferred_username: id,
          groups: user.groups ?? [],
        };
      },
    };
  },
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "preferred_username"],
    groups: ["groups"],
  },
  scopes: ["openid", "email", "profile", "groups"],
  // Scope-requested claims go into the ID token, as Okta's and Entra's `groups` do.
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: true },
  },
  pkce: { required: () => true },
  cookies: { keys: ["warden-interop-idp-cookie-key"] },
  ttl: { IdToken: 300, AccessToken: 300, Session: 600, Interaction: 600, Grant: 600 },
  // RFC 9207: the authorization response carries `iss` (and discovery says so).
  // oidc-provider always sends it; nothing to configure.
});
provider.proxy = false;

const callback = provider.callback();
server.on("request", (req, res) => {
  process.stdout.write(`REQ ${req.method} ${req.url.split("?")[0]}\n`);
  callback(req, res);
});
process.stdout.write(`READY ${issuer}\n`);
