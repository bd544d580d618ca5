//! The admin API's one error boundary: every failure becomes an [`AdminError`], and
//! this file alone turns one into a status, a `WWW-Authenticate` challenge and a
//! `{error, error_description}` body.

use std::borrow::Cow;
use std::fmt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use warden_proto::admin::PolicyProblem;
use warden_proto::oauth::ErrorBody;
use warden_store::StoreError;

/// Why an admin call failed.
#[derive(Debug)]
pub enum AdminError {
    /// No usable bearer token: missing, malformed, invalid, expired, revoked, or issued
    /// for another resource. 401 with an RFC 6750 challenge.
    Unauthenticated {
        /// Whether a bearer token was presented (the challenge then says `invalid_token`).
        presented: bool,
        /// The resource's RFC 9728 metadata URL, for the challenge.
        resource_metadata: String,
    },
    /// The token is valid but does not allow this call. 403 `insufficient_scope`.
    InsufficientScope {
        /// The scope the call needs.
        required: &'static str,
        /// Why, for the caller.
        description: Cow<'static, str>,
        /// The resource's RFC 9728 metadata URL, for the challenge.
        resource_metadata: String,
    },
    /// The request is malformed or asks for something invalid. 400.
    InvalidRequest(Cow<'static, str>),
    /// A policy document was refused: every problem, each with its line. 400, with the
    /// problems in the body's `errors`.
    InvalidPolicy(Vec<PolicyProblem>),
    /// The named object does not exist. 404.
    NotFound(Cow<'static, str>),
    /// The change collides with existing state (duplicate, rotation in progress). 409.
    Conflict(Cow<'static, str>),
    /// The object changed since the version the caller named (`If-Match`). 412.
    PreconditionFailed(Cow<'static, str>),
    /// The admin API cannot serve now. 503; the detail is in the log.
    Unavailable(Cow<'static, str>),
    /// The store failed. 503 if retrying may help, else 500; the detail is in the log.
    Store(StoreError),
    /// Anything else that is our fault. 500; the detail is in the log.
    Internal(Cow<'static, str>),
}

// === impl AdminError ===

impl AdminError {
    /// The machine-readable code of the body's `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::Unauthenticated { .. } => "invalid_token",
            AdminError::InsufficientScope { .. } => "insufficient_scope",
            AdminError::InvalidRequest(_) | AdminError::InvalidPolicy(_) => "invalid_request",
            AdminError::NotFound(_) => "not_found",
            AdminError::Conflict(_) => "conflict",
            AdminError::PreconditionFailed(_) => "precondition_failed",
            AdminError::Unavailable(_) => "temporarily_unavailable",
            AdminError::Store(e) if e.is_transient() => "temporarily_unavailable",
            AdminError::Store(_) | AdminError::Internal(_) => "server_error",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            AdminError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            AdminError::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            AdminError::InvalidRequest(_) | AdminError::InvalidPolicy(_) => StatusCode::BAD_REQUEST,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            AdminError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Store(e) if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Store(_) | AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The full detail, for the local CLI (whose user owns the data dir) and the log;
    /// never sent over HTTP.
    pub fn detail(&self) -> String {
        match self {
            AdminError::Store(e) => format!("database: {e}"),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for AdminError {
    /// The description a caller sees: never a library's message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::Unauthenticated {
                presented: false, ..
            } => f.write_str("an admin access token is required"),
            AdminError::Unauthenticated {
                presented: true, ..
            } => f.write_str(
                "the access token is invalid, expired, revoked or not issued for the admin API",
            ),
            AdminError::InsufficientScope { description, .. } => f.write_str(description),
            AdminError::InvalidPolicy(problems) => {
                write!(
                    f,
                    "{} error(s) in the policy; nothing was changed",
                    problems.len()
                )?;
                for p in problems {
                    match p.line {
                        Some(l) => write!(f, "\nline {l}: {}", p.message)?,
                        None => write!(f, "\n{}", p.message)?,
                    }
                }
                Ok(())
            }
            AdminError::InvalidRequest(d)
            | AdminError::NotFound(d)
            | AdminError::Conflict(d)
            | AdminError::PreconditionFailed(d)
            | AdminError::Unavailable(d)
            | AdminError::Internal(d) => f.write_str(d),
            AdminError::Store(e) if e.is_transient() => f.write_str("try again shortly"),
            AdminError::Store(_) => f.write_str("internal error"),
        }
    }
}

impl std::error::Error for AdminError {}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Store(e)
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = self.status();
        let challenge = match &self {
            AdminError::Unauthenticated {
                presented,
                resource_metadata,
            } => Some(if *presented {
                format!(
                    "Bearer realm=\"warden-admin\", error=\"invalid_token\", error_description=\"{self}\", resource_metadata=\"{resource_metadata}\""
                )
            } else {
                format!("Bearer realm=\"warden-admin\", resource_metadata=\"{resource_metadata}\"")
            }),
            AdminError::InsufficientScope {
                required,
                resource_metadata,
                ..
            } => Some(format!(
                "Bearer realm=\"warden-admin\", error=\"insufficient_scope\", scope=\"{required}\", resource_metadata=\"{resource_metadata}\""
            )),
            AdminError::Store(e) => {
                tracing::error!(error = %e, "store failure on an admin endpoint");
                None
            }
            AdminError::Internal(d) | AdminError::Unavailable(d) => {
                tracing::error!(error = %d, "admin endpoint failed");
                None
            }
            AdminError::InvalidRequest(_)
            | AdminError::InvalidPolicy(_)
            | AdminError::NotFound(_)
            | AdminError::Conflict(_)
            | AdminError::PreconditionFailed(_) => None,
        };
        let mut resp = if let AdminError::InvalidPolicy(problems) = &self {
            // The OAuth-style body, with each problem and its line besides.
            let body = json!({
                "error": self.code(),
                "error_description": self.to_string(),
                "errors": problems,
            });
            (status, Json(body)).into_response()
        } else {
            let body = ErrorBody {
                error: self.code().to_owned(),
                error_description: Some(self.to_string()),
            };
            (status, Json(body)).into_response()
        };
        if let Some(c) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
        resp
    }
}
