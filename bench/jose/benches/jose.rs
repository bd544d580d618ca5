//! Warden's hand-written JWS (`warden_core::jwt`, on ring) against the `jsonwebtoken`
//! crate (12, `aws_lc_rs` backend), in one run: first whether the crate can express every
//! refusal rule `jwt`'s tests check, then what signing and verifying a typical access
//! token costs each way, for ES256 (Warden's default key) and EdDSA.
//!
//! ```sh
//! cargo bench -p warden-core --bench jose              # table, then about 2 min of timing
//! cargo bench -p warden-core --bench jose -- verify    # only the verification benchmarks
//! ```
//!
//! The table goes to stdout: each case, what it must give, what `jwt::verify` gave and
//! what the crate-based verifier (`jose/crate_jose.rs`) gave. That verifier is the crate
//! plus the least glue that makes it pass the same cases; what the crate alone gets wrong
//! follows the table. Then criterion times each pair of functions, one after the other,
//! and the run ends with their medians and ratios, and the same pairs timed again in
//! alternating batches (steadier on a shared machine). `JOSE_ROUNDS` (1000) sets how many
//! alternations.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::Criterion;
use serde::Serialize;
use serde_json::{Map, Value};
use warden_core::clock::{Clock as _, SystemClock};
use warden_core::jwt::{self, AccessTokenRule, Audience, Expiry, JwtError, AT_JWT_TYP};
use warden_core::keys::{SigningAlg, SigningKey};

use cases::{correctness, crate_alone, jwks, Keys};

#[path = "jose/cases.rs"]
mod cases;
#[path = "jose/crate_jose.rs"]
mod crate_jose;

type BoxError = Box<dyn std::error::Error>;

/// One signature made by aws-lc, over the message given.
type SignWith = Box<dyn Fn(&[u8])>;

/// The `now` every case and benchmark is checked at.
const NOW: i64 = 1_800_000_000;
const ISS: &str = "https://warden.example";
const AUD: &str = "https://warden.example/mcp/notes";

/// The claims of a Warden access token, as `oauth::token::mint` signs them.
#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: &'a str,
    client_id: &'a str,
    scope: &'a str,
}

fn access_claims() -> AccessClaims<'static> {
    AccessClaims {
        iss: ISS,
        sub: "user_5Gk2xQm9TcVw3LpR8bNf",
        aud: AUD,
        exp: NOW + 900,
        iat: NOW,
        nbf: NOW,
        jti: "Zt4cQ1v8mK2pX7rW9yB3nH",
        client_id: "client_c8Fq2LxV7mTz",
        scope: "notes:read notes:write",
    }
}

// === The benchmarks ===

/// Two implementations of one operation, timed side by side.
struct Pair<'a> {
    /// Criterion's group, such as `verify/ES256`.
    group: String,
    base: (&'static str, Box<dyn Fn() + 'a>),
    other: (&'static str, Box<dyn Fn() + 'a>),
}

impl<'a> Pair<'a> {
    fn new(
        group: String,
        base: (&'static str, impl Fn() + 'a),
        other: (&'static str, impl Fn() + 'a),
    ) -> Self {
        Self {
            group,
            base: (base.0, Box::new(base.1)),
            other: (other.0, Box::new(other.1)),
        }
    }
}

/// The uncompressed EC point, or the Ed25519 key, from Warden's own JWK.
fn public_key_bytes(sk: &SigningKey) -> Result<Vec<u8>, BoxError> {
    let jwk = sk.public_jwk();
    let part = |k: &str| -> Result<Vec<u8>, BoxError> {
        let text = jwk[k].as_str().ok_or("JWK member")?;
        Ok(URL_SAFE_NO_PAD.decode(text)?)
    };
    Ok(match sk.alg() {
        SigningAlg::Es256 => [vec![4], part("x")?, part("y")?].concat(),
        _ => part("x")?,
    })
}

/// The crate-based `verify_access_token`, with the rule the benchmarks use.
fn crate_verify(token: &str, ring: &[crate_jose::Key]) -> Result<Map<String, Value>, JwtError> {
    crate_jose::verify_access_token(
        token,
        ring,
        ISS,
        Audience::Exactly(AUD),
        30,
        Expiry::Enforce,
        NOW,
    )
}

