// A DPoP client built on oauth4webapi (RFC 9449), against Warden: a client-credentials
// token bound to a fresh ES256 key (retrying once on `use_dpop_nonce`), an MCP session and
// a tool call through the gateway with proofs, then what someone without the key could
// try: the same request and proof replayed, the token without a proof, and the token as
// a bearer token. Prints one JSON object with what happened.
//
// Environment: WARDEN_ISSUER, WARDEN_CLIENT_ID, WARDEN_CLIENT_SECRET, WARDEN_RESOURCE.
import * as oauth from "oauth4webapi";

const issuer = new URL(process.env.WARDEN_ISSUER);
const resource = process.env.WARDEN_RESOURCE;
// Warden runs on loopback http in the test.
const insecure = { [oauth.allowInsecureRequests]: true };

const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }),
);
const client = { client_id: process.env.WARDEN_CLIENT_ID };
const auth = oauth.ClientSecretBasic(process.env.WARDEN_CLIENT_SECRET);
const DPoP = oauth.DPoP(client, await oauth.generateKeyPair("ES256"));

// A request that may be refused once for a nonce: the DPoP handle keeps the nonce it was
// sent, so the second try carries it.
let nonceRetries = 0;
async function withNonce(request) {
  try {
    return await request();
  } catch (e) {
    if (oauth.isDPoPNonceError(e)) {
      nonceRetries += 1;
      return request();
    }
    throw e;
  }
}

const token = await withNonce(async () =>
  oauth.processClientCredentialsResponse(
    as,
    client,
    await oauth.clientCredentialsGrantRequest(
      as,
      client,
      auth,
      new URLSearchParams({ resource }),
      { DPoP, ...insecure },
    ),
  ),
);

// The last request the gateway was sent, to replay it as is.
let last;
const recording = (url, init) => {
  last = { url, method: init.method, headers: new Headers(init.headers), body: init.body };
  return fetch(url, init);
};

function mcpHeaders(session) {
  const h = new Headers({
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-protocol-version": "2025-06-18",
  });
  if (session) h.set("mcp-session-id", session);
  return h;
}

async function mcp(message, session) {
  return withNonce(() =>
    oauth.protectedResourceRequest(
      token.access_token,
      "POST",
      new URL(resource),
      mcpHeaders(session),
      JSON.stringify(message),
      { DPoP, ...insecure, [oauth.customFetch]: recording },
    ),
  );
}

const init = await mcp({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: {
    protocolVersion: "2025-06-18",
    capabilities: {},
    clientInfo: { name: "dpop-interop", version: "1.0.0" },
  },
});
await init.text();
const session = init.headers.get("mcp-session-id");
const call = await mcp(
  { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "whoami", arguments: {} } },
  session,
);
const callBody = await call.text();

// Without the key: the very same request, proof and all.
const replay = await fetch(last.url, { method: last.method, headers: last.headers, body: last.body });
const replayChallenge = replay.headers.get("www-authenticate");
// The token with no proof, and the token as a bearer token.
const bare = mcpHeaders(session);
bare.set("authorization", `DPoP ${token.access_token}`);
const noProof = await fetch(resource, { method: "POST", headers: bare, body: last.body });
bare.set("authorization", `Bearer ${token.access_token}`);
const asBearer = await fetch(resource, { method: "POST", headers: bare, body: last.body });

console.log(
  JSON.stringify({
    token_type: token.token_type,
    nonce_retries: nonceRetries,
    initialize: init.status,
    session: Boolean(session),
    call: call.status,
    call_has_result: callBody.includes('"result"'),
    replay: replay.status,
    replay_challenge: replayChallenge,
    no_proof: noProof.status,
    as_bearer: asBearer.status,
  }),
);
