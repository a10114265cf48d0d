//! Chat area: one route per mode, titles, and forgetting a session. The work happens in
//! [`crate::chat`]; these handlers read requests and shape answers.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::chat::{self, ChatRequest, ChatResponse, Mode, StreamFrame, TitleResponse};
use crate::error::{ApiError, ErrorBody};
use crate::http::AppState;
use crate::http::extract::ApiJson;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(chat_text))
        .routes(routes!(chat_semantic))
        .routes(routes!(chat_graph))
        .routes(routes!(chat_deep))
        .routes(routes!(chat_deep_stream))
        .routes(routes!(chat_title))
        .routes(routes!(delete_session))
}

/// Answers from the question alone, with no retrieval.
#[utoipa::path(
    post,
    path = "/api/chat/text",
    tag = "chat",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "The answer", body = ChatResponse),
        (status = 400, description = "Malformed JSON, or a model outside the allow-list (the allowed names are listed)", body = ErrorBody),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = ErrorBody),
        (status = 415, description = "Not `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "An empty or too long query, a bad session id, history or project", body = ErrorBody),
        (status = 503, description = "The language model or the store cannot answer (`component` says which)", body = ErrorBody),
    )
)]
pub async fn chat_text(State(state): State<AppState>, ApiJson(request): ApiJson<ChatRequest>) -> Result<Json<ChatResponse>, ApiError> {
    Ok(Json(chat::ask(&state, Mode::Text, request).await?))
}

/// Answers over the ingested statements that search ranks best for the question; the chunks are
/// the sources.
#[utoipa::path(
    post,
    path = "/api/chat/semantic",
    tag = "chat",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "The answer, with the chunks it stands on", body = ChatResponse),
        (status = 400, description = "Malformed JSON, or a model outside the allow-list", body = ErrorBody),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = ErrorBody),
        (status = 415, description = "Not `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "An empty or too long query, a bad session id, history or project", body = ErrorBody),
        (status = 503, description = "The language model or the store cannot answer", body = ErrorBody),
    )
)]
pub async fn chat_semantic(State(state): State<AppState>, ApiJson(request): ApiJson<ChatRequest>) -> Result<Json<ChatResponse>, ApiError> {
    Ok(Json(chat::ask(&state, Mode::Semantic, request).await?))
}

/// Answers over the objects the question names (by id or name, tolerant of case, quoting, schema
/// prefixes and near misses) and their lineage both ways; `graph_data` holds that subgraph.
#[utoipa::path(
    post,
    path = "/api/chat/graph",
    tag = "chat",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "The answer, with its nodes and edges", body = ChatResponse),
        (status = 400, description = "Malformed JSON, or a model outside the allow-list", body = ErrorBody),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = ErrorBody),
        (status = 415, description = "Not `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "An empty or too long query, a bad session id, history or project", body = ErrorBody),
        (status = 503, description = "The language model or the store cannot answer", body = ErrorBody),
    )
)]
pub async fn chat_graph(State(state): State<AppState>, ApiJson(request): ApiJson<ChatRequest>) -> Result<Json<ChatResponse>, ApiError> {
    Ok(Json(chat::ask(&state, Mode::Graph, request).await?))
}

/// Answers over the named objects' lineage, search hits and the session's history together, within
/// `CHAT_CONTEXT_BUDGET_CHARS` (the least relevant evidence is dropped first, and `warnings` says so).
#[utoipa::path(
    post,
    path = "/api/chat/deep",
    tag = "chat",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "The answer, with its sources and subgraph", body = ChatResponse),
        (status = 400, description = "Malformed JSON, or a model outside the allow-list", body = ErrorBody),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = ErrorBody),
        (status = 415, description = "Not `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "An empty or too long query, a bad session id, history or project", body = ErrorBody),
        (status = 503, description = "The language model or the store cannot answer", body = ErrorBody),
    )
)]
pub async fn chat_deep(State(state): State<AppState>, ApiJson(request): ApiJson<ChatRequest>) -> Result<Json<ChatResponse>, ApiError> {
    Ok(Json(chat::ask(&state, Mode::Deep, request).await?))
}

/// Deep mode, streamed as Server-Sent Events: `data:` frames of type `start` (mode, model,
/// message id), `delta` (the next piece of text, as the provider produces it), then `done` (the whole
/// answer, as `POST /api/chat/deep` gives it) or `error` (the contract's error shape). Problems found
/// before the first frame are ordinary JSON errors. Closing the connection stops the generation.
#[utoipa::path(
    post,
    path = "/api/chat/deep/stream",
    tag = "chat",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "The answer as a stream of frames", content_type = "text/event-stream", body = StreamEvent),
        (status = 400, description = "Malformed JSON, or a model outside the allow-list", body = ErrorBody),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = ErrorBody),
        (status = 415, description = "Not `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "An empty or too long query, a bad session id, history or project", body = ErrorBody),
        (status = 503, description = "The language model or the store cannot answer", body = ErrorBody),
    )
)]
pub async fn chat_deep_stream(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ChatRequest>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let frames = chat::ask_streaming(&state, Mode::Deep, request).await?;
    let events =
        frames.map(|frame| Ok(Event::default().json_data(&frame).unwrap_or_else(|_| Event::default().data("{\"type\":\"error\"}"))));
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// One event of `POST /api/chat/deep/stream`, described the way OpenAPI describes `text/event-stream`
/// (one schema per event, OpenAPI 3.2's `itemSchema`): its `data` is a [`StreamFrame`] as JSON.
pub struct StreamEvent;

impl PartialSchema for StreamEvent {
    fn schema() -> RefOr<Schema> {
        let data = ObjectBuilder::new()
            .schema_type(Type::String)
            .content_media_type("application/json")
            .content_schema(Some(Ref::from_schema_name(StreamFrame::name())))
            .description(Some("A `StreamFrame` as JSON"));
        ObjectBuilder::new()
            .description(Some("One server-sent event: `data:` carries a frame"))
            .property("data", data)
            .required("data")
            .into()
    }
}

impl ToSchema for StreamEvent {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((StreamFrame::name().into_owned(), StreamFrame::schema()));
        <StreamFrame as ToSchema>::schemas(schemas);
    }
}

/// A short title for a conversation that starts with `query`.
#[utoipa::path(
    post,
    path = "/api/chat/title",
    tag = "chat",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "The title", body = TitleResponse),
        (status = 400, description = "Malformed JSON, or a model outside the allow-list", body = ErrorBody),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = ErrorBody),
        (status = 415, description = "Not `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "An empty or too long query", body = ErrorBody),
        (status = 503, description = "The language model cannot answer", body = ErrorBody),
    )
)]
pub async fn chat_title(State(state): State<AppState>, ApiJson(request): ApiJson<ChatRequest>) -> Result<Json<TitleResponse>, ApiError> {
    Ok(Json(chat::title(&state, request).await?))
}

/// Forgets a session: every turn it kept.
#[utoipa::path(
    delete,
    path = "/api/chat/session/{id}",
    tag = "chat",
    params(("id" = String, Path, description = "The session id (1 to 128 letters, digits, `-`, `_`, `.`, `:`)", pattern = "^[A-Za-z0-9_.:-]{1,128}$")),
    responses(
        (status = 204, description = "The session is gone"),
        (status = 404, description = "No session has this id", body = ErrorBody),
        (status = 422, description = "Not a valid session id", body = ErrorBody),
        (status = 503, description = "The store cannot answer", body = ErrorBody),
    )
)]
pub async fn delete_session(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if chat::forget_session(&state, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no chat session {id:?}")))
    }
}
