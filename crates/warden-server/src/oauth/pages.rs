//! Server-rendered pages: sign-in, consent, errors, sign-out.
//!
//! Every interpolated value goes through [`esc`]. Styles come from one stylesheet served
//! by us, so the CSP can forbid inline styles and every script.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::browser::harden;

/// HTML-escapes `s`.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The stylesheet.
pub const CSS: &str = r#":root{--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f8fafc;--accent:#1d4ed8;--danger:#b91c1c}
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:420px;margin:8vh auto;padding:0 16px}
.card{background:#fff;border:1px solid var(--line);border-radius:12px;padding:28px;box-shadow:0 1px 3px rgba(15,23,42,.06)}
.brand{display:flex;align-items:center;gap:10px;margin-bottom:18px;font-weight:600;letter-spacing:.2px}
.brand .logo{width:28px;height:28px;border-radius:7px;background:var(--fg);color:#fff;display:grid;place-items:center;font-size:15px}
h1{font-size:20px;margin:0 0 6px}p{margin:0 0 14px}.muted{color:var(--muted);font-size:13px}
label{display:block;font-size:13px;font-weight:600;margin:14px 0 6px}
input[type=text],input[type=password]{width:100%;padding:10px 12px;border:1px solid var(--line);border-radius:8px;font:inherit}
input:focus{outline:2px solid var(--accent);outline-offset:1px}
button{font:inherit;padding:10px 14px;border-radius:8px;border:1px solid var(--fg);background:var(--fg);color:#fff;cursor:pointer;width:100%;margin-top:18px}
button.secondary{background:#fff;color:var(--fg);border-color:var(--line)}
.row{display:flex;gap:10px}.row button{flex:1}
.error{background:#fef2f2;color:var(--danger);border:1px solid #fecaca;border-radius:8px;padding:10px 12px;margin:0 0 12px;font-size:14px}
dl{margin:14px 0;display:grid;grid-template-columns:auto 1fr;gap:6px 14px;font-size:14px}dt{color:var(--muted)}dd{margin:0;word-break:break-all}
ul.scopes{list-style:none;padding:0;margin:8px 0 0}ul.scopes li{padding:8px 10px;border:1px solid var(--line);border-radius:8px;margin-bottom:6px;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px}
footer{text-align:center;margin-top:16px}
"#;

/// Wraps `body` in the page frame.
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"referrer\" content=\"same-origin\">\
<title>{} · Warden</title><link rel=\"stylesheet\" href=\"/oauth/static/warden.css\"></head>\
<body><main><div class=\"card\"><div class=\"brand\"><span class=\"logo\">W</span>Warden</div>{body}</div>\
<footer class=\"muted\">Protected by Warden</footer></main></body></html>",
        esc(title)
    );
    let mut resp = (status, Html(html)).into_response();
    harden(&mut resp);
    resp
}

/// An error page, for errors that must not be redirected to the client.
pub fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    page(
        status,
        title,
        &format!(
            "<h1>{}</h1><p class=\"error\">{}</p><p class=\"muted\">You can close this window.</p>",
            esc(title),
            esc(detail)
        ),
    )
}

/// An identity provider offered on the sign-in page.
pub struct IdpChoice<'a> {
    /// Its registered name (the form value).
    pub name: &'a str,
    /// Its button label.
    pub label: &'a str,
}

/// What the sign-in page shows.
pub struct LoginView<'a> {
    /// The client's display name.
    pub client_name: &'a str,
    /// The sealed pending request.
    pub pending: &'a str,
    /// The CSRF token.
    pub csrf: &'a str,
    /// An error to show.
    pub error: Option<&'a str>,
    /// The name (or address) typed before.
    pub username: &'a str,
    /// Whether the password form is offered (`login.local`).
    pub local: bool,
    /// The identity providers to sign in with.
    pub providers: &'a [IdpChoice<'a>],
    /// Whether an address is routed to its domain's identity provider.
    pub email_routing: bool,
}

