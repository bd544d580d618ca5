//! The client's request body: read whole up to [`MAX_BODY_BYTES`], or, when a request
//! is answered without reading it, read and dropped so its connection stays usable.

use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody as _};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::Response;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};

use super::challenge::GatewayError;

/// Largest request body the gateway reads.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Largest body of a refused request that is read and dropped so that its connection can
/// carry the next request; a larger one closes the connection (see [`settle`]).
const DRAIN_BYTES: usize = 64 * 1024;

/// Longest wait for the body of a refused request to arrive.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// The declared `Content-Length`, if any.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The response to a request whose body is still `unread` (refused before it was read,
/// or a body on a `GET`). HTTP/1.1 cannot find the next request on a connection before
/// the body ends, and hyper closes such a connection after the response without saying
/// so, which breaks keep-alive clients' next request. So a small body is read and
/// dropped, and the connection carries on; a larger one (or one that does not arrive in
/// time) is left, and the response says `Connection: close`.
pub(super) async fn settle(
    mut response: Response,
    unread: Option<Body>,
    headers: &HeaderMap,
) -> Response {
    let Some(body) = unread else {
        return response;
    };
    if !discard(body, headers).await {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads `body` to its end and drops it, if it is at most [`DRAIN_BYTES`] and arrives
/// within [`DRAIN_TIME`]; whether it did.
async fn discard(body: Body, headers: &HeaderMap) -> bool {
    if body.is_end_stream() {
        return true;
    }
    if declared_length(headers).is_some_and(|n| n > DRAIN_BYTES as u64) {
        return false;
    }
    let mut body = Limited::new(body, DRAIN_BYTES);
    let drained = async {
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_TIME, drained)
        .await
        .unwrap_or(false)
}

pub(super) async fn read_body(body: Body, headers: &HeaderMap) -> Result<Bytes, GatewayError> {
    if declared_length(headers).is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(GatewayError::PayloadTooLarge);
    }
    // A small body arrives in one frame, kept as it is; only more are joined (what
    // `collect` would do, with a queue allocated for every body).
    let mut body = Limited::new(body, MAX_BODY_BYTES);
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                GatewayError::PayloadTooLarge
            } else {
                GatewayError::Parse
            }
        })?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if first.is_none() && joined.is_empty() {
            first = Some(data);
        } else {
            joined.extend_from_slice(&first.take().unwrap_or_default());
            joined.extend_from_slice(&data);
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(joined)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(chunks: Vec<Vec<u8>>) -> Body {
        Body::from_stream(futures_util::stream::iter(
            chunks.into_iter().map(Ok::<_, std::io::Error>),
        ))
    }

    #[tokio::test]
    async fn a_body_is_read_whole_in_one_frame_or_many() {
        let headers = HeaderMap::new();
        let one = read_body(Body::from("{\"a\":1}"), &headers).await.unwrap();
        assert_eq!(&one[..], b"{\"a\":1}");
        let parts = vec![
            b"{\"a\"".to_vec(),
            Vec::new(),
            b":".to_vec(),
            b"1}".to_vec(),
        ];
        let many = read_body(chunked(parts), &headers).await.unwrap();
        assert_eq!(&many[..], b"{\"a\":1}");
        let big = vec![
            vec![b' '; MAX_BODY_BYTES / 2],
            vec![b' '; MAX_BODY_BYTES / 2 + 1],
        ];
        assert!(matches!(
            read_body(chunked(big), &headers).await,
            Err(GatewayError::PayloadTooLarge)
        ));
    }

    #[tokio::test]
    async fn an_unread_body_is_drained_when_small_and_closes_the_connection_otherwise() {
        async fn closes(body: Body, headers: &HeaderMap) -> Option<HeaderValue> {
            let settled = settle(Response::new(Body::empty()), Some(body), headers).await;
            settled.headers().get(header::CONNECTION).cloned()
        }
        let none = HeaderMap::new();
        assert_eq!(closes(Body::empty(), &none).await, None);
        let small = chunked(vec![vec![b' '; 10], vec![b' '; DRAIN_BYTES - 10]]);
        assert_eq!(closes(small, &none).await, None);
        let large = chunked(vec![vec![b' '; DRAIN_BYTES], vec![b' '; 1]]);
        assert_eq!(closes(large, &none).await.unwrap(), "close");
        // Declared too long: not even waited for.
        let mut declared = HeaderMap::new();
        declared.insert(header::CONTENT_LENGTH, HeaderValue::from_static("1048576"));
        let never =
            Body::from_stream(futures_util::stream::pending::<Result<Bytes, std::io::Error>>());
        assert_eq!(closes(never, &declared).await.unwrap(), "close");
    }
}
