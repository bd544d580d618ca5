//! `warden idp …` and workload-bound clients, on the data dir and through `--server`:
//! the same `--json` shapes both ways, the client secret read from stdin, sealed at rest
//! and never printed.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::support::*;

const SECRET: &str = "okta-client-secret-3f9a1c77";

fn local(f: &Fixture, args: &[&str]) -> Command {
    let mut c = warden(&f.dir);
    c.args(args);
    c
}

/// `warden --server URL …` with the bootstrap admin credential, and a data dir that does
/// not exist: nothing may be read locally.
fn remote(f: &Fixture, (id, secret): (&str, &str), args: &[&str]) -> Command {
    let mut c = warden(Path::new("/nonexistent/warden-data"));
    c.env("WARDEN_ADMIN_CLIENT_ID", id)
        .env("WARDEN_ADMIN_CLIENT_SECRET", secret)
        .args(["--server", &f.base])
        .args(args);
    c
}

fn json_of(cmd: Command, stdin: Option<&str>) -> Value {
    serde_json::from_str(&ok(cmd, stdin)).unwrap()
}

const OKTA: &[&str] = &[
    "--json",
    "idp",
    "add",
    "okta",
    "--issuer",
    "https://acme.okta.example",
    "--use",
    "login",
    "--use",
    "workload",
    "--client-id",
    "warden",
    "--client-secret-stdin",
    "--group-map",
    "Engineering=staff",
    "--domain",
    "acme.example",
    "--display-name",
    "Acme SSO",
];

#[test]
fn idp_add_list_show_update_remove_on_the_data_dir() {
    let (f, _) = Fixture::initialized();
    let out = ok(local(&f, OKTA), Some(&format!("{SECRET}\n")));
    assert!(!out.contains(SECRET), "{out}");
    let added: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(added["client_secret_set"], true);
    assert_eq!(added["uses"], json!(["login", "workload"]));
    assert_eq!(added["client_id"], "warden");
    assert_eq!(
        added["group_map"],
        json!([{ "idp_group": "Engineering", "group": "staff" }])
    );
    assert_eq!(added["scopes"], json!(["openid", "email", "profile"]));
    // Sealed at rest: the database file never holds the secret in clear.
    let db = database_bytes(&f.dir);
    assert!(!db.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));

    let list = json_of(local(&f, &["--json", "idp", "list"]), None);
    assert_eq!(list, json!([added]));
    let shown = json_of(local(&f, &["--json", "idp", "show", "okta"]), None);
    assert_eq!(shown, added);
    let text = ok(local(&f, &["idp", "show", "okta"]), None);
    assert!(text.contains("client secret  set"), "{text}");
    assert!(!text.contains(SECRET));
    let table = ok(local(&f, &["idp", "list"]), None);
    assert!(
        table.contains("acme.okta.example") && table.contains("login,workload"),
        "{table}"
    );

    // Update: a list flag replaces, --unset clears, --disable disables.
    let updated = json_of(
        local(
            &f,
            &[
                "--json",
                "idp",
                "update",
                "okta",
                "--domain",
                "acme.example",
                "--domain",
                "acme.test",
                "--scope",
                "openid",
                "--scope",
                "email",
                "--unset",
                "display-name",
                "--disable",
            ],
        ),
        None,
    );
    assert_eq!(updated["domains"], json!(["acme.example", "acme.test"]));
    assert_eq!(updated["scopes"], json!(["openid", "email"]));
    assert_eq!(updated["display_name"], Value::Null);
    assert_eq!(updated["disabled"], true);
    assert_eq!(updated["client_secret_set"], true);
    let enabled = json_of(
        local(
            &f,
            &[
                "--json", "idp", "update", "okta", "--enable", "--unset", "scopes",
            ],
        ),
        None,
    );
    assert_eq!(enabled["disabled"], false);
    assert_eq!(enabled["scopes"], json!(["openid", "email", "profile"]));
    // A new secret from stdin.
    let rotated = ok(
        local(
            &f,
            &["--json", "idp", "update", "okta", "--client-secret-stdin"],
        ),
        Some("another-secret-value\n"),
    );
    assert!(!rotated.contains("another-secret-value"));

    let removed = json_of(local(&f, &["--json", "idp", "remove", "okta"]), None);
    assert_eq!(removed, json!({ "removed": "okta", "sessions_revoked": 0 }));
    let err = fails(local(&f, &["idp", "show", "okta"]));
    assert!(err.contains("no identity provider named \"okta\""), "{err}");
    // The audit log has the three changes.
    let events = ok(local(&f, &["--json", "events"]), None);
    for kind in ["idp.created", "idp.updated", "idp.removed"] {
        assert!(events.contains(kind), "{kind}");
    }
    assert!(!events.contains(SECRET));
}

