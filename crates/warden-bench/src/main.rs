//! `warden-bench`: a closed-loop HTTP/1.1 load generator for OAuth token endpoints.
//!
//! N workers each hold one keep-alive connection and send the next request as soon as the
//! previous answer is read (closed loop: the offered load is whatever the server sustains
//! at that concurrency). After a warm-up, every request that starts and finishes inside the
//! measurement window is timed; the latencies are sorted for exact percentiles. A non-2xx
//! status, a body without the expected marker, or a transport error is an error; more than
//! `--max-error-rate` of them fails the run (exit status 1) after the JSON is printed.
//!
//! Scenarios:
//! - `token`: `POST` a `client_credentials` request with HTTP Basic client authentication;
//!   the answer must carry `access_token`.
//! - `introspect`: get one token that way, then `POST` it to the introspection endpoint
//!   (as another confidential client) over and over; the answer must say `"active":true`.
//!
//! The JSON on stdout also carries the CPU time the server process (`--server-pid`), this
//! process and the whole machine used during the window, so a reader can tell a saturated
//! server from a busy machine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;

#[derive(Parser, Debug)]
#[command(
    name = "warden-bench",
    about = "Closed-loop HTTP/1.1 load generator for OAuth token and introspection endpoints"
)]
struct Cli {
    #[command(flatten)]
    load: LoadOpts,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(clap::Args, Debug)]
struct LoadOpts {
    /// Concurrent keep-alive connections, each with one request in flight.
    #[arg(long, global = true, default_value_t = 32)]
    concurrency: usize,
    /// Measurement window, e.g. `10s`, `500ms`, `1m`.
    #[arg(long, global = true, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Warm-up before the window (same load, not recorded).
    #[arg(long, global = true, default_value = "3s", value_parser = parse_duration)]
    warmup: Duration,
    /// Runtime worker threads for the generator itself.
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    /// A name for the system under test, copied into the output.
    #[arg(long, global = true, default_value = "server")]
    label: String,
    /// The server's process id: its CPU time during the window is reported.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Largest tolerated fraction of failed requests.
    #[arg(long, global = true, default_value_t = 0.001)]
    max_error_rate: f64,
}

#[derive(clap::Args, Debug, Clone)]
struct Credentials {
    /// Token endpoint URL (http only).
    #[arg(long)]
    token_url: String,
    /// The machine client's id.
    #[arg(long, env = "BENCH_CLIENT_ID")]
    client_id: String,
    /// The machine client's secret.
    #[arg(long, env = "BENCH_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// RFC 8707 resource indicator for the token.
    #[arg(long)]
    resource: String,
    /// Scope to request.
    #[arg(long)]
    scope: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// `client_credentials` issuance at the token endpoint.
    Token {
        #[command(flatten)]
        creds: Credentials,
    },
    /// Introspection of one access token, by a resource-server client.
    Introspect {
        #[command(flatten)]
        creds: Credentials,
        /// Introspection endpoint URL.
        #[arg(long)]
        introspect_url: String,
        /// The introspecting client's id.
        #[arg(long, env = "BENCH_RS_CLIENT_ID")]
        rs_client_id: String,
        /// The introspecting client's secret.
        #[arg(long, env = "BENCH_RS_CLIENT_SECRET", hide_env_values = true)]
        rs_client_secret: String,
    },
}

