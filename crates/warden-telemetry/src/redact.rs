//! Scrubbing of secrets from formatted log lines.
//!
//! Secret types in Warden have hand-written `Debug` impls, so well-behaved code never
//! formats a secret. This module is the net under that rule: every formatted event passes
//! through [`redact`] before it reaches a sink, so a careless `?request`, `?headers` or a
//! form body pasted into a message still cannot leak a token, code, verifier, client secret
//! or password (DESIGN.md, hard rule 8).
//!
//! What is removed:
//! - JWT/JWS/JWE compact serialisations (`eyJ….….…`), anywhere in the line;
//! - Warden's own prefixed secrets ([`SECRET_PREFIXES`]), anywhere in the line;
//! - `Bearer` and `Basic` credentials (the scheme is kept, the credential goes);
//! - the value of every sensitive key, in each shape a value is printed in: form and query
//!   strings (`code=…&`), logfmt (`password=…`, `password="…"`), JSON (`"password":"…"`,
//!   also nested inside another JSON string as `\"password\":\"…\"`), `Debug` structs
//!   (`password: "…"`, `token: Some("…")`, `secret: Secret("…")`, `key: [1, 2]`) and
//!   `Debug` of header maps (`"cookie": "…"`).
//!
//! Keys are matched whole, so `code` does not match `code_challenge` or `error_code`.
//! Keys ending in a secret noun (`token`, `secret`, `password`, `cookie`, …) match with any
//! prefix, so `upstream_token` and `x-csrf-token` are covered without being listed.
//!
//! When in doubt the scrubber removes too much rather than too little: an over-redacted
//! log line costs a little debugging time, a leaked refresh token costs a session.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{NoExpand, Regex};

/// Text that replaces every secret.
pub const REDACTED: &str = "[REDACTED]";

/// Prefix of access tokens minted by Warden (opaque form).
pub const ACCESS_TOKEN_PREFIX: &str = "wdn_at_";
/// Prefix of refresh tokens.
pub const REFRESH_TOKEN_PREFIX: &str = "wdn_rt_";
/// Prefix of authorization codes.
pub const AUTHORIZATION_CODE_PREFIX: &str = "wdn_ac_";
/// Prefix of client secrets.
pub const CLIENT_SECRET_PREFIX: &str = "wdn_cs_";
/// Prefix of initial access tokens for dynamic client registration.
pub const INITIAL_ACCESS_TOKEN_PREFIX: &str = "wdn_iat_";
/// Prefix of browser session identifiers.
pub const SESSION_PREFIX: &str = "wdn_sess_";
/// Prefix of CSRF tokens.
pub const CSRF_PREFIX: &str = "wdn_csrf_";

/// Every prefix Warden puts in front of a secret it generates.
///
/// The token generator must use one of these for every secret it mints: a string that
/// starts with one of them, followed by base64url characters, is removed from every log
/// line wherever it appears, with no key or context needed.
pub const SECRET_PREFIXES: &[&str] = &[
    ACCESS_TOKEN_PREFIX,
    REFRESH_TOKEN_PREFIX,
    AUTHORIZATION_CODE_PREFIX,
    CLIENT_SECRET_PREFIX,
    INITIAL_ACCESS_TOKEN_PREFIX,
    SESSION_PREFIX,
    CSRF_PREFIX,
];

/// Key endings that make any key sensitive, whatever comes before them
/// (`refresh_token`, `x-csrf-token`, `client_secret`, `db_password`, `set-cookie`, …).
/// Regex fragments; `[-_]` stands for either separator.
const SECRET_NOUNS: &[&str] = &[
    "token",
    "secret",
    "passw(?:or)?d",
    "passphrase",
    "cookie",
    "credentials?",
    "assertion",
    "authorization",
    "verifier",
    "csrf",
    "(?:api|private|master|signing|encryption|secret)[-_]?key",
];

/// Keys that are sensitive only as a whole, because their ending is also the ending of
/// harmless keys (`error_code`, `status_code`, `id_token_hint` vs `token_type_hint`).
const WHOLE_KEYS: &[&str] = &[
    "code",
    "auth[-_]code",
    "authorization[-_]code",
    "device[-_]code",
    "id[-_]token[-_]hint",
];

/// Cheap first pass: a line that contains none of these (case-insensitively) cannot contain
/// anything the other patterns match, so it is returned untouched without running them.
/// Every pattern below needs at least one of these literals; `prefilter_covers_every_key`
/// checks that.
const PREFILTER: &str = "(?i)eyj|wdn_|bearer|basic|token|secret|passw|passphrase|cookie|\
                         credential|assertion|authorization|verifier|csrf|key|code";

