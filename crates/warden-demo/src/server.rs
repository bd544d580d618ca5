//! The demo as an rmcp [`ServerHandler`]: lifecycle, tools, resources and prompts. The
//! same handler serves both transports; only where the caller's identity comes from
//! differs (each HTTP request's headers, or the stdio process's environment).

use std::borrow::Cow;
use std::fmt::Write as _;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, Implementation, JsonObject, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ProgressNotificationParam, ProgressToken, Prompt, PromptArgument, PromptMessage,
    ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, Role, ServerCapabilities, ServerConfig, ToolsCapability,
};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router, ErrorData, Peer, RoleServer, ServerHandler};
use serde_json::{json, Value};

use crate::notes::Note;
use crate::tools::{self, Identity};
use crate::DemoState;

/// Protocol revisions this server speaks, newest first.
pub const PROTOCOL_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

/// [`PROTOCOL_VERSIONS`] as rmcp spells them. `initialize` echoes a requested version
/// from this list and otherwise offers the first, the latest.
const SUPPORTED_VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_03_26,
];

const INSTRUCTIONS: &str = "Warden demo notes server. Use notes_list and notes_read to browse \
    the shared notebook (also exposed as note://{id} resources), notes_write to add a note, \
    and whoami to see the identity headers Warden's gateway forwarded. admin_reset deletes \
    every note. The summarize_notes prompt summarises the notebook.";

const PROMPT_NAME: &str = "summarize_notes";

/// How many `notifications/progress` a progress-reporting call sends before its result.
const PROGRESS_STEPS: u32 = 3;

/// One served connection's handler: a stdio process, or (cloned per session by rmcp's
/// Streamable HTTP service) an HTTP session. Clones share the notebook.
#[derive(Clone)]
pub(crate) struct DemoServer {
    state: DemoState,
    /// Over stdio, the identity the process was started with; over HTTP `None`, and
    /// each request's own headers are read instead.
    fixed_identity: Option<Identity>,
    tools: ToolRouter<Self>,
}

// === impl DemoServer ===

impl DemoServer {
    /// A handler for HTTP sessions: identity comes from each request's headers.
    pub(crate) fn http(state: DemoState) -> Self {
        Self::with_identity(state, None)
    }

    /// A handler for one stdio client whose identity is fixed.
    pub(crate) fn stdio(state: DemoState, identity: Identity) -> Self {
        Self::with_identity(state, Some(identity))
    }

    fn with_identity(state: DemoState, fixed_identity: Option<Identity>) -> Self {
        Self {
            state,
            fixed_identity,
            tools: Self::tool_router(),
        }
    }

    /// The caller: over HTTP, rmcp puts the request's `http::request::Parts` in the
    /// context's extensions.
    fn identity(&self, context: &RequestContext<RoleServer>) -> Identity {
        if let Some(identity) = &self.fixed_identity {
            return identity.clone();
        }
        context
            .extensions
            .get::<http::request::Parts>()
            .map(|parts| Identity::from_headers(&parts.headers))
            .unwrap_or_default()
    }

    /// Sends [`PROGRESS_STEPS`] progress notifications, paced by the progress delay. A
    /// failed send means the client went away; the call still completes.
    async fn report_progress(&self, peer: &Peer<RoleServer>, token: ProgressToken) {
        let total = f64::from(PROGRESS_STEPS);
        for step in 1..=PROGRESS_STEPS {
            let progress = ProgressNotificationParam::new(token.clone(), f64::from(step))
                .with_total(total)
                .with_message(format!("step {step} of {PROGRESS_STEPS}"));
            if let Err(error) = peer.notify_progress(progress).await {
                tracing::debug!(%error, "progress notification not delivered");
            }
            tokio::time::sleep(self.state.progress_delay).await;
        }
    }
}

