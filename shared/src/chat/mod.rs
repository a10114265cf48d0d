//! Chat over the lineage knowledge base: four modes, titles and sessions.
//!
//! A question goes through three layers: [`evidence`] gathers what the knowledge base knows that
//! bears on it (per mode, finding the objects it names with [`entities`]); a provider behind
//! [`provider::LlmProvider`] turns the evidence into text (the [`extractive`] writer, with no
//! model); this module ties them to the session's history, the dashboards' `query_complete`
//! event, the activity feed and the `activeQueries` gauge. Routes, and any other host, call
//! [`ask`], [`title`] and [`forget_session`].

pub mod entities;
pub mod evidence;
pub mod extractive;
pub mod provider;
pub mod questions;
pub mod remote;

use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::activity::{ActivityEvent, EventSource, EventStatus, EventType};
use crate::error::{ApiError, ErrorBody, FieldError};
use crate::http::AppState;
use crate::knowledge::{DEFAULT_PROJECT, validate_project};
use crate::lineage::{GraphEdge, GraphNode};
use crate::realtime::{MessageType, announce};
use evidence::Evidence;
use provider::{Message, Role, Task};

pub use provider::{Models, ProviderKind};

/// Longest question accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 4000;
/// Most turns a request's own `history` may carry.
pub const MAX_HISTORY_TURNS: usize = 50;

/// How a question is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The question alone, no retrieval.
    Text,
    /// Over the statements search ranks best.
    Semantic,
    /// Over the objects the question names and their lineage.
    Graph,
    /// Both, with the session's history, within a context budget.
    Deep,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Text, Mode::Semantic, Mode::Graph, Mode::Deep];

    pub fn parse(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|mode| mode.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Text => "text",
            Mode::Semantic => "semantic",
            Mode::Graph => "graph",
            Mode::Deep => "deep",
        }
    }
}

/// A chat request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ChatRequest {
    /// The question (1 to 4,000 characters, not blank).
    #[schema(
        min_length = 1,
        max_length = 4000,
        pattern = r"[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub query: String,
    /// A model from the allow-list (`LLM_ALLOWED_MODELS`); default: the mode's model.
    #[serde(default)]
    pub model: Option<String>,
    /// The conversation this question belongs to: its turns are kept, and deep mode reads them.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,128}$")]
    pub session_id: Option<String>,
    /// Earlier turns the client keeps itself (read when the request names no stored session).
    #[serde(default)]
    #[schema(max_items = 50)]
    pub history: Vec<HistoryMessage>,
    #[serde(default)]
    pub context: Option<ChatContext>,
}

/// One earlier message of a conversation, as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryMessage {
    /// `user` or `assistant`.
    #[schema(pattern = "^(user|assistant)$")]
    pub role: String,
    /// At most 16,000 characters.
    #[schema(max_length = 16000)]
    pub content: String,
}

/// Where a question is asked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChatContext {
    /// The project whose knowledge base answers (default `default`).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub project_id: Option<String>,
}

/// A chat answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChatResponse {
    /// The answer, in Markdown.
    pub response: String,
    /// What the answer stands on: nodes, edges and chunks, by stable id.
    pub sources: Vec<Source>,
    /// The mode that answered.
    pub query_type: Mode,
    pub latency_ms: u64,
    /// The model that answered (`extractive` for the extractive provider).
    pub model: String,
    /// Follow-up questions worth asking.
    pub next_actions: Vec<String>,
    /// What limited the answer (a context budget, a name not found).
    pub warnings: Vec<String>,
    /// The subgraph the answer is about (graph and deep modes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_data: Option<GraphData>,
    /// This answer's id in its session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

/// A piece of knowledge an answer stands on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Source {
    /// `node`, `edge` or `chunk`.
    #[serde(rename = "type")]
    pub kind: SourceKind,
    /// The node's id, the edge's id (`source|KIND|target`) or the chunk's id (`file id:ordinal`).
    pub id: String,
    /// Why it is there.
    pub note: String,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
}

