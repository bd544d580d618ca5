//! Properties of canonical URIs: canonicalisation is idempotent, and it never rewrites a
//! dot segment (those are refused).

use proptest::prelude::*;

use super::*;

/// A path segment, often a dot segment in one of its spellings.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_~-]{1,5}",
        "[ a-z%\u{e9}]{1,4}",
        Just(String::new()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("%2e".to_owned()),
        Just("%2E%2e".to_owned()),
        Just(".%2e".to_owned()),
        Just("%2E.".to_owned()),
    ]
}

/// URIs of the shapes a client sends as `resource`, some of them not canonical.
fn uri() -> impl Strategy<Value = (String, Vec<String>)> {
    let scheme = prop_oneof!["https", "HTTPS", "http", "Http"];
    let host = prop_oneof![
        "localhost",
        "127.0.0.1",
        r"\[::1\]",
        "MCP.Example.com",
        "b\u{fc}cher.example",
    ];
    let port = prop_oneof![
        Just(String::new()),
        Just(":443".into()),
        Just(":8443".into())
    ];
    // Each segment with the separator before it: `/`, or `\`, which a URL parser reads as
    // `/` in an http(s) URI.
    let segments = proptest::collection::vec((prop_oneof!["/", r"\\"], segment()), 0..5);
    (scheme, host, port, segments, any::<bool>()).prop_map(|(s, h, p, segs, slash)| {
        let mut text = format!("{s}://{h}{p}");
        for (sep, seg) in &segs {
            text.push_str(sep);
            text.push_str(seg);
        }
        if slash {
            text.push('/');
        }
        (text, segs.into_iter().map(|(_, seg)| seg).collect())
    })
}

fn is_dot_segment(segment: &str) -> bool {
    let s = segment.to_ascii_lowercase().replace("%2e", ".");
    s == "." || s == ".."
}

proptest! {
    #[test]
    fn canonicalisation_is_idempotent((text, _) in uri()) {
        if let Ok(c) = CanonicalUri::parse(&text) {
            prop_assert_eq!(CanonicalUri::parse(c.as_str()), Ok(c.clone()));
            prop_assert!(!c.as_str().ends_with('/'));
            prop_assert_eq!(c.host(), c.host().to_ascii_lowercase());
        }
    }

    #[test]
    fn dot_segments_are_refused_not_rewritten((text, segments) in uri()) {
        if segments.iter().any(|s| is_dot_segment(s)) {
            prop_assert!(CanonicalUri::parse(&text).is_err(), "{} accepted", text);
        }
    }

    #[test]
    fn arbitrary_text_is_idempotent_too(text in "[ -~]{0,40}") {
        if let Ok(c) = CanonicalUri::parse(&text) {
            prop_assert_eq!(CanonicalUri::parse(c.as_str()), Ok(c.clone()));
        }
    }
}
