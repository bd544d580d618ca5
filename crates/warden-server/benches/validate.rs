//! What the gateway's token validation costs: a token never seen before (SHA-256 of the
//! token, cache miss, ES256 signature verification, claim checks, revocation check,
//! cache insert) against the same token again (cache hit: expiry and revocation
//! re-checked), timed call by call on `gateway::validate::authenticate`. Also timed: the
//! upstream assertion the first request with a token signs, and its reuse afterwards.
//!
//! ```sh
//! cargo bench -p warden-server --bench validate            # 2000 tokens
//! VALIDATE_TOKENS=10000 cargo bench -p warden-server --bench validate
//! ```
//!
//! Prints one JSON object (medians and p90/p99 in µs) on stdout, a summary on stderr.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use warden_core::clock::{SharedClock, SystemClock};
use warden_core::config::Config;
use warden_core::keys::{MasterKey, SigningAlg};
use warden_core::scope::ScopeSet;
use warden_server::gateway::registry::{Lookup, Upstream};
use warden_server::gateway::{assertion, validate};
use warden_server::App;
use warden_store::{ServerRecord, ServerStore, Store, ToolGroup};

const BASE: &str = "http://127.0.0.1:8080";

fn main() -> anyhow::Result<()> {
    let tokens = match std::env::var("VALIDATE_TOKENS") {
        Ok(n) => n.parse().context("VALIDATE_TOKENS is not a number")?,
        Err(_) => 2000,
    };
    if tokens < 10 {
        bail!("VALIDATE_TOKENS must be at least 10");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(measure(tokens))?;
    println!("{report}");
    eprintln!(
        "token validation over {tokens} tokens: cold median {} µs, cached median {} µs; \
         first upstream assertion median {} µs, reused {} µs",
        report["cold_us"]["p50"],
        report["cached_us"]["p50"],
        report["assertion_sign_us"]["p50"],
        report["assertion_reuse_us"]["p50"],
    );
    Ok(())
}

async fn measure(count: usize) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let config = Config::load(&Config::template(BASE), std::iter::empty(), dir.path())?;
    let store = Store::open(config.database.url.expose()).await?;
    let master = MasterKey::generate()?;
    let clock: SharedClock = Arc::new(SystemClock);
    let now = clock.now();
    warden_server::keyring::create_key(&store, &master.sealer(), SigningAlg::Es256, now, now, now)
        .await?;
    let record = ServerRecord {
        name: "bench".into(),
        canonical_uri: format!("{BASE}/mcp/bench"),
        upstream: "http://127.0.0.1:9/mcp".into(),
        tool_groups: vec![ToolGroup {
            scope: "bench:read".into(),
            tools: vec!["notes_list".into()],
        }],
        token_format: "jwt".into(),
        access_token_ttl_secs: 900,
        leeway_secs: 30,
        issuer: None,
        settings: json!({}),
        created_at: now,
        updated_at: now,
    };
    ServerStore::create(&store, &record).await?;
    let app = App::new(config, store, &master, clock).await?;
    let Lookup::Found(server) = app.gateway.registry.lookup(&app, "bench").await else {
        bail!("the bench server did not load");
    };
    let Upstream::Http { audience, .. } = &server.upstream else {
        bail!("the bench server is not an HTTP upstream");
    };

    let scope = ScopeSet::parse("bench:read")?;
    let mint = |i: usize| {
        warden_server::oauth::token::mint_access_token(
            &app,
            &format!("agent-{i}"),
            "bench-client",
            &record,
            &scope,
            now,
            900,
        )
        .map(|issued| issued.token)
        .map_err(|e| anyhow::anyhow!("minting a token failed: {e}"))
    };
    // A short untimed run first, so code and allocator are warm.
    let warm: Vec<String> = (0..count / 10)
        .map(|i| mint(count + i))
        .collect::<Result<_, _>>()?;
    let tokens: Vec<String> = (0..count).map(mint).collect::<Result<_, _>>()?;

    let mut cold = Vec::with_capacity(count);
    let mut cached = Vec::with_capacity(count);
    let mut sign = Vec::with_capacity(count);
    let mut reuse = Vec::with_capacity(count);
    for (set, timed) in [(&warm, false), (&tokens, true)] {
        for token in set {
            let t0 = Instant::now();
            let principal = validate::authenticate(&app, &server, token, now).await?;
            let t1 = Instant::now();
            sign_assertion(&app, audience, &principal, now)?;
            let t2 = Instant::now();
            sign_assertion(&app, audience, &principal, now)?;
            let t3 = Instant::now();
            if timed {
                cold.push(t1 - t0);
                sign.push(t2 - t1);
                reuse.push(t3 - t2);
            }
        }
        for token in set {
            let t0 = Instant::now();
            validate::authenticate(&app, &server, token, now).await?;
            if timed {
                cached.push(t0.elapsed());
            }
        }
    }
    let cold = summary(cold);
    let cached = summary(cached);
    Ok(json!({
        "benchmark": "gateway token validation",
        "tokens": count,
        "signing_alg": "ES256",
        "cold_us": cold,
        "cached_us": cached,
        "cold_over_cached": round2(cold["p50"].as_f64().unwrap_or(0.0)
            / cached["p50"].as_f64().unwrap_or(1.0).max(1e-3)),
        "assertion_sign_us": summary(sign),
        "assertion_reuse_us": summary(reuse),
    }))
}

fn sign_assertion(
    app: &App,
    audience: &str,
    principal: &validate::Principal,
    now: i64,
) -> anyhow::Result<()> {
    assertion::upstream_authorization(app, audience, principal, now)
        .map(drop)
        .map_err(|e| anyhow::anyhow!("no upstream assertion: {e:?}"))
}

/// Nearest-rank median, p90 and p99 in µs.
fn summary(mut samples: Vec<std::time::Duration>) -> Value {
    samples.sort_unstable();
    let at = |p: f64| {
        let rank = (p * samples.len() as f64).ceil().max(1.0) as usize;
        samples
            .get(rank.min(samples.len()).saturating_sub(1))
            .map_or(0.0, |d| round2(d.as_secs_f64() * 1e6))
    };
    json!({ "p50": at(0.5), "p90": at(0.9), "p99": at(0.99) })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
