//! Fleet posture: `GET /admin/v1/status` and `warden status`.
//!
//! [`posture`] judges the registry, the clients' secrets and the signing keys against
//! the config's policy from the records and `now` alone, so every rule is unit-tested
//! with fixed times. Violations are out of policy; warnings need attention soon.
//! [`fleet`] adds the one check that needs the network: whether each external issuer a
//! server trusts answers ([`issuers`]). An unreachable issuer is a warning, not a
//! violation: it is an outage (the gateway answers that server's requests 503), not a
//! setting out of policy, so `warden status` still exits 0 for it.

use std::collections::HashMap;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use warden_core::config::Config;
use warden_core::uri::CanonicalUri;
use warden_proto::admin::{
    ClientPosture, Finding, FleetStatus, KeyPosture, SecretPosture, ServerPosture, Severity,
};
use warden_store::{
    ClientRecord, ClientStore, KeyStore, ServerRecord, ServerStore, SigningKeyRecord,
};

use super::servers::{MAX_LEEWAY, MIN_TOKEN_TTL};
use super::{AdminError, PREFIX};
use crate::App;

mod issuers;

/// What Warden says about PKCE: it is not a setting.
pub const PKCE_NOTE: &str =
    "enforced: S256 is required of every authorization-code client, confidential ones included; it cannot be turned off";

/// How late a scheduled rotation may run (the maintenance loop's pass, a restart)
/// before the active key counts as overdue.
const ROTATION_SLACK: i64 = 3_600;

fn violation(reason: String) -> Finding {
    Finding {
        severity: Severity::Violation,
        reason,
    }
}

fn warning(reason: String) -> Finding {
    Finding {
        severity: Severity::Warning,
        reason,
    }
}

/// A duration in the largest whole unit: `90d`, `36h`, `15m`, `30s`.
pub fn human(secs: i64) -> String {
    match secs.abs() {
        s if (s >= 86_400 && s % 86_400 == 0) || s >= 10 * 86_400 => format!("{}d", secs / 86_400),
        s if s >= 3_600 => format!("{}h", secs / 3_600),
        s if s >= 60 => format!("{}m", secs / 60),
        _ => format!("{secs}s"),
    }
}

/// Judges the fleet at `now`.
pub fn posture(
    servers: &[ServerRecord],
    clients: &[ClientRecord],
    keys: &[SigningKeyRecord],
    config: &Config,
    now: i64,
) -> FleetStatus {
    let signing_key = key_posture(keys, config, now);
    let mut by_uri: HashMap<&str, Vec<&str>> = HashMap::new();
    for s in servers {
        by_uri.entry(&s.canonical_uri).or_default().push(&s.name);
    }
    let servers: Vec<ServerPosture> = servers
        .iter()
        .map(|s| server_posture(s, &by_uri, config))
        .collect();
    let clients: Vec<ClientPosture> = clients
        .iter()
        .filter(|c| c.confidential || !c.secrets.is_empty())
        .map(|c| client_posture(c, config, now))
        .collect();
    let mut status = FleetStatus {
        issuer: config.issuer.clone(),
        checked_at: now,
        ok: true,
        violations: 0,
        warnings: 0,
        pkce: PKCE_NOTE.to_owned(),
        signing_key,
        servers,
        clients,
    };
    tally(&mut status);
    status
}

/// Counts the findings into `violations`, `warnings` and `ok`.
fn tally(status: &mut FleetStatus) {
    let all = status
        .signing_key
        .findings
        .iter()
        .chain(status.servers.iter().flat_map(|s| &s.findings))
        .chain(status.clients.iter().flat_map(|c| &c.findings));
    let (mut violations, mut warnings) = (0, 0);
    for f in all {
        match f.severity {
            Severity::Violation => violations += 1,
            Severity::Warning => warnings += 1,
        }
    }
    status.violations = violations;
    status.warnings = warnings;
    status.ok = violations == 0;
}

fn key_posture(keys: &[SigningKeyRecord], config: &Config, now: i64) -> KeyPosture {
    let interval = config.keys.rotation_interval;
    let live = |k: &&SigningKeyRecord| {
        k.publish_at <= now
            && k.remove_at.is_none_or(|r| r > now)
            && k.retire_at.is_none_or(|r| r > now)
    };
    let active = keys
        .iter()
        .filter(live)
        .filter(|k| k.activate_at <= now)
        .max_by_key(|k| k.activate_at);
    let next = keys
        .iter()
        .filter(|k| k.retire_at.is_none() && k.activate_at > now)
        .min_by_key(|k| k.activate_at);
    let mut findings = Vec::new();
    let age = active.map(|k| now - k.activate_at);
    match age {
        None => findings.push(violation(
            "no signing key is active: no access token can be issued".to_owned(),
        )),
        Some(age) if age > interval + ROTATION_SLACK => findings.push(violation(format!(
            "the active key has signed for {}, longer than keys.rotation_interval ({}): is the rotation schedule running?",
            human(age),
            human(interval)
        ))),
        Some(age) if next.is_none() && age > interval - config.keys.publish_ahead + ROTATION_SLACK => {
            findings.push(warning(format!(
                "the active key has signed for {} and its successor is not published yet",
                human(age)
            )))
        }
        Some(_) => {}
    }
    KeyPosture {
        kid: active.map(|k| k.kid.clone()),
        alg: active.map(|k| k.alg.clone()),
        active_since: active.map(|k| k.activate_at),
        age_secs: age,
        rotation_interval_secs: interval,
        next_kid: next.map(|k| k.kid.clone()),
        findings,
    }
}