/// Parses `250ms`, `10s`, `2m` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 10s, 500ms or 1m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{text:?}: unit must be ms, s or m")),
    };
    if !(secs.is_finite() && secs > 0.0 && secs <= 3600.0) {
        return Err(format!("{text:?} must be between 1ms and 1h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// One fixed request, sent over and over.
struct Target {
    addr: SocketAddr,
    host: HeaderValue,
    path: String,
    authorization: HeaderValue,
    body: Bytes,
    /// A byte string every successful answer contains.
    expect: &'static [u8],
}

impl Target {
    fn new(
        url: &str,
        client_id: &str,
        client_secret: &str,
        form: &[(&str, &str)],
        expect: &'static [u8],
    ) -> anyhow::Result<Self> {
        let u = url::Url::parse(url).with_context(|| format!("{url:?} is not a URL"))?;
        if u.scheme() != "http" {
            bail!("{url}: only http:// targets are supported (loopback benchmarks)");
        }
        let addr = u
            .socket_addrs(|| Some(80))
            .with_context(|| format!("cannot resolve {url}"))?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("{url} resolves to no address"))?;
        let host = match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => bail!("{url} has no host"),
        };
        let mut path = u.path().to_owned();
        if let Some(q) = u.query() {
            path.push('?');
            path.push_str(q);
        }
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before the Basic encoding.
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = STANDARD.encode(format!("{}:{}", enc(client_id), enc(client_secret)));
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in form {
            ser.append_pair(k, v);
        }
        Ok(Self {
            addr,
            host: HeaderValue::from_str(&host)?,
            path,
            authorization: HeaderValue::from_str(&format!("Basic {basic}"))?,
            body: Bytes::from(ser.finish()),
            expect,
        })
    }
}

type Conn = SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends the target's request once; returns the status and body.
async fn send(conn: &mut Conn, t: &Target) -> anyhow::Result<(u16, Bytes)> {
    conn.ready().await?;
    let mut req = Request::new(Full::new(t.body.clone()));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = t.path.parse()?;
    let h = req.headers_mut();
    h.insert(HOST, t.host.clone());
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    h.insert(AUTHORIZATION, t.authorization.clone());
    let resp = conn.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn describe(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let cut: String = text.chars().take(300).collect();
    format!("HTTP {status}: {cut}")
}

/// Sends one request on a fresh connection and checks it, so a misconfiguration is
/// reported clearly before any load.
async fn preflight(t: &Target) -> anyhow::Result<Bytes> {
    let mut c = connect(t.addr)
        .await
        .with_context(|| format!("cannot connect to {}", t.addr))?;
    let (status, body) = send(&mut c, t).await?;
    if !(200..300).contains(&status) || !contains(&body, t.expect) {
        bail!("preflight request failed: {}", describe(status, &body));
    }
    Ok(body)
}

#[derive(Default)]
struct WorkerStats {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

struct Window {
    measure_from: Instant,
    end: Instant,
}

async fn worker(t: Arc<Target>, w: Arc<Window>) -> WorkerStats {
    let mut s = WorkerStats::default();
    let note = |s: &mut WorkerStats, msg: String, started: Instant| {
        if started >= w.measure_from {
            s.errors += 1;
            if s.first_error.is_none() {
                s.first_error = Some(msg);
            }
        }
    };
    'outer: while Instant::now() < w.end {
        let started = Instant::now();
        let mut conn = match connect(t.addr).await {
            Ok(c) => c,
            Err(e) => {
                note(&mut s, format!("connect: {e}"), started);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        loop {
            let t0 = Instant::now();
            if t0 >= w.end {
                break 'outer;
            }
            match send(&mut conn, &t).await {
                Ok((status, body)) => {
                    let t1 = Instant::now();
                    if t0 < w.measure_from || t1 > w.end {
                        continue;
                    }
                    let ok = (200..300).contains(&status) && contains(&body, t.expect);
                    if ok {
                        let us =
                            u32::try_from(t1.duration_since(t0).as_micros()).unwrap_or(u32::MAX);
                        s.latencies_us.push(us);
                    } else {
                        note(&mut s, describe(status, &body), t0);
                    }
                }
                Err(e) => {
                    note(&mut s, format!("transport: {e}"), t0);
                    continue 'outer;
                }
            }
        }
    }
    s
}

/// CPU seconds used so far by every thread of process `pid` (from schedstat, in ns).
fn process_cpu_secs(pid: u32) -> Option<f64> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut ns: u64 = 0;
    for e in dir.flatten() {
        let text = std::fs::read_to_string(e.path().join("schedstat")).ok()?;
        ns += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

/// (busy, total) jiffies of the whole machine, from /proc/stat.
fn machine_jiffies() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle, total))
}

fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn cpu_count() -> usize {
    std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(1)
}

struct Sample {
    server: Option<f64>,
    me: Option<f64>,
    machine: Option<(u64, u64)>,
}

fn sample(server_pid: Option<u32>) -> Sample {
    Sample {
        server: server_pid.and_then(process_cpu_secs),
        me: process_cpu_secs(std::process::id()),
        machine: machine_jiffies(),
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // Nearest rank.
    let rank = (p * sorted.len() as f64).ceil().max(1.0) as usize;
    let idx = rank.min(sorted.len()) - 1;
    f64::from(sorted[idx]) / 1000.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

async fn run(load: &LoadOpts, scenario: &Scenario) -> anyhow::Result<(Value, bool)> {
    let (name, target) = match scenario {
        Scenario::Token { creds } => {
            let mut form = vec![
                ("grant_type", "client_credentials"),
                ("resource", creds.resource.as_str()),
            ];
            if let Some(s) = &creds.scope {
                form.push(("scope", s));
            }
            let t = Target::new(
                &creds.token_url,
                &creds.client_id,
                &creds.client_secret,
                &form,
                b"\"access_token\"",
            )?;
            preflight(&t).await?;
            ("token", t)
        }
        Scenario::Introspect {
            creds,
            introspect_url,
            rs_client_id,
            rs_client_secret,
        } => {
            let mut form = vec![
                ("grant_type", "client_credentials"),
                ("resource", creds.resource.as_str()),
            ];
            if let Some(s) = &creds.scope {
                form.push(("scope", s));
            }
            let issue = Target::new(
                &creds.token_url,
                &creds.client_id,
                &creds.client_secret,
                &form,
                b"\"access_token\"",
            )?;
            let body = preflight(&issue).await?;
            let v: Value =
                serde_json::from_slice(&body).context("the token response is not JSON")?;
            let token = v
                .get("access_token")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("the token response has no access_token"))?
                .to_owned();
            let t = Target::new(
                introspect_url,
                rs_client_id,
                rs_client_secret,
                &[("token", &token), ("token_type_hint", "access_token")],
                b"\"active\":true",
            )?;
            preflight(&t).await?;
            ("introspect", t)
        }
    };
    if load.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let target = Arc::new(target);
    let start = Instant::now();
    let window = Arc::new(Window {
        measure_from: start + load.warmup,
        end: start + load.warmup + load.duration,
    });
    let workers: Vec<_> = (0..load.concurrency)
        .map(|_| tokio::spawn(worker(Arc::clone(&target), Arc::clone(&window))))
        .collect();
    let pid = load.server_pid;
    let sampler = {
        let w = Arc::clone(&window);
        tokio::spawn(async move {
            tokio::time::sleep_until(w.measure_from.into()).await;
            let a = (sample(pid), Instant::now());
            tokio::time::sleep_until(w.end.into()).await;
            let b = (sample(pid), Instant::now());
            (a, b, loadavg())
        })
    };
    let mut all = WorkerStats::default();
    for h in workers {
        let s = h.await?;
        all.latencies_us.extend(s.latencies_us);
        all.errors += s.errors;
        if all.first_error.is_none() {
            all.first_error = s.first_error;
        }
    }
    let ((a, ta), (b, tb), load1) = sampler.await?;
    let wall = tb.duration_since(ta).as_secs_f64().max(1e-9);
    let secs = load.duration.as_secs_f64();
    let mut lat = all.latencies_us;
    lat.sort_unstable();
    let ok = lat.len() as u64;
    let total = ok + all.errors;
    let error_rate = if total == 0 {
        1.0
    } else {
        all.errors as f64 / total as f64
    };
    let mean_ms = if lat.is_empty() {
        0.0
    } else {
        lat.iter().map(|&x| f64::from(x)).sum::<f64>() / lat.len() as f64 / 1000.0
    };
    let cores = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => json!(round3((y - x) / wall)),
        _ => Value::Null,
    };
    // Requests per CPU-second of the server: its efficiency, whatever share of the
    // machine it got.
    let per_cpu_s = match (a.server, b.server) {
        (Some(x), Some(y)) if y > x => json!((ok as f64 / (y - x) * (wall / secs)).round()),
        _ => Value::Null,
    };
    let machine = match (a.machine, b.machine) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
            json!(round3(
                (b1 - b0) as f64 / (t1 - t0) as f64 * cpu_count() as f64
            ))
        }
        _ => Value::Null,
    };
    let out = json!({
        "scenario": name,
        "label": load.label,
        "url": format!("http://{}{}", target.addr, target.path),
        "concurrency": load.concurrency,
        "warmup_s": load.warmup.as_secs_f64(),
        "duration_s": secs,
        "requests": ok,
        "errors": all.errors,
        "error_rate": error_rate,
        "first_error": all.first_error,
        "throughput_rps": round3(ok as f64 / secs),
        "requests_per_server_cpu_s": per_cpu_s,
        "latency_ms": {
            "p50": percentile(&lat, 0.50),
            "p90": percentile(&lat, 0.90),
            "p99": percentile(&lat, 0.99),
            "max": percentile(&lat, 1.0),
            "mean": round3(mean_ms),
        },
        "cpu_cores_used": {
            "server": cores(a.server, b.server),
            "load_generator": cores(a.me, b.me),
            "machine": machine,
            "machine_cores": cpu_count(),
        },
        "loadavg_1m_at_end": load1,
    });
    Ok((out, total > 0 && error_rate <= load.max_error_rate))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.load.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warden-bench: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&cli.load, &cli.scenario)) {
        Ok((out, passed)) => {
            println!("{out}");
            if passed {
                std::process::ExitCode::SUCCESS
            } else {
                eprintln!(
                    "warden-bench: {} {}: error rate {} is above {} (first error: {})",
                    out["label"].as_str().unwrap_or(""),
                    out["scenario"].as_str().unwrap_or(""),
                    out["error_rate"],
                    cli.load.max_error_rate,
                    out["first_error"].as_str().unwrap_or("none"),
                );
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("warden-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[7000], 0.01), 7.0);
    }

    #[test]
    fn target_encodes_basic_and_form() {
        let t = Target::new(
            "http://127.0.0.1:8080/oauth/token",
            "id:x",
            "s e",
            &[
                ("grant_type", "client_credentials"),
                ("resource", "http://a/b"),
            ],
            b"x",
        )
        .unwrap();
        assert_eq!(t.host, "127.0.0.1:8080");
        assert_eq!(t.path, "/oauth/token");
        let b64 = t
            .authorization
            .to_str()
            .unwrap()
            .strip_prefix("Basic ")
            .unwrap();
        assert_eq!(STANDARD.decode(b64).unwrap(), b"id%3Ax:s+e");
        assert_eq!(
            &t.body[..],
            b"grant_type=client_credentials&resource=http%3A%2F%2Fa%2Fb"
        );
        assert!(Target::new("https://x/", "a", "b", &[], b"").is_err());
    }

    #[test]
    fn finds_markers() {
        assert!(contains(b"{\"active\":true}", b"\"active\":true"));
        assert!(!contains(b"{\"active\":false}", b"\"active\":true"));
    }
}