/// The sign-in page: a button per identity provider, an address field when domains are
/// routed, and the password form unless `login.local = false`.
pub fn login(v: &LoginView<'_>) -> Response {
    let err = v
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    let hidden = format!(
        "<input type=\"hidden\" name=\"pending\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(v.pending),
        esc(v.csrf)
    );
    let mut body = format!(
        "<h1>Sign in</h1><p class=\"muted\">to continue to <strong>{}</strong></p>{err}",
        esc(v.client_name)
    );
    for p in v.providers {
        body.push_str(&format!(
            "<form method=\"post\" action=\"/oauth/login/federated\">{hidden}\
<input type=\"hidden\" name=\"idp\" value=\"{}\">\
<button type=\"submit\" class=\"secondary\" id=\"idp-{}\">Continue with {}</button></form>",
            esc(p.name),
            esc(p.name),
            esc(p.label),
        ));
    }
    if v.local {
        let (label, password_required) = if v.email_routing {
            ("Username or work email", "")
        } else {
            ("Username", " required")
        };
        body.push_str(&format!(
            "<form method=\"post\" action=\"/oauth/login\">{hidden}\
<label for=\"username\">{label}</label><input type=\"text\" id=\"username\" name=\"username\" value=\"{}\" autocomplete=\"username\" required autofocus>\
<label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\"{password_required}>\
<button type=\"submit\" id=\"sign-in\">Sign in</button></form>",
            esc(v.username),
        ));
    } else if v.email_routing {
        body.push_str(&format!(
            "<form method=\"post\" action=\"/oauth/login/federated\">{hidden}\
<label for=\"email\">Work email</label><input type=\"text\" id=\"email\" name=\"email\" value=\"{}\" autocomplete=\"email\" required autofocus>\
<button type=\"submit\" id=\"continue\">Continue</button></form>",
            esc(v.username),
        ));
    } else if v.providers.is_empty() {
        body.push_str(
            "<p class=\"error\">No way to sign in is configured. Ask the administrator.</p>",
        );
    }
    page(
        if v.error.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        },
        "Sign in",
        &body,
    )
}

/// What the consent page shows.
pub struct ConsentView<'a> {
    /// The client's display name.
    pub client_name: &'a str,
    /// The client id.
    pub client_id: &'a str,
    /// For a client ID metadata document, the host that served it.
    pub document_host: Option<&'a str>,
    /// Whether the client registered itself (no administrator vouches for its name).
    pub self_registered: bool,
    /// Where the browser will be sent back to.
    pub redirect_host: &'a str,
    /// The servers (canonical URIs) the token will be for.
    pub resources: &'a [String],
    /// The scopes asked for.
    pub scopes: &'a [String],
    /// Who is signed in.
    pub username: &'a str,
}

/// The consent form.
pub fn consent(v: &ConsentView<'_>, pending: &str, csrf: &str) -> Response {
    let scopes: String = v
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>", esc(s)))
        .collect();
    let resources: String = v
        .resources
        .iter()
        .map(|r| esc(r))
        .collect::<Vec<_>>()
        .join("<br>");
    // The name is the client's own claim; the host that served its metadata, or the note
    // that it registered itself, is what the user can actually check.
    let provenance = match (v.document_host, v.self_registered) {
        (Some(host), _) => format!(
            "<dt>Published by</dt><dd id=\"document-host\"><strong>{}</strong> <span class=\"muted\">(client metadata document)</span></dd>",
            esc(host)
        ),
        (None, true) => "<dt>Registered</dt><dd class=\"muted\">by the application itself; its name is not verified</dd>".to_owned(),
        (None, false) => String::new(),
    };
    page(
        StatusCode::OK,
        "Authorize access",
        &format!(
            "<h1>Authorize {}</h1><p class=\"muted\">Signed in as <strong>{}</strong></p>\
<dl><dt>Client</dt><dd>{} <span class=\"muted\">({})</span></dd>{provenance}<dt>Returns to</dt><dd>{}</dd><dt>Server</dt><dd>{resources}</dd></dl>\
<p>It asks for:</p><ul class=\"scopes\">{scopes}</ul>\
<form method=\"post\" action=\"/oauth/consent\">\
<input type=\"hidden\" name=\"pending\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<div class=\"row\"><button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\" id=\"deny\">Deny</button>\
<button type=\"submit\" name=\"decision\" value=\"allow\" id=\"allow\">Allow</button></div></form>",
            esc(v.client_name),
            esc(v.username),
            esc(v.client_name),
            esc(v.client_id),
            esc(v.redirect_host),
            esc(pending),
            esc(csrf),
        ),
    )
}

/// After sign-out.
pub fn signed_out() -> Response {
    page(
        StatusCode::OK,
        "Signed out",
        "<h1>Signed out</h1><p>Your session has ended and the tokens it issued are revoked.</p>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<script>\"x\"&'y'</script>"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
    }
}
