//! ServerStore.

use warden_store::{ServerStore, Store, StoreError, ToolGroup};

use crate::fixtures::{server, NOW};

backend_tests!(server_crud_and_conflicts);

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