/// Words that follow `Bearer`/`Basic` in prose and are not credentials ("Bearer token
/// missing", "basic auth"). Only whole-word matches count: real credentials are
/// random and would not be one of these words, in any case.
const SCHEME_PROSE: &[&str] = &[
    "and",
    "auth",
    "authentication",
    "authorization",
    "challenge",
    "client",
    "credential",
    "credentials",
    "expected",
    "header",
    "invalid",
    "is",
    "method",
    "missing",
    "not",
    "or",
    "realm",
    "required",
    "scheme",
    "token",
    "tokens",
];

/// Auth-parameter names that may follow the scheme in a `WWW-Authenticate` challenge,
/// e.g. `Bearer error="invalid_token"`. Those are not credentials.
const CHALLENGE_PARAMS: &[&str] = &[
    "algs",
    "error",
    "error_description",
    "error_uri",
    "max_age",
    "nonce",
    "realm",
    "resource",
    "resource_metadata",
    "scope",
];

/// How many wrappers (`Some(`, `Secret(`, `Token { inner: `) may stand between a key and
/// its quoted value.
const MAX_WRAPPERS: usize = 4;

static PATTERNS: LazyLock<Option<Patterns>> = LazyLock::new(Patterns::build);

/// The compiled patterns, built once per process.
struct Patterns {
    prefilter: Regex,
    /// A sensitive key and its separator. Group 1 is the separator (`:` or `=`); the value
    /// that follows is found by [`value_span`], which understands quoting.
    key: Regex,
    /// `Bearer`/`Basic` and what follows. Group 1: scheme, 2: credential, 3: `=` padding.
    scheme: Regex,
    jwt: Regex,
    prefixed: Regex,
}

/// Copies a line into a new string only once the first secret is found, so that a line
/// with no secret is never copied.
struct Splicer<'a> {
    text: &'a str,
    out: Option<String>,
    copied: usize,
}

// === impl Patterns ===

impl Patterns {
    fn build() -> Option<Self> {
        let nouns = SECRET_NOUNS.join("|");
        let whole = WHOLE_KEYS.join("|");
        // The leading class stands in for a look-behind: a key must not be the tail of a
        // longer key (`error_code`), so the character before it is not a key character.
        let key = format!(
            r#"(?i)(?:^|[^A-Za-z0-9_-])(?:\\*["'])?(?:(?:[a-z0-9]+[-_])*(?:{nouns})|{whole})(?:\\*["'])?[ \t]*([:=])"#
        );
        let prefixes: Vec<String> = SECRET_PREFIXES.iter().map(|p| regex::escape(p)).collect();
        let prefixed = format!("(?:{})[A-Za-z0-9_-]+", prefixes.join("|"));
        Some(Self {
            prefilter: Regex::new(PREFILTER).ok()?,
            key: Regex::new(&key).ok()?,
            scheme: Regex::new(r"(?i)\b(bearer|basic)[ \t]+([A-Za-z0-9._~+/-]+)(=*)").ok()?,
            // Header, payload, signature; the signature may be empty (`alg: none`) and a
            // JWE has two more parts.
            jwt: Regex::new(
                r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)?",
            )
            .ok()?,
            prefixed: Regex::new(&prefixed).ok()?,
        })
    }

    fn redact_key_values<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let bytes = text.as_bytes();
        let mut locations = self.key.capture_locations();
        let mut splicer = Splicer::new(text);
        let mut pos = 0;
        while let Some(found) = self.key.captures_read_at(&mut locations, text, pos) {
            let after_sep = found.end();
            let is_equals = locations
                .get(1)
                .and_then(|(start, _)| bytes.get(start))
                .is_some_and(|&b| b == b'=');
            pos = match value_span(bytes, after_sep, is_equals) {
                Some(span) => {
                    splicer.redact(span.start, span.end);
                    // From the value's last byte: a bracketed value ends in its `]`, which
                    // is the boundary of a key glued to it (`[1]password=x`). A value that
                    // ran on past a scheme word is searched again from the word after it,
                    // which may be a key of its own (`code=bearer token=Bearer abc`).
                    span.resume
                        .unwrap_or_else(|| span.end.saturating_sub(1).max(after_sep))
                }
                None => after_sep,
            };
        }
        splicer.finish()
    }

    fn redact_schemes<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let bytes = text.as_bytes();
        let mut locations = self.scheme.capture_locations();
        let mut splicer = Splicer::new(text);
        let mut pos = 0;
        while let Some(found) = self.scheme.captures_read_at(&mut locations, text, pos) {
            pos = found.end();
            let (Some((cred_start, cred_end)), Some((pad_start, pad_end))) =
                (locations.get(2), locations.get(3))
            else {
                continue;
            };
            let credential = text.get(cred_start..cred_end).unwrap_or_default();
            let padding = pad_end - pad_start;
            if padding == 0 && is_scheme(credential) {
                // `Bearer Basic xyz`: the word is a scheme itself, and its credential
                // follows; match again from the word.
                pos = cred_start;
                continue;
            }
            let next = bytes.get(pad_end).copied();
            if !is_credential(credential, padding, next) {
                // Resume right after the word, so that a real credential following a
                // challenge parameter is still found.
                pos = cred_end;
                continue;
            }
            splicer.redact(cred_start, pad_end);
        }
        splicer.finish()
    }
}

