//! Logging and metrics for Warden.
//!
//! - [`init`] installs the process-wide `tracing` subscriber. Every event it writes passes
//!   through [`redact`] first, so a token, code, verifier, client secret or password that
//!   reaches a log macro by mistake is still removed (DESIGN.md, hard rule 8).
//! - [`capture`] builds the same stack over an in-memory buffer, for tests that assert a
//!   code path logs no secret.
//! - [`Metrics`] is a small Prometheus registry: atomics on the hot path, text exposition
//!   format 0.0.4 on the scrape path.

use std::fmt;

use tracing::Subscriber;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, ParseError};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};
use tracing_subscriber::{Layer, Registry};

mod metrics;
mod redact;
mod writer;

pub use crate::metrics::{
    Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramVec, Metrics, MetricsError,
    CONTENT_TYPE, DURATION_BUCKETS, MAX_SERIES_PER_FAMILY,
};
pub use crate::redact::{
    redact, ACCESS_TOKEN_PREFIX, AUTHORIZATION_CODE_PREFIX, CLIENT_SECRET_PREFIX, CSRF_PREFIX,
    INITIAL_ACCESS_TOKEN_PREFIX, REDACTED, REFRESH_TOKEN_PREFIX, SECRET_PREFIXES, SESSION_PREFIX,
};
pub use crate::writer::{RedactingGuard, RedactingWriter, SharedBuffer};

/// The environment variable that overrides the configured log filter.
pub const FILTER_ENV: &str = "RUST_LOG";

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, with the event's fields at the top level.
    Json,
    /// One human-readable line per event: `time LEVEL target: message key=value…`.
    ///
    /// Deliberately single-line and without colours: the scrubber works on the formatted
    /// text, and ANSI escapes between a field name and its value, or a field printed as
    /// `key: value` on a line of its own, would hide the pair from it.
    Pretty,
}

/// Why logging could not be set up.
#[derive(Debug)]
pub enum Error {
    /// The filter (from `RUST_LOG`, or the one given) did not parse.
    Filter {
        /// Where the filter came from: `RUST_LOG` or `configuration`.
        source_name: &'static str,
        /// The parser's complaint.
        reason: ParseError,
    },
    /// A global subscriber was already installed.
    AlreadyInitialized(TryInitError),
}

// === impl Error ===

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Filter {
                source_name,
                reason,
            } => write!(f, "invalid log filter in {source_name}: {reason}"),
            Self::AlreadyInitialized(_) => f.write_str("a global log subscriber is already set"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Filter { reason, .. } => Some(reason),
            Self::AlreadyInitialized(err) => Some(err),
        }
    }
}

// === functions ===

/// Installs the global subscriber: a fmt layer in `format`, writing to stderr through a
/// [`RedactingWriter`], filtered by `RUST_LOG` when it is set and non-empty, otherwise by
/// `filter` (an `EnvFilter` directive string such as `"info,warden_server=debug"`).
///
/// Also routes records from the `log` crate into the same pipeline, so dependencies that
/// log through `log` are scrubbed too.
pub fn init(format: LogFormat, filter: &str) -> Result<(), Error> {
    let filter = match std::env::var(FILTER_ENV) {
        Ok(directives) if !directives.trim().is_empty() => {
            EnvFilter::try_new(directives).map_err(|reason| Error::Filter {
                source_name: FILTER_ENV,
                reason,
            })?
        }
        _ => EnvFilter::try_new(filter).map_err(|reason| Error::Filter {
            source_name: "configuration",
            reason,
        })?,
    };
    Registry::default()
        .with(filter)
        .with(fmt_layer(format, std::io::stderr))
        .try_init()
        .map_err(Error::AlreadyInitialized)
}

/// Builds the same stack as [`init`], at `TRACE` level and ignoring `RUST_LOG`, writing into
/// a [`SharedBuffer`] instead of stderr.
///
/// Install it for a scope with `tracing::subscriber::with_default` (or `set_default` for
/// async tests), run the code under test, and assert on [`SharedBuffer::contents`]:
///
/// ```
/// let (subscriber, logs) = warden_telemetry::capture(warden_telemetry::LogFormat::Json);
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(body = "grant_type=authorization_code&code=abc123", "token request");
/// });
/// assert!(!logs.contents().contains("abc123"));
/// ```
pub fn capture(format: LogFormat) -> (impl Subscriber + Send + Sync + 'static, SharedBuffer) {
    let buffer = SharedBuffer::new();
    let subscriber = Registry::default()
        .with(LevelFilter::TRACE)
        .with(fmt_layer(format, buffer.clone()));
    (subscriber, buffer)
}

/// The fmt layer shared by [`init`] and [`capture`], writing through a [`RedactingWriter`].
fn fmt_layer<S, M>(format: LogFormat, make_writer: M) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    M: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let writer = RedactingWriter::new(make_writer);
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(writer);
    match format {
        LogFormat::Json => layer.json().flatten_event(true).boxed(),
        LogFormat::Pretty => layer.boxed(),
    }
}
