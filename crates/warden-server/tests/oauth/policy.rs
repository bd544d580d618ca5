//! The fleet policy narrows every grant: client credentials, user authorization and
//! refresh, token lifetime, and token exchange.

use warden_core::policy::{Policy, Registry};
use warden_core::scope::ScopeSet;
use warden_store::{PolicyStore, ServerStore, UserStore};

use crate::support::*;

struct Reg(Vec<warden_store::ServerRecord>);

impl Registry for Reg {
    fn server_scopes(&self, name: &str) -> Option<ScopeSet> {
        self.0
            .iter()
            .find(|s| s.name == name)
            .map(|s| ScopeSet::from_iter_valid(s.tool_groups.iter().map(|g| g.scope.clone())))
    }
    fn client_id(&self, key: &str) -> Option<String> {
        ["pub", "machine", "introspector", "web"]
            .contains(&key)
            .then(|| key.to_owned())
    }
}

pub(crate) async fn apply(h: &H, text: &str) {
    let servers = ServerStore::list(&h.store).await.unwrap();
    let policy = Policy::parse(text, &Reg(servers)).unwrap();
    let version = h.app.policy.version();
    PolicyStore::replace(
        &h.store,
        version,
        &serde_json::to_string(&policy).unwrap(),
        text,
        T0,
    )
    .await
    .unwrap();
    h.app.maintain().await;
    assert_eq!(h.app.policy.version(), version + 1);
}

async fn cc(h: &H, scope: Option<&str>) -> Resp {
    let (id, s) = (&h.machine.0, &h.machine.1);
    let mut form = vec![("grant_type", "client_credentials"), ("resource", NOTES)];
    if let Some(sc) = scope {
        form.push(("scope", sc));
    }
    h.token(&form, Some((id, s))).await
}

#[tokio::test]
async fn a_client_rule_decides_what_a_machine_gets_and_for_how_long() {
    let h = H::new().await;
    assert_eq!(
        cc(&h, None).await.json()["scope"],
        "notes:read",
        "no policy: the registered scopes"
    );
    apply(&h, "version = 1\n[[client]]\nid = \"machine\"\nservers = { notes = [\"notes:write\"] }\nmax_token_lifetime = \"2m\"\n").await;
    let r = cc(&h, None).await;
    assert_eq!(r.json()["scope"], "notes:write");
    assert_eq!(r.json()["expires_in"], 120);
    assert_eq!(
        cc(&h, Some("notes:read")).await.error(),
        "invalid_scope",
        "the policy replaced the registered grant"
    );
    apply(
        &h,
        "version = 1\n[[client]]\nid = \"machine\"\nservers = {}\n",
    )
    .await;
    assert_eq!(
        cc(&h, None).await.error(),
        "invalid_scope",
        "a rule granting nothing on a server gives nothing there"
    );
}

#[tokio::test]
async fn group_rules_and_default_deny_narrow_user_grants() {
    let h = H::new().await;
    // alice is in no group. A rule for a group she is not in changes nothing for her.
    apply(
        &h,
        "version = 1\n[[group]]\nname = \"contractors\"\nservers = { notes = [\"notes:read\"] }\n",
    )
    .await;
    let mut jar = Jar::default();
    let code = h.code_for(&[], &mut jar).await;
    assert_eq!(
        h.exchange(&code).await.json()["scope"],
        "notes:read notes:write"
    );
    // Put her in the group: the consent page and the token are narrowed.
    let mut alice = UserStore::get(&h.store, "u_alice").await.unwrap().unwrap();
    alice.groups = vec!["contractors".into()];
    UserStore::update(&h.store, &alice).await.unwrap();
    let mut jar = Jar::default();
    let code = h.code_for(&[("prompt", "consent")], &mut jar).await;
    let r = h.exchange(&code).await;
    assert_eq!(r.json()["scope"], "notes:read", "{}", r.body);
    // Her existing refresh token is narrowed too on the next refresh.
    let rt = r.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(h.refresh(&rt, &[]).await.json()["scope"], "notes:read");
    // Default deny: a user in no group with a rule gets nothing, and the client is told so.
    alice.groups = vec![];
    UserStore::update(&h.store, &alice).await.unwrap();
    apply(&h, "version = 1\ndefault = \"deny\"\n[[group]]\nname = \"contractors\"\nservers = { notes = [\"notes:read\"] }\n").await;
    let r = h
        .get(&h.authorize_url(&[("prompt", "consent")]), &jar)
        .await;
    assert_eq!(r.status, axum::http::StatusCode::FOUND, "{}", r.body);
    assert_eq!(r.location_query()["error"], "access_denied");
}

#[tokio::test]
async fn the_policy_decides_who_may_exchange_tokens_and_how_deep() {
    const TE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
    const AT: &str = "urn:ietf:params:oauth:token-type:access_token";
    let h = H::new().await;
    let subject = cc(&h, None).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (id, s) = (h.machine.0.clone(), h.machine.1.clone());
    let exchange = |t: String| {
        let (id, s) = (id.clone(), s.clone());
        let h = &h;
        async move {
            h.token(
                &[
                    ("grant_type", TE),
                    ("subject_token", &t),
                    ("subject_token_type", AT),
                ],
                Some((&id, &s)),
            )
            .await
        }
    };
    assert_eq!(
        exchange(subject.clone()).await.error(),
        "unauthorized_client",
        "not registered for exchange, no policy"
    );
    apply(&h, "version = 1\n[[client]]\nid = \"machine\"\nservers = { notes = [\"notes:read\"] }\ntoken_exchange = { allowed = true, max_depth = 1 }\n").await;
    let r = exchange(subject.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let once = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        exchange(once).await.error(),
        "invalid_request",
        "depth 2 exceeds the policy's 1"
    );
    apply(&h, "version = 1\n[[client]]\nid = \"machine\"\nservers = { notes = [\"notes:read\"] }\ntoken_exchange = { allowed = false }\n").await;
    assert_eq!(exchange(subject).await.error(), "unauthorized_client");
}