// === impl Splicer ===

impl<'a> Splicer<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            out: None,
            copied: 0,
        }
    }

    /// Replaces `text[start..end]` with [`REDACTED`]. Spans come in increasing order of
    /// their start and lie on character boundaries (they always start and end next to
    /// ASCII); a span overlapping the previous one extends it.
    fn redact(&mut self, start: usize, end: usize) {
        if end < start || end <= self.copied {
            return;
        }
        if start < self.copied {
            // Overlaps the last span: that one's marker now stands for both.
            self.copied = end;
            return;
        }
        let text = self.text;
        let out = self
            .out
            .get_or_insert_with(|| String::with_capacity(text.len() + REDACTED.len()));
        out.push_str(text.get(self.copied..start).unwrap_or_default());
        out.push_str(REDACTED);
        self.copied = end;
    }

    fn finish(self) -> Cow<'a, str> {
        match self.out {
            None => Cow::Borrowed(self.text),
            Some(mut out) => {
                out.push_str(self.text.get(self.copied..).unwrap_or_default());
                Cow::Owned(out)
            }
        }
    }
}

// === functions ===

/// Removes every secret this module recognises from one formatted log line (or a few
/// lines of one event).
///
/// Returns the input borrowed, without allocating, when it contains no secret. If the
/// patterns could not be built (they are constants and a test compiles them, so this does
/// not happen), the whole line is withheld rather than written unscrubbed.
pub fn redact(line: &str) -> Cow<'_, str> {
    let Some(patterns) = PATTERNS.as_ref() else {
        return Cow::Borrowed(REDACTED);
    };
    if !patterns.prefilter.is_match(line) {
        return Cow::Borrowed(line);
    }
    // Key/value pairs first: they know where a quoted value ends, so a value containing
    // spaces or a `Bearer` prefix goes as one piece. The context-free patterns then catch
    // secrets that appear without a key.
    let mut line = Cow::Borrowed(line);
    apply(&mut line, |s| patterns.redact_key_values(s));
    apply(&mut line, |s| patterns.redact_schemes(s));
    apply(&mut line, |s| {
        patterns.jwt.replace_all(s, NoExpand(REDACTED))
    });
    apply(&mut line, |s| {
        patterns.prefixed.replace_all(s, NoExpand(REDACTED))
    });
    line
}

/// Runs one pass over `line`, replacing it only if the pass changed something.
fn apply<'a>(line: &mut Cow<'a, str>, pass: impl for<'s> Fn(&'s str) -> Cow<'s, str>) {
    let changed = match line {
        Cow::Borrowed(text) => match pass(text) {
            Cow::Borrowed(_) => None,
            Cow::Owned(out) => Some(out),
        },
        Cow::Owned(text) => match pass(text.as_str()) {
            Cow::Borrowed(_) => None,
            Cow::Owned(out) => Some(out),
        },
    };
    if let Some(out) = changed {
        *line = Cow::Owned(out);
    }
}

/// Whether `word` is one of the schemes whose credentials are removed.
fn is_scheme(word: &str) -> bool {
    word.eq_ignore_ascii_case("bearer") || word.eq_ignore_ascii_case("basic")
}

/// Decides whether the word after `Bearer`/`Basic` is a credential, as opposed to prose
/// ("Bearer token") or a challenge parameter (`Bearer error="invalid_token"`).
fn is_credential(word: &str, padding: usize, next: Option<u8>) -> bool {
    if padding == 0 {
        return !SCHEME_PROSE.iter().any(|w| w.eq_ignore_ascii_case(word));
    }
    // `name=value`: base64 padding is never followed by a token character.
    if next.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return false;
    }
    // `name="value"` in a challenge; a token68 followed by a closing quote looks the same,
    // so only known parameter names are let through.
    let quoted = matches!(next, Some(b'"' | b'\\'));
    !(padding == 1 && quoted && CHALLENGE_PARAMS.contains(&word))
}

