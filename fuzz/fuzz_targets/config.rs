//! The configuration file, `warden_core::config::Config::load`, with `WARDEN_*`
//! environment overrides.
//!
//! Input: the file's text, then optionally a NUL and `KEY=value` lines for the
//! environment.
//!
//! Properties: loading never panics, and neither an error nor the `Debug` of a loaded
//! config shows the database password (an error names the key, never a secret's
//! value). The password is planted through `WARDEN_DATABASE_URL`, after the input's own
//! environment so that it wins.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use warden_core::config::Config;

const PASSWORD: &str = "Pw0rdQz9";

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if input.contains(PASSWORD) {
        return;
    }
    let (text, env) = input.split_once('\0').unwrap_or((input, ""));
    let mut env: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    env.push((
        "WARDEN_DATABASE_URL".into(),
        format!("postgres://warden:{PASSWORD}@db.internal/warden"),
    ));
    let shown = match Config::load(text, env, Path::new("/data")) {
        Ok(config) => format!("{config:?}"),
        Err(e) => format!("{e} {e:?}"),
    };
    assert!(
        !shown.contains(PASSWORD),
        "the database password shown: {shown}"
    );
});
