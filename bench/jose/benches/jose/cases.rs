//! The refusal cases of `src/jwt/tests.rs` (and a few more the crate's own rules invite),
//! run through the hand-written verifier and the crate-based one.

use std::fmt::Write as _;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use warden_core::clock::{Clock as _, SystemClock};
use warden_core::jwt::{
    self, AccessTokenRule, Audience, Expiry, JwtError, Validation, VerifyingKey, AT_JWT_TYP,
};
use warden_core::keys::{SigningAlg, SigningKey};

use super::{crate_jose, BoxError, AUD, ISS, NOW};

/// One signing key, as Warden holds it, and its public key in both verifiers.
pub struct Keys {
    pub sk: SigningKey,
    pub ours: VerifyingKey,
    pub theirs: crate_jose::Key,
}

impl Keys {
    pub fn new(alg: SigningAlg) -> Result<Self, BoxError> {
        let sk = SigningKey::generate(alg, "k1".into())?;
        let jwk = sk.public_jwk();
        Ok(Self {
            ours: VerifyingKey::from_jwk(&jwk)?,
            theirs: crate_jose::key_from_jwk(&jwk)?,
            sk,
        })
    }
}

impl Keys {
    fn offer<'a>(&'a self, ed: &'a Keys, rs: &'a Keys, offer: Offer) -> Vec<&'a VerifyingKey> {
        match offer {
            Offer::All => vec![&self.ours, &ed.ours, &rs.ours],
            Offer::Es256 => vec![&self.ours],
            Offer::Nothing => vec![],
        }
    }

    fn offer_crate<'a>(
        &'a self,
        ed: &'a Keys,
        rs: &'a Keys,
        offer: Offer,
    ) -> Vec<&'a crate_jose::Key> {
        match offer {
            Offer::All => vec![&self.theirs, &ed.theirs, &rs.theirs],
            Offer::Es256 => vec![&self.theirs],
            Offer::Nothing => vec![],
        }
    }
}

fn claims(exp_in: i64) -> Map<String, Value> {
    let v = json!({
        "iss": ISS, "sub": "alice", "aud": AUD, "client_id": "c1",
        "iat": NOW, "nbf": NOW, "exp": NOW + exp_in, "jti": "j1", "scope": "notes:read",
    });
    v.as_object().cloned().unwrap_or_default()
}

fn with(mut c: Map<String, Value>, name: &str, value: Value) -> Map<String, Value> {
    c.insert(name.into(), value);
    c
}

fn validation() -> Validation {
    Validation {
        algorithms: vec!["ES256".into(), "EdDSA".into(), "RS256".into()],
        typ: vec![AT_JWT_TYP.into()],
        issuer: ISS.into(),
        audience: Some(AUD.into()),
        leeway: 30,
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default())
}

/// A token with the header given as JSON, signed by `sk`.
fn signed_with_header(
    header: Value,
    c: &Map<String, Value>,
    sk: &SigningKey,
) -> Result<String, BoxError> {
    let input = format!("{}.{}", b64(&header), b64(&Value::Object(c.clone())));
    let sig = sk.sign(input.as_bytes())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// How a case is verified.
enum Check {
    /// `verify` with this validation, at this time, offered these keys.
    Verify {
        v: Validation,
        now: i64,
        offer: Offer,
    },
    /// `verify_access_token` against a ring of the ES256 key (or an empty one).
    Access {
        audience: Audience<'static>,
        expiry: Expiry,
        ring: bool,
    },
}

/// The keys a `verify` case's lookup returns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Offer {
    /// The ES256, EdDSA and RS256 keys: the alg binding picks.
    All,
    /// Only the ES256 key.
    Es256,
    /// None (an unknown `kid`).
    Nothing,
}

struct Case {
    name: String,
    token: String,
    expect: Result<(), JwtError>,
    check: Check,
}

