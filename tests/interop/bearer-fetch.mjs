// Preload (`node --import ./bearer-fetch.mjs …`) that gives a token to a program with no
// option for one, such as `conformance server`: every HTTP request to the origin in
// WARDEN_BEARER_ORIGIN (scheme://host:port, compared exactly) gets
// `Authorization: Bearer $WARDEN_BEARER`, unless it already carries an Authorization
// header. Requests to any other origin are left alone, so the token goes nowhere else.
//
// Two paths are covered: the global `fetch` (the MCP SDK's transport and most of the
// suite), and undici's global dispatcher (the suite sends its raw Host/Origin probes with
// `undici.request`, which bypasses `fetch`).
import { getGlobalDispatcher, setGlobalDispatcher } from "undici";

const token = process.env.WARDEN_BEARER;
const target = process.env.WARDEN_BEARER_ORIGIN;
if (!token || !target) {
  throw new Error("bearer-fetch.mjs needs WARDEN_BEARER and WARDEN_BEARER_ORIGIN");
}
const origin = new URL(target).origin;
const value = `Bearer ${token}`;

function sameOrigin(url) {
  try {
    return new URL(String(url)).origin === origin;
  } catch {
    return false;
  }
}

const innerFetch = globalThis.fetch;
globalThis.fetch = function bearerFetch(input, init) {
  const url = input instanceof Request ? input.url : String(input);
  if (!sameOrigin(url)) {
    return innerFetch(input, init);
  }
  const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
  if (!headers.has("authorization")) {
    headers.set("authorization", value);
  }
  return innerFetch(input, { ...init, headers });
};

// Dispatch options carry headers as an object, a flat [name, value, …] array, or null.
function withBearer(headers) {
  if (headers == null) {
    return { authorization: value };
  }
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === "authorization") return headers;
    }
    return [...headers, "authorization", value];
  }
  if (typeof headers[Symbol.iterator] === "function") {
    return withBearer([...headers].flat());
  }
  if (Object.keys(headers).some((k) => k.toLowerCase() === "authorization")) {
    return headers;
  }
  return { ...headers, authorization: value };
}

setGlobalDispatcher(
  getGlobalDispatcher().compose((dispatch) => (opts, handler) => {
    if (sameOrigin(opts.origin)) {
      opts = { ...opts, headers: withBearer(opts.headers) };
    }
    return dispatch(opts, handler);
  }),
);
