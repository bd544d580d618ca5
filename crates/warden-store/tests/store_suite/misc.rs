//! RevocationStore, KeyStore and ConsentStore.

use warden_store::{
    ConsentRecord, ConsentStore, KeyStore, RevocationStore, SigningKeyRecord, Store, StoreError,
};

use crate::fixtures::NOW;

backend_tests!(revocation_denylist, key_schedule, consent_upsert_and_delete);

async fn revocation_denylist(store: Store) {
    let denylist: &dyn RevocationStore = &store;
    denylist.revoke("j1", NOW + 100, NOW).await.unwrap();
    denylist.revoke("j2", NOW + 10, NOW).await.unwrap();
    // Idempotent; a later expiry extends the entry, an earlier one does not shorten it.
    denylist.revoke("j1", NOW + 200, NOW + 1).await.unwrap();
    denylist.revoke("j1", NOW + 50, NOW + 2).await.unwrap();

    assert!(denylist.is_revoked("j1").await.unwrap());
    assert!(denylist.is_revoked("j2").await.unwrap());
    assert!(!denylist.is_revoked("j3").await.unwrap());
    assert_eq!(
        denylist.list_active(NOW).await.unwrap(),
        vec![("j2".to_owned(), NOW + 10), ("j1".to_owned(), NOW + 200)]
    );
    assert_eq!(
        denylist.list_active(NOW + 10).await.unwrap(),
        vec![("j1".to_owned(), NOW + 200)]
    );

    assert_eq!(denylist.purge_expired(NOW + 10).await.unwrap(), 1);
    assert!(!denylist.is_revoked("j2").await.unwrap());
    assert!(denylist.is_revoked("j1").await.unwrap());
    assert_eq!(denylist.purge_expired(NOW + 10).await.unwrap(), 0);
}

fn key(kid: &str, activate_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_owned(),
        alg: "ES256".to_owned(),
        public_jwk: format!(r#"{{"kty":"EC","crv":"P-256","kid":"{kid}","x":"…","y":"…"}}"#),
        private_key_enc: vec![0xC1; 48],
        created_at: NOW,
        publish_at: activate_at - 3600,
        activate_at,
        retire_at: None,
        remove_at: None,
    }
}

async fn key_schedule(store: Store) {
    let keys: &dyn KeyStore = &store;
    let later = key("k-later", NOW + 86_400);
    let current = key("k-now", NOW);
    keys.insert(&later).await.unwrap();
    keys.insert(&current).await.unwrap();
    let err = keys.insert(&key("k-now", NOW + 5)).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "key id"),
        "{err:?}"
    );

    assert_eq!(
        keys.list().await.unwrap(),
        vec![current.clone(), later.clone()]
    );
    assert_eq!(keys.get("k-later").await.unwrap().as_ref(), Some(&later));
    assert_eq!(keys.get("k-none").await.unwrap(), None);

    keys.update_schedule("k-now", Some(NOW + 86_400), Some(NOW + 90_000))
        .await
        .unwrap();
    let got = keys.get("k-now").await.unwrap().unwrap();
    assert_eq!(
        (got.retire_at, got.remove_at),
        (Some(NOW + 86_400), Some(NOW + 90_000))
    );
    keys.update_schedule("k-now", None, None).await.unwrap();
    assert_eq!(keys.get("k-now").await.unwrap(), Some(current));
    assert!(matches!(
        keys.update_schedule("k-none", None, None).await,
        Err(StoreError::NotFound)
    ));

    assert!(keys.delete("k-now").await.unwrap());
    assert!(!keys.delete("k-now").await.unwrap());
    assert_eq!(keys.list().await.unwrap(), vec![later]);
}