fn case(name: &str, token: String, expect: Result<(), JwtError>, check: Check) -> Case {
    Case {
        name: name.into(),
        token,
        expect,
        check,
    }
}

fn verify_at(v: Validation, now: i64) -> Check {
    Check::Verify {
        v,
        now,
        offer: Offer::All,
    }
}

fn access(audience: Audience<'static>, expiry: Expiry) -> Check {
    Check::Access {
        audience,
        expiry,
        ring: true,
    }
}

/// The cases of `src/jwt/tests.rs`, plus a few the crate's own rules invite.
fn cases(es: &Keys, ed: &Keys, rs: &Keys) -> Result<Vec<Case>, BoxError> {
    let v = validation;
    let sign = |c: &Map<String, Value>, typ: &str| jwt::sign(c, typ, &es.sk);
    let ok = Ok(());
    let mut out = vec![
        case(
            "valid ES256",
            sign(&claims(900), AT_JWT_TYP)?,
            ok.clone(),
            verify_at(v(), NOW),
        ),
        case(
            "valid EdDSA",
            jwt::sign(&claims(900), AT_JWT_TYP, &ed.sk)?,
            ok.clone(),
            verify_at(v(), NOW),
        ),
        case(
            "valid RS256",
            jwt::sign(&claims(900), AT_JWT_TYP, &rs.sk)?,
            ok.clone(),
            verify_at(v(), NOW),
        ),
        case(
            "exp + leeway, exactly",
            sign(&claims(60), AT_JWT_TYP)?,
            ok.clone(),
            verify_at(v(), NOW + 90),
        ),
        case(
            "exp + leeway + 1 s",
            sign(&claims(60), AT_JWT_TYP)?,
            Err(JwtError::Expired),
            verify_at(v(), NOW + 91),
        ),
        case(
            "exp + 1 s, leeway 0",
            sign(&claims(60), AT_JWT_TYP)?,
            Err(JwtError::Expired),
            verify_at(Validation { leeway: 0, ..v() }, NOW + 61),
        ),
        case(
            "nbf - leeway, exactly",
            sign(&claims(900), AT_JWT_TYP)?,
            ok.clone(),
            verify_at(v(), NOW - 30),
        ),
        case(
            "nbf - leeway - 1 s",
            sign(&claims(900), AT_JWT_TYP)?,
            Err(JwtError::NotYetValid),
            verify_at(v(), NOW - 31),
        ),
        case(
            "iat 60 s ahead",
            sign(&with(claims(900), "iat", json!(NOW + 60)), AT_JWT_TYP)?,
            Err(JwtError::NotYetValid),
            verify_at(v(), NOW),
        ),
        case(
            "wrong aud",
            sign(&claims(900), AT_JWT_TYP)?,
            Err(JwtError::WrongAudience),
            verify_at(
                Validation {
                    audience: Some("https://warden.example/mcp/other".into()),
                    ..v()
                },
                NOW,
            ),
        ),
        case(
            "wrong iss",
            sign(&claims(900), AT_JWT_TYP)?,
            Err(JwtError::WrongIssuer),
            verify_at(
                Validation {
                    issuer: "https://evil.example".into(),
                    ..v()
                },
                NOW,
            ),
        ),
        case(
            "iss an array holding the issuer",
            sign(
                &with(claims(900), "iss", json!([ISS, "https://evil.example"])),
                AT_JWT_TYP,
            )?,
            Err(JwtError::WrongIssuer),
            verify_at(v(), NOW),
        ),
    ];
    // `alg: none` and HS256 keyed with the public JWK, both on the allow-list.
    let mut listed = v();
    listed.algorithms.push("none".into());
    listed.algorithms.push("HS256".into());
    let body = b64(&Value::Object(claims(900)));
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg":"none","typ":"at+jwt","kid":"k1"})),
        body
    );
    out.push(case(
        "alg none, listed",
        none,
        Err(JwtError::AlgNotAllowed("none".into())),
        verify_at(listed.clone(), NOW),
    ));
    let input = format!(
        "{}.{body}",
        b64(&json!({"alg":"HS256","typ":"at+jwt","kid":"k1"}))
    );
    let mac = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        es.sk.public_jwk().to_string().as_bytes(),
    );
    let tag = ring::hmac::sign(&mac, input.as_bytes());
    out.push(case(
        "HS256 keyed with the public JWK, listed",
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref())),
        Err(JwtError::AlgNotAllowed("HS256".into())),
        verify_at(listed, NOW),
    ));
    out.push(case(
        "EdDSA token, ES256 key (alg not the key's)",
        jwt::sign(&claims(900), AT_JWT_TYP, &ed.sk)?,
        Err(JwtError::UnknownKid),
        Check::Verify {
            v: v(),
            now: NOW,
            offer: Offer::Es256,
        },
    ));
    let t = sign(&claims(900), AT_JWT_TYP)?;
    let parts: Vec<&str> = t.split('.').collect();
    let forged = with(claims(900), "scope", json!("notes:admin"));
    out.push(case(
        "tampered payload",
        format!("{}.{}.{}", parts[0], b64(&Value::Object(forged)), parts[2]),
        Err(JwtError::BadSignature),
        verify_at(v(), NOW),
    ));
    let foreign = Keys::new(SigningAlg::Es256)?;
    out.push(case(
        "signed by a foreign key",
        jwt::sign(&claims(900), AT_JWT_TYP, &foreign.sk)?,
        Err(JwtError::BadSignature),
        verify_at(v(), NOW),
    ));
    out.push(case(
        "unknown kid (no key)",
        sign(&claims(900), AT_JWT_TYP)?,
        Err(JwtError::UnknownKid),
        Check::Verify {
            v: v(),
            now: NOW,
            offer: Offer::Nothing,
        },
    ));
    out.push(case(
        "typ JWT",
        sign(&claims(900), "JWT")?,
        Err(JwtError::WrongTyp),
        verify_at(v(), NOW),
    ));
    out.push(case(
        "typ application/at+jwt",
        sign(&claims(900), "application/at+jwt")?,
        ok.clone(),
        verify_at(v(), NOW),
    ));
    out.push(case(
        "typ Application/AT+JWT",
        sign(&claims(900), "Application/AT+JWT")?,
        ok.clone(),
        verify_at(v(), NOW),
    ));
    out.push(case(
        "typ absent",
        signed_with_header(json!({"alg":"ES256","kid":"k1"}), &claims(900), &es.sk)?,
        Err(JwtError::WrongTyp),
        verify_at(v(), NOW),
    ));
    out.push(case(
        "crit [\"x\"]",
        signed_with_header(
            json!({"alg":"ES256","typ":"at+jwt","kid":"k1","crit":["x"]}),
            &claims(900),
            &es.sk,
        )?,
        Err(JwtError::Crit),
        verify_at(v(), NOW),
    ));
    out.push(case(
        "crit [\"b64\"], b64 true",
        signed_with_header(
            json!({"alg":"ES256","typ":"at+jwt","kid":"k1","crit":["b64"],"b64":true}),
            &claims(900),
            &es.sk,
        )?,
        Err(JwtError::Crit),
        verify_at(v(), NOW),
    ));
    for bad in [
        "",
        ".",
        "..",
        "a.b.c",
        "a.b.c.d",
        "eyJ.eyJ.",
        "\u{0}.\u{1}.\u{2}",
    ] {
        out.push(case(
            &format!("malformed {bad:?}"),
            bad.into(),
            Err(JwtError::Malformed),
            verify_at(v(), NOW),
        ));
    }
    out.push(case(
        "larger than MAX_TOKEN_LEN",
        "a".repeat(jwt::MAX_TOKEN_LEN + 1),
        Err(JwtError::Malformed),
        verify_at(v(), NOW),
    ));
    let mut no_exp = claims(900);
    no_exp.remove("exp");
    out.push(case(
        "exp missing",
        sign(&no_exp, AT_JWT_TYP)?,
        Err(JwtError::Claim("exp")),
        verify_at(v(), NOW),
    ));
    out.push(case(
        "exp a string",
        sign(&with(claims(900), "exp", json!("tomorrow")), AT_JWT_TYP)?,
        Err(JwtError::Claim("exp")),
        verify_at(v(), NOW),
    ));
    out.push(case(
        "exp fractional",
        sign(
            &with(claims(900), "exp", json!(NOW as f64 + 900.5)),
            AT_JWT_TYP,
        )?,
        Err(JwtError::Claim("exp")),
        verify_at(v(), NOW),
    ));
    // `verify_access_token`.
    let exactly = Audience::Exactly(AUD);
    out.push(case(
        "own: valid",
        sign(&claims(900), AT_JWT_TYP)?,
        ok.clone(),
        access(exactly, Expiry::Enforce),
    ));
    out.push(case(
        "own: EdDSA token, ES256-only ring",
        jwt::sign(&claims(900), AT_JWT_TYP, &ed.sk)?,
        Err(JwtError::AlgNotAllowed("EdDSA".into())),
        access(exactly, Expiry::Enforce),
    ));
    out.push(case(
        "own: empty key ring",
        sign(&claims(900), AT_JWT_TYP)?,
        Err(JwtError::NoKeys),
        Check::Access {
            audience: exactly,
            expiry: Expiry::Enforce,
            ring: false,
        },
    ));
    for (audience, label) in [(exactly, "exactly"), (Audience::AnyOne, "any one")] {
        let aud = |a: Value| sign(&with(claims(900), "aud", a), AT_JWT_TYP);
        let check = || access(audience, Expiry::Enforce);
        out.push(case(
            &format!("own ({label}): aud [AUD]"),
            aud(json!([AUD]))?,
            ok.clone(),
            check(),
        ));
        out.push(case(
            &format!("own ({label}): aud [AUD, other]"),
            aud(json!([AUD, "https://other"]))?,
            Err(JwtError::SharedAudience),
            check(),
        ));
        let empty = if label == "exactly" {
            JwtError::WrongAudience
        } else {
            JwtError::SharedAudience
        };
        out.push(case(
            &format!("own ({label}): aud []"),
            aud(json!([]))?,
            Err(empty.clone()),
            check(),
        ));
        out.push(case(
            &format!("own ({label}): aud 7"),
            aud(json!(7))?,
            Err(empty),
            check(),
        ));
    }
    out.push(case(
        "own (exactly): aud other",
        sign(
            &with(claims(900), "aud", json!("https://other")),
            AT_JWT_TYP,
        )?,
        Err(JwtError::WrongAudience),
        access(exactly, Expiry::Enforce),
    ));
    let any = Audience::AnyOne;
    out.push(case(
        "own: expired, enforce",
        sign(&claims(-3600), AT_JWT_TYP)?,
        Err(JwtError::Expired),
        access(any, Expiry::Enforce),
    ));
    out.push(case(
        "own: expired, ignore",
        sign(&claims(-3600), AT_JWT_TYP)?,
        ok,
        access(any, Expiry::Ignore),
    ));
    out.push(case(
        "own: ignore, wrong iss",
        sign(
            &with(claims(-3600), "iss", json!("https://evil")),
            AT_JWT_TYP,
        )?,
        Err(JwtError::WrongIssuer),
        access(any, Expiry::Ignore),
    ));
    out.push(case(
        "own: ignore, typ JWT",
        sign(&claims(-3600), "JWT")?,
        Err(JwtError::WrongTyp),
        access(any, Expiry::Ignore),
    ));
    Ok(out)
}

