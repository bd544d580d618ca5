//! UserStore.

use warden_store::{Store, StoreError, UserStore};

use crate::fixtures::{user, NOW};

backend_tests!(user_crud_and_conflicts);

async fn user_crud_and_conflicts(store: Store) {
    let users: &dyn UserStore = &store;
    let alice = user("u1", "alice");
    let mut bob = user("u2", "bob");
    bob.groups = vec![];
    bob.disabled = true;
    users.create(&bob).await.unwrap();
    users.create(&alice).await.unwrap();

    assert_eq!(users.get("u1").await.unwrap().as_ref(), Some(&alice));
    assert_eq!(
        users.get_by_username("bob").await.unwrap().as_ref(),
        Some(&bob)
    );
    assert_eq!(users.get_by_username("carol").await.unwrap(), None);
    assert_eq!(
        users.list().await.unwrap(),
        vec![alice.clone(), bob.clone()]
    );

    let err = users.create(&user("u3", "alice")).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "username"),
        "{err:?}"
    );
    let err = users.create(&user("u1", "alice2")).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "user id"),
        "{err:?}"
    );

    let mut renamed = bob.clone();
    renamed.username = "alice".to_owned();
    let err = users.update(&renamed).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "username"),
        "{err:?}"
    );

    renamed.username = "robert".to_owned();
    renamed.disabled = false;
    renamed.groups = vec!["admins".to_owned(), "staff".to_owned()];
    renamed.updated_at = NOW + 5;
    users.update(&renamed).await.unwrap();
    assert_eq!(users.get("u2").await.unwrap(), Some(renamed));
    assert!(matches!(
        users.update(&user("u9", "x")).await,
        Err(StoreError::NotFound)
    ));

    assert!(users.delete("u1").await.unwrap());
    assert!(!users.delete("u1").await.unwrap());
    assert_eq!(users.get_by_username("alice").await.unwrap(), None);
}

#[test]
fn user_debug_hides_password_hash() {
    let shown = format!("{:?}", user("u1", "alice"));
    assert!(!shown.contains("argon2id"), "{shown}");
}
