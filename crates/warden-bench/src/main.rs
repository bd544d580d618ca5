//! `warden-bench`: an HTTP/1.1 load generator for Warden's benchmarks, and the bare
//! reverse proxy they compare the gateway against.
//!
//! N workers each hold one keep-alive connection and send one fixed request over it:
//!
//! - **closed loop** (default): the next request goes as soon as the previous answer is
//!   read, so the offered load is whatever the server sustains at that concurrency;
//! - **fixed rate** (`--rate R`): requests are due at fixed intervals (`1/R`), spread
//!   round-robin over the connections, and latency runs from the due time whenever a
//!   connection falls behind (see [`load::fixed_rate`]), so a stall is not hidden by the
//!   load backing off.
//!
//! After a warm-up, every request inside the measurement window is timed; the latencies
//! are sorted for exact percentiles. A non-2xx status, a body without the expected marker,
//! or a transport error is an error; more than `--max-error-rate` of them fails the run
//! (exit status 1) after the JSON is printed.
//!
//! Scenarios:
//! - `token`: `POST` a `client_credentials` request with HTTP Basic client authentication;
//!   the answer must carry `access_token`.
//! - `introspect`: get one token that way, then `POST` it to the introspection endpoint
//!   (as another confidential client) over and over; the answer must say `"active":true`.
//! - `mcp`: open an MCP session (`initialize`, `notifications/initialized`), then `POST`
//!   the same `tools/call` in it over and over; the answer must say `"isError":false`.
//!
//! `proxy` is not a scenario: it runs the bare reverse proxy ([`proxy`]) until killed.
//!
//! The JSON on stdout also carries the CPU time the server process (`--server-pid`), this
//! process and the whole machine used during the window, so a reader can tell a saturated
//! server from a busy machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

/// The same allocator as the `warden` binary, so that the bare proxy this harness runs
/// is compared with the gateway on equal terms.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod http;
mod load;
mod machine;
mod mcp;
mod proxy;

use http::Target;
use load::{Schedule, Window, WorkerStats};

#[derive(Parser, Debug)]
#[command(
    name = "warden-bench",
    about = "HTTP/1.1 load generator for OAuth endpoints and MCP servers, and a bare reverse proxy"
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
    /// Fixed rate (requests per second, open loop) instead of a closed loop.
    #[arg(long, global = true)]
    rate: Option<f64>,
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
    /// One MCP `tools/call`, in a session opened once.
    Mcp(mcp::McpArgs),
    /// Run a bare pooled reverse proxy to one upstream URL until killed (no load).
    Proxy(proxy::ProxyArgs),
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

/// The client-credentials form for `creds`.
fn token_form(creds: &Credentials) -> Vec<(&str, &str)> {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("resource", creds.resource.as_str()),
    ];
    if let Some(s) = &creds.scope {
        form.push(("scope", s));
    }
    form
}

/// The scenario's request, checked once.
async fn target(scenario: &Scenario) -> anyhow::Result<(&'static str, Target)> {
    Ok(match scenario {
        Scenario::Token { creds } => {
            let t = Target::form(
                &creds.token_url,
                &creds.client_id,
                &creds.client_secret,
                &token_form(creds),
                b"\"access_token\"",
            )?;
            t.preflight().await?;
            ("token", t)
        }
        Scenario::Introspect {
            creds,
            introspect_url,
            rs_client_id,
            rs_client_secret,
        } => {
            let issue = Target::form(
                &creds.token_url,
                &creds.client_id,
                &creds.client_secret,
                &token_form(creds),
                b"\"access_token\"",
            )?;
            let body = issue.preflight().await?;
            let v: Value =
                serde_json::from_slice(&body).context("the token response is not JSON")?;
            let token = v
                .get("access_token")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("the token response has no access_token"))?
                .to_owned();
            let t = Target::form(
                introspect_url,
                rs_client_id,
                rs_client_secret,
                &[("token", &token), ("token_type_hint", "access_token")],
                b"\"active\":true",
            )?;
            t.preflight().await?;
            ("introspect", t)
        }
        Scenario::Mcp(args) => ("mcp", mcp::target(args).await?),
        Scenario::Proxy(_) => bail!("proxy is not a load scenario"),
    })
}

async fn run(load: &LoadOpts, scenario: &Scenario) -> anyhow::Result<(Value, bool)> {
    let (name, target) = target(scenario).await?;
    if load.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let workers = u32::try_from(load.concurrency).context("--concurrency is too large")?;
    let interval = match load.rate {
        None => None,
        Some(r) if r.is_finite() && r >= 1.0 => Some(Duration::from_secs_f64(1.0 / r)),
        Some(_) => bail!("--rate must be at least 1 request per second"),
    };
    let target = Arc::new(target);
    let start = Instant::now();
    let window = Arc::new(Window {
        start,
        measure_from: start + load.warmup,
        end: start + load.warmup + load.duration,
    });
    let handles: Vec<_> = (0..workers)
        .map(|worker| {
            let (t, w) = (Arc::clone(&target), Arc::clone(&window));
            match interval {
                None => tokio::spawn(load::closed_loop(t, w)),
                Some(interval) => tokio::spawn(load::fixed_rate(
                    t,
                    w,
                    Schedule {
                        interval,
                        worker,
                        workers,
                    },
                )),
            }
        })
        .collect();
    let pid = load.server_pid;
    let sampler = {
        let w = Arc::clone(&window);
        tokio::spawn(async move {
            tokio::time::sleep_until(w.measure_from.into()).await;
            let a = (machine::sample(pid), Instant::now());
            tokio::time::sleep_until(w.end.into()).await;
            let b = (machine::sample(pid), Instant::now());
            (a, b, machine::loadavg())
        })
    };
    let mut all = WorkerStats::default();
    for h in handles {
        let s = h.await?;
        all.latencies_us.extend(s.latencies_us);
        all.errors += s.errors;
        all.behind_schedule += s.behind_schedule;
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
                (b1 - b0) as f64 / (t1 - t0) as f64 * machine::cpu_count() as f64
            ))
        }
        _ => Value::Null,
    };
    let ep = &target.endpoint;
    let out = json!({
        "scenario": name,
        "label": load.label,
        "url": format!("http://{}{}", ep.addr, ep.path),
        "mode": if load.rate.is_some() { "fixed_rate" } else { "closed_loop" },
        "target_rate_rps": load.rate,
        "behind_schedule": load.rate.map(|_| all.behind_schedule),
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
            "machine_cores": machine::cpu_count(),
        },
        "loadavg_1m_at_end": load1,
    });
    Ok((out, total > 0 && error_rate <= load.max_error_rate))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Scenario::Proxy(args) = &cli.scenario {
        return match proxy::run(args) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("warden-bench proxy: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
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
    fn cli_parses_each_scenario() {
        let cli = Cli::try_parse_from([
            "warden-bench",
            "--rate",
            "2000",
            "mcp",
            "--url",
            "http://127.0.0.1:1/mcp",
        ])
        .unwrap();
        assert_eq!(cli.load.rate, Some(2000.0));
        assert!(matches!(cli.scenario, Scenario::Mcp(_)));
        let cli = Cli::try_parse_from([
            "warden-bench",
            "proxy",
            "--upstream",
            "http://127.0.0.1:1/mcp",
        ])
        .unwrap();
        assert!(matches!(cli.scenario, Scenario::Proxy(_)));
    }
}