impl Source {
    pub fn new(kind: SourceKind, id: &str, note: String, metadata: serde_json::Value) -> Self {
        Source { kind, id: id.to_owned(), note, metadata }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Node,
    Edge,
    Chunk,
}

/// Nodes and edges for the dashboard's graph view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GraphData {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
}

/// `POST /api/chat/title`: a title for a conversation that starts with `query`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TitleResponse {
    pub title: String,
    pub model: String,
    pub latency_ms: u64,
}

/// One question and its answer, as a session keeps them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// The answer's `message_id`.
    pub id: String,
    pub at: DateTime<Utc>,
    pub mode: Mode,
    pub model: String,
    pub question: String,
    pub answer: String,
}

/// A validated request.
struct Question {
    query: String,
    model: Option<String>,
    session_id: Option<String>,
    history: Vec<HistoryMessage>,
    project: String,
}

fn validate(request: ChatRequest) -> Result<Question, ApiError> {
    let mut errors = Vec::new();
    let query = request.query.trim().to_owned();
    if query.is_empty() {
        errors.push(FieldError::new("query", "ask a question: the query is empty"));
    } else if query.chars().count() > MAX_QUERY_CHARS {
        errors.push(FieldError::new("query", format!("at most {MAX_QUERY_CHARS} characters")));
    }
    if let Some(session) = &request.session_id
        && let Err(error) = validate_session_id(session)
    {
        errors.push(error);
    }
    if request.history.len() > MAX_HISTORY_TURNS {
        errors.push(FieldError::new("history", format!("at most {MAX_HISTORY_TURNS} messages")));
    }
    for (index, message) in request.history.iter().enumerate() {
        if !matches!(message.role.as_str(), "user" | "assistant") {
            errors.push(FieldError::new(format!("history[{index}].role"), "`user` or `assistant`"));
        }
        if message.content.chars().count() > MAX_QUERY_CHARS * 4 {
            errors.push(FieldError::new(format!("history[{index}].content"), format!("at most {} characters", MAX_QUERY_CHARS * 4)));
        }
    }
    let project = request.context.and_then(|context| context.project_id).unwrap_or_else(|| DEFAULT_PROJECT.to_owned());
    if let Err(error) = validate_project(&project) {
        errors.push(FieldError::new("context.project_id", error.message));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(Question { query, model: request.model, session_id: request.session_id, history: request.history, project })
}

/// A session id: 1 to 128 letters, digits, `-`, `_`, `.` or `:`.
pub fn validate_session_id(session: &str) -> Result<(), FieldError> {
    let valid = !session.is_empty()
        && session.len() <= 128
        && session.chars().all(|character| character.is_ascii_alphanumeric() || matches!(character, '-' | '_' | '.' | ':'));
    if valid { Ok(()) } else { Err(FieldError::new("session_id", "use 1 to 128 letters, digits, '-', '_', '.' or ':'")) }
}

/// Answers `request` in `mode`, keeps the turn in its session, and tells dashboards and the activity
/// feed (never the question's text).
pub async fn ask(state: &AppState, mode: Mode, request: ChatRequest) -> Result<ChatResponse, ApiError> {
    let started = Instant::now();
    let question = validate(request)?;
    let _active = state.stats.gauges().begin_query();
    let outcome = async {
        let mut turn = Pending::prepare(state, mode, question, started).await?;
        let text = turn.generate(state).await?;
        let text = provider::collect(text).await.map_err(provider::LlmError::into_api_error)?;
        turn.finish(state, text).await
    }
    .await;
    report(state, mode, started, outcome.as_ref()).await;
    outcome
}

/// One frame of a streamed answer (`data: {"type": …}` in the SSE stream).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum StreamFrame {
    /// The answer begins: who answers it, and its id.
    Start { mode: Mode, model: String, message_id: String, session_id: Option<String> },
    /// The next piece of the answer's text, as the provider produced it.
    Delta { text: String },
    /// The whole answer, as the non-streaming route gives it.
    Done(Box<ChatResponse>),
    /// The answer stopped: why, in the contract's error shape.
    Error(ErrorBody),
}

