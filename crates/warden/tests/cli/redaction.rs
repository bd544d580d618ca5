//! Secrets sent to a running `warden` never reach its log output, even at TRACE level
//! where the HTTP stack logs headers and bodies.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs_at_trace_level() {
    let f = Fixture::new();
    for format in ["json", "pretty"] {
        let server = f.serve(&[("RUST_LOG", "trace"), ("WARDEN_LOG__FORMAT", format)]);
        let http = reqwest::Client::new();
        let token_url = format!("{}/oauth/token", f.base);
        // A real access token, so a JWT of the genuine shape is among the secrets.
        let issued: serde_json::Value = http
            .post(&token_url)
            .basic_auth(&f.client_id, Some(&f.client_secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("resource", f.resource.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let access_token = issued["access_token"].as_str().unwrap().to_owned();
        let secrets = [
            access_token.clone(),
            f.client_secret.clone(),
            "wdn_rt_Q2xpZW50UmVmcmVzaFRva2VuU2hvdWxkTmV2ZXJBcHBlYXI".to_owned(),
            "wdn_ac_QXV0aG9yaXphdGlvbkNvZGVTaG91bGROZXZlckFwcGVhcg".to_owned(),
            "verifier-Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5".to_owned(),
            "Pa55w0rd-never-logged-7f3a".to_owned(),
            "cookie-session-value-93b1e0".to_owned(),
        ];
        let [at, cs, rt, code, verifier, password, cookie] = &secrets;
        // Client secret by post, refresh and code grants, a password form, query tokens.
        let forms = [
            format!("grant_type=client_credentials&client_id={}&client_secret={cs}&resource={}", f.client_id, f.resource),
            format!("grant_type=refresh_token&refresh_token={rt}&client_id={}", f.client_id),
            format!("grant_type=authorization_code&code={code}&code_verifier={verifier}&redirect_uri=http://127.0.0.1/cb"),
            format!("grant_type=password&username=alice&password={password}"),
        ];
        for form in &forms {
            http.post(&token_url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", format!("__Host-warden_session={cookie}"))
                .body(form.clone())
                .send()
                .await
                .unwrap();
        }
        http.get(format!("{}/mcp/notes?access_token={at}", f.base))
            .bearer_auth(at)
            .send()
            .await
            .unwrap();
        http.get(format!(
            "{}/oauth/jwks.json?code={code}&refresh_token={rt}",
            f.base
        ))
        .header("authorization", format!("Bearer {rt}"))
        .send()
        .await
        .unwrap();
        // A secret in the path itself: request spans record the path (never the query),
        // so this one reaches the log pipeline and must be redacted there.
        http.get(format!("{}/oauth/{rt}", f.base))
            .send()
            .await
            .unwrap();
        let (status, stdout, stderr) = tokio::task::spawn_blocking(move || server.stop(15))
            .await
            .unwrap();
        assert!(status.success());
        let logs = format!("{stdout}\n{stderr}");
        // The log really did capture the HTTP traffic.
        assert!(
            logs.lines().count() > 20,
            "expected a trace-level log, got:\n{logs}"
        );
        assert!(
            logs.matches("/oauth/token").count() >= 5,
            "requests should be logged:\n{logs}"
        );
        // The redactor had work to do: secrets did reach the log pipeline and were removed.
        assert!(
            logs.contains("[REDACTED]"),
            "expected redactions in:\n{logs}"
        );
        for s in &secrets {
            assert!(
                !logs.contains(s.as_str()),
                "secret leaked into {format} logs: {}…",
                &s[..12]
            );
        }
        // Nothing resembling a signature part of a JWT either.
        let sig = access_token.rsplit('.').next().unwrap();
        assert!(!logs.contains(sig));
    }
}
