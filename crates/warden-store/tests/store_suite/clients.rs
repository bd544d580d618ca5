//! ClientStore.

use warden_store::{ClientStore, Store, StoreError};

use crate::fixtures::{client, secret, NOW};

backend_tests!(
    client_crud,
    client_conflicts,
    client_update_is_atomic,
    client_update_if_unchanged
);

async fn client_crud(store: Store) {
    let clients: &dyn ClientStore = &store;
    let mut a = client("c-a", "Shared Name");
    a.secrets.push(secret("c-a-s2", NOW + 10));
    a.secrets[1].expires_at = Some(NOW + 86_400);
    let b = client("c-b", "Shared Name");
    let mut c = client("c-c", "Other");
    c.confidential = false;
    c.secrets.clear();
    c.token_endpoint_auth_method = "none".to_owned();
    for rec in [&a, &b, &c] {
        clients.create(rec).await.unwrap();
    }

    assert_eq!(clients.get("c-a").await.unwrap().as_ref(), Some(&a));
    assert_eq!(clients.get("c-c").await.unwrap().as_ref(), Some(&c));
    assert_eq!(clients.get("nope").await.unwrap(), None);

    let named = clients.find_by_name("Shared Name").await.unwrap();
    assert_eq!(named, vec![a.clone(), b.clone()]);
    assert!(clients.find_by_name("nobody").await.unwrap().is_empty());
    assert_eq!(
        clients.list().await.unwrap(),
        vec![a.clone(), b.clone(), c.clone()]
    );

    // Update replaces everything, secrets included, but keeps created_at.
    let mut a2 = a.clone();
    a2.name = "Renamed".to_owned();
    a2.redirect_uris = vec!["http://127.0.0.1:8123/cb".to_owned()];
    a2.secrets = vec![secret("c-a-s3", NOW + 20)];
    a2.metadata = serde_json::json!({ "software_id": "x" });
    a2.updated_at = NOW + 20;
    a2.created_at = NOW + 999;
    clients.update(&a2).await.unwrap();
    let got = clients.get("c-a").await.unwrap().unwrap();
    assert_eq!(got.created_at, NOW);
    a2.created_at = NOW;
    assert_eq!(got, a2);

    clients.touch_last_used("c-b", NOW + 30).await.unwrap();
    assert_eq!(
        clients.get("c-b").await.unwrap().unwrap().last_used_at,
        Some(NOW + 30)
    );

    let ghost = client("ghost", "Ghost");
    assert!(matches!(
        clients.update(&ghost).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        clients.touch_last_used("ghost", NOW).await,
        Err(StoreError::NotFound)
    ));

    assert!(clients.delete("c-a").await.unwrap());
    assert!(!clients.delete("c-a").await.unwrap());
    assert_eq!(clients.get("c-a").await.unwrap(), None);
    // The deleted client's secret ids are free again: its secrets went with it.
    clients.create(&a).await.unwrap();
}

async fn client_conflicts(store: Store) {
    let clients: &dyn ClientStore = &store;
    clients.create(&client("c1", "One")).await.unwrap();

    let err = clients.create(&client("c1", "Again")).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "client id"),
        "{err:?}"
    );

    // A secret id already used by another client: the whole create is rolled back.
    let mut dup_secret = client("c2", "Two");
    dup_secret.secrets = vec![secret("c1-s1", NOW)];
    let err = clients.create(&dup_secret).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "client secret id"),
        "{err:?}"
    );
    assert_eq!(clients.get("c2").await.unwrap(), None);
    // The message names the field, never the (hashed) values.
    assert_eq!(err.to_string(), "client secret id already exists");
}

async fn client_update_is_atomic(store: Store) {
    let clients: &dyn ClientStore = &store;
    let c1 = client("c1", "One");
    clients.create(&c1).await.unwrap();
    clients.create(&client("c2", "Two")).await.unwrap();

    // Replacing c1's secrets with one whose id belongs to c2 fails, and leaves c1 as
    // it was: name and secrets alike.
    let mut bad = c1.clone();
    bad.name = "Changed".to_owned();
    bad.secrets = vec![secret("c1-new", NOW), secret("c2-s1", NOW)];
    let err = clients.update(&bad).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "client secret id"),
        "{err:?}"
    );
    assert_eq!(clients.get("c1").await.unwrap(), Some(c1));
}

async fn client_update_if_unchanged(store: Store) {
    let clients: &dyn ClientStore = &store;
    let c1 = client("c1", "One");
    clients.create(&c1).await.unwrap();

    // Two read-modify-write changes from the same read: the first wins, the second is
    // refused and changes nothing.
    let mut first = c1.clone();
    first.secrets.push(secret("c1-first", NOW + 5));
    first.updated_at = c1.updated_at + 1;
    clients
        .update_if_unchanged(&first, c1.updated_at)
        .await
        .unwrap();
    let mut second = c1.clone();
    second.secrets.push(secret("c1-second", NOW + 5));
    second.updated_at = c1.updated_at + 1;
    let err = clients
        .update_if_unchanged(&second, c1.updated_at)
        .await
        .unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(clients.get("c1").await.unwrap(), Some(first));
    assert!(matches!(
        clients
            .update_if_unchanged(&client("ghost", "Ghost"), NOW)
            .await,
        Err(StoreError::NotFound)
    ));
}

#[test]
fn client_debug_hides_hashes() {
    let c = client("c1", "One");
    let shown = format!("{c:?}");
    assert!(shown.contains("<hash>"), "{shown}");
    assert!(!shown.contains("165"), "hash bytes leaked: {shown}");
}
