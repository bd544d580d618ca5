use std::collections::HashSet;
use std::thread;

use regex::Regex;

use super::*;

/// Checks every line against the text exposition format 0.0.4 and returns the samples as
/// `(series, value)`, where `series` is the text before the value.
fn parse(text: &str) -> Vec<(String, f64)> {
    let comment = Regex::new(
        r"^# (?:HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (?:counter|gauge|histogram))$",
    )
    .unwrap();
    let label = r#"[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*""#;
    let sample = Regex::new(&format!(
        r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{{{label}(?:,{label})*\}})? ([^ ]+)$"
    ))
    .unwrap();
    assert!(text.ends_with('\n'));
    let mut typed = HashSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(caps) = comment.captures(line) {
            if let Some(name) = caps.get(1) {
                assert!(
                    typed.insert(name.as_str().to_owned()),
                    "duplicate TYPE: {line}"
                );
            }
            continue;
        }
        let caps = sample
            .captures(line)
            .unwrap_or_else(|| panic!("bad line: {line:?}"));
        let name = &caps[1];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix).filter(|f| typed.contains(*f)))
            .unwrap_or(name);
        assert!(typed.contains(family), "sample before its TYPE: {line}");
        let value: f64 = match &caps[3] {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let series = line.rsplit_once(' ').unwrap().0.to_owned();
        samples.push((series, value));
    }
    samples
}

fn value(text: &str, series: &str) -> f64 {
    parse(text)
        .into_iter()
        .find(|(s, _)| s == series)
        .unwrap_or_else(|| panic!("{series} missing from:\n{text}"))
        .1
}