#[test]
fn idp_refusals_are_clear() {
    let (f, _) = Fixture::initialized();
    let base = ["idp", "add", "x", "--issuer", "https://x.example"];
    let err = fails(local(&f, &base));
    assert!(err.contains("--use"), "{err}");
    let mut no_secret = local(&f, &base);
    no_secret.args(["--use", "login", "--client-id", "w"]);
    let err = fails(no_secret);
    assert!(err.contains("client secret"), "{err}");
    let mut bad_use = local(&f, &base);
    bad_use.args(["--use", "sso"]);
    assert!(fails(bad_use).contains("login"));
    let mut bad_map = local(&f, &base);
    bad_map.args(["--use", "id-jag", "--group-map", "eng"]);
    let err = fails(bad_map);
    assert!(err.contains("IDP_GROUP=WARDEN_GROUP"), "{err}");
    let mut http = local(&f, &["idp", "add", "x", "--issuer", "http://x.example"]);
    http.args(["--use", "id-jag"]);
    assert!(fails(http).contains("https"));
    let mut entra = local(
        &f,
        &[
            "idp",
            "add",
            "entra",
            "--issuer",
            "https://login.microsoftonline.com/{tenantid}/v2.0",
        ],
    );
    entra.args(["--use", "id-jag"]);
    assert!(fails(entra).contains("--tenant"));
    let mut ok_entra = local(
        &f,
        &[
            "idp",
            "add",
            "entra",
            "--issuer",
            "https://login.microsoftonline.com/{tenantid}/v2.0",
        ],
    );
    ok_entra.args([
        "--use",
        "id-jag",
        "--tenant",
        "t-1",
        "--domain",
        "contoso.example",
    ]);
    ok(ok_entra, None);
    let mut bad_ca = local(&f, &base);
    let pem = f.dir.join("not.pem");
    std::fs::write(&pem, "nothing here").unwrap();
    bad_ca.args(["--use", "id-jag", "--issuer-ca"]).arg(&pem);
    assert!(fails(bad_ca).contains("issuer-ca"));
    // A domain belongs to one IdP.
    let mut taken = local(&f, &base);
    taken.args(["--use", "id-jag", "--domain", "CONTOSO.example"]);
    let err = fails(taken);
    assert!(
        err.contains("already routes to identity provider entra"),
        "{err}"
    );
    let err = fails(local(&f, &["idp", "update", "entra"]));
    assert!(err.contains("nothing to change"), "{err}");
    let err = fails(local(&f, &["idp", "update", "entra", "--unset", "tenants"]));
    assert!(err.contains("--tenant"), "{err}");
}