/// Finds the value that follows a sensitive key's separator, as a byte range to replace.
///
/// Quoted values (optionally inside `Some(…)`-style wrappers) are taken up to their
/// closing quote, honouring escapes at any nesting depth. After `=`, an unquoted value
/// runs up to the next delimiter, and always goes, even when what follows it looks like
/// a wrapper (`secret=abc {note: "x"}` loses both). After `:`, an unquoted value is left
/// alone: in prose ("invalid token: expired") it is not a secret, and a number
/// (`code: 400`) is not one either.
fn value_span(bytes: &[u8], after_sep: usize, is_equals: bool) -> Option<Span> {
    let inner = delimited_span(bytes, after_sep).map(|(start, end)| Span {
        start,
        end,
        resume: None,
    });
    let bare = if is_equals {
        bare_span(bytes, after_sep)
    } else {
        None
    };
    match (bare, inner) {
        (Some(bare), Some(inner)) => Some(Span {
            end: inner.end.max(bare.end),
            ..bare
        }),
        (bare, inner) => bare.or(inner),
    }
}

/// A value to redact, and where the search for the next key resumes if not right after
/// it.
struct Span {
    start: usize,
    end: usize,
    resume: Option<usize>,
}

/// A quoted or bracketed value after the separator at `after_sep`, inside up to
/// [`MAX_WRAPPERS`] wrappers; `None` if there is none or it is already scrubbed.
fn delimited_span(bytes: &[u8], after_sep: usize) -> Option<(usize, usize)> {
    let mut pos = skip_blanks(bytes, after_sep);
    for _ in 0..MAX_WRAPPERS {
        match skip_wrapper(bytes, pos) {
            Some(next) => pos = next,
            None => break,
        }
    }
    // A byte-string literal, `b"…"`.
    if bytes.get(pos) == Some(&b'b') && bytes.get(pos + 1) == Some(&b'"') {
        pos += 1;
    }
    if bytes
        .get(pos..)
        .is_some_and(|rest| rest.starts_with(REDACTED.as_bytes()))
    {
        return None;
    }
    let (start, end) = quoted_span(bytes, pos).or_else(|| bracketed_span(bytes, pos))?;
    // Already scrubbed (`"[REDACTED]"`): leave it, so a clean line stays borrowed.
    let redacted = bytes.get(start..end) == Some(REDACTED.as_bytes());
    (!redacted).then_some((start, end))
}

/// An unquoted value right after `=`. No blank may follow `=`, otherwise `code= state=x`
/// would eat `state`.
fn bare_span(bytes: &[u8], after_sep: usize) -> Option<Span> {
    if bytes
        .get(after_sep..)
        .is_some_and(|rest| rest.starts_with(REDACTED.as_bytes()))
    {
        return None;
    }
    let mut start = after_sep;
    let mut end = bare_end(bytes, start);
    let mut resume = None;
    // `authorization=Bearer abc`: the scheme's credential is part of the value, and
    // once the scheme is gone the scheme pass can no longer find it. A scheme word may
    // stand where the credential would be (`code=bearer Basic abc`): the value runs on
    // through every such word to the first one that is not a scheme.
    loop {
        let word = bytes
            .get(start..end)
            .and_then(|w| std::str::from_utf8(w).ok());
        if !word.is_some_and(is_scheme) {
            break;
        }
        let credential = skip_blanks(bytes, end);
        if credential == end {
            break;
        }
        start = credential;
        end = bare_end(bytes, credential);
        // From the blank before the word: a key match starts with its boundary.
        resume = Some(credential - 1);
    }
    (end > after_sep).then_some(Span {
        start: after_sep,
        end,
        resume,
    })
}

/// Where an unquoted value starting at `start` ends (see [`ends_bare_value`]).
fn bare_end(bytes: &[u8], start: usize) -> usize {
    bytes
        .get(start..)
        .and_then(|rest| rest.iter().position(|&b| ends_bare_value(b)))
        .map_or(bytes.len(), |len| start + len)
}

/// A quoted value starting at `pos`: any number of backslashes, then `"` or `'`.
/// Returns the span between the delimiters. Without a closing quote, the value runs to the
/// end of the line.
fn quoted_span(bytes: &[u8], pos: usize) -> Option<(usize, usize)> {
    let rest = bytes.get(pos..)?;
    let depth = rest.iter().take_while(|&&b| b == b'\\').count();
    let quote = *rest.get(depth)?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let start = pos + depth + 1;
    let end = closing_quote(bytes, start, quote, depth);
    (end > start).then_some((start, end))
}