/// For each algorithm: signing and verifying a typical access token, Warden against the
/// crate (with its glue, and its bare `decode`), and the signature primitives underneath
/// (ring against aws-lc), so a difference can be told apart from the JOSE code around it.
fn pairs<'a>(keys: &[(&'static str, &'a Keys)]) -> Result<Vec<Pair<'a>>, BoxError> {
    use aws_lc_rs::signature as lc;
    use ring::signature as rg;
    let mut out = Vec::new();
    for &(name, k) in keys {
        let claims = access_claims();
        let alg: jsonwebtoken::Algorithm = k.sk.alg().as_str().parse()?;
        let encoding = match k.sk.alg() {
            SigningAlg::Es256 => jsonwebtoken::EncodingKey::from_ec_der(k.sk.pkcs8()),
            _ => jsonwebtoken::EncodingKey::from_ed_der(k.sk.pkcs8()),
        };
        let mut header = jsonwebtoken::Header::new(alg);
        header.typ = Some(AT_JWT_TYP.into());
        header.kid = Some(k.sk.kid().into());
        // Both sign the same claims, and each verifies the other's token.
        let token = jwt::sign(&claims, AT_JWT_TYP, &k.sk)?;
        let theirs = jsonwebtoken::encode(&header, &claims, &encoding)?;
        let ring = vec![Arc::new(k.ours.clone())];
        let their_ring = vec![crate_jose::key_from_jwk(&k.sk.public_jwk())?];
        let rule = AccessTokenRule {
            issuer: ISS,
            audience: Audience::Exactly(AUD),
            leeway: 30,
            expiry: Expiry::Enforce,
        };
        for t in [&token, &theirs] {
            jwt::verify_access_token(t, &ring, &rule, NOW)?;
            crate_verify(t, &their_ring)?;
        }
        let mut bare = jsonwebtoken::Validation::new(alg);
        bare.validate_exp = false;
        bare.set_issuer(&[ISS]);
        bare.set_audience(&[AUD]);
        let their_key = their_ring[0].decoding_key().clone();
        jsonwebtoken::decode::<Map<String, Value>>(&token, &their_key, &bare)?;

        let (input, sig) = token.rsplit_once('.').ok_or("token")?;
        let (input, sig) = (input.as_bytes().to_vec(), URL_SAFE_NO_PAD.decode(sig)?);
        let public = public_key_bytes(&k.sk)?;

        let (claims2, header2, ring2) = (access_claims(), header.clone(), ring.clone());
        let sk = &k.sk;
        out.push(Pair::new(
            format!("sign/{name}"),
            ("warden", move || {
                let _ = black_box(jwt::sign(black_box(&claims), AT_JWT_TYP, sk));
            }),
            ("jsonwebtoken", move || {
                let _ = black_box(jsonwebtoken::encode(
                    &header2,
                    black_box(&claims2),
                    &encoding,
                ));
            }),
        ));
        let t2 = token.clone();
        out.push(Pair::new(
            format!("verify/{name}"),
            ("warden", move || {
                let _ = black_box(jwt::verify_access_token(black_box(&t2), &ring2, &rule, NOW));
            }),
            ("jsonwebtoken", {
                let t = token.clone();
                move || {
                    let _ = black_box(crate_verify(black_box(&t), &their_ring));
                }
            }),
        ));
        let t3 = token.clone();
        out.push(Pair::new(
            format!("decode/{name}"),
            ("warden", move || {
                let _ = black_box(jwt::verify_access_token(black_box(&t3), &ring, &rule, NOW));
            }),
            ("jsonwebtoken-bare", move || {
                let _ = black_box(jsonwebtoken::decode::<Map<String, Value>>(
                    black_box(&token),
                    &their_key,
                    &bare,
                ));
            }),
        ));
        // The primitives alone: a key pair held, one signature made or checked.
        let pkcs8 = k.sk.pkcs8().to_vec();
        let bad = |_| "aws-lc key";
        let (lc_sign, rg_verify, lc_verify): (SignWith, _, _) = match k.sk.alg() {
            SigningAlg::Es256 => {
                let pair =
                    lc::EcdsaKeyPair::from_pkcs8(&lc::ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
                        .map_err(bad)?;
                let rng = aws_lc_rs::rand::SystemRandom::new();
                (
                    Box::new(move |m: &[u8]| {
                        let _ = black_box(pair.sign(&rng, m));
                    }),
                    &rg::ECDSA_P256_SHA256_FIXED as &'static dyn rg::VerificationAlgorithm,
                    &lc::ECDSA_P256_SHA256_FIXED as &'static dyn lc::VerificationAlgorithm,
                )
            }
            _ => {
                let pair = lc::Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(bad)?;
                (
                    Box::new(move |m: &[u8]| {
                        let _ = black_box(pair.sign(m));
                    }),
                    &rg::ED25519 as &'static dyn rg::VerificationAlgorithm,
                    &lc::ED25519 as &'static dyn lc::VerificationAlgorithm,
                )
            }
        };
        let msg = input.clone();
        out.push(Pair::new(
            format!("primitive-sign/{name}"),
            ("ring", move || {
                let _ = black_box(sk.sign(black_box(&msg)));
            }),
            ("aws-lc", {
                let msg = input.clone();
                move || lc_sign(black_box(&msg))
            }),
        ));
        let (p1, s1, m1) = (public.clone(), sig.clone(), input.clone());
        out.push(Pair::new(
            format!("primitive-verify/{name}"),
            ("ring", move || {
                let key = rg::UnparsedPublicKey::new(rg_verify, &p1);
                let _ = black_box(key.verify(black_box(&m1), &s1));
            }),
            ("aws-lc", move || {
                let key = lc::UnparsedPublicKey::new(lc_verify, &public);
                let _ = black_box(key.verify(black_box(&input), &sig));
            }),
        ));
    }
    Ok(out)
}

/// Where criterion writes its estimates (set explicitly so the summary can read them).
fn criterion_dir() -> PathBuf {
    match std::env::var_os("CRITERION_HOME") {
        Some(home) => PathBuf::from(home),
        None => match std::env::var_os("CARGO_TARGET_DIR") {
            Some(target) => PathBuf::from(target).join("criterion"),
            None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/criterion"),
        },
    }
}

/// Criterion's median (µs) for one function, if this run measured it.
fn criterion_median(dir: &Path, group: &str, function: &str, since: SystemTime) -> Option<f64> {
    let path = dir
        .join(group.replace('/', "_"))
        .join(function)
        .join("new/estimates.json");
    let fresh = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since);
    let bytes = std::fs::read(&path).ok().filter(|_| fresh)?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v["median"]["point_estimate"].as_f64().map(|ns| ns / 1e3)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Times both sides of `pair` in alternating batches (the order flips each round), so a
/// busy spell on a shared machine slows both alike: per-call medians of each, and the
/// median of the per-round ratios other ÷ base.
fn interleaved(pair: &Pair<'_>, rounds: usize) -> (f64, f64, f64) {
    let per_call = |f: &dyn Fn(), n: u32| {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    };
    // About 0.3 ms a batch.
    let batch = (300.0 / per_call(&*pair.base.1, 20).max(0.01)).clamp(1.0, 10_000.0) as u32;
    let (mut a, mut b, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (x, y) = if round % 2 == 0 {
            let x = per_call(&*pair.base.1, batch);
            (x, per_call(&*pair.other.1, batch))
        } else {
            let y = per_call(&*pair.other.1, batch);
            (per_call(&*pair.base.1, batch), y)
        };
        a.push(x);
        b.push(y);
        ratio.push(y / x);
    }
    (median(a), median(b), median(ratio))
}

fn main() -> Result<(), BoxError> {
    let es = Keys::new(SigningAlg::Es256)?;
    let ed = Keys::new(SigningAlg::EdDsa)?;
    let rs = Keys::new(SigningAlg::Rs256)?;
    let wrong = correctness(&es, &ed, &rs)?;
    println!("cases the hand-written verifier gets wrong: {wrong}");
    jwks(&es)?;
    crate_alone(&es)?;
    if wrong > 0 {
        return Err(format!("the hand-written verifier gets {wrong} cases wrong").into());
    }

    let args: Vec<String> = std::env::args().skip(1).collect();
    let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
    let testing = args.iter().any(|a| a == "--test");
    let pairs = pairs(&[("ES256", &es), ("EdDSA", &ed)])?;
    // Estimates written from now on are this run's (criterion keeps older ones).
    let started = UNIX_EPOCH + Duration::from_millis(SystemClock.now_ms().try_into()?);
    let dir = criterion_dir();
    let mut c = Criterion::default()
        .output_directory(&dir)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    for p in &pairs {
        let mut g = c.benchmark_group(p.group.as_str());
        for (function, f) in [&p.base, &p.other] {
            g.bench_function(*function, |b| b.iter(f));
        }
        g.finish();
    }
    c.final_summary();
    if testing {
        return Ok(());
    }

    let rounds = match std::env::var("JOSE_ROUNDS") {
        Ok(n) => n.parse()?,
        Err(_) => 1000,
    };
    println!("\nmedians, µs per call: criterion (one after the other) | interleaved ({rounds} alternating rounds)");
    println!(
        "{:<24} {:<18} {:>9} {:>9} {:>7} | {:>9} {:>9} {:>7}",
        "group", "other vs base", "base", "other", "ratio", "base", "other", "ratio"
    );
    for p in &pairs {
        if filter.as_deref().is_some_and(|f| !p.group.contains(f)) {
            continue;
        }
        let crit = |f: &str| criterion_median(&dir, &p.group, f, started);
        let (cb, co) = (crit(p.base.0), crit(p.other.0));
        let (ib, io, ir) = interleaved(p, rounds);
        let show = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.2}"));
        let cr = cb.zip(co).map(|(b, o)| o / b);
        println!(
            "{:<24} {:<18} {:>9} {:>9} {:>7} | {:>9.2} {:>9.2} {:>6.2}x",
            p.group,
            format!("{} / {}", p.other.0, p.base.0),
            show(cb),
            show(co),
            cr.map_or("-".into(), |r| format!("{r:.2}x")),
            ib,
            io,
            ir
        );
    }
    Ok(())
}
