//! The gateway's one error type and its one mapping to HTTP.
//!
//! Every refusal becomes a status, an RFC 6750 `WWW-Authenticate` challenge where one
//! applies (always with `resource_metadata` on 401 and 403), and a JSON-RPC error body,
//! in the single exhaustive `match` of `GatewayError::parts`. The detail of a rejected
//! token ([`Rejection`]) goes to the audit and debug logs; the client gets generic text.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use warden_core::dpop::{DpopError, Endpoint, SUPPORTED_ALGORITHMS};
use warden_core::scope::ScopeSet;

use super::journal::Decision;
use super::jsonrpc::{
    self, FORBIDDEN, HEADER_MISMATCH, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR,
    SERVER_ERROR, SESSION_NOT_FOUND,
};
use super::registry::Protected;
use super::upstream_auth::CredentialError;
use super::validate::Rejection;

/// Why the gateway refused a request.
#[derive(Debug)]
pub enum GatewayError {
    /// No server is registered under this name.
    UnknownServer,
    /// The server's registration is invalid or the registry is unreachable.
    ServerUnavailable,
    /// Not `GET`, `POST`, `DELETE` or `OPTIONS`.
    MethodNotAllowed,
    /// `Origin` is present and not allowed (DNS-rebinding defence).
    ForbiddenOrigin,
    /// An `access_token` query parameter.
    TokenInQuery,
    /// An `Authorization` header that is not one well-formed Bearer credential.
    MalformedAuthorization,
    /// No token.
    MissingToken,
    /// The token failed validation.
    InvalidToken(Rejection),
    /// The request's DPoP proof, or the token's binding to a key, is refused (RFC 9449
    /// §7.1, §7.2).
    Dpop(DpopError),
    /// The DPoP replay table could not be asked: no verdict on the proof, so not a 401.
    ReplayCheckUnavailable,
    /// The server's external issuer could not be asked about the token (keys or
    /// introspection unavailable): no verdict, so not a 401.
    IssuerUnavailable(&'static str),
    /// The token lacks the scope this call needs.
    InsufficientScope {
        /// The JSON-RPC id, echoed.
        id: Value,
        /// The scopes that would allow the call.
        needed: ScopeSet,
        /// The scopes the token has.
        granted: ScopeSet,
        /// What was called, for the message: `tool notes_write`.
        target: String,
    },
    /// No scope can allow this call: it is unmapped, or outside the session's
    /// declared tools.
    NotPermitted {
        /// The JSON-RPC id, echoed.
        id: Value,
        /// Why, for the client: names the tool, never token material.
        message: String,
    },
    /// The session id is unknown, or belongs to another identity or server.
    SessionNotFound {
        /// The JSON-RPC id, echoed.
        id: Value,
    },
    /// The body is not JSON.
    Parse,
    /// A JSON-RPC batch.
    Batch,
    /// JSON, but not a JSON-RPC message.
    InvalidMessage {
        /// The JSON-RPC id, echoed.
        id: Value,
        /// What is wrong.
        message: &'static str,
    },
    /// The parameters authorization needs are missing or malformed.
    InvalidParams {
        /// The JSON-RPC id, echoed.
        id: Value,
        /// What is wrong.
        message: &'static str,
    },
    /// `Mcp-Method`/`Mcp-Name` disagree with the body, or are missing when required.
    HeaderMismatch {
        /// The JSON-RPC id, echoed.
        id: Value,
        /// Which header.
        message: &'static str,
    },
    /// The body exceeds the gateway's limit.
    PayloadTooLarge,
    /// The upstream refused the connection or failed mid-request.
    UpstreamUnavailable {
        /// The JSON-RPC id, echoed.
        id: Value,
    },
    /// The upstream did not answer in time.
    UpstreamTimeout {
        /// The JSON-RPC id, echoed.
        id: Value,
    },
    /// No credential could be had from the upstream's own authorization server
    /// (`upstream_auth` client-credentials or token-exchange).
    UpstreamCredential {
        /// The JSON-RPC id, echoed.
        id: Value,
        /// Why.
        failure: CredentialError,
    },
    /// Something that should not fail did; the detail is logged, not sent.
    Internal(&'static str),
}

/// How a [`GatewayError`] is sent.
struct Parts {
    status: StatusCode,
    /// `error`, `error_description` for the challenge, if one is sent.
    challenge: Option<Challenge>,
    id: Value,
    code: i64,
    message: String,
    data: Option<Value>,
}

enum Challenge {
    /// `Bearer resource_metadata, scope` (no error: no credentials were sent).
    Plain,
    /// A DPoP error (RFC 9449 §7.1): `DPoP error=…, error_description=…, algs,
    /// resource_metadata`, beside the plain Bearer challenge.
    Dpop {
        error: &'static str,
        description: &'static str,
    },
    /// `Bearer error=…, error_description=…, resource_metadata, scope`.
    Error {
        error: &'static str,
        description: &'static str,
        /// Overrides the server's default challenge scope (step-up).
        scope: Option<String>,
    },
}

// === impl GatewayError ===

impl GatewayError {
    /// The decision this refusal records: a deny when the request was refused, an error
    /// when the gateway could not decide or deliver.
    pub fn decision(&self) -> Decision {
        match self {
            GatewayError::UnknownServer
            | GatewayError::MethodNotAllowed
            | GatewayError::ForbiddenOrigin
            | GatewayError::TokenInQuery
            | GatewayError::MalformedAuthorization
            | GatewayError::MissingToken
            | GatewayError::InvalidToken(_)
            | GatewayError::Dpop(_)
            | GatewayError::InsufficientScope { .. }
            | GatewayError::NotPermitted { .. }
            | GatewayError::SessionNotFound { .. }
            | GatewayError::Parse
            | GatewayError::Batch
            | GatewayError::InvalidMessage { .. }
            | GatewayError::InvalidParams { .. }
            | GatewayError::HeaderMismatch { .. }
            | GatewayError::PayloadTooLarge => Decision::Deny,
            GatewayError::ServerUnavailable
            | GatewayError::IssuerUnavailable(_)
            | GatewayError::ReplayCheckUnavailable
            | GatewayError::UpstreamUnavailable { .. }
            | GatewayError::UpstreamTimeout { .. }
            | GatewayError::UpstreamCredential { .. }
            | GatewayError::Internal(_) => Decision::Error,
        }
    }

    /// A short reason for the audit log and metrics (no token material).
    pub fn reason(&self) -> String {
        match self {
            GatewayError::InvalidToken(r) => format!("invalid_token: {r}"),
            GatewayError::Dpop(e) => {
                format!("{}: {}", e.error_code(Endpoint::Resource), e.reason())
            }
            GatewayError::IssuerUnavailable(why) => format!("issuer_unavailable: {why}"),
            GatewayError::InsufficientScope { needed, target, .. } => {
                format!("insufficient_scope: {target} needs {needed}")
            }
            GatewayError::NotPermitted { message, .. } => format!("not_permitted: {message}"),
            GatewayError::UpstreamCredential { failure, .. } => {
                format!(
                    "upstream_credential_{}: {}",
                    failure.label(),
                    failure.detail()
                )
            }
            other => other.parts().message,
        }
    }

    /// The response, with challenges built for `server` (absent for an unknown server).
    pub fn into_response(self, server: Option<&Protected>) -> Response {
        let parts = self.parts();
        let body = jsonrpc::error_body(&parts.id, parts.code, &parts.message, parts.data);
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = parts.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let (Some(challenge), Some(server)) = (parts.challenge, server) {
            for value in challenge.render(server, parts.status) {
                if let Ok(value) = HeaderValue::try_from(value) {
                    headers.append(header::WWW_AUTHENTICATE, value);
                }
            }
        }
        if parts.status == StatusCode::METHOD_NOT_ALLOWED {
            headers.insert(
                header::ALLOW,
                HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
            );
        }
        if parts.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(crate::health::RETRY_AFTER_SECS),
            );
        }
        if parts.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body is left unread: the connection cannot carry another
            // request, and a keep-alive client must know before it sends one.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }

    fn parts(&self) -> Parts {
        let plain = |status: StatusCode, code: i64, message: &str| Parts {
            status,
            challenge: None,
            id: Value::Null,
            code,
            message: message.to_owned(),
            data: None,
        };
        match self {
            GatewayError::UnknownServer => plain(
                StatusCode::NOT_FOUND,
                SERVER_ERROR,
                "Not Found: no such MCP server",
            ),
            GatewayError::ServerUnavailable => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                SERVER_ERROR,
                "Service Unavailable: this MCP server is not available",
            ),
            GatewayError::MethodNotAllowed => plain(
                StatusCode::METHOD_NOT_ALLOWED,
                SERVER_ERROR,
                "Method Not Allowed",
            ),
            GatewayError::ForbiddenOrigin => plain(
                StatusCode::FORBIDDEN,
                SERVER_ERROR,
                "Forbidden: Origin not allowed",
            ),
            GatewayError::TokenInQuery => Parts {
                challenge: Some(Challenge::Error {
                    error: "invalid_request",
                    description: "access tokens are accepted only in the Authorization header",
                    scope: None,
                }),
                ..plain(
                    StatusCode::BAD_REQUEST,
                    SERVER_ERROR,
                    "Bad Request: access tokens are accepted only in the Authorization header",
                )
            },
            GatewayError::MalformedAuthorization => Parts {
                challenge: Some(Challenge::Error {
                    error: "invalid_request",
                    description: "malformed Authorization header",
                    scope: None,
                }),
                ..plain(
                    StatusCode::BAD_REQUEST,
                    SERVER_ERROR,
                    "Bad Request: malformed Authorization header",
                )
            },
            GatewayError::MissingToken => Parts {
                challenge: Some(Challenge::Plain),
                ..plain(
                    StatusCode::UNAUTHORIZED,
                    SERVER_ERROR,
                    "Unauthorized: an access token is required",
                )
            },
            GatewayError::InvalidToken(_) => Parts {
                challenge: Some(Challenge::Error {
                    error: "invalid_token",
                    description: "the access token is invalid, expired or revoked",
                    scope: None,
                }),
                ..plain(
                    StatusCode::UNAUTHORIZED,
                    SERVER_ERROR,
                    "Unauthorized: the access token is invalid, expired or revoked",
                )
            },
            GatewayError::Dpop(e) => Parts {
                challenge: Some(Challenge::Dpop {
                    error: e.error_code(Endpoint::Resource),
                    description: e.client_description(Endpoint::Resource),
                }),
                ..plain(
                    StatusCode::UNAUTHORIZED,
                    SERVER_ERROR,
                    &format!("Unauthorized: {}", e.client_description(Endpoint::Resource)),
                )
            },
            GatewayError::ReplayCheckUnavailable => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                SERVER_ERROR,
                "Service Unavailable: the DPoP proof cannot be checked now; try again later",
            ),
            GatewayError::IssuerUnavailable(_) => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                SERVER_ERROR,
                "Service Unavailable: the token issuer cannot be reached; try again later",
            ),
            GatewayError::InsufficientScope {
                id,
                needed,
                granted,
                target,
            } => {
                let step_up = granted.union(needed).to_string();
                Parts {
                    status: StatusCode::FORBIDDEN,
                    challenge: Some(Challenge::Error {
                        error: "insufficient_scope",
                        description: "the access token lacks a scope this call needs",
                        scope: Some(step_up.clone()),
                    }),
                    id: id.clone(),
                    code: FORBIDDEN,
                    message: format!("Forbidden: {target} requires scope {needed}"),
                    data: Some(json!({ "requiredScope": needed.to_string(), "scope": step_up })),
                }
            }
            GatewayError::NotPermitted { id, message } => Parts {
                id: id.clone(),
                ..plain(
                    StatusCode::FORBIDDEN,
                    FORBIDDEN,
                    &format!("Forbidden: {message}"),
                )
            },
            GatewayError::SessionNotFound { id } => Parts {
                id: id.clone(),
                ..plain(
                    StatusCode::NOT_FOUND,
                    SESSION_NOT_FOUND,
                    "Session not found",
                )
            },
            GatewayError::Parse => plain(StatusCode::BAD_REQUEST, PARSE_ERROR, "Parse error"),
            GatewayError::Batch => plain(
                StatusCode::BAD_REQUEST,
                INVALID_REQUEST,
                "Invalid Request: JSON-RPC batches are not supported",
            ),
            GatewayError::InvalidMessage { id, message } => Parts {
                id: id.clone(),
                ..plain(StatusCode::BAD_REQUEST, INVALID_REQUEST, message)
            },
            GatewayError::InvalidParams { id, message } => Parts {
                id: id.clone(),
                ..plain(
                    StatusCode::BAD_REQUEST,
                    INVALID_PARAMS,
                    &format!("Invalid params: {message}"),
                )
            },
            GatewayError::HeaderMismatch { id, message } => Parts {
                id: id.clone(),
                ..plain(
                    StatusCode::BAD_REQUEST,
                    HEADER_MISMATCH,
                    &format!("Header mismatch: {message}"),
                )
            },
            GatewayError::PayloadTooLarge => plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                SERVER_ERROR,
                "Payload Too Large",
            ),
            GatewayError::UpstreamUnavailable { id } => Parts {
                id: id.clone(),
                ..plain(
                    StatusCode::BAD_GATEWAY,
                    SERVER_ERROR,
                    "Bad Gateway: the MCP server is unavailable",
                )
            },
            GatewayError::UpstreamTimeout { id } => Parts {
                id: id.clone(),
                ..plain(
                    StatusCode::GATEWAY_TIMEOUT,
                    SERVER_ERROR,
                    "Gateway Timeout: the MCP server did not answer in time",
                )
            },
            GatewayError::UpstreamCredential { id, failure } => {
                let (status, message) = match failure {
                    CredentialError::Unavailable(_) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Service Unavailable: the MCP server's authorization server cannot be \
                         reached; try again later",
                    ),
                    CredentialError::Refused(_) => (
                        StatusCode::BAD_GATEWAY,
                        "Bad Gateway: the MCP server's authorization server refused the \
                         gateway's credentials",
                    ),
                    CredentialError::Internal(_) => {
                        (StatusCode::INTERNAL_SERVER_ERROR, "Internal error")
                    }
                };
                Parts {
                    id: id.clone(),
                    ..plain(status, SERVER_ERROR, message)
                }
            }
            GatewayError::Internal(_) => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                INTERNAL_ERROR,
                "Internal error",
            ),
        }
    }

    /// The HTTP status this error is sent with.
    pub fn status(&self) -> StatusCode {
        self.parts().status
    }
}