fn server_posture(
    s: &ServerRecord,
    by_uri: &HashMap<&str, Vec<&str>>,
    config: &Config,
) -> ServerPosture {
    let mut findings = Vec::new();
    let canonical = CanonicalUri::parse(&s.canonical_uri);
    let valid = match &canonical {
        Ok(c) if c.as_str() == s.canonical_uri => true,
        Ok(c) => {
            findings.push(violation(format!(
                "canonical URI {} is not in canonical form ({}): tokens' aud may not match it",
                s.canonical_uri,
                c.as_str()
            )));
            false
        }
        Err(e) => {
            findings.push(violation(format!(
                "canonical URI {} is invalid: {e}",
                s.canonical_uri
            )));
            false
        }
    };
    let others: Vec<&str> = by_uri
        .get(s.canonical_uri.as_str())
        .map(|names| names.iter().copied().filter(|n| *n != s.name).collect())
        .unwrap_or_default();
    if !others.is_empty() {
        findings.push(violation(format!(
            "canonical URI is shared with {}: each would accept the other's tokens",
            others.join(", ")
        )));
    }
    let ttl = crate::oauth::token::ttl_of(s, config);
    let max = config.tokens.max_access_token_ttl;
    if ttl > max {
        findings.push(violation(format!(
            "access tokens live {}, longer than the policy maximum {} (tokens.max_access_token_ttl)",
            human(ttl),
            human(max)
        )));
    } else if ttl < MIN_TOKEN_TTL {
        findings.push(violation(format!(
            "access tokens live {ttl}s, shorter than {MIN_TOKEN_TTL}s"
        )));
    }
    if !(0..=MAX_LEEWAY).contains(&s.leeway_secs) {
        findings.push(violation(format!(
            "leeway {}s is outside 0s..{MAX_LEEWAY}s",
            s.leeway_secs
        )));
    }
    if s.token_format
        .parse::<warden_core::server_settings::TokenFormat>()
        .is_err()
    {
        findings.push(violation(format!(
            "unknown token format {:?}",
            s.token_format
        )));
    }
    let issuer = s.issuer.clone().unwrap_or_else(|| "warden".to_owned());
    ServerPosture {
        name: s.name.clone(),
        canonical_uri: s.canonical_uri.clone(),
        audience_binding: valid && others.is_empty(),
        pkce_enforced: true,
        token_format: s.token_format.clone(),
        token_lifetime_secs: ttl,
        max_token_lifetime_secs: max,
        leeway_secs: s.leeway_secs,
        issuer,
        issuer_reachable: None,
        findings,
    }
}

fn client_posture(c: &ClientRecord, config: &Config, now: i64) -> ClientPosture {
    let max_age = config.secrets.max_age;
    let mut findings = Vec::new();
    let mut secrets: Vec<SecretPosture> = c
        .secrets
        .iter()
        .map(|s| SecretPosture {
            id: s.id.clone(),
            created_at: s.created_at,
            age_secs: now - s.created_at,
            max_age_at: s.created_at + max_age,
            expires_at: s.expires_at,
            state: match s.expires_at {
                Some(e) if e <= now => "expired",
                Some(_) => "retiring",
                None => "active",
            }
            .to_owned(),
        })
        .collect();
    secrets.sort_by_key(|s| s.created_at);
    let rotate = format!("rotate it: warden client rotate-secret {}", c.client_id);
    // A retiring secret is already on its way out; only the ones with no end are judged.
    for s in secrets.iter().filter(|s| s.state == "active") {
        if s.age_secs > max_age {
            findings.push(violation(format!(
                "secret {} is {} old, over secrets.max_age ({}); {rotate}",
                s.id,
                human(s.age_secs),
                human(max_age)
            )));
        } else if s.age_secs > max_age - config.secrets.expiry_warning {
            findings.push(warning(format!(
                "secret {} reaches secrets.max_age in {}; {rotate}",
                s.id,
                human(s.max_age_at - now)
            )));
        }
    }
    if c.confidential && secrets.iter().all(|s| s.state == "expired") {
        findings.push(warning(
            "no working secret: the client cannot authenticate".to_owned(),
        ));
    }
    ClientPosture {
        client_id: c.client_id.clone(),
        name: c.name.clone(),
        secrets,
        findings,
    }
}

/// The fleet's posture now, each external issuer probed (all at once, each within
/// [`issuers::PROBE_TIMEOUT`]).
pub async fn fleet(app: &App) -> Result<FleetStatus, AdminError> {
    let servers = ServerStore::list(&app.store).await?;
    let clients = ClientStore::list(&app.store).await?;
    let keys = KeyStore::list(&app.store).await?;
    let mut status = posture(&servers, &clients, &keys, &app.config, app.clock.now());
    let probes = servers.iter().enumerate().filter_map(|(i, rec)| {
        let issuer = rec
            .issuer
            .as_deref()
            .filter(|issuer| *issuer != app.config.issuer)?;
        Some(async move { (i, issuers::probe(app, issuer, rec).await) })
    });
    for (i, outcome) in futures_util::future::join_all(probes).await {
        // `posture` keeps the records' order.
        let Some(p) = status.servers.get_mut(i) else {
            continue;
        };
        p.issuer_reachable = Some(outcome.is_ok());
        if let Err(why) = outcome {
            p.findings.push(warning(format!(
                "the external issuer {} is unreachable ({why}): the gateway answers 503 to this server's requests until it is back",
                p.issuer
            )));
        }
    }
    tally(&mut status);
    Ok(status)
}

async fn status_h(State(app): State<App>) -> Result<Json<FleetStatus>, AdminError> {
    fleet(&app).await.map(Json)
}

/// `/admin/v1/status`.
pub fn routes() -> Router<App> {
    Router::new().route(&format!("{PREFIX}/status"), get(status_h))
}

#[cfg(test)]
mod tests;
