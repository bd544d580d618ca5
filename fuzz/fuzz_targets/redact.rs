//! The log redactor, `warden_telemetry::redact`: a secret planted in a shape and
//! position its documentation promises to handle must not survive, whatever text
//! surrounds it.
//!
//! Input: one byte picks the shape, then the text before the secret, a NUL, and the
//! text after it. The planted piece is set off by a space on each side (a key is matched
//! whole, and `Bearer` is a word).
//!
//! One precondition: before a *quoted* secret, the text has no quote or backslash of its
//! own. A quote left open there (`note="it` … `password: "S"`) would be closed by the
//! secret's opening quote, and the secret read as text between two values; the key/value
//! pass relies on the line's quoting, and text that breaks it is out of its reach (the
//! context-free shapes, JWTs, prefixed secrets and `Bearer`, are fuzzed without it).

#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_telemetry::{redact, SECRET_PREFIXES};

/// The secret's text; no part of it may remain.
const SECRET: &str = "Qz9Mk7Lp2Xv";
/// A piece no surrounding text may contain, so that finding it means the secret leaked.
const MARKER: &str = "Qz9";

/// The shapes of the module documentation, `<S>` standing for the secret and `<P>` for
/// a Warden secret prefix; and whether the secret is quoted.
const SHAPES: &[(&str, bool)] = &[
    // JWT/JWS/JWE compact serialisations, anywhere.
    ("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.<S>", false),
    ("eyJhbGciOiJub25lIn0.<S>.", false),
    // Warden's prefixed secrets, anywhere.
    ("<P><S>", false),
    // Bearer and Basic credentials.
    ("Bearer <S>", false),
    ("Basic <S>==", false),
    ("authorization: Bearer <S>", false),
    ("authorization=Bearer <S>", false),
    // Form and query strings.
    ("code=<S>&state=x", false),
    ("client_id=a&client_secret=<S>", false),
    // logfmt.
    ("refresh_token=<S>", false),
    ("password=\"<S> with spaces\"", true),
    // JSON, also nested inside a JSON string.
    (r#"{"access_token":"<S>","token_type":"Bearer"}"#, true),
    (r#"{"message":"body {\"code\":\"<S>\"}"}"#, true),
    // Debug of structs and header maps.
    (r#"Req { password: "<S>", user: "bob" }"#, true),
    (
        r#"Creds { client_secret: Some(SecretString("<S>")) }"#,
        true,
    ),
    (r#"{"cookie": "sid=<S>; theme=dark"}"#, true),
];

fuzz_target!(|data: &[u8]| {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let Ok(rest) = std::str::from_utf8(rest) else {
        return;
    };
    let (before, after) = rest.split_once('\0').unwrap_or((rest, ""));
    if rest.contains(MARKER) {
        return;
    }
    let (template, quoted) = SHAPES[usize::from(shape) % SHAPES.len()];
    if quoted && before.contains(['"', '\'', '\\']) {
        return;
    }
    let prefix = SECRET_PREFIXES[usize::from(shape / 16) % SECRET_PREFIXES.len()];
    let planted = template.replace("<S>", SECRET).replace("<P>", prefix);
    let line = format!("{before} {planted} {after}");
    let out = redact(&line);
    assert!(
        !out.contains(MARKER),
        "the secret survived redaction:\n  in:  {line:?}\n  out: {out:?}"
    );
});