#[test]
fn standard_families_render_and_parse() {
    let start = Instant::now();
    let metrics = Metrics::with_start(start);
    let text = metrics.render_at(start + Duration::from_millis(5_250));
    parse(&text);
    for (name, kind) in [
        ("warden_http_requests_total", "counter"),
        ("warden_http_request_duration_seconds", "histogram"),
        ("warden_tokens_issued_total", "counter"),
        ("warden_token_errors_total", "counter"),
        ("warden_gateway_decisions_total", "counter"),
        ("warden_store_errors_total", "counter"),
        ("warden_process_uptime_seconds", "gauge"),
        ("warden_build_info", "gauge"),
    ] {
        assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
        assert!(text.contains(&format!("# HELP {name} ")), "{name}");
    }
    assert_eq!(value(&text, "warden_store_errors_total"), 0.0);
    assert_eq!(value(&text, "warden_process_uptime_seconds"), 5.25);
    let version = format!(
        "warden_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value(&text, &version), 1.0);
}

#[test]
fn counters_increment() {
    let metrics = Metrics::new();
    metrics.record_token_issued("authorization_code");
    metrics.record_token_issued("authorization_code");
    metrics.record_token_issued("refresh_token");
    metrics.record_token_error("invalid_grant");
    metrics.record_gateway_decision("files", "deny");
    metrics.record_store_error();
    metrics.record_http("/oauth/token", "POST", 200, Duration::from_millis(3));
    metrics.record_http("/oauth/token", "POST", 200, Duration::from_millis(4));
    let text = metrics.render();
    let v = |s: &str| value(&text, s);
    assert_eq!(
        v(r#"warden_tokens_issued_total{grant_type="authorization_code"}"#),
        2.0
    );
    assert_eq!(
        v(r#"warden_tokens_issued_total{grant_type="refresh_token"}"#),
        1.0
    );
    assert_eq!(
        v(r#"warden_token_errors_total{error="invalid_grant"}"#),
        1.0
    );
    assert_eq!(
        v(r#"warden_gateway_decisions_total{server="files",decision="deny"}"#),
        1.0
    );
    assert_eq!(v("warden_store_errors_total"), 1.0);
    assert_eq!(
        v(r#"warden_http_requests_total{route="/oauth/token",method="POST",status="200"}"#),
        2.0
    );
    assert_eq!(metrics.store_errors().get(), 1);
    assert_eq!(metrics.tokens_issued().with(&["refresh_token"]).get(), 1);
}

#[test]
fn label_sets_with_the_same_bytes_stay_apart() {
    let metrics = Metrics::new();
    metrics.record_gateway_decision("ab", "c");
    metrics.record_gateway_decision("a", "bc");
    metrics.record_gateway_decision("a", "bc");
    metrics.record_gateway_decision("", "abc");
    let family = &metrics.inner.gateway_decisions;
    assert_eq!(family.with(&["ab", "c"]).get(), 1);
    assert_eq!(family.with(&["a", "bc"]).get(), 2);
    assert_eq!(family.with(&["", "abc"]).get(), 1);
    assert_eq!(family.with(&["abc", ""]).get(), 0);
}

#[test]
fn histogram_buckets_are_cumulative() {
    let metrics = Metrics::new();
    for ms in [0.3, 7.0, 7.5, 20_000.0] {
        metrics.record_http(
            "/mcp/{server}",
            "POST",
            200,
            Duration::from_secs_f64(ms / 1e3),
        );
    }
    let text = metrics.render();
    let bucket = |le: &str| {
        value(
            &text,
            &format!(
                r#"warden_http_request_duration_seconds_bucket{{route="/mcp/{{server}}",le="{le}"}}"#
            ),
        )
    };
    assert_eq!(bucket("0.0005"), 1.0);
    assert_eq!(bucket("0.005"), 1.0);
    assert_eq!(bucket("0.01"), 3.0);
    assert_eq!(bucket("10"), 3.0);
    assert_eq!(bucket("+Inf"), 4.0);
    let count = value(
        &text,
        r#"warden_http_request_duration_seconds_count{route="/mcp/{server}"}"#,
    );
    assert_eq!(count, 4.0);
    let sum = value(
        &text,
        r#"warden_http_request_duration_seconds_sum{route="/mcp/{server}"}"#,
    );
    assert!((sum - 20.0148).abs() < 1e-6, "{sum}");
    // Bucket bounds appear in increasing order, ending with +Inf.
    let les: Vec<f64> = parse(&text)
        .iter()
        .filter(|(s, _)| s.contains("_bucket{"))
        .map(|(s, _)| {
            let le = s.rsplit_once("le=\"").unwrap().1.trim_end_matches("\"}");
            if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            }
        })
        .collect();
    assert_eq!(les.len(), BUCKETS + 1);
    assert!(les.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn bucket_tables_agree() {
    for ((seconds, nanos), label) in DURATION_BUCKETS.iter().zip(BUCKET_NANOS).zip(BUCKET_LABELS) {
        assert_eq!(
            Duration::from_secs_f64(*seconds).as_nanos(),
            u128::from(nanos)
        );
        assert_eq!(label.parse::<f64>().unwrap(), *seconds);
    }
}

#[test]
fn histogram_edges_and_odd_inputs() {
    let metrics = Metrics::new();
    let h = metrics.http_request_duration().with(&["/x"]);
    h.observe(Duration::from_micros(500)); // exactly on a bound: le is inclusive
    h.observe_seconds(-1.0);
    h.observe_seconds(f64::NAN);
    h.observe(Duration::MAX);
    assert_eq!(h.count(), 4);
    let text = metrics.render();
    let first = r#"warden_http_request_duration_seconds_bucket{route="/x",le="0.0005"}"#;
    assert_eq!(value(&text, first), 3.0);
}

#[test]
fn concurrent_increments_sum_exactly() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 10_000;
    let metrics = Metrics::new();
    let cached = metrics.token_errors().with(&["invalid_grant"]);
    thread::scope(|scope| {
        for t in 0..THREADS {
            let metrics = &metrics;
            let cached = cached.clone();
            scope.spawn(move || {
                let own = format!("route-{}", t % 2);
                for i in 0..PER_THREAD {
                    cached.inc();
                    metrics.record_http(&own, "GET", 200, Duration::from_micros(i % 2_000));
                }
            });
        }
    });
    assert_eq!(cached.get(), THREADS * PER_THREAD);
    let text = metrics.render();
    let per_route = THREADS / 2 * PER_THREAD;
    for route in ["route-0", "route-1"] {
        let series =
            format!(r#"warden_http_requests_total{{route="{route}",method="GET",status="200"}}"#);
        assert_eq!(value(&text, &series), per_route as f64);
        let count = format!(r#"warden_http_request_duration_seconds_count{{route="{route}"}}"#);
        assert_eq!(value(&text, &count), per_route as f64);
    }
}

#[test]
fn label_values_are_escaped() {
    let metrics = Metrics::new();
    metrics.record_token_error("bad\"quote\\slash\nline");
    metrics
        .counter(
            "app_events_total",
            "Help with \\ and\nnewline.",
            &[("kind", "é\"")],
        )
        .unwrap()
        .inc();
    let text = metrics.render();
    parse(&text);
    assert!(text.contains(r#"warden_token_errors_total{error="bad\"quote\\slash\nline"} 1"#));
    assert!(text.contains(r#"app_events_total{kind="é\""} 1"#));
    assert!(text.contains("# HELP app_events_total Help with \\\\ and\\nnewline.\n"));
}

#[test]
fn generic_registration() {
    let metrics = Metrics::new();
    let a = metrics
        .counter("upstream_calls_total", "Calls.", &[("server", "files")])
        .unwrap();
    let b = metrics
        .counter("upstream_calls_total", "Calls.", &[("server", "files")])
        .unwrap();
    a.inc();
    b.inc_by(2);
    assert_eq!(a.get(), 3);
    let gauge = metrics
        .gauge("active_sessions", "Open sessions.", &[])
        .unwrap();
    gauge.inc();
    gauge.inc();
    gauge.dec();
    gauge.add(-5);
    let latency = metrics
        .histogram_vec("upstream_latency_seconds", "Upstream latency.", &["server"])
        .unwrap()
        .with(&["files"]);
    latency.observe(Duration::from_millis(2));
    let text = metrics.render();
    parse(&text);
    assert_eq!(value(&text, r#"upstream_calls_total{server="files"}"#), 3.0);
    assert_eq!(value(&text, "active_sessions"), -4.0);
    assert_eq!(
        value(&text, r#"upstream_latency_seconds_count{server="files"}"#),
        1.0
    );
}

#[test]
fn registration_errors() {
    let metrics = Metrics::new();
    metrics.counter_vec("x_total", "X.", &["a"]).unwrap();
    let conflict = Err(MetricsError::Conflict("x_total".into()));
    assert_eq!(
        metrics.counter_vec("x_total", "X.", &["b"]).map(|_| ()),
        conflict
    );
    assert_eq!(
        metrics.gauge_vec("x_total", "X.", &["a"]).map(|_| ()),
        conflict
    );
    assert!(metrics
        .counter_vec("warden_store_errors_total", "", &["a"])
        .is_err());
    for bad in [
        "",
        "1abc",
        "a-b",
        "a b",
        "warden_process_uptime_seconds",
        "warden_build_info",
    ] {
        assert_eq!(
            metrics.counter_vec(bad, "", &[]).map(|_| ()),
            Err(MetricsError::InvalidName(bad.into()))
        );
    }
    for bad in ["", "__x", "a-b", "1a"] {
        assert!(matches!(
            metrics.counter_vec("y_total", "", &[bad]),
            Err(MetricsError::InvalidLabel { .. })
        ));
    }
    assert!(metrics.counter_vec("y_total", "", &["a", "a"]).is_err());
    assert!(metrics.histogram_vec("h_seconds", "", &["le"]).is_err());
    assert!(metrics.counter_vec("ok:name_total", "", &["le"]).is_ok());
}

#[test]
fn cardinality_is_capped() {
    let metrics = Metrics::new();
    let family = metrics
        .counter_vec("capped_total", "Capped.", &["v"])
        .unwrap();
    for i in 0..MAX_SERIES_PER_FAMILY + 10 {
        family.with(&[&i.to_string()]).inc();
    }
    // Existing series keep counting after the cap.
    family.with(&["0"]).inc();
    let text = metrics.render();
    let lines = text
        .lines()
        .filter(|l| l.starts_with("capped_total{"))
        .count();
    assert_eq!(lines, MAX_SERIES_PER_FAMILY + 1);
    assert_eq!(value(&text, r#"capped_total{v="__overflow__"}"#), 10.0);
    assert_eq!(value(&text, r#"capped_total{v="0"}"#), 2.0);
}

#[test]
fn status_labels() {
    let mut digits = [0; 5];
    for status in [0_u16, 7, 42, 200, 404, 65535] {
        assert_eq!(status_label(status, &mut digits), status.to_string());
    }
}

#[test]
fn standard_names_are_valid() {
    let metrics = Metrics::new();
    for family in read(&metrics.inner.families).iter() {
        let labels: Vec<&str> = match family {
            FamilyRef::Counter(f) => f.label_names.iter().map(String::as_str).collect(),
            FamilyRef::Gauge(f) => f.label_names.iter().map(String::as_str).collect(),
            FamilyRef::Histogram(f) => f.label_names.iter().map(String::as_str).collect(),
        };
        validate(family.name(), &labels).unwrap();
    }
}
