//! The OpenAPI document's frame: title, tags, and the schemas routes do not reach on their own
//! (the WebSocket messages).

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, FieldError};
use crate::realtime::{MessageType, ServerMessage, Severity};
use crate::stats::DashboardStats;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tributary",
        description = "Real-time backend of a data-lineage dashboard. Every error answers with `ErrorBody`. \
                       WebSocket messages are `ServerMessage` envelopes; see docs/api.md for the protocol.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "admin", description = "Health, configuration and restart"),
        (name = "stats", description = "Dashboard and graph statistics"),
        (name = "activity", description = "Activity log and metrics"),
        (name = "lineage", description = "SQL ingestion, ingested files, lineage walks and search"),
        (name = "chat", description = "Questions over the lineage knowledge base, in four modes"),
        (name = "websocket", description = "Dashboard WebSocket endpoints (socket node)"),
        (name = "connections", description = "API Gateway's @connections API, served by the socket node for local cloud runs"),
    ),
    components(schemas(ErrorBody, FieldError, ServerMessage, MessageType, Severity, DashboardStats)),
    modifiers(&AdminSecurity)
)]
pub struct ApiDoc;

/// Declares the two ways to present the admin token.
struct AdminSecurity;

impl Modify for AdminSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        components.add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
    }
}
