// The official MCP TypeScript SDK client, end to end against Warden's gateway:
// discovery (401 → protected-resource metadata → authorization-server metadata),
// registration (pre-registered client id, or dynamic registration when given "-"),
// authorization code + PKCE (the test harness plays the user: we print the URL and
// read back the redirect), a session with an SSE-streamed tool call, and a refresh once
// the access token expired.
//
//   node sdk_client.mjs SERVER_URL CLIENT_ID|- REDIRECT_URI [--no-refresh]
//
// With --no-refresh the client stops after the tool calls (no wait for expiry).
//
// Protocol on stdout: "AUTHORIZE <url>" (then a "CALLBACK <url>" line is read from
// stdin), and finally "RESULT <json>". Exit 0 only if every check passed.
import readline from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { auth, UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

const [serverUrl, clientIdArg, redirectUri, mode] = process.argv.slice(2);
const refresh = mode !== "--no-refresh";
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

class Provider {
  constructor() {
    this._client = clientIdArg === "-" ? undefined : { client_id: clientIdArg };
    this._tokens = undefined;
    this._verifier = undefined;
    this.authorizationUrl = undefined;
    this.registered = false;
  }
  get redirectUrl() { return redirectUri; }
  get clientMetadata() {
    return {
      client_name: "warden-interop-ts",
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() { return this._client; }
  saveClientInformation(info) {
    // The SDK also re-saves pre-registered information stamped with its issuer.
    if (info.client_id !== this._client?.client_id) this.registered = true;
    this._client = info;
  }
  tokens() { return this._tokens; }
  saveTokens(t) { this._tokens = t; }
  redirectToAuthorization(url) { this.authorizationUrl = url; }
  saveCodeVerifier(v) { this._verifier = v; }
  codeVerifier() { return this._verifier; }
}

const provider = new Provider();
const fail = (msg) => { console.log("RESULT " + JSON.stringify({ ok: false, error: msg })); process.exit(1); };

async function connect() {
  const client = new Client({ name: "warden-interop-ts", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider });
  await client.connect(transport);
  return { client, transport };
}

let session;
try {
  session = await connect();
  fail("the gateway let an unauthenticated client in");
} catch (e) {
  if (!(e instanceof UnauthorizedError) || !provider.authorizationUrl) fail("expected an authorization redirect, got " + e);
}
const authUrl = provider.authorizationUrl;
console.log("AUTHORIZE " + authUrl.href);
const { value: callbackLine } = await lines.next();
const callback = new URL(callbackLine.replace(/^CALLBACK /, ""));
const code = callback.searchParams.get("code");
if (!code) fail("no code in " + callback);
if (callback.searchParams.get("state") !== authUrl.searchParams.get("state")) fail("state mismatch");
if (!callback.searchParams.get("iss")) fail("no iss in the authorization response");
{
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider });
  await transport.finishAuth(code);
}
const first = provider.tokens();
if (!first?.access_token || !first?.refresh_token) fail("no tokens after the code exchange");

session = await connect();
const tools = (await session.client.listTools()).tools.map((t) => t.name).sort();
const progress = [];
const listed = await session.client.callTool({ name: "notes_list", arguments: {} }, undefined, {
  onprogress: (p) => progress.push(p.progress),
});
const who = await session.client.callTool({ name: "whoami", arguments: {} });
const whoText = JSON.stringify(who);
if (whoText.includes(first.access_token)) fail("the upstream saw the client's token");
await session.client.close();

if (!refresh) {
  console.log("RESULT " + JSON.stringify({
    ok: true,
    resource: authUrl.searchParams.get("resource"),
    scope: authUrl.searchParams.get("scope"),
    tools,
    listed_is_error: listed.isError === true,
    who: who.structuredContent ?? null,
  }));
  process.exit(0);
}

// Refresh after expiry: outwait the access token (the server gives 30 s tokens and no
// leeway), check that the gateway now refuses it, then let the SDK meet that 401 and
// refresh on its own (rotating the refresh token) before it retries.
await new Promise((r) => setTimeout(r, (first.expires_in + 1) * 1000));
const expired = await fetch(serverUrl, {
  method: "POST",
  headers: {
    authorization: "Bearer " + first.access_token,
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
  },
  body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
});
session = await connect();
const again = await session.client.callTool({ name: "notes_list", arguments: {} });
await session.client.close();
const second = provider.tokens();
if (second.refresh_token === first.refresh_token) fail("the refresh token was not rotated");
if (second.access_token === first.access_token) fail("no new access token");

console.log("RESULT " + JSON.stringify({
  ok: true,
  registered_dynamically: provider.registered,
  resource: authUrl.searchParams.get("resource"),
  scope: authUrl.searchParams.get("scope"),
  tools,
  progress,
  listed_is_error: listed.isError === true,
  expired_status: expired.status,
  after_refresh_is_error: again.isError === true,
  who: who.structuredContent ?? null,
}));
process.exit(0);
