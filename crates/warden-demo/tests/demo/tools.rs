//! Tools, resources and prompts, in-process over the router.

use std::collections::BTreeSet;

use axum::body::Body;
use serde_json::{json, Value};
use warden_demo::TOOL_GROUPS;

use crate::support::*;

async fn tools_list() -> Vec<Value> {
    let app = app();
    let session = initialize(&app).await;
    let body = reply(rpc(&app, Some(&session), request("tools/list", json!({}))).await).await;
    assert!(body["result"].get("nextCursor").is_none());
    body["result"]["tools"].as_array().unwrap().clone()
}

#[tokio::test]
async fn tools_list_describes_every_tool_with_an_object_schema() {
    let tools = tools_list().await;
    for tool in &tools {
        let name = tool["name"].as_str().unwrap();
        assert!(!tool["description"].as_str().unwrap().is_empty(), "{name}");
        let schema = &tool["inputSchema"];
        assert_eq!(schema["type"], "object", "{name}");
        assert!(schema["properties"].is_object(), "{name}");
        assert_eq!(schema["additionalProperties"], false, "{name}");
    }
    let schema =
        |name: &str| tools.iter().find(|t| t["name"] == name).unwrap()["inputSchema"].clone();
    assert_eq!(schema("notes_read")["required"], json!(["id"]));
    assert_eq!(schema("notes_read")["properties"]["id"]["type"], "string");
    assert_eq!(schema("notes_write")["required"], json!(["title", "body"]));
    assert_eq!(
        schema("notes_write")["properties"]["body"]["type"],
        "string"
    );
    assert!(schema("notes_list").get("required").is_none());
}

#[tokio::test]
async fn tool_groups_cover_exactly_the_listed_tools() {
    let listed: BTreeSet<String> = tools_list()
        .await
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    let grouped: BTreeSet<String> = TOOL_GROUPS
        .iter()
        .flat_map(|(_, tools)| tools.iter().map(|t| (*t).to_owned()))
        .collect();
    assert_eq!(listed, grouped);
    let scopes: Vec<&str> = TOOL_GROUPS.iter().map(|(scope, _)| *scope).collect();
    assert_eq!(scopes, ["notes:read", "notes:write", "notes:admin"]);
}

#[tokio::test]
async fn notes_list_shows_the_seeded_notes() {
    let app = app();
    let session = initialize(&app).await;
    let response = call_tool(&app, &session, "notes_list", json!({})).await;
    assert_eq!(response["result"]["isError"], false);
    let expected = json!({"notes": [
        {"id": "1", "title": "Welcome"},
        {"id": "2", "title": "Scopes"},
    ]});
    assert_eq!(response["result"]["structuredContent"], expected);
    assert_eq!(response["result"]["content"][0]["type"], "text");
    assert_eq!(tool_text_json(&response), expected);
}

#[tokio::test]
async fn notes_write_then_read_from_another_session() {
    let app = app();
    let writer = initialize(&app).await;
    let written = call_tool(
        &app,
        &writer,
        "notes_write",
        json!({"title": "Groceries", "body": "eggs\nmilk"}),
    )
    .await;
    assert_eq!(written["result"]["isError"], false);
    let id = tool_text_json(&written)["id"].as_str().unwrap().to_owned();
    assert_eq!(id, "3");

    let reader = initialize(&app).await;
    let read = call_tool(&app, &reader, "notes_read", json!({"id": id})).await;
    assert_eq!(read["result"]["isError"], false);
    assert_eq!(
        tool_text_json(&read),
        json!({"id": "3", "title": "Groceries", "body": "eggs\nmilk"})
    );
    let by_number = call_tool(&app, &reader, "notes_read", json!({"id": 3})).await;
    assert_eq!(
        by_number["result"]["structuredContent"]["title"],
        "Groceries"
    );
}

#[tokio::test]
async fn bad_arguments_are_tool_errors_not_protocol_errors() {
    let app = app();
    let session = initialize(&app).await;
    let cases = [
        ("notes_read", json!({})),
        ("notes_read", json!({"id": "999"})),
        ("notes_read", json!({"id": "one"})),
        ("notes_write", json!({"title": "no body"})),
        ("notes_write", json!({"title": 7, "body": "x"})),
        ("notes_write", json!({"title": " ", "body": "x"})),
        (
            "notes_write",
            json!({"title": "x".repeat(201), "body": "x"}),
        ),
        ("notes_list", json!({"unexpected": true})),
    ];
    for (tool, arguments) in cases {
        let response = call_tool(&app, &session, tool, arguments.clone()).await;
        assert!(response.get("error").is_none(), "{tool} {arguments}");
        assert_eq!(response["result"]["isError"], true, "{tool} {arguments}");
        let text = response["result"]["content"][0]["text"].as_str().unwrap();
        assert!(!text.is_empty());
    }
}

