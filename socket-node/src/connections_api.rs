//! The node as a local API Gateway: `POST`, `GET` and `DELETE /@connections/{connection_id}` in the
//! shape of API Gateway's Management API, so the cloud's broadcaster (the AWS SDK, SigV4-signed
//! requests) runs unchanged against a node: `tributary-stats` pointed at a node reaches real
//! WebSocket clients.
//!
//! The signature is not checked (the node does not know the caller's secret key); instead the
//! caller must present `CONNECTIONS_TOKEN` or the admin token (the functions send the former when it
//! is set on them). Errors carry API
//! Gateway's `x-amzn-ErrorType` header and `message` field, which the SDK reads, alongside the
//! contract's `detail`, `error` and `request_id`.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use tributary_core::error::{ErrorBody, RenderedError, current_request_id};
use tributary_core::http::AppState;
use tributary_core::http::extract::presents_token;
use tributary_core::realtime::{BroadcastError, ConnectionId};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::hub::close;
use crate::ws::NodeContext;

/// API Gateway's limit on one message.
pub const MAX_POST_BYTES: usize = 128 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_to_connection, get_connection, delete_connection))
}

/// An error in API Gateway's shape (for the SDK) and the contract's (for people).
struct ManagementError {
    status: StatusCode,
    aws_type: &'static str,
    code: &'static str,
    message: String,
}

impl ManagementError {
    fn gone(id: &str) -> Self {
        ManagementError {
            status: StatusCode::GONE,
            aws_type: "GoneException",
            code: "gone",
            message: format!("no open connection with id {id}"),
        }
    }
}

impl IntoResponse for ManagementError {
    fn into_response(self) -> Response {
        let body = json!({ "message": self.message, "detail": self.message, "error": self.code, "request_id": current_request_id() });
        let mut response = (self.status, axum::Json(body)).into_response();
        response.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(self.aws_type));
        response.extensions_mut().insert(RenderedError { code: self.code });
        response
    }
}

/// Callers presenting the admin token or the `@connections` credential (`CONNECTIONS_TOKEN`).
/// Being local is not enough: any process on the machine could otherwise push forged messages to
/// dashboards or close them. With neither token set, the API answers no one.
struct ManagementAccess;

impl FromRequestParts<AppState> for ManagementAccess {
    type Rejection = ManagementError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ManagementError> {
        let credentials: Vec<&str> = [state.settings.admin_token(), state.settings.connections_token()].into_iter().flatten().collect();
        if credentials.iter().any(|credential| presents_token(parts, credential)) {
            return Ok(ManagementAccess);
        }
        let message = if credentials.is_empty() {
            "the @connections API is off: set CONNECTIONS_TOKEN on the node, and the same on the functions that call it"
        } else {
            "the @connections API needs CONNECTIONS_TOKEN or the admin token (Authorization: Bearer … or X-API-Key)"
        };
        Err(ManagementError {
            status: StatusCode::FORBIDDEN,
            aws_type: "ForbiddenException",
            code: "forbidden",
            message: message.to_owned(),
        })
    }
}

/// The body of `POST /@connections/{connection_id}` (for the documentation: the route reads bytes).
struct MessageData;

impl PartialSchema for MessageData {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).description(Some("UTF-8 text, 1 byte to 128 KiB")).into()
    }
}

impl ToSchema for MessageData {}