impl From<Rejection> for GatewayError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::IssuerUnavailable(why) => GatewayError::IssuerUnavailable(why),
            other => GatewayError::InvalidToken(other),
        }
    }
}

// === impl Challenge ===

impl Challenge {
    /// The `WWW-Authenticate` values: the Bearer challenge (RFC 6750 §3), then on a 401
    /// the DPoP challenge (RFC 9449 §7.1) with the algorithms proofs may use, so that a
    /// client learns both ways to present a token. The error goes on the challenge of
    /// the scheme it concerns; both carry `resource_metadata` (RFC 9728 §5.1).
    fn render(&self, server: &Protected, status: StatusCode) -> Vec<String> {
        let metadata = format!(
            "resource_metadata=\"{}\"",
            quoted(&server.resource_metadata)
        );
        let mut bearer = String::from("Bearer ");
        if let Challenge::Error {
            error, description, ..
        } = self
        {
            bearer.push_str(&format!(
                "error=\"{error}\", error_description=\"{description}\", "
            ));
        }
        let scope = match self {
            Challenge::Error {
                scope: Some(scope), ..
            } => scope.as_str(),
            _ => server.challenge_scope.as_str(),
        };
        bearer.push_str(&metadata);
        if !scope.is_empty() {
            bearer.push_str(&format!(", scope=\"{}\"", quoted(scope)));
        }
        // A server that takes only bound tokens offers only the DPoP scheme on a 401.
        let mut values = if server.require_dpop && status == StatusCode::UNAUTHORIZED {
            Vec::new()
        } else {
            vec![bearer]
        };
        if status == StatusCode::UNAUTHORIZED {
            let mut dpop = String::from("DPoP ");
            if let Challenge::Dpop { error, description } = self {
                dpop.push_str(&format!(
                    "error=\"{error}\", error_description=\"{description}\", "
                ));
            }
            dpop.push_str(&format!(
                "algs=\"{}\", {metadata}",
                SUPPORTED_ALGORITHMS.join(" ")
            ));
            if !scope.is_empty() {
                dpop.push_str(&format!(", scope=\"{}\"", quoted(scope)));
            }
            values.push(dpop);
        }
        values
    }
}

/// Escapes a value for an RFC 7230 quoted-string.
fn quoted(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}