#[test]
fn idp_and_workload_clients_through_the_admin_api() {
    let (f, init) = Fixture::initialized();
    let (id, secret) = admin_credentials(&init);
    let cred = (id.as_str(), secret.as_str());
    let server = f.serve(&[]);

    let out = ok(remote(&f, cred, OKTA), Some(&format!("{SECRET}\n")));
    assert!(!out.contains(SECRET), "{out}");
    let added: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(added["client_secret_set"], true);
    let remote_list = json_of(remote(&f, cred, &["--json", "idp", "list"]), None);
    assert_eq!(remote_list, json!([added]));
    assert_eq!(
        json_of(remote(&f, cred, &["--json", "idp", "show", "okta"]), None),
        added
    );

    // A client bound to a workload identity: public, jwt-bearer, no secret.
    let sa = "system:serviceaccount:agents:runner";
    let client = json_of(
        remote(
            &f,
            cred,
            &[
                "--json",
                "client",
                "add",
                "runner",
                "--workload",
                &format!("okta:{sa}"),
            ],
        ),
        None,
    );
    assert_eq!(client["client_type"], "public");
    assert_eq!(client["token_endpoint_auth_method"], "none");
    assert!(client.get("client_secret").is_none());
    assert_eq!(
        client["grant_types"],
        json!(["urn:ietf:params:oauth:grant-type:jwt-bearer"])
    );
    assert_eq!(
        client["workloads"],
        json!([{ "idp": "okta", "subject": sa }])
    );
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    // The same workload again is a conflict; the IdP is kept while a client is bound.
    let err = fails(remote(
        &f,
        cred,
        &[
            "client",
            "add",
            "second",
            "--workload",
            &format!("okta:{sa}"),
        ],
    ));
    assert!(err.contains("already bound to another client"), "{err}");
    let err = fails(remote(&f, cred, &["idp", "remove", "okta"]));
    assert!(
        err.contains(&client_id) && err.contains("HTTP 409"),
        "{err}"
    );

    // Add and drop bindings with client update.
    let updated = json_of(
        remote(
            &f,
            cred,
            &[
                "--json",
                "client",
                "update",
                "runner",
                "--workload",
                "okta:other-sa",
                "--remove-workload",
                &format!("okta:{sa}"),
            ],
        ),
        None,
    );
    assert_eq!(
        updated["workloads"],
        json!([{ "idp": "okta", "subject": "other-sa" }])
    );
    let cleared = json_of(
        remote(
            &f,
            cred,
            &[
                "--json",
                "client",
                "update",
                "runner",
                "--unset",
                "workloads",
            ],
        ),
        None,
    );
    assert_eq!(cleared["workloads"], json!([]));

    // An ID-JAG client: --grant jwt-bearer.
    let jag = json_of(
        remote(
            &f,
            cred,
            &[
                "--json",
                "client",
                "add",
                "agent",
                "--confidential",
                "--grant",
                "jwt-bearer",
            ],
        ),
        None,
    );
    assert_eq!(
        jag["grant_types"],
        json!(["urn:ietf:params:oauth:grant-type:jwt-bearer"])
    );

    let updated = json_of(
        remote(&f, cred, &["--json", "idp", "update", "okta", "--disable"]),
        None,
    );
    assert_eq!(updated["disabled"], true);
    let removed = json_of(remote(&f, cred, &["--json", "idp", "remove", "okta"]), None);
    assert_eq!(removed["removed"], "okta");
    let (status, _, log) = server.stop(15);
    assert!(status.success() || status.code().is_none(), "{status}");
    assert!(!log.contains(SECRET), "the server log holds the secret");

    // The data dir's view matches, and the file never held the secret in clear.
    let local_list = json_of(local(&f, &["--json", "idp", "list"]), None);
    assert_eq!(local_list, json!([]));
    let db = database_bytes(&f.dir);
    assert!(!db.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
}

#[test]
fn idp_workload_client_on_the_data_dir_and_bad_workload_flags() {
    let (f, _) = Fixture::initialized();
    ok(
        local(
            &f,
            &[
                "idp",
                "add",
                "k8s",
                "--issuer",
                "https://k8s.example",
                "--use",
                "workload",
                "--audience",
                "warden",
            ],
        ),
        None,
    );
    let c = json_of(
        local(
            &f,
            &[
                "--json",
                "client",
                "add",
                "job",
                "--workload",
                "k8s:spiffe://x/ns/job",
            ],
        ),
        None,
    );
    assert_eq!(
        c["workloads"],
        json!([{ "idp": "k8s", "subject": "spiffe://x/ns/job" }])
    );
    let shown = json_of(local(&f, &["--json", "client", "show", "job"]), None);
    assert_eq!(shown["workloads"], c["workloads"]);
    let err = fails(local(&f, &["client", "add", "x", "--workload", "nocolon"]));
    assert!(err.contains("IDP_NAME:SUBJECT"), "{err}");
    let err = fails(local(&f, &["client", "add", "x", "--workload", "nope:s"]));
    assert!(err.contains("no identity provider named"), "{err}");
    let err = fails(local(
        &f,
        &[
            "client",
            "add",
            "x",
            "--confidential",
            "--workload",
            "k8s:s2",
        ],
    ));
    assert!(err.contains("no secret"), "{err}");
    let err = fails(local(
        &f,
        &["client", "update", "job", "--remove-workload", "k8s:zzz"],
    ));
    assert!(err.contains("no such binding"), "{err}");
    let err = fails(local(&f, &["idp", "remove", "k8s"]));
    assert!(err.contains("unbind them first"), "{err}");
}