/// Answers like [`ask`], as a stream of frames: `start`, a `delta` per piece of text as the provider
/// produces it, then `done` (or `error`). Problems found before the first frame (validation, the
/// provider down) are the `Err`. A client that goes away stops the generation at its next piece:
/// nothing is kept or announced for an answer nobody read.
pub async fn ask_streaming(state: &AppState, mode: Mode, request: ChatRequest) -> Result<BoxStream<'static, StreamFrame>, ApiError> {
    let started = Instant::now();
    let question = validate(request)?;
    let active = state.stats.gauges().begin_query();
    let prepared = async {
        let mut turn = Pending::prepare(state, mode, question, started).await?;
        let text = turn.generate(state).await?;
        Ok::<_, ApiError>((turn, text))
    }
    .await;
    let (turn, mut text) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            report(state, mode, started, Err(&error)).await;
            return Err(error);
        }
    };
    let (frames, receiver) = tokio::sync::mpsc::channel::<StreamFrame>(16);
    let state = state.clone();
    tokio::spawn(async move {
        let _active = active;
        let start = StreamFrame::Start {
            mode,
            model: turn.model.clone(),
            message_id: turn.message_id.clone(),
            session_id: turn.session_id.clone(),
        };
        if frames.send(start).await.is_err() {
            return;
        }
        let mut whole = String::new();
        while let Some(piece) = text.next().await {
            match piece {
                Ok(piece) => {
                    whole.push_str(&piece);
                    if frames.send(StreamFrame::Delta { text: piece }).await.is_err() {
                        return; // The client left: dropping the provider's stream stops it.
                    }
                }
                Err(error) => {
                    let error = error.into_api_error();
                    let _ = frames.send(StreamFrame::Error(error.body())).await;
                    report(&state, mode, started, Err(&error)).await;
                    return;
                }
            }
        }
        let outcome = turn.finish(&state, whole).await;
        let last = match &outcome {
            Ok(response) => StreamFrame::Done(Box::new(response.clone())),
            Err(error) => StreamFrame::Error(error.body()),
        };
        let _ = frames.send(last).await;
        report(&state, mode, started, outcome.as_ref()).await;
    });
    Ok(futures::stream::unfold(receiver, |mut receiver| async move { receiver.recv().await.map(|frame| (frame, receiver)) }).boxed())
}

/// A question on its way to an answer: its model, evidence and ids.
struct Pending {
    mode: Mode,
    model: String,
    evidence: Evidence,
    message_id: String,
    session_id: Option<String>,
    query: String,
    started: Instant,
}

impl Pending {
    /// Picks the model, reads the session's history and gathers the evidence.
    async fn prepare(state: &AppState, mode: Mode, question: Question, started: Instant) -> Result<Pending, ApiError> {
        let model = state.models.for_mode(mode, question.model.as_deref())?;
        let history = match &question.session_id {
            Some(session) => {
                let limit = state.settings.chat.chat_history_turns as usize;
                let mut stored = state.stores.chat.recent_turns(session, limit).await?;
                if stored.is_empty() {
                    stored = turns_from(&question.history);
                }
                stored
            }
            None => turns_from(&question.history),
        };
        let mut evidence = evidence::gather(state, mode, &question.project, &question.query, history).await?;
        if mode == Mode::Deep {
            evidence.fit(state.settings.chat.chat_context_budget_chars as usize);
        }
        Ok(Pending {
            mode,
            model,
            evidence,
            message_id: uuid::Uuid::now_v7().to_string(),
            session_id: question.session_id,
            query: question.query,
            started,
        })
    }

    /// Starts the provider on the evidence (falling back to other models as configured); the model
    /// that answers is the answer's.
    async fn generate(&mut self, state: &AppState) -> Result<provider::TextStream, ApiError> {
        let (model, text) = state
            .models
            .generate(&self.model, &prompt(&self.evidence), Task::Answer(&self.evidence))
            .await
            .map_err(provider::LlmError::into_api_error)?;
        self.model = model;
        Ok(text)
    }