#[tokio::test]
async fn unknown_tools_and_malformed_calls_are_invalid_params() {
    let app = app();
    let session = initialize(&app).await;
    let response = call_tool(&app, &session, "rm_rf", json!({})).await;
    assert_eq!(response["error"]["code"], -32602);
    assert!(response["error"]["message"]
        .as_str()
        .unwrap()
        .contains("rm_rf"));

    // A `tools/call` whose params rmcp cannot read is, to rmcp, an unknown method.
    let no_name = request("tools/call", json!({"arguments": {}}));
    let response = reply(rpc(&app, Some(&session), no_name).await).await;
    assert_eq!(response["error"]["code"], -32601);
}

#[tokio::test]
async fn admin_reset_clears_the_notebook() {
    let app = app();
    let session = initialize(&app).await;
    let reset = call_tool(&app, &session, "admin_reset", json!({})).await;
    assert_eq!(reset["result"]["structuredContent"], json!({"deleted": 2}));
    let listed = call_tool(&app, &session, "notes_list", json!({})).await;
    assert_eq!(listed["result"]["structuredContent"], json!({"notes": []}));
}

#[tokio::test]
async fn whoami_echoes_the_identity_headers_and_nothing_else() {
    let app = app();
    let session = initialize(&app).await;
    let body = request("tools/call", json!({"name": "whoami", "arguments": {}}));
    let request = post(Some(&session))
        .header("authorization", "Bearer gateway-assertion")
        .header("x-warden-sub", "user-42")
        .header("x-warden-client-id", "cli")
        .header("X-Warden-Scope", "notes:read")
        .header("x-user", "alice")
        .header("x-forwarded-user", "alice@example.com")
        .header("cookie", "session=secret")
        .header("x-other", "ignored")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = reply(send(&app, request).await).await;
    let expected = json!({
        "authorization": "Bearer gateway-assertion",
        "x-warden-client-id": "cli",
        "x-warden-scope": "notes:read",
        "x-warden-sub": "user-42",
        "x-user": "alice",
        "x-forwarded-user": "alice@example.com",
    });
    assert_eq!(response["result"]["isError"], false);
    assert_eq!(response["result"]["structuredContent"], expected);
    assert_eq!(tool_text_json(&response), expected);
}

#[tokio::test]
async fn whoami_without_identity_headers_is_empty() {
    let app = app();
    let session = initialize(&app).await;
    let response = call_tool(&app, &session, "whoami", json!({})).await;
    assert_eq!(response["result"]["structuredContent"], json!({}));
}

#[tokio::test]
async fn notes_are_resources() {
    let app = app();
    let session = initialize(&app).await;
    let listed = reply(rpc(&app, Some(&session), request("resources/list", json!({}))).await).await;
    let resources = listed["result"]["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 2);
    assert_eq!(resources[0]["uri"], "note://1");
    assert_eq!(resources[0]["name"], "Welcome");
    assert_eq!(resources[0]["mimeType"], "text/plain");

    let read = request("resources/read", json!({"uri": "note://2"}));
    let read = reply(rpc(&app, Some(&session), read).await).await;
    let contents = &read["result"]["contents"][0];
    assert_eq!(contents["uri"], "note://2");
    assert_eq!(contents["mimeType"], "text/plain");
    assert!(contents["text"].as_str().unwrap().contains("notes:admin"));

    for uri in ["note://99", "file:///etc/passwd", "note://x"] {
        let missing = request("resources/read", json!({ "uri": uri }));
        let missing = reply(rpc(&app, Some(&session), missing).await).await;
        assert_eq!(missing["error"]["code"], -32002, "{uri}");
        assert_eq!(missing["error"]["data"]["uri"], uri);
    }
    let templates = request("resources/templates/list", json!({}));
    let templates = reply(rpc(&app, Some(&session), templates).await).await;
    assert_eq!(templates["result"], json!({"resourceTemplates": []}));
}

#[tokio::test]
async fn summarize_notes_prompt() {
    let app = app();
    let session = initialize(&app).await;
    let listed = reply(rpc(&app, Some(&session), request("prompts/list", json!({}))).await).await;
    let prompts = listed["result"]["prompts"].as_array().unwrap();
    assert_eq!(prompts.len(), 1);
    assert_eq!(prompts[0]["name"], "summarize_notes");
    assert_eq!(prompts[0]["arguments"][0]["name"], "style");
    assert_eq!(prompts[0]["arguments"][0]["required"], false);

    let get = request(
        "prompts/get",
        json!({"name": "summarize_notes", "arguments": {"style": "detailed"}}),
    );
    let got = reply(rpc(&app, Some(&session), get).await).await;
    let message = &got["result"]["messages"][0];
    assert_eq!(message["role"], "user");
    assert_eq!(message["content"]["type"], "text");
    let text = message["content"]["text"].as_str().unwrap();
    assert!(text.contains("detailed"), "{text}");
    assert!(
        text.contains("Welcome") && text.contains("Scopes"),
        "{text}"
    );

    let default_style = request("prompts/get", json!({"name": "summarize_notes"}));
    let got = reply(rpc(&app, Some(&session), default_style).await).await;
    let text = got["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap();
    assert!(text.contains("brief"), "{text}");

    let unknown = request("prompts/get", json!({"name": "nope"}));
    let got = reply(rpc(&app, Some(&session), unknown).await).await;
    assert_eq!(got["error"]["code"], -32602);
}
