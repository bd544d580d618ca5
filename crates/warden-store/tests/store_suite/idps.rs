//! IdpStore, federated identity links (UserStore) and workload bindings (ClientStore).

use warden_store::{
    ClientStore, IdentityLink, IdpRecord, IdpStore, Store, StoreError, UserStore, WorkloadBinding,
};

use crate::fixtures::{client, user, NOW};

backend_tests!(
    idp_crud,
    idp_conflicts,
    federated_users_are_created_atomically,
    identity_links_go_with_their_user,
    workload_bindings,
    an_idp_with_bound_clients_is_kept
);

fn idp(name: &str, domains: &[&str]) -> IdpRecord {
    IdpRecord {
        name: name.to_owned(),
        issuer: format!("https://{name}.idp.example"),
        display_name: Some(format!("Sign in with {name}")),
        uses: vec!["login".to_owned(), "workload".to_owned()],
        client_id: Some("warden".to_owned()),
        client_secret_sealed: Some(vec![1, 2, 3, 0, 255]),
        groups_claim: "groups".to_owned(),
        group_map: vec![("eng".to_owned(), "staff".to_owned())],
        domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        tenants: vec![],
        audiences: vec!["api://warden".to_owned()],
        scopes: vec!["openid".to_owned(), "email".to_owned()],
        jwks_uri: None,
        issuer_ca: None,
        disabled: false,
        created_at: NOW,
        updated_at: NOW,
    }
}

fn link(user_id: &str, subject: &str) -> IdentityLink {
    IdentityLink {
        idp_name: "okta".to_owned(),
        issuer: "https://okta.idp.example".to_owned(),
        subject: subject.to_owned(),
        user_id: user_id.to_owned(),
        created_at: NOW,
        last_seen_at: NOW,
    }
}

fn federated(id: &str, username: &str) -> warden_store::UserRecord {
    let mut u = user(id, username);
    u.password_hash = String::new();
    u
}

fn binding(idp: &str, subject: &str) -> WorkloadBinding {
    WorkloadBinding {
        idp_name: idp.to_owned(),
        subject: subject.to_owned(),
    }
}

async fn idp_crud(store: Store) {
    let idps: &dyn IdpStore = &store;
    let okta = idp("okta", &["example.com", "example.org"]);
    let mut entra = idp("entra", &[]);
    entra.issuer = "https://login.microsoftonline.com/{tenantid}/v2.0".to_owned();
    entra.tenants = vec!["t1".to_owned(), "t2".to_owned()];
    entra.client_secret_sealed = None;
    entra.display_name = None;
    entra.jwks_uri = Some("https://login.example/keys".to_owned());
    entra.issuer_ca = Some("-----BEGIN CERTIFICATE-----\n...".to_owned());
    entra.disabled = true;
    idps.create(&okta).await.unwrap();
    idps.create(&entra).await.unwrap();

    assert_eq!(idps.get("okta").await.unwrap().as_ref(), Some(&okta));
    assert_eq!(idps.get("entra").await.unwrap().as_ref(), Some(&entra));
    assert_eq!(idps.get("nope").await.unwrap(), None);
    assert_eq!(
        idps.list().await.unwrap(),
        vec![entra.clone(), okta.clone()]
    );
    assert_eq!(
        idps.find_by_domain("example.org").await.unwrap().as_ref(),
        Some(&okta)
    );
    assert_eq!(idps.find_by_domain("other.example").await.unwrap(), None);

    // Update replaces everything, domains included, but keeps created_at.
    let mut okta2 = okta.clone();
    okta2.domains = vec!["example.net".to_owned()];
    okta2.uses = vec!["id-jag".to_owned()];
    okta2.client_secret_sealed = None;
    okta2.group_map = vec![];
    okta2.disabled = true;
    okta2.updated_at = NOW + 5;
    okta2.created_at = NOW + 99;
    idps.update(&okta2).await.unwrap();
    okta2.created_at = NOW;
    assert_eq!(idps.get("okta").await.unwrap(), Some(okta2.clone()));
    assert_eq!(idps.find_by_domain("example.com").await.unwrap(), None);
    assert_eq!(
        idps.find_by_domain("example.net").await.unwrap(),
        Some(okta2)
    );
    assert!(matches!(
        idps.update(&idp("ghost", &[])).await,
        Err(StoreError::NotFound)
    ));

    assert!(idps.delete("okta").await.unwrap());
    assert!(!idps.delete("okta").await.unwrap());
    // Its domains went with it.
    assert_eq!(idps.find_by_domain("example.net").await.unwrap(), None);
    idps.create(&idp("other", &["example.net"])).await.unwrap();
}