    /// Keeps the turn in its session and shapes the answer.
    async fn finish(self, state: &AppState, text: String) -> Result<ChatResponse, ApiError> {
        if let Some(session) = &self.session_id {
            let turn = Turn {
                id: self.message_id.clone(),
                at: crate::time::now(),
                mode: self.mode,
                model: self.model.clone(),
                question: self.query.clone(),
                answer: text.clone(),
            };
            state.stores.chat.append_turn(session, &turn).await?;
        }
        let graph_data = matches!(self.mode, Mode::Graph | Mode::Deep).then(|| {
            let (nodes, edges) = self.evidence.graph();
            GraphData { nodes, edges }
        });
        Ok(ChatResponse {
            response: text,
            sources: self.evidence.sources(),
            query_type: self.mode,
            latency_ms: self.started.elapsed().as_millis() as u64,
            next_actions: next_actions(&self.evidence),
            warnings: self.evidence.warnings,
            graph_data,
            model: self.model,
            message_id: Some(self.message_id),
            session_id: self.session_id,
        })
    }
}

/// Tells dashboards how a query ended (`query_complete`, or `error` for a failure of ours), and
/// records it as a `chat_query` activity event. Never the question's text.
async fn report(state: &AppState, mode: Mode, started: Instant, outcome: Result<&ChatResponse, &ApiError>) {
    let latency_ms = started.elapsed().as_millis() as u64;
    match outcome {
        Ok(response) => {
            let complete = json!({
                "mode": mode.as_str(),
                "latency_ms": latency_ms,
                "model": response.model,
                "answer_length": response.response.chars().count(),
                "sources": response.sources.len(),
            });
            announce(&*state.broadcaster, MessageType::QueryComplete, complete).await;
        }
        Err(error) if error.status().is_server_error() => {
            // What operators need to act on: the provider's words (never the question).
            tracing::warn!(mode = mode.as_str(), code = error.code(), detail = %error.body().detail, latency_ms, "a chat query failed");
            let failure = json!({
                "type": error.code(),
                "severity": "error",
                "component": error.body().component.unwrap_or_else(|| "chat".to_owned()),
                "message": format!("a {} chat query failed", mode.as_str()),
            });
            announce(&*state.broadcaster, MessageType::Error, failure).await;
        }
        Err(_) => {}
    }
    let status = if outcome.is_ok() { EventStatus::Success } else { EventStatus::Error };
    let mut event = ActivityEvent::new(EventType::ChatQuery, EventSource::Http, format!("/api/chat/{}", mode.as_str()), status)
        .with_metadata("mode", mode.as_str())
        .with_metadata("message", format!("Chat query ({} mode)", mode.as_str()));
    match outcome {
        Ok(response) => event = event.with_metadata("model", response.model.clone()).with_metadata("sources", response.sources.len()),
        Err(error) => event = event.with_metadata("error", error.code()),
    }
    event.latency_ms = Some(latency_ms as f64);
    state.activity.record(event).await;
}

/// A title for a conversation that starts with `request.query`.
pub async fn title(state: &AppState, request: ChatRequest) -> Result<TitleResponse, ApiError> {
    let started = Instant::now();
    let question = validate(request)?;
    let model = state.models.for_title(question.model.as_deref())?;
    let messages = [
        Message {
            role: Role::System,
            content:
                "Write a title of at most six words for a conversation that starts with the user's question. Answer with the title alone."
                    .to_owned(),
        },
        Message { role: Role::User, content: question.query.clone() },
    ];
    let (model, text) =
        state.models.generate(&model, &messages, Task::Title(&question.query)).await.map_err(provider::LlmError::into_api_error)?;
    let title = provider::collect(text).await.map_err(provider::LlmError::into_api_error)?;
    let title = title.trim().trim_matches('"').trim().to_owned();
    Ok(TitleResponse { title: evidence::abridged(&title, 80), model, latency_ms: started.elapsed().as_millis() as u64 })
}