/// Compares outcomes by refusal kind; an `AlgNotAllowed` names the algorithm only for logs.
fn same(a: &Result<(), JwtError>, b: &Result<(), JwtError>) -> bool {
    match (a, b) {
        (Err(JwtError::AlgNotAllowed(_)), Err(JwtError::AlgNotAllowed(_))) => true,
        _ => a == b,
    }
}

fn show(r: &Result<(), JwtError>) -> String {
    match r {
        Ok(()) => "accepted".into(),
        Err(JwtError::AlgNotAllowed(_)) => "AlgNotAllowed".into(),
        Err(JwtError::Claim(c)) => format!("Claim({c})"),
        Err(e) => format!("{e:?}"),
    }
}

/// Runs every case through both verifiers; prints the table; returns how many cases the
/// hand-written verifier gets wrong (the crate's are findings, reported in the table).
pub fn correctness(es: &Keys, ed: &Keys, rs: &Keys) -> Result<usize, BoxError> {
    let mut table = String::new();
    writeln!(
        table,
        "{:<44} {:<16} {:<16} {:<16}",
        "case", "must be", "hand-written", "crate + glue"
    )?;
    let mut wrong = 0;
    for c in cases(es, ed, rs)? {
        let (ours, theirs) = match &c.check {
            Check::Verify { v, now, offer } => {
                let o = jwt::verify(&c.token, |_| es.offer(ed, rs, *offer), v, *now);
                let t = crate_jose::verify(&c.token, |_| es.offer_crate(ed, rs, *offer), v, *now);
                (o.map(|_| ()), t.map(|_| ()))
            }
            Check::Access {
                audience,
                expiry,
                ring,
            } => {
                let keys = if *ring {
                    vec![Arc::new(es.ours.clone())]
                } else {
                    vec![]
                };
                let rule = AccessTokenRule {
                    issuer: ISS,
                    audience: *audience,
                    leeway: 30,
                    expiry: *expiry,
                };
                let o = jwt::verify_access_token(&c.token, &keys, &rule, NOW);
                let theirs = if *ring {
                    vec![crate_jose::key_from_jwk(&es.sk.public_jwk())?]
                } else {
                    vec![]
                };
                let t = crate_jose::verify_access_token(
                    &c.token, &theirs, ISS, *audience, 30, *expiry, NOW,
                );
                (o.map(|_| ()), t.map(|_| ()))
            }
        };
        if !same(&ours, &c.expect) {
            wrong += 1;
        }
        let mark = match (same(&ours, &c.expect), same(&theirs, &c.expect)) {
            (true, true) => "",
            (true, false) if theirs.is_err() && c.expect.is_err() => {
                "  (crate: refused, other reason)"
            }
            (true, false) => "  <-- crate WRONG",
            (false, _) => "  <-- hand-written WRONG",
        };
        writeln!(
            table,
            "{:<44} {:<16} {:<16} {:<16}{mark}",
            c.name,
            show(&c.expect),
            show(&ours),
            show(&theirs)
        )?;
    }
    print!("{table}");
    Ok(wrong)
}

