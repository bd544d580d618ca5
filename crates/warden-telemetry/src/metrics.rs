//! Prometheus metrics without a metrics framework.
//!
//! A [`Metrics`] value is a cheap handle (`Arc`) on a registry of metric families. Each
//! family keeps its series in a `RwLock<HashMap>` keyed by label values; a series is an
//! `Arc` of atomics. Looking a series up takes a read lock and does not allocate; the
//! returned handle ([`Counter`], [`Gauge`], [`Histogram`]) updates lock-free, so code on
//! a hot path looks its series up once and keeps the handle.
//!
//! [`Metrics::render`] writes the Prometheus text exposition format, version 0.0.4.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use self::family::{read, Cell, Family, FamilyRef, HistogramCell};
use self::render::{
    i64_text, nanos_to_seconds, render_histogram, render_scalar, u64_text, write_header,
    write_labels,
};

mod family;
mod render;

/// `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds, in seconds, of the buckets of every histogram (plus `+Inf`).
pub const DURATION_BUCKETS: [f64; BUCKETS] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Most label sets one family will track. Label values can come from requests (a
/// client-chosen `grant_type`, say), and every new set costs memory forever, so past this
/// many, new sets are counted together under the value `__overflow__`.
pub const MAX_SERIES_PER_FAMILY: usize = 2_000;

const BUCKETS: usize = 14;

/// [`DURATION_BUCKETS`] in nanoseconds, so observing is integer comparison, and as the
/// exact `le` text to print.
const BUCKET_NANOS: [u64; BUCKETS] = [
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];
const BUCKET_LABELS: [&str; BUCKETS] = [
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
    "2.5", "5", "10",
];

const UPTIME: &str = "warden_process_uptime_seconds";
const BUILD_INFO: &str = "warden_build_info";

/// The metrics registry. Clones share the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

/// A monotonically increasing count for one label set.
#[derive(Clone, Debug)]
pub struct Counter(Arc<AtomicU64>);

/// A value that can go up and down, for one label set.
#[derive(Clone, Debug)]
pub struct Gauge(Arc<AtomicI64>);

/// A distribution of durations over [`DURATION_BUCKETS`], for one label set.
#[derive(Clone)]
pub struct Histogram(Arc<HistogramCell>);

/// A counter family; [`CounterVec::with`] picks the series for a label set.
#[derive(Clone)]
pub struct CounterVec(Arc<Family<AtomicU64>>);

/// A gauge family; [`GaugeVec::with`] picks the series for a label set.
#[derive(Clone)]
pub struct GaugeVec(Arc<Family<AtomicI64>>);

/// A histogram family; [`HistogramVec::with`] picks the series for a label set.
#[derive(Clone)]
pub struct HistogramVec(Arc<Family<HistogramCell>>);

/// Why a metric could not be registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricsError {
    /// The metric name is not `[a-zA-Z_:][a-zA-Z0-9_:]*`, or is reserved.
    InvalidName(String),
    /// A label name is not `[a-zA-Z_][a-zA-Z0-9_]*`, starts with `__`, repeats, or is
    /// `le` on a histogram.
    InvalidLabel {
        /// The metric being registered.
        metric: String,
        /// The offending label name.
        label: String,
    },
    /// The name is already registered with another type or other label names.
    Conflict(String),
}

struct Inner {
    start: Instant,
    families: RwLock<Vec<FamilyRef>>,
    http_requests: CounterVec,
    http_duration: HistogramVec,
    tokens_issued: CounterVec,
    token_errors: CounterVec,
    gateway_decisions: CounterVec,
    upstream_credential_failures: CounterVec,
    store_errors: Counter,
}

// === impl Metrics ===

impl Metrics {
    /// A registry with Warden's standard families, counting uptime from now.
    pub fn new() -> Self {
        Self::with_start(Instant::now())
    }