/// Deletes a session's turns; whether it had any.
pub async fn forget_session(state: &AppState, session: &str) -> Result<bool, ApiError> {
    validate_session_id(session).map_err(|error| ApiError::validation(vec![error]))?;
    Ok(state.stores.chat.delete_session(session).await?)
}

/// The conversation a language model reads: instructions, the evidence, earlier turns, the question.
fn prompt(evidence: &Evidence) -> Vec<Message> {
    let mut messages = vec![Message {
        role: Role::System,
        content: format!(
            "You answer questions about the SQL data lineage of project {}. Answer from the evidence below only; \
             say so when it does not hold the answer. Name objects by their ids.\n\n{}",
            evidence.project,
            evidence.render()
        ),
    }];
    for turn in &evidence.history {
        messages.push(Message { role: Role::User, content: turn.question.clone() });
        messages.push(Message { role: Role::Assistant, content: turn.answer.clone() });
    }
    messages.push(Message { role: Role::User, content: evidence.question.clone() });
    messages
}

/// A client's own history, as turns (a user message followed by its answer).
fn turns_from(history: &[HistoryMessage]) -> Vec<Turn> {
    let mut turns = Vec::new();
    let mut pending: Option<&str> = None;
    for message in history {
        match message.role.as_str() {
            "user" => pending = Some(&message.content),
            _ => {
                if let Some(question) = pending.take() {
                    turns.push(Turn {
                        id: String::new(),
                        at: crate::time::now(),
                        mode: Mode::Deep,
                        model: String::new(),
                        question: question.to_owned(),
                        answer: message.content.clone(),
                    });
                }
            }
        }
    }
    turns
}

/// Follow-up questions the evidence suggests.
fn next_actions(evidence: &Evidence) -> Vec<String> {
    use evidence::Intent;
    let mut actions = Vec::new();
    for entity in evidence.entities.iter().take(2) {
        if entity.is_column() {
            // An ambiguous column name asks back: which of the others?
            for other in entity.alternatives.iter().take(3) {
                actions.push(format!("Where does {} come from?", evidence::display_id(other)));
            }
            let id = evidence::display_id(&entity.node.id);
            if evidence.intent != Intent::Downstream && !entity.downstream.edges.is_empty() {
                actions.push(format!("What uses {id}?"));
            }
            if let Some(parent) = &entity.node.parent {
                actions.push(format!("Describe {parent}"));
            }
            continue;
        }
        for other in entity.alternatives.iter().take(2) {
            actions.push(format!("Describe {other}"));
        }
        let id = &entity.node.id;
        if evidence.intent != Intent::Upstream && !entity.upstream.edges.is_empty() {
            actions.push(format!("What feeds {id}?"));
        }
        if evidence.intent != Intent::Downstream && !entity.downstream.edges.is_empty() {
            actions.push(format!("What depends on {id}?"));
        }
        if evidence.intent != Intent::Describe {
            actions.push(format!("Describe {id}"));
        }
    }
    for unmatched in evidence.unmatched.iter().take(1) {
        if let Some(closest) = unmatched.closest.first() {
            actions.push(format!("Describe {closest}"));
        }
    }
    match evidence.mode {
        Mode::Text => actions.push(format!("Ask in graph mode: {}", evidence.question)),
        Mode::Semantic if evidence.hits.is_empty() => actions.push("Ingest SQL files, then ask again".to_owned()),
        _ if evidence.entities.is_empty() && evidence.unmatched.is_empty() => {
            if let Some(overview) = &evidence.overview
                && let Some(example) = overview.examples.values().flatten().next()
            {
                actions.push(format!("What feeds {example}?"));
            }
        }
        _ => {}
    }
    // Two entities can suggest the same step (a column and the object holding it).
    let mut seen = std::collections::HashSet::new();
    actions.retain(|action| seen.insert(action.clone()));
    actions.truncate(5);
    actions
}