/// `VerifyingKey::from_jwk` against the crate's `DecodingKey::from_jwk` plus the glue that
/// binds a key to one algorithm.
pub fn jwks(es: &Keys) -> Result<(), BoxError> {
    let ec = es.sk.public_jwk();
    let mut p384 = ec.clone();
    p384["crv"] = json!("P-384");
    p384["alg"] = json!("ES384");
    let mut mislabelled = ec.clone();
    mislabelled["alg"] = json!("EdDSA");
    let mut short = ec.clone();
    short["x"] = json!(URL_SAFE_NO_PAD.encode([7u8; 31]));
    let oct = json!({"kty":"oct","k":URL_SAFE_NO_PAD.encode(b"0123456789abcdef0123456789abcdef")});
    println!(
        "\n{:<32} {:<10} {:<14} {:<10}",
        "JWK", "must be", "hand-written", "crate + glue"
    );
    for (name, jwk, must) in [
        ("EC P-256 (Warden's own)", ec, true),
        ("EC P-384", p384, false),
        ("EC P-256 labelled EdDSA", mislabelled, false),
        ("EC P-256, x of 31 bytes", short, false),
        ("oct (an HMAC secret)", oct, false),
    ] {
        let ours = VerifyingKey::from_jwk(&jwk).is_ok();
        let theirs = crate_jose::key_from_jwk(&jwk).is_ok();
        let word = |ok: bool| if ok { "key" } else { "refused" };
        let mark = if theirs != must {
            "  <-- crate WRONG"
        } else {
            ""
        };
        println!(
            "{name:<32} {:<10} {:<14} {:<10}{mark}",
            word(must),
            word(ours),
            word(theirs)
        );
    }
    Ok(())
}