    /// A registry with Warden's standard families, counting uptime from `start`.
    pub fn with_start(start: Instant) -> Self {
        let mut families = Vec::new();
        let mut add = |family: FamilyRef| families.push(family);
        let http_requests = CounterVec(standard(
            &mut add,
            "warden_http_requests_total",
            "HTTP requests handled, by route template, method and status.",
            &["route", "method", "status"],
        ));
        let http_duration = HistogramVec(standard(
            &mut add,
            "warden_http_request_duration_seconds",
            "Time to produce an HTTP response, by route template.",
            &["route"],
        ));
        let tokens_issued = CounterVec(standard(
            &mut add,
            "warden_tokens_issued_total",
            "Tokens issued by the token endpoint, by grant type.",
            &["grant_type"],
        ));
        let token_errors = CounterVec(standard(
            &mut add,
            "warden_token_errors_total",
            "Token endpoint errors, by OAuth error code.",
            &["error"],
        ));
        let gateway_decisions = CounterVec(standard(
            &mut add,
            "warden_gateway_decisions_total",
            "Gateway authorization decisions, by upstream server and decision.",
            &["server", "decision"],
        ));
        let upstream_credential_failures = CounterVec(standard(
            &mut add,
            "warden_upstream_credential_failures_total",
            "Failures to obtain an upstream's own credential from its authorization server, \
             by server and reason (unavailable, refused, internal).",
            &["server", "reason"],
        ));
        let store_errors = CounterVec(standard(
            &mut add,
            "warden_store_errors_total",
            "Storage backend errors.",
            &[],
        ))
        .with(&[]);
        Self {
            inner: Arc::new(Inner {
                start,
                families: RwLock::new(families),
                http_requests,
                http_duration,
                tokens_issued,
                token_errors,
                gateway_decisions,
                upstream_credential_failures,
                store_errors,
            }),
        }
    }

    /// Counts one HTTP response and its latency. `route` must be the route template
    /// (`/mcp/{server}`), never the raw path, or every path becomes a series.
    pub fn record_http(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let mut digits = [0; 5];
        let status = status_label(status, &mut digits);
        self.inner.http_requests.inc(&[route, method, status]);
        self.inner.http_duration.observe(&[route], elapsed);
    }

    /// Counts one token issued with `grant_type`.
    pub fn record_token_issued(&self, grant_type: &str) {
        self.inner.tokens_issued.inc(&[grant_type]);
    }

    /// Counts one token endpoint error, by its OAuth error code.
    pub fn record_token_error(&self, error: &str) {
        self.inner.token_errors.inc(&[error]);
    }

    /// Counts one gateway decision (`allow`, `deny`, …) for `server`.
    pub fn record_gateway_decision(&self, server: &str, decision: &str) {
        self.inner.gateway_decisions.inc(&[server, decision]);
    }

    /// Counts one failure to obtain `server`'s upstream credential, by `reason`.
    pub fn record_upstream_credential_failure(&self, server: &str, reason: &str) {
        self.inner
            .upstream_credential_failures
            .inc(&[server, reason]);
    }

    /// Counts one storage error.
    pub fn record_store_error(&self) {
        self.inner.store_errors.inc();
    }

    /// `warden_http_requests_total{route,method,status}`.
    pub fn http_requests(&self) -> &CounterVec {
        &self.inner.http_requests
    }

    /// `warden_http_request_duration_seconds{route}`.
    pub fn http_request_duration(&self) -> &HistogramVec {
        &self.inner.http_duration
    }

    /// `warden_tokens_issued_total{grant_type}`.
    pub fn tokens_issued(&self) -> &CounterVec {
        &self.inner.tokens_issued
    }

    /// `warden_token_errors_total{error}`.
    pub fn token_errors(&self) -> &CounterVec {
        &self.inner.token_errors
    }

    /// `warden_gateway_decisions_total{server,decision}`.
    pub fn gateway_decisions(&self) -> &CounterVec {
        &self.inner.gateway_decisions
    }

    /// `warden_store_errors_total`.
    pub fn store_errors(&self) -> &Counter {
        &self.inner.store_errors
    }

    /// The counter `name` with the given `(label, value)` pairs, registering the family on
    /// first use. Calling again with the same name and label names returns the same
    /// family; keep the handle rather than calling this per event.
    pub fn counter(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
    ) -> Result<Counter, MetricsError> {
        let (names, values) = split_pairs(labels);
        Ok(self.counter_vec(name, help, &names)?.with(&values))
    }

    /// The counter family `name` with `label_names`, registering it on first use.
    pub fn counter_vec(
        &self,
        name: &str,
        help: &str,
        label_names: &[&str],
    ) -> Result<CounterVec, MetricsError> {
        self.register(name, help, label_names).map(CounterVec)
    }

