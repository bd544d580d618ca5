//! ServerStore.

use warden_store::{ServerStore, Store, StoreError, ToolGroup};

use crate::fixtures::{server, NOW};

backend_tests!(server_crud_and_conflicts, server_update_if_unchanged);

async fn server_crud_and_conflicts(store: Store) {
    let servers: &dyn ServerStore = &store;
    let files = server("files", "https://mcp.example/files");
    let mut wiki = server("wiki", "https://mcp.example/wiki");
    wiki.issuer = Some("https://as.example".to_owned());
    wiki.token_format = "opaque".to_owned();
    servers.create(&wiki).await.unwrap();
    servers.create(&files).await.unwrap();

    assert_eq!(servers.get("files").await.unwrap().as_ref(), Some(&files));
    assert_eq!(
        servers
            .get_by_uri("https://mcp.example/wiki")
            .await
            .unwrap()
            .as_ref(),
        Some(&wiki)
    );
    assert_eq!(
        servers.get_by_uri("https://mcp.example/").await.unwrap(),
        None
    );
    assert_eq!(
        servers.list().await.unwrap(),
        vec![files.clone(), wiki.clone()]
    );

    let err = servers
        .create(&server("files", "https://mcp.example/other"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "server name"),
        "{err:?}"
    );
    let err = servers
        .create(&server("files2", "https://mcp.example/files"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "canonical uri"),
        "{err:?}"
    );

    let mut moved = files.clone();
    moved.canonical_uri = "https://mcp.example/wiki".to_owned();
    let err = servers.update(&moved).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "canonical uri"),
        "{err:?}"
    );

    moved.canonical_uri = "https://mcp.example/files/v2".to_owned();
    moved.tool_groups.push(ToolGroup {
        scope: "files:write".to_owned(),
        tools: vec!["write_file".to_owned()],
    });
    moved.access_token_ttl_secs = 300;
    moved.updated_at = NOW + 1;
    servers.update(&moved).await.unwrap();
    assert_eq!(servers.get("files").await.unwrap(), Some(moved));
    assert_eq!(
        servers
            .get_by_uri("https://mcp.example/files")
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        servers.update(&server("nope", "https://x.example")).await,
        Err(StoreError::NotFound)
    ));

    assert!(servers.delete("wiki").await.unwrap());
    assert!(!servers.delete("wiki").await.unwrap());
    // The freed canonical URI can be registered again.
    servers
        .create(&server("wiki2", "https://mcp.example/wiki"))
        .await
        .unwrap();
}

async fn server_update_if_unchanged(store: Store) {
    let servers: &dyn ServerStore = &store;
    let files = server("files", "https://mcp.example/files");
    servers.create(&files).await.unwrap();
    servers
        .create(&server("wiki", "https://mcp.example/wiki"))
        .await
        .unwrap();

    // Two writers read the same version; the first wins, the second is told.
    let mut first = files.clone();
    first.upstream = "http://127.0.0.1:9001/mcp".to_owned();
    first.updated_at = NOW + 1;
    servers.update_if_unchanged(&first, NOW).await.unwrap();
    let mut second = files.clone();
    second.leeway_secs = 5;
    second.updated_at = NOW + 1;
    let err = servers.update_if_unchanged(&second, NOW).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f.contains("changed concurrently")),
        "{err:?}"
    );
    assert_eq!(servers.get("files").await.unwrap(), Some(first.clone()));

    // A taken canonical URI is a conflict on the URI, and changes nothing.
    let mut taken = first.clone();
    taken.canonical_uri = "https://mcp.example/wiki".to_owned();
    taken.updated_at = NOW + 2;
    let err = servers
        .update_if_unchanged(&taken, NOW + 1)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "canonical uri"),
        "{err:?}"
    );
    assert_eq!(servers.get("files").await.unwrap(), Some(first));
    assert!(matches!(
        servers
            .update_if_unchanged(&server("nope", "https://x.example"), NOW)
            .await,
        Err(StoreError::NotFound)
    ));
}