fn consent(client: &str, resource: &str, scopes: &[&str], at: i64) -> ConsentRecord {
    ConsentRecord {
        user_id: "u1".to_owned(),
        client_id: client.to_owned(),
        resource: resource.to_owned(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        granted_at: at,
    }
}

async fn consent_upsert_and_delete(store: Store) {
    let consents: &dyn ConsentStore = &store;
    let files = consent("c1", "https://mcp.example/files", &["files:read"], NOW);
    let wiki = consent("c1", "https://mcp.example/wiki", &["wiki:read"], NOW);
    let other = consent("c2", "https://mcp.example/files", &["files:read"], NOW);
    for c in [&wiki, &other, &files] {
        consents.upsert(c).await.unwrap();
    }
    let widened = consent(
        "c1",
        "https://mcp.example/files",
        &["files:read", "files:write"],
        NOW + 9,
    );
    consents.upsert(&widened).await.unwrap();

    assert_eq!(
        consents
            .get("u1", "c1", "https://mcp.example/files")
            .await
            .unwrap(),
        Some(widened.clone())
    );
    assert_eq!(
        consents
            .get("u2", "c1", "https://mcp.example/files")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        consents.list_for_user("u1").await.unwrap(),
        vec![widened.clone(), wiki.clone(), other.clone()]
    );

    assert_eq!(
        consents
            .delete("u1", "c1", Some("https://mcp.example/wiki"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        consents
            .delete("u1", "c1", Some("https://mcp.example/wiki"))
            .await
            .unwrap(),
        0
    );
    consents.upsert(&wiki).await.unwrap();
    assert_eq!(consents.delete("u1", "c1", None).await.unwrap(), 2);
    assert_eq!(consents.list_for_user("u1").await.unwrap(), vec![other]);
}

#[test]
fn key_debug_hides_private_key() {
    let shown = format!("{:?}", key("k1", NOW));
    assert!(
        shown.contains("<hash>") && !shown.contains("193"),
        "{shown}"
    );
}

backend_tests!(opaque_access_tokens);

async fn opaque_access_tokens(store: Store) {
    use warden_store::{AccessTokenRecord, AccessTokenStore};
    let tokens: &dyn AccessTokenStore = &store;
    let rec = AccessTokenRecord {
        token_hash: vec![7; 32],
        jti: "at1".into(),
        client_id: "c".into(),
        subject: "alice".into(),
        audience: "https://x.example/mcp/notes".into(),
        scope: "notes:read".into(),
        sid: Some("fam".into()),
        act: None,
        cnf_jkt: Some("jkt-1".into()),
        issued_at: NOW,
        expires_at: NOW + 60,
    };
    tokens.insert(&rec).await.unwrap();
    assert_eq!(tokens.find(&[7; 32], NOW).await.unwrap(), Some(rec.clone()));
    assert_eq!(tokens.find(&[8; 32], NOW).await.unwrap(), None);
    assert_eq!(
        tokens.find(&[7; 32], NOW + 60).await.unwrap(),
        None,
        "expired tokens are not found"
    );
    let mut dup = rec.clone();
    dup.token_hash = vec![9; 32];
    assert!(
        matches!(tokens.insert(&dup).await, Err(StoreError::Conflict(_))),
        "jti is unique"
    );
    assert!(
        !format!("{rec:?}").contains("[7, 7"),
        "Debug hides the hash"
    );
    assert_eq!(tokens.purge_expired(NOW + 60).await.unwrap(), 1);
}

backend_tests!(policy_compare_and_swap);

async fn policy_compare_and_swap(store: Store) {
    use warden_store::PolicyStore;
    let p: &dyn PolicyStore = &store;
    assert_eq!(p.current().await.unwrap(), None);
    assert_eq!(p.replace(0, "{}", "version = 1", NOW).await.unwrap(), 1);
    assert!(
        matches!(
            p.replace(0, "{\"a\":1}", "x", NOW).await,
            Err(StoreError::Conflict(_))
        ),
        "a second first-apply loses"
    );
    assert_eq!(p.replace(1, "{\"b\":1}", "y", NOW + 1).await.unwrap(), 2);
    assert!(
        matches!(
            p.replace(1, "{}", "z", NOW).await,
            Err(StoreError::Conflict(_))
        ),
        "a stale version loses"
    );
    let cur = p.current().await.unwrap().unwrap();
    assert_eq!(
        (
            cur.version,
            cur.document.as_str(),
            cur.source.as_str(),
            cur.updated_at
        ),
        (2, "{\"b\":1}", "y", NOW + 1)
    );
}