    /// The gauge `name` with the given `(label, value)` pairs, registering it on first use.
    pub fn gauge(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
    ) -> Result<Gauge, MetricsError> {
        let (names, values) = split_pairs(labels);
        Ok(self.gauge_vec(name, help, &names)?.with(&values))
    }

    /// The gauge family `name` with `label_names`, registering it on first use.
    pub fn gauge_vec(
        &self,
        name: &str,
        help: &str,
        label_names: &[&str],
    ) -> Result<GaugeVec, MetricsError> {
        self.register(name, help, label_names).map(GaugeVec)
    }

    /// The duration histogram family `name` with `label_names` and the buckets of
    /// [`DURATION_BUCKETS`], registering it on first use.
    pub fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        label_names: &[&str],
    ) -> Result<HistogramVec, MetricsError> {
        if label_names.contains(&"le") {
            return Err(MetricsError::InvalidLabel {
                metric: name.to_owned(),
                label: "le".to_owned(),
            });
        }
        self.register(name, help, label_names).map(HistogramVec)
    }

    /// Every family in the text exposition format, then the process section.
    pub fn render(&self) -> String {
        self.render_at(Instant::now())
    }

    /// As [`Metrics::render`], with uptime measured at `now`.
    pub fn render_at(&self, now: Instant) -> String {
        // Clone the family list so registration is not blocked while we format.
        let families: Vec<FamilyRef> = read(&self.inner.families)
            .iter()
            .map(FamilyRef::clone_ref)
            .collect();
        let mut out = String::with_capacity(8 * 1024);
        for family in &families {
            match family {
                FamilyRef::Counter(f) => {
                    render_scalar(&mut out, f, |c| u64_text(c.load(Ordering::Relaxed)))
                }
                FamilyRef::Gauge(f) => {
                    render_scalar(&mut out, f, |c| i64_text(c.load(Ordering::Relaxed)))
                }
                FamilyRef::Histogram(f) => render_histogram(&mut out, f),
            }
        }
        let uptime = now.saturating_duration_since(self.inner.start);
        write_header(
            &mut out,
            UPTIME,
            "Seconds since the process started.",
            "gauge",
        );
        let _ = writeln!(out, "{UPTIME} {}", uptime.as_secs_f64());
        write_header(
            &mut out,
            BUILD_INFO,
            "Warden build information; always 1.",
            "gauge",
        );
        out.push_str(BUILD_INFO);
        write_labels(
            &mut out,
            &["version".to_owned()],
            &[env!("CARGO_PKG_VERSION").to_owned()],
            None,
        );
        out.push_str(" 1\n");
        out
    }

    fn register<C: Cell>(
        &self,
        name: &str,
        help: &str,
        label_names: &[&str],
    ) -> Result<Arc<Family<C>>, MetricsError> {
        validate(name, label_names)?;
        let mut families = self
            .inner
            .families
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = families.iter().find(|f| f.name() == name) {
            return match C::unwrap(existing) {
                Some(family) if family.label_names.iter().eq(label_names.iter()) => {
                    Ok(Arc::clone(family))
                }
                _ => Err(MetricsError::Conflict(name.to_owned())),
            };
        }
        let family = Arc::new(Family::new(name, help, label_names));
        families.push(C::wrap(Arc::clone(&family)));
        Ok(family)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("families", &read(&self.inner.families).len())
            .finish_non_exhaustive()
    }
}

/// A duration in nanoseconds, saturating.
fn nanos(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

// === impl Counter, Gauge, Histogram ===

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    pub fn inc_by(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// Adds `delta` (which may be negative).
    pub fn add(&self, delta: i64) {
        self.0.fetch_add(delta, Ordering::Relaxed);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Subtracts one.
    pub fn dec(&self) {
        self.add(-1);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, elapsed: Duration) {
        self.0.observe_nanos(nanos(elapsed));
    }

    /// Records one duration given in seconds; negative and NaN count as zero.
    pub fn observe_seconds(&self, seconds: f64) {
        let nanos = if seconds > 0.0 { seconds * 1e9 } else { 0.0 };
        // `as` saturates for floats out of range.
        self.0.observe_nanos(nanos as u64);
    }

    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.0
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .sum()
    }

    /// The sum of the recorded durations, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        nanos_to_seconds(self.0.sum_nanos.load(Ordering::Relaxed))
    }
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count())
            .field("sum_seconds", &self.sum_seconds())
            .finish()
    }
}