#[tool_router]
impl DemoServer {
    #[tool(
        name = "notes_list",
        title = "List notes",
        description = "List every note in the shared notebook as {id, title} pairs.",
        input_schema = tools::no_arguments(),
        annotations(
            title = "List notes",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn notes_list(&self, arguments: JsonObject) -> CallToolResult {
        tools::result(tools::notes_list(&self.state.notes, &arguments))
    }

    #[tool(
        name = "notes_read",
        title = "Read a note",
        description = "Read one note (id, title and body) by its id.",
        input_schema = tools::notes_read_schema(),
        annotations(
            title = "Read a note",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn notes_read(&self, arguments: JsonObject) -> CallToolResult {
        tools::result(tools::notes_read(&self.state.notes, &arguments))
    }

    #[tool(
        name = "notes_write",
        title = "Write a note",
        description = "Add a note to the shared notebook and return its new id.",
        input_schema = tools::notes_write_schema(),
        annotations(
            title = "Write a note",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    fn notes_write(&self, arguments: JsonObject) -> CallToolResult {
        tools::result(tools::notes_write(&self.state.notes, &arguments))
    }

    #[tool(
        name = "admin_reset",
        title = "Reset the notebook",
        description = "Delete every note in the shared notebook. Needs the notes:admin scope.",
        input_schema = tools::no_arguments(),
        annotations(
            title = "Reset the notebook",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    fn admin_reset(&self, arguments: JsonObject) -> CallToolResult {
        tools::result(tools::admin_reset(&self.state.notes, &arguments))
    }

    #[tool(
        name = "whoami",
        title = "Who am I",
        description = "Show the identity headers this server received: every x-warden-* \
                       header, authorization (the gateway's assertion, never the client's \
                       token), x-user and x-forwarded-user.",
        input_schema = tools::no_arguments(),
        annotations(
            title = "Who am I",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn whoami(&self, arguments: JsonObject, context: RequestContext<RoleServer>) -> CallToolResult {
        tools::result(tools::whoami(&self.identity(&context), &arguments))
    }
}

impl ServerHandler for DemoServer {
    fn get_info(&self) -> ServerConfig {
        let mut capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_prompts()
            .build();
        let mut tools_capability = ToolsCapability::default();
        tools_capability.list_changed = Some(false);
        capabilities.tools = Some(tools_capability);
        ServerConfig::new(capabilities)
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
            .with_server_info(
                Implementation::new("warden-demo", env!("CARGO_PKG_VERSION"))
                    .with_title("Warden demo notes server"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(SUPPORTED_VERSIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, ErrorData> {
        // The list is short, so there is never a `nextCursor`.
        Ok(rmcp::model::ListToolsResult::with_all_items(
            self.tools.list_all(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        self.tools.get(name).cloned()
    }

    /// A call carrying a progress token first reports progress (whatever the tool, so
    /// even a refused call shows the stream's shape), then answers.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if let Some(token) = context.meta.get_progress_token() {
            self.report_progress(&context.peer, token).await;
        }
        if !self.tools.has_route(&request.name) {
            return Err(ErrorData::invalid_params(
                format!("Unknown tool: {}", request.name),
                None,
            ));
        }
        self.tools
            .call(ToolCallContext::new(self, request, context))
            .await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let resources = self.state.notes.list().iter().map(note_resource).collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(Vec::new()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri;
        let note = uri
            .strip_prefix("note://")
            .and_then(|id| id.parse::<u64>().ok())
            .and_then(|id| self.state.notes.get(id))
            .ok_or_else(|| {
                ErrorData::resource_not_found("Resource not found", Some(json!({ "uri": uri })))
            })?;
        let contents =
            ResourceContents::text(note.body.clone(), note_uri(&note)).with_mime_type("text/plain");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let style = PromptArgument::new("style")
            .with_description("How to summarise: \"brief\" (the default) or \"detailed\".")
            .with_required(false);
        let prompt = Prompt::new(
            PROMPT_NAME,
            Some("Ask the model to summarise every note in the shared notebook."),
            Some(vec![style]),
        )
        .with_title("Summarise the notebook");
        Ok(ListPromptsResult::with_all_items(vec![prompt]))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if request.name != PROMPT_NAME {
            return Err(ErrorData::invalid_params(
                format!("Unknown prompt: {}", request.name),
                None,
            ));
        }
        let style = match request.arguments.as_ref().and_then(|a| a.get("style")) {
            None | Some(Value::Null) => "brief",
            Some(Value::String(style)) if !style.trim().is_empty() => style.trim(),
            Some(Value::String(_)) => "brief",
            Some(_) => return Err(ErrorData::invalid_params("`style` must be a string", None)),
        };
        let notes = self.state.notes.list();
        let mut result = GetPromptResult::new(vec![PromptMessage::new_text(
            Role::User,
            summary_request(style, &notes),
        )]);
        result.description = Some(format!("Summarise {} notes ({style})", notes.len()));
        Ok(result.into())
    }
}

// === resources and prompts ===

fn note_uri(note: &Note) -> String {
    format!("note://{}", note.id)
}

fn note_resource(note: &Note) -> Resource {
    Resource::new(note_uri(note), note.title.clone())
        .with_title(note.title.clone())
        .with_description(format!("Note {}", note.id))
        .with_mime_type("text/plain")
}

/// The `summarize_notes` prompt's text: the request, then every note.
fn summary_request(style: &str, notes: &[Note]) -> String {
    let mut text = format!("Summarise the following notes in a {style} style.\n");
    if notes.is_empty() {
        text.push_str("\n(The notebook is empty.)\n");
    }
    for note in notes {
        // Writing to a String cannot fail.
        let _ = write!(
            text,
            "\n## {} (note {})\n{}\n",
            note.title, note.id, note.body
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_versions_match_what_rmcp_is_told() {
        let told: Vec<&str> = SUPPORTED_VERSIONS
            .iter()
            .map(ProtocolVersion::as_str)
            .collect();
        assert_eq!(told, PROTOCOL_VERSIONS);
    }

    #[test]
    fn the_summary_request_lists_every_note() {
        let notes = crate::notes::NoteStore::seeded().list();
        let text = summary_request("detailed", &notes);
        assert!(text.starts_with("Summarise the following notes in a detailed style."));
        assert!(text.contains("## Welcome (note 1)") && text.contains("## Scopes (note 2)"));
        assert!(summary_request("brief", &[]).contains("(The notebook is empty.)"));
    }
}
