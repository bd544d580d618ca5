//! The authorization server's one error boundary.
//!
//! Every failure on an OAuth endpoint becomes an [`OAuthError`], and this file alone
//! turns one into a status, headers and an RFC 6749 §5.2 body.

use std::borrow::Cow;
use std::fmt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use warden_proto::oauth::ErrorBody;

/// RFC 6749, 7009, 8707 and 8693 error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// Malformed, missing or repeated parameter.
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// The grant (code, refresh token, credentials) is invalid, expired or revoked.
    InvalidGrant,
    /// The client may not use this grant.
    UnauthorizedClient,
    /// The grant type is not supported.
    UnsupportedGrantType,
    /// The response type is not supported.
    UnsupportedResponseType,
    /// The scope is invalid or exceeds what may be granted.
    InvalidScope,
    /// RFC 8707: the resource is unknown or not allowed.
    InvalidTarget,
    /// The resource owner or policy denied the request.
    AccessDenied,
    /// RFC 7009: the token type is not supported.
    UnsupportedTokenType,
    /// An internal failure; details are in the log only.
    ServerError,
    /// A dependency (the store) is unavailable.
    TemporarilyUnavailable,
    /// RFC 9449 §5: the DPoP proof is missing or invalid.
    InvalidDpopProof,
    /// RFC 9449 §8: the DPoP proof must carry the nonce sent in `DPoP-Nonce`.
    UseDpopNonce,
}

impl ErrorCode {
    /// The RFC code string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::InvalidRequest
            | ErrorCode::InvalidGrant
            | ErrorCode::UnauthorizedClient
            | ErrorCode::UnsupportedGrantType
            | ErrorCode::UnsupportedResponseType
            | ErrorCode::InvalidScope
            | ErrorCode::InvalidTarget
            | ErrorCode::AccessDenied
            | ErrorCode::UnsupportedTokenType
            | ErrorCode::InvalidDpopProof
            | ErrorCode::UseDpopNonce => StatusCode::BAD_REQUEST,
        }
    }
}

/// An OAuth error: code, description, and whether to challenge for Basic auth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    /// The code.
    pub code: ErrorCode,
    /// A description for the client. Never includes a secret or a library's message.
    pub description: Cow<'static, str>,
    /// Whether the client used HTTP Basic (an `invalid_client` then carries a challenge).
    pub basic_challenge: bool,
    /// Why, in more detail than the client is told: for the audit log only.
    pub audit_reason: Option<String>,
}

impl OAuthError {
    /// An error with a description.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
            basic_challenge: false,
            audit_reason: None,
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }

    /// `server_error`, logging `detail` (never sent to the client).
    pub fn server_error(detail: &dyn fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error on an OAuth endpoint");
        Self::new(ErrorCode::ServerError, "internal error")
    }

    /// `temporarily_unavailable`, logging `detail`.
    pub fn unavailable(detail: &dyn fmt::Display) -> Self {
        tracing::error!(error = %detail, "dependency unavailable on an OAuth endpoint");
        Self::new(ErrorCode::TemporarilyUnavailable, "try again shortly")
    }
}

impl From<warden_core::dpop::DpopError> for OAuthError {
    /// A refused proof or binding at the token endpoint, with the code RFC 9449 gives it
    /// there; the reason goes to the audit log.
    fn from(e: warden_core::dpop::DpopError) -> Self {
        use warden_core::dpop::Endpoint;
        let code = match e.error_code(Endpoint::Token) {
            "use_dpop_nonce" => ErrorCode::UseDpopNonce,
            "invalid_dpop_proof" => ErrorCode::InvalidDpopProof,
            // `error_code` gives these three only.
            _ => ErrorCode::InvalidGrant,
        };
        let description = e.client_description(Endpoint::Token);
        let mut error = OAuthError::new(code, description);
        error.audit_reason = Some(e.reason().to_owned());
        error
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code.as_str())
    }
}

impl From<warden_core::grant::ScopeRefusal> for OAuthError {
    fn from(e: warden_core::grant::ScopeRefusal) -> Self {
        OAuthError::new(ErrorCode::InvalidScope, e.to_string())
    }
}

impl From<warden_store::StoreError> for OAuthError {
    fn from(e: warden_store::StoreError) -> Self {
        if e.is_transient() {
            OAuthError::unavailable(&e)
        } else {
            OAuthError::server_error(&e)
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = ErrorBody {
            error: self.code.as_str().to_owned(),
            error_description: Some(self.description.into_owned()),
        };
        let mut resp = (status, Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(crate::health::RETRY_AFTER_SECS),
            );
        }
        if self.code == ErrorCode::InvalidClient {
            let challenge = if self.basic_challenge {
                "Basic realm=\"warden\", charset=\"UTF-8\""
            } else {
                "Basic realm=\"warden\""
            };
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store outage is `temporarily_unavailable` with `Retry-After`; a store error
    /// that retrying cannot mend is a plain `server_error`.
    #[test]
    fn an_unavailable_store_is_503_with_retry_after() {
        let unavailable =
            OAuthError::from(warden_store::StoreError::Unavailable("down".into())).into_response();
        assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            unavailable.headers().get(header::RETRY_AFTER).unwrap(),
            crate::health::RETRY_AFTER_SECS
        );
        let broken =
            OAuthError::from(warden_store::StoreError::Corrupt("bad".into())).into_response();
        assert_eq!(broken.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(broken.headers().get(header::RETRY_AFTER).is_none());
    }
}