// === impl CounterVec, GaugeVec, HistogramVec ===

impl CounterVec {
    /// The counter for `values`, given in the order of the family's label names.
    pub fn with(&self, values: &[&str]) -> Counter {
        Counter(self.0.cell(values))
    }

    /// Adds one to the counter for `values` (cheaper than `with(values).inc()`).
    pub fn inc(&self, values: &[&str]) {
        self.0
            .with_cell(values, |cell| cell.fetch_add(1, Ordering::Relaxed));
    }
}

impl GaugeVec {
    /// The gauge for `values`, given in the order of the family's label names.
    pub fn with(&self, values: &[&str]) -> Gauge {
        Gauge(self.0.cell(values))
    }
}

impl HistogramVec {
    /// The histogram for `values`, given in the order of the family's label names.
    pub fn with(&self, values: &[&str]) -> Histogram {
        Histogram(self.0.cell(values))
    }

    /// Records one duration in the histogram for `values` (cheaper than
    /// `with(values).observe(elapsed)`).
    pub fn observe(&self, values: &[&str], elapsed: Duration) {
        self.0
            .with_cell(values, |cell| cell.observe_nanos(nanos(elapsed)));
    }
}

macro_rules! debug_family {
    ($($ty:ident),*) => {$(
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("name", &self.0.name)
                    .field("labels", &self.0.label_names)
                    .finish_non_exhaustive()
            }
        }
    )*};
}
debug_family!(CounterVec, GaugeVec, HistogramVec);

// === impl MetricsError ===

impl fmt::Display for MetricsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName(name) => write!(f, "invalid or reserved metric name {name:?}"),
            Self::InvalidLabel { metric, label } => {
                write!(f, "invalid label name {label:?} on metric {metric:?}")
            }
            Self::Conflict(name) => write!(
                f,
                "metric {name:?} is already registered with another type or labels"
            ),
        }
    }
}

impl std::error::Error for MetricsError {}

// === functions ===

/// Builds one of the standard families. Their names and labels are constants checked by
/// a test, so they skip validation (and the `Result` that would need unwrapping).
fn standard<C: Cell>(
    add: &mut impl FnMut(FamilyRef),
    name: &str,
    help: &str,
    label_names: &[&str],
) -> Arc<Family<C>> {
    let family = Arc::new(Family::new(name, help, label_names));
    add(C::wrap(Arc::clone(&family)));
    family
}

fn validate(name: &str, label_names: &[&str]) -> Result<(), MetricsError> {
    let name_ok = name.chars().enumerate().all(|(i, c)| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
    });
    if name.is_empty() || !name_ok || name == UPTIME || name == BUILD_INFO {
        return Err(MetricsError::InvalidName(name.to_owned()));
    }
    for (i, label) in label_names.iter().enumerate() {
        let label_ok = !label.is_empty()
            && !label.starts_with("__")
            && label
                .chars()
                .enumerate()
                .all(|(j, c)| c.is_ascii_alphabetic() || c == '_' || (j > 0 && c.is_ascii_digit()))
            && !label_names
                .get(..i)
                .is_some_and(|before| before.contains(label));
        if !label_ok {
            return Err(MetricsError::InvalidLabel {
                metric: name.to_owned(),
                label: (*label).to_owned(),
            });
        }
    }
    Ok(())
}

fn split_pairs<'a>(labels: &[(&'a str, &'a str)]) -> (Vec<&'a str>, Vec<&'a str>) {
    labels.iter().copied().unzip()
}

/// Formats a status code into `digits` without allocating.
fn status_label(status: u16, digits: &mut [u8; 5]) -> &str {
    let mut rest = status;
    let mut start = digits.len();
    for slot in digits.iter_mut().rev() {
        // `rest % 10` is below 10, so the cast cannot truncate.
        *slot = b'0' + (rest % 10) as u8;
        start -= 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    std::str::from_utf8(digits.get(start..).unwrap_or_default()).unwrap_or("0")
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