/// Sends `data` (the request body: UTF-8, 1 byte to 128 KiB) to one connection as a text frame.
#[utoipa::path(
    post,
    path = "/@connections/{connection_id}",
    tag = "connections",
    params(("connection_id" = String, Path, description = "The connection id from `connection_ack`")),
    request_body(content = MessageData, content_type = "application/octet-stream", description = "The message, sent as is"),
    responses(
        (status = 200, description = "Queued for the connection"),
        (status = 400, description = "Empty, or not UTF-8", body = ErrorBody),
        (status = 403, description = "Without CONNECTIONS_TOKEN or the admin token", body = ErrorBody),
        (status = 410, description = "No open connection with that id (GoneException)", body = ErrorBody),
        (status = 413, description = "Over 128 KiB", body = ErrorBody),
    )
)]
async fn post_to_connection(
    _access: ManagementAccess,
    Extension(node): Extension<Arc<NodeContext>>,
    Path(connection_id): Path<String>,
    data: Bytes,
) -> Result<StatusCode, ManagementError> {
    if data.len() > MAX_POST_BYTES {
        return Err(ManagementError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            aws_type: "PayloadTooLargeException",
            code: "payload_too_large",
            message: format!("a message may be at most {MAX_POST_BYTES} bytes"),
        });
    }
    // A message is required, as API Gateway's `Data` is; checked before the connection is looked up,
    // so a request without one is refused whether or not the connection is open.
    if data.is_empty() {
        return Err(ManagementError {
            status: StatusCode::BAD_REQUEST,
            aws_type: "BadRequestException",
            code: "bad_request",
            message: "the request has no data to send".to_owned(),
        });
    }
    let text = Utf8Bytes::try_from(data).map_err(|_| ManagementError {
        status: StatusCode::BAD_REQUEST,
        aws_type: "BadRequestException",
        code: "bad_request",
        message: "dashboards take text messages: the data must be UTF-8".to_owned(),
    })?;
    match node.hub.send_text(&ConnectionId::new(&connection_id), text) {
        Ok(()) => Ok(StatusCode::OK),
        Err(BroadcastError::UnknownConnection(_) | BroadcastError::Overflowed(_)) => Err(ManagementError::gone(&connection_id)),
        Err(BroadcastError::Unavailable(error)) => Err(ManagementError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            aws_type: "InternalServerErrorException",
            code: "internal_error",
            message: error.to_string(),
        }),
    }
}

/// `GET /@connections/{connection_id}`, in API Gateway's shape.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ConnectionInfo {
    #[schema(value_type = String, format = DateTime)]
    pub connected_at: String,
    pub identity: ConnectionIdentity,
    #[schema(value_type = String, format = DateTime)]
    pub last_active_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ConnectionIdentity {
    pub source_ip: String,
}

/// Describes one open connection.
#[utoipa::path(
    get,
    path = "/@connections/{connection_id}",
    tag = "connections",
    params(("connection_id" = String, Path, description = "The connection id")),
    responses(
        (status = 200, body = ConnectionInfo),
        (status = 403, description = "Without CONNECTIONS_TOKEN or the admin token", body = ErrorBody),
        (status = 410, description = "No open connection with that id (GoneException)", body = ErrorBody),
    )
)]
async fn get_connection(
    _access: ManagementAccess,
    Extension(node): Extension<Arc<NodeContext>>,
    Path(connection_id): Path<String>,
) -> Result<axum::Json<ConnectionInfo>, ManagementError> {
    let connection = node.hub.get(&ConnectionId::new(&connection_id)).ok_or_else(|| ManagementError::gone(&connection_id))?;
    Ok(axum::Json(ConnectionInfo {
        connected_at: tributary_core::time::format(&connection.connected_at),
        identity: ConnectionIdentity { source_ip: connection.ip.to_string() },
        last_active_at: tributary_core::time::format(&connection.last_active_at()),
    }))
}

/// Closes one connection (close code 1000).
#[utoipa::path(
    delete,
    path = "/@connections/{connection_id}",
    tag = "connections",
    params(("connection_id" = String, Path, description = "The connection id")),
    responses(
        (status = 204, description = "Closing"),
        (status = 403, description = "Without CONNECTIONS_TOKEN or the admin token", body = ErrorBody),
        (status = 410, description = "No open connection with that id (GoneException)", body = ErrorBody),
    )
)]
async fn delete_connection(
    _access: ManagementAccess,
    Extension(node): Extension<Arc<NodeContext>>,
    Path(connection_id): Path<String>,
) -> Result<StatusCode, ManagementError> {
    if node.hub.disconnect(&ConnectionId::new(&connection_id), close::DELETED) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ManagementError::gone(&connection_id))
    }
}
