//! `warden status`: the fleet's posture against policy.
//!
//! Exit status: 0 when nothing is out of policy (warnings, such as a secret nearing its
//! maximum age or an external issuer that does not answer, are printed but pass), 2 when
//! something is ([`OutOfPolicy`]), 1 when the check itself failed. Scripts and CI can
//! gate on it.

use std::fmt;

use warden_proto::admin::{Finding, FleetStatus, Severity};

use crate::admin::with_admin;
use crate::{output, Common};

/// Something is out of policy: `main` exits with status 2.
#[derive(Debug)]
pub struct OutOfPolicy(pub usize);

impl fmt::Display for OutOfPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = if self.0 == 1 { "" } else { "s" };
        write!(f, "{} finding{s} out of policy", self.0)
    }
}

impl std::error::Error for OutOfPolicy {}

fn days(secs: i64) -> String {
    warden_server::admin::status::human(secs)
}

fn print_findings(findings: &[Finding]) {
    for f in findings {
        let tag = match f.severity {
            Severity::Violation => "VIOLATION",
            Severity::Warning => "warning",
        };
        println!("    {tag}: {}", f.reason);
    }
}

fn print(s: &FleetStatus) {
    println!(
        "Fleet posture of {} at {}",
        s.issuer,
        output::time(s.checked_at)
    );
    println!("PKCE: {}", s.pkce);
    let k = &s.signing_key;
    match (&k.kid, k.age_secs) {
        (Some(kid), Some(age)) => println!(
            "Signing key {kid} ({}): signing for {}, rotation every {}{}",
            k.alg.as_deref().unwrap_or("?"),
            days(age),
            days(k.rotation_interval_secs),
            k.next_kid
                .as_ref()
                .map(|n| format!(", next key {n} published"))
                .unwrap_or_default()
        ),
        _ => println!("Signing key: none active"),
    }
    print_findings(&k.findings);
    println!();
    let rows: Vec<Vec<String>> = s
        .servers
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                if p.audience_binding { "on" } else { "OFF" }.to_owned(),
                if p.pkce_enforced { "enforced" } else { "NO" }.to_owned(),
                format!(
                    "{} (max {})",
                    days(p.token_lifetime_secs),
                    days(p.max_token_lifetime_secs)
                ),
                format!("{}s", p.leeway_secs),
                match p.issuer_reachable {
                    Some(false) => format!("{} (UNREACHABLE)", p.issuer),
                    _ => p.issuer.clone(),
                },
                if p.findings.is_empty() {
                    "ok"
                } else {
                    "FLAGGED"
                }
                .to_owned(),
            ]
        })
        .collect();
    output::table(
        &[
            "SERVER",
            "AUDIENCE",
            "PKCE",
            "TOKEN LIFETIME",
            "LEEWAY",
            "ISSUER",
            "POSTURE",
        ],
        &rows,
    );
    for p in s.servers.iter().filter(|p| !p.findings.is_empty()) {
        println!("  {} ({})", p.name, p.canonical_uri);
        print_findings(&p.findings);
    }
    println!();
    let rows: Vec<Vec<String>> = s
        .clients
        .iter()
        .flat_map(|c| {
            c.secrets.iter().map(move |x| {
                vec![
                    c.client_id.clone(),
                    c.name.clone(),
                    x.id.clone(),
                    days(x.age_secs),
                    x.state.clone(),
                ]
            })
        })
        .collect();
    output::table(&["CLIENT", "NAME", "SECRET", "AGE", "STATE"], &rows);
    for c in s.clients.iter().filter(|c| !c.findings.is_empty()) {
        println!("  {} ({})", c.client_id, c.name);
        print_findings(&c.findings);
    }
    println!();
    println!(
        "{}: {} violation(s), {} warning(s)",
        if s.ok { "In policy" } else { "OUT OF POLICY" },
        s.violations,
        s.warnings
    );
}

/// Runs `warden status`.
pub async fn run(common: &Common) -> anyhow::Result<()> {
    let status = with_admin(common, async |admin| admin.status().await).await?;
    if common.json {
        output::json(&status)?;
    } else {
        print(&status);
    }
    if status.ok {
        Ok(())
    } else {
        Err(OutOfPolicy(status.violations).into())
    }
}
