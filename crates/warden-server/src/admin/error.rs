//! The admin API's one error boundary: every failure becomes an [`AdminError`], and
//! this file alone turns one into a status, a `WWW-Authenticate` challenge and a
//! `{error, error_description}` body.

use std::borrow::Cow;
use std::fmt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
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
    /// The named object does not exist. 404.
    NotFound(Cow<'static, str>),
    /// The change collides with existing state (duplicate, rotation in progress). 409.
    Conflict(Cow<'static, str>),
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
            AdminError::InvalidRequest(_) => "invalid_request",
            AdminError::NotFound(_) => "not_found",
            AdminError::Conflict(_) => "conflict",
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
            AdminError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
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
            AdminError::InvalidRequest(d)
            | AdminError::NotFound(d)
            | AdminError::Conflict(d)
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
            AdminError::InvalidRequest(_) | AdminError::NotFound(_) | AdminError::Conflict(_) => {
                None
            }
        };
        let body = ErrorBody {
            error: self.code().to_owned(),
            error_description: Some(self.to_string()),
        };
        let mut resp = (status, Json(body)).into_response();
        if let Some(c) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
        resp
    }
}
