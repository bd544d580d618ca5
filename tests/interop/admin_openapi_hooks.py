"""Schemathesis hooks for the admin API run (crates/warden/tests/cli/admin_openapi.rs).

Loaded through SCHEMATHESIS_HOOKS. Two things the generic fuzzer cannot know:

* `PUT /admin/v1/policy` takes `application/toml`, a media type schemathesis has no
  serializer for; the document declares its body as a string, so the string is sent as
  UTF-8 text. Without this the operation would only ever be called without a body.
* The run authenticates as an admin client. `GET /admin/v1/clients` lists that client,
  and a `DELETE /admin/v1/clients/{client}` of it would turn every later call into a
  401, hiding everything the rest of the run could find; so would a
  `PATCH /admin/v1/clients/{client}` that drops its scopes or grant. The ids and names
  in WARDEN_PROTECTED_CLIENTS (comma-separated; the API finds a client by either) are
  swapped for an unknown id just before either call, so the operation is still
  exercised (it answers 404).
"""

import os

import schemathesis

PROTECTED_CLIENTS = {
    c for c in os.environ.get("WARDEN_PROTECTED_CLIENTS", "").split(",") if c
}
STAND_IN_CLIENT = "protected-admin-client"


@schemathesis.serializer("application/toml")
def toml_serializer(ctx, value):
    if isinstance(value, bytes):
        return {"data": value}
    if not isinstance(value, str):
        # Negative cases may generate a non-string; send its text so the server sees it.
        value = repr(value)
    return {"data": value.encode("utf-8")}


@schemathesis.hook
def before_call(ctx, case, kwargs):
    if case.method.upper() not in ("DELETE", "PATCH") or case.path != "/admin/v1/clients/{client}":
        return
    client = (case.path_parameters or {}).get("client")
    if isinstance(client, str) and client in PROTECTED_CLIENTS:
        case.path_parameters["client"] = STAND_IN_CLIENT