/// What the crate does on its own (no glue) where Warden's rule differs.
pub fn crate_alone(es: &Keys) -> Result<(), BoxError> {
    use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation as Rule};
    let jwk = es.sk.public_jwk();
    let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk)?;
    let key = DecodingKey::from_jwk(&parsed)?;
    let mut rule = Rule::new(Algorithm::ES256);
    rule.set_issuer(&[ISS]);
    rule.set_audience(&[AUD]);
    rule.set_required_spec_claims(&["exp", "iss", "aud"]);
    rule.validate_nbf = true;
    let alone = |t: &str| match decode::<Map<String, Value>>(t, &key, &rule) {
        Ok(_) => "accepted".to_owned(),
        Err(e) => format!("refused ({:?})", e.kind()),
    };
    // Relative to the system clock, the only time the crate knows.
    let real = SystemClock.now();
    let live = |c: Map<String, Value>| {
        let mut c = c;
        for (name, at) in [("iat", real), ("nbf", real), ("exp", real + 900)] {
            if c.contains_key(name) {
                c.insert(name.into(), json!(at));
            }
        }
        c
    };
    let sign = |c: &Map<String, Value>, typ: &str| jwt::sign(c, typ, &es.sk);
    println!("\njsonwebtoken alone (decode with algorithms [ES256], iss, aud, required exp/iss/aud, nbf on):");
    for (name, token) in [
        ("typ JWT", sign(&live(claims(900)), "JWT")?),
        (
            "iss [ISS, evil]",
            sign(
                &live(with(
                    claims(900),
                    "iss",
                    json!([ISS, "https://evil.example"]),
                )),
                AT_JWT_TYP,
            )?,
        ),
        (
            "aud [AUD, other]",
            sign(
                &live(with(claims(900), "aud", json!([AUD, "https://other"]))),
                AT_JWT_TYP,
            )?,
        ),
        (
            "iat 1 h ahead",
            sign(
                &live(with(claims(900), "iat", json!(real + 3600))),
                AT_JWT_TYP,
            )?,
        ),
        (
            "exp fractional",
            sign(
                &live(with(claims(900), "exp", json!(real as f64 + 900.5))),
                AT_JWT_TYP,
            )?,
        ),
        (
            "crit [\"b64\"], b64 true",
            signed_with_header(
                json!({"alg":"ES256","typ":"at+jwt","kid":"k1","crit":["b64"],"b64":true}),
                &live(claims(900)),
                &es.sk,
            )?,
        ),
    ] {
        println!("  {name:<28} {}", alone(&token));
    }
    let oct = json!({"kty":"oct","k":URL_SAFE_NO_PAD.encode(b"0123456789abcdef0123456789abcdef")});
    let oct: jsonwebtoken::jwk::Jwk = serde_json::from_value(oct)?;
    let as_key = DecodingKey::from_jwk(&oct).map(|k| format!("{:?}", k.family()));
    println!("  {:<28} {as_key:?}", "JWK kty oct -> DecodingKey");
    println!(
        "  {:<28} the crate reads the system clock; `now` cannot be passed",
        "exp/nbf vs a given now"
    );
    Ok(())
}