async fn idp_conflicts(store: Store) {
    let idps: &dyn IdpStore = &store;
    idps.create(&idp("okta", &["example.com"])).await.unwrap();
    let err = idps.create(&idp("okta", &[])).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "idp name"),
        "{err:?}"
    );
    // A domain routes to one IdP only, and a refused create leaves nothing behind.
    let err = idps
        .create(&idp("entra", &["a.example", "example.com"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "idp domain"),
        "{err:?}"
    );
    assert_eq!(idps.get("entra").await.unwrap(), None);
    assert_eq!(idps.find_by_domain("a.example").await.unwrap(), None);

    idps.create(&idp("entra", &["a.example"])).await.unwrap();
    let mut taken = idps.get("entra").await.unwrap().unwrap();
    taken.domains.push("example.com".to_owned());
    taken.updated_at = NOW + 1;
    let err = idps.update(&taken).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "idp domain"),
        "{err:?}"
    );
    // Nothing of the refused update was kept.
    let kept = idps.get("entra").await.unwrap().unwrap();
    assert_eq!(
        (kept.domains, kept.updated_at),
        (vec!["a.example".to_owned()], NOW)
    );
}

async fn federated_users_are_created_atomically(store: Store) {
    let users: &dyn UserStore = &store;
    users
        .create_federated(&federated("u1", "alice@example.com"), &link("u1", "sub-1"))
        .await
        .unwrap();
    let found = users
        .find_by_identity("https://okta.idp.example", "sub-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, "u1");
    assert!(found.password_hash.is_empty());
    assert_eq!(
        users
            .find_by_identity("https://other.example", "sub-1")
            .await
            .unwrap(),
        None
    );

    // The same identity again: refused, and the second user is not left behind.
    let err = users
        .create_federated(&federated("u2", "alice2@example.com"), &link("u2", "sub-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "identity link"),
        "{err:?}"
    );
    assert_eq!(users.get("u2").await.unwrap(), None);
    assert_eq!(
        users.get_by_username("alice2@example.com").await.unwrap(),
        None
    );
    // A taken username: neither user nor link.
    let err = users
        .create_federated(&federated("u3", "alice@example.com"), &link("u3", "sub-3"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "username"),
        "{err:?}"
    );
    assert_eq!(
        users
            .find_by_identity("https://okta.idp.example", "sub-3")
            .await
            .unwrap(),
        None
    );
    // A link that names another user is refused.
    assert!(users
        .create_federated(&federated("u4", "dave"), &link("u1", "sub-4"))
        .await
        .is_err());
    assert_eq!(users.get("u4").await.unwrap(), None);

    users
        .touch_identity("https://okta.idp.example", "sub-1", NOW + 60)
        .await
        .unwrap();
    assert!(matches!(
        users
            .touch_identity("https://okta.idp.example", "nobody", NOW)
            .await,
        Err(StoreError::NotFound)
    ));
    users
        .create_federated(&federated("u5", "bob@example.com"), &link("u5", "sub-5"))
        .await
        .unwrap();
    let mut elsewhere = link("u6", "sub-6");
    elsewhere.idp_name = "entra".to_owned();
    users
        .create_federated(&federated("u6", "carol@example.com"), &elsewhere)
        .await
        .unwrap();
    assert_eq!(users.users_of_idp("okta").await.unwrap(), ["u1", "u5"]);
    assert_eq!(users.users_of_idp("entra").await.unwrap(), ["u6"]);
    assert!(users.users_of_idp("none").await.unwrap().is_empty());
}

async fn identity_links_go_with_their_user(store: Store) {
    let users: &dyn UserStore = &store;
    users
        .create_federated(&federated("u1", "alice@example.com"), &link("u1", "sub-1"))
        .await
        .unwrap();
    assert!(users.delete("u1").await.unwrap());
    assert!(users.users_of_idp("okta").await.unwrap().is_empty());
    // The identity is free again: a new sign-in creates a new user.
    users
        .create_federated(&federated("u2", "alice@example.com"), &link("u2", "sub-1"))
        .await
        .unwrap();
}

async fn workload_bindings(store: Store) {
    let clients: &dyn ClientStore = &store;
    IdpStore::create(&store, &idp("k8s", &[])).await.unwrap();
    IdpStore::create(&store, &idp("spiffe", &[])).await.unwrap();
    let mut a = client("c-a", "A");
    a.secrets.clear();
    let ns = "system:serviceaccount:ns:agent";
    clients
        .create_with_workloads(&a, &[binding("k8s", ns), binding("spiffe", "spiffe://x/a")])
        .await
        .unwrap();
    assert_eq!(
        clients.workloads("c-a").await.unwrap(),
        [binding("k8s", ns), binding("spiffe", "spiffe://x/a")]
    );
    assert_eq!(
        clients
            .client_for_workload("k8s", ns)
            .await
            .unwrap()
            .as_deref(),
        Some("c-a")
    );
    assert_eq!(
        clients.client_for_workload("spiffe", ns).await.unwrap(),
        None
    );

    // A binding belongs to one client; the refused client is not created.
    let mut b = client("c-b", "B");
    b.secrets.clear();
    let err = clients
        .create_with_workloads(&b, &[binding("k8s", ns)])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "workload binding"),
        "{err:?}"
    );
    assert_eq!(clients.get("c-b").await.unwrap(), None);
    // An unknown IdP: refused, nothing left.
    let err = clients
        .create_with_workloads(&b, &[binding("nope", "x")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert_eq!(clients.get("c-b").await.unwrap(), None);

    clients.create_with_workloads(&b, &[]).await.unwrap();
    assert!(clients.workloads("c-b").await.unwrap().is_empty());
    let err = clients
        .set_workloads("c-b", &[binding("k8s", ns)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    clients
        .set_workloads("c-b", &[binding("k8s", "other")])
        .await
        .unwrap();
    assert!(matches!(
        clients.set_workloads("ghost", &[]).await,
        Err(StoreError::NotFound)
    ));

    // Updating with new bindings replaces them in one step with the record.
    let mut a2 = clients.get("c-a").await.unwrap().unwrap();
    a2.name = "A2".to_owned();
    a2.updated_at = NOW + 1;
    let err = clients
        .update_with_workloads(&a2, NOW, &[binding("k8s", "other")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(clients.get("c-a").await.unwrap().unwrap().name, "A");
    assert_eq!(clients.workloads("c-a").await.unwrap().len(), 2);
    clients
        .update_with_workloads(&a2, NOW, &[binding("spiffe", "spiffe://x/a")])
        .await
        .unwrap();
    assert_eq!(clients.get("c-a").await.unwrap().unwrap().name, "A2");
    assert_eq!(clients.client_for_workload("k8s", ns).await.unwrap(), None);
    assert_eq!(clients.clients_of_idp("k8s").await.unwrap(), ["c-b"]);
    assert_eq!(clients.clients_of_idp("spiffe").await.unwrap(), ["c-a"]);

    assert_eq!(
        clients.all_workloads().await.unwrap(),
        [
            ("c-a".to_owned(), binding("spiffe", "spiffe://x/a")),
            ("c-b".to_owned(), binding("k8s", "other"))
        ]
    );
    // Bindings go with their client.
    assert!(clients.delete("c-b").await.unwrap());
    assert_eq!(
        clients.client_for_workload("k8s", "other").await.unwrap(),
        None
    );
    assert!(clients.clients_of_idp("k8s").await.unwrap().is_empty());
}

async fn an_idp_with_bound_clients_is_kept(store: Store) {
    IdpStore::create(&store, &idp("k8s", &[])).await.unwrap();
    let mut a = client("c-a", "A");
    a.secrets.clear();
    ClientStore::create_with_workloads(&store, &a, &[binding("k8s", "sa")])
        .await
        .unwrap();
    let err = IdpStore::delete(&store, "k8s").await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(IdpStore::get(&store, "k8s").await.unwrap().is_some());
    ClientStore::set_workloads(&store, "c-a", &[])
        .await
        .unwrap();
    assert!(IdpStore::delete(&store, "k8s").await.unwrap());
}

#[test]
fn idp_debug_hides_the_sealed_secret() {
    let shown = format!("{:?}", idp("okta", &[]));
    assert!(!shown.contains("255"), "{shown}");
}
