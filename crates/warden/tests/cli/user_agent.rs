//! A scripted user at a browser-less "browser": follows an authorization URL, signs in,
//! approves (or denies) consent, and returns where Warden sends it back to the client.
//! Interop tests use it to play the person that the SDKs and the conformance suite expect
//! to open the authorization URL.

use std::collections::HashMap;

/// What the user does on the consent page.
#[derive(Clone, Copy)]
pub enum Decision {
    Allow,
    #[allow(dead_code)]
    Deny,
}

struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl Browser {
    fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            http,
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn absorb(&mut self, r: reqwest::Response) -> (u16, Option<String>, String) {
        for v in r.headers().get_all("set-cookie") {
            let text = v.to_str().unwrap();
            let kv = text.split(';').next().unwrap();
            if let Some((k, v)) = kv.split_once('=') {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, location, r.text().await.unwrap())
    }

    async fn get(&mut self, url: &str) -> (u16, Option<String>, String) {
        let r = self
            .http
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.absorb(r).await
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> (u16, Option<String>, String) {
        let r = self
            .http
            .post(url)
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.absorb(r).await
    }
}

fn field(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&needle)
        .unwrap_or_else(|| panic!("no {name} field in page:\n{html}"))
        + needle.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].replace("&amp;", "&")
}

/// Plays the user for `auth_url` and returns the redirect back to the client.
pub async fn authorize(
    auth_url: &str,
    username: &str,
    password: &str,
    decision: Decision,
) -> String {
    let origin = {
        let u = url::Url::parse(auth_url).unwrap();
        u.origin().ascii_serialization()
    };
    let mut b = Browser::new();
    let (status, location, html) = b.get(auth_url).await;
    if let Some(loc) = location {
        return loc;
    }
    assert_eq!(status, 200, "authorize page: {html}");
    let (_, location, html) = b
        .post(
            &format!("{origin}/oauth/login"),
            &[
                ("pending", &field(&html, "pending")),
                ("csrf", &field(&html, "csrf")),
                ("username", username),
                ("password", password),
            ],
        )
        .await;
    if let Some(loc) = location {
        return loc;
    }
    let decision = match decision {
        Decision::Allow => "allow",
        Decision::Deny => "deny",
    };
    let (_, location, html) = b
        .post(
            &format!("{origin}/oauth/consent"),
            &[
                ("pending", &field(&html, "pending")),
                ("csrf", &field(&html, "csrf")),
                ("decision", decision),
            ],
        )
        .await;
    location.unwrap_or_else(|| panic!("no redirect after consent:\n{html}"))
}