/// Finds where a value opened by `depth` backslashes and `quote` ends.
///
/// Each level of string escaping turns `\` into `\\` and `"` into `\"`, so a delimiter
/// written at depth `n` (`n = 2^k - 1` backslashes) is preceded by `n + m·2(n+1)`
/// backslashes, where `m` counts escaped backslashes at the end of the value. A quote with
/// any other run in front of it belongs to the value.
fn closing_quote(bytes: &[u8], start: usize, quote: u8, depth: usize) -> usize {
    let mut run = 0;
    for (offset, &b) in bytes.get(start..).unwrap_or_default().iter().enumerate() {
        let at = start + offset;
        match b {
            b'\\' => {
                run += 1;
                continue;
            }
            b'\n' => return at,
            _ if b == quote && run >= depth && (run - depth).is_multiple_of(2 * (depth + 1)) => {
                return at - depth;
            }
            _ => {}
        }
        run = 0;
    }
    bytes.len()
}

/// `Debug` of a byte vector: `[104, 117, 110]`. The brackets go too, so the result reads
/// `[REDACTED]` and is recognised as already scrubbed.
fn bracketed_span(bytes: &[u8], pos: usize) -> Option<(usize, usize)> {
    if bytes.get(pos) != Some(&b'[') {
        return None;
    }
    let len = bytes
        .get(pos + 1..)?
        .iter()
        .position(|&b| b == b']' || b == b'\n');
    let end = len.map_or(bytes.len(), |len| {
        let close = pos + 1 + len;
        close + usize::from(bytes.get(close) == Some(&b']'))
    });
    (end > pos + 2).then_some((pos, end))
}

/// Steps over one `Ident(` or `Ident { field: ` wrapper, as printed by `Debug` for
/// `Option`, newtypes and single-field structs holding a secret.
fn skip_wrapper(bytes: &[u8], pos: usize) -> Option<usize> {
    let after_ident = skip_ident(bytes, pos)?;
    let at = skip_blanks(bytes, after_ident);
    match bytes.get(at)? {
        b'(' => Some(skip_blanks(bytes, at + 1)),
        b'{' => {
            let field = skip_blanks(bytes, at + 1);
            let after_field = skip_blanks(bytes, skip_ident(bytes, field)?);
            (bytes.get(after_field)? == &b':').then(|| skip_blanks(bytes, after_field + 1))
        }
        _ => None,
    }
}

/// Steps over an identifier or path (`Some`, `secrecy::SecretString`).
fn skip_ident(bytes: &[u8], pos: usize) -> Option<usize> {
    let is_start = |b: u8| b.is_ascii_alphabetic() || b == b'_';
    let is_continue = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if !is_start(*bytes.get(pos)?) {
        return None;
    }
    let mut end = pos;
    loop {
        while bytes.get(end).copied().is_some_and(is_continue) {
            end += 1;
        }
        let path_continues = bytes.get(end) == Some(&b':')
            && bytes.get(end + 1) == Some(&b':')
            && bytes.get(end + 2).copied().is_some_and(is_start);
        if !path_continues {
            return Some(skip_generics(bytes, end));
        }
        end += 2;
    }
}

/// Steps over generic arguments after a type name (`SecretBox<str>`), if balanced.
fn skip_generics(bytes: &[u8], pos: usize) -> usize {
    if bytes.get(pos) != Some(&b'<') {
        return pos;
    }
    let mut depth = 0_usize;
    for (offset, &b) in bytes.get(pos..).unwrap_or_default().iter().enumerate() {
        match b {
            b'<' => depth += 1,
            b'>' => {
                depth -= 1;
                if depth == 0 {
                    return pos + offset + 1;
                }
            }
            b if b.is_ascii_alphanumeric() || b" _:,&'[];".contains(&b) => {}
            _ => return pos,
        }
    }
    pos
}

fn skip_blanks(bytes: &[u8], pos: usize) -> usize {
    let len = bytes.get(pos..).map_or(0, |rest| {
        rest.iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count()
    });
    pos + len
}

/// Where an unquoted value ends: at a blank, a form separator, a quote or escape, or the
/// punctuation that closes the structure the value sits in.
fn ends_bare_value(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b'&' | b'"' | b'\'' | b'\\' | b',' | b';' | b')' | b']' | b'}'
        )
}

#[cfg(test)]
#[path = "redact_tests.rs"]
mod tests;
