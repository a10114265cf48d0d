//! Language models over HTTP: Ollama's chat API (`POST /api/chat`, newline-delimited JSON) and any
//! OpenAI-compatible chat completions API (`POST /chat/completions`, Server-Sent Events), both
//! streamed. Every call names its model and follows one policy: a timeout for the first piece of the
//! answer and between pieces, and retries of 429 and 5xx with backoff that honours `Retry-After`.
//! (The fallback to other models is [`super::Models`]'s.)

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::provider::{LlmError, LlmProvider, Message, Role, Task, TextStream};

/// Longest wait a `Retry-After` may ask for before a retry (longer: the call fails over).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(20);

/// Which wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Ollama,
    OpenAi,
}

/// A language model served over HTTP.
pub struct Remote {
    wire: Wire,
    client: reqwest::Client,
    base: String,
    api_key: Option<SecretString>,
    timeout: Duration,
    retries: u32,
}

impl Remote {
    pub fn new(wire: Wire, base_url: Option<&str>, api_key: Option<SecretString>, timeout: Duration, retries: u32) -> Self {
        let default = match wire {
            Wire::Ollama => "http://127.0.0.1:11434",
            Wire::OpenAi => "https://api.openai.com/v1",
        };
        let base = base_url.unwrap_or(default).trim_end_matches('/').to_owned();
        let client = reqwest::Client::builder().connect_timeout(timeout).build().unwrap_or_default();
        Remote { wire, client, base, api_key, timeout, retries }
    }

    /// The provider's address for errors and logs: no credentials, no query.
    fn address(&self) -> String {
        match reqwest::Url::parse(&self.base) {
            Ok(mut url) => {
                let _ = url.set_username("");
                let _ = url.set_password(None);
                url.set_query(None);
                url.to_string().trim_end_matches('/').to_owned()
            }
            Err(_) => "an invalid LLM_BASE_URL".to_owned(),
        }
    }

    fn endpoint(&self) -> String {
        match self.wire {
            Wire::Ollama => format!("{}/api/chat", self.base),
            Wire::OpenAi => format!("{}/chat/completions", self.base),
        }
    }

    /// Sends the call, retrying 429 and 5xx; the response once it is a success.
    async fn send(&self, model: &str, messages: &[Message]) -> Result<reqwest::Response, LlmError> {
        let messages: Vec<Value> = messages
            .iter()
            .map(|message| {
                let role = match message.role {
                    Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                json!({"role": role, "content": message.content})
            })
            .collect();
        let body = json!({"model": model, "messages": messages, "stream": true});
        let mut attempt = 0;
        loop {
            let mut request = self.client.post(self.endpoint()).json(&body);
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key.expose_secret());
            }
            let response = match tokio::time::timeout(self.timeout, request.send()).await {
                Err(_) => return Err(LlmError::Timeout { address: self.address(), seconds: self.timeout.as_secs() }),
                Ok(Err(error)) => return Err(LlmError::Unreachable { address: self.address(), reason: describe(&error) }),
                Ok(Ok(response)) => response,
            };
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            let retry_after = retry_after(&response);
            let detail = self.redacted(error_detail(response).await);
            let retryable = status.as_u16() == 429 || status.is_server_error();
            // A 404 alone may be a wrong base URL (a missing `/v1`), not a missing model: only the
            // provider's words say which.
            if mentions_unknown_model(&detail) {
                return Err(LlmError::UnknownModel { address: self.address(), model: model.to_owned() });
            }
            if !retryable || attempt >= self.retries {
                return Err(LlmError::Status { address: self.address(), status: status.as_u16(), detail });
            }
            let wait = retry_after.unwrap_or_else(|| Duration::from_millis(250 * 2u64.pow(attempt)).min(Duration::from_secs(4)));
            if wait > MAX_RETRY_AFTER {
                return Err(LlmError::Status { address: self.address(), status: status.as_u16(), detail });
            }
            tracing::info!(status = status.as_u16(), attempt, wait_ms = wait.as_millis() as u64, model, "language model busy; retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

#[async_trait]
impl LlmProvider for Remote {
    fn name(&self) -> &'static str {
        match self.wire {
            Wire::Ollama => "ollama",
            Wire::OpenAi => "openai",
        }
    }

    async fn generate(&self, model: &str, messages: &[Message], _task: Task<'_>) -> Result<TextStream, LlmError> {
        let response = self.send(model, messages).await?;
        Ok(pieces(response, self.wire, self.timeout, self.address()))
    }
}

/// The pieces of text in a streamed answer, as they arrive.
fn pieces(response: reqwest::Response, wire: Wire, timeout: Duration, address: String) -> TextStream {
    struct Reading {
        body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
        buffer: Vec<u8>,
        ready: VecDeque<Result<String, LlmError>>,
        finished: bool,
    }
    let reading = Reading { body: response.bytes_stream().boxed(), buffer: Vec::new(), ready: VecDeque::new(), finished: false };
    stream::unfold(reading, move |mut reading| {
        let address = address.clone();
        async move {
            loop {
                if let Some(next) = reading.ready.pop_front() {
                    if next.is_err() {
                        reading.finished = true;
                        reading.ready.clear();
                    }
                    return Some((next, reading));
                }
                if reading.finished {
                    return None;
                }
                match tokio::time::timeout(timeout, reading.body.next()).await {
                    Err(_) => {
                        reading.ready.push_back(Err(LlmError::Timeout { address: address.clone(), seconds: timeout.as_secs() }));
                    }
                    Ok(Some(Err(error))) => {
                        reading.ready.push_back(Err(LlmError::Unreachable { address: address.clone(), reason: describe(&error) }));
                    }
                    Ok(None) => {
                        reading.finished = true;
                        let rest = std::mem::take(&mut reading.buffer);
                        if let Some(parsed) = parse_line(wire, &rest, &address) {
                            reading.ready.push_back(parsed.map(|line| line.text));
                        }
                    }
                    Ok(Some(Ok(chunk))) => {
                        reading.buffer.extend_from_slice(&chunk);
                        while let Some(end) = reading.buffer.iter().position(|byte| *byte == b'\n') {
                            let line: Vec<u8> = reading.buffer.drain(..=end).collect();
                            match parse_line(wire, &line, &address) {
                                None => {}
                                Some(Ok(Line { text, last })) => {
                                    if !text.is_empty() {
                                        reading.ready.push_back(Ok(text));
                                    }
                                    if last {
                                        reading.finished = true;
                                        break;
                                    }
                                }
                                Some(Err(error)) => {
                                    reading.ready.push_back(Err(error));
                                    break;
                                }
                            }
                        }
                    }
                }
            }
        }
    })
    .boxed()
}

/// One line of a stream: its text, and whether it ends the answer.
struct Line {
    text: String,
    last: bool,
}

/// Reads one line of the wire format (`None`: nothing in it).
fn parse_line(wire: Wire, line: &[u8], address: &str) -> Option<Result<Line, LlmError>> {
    let line = std::str::from_utf8(line).ok()?.trim();
    if line.is_empty() {
        return None;
    }
    let malformed = |reason: String| LlmError::Malformed { address: address.to_owned(), reason };
    let json = match wire {
        Wire::Ollama => line,
        Wire::OpenAi => {
            // SSE: `data: …` carries the payload; comments and other fields are skipped.
            let data = line.strip_prefix("data:")?.trim();
            if data == "[DONE]" {
                return Some(Ok(Line { text: String::new(), last: true }));
            }
            data
        }
    };
    let value: Value = match serde_json::from_str(json) {
        Ok(value) => value,
        Err(error) => return Some(Err(malformed(format!("a line of the stream is not JSON: {error}")))),
    };
    if let Some(error) = value.get("error") {
        let detail = error.get("message").and_then(Value::as_str).or(error.as_str()).unwrap_or("an error").to_owned();
        return Some(Err(malformed(format!("the model stopped: {}", super::evidence::abridged(&detail, 200)))));
    }
    Some(Ok(match wire {
        Wire::Ollama => Line {
            text: value["message"]["content"].as_str().unwrap_or_default().to_owned(),
            last: value["done"].as_bool().unwrap_or(false),
        },
        // The answer ends with `data: [DONE]` (or the end of the body).
        Wire::OpenAi => Line { text: value["choices"][0]["delta"]["content"].as_str().unwrap_or_default().to_owned(), last: false },
    }))
}

/// `Retry-After` in seconds (the HTTP-date form is rare from these APIs and read as absent).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<f64>().ok().filter(|seconds| seconds.is_finite() && *seconds >= 0.0).map(Duration::from_secs_f64)
}

impl Remote {
    /// `text` without the API key, which a careless provider may echo in an error ("invalid key
    /// sk-...") and which must reach neither our logs nor our answers.
    fn redacted(&self, text: String) -> String {
        match &self.api_key {
            Some(key) if !key.expose_secret().is_empty() && text.contains(key.expose_secret()) => {
                text.replace(key.expose_secret(), "[redacted]")
            }
            _ => text,
        }
    }
}

/// What an error response says, bounded.
async fn error_detail(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|value| value["error"]["message"].as_str().or(value["error"].as_str()).or(value["message"].as_str()).map(str::to_owned))
        .unwrap_or(text);
    super::evidence::abridged(message.trim(), 300)
}

fn mentions_unknown_model(detail: &str) -> bool {
    let detail = detail.to_lowercase();
    detail.contains("model") && (detail.contains("not found") || detail.contains("does not exist") || detail.contains("model_not_found"))
}

/// A transport error in a sentence, without the URL (which `address` gives, without credentials).
fn describe(error: &reqwest::Error) -> String {
    if error.is_connect() {
        return "connection refused or unreachable".to_owned();
    }
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    let text = error.to_string();
    match error.url() {
        Some(url) => text.replace(url.as_str(), "the provider"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    //! The real client against a small local server speaking each wire format.

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use axum::body::Body;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;

    use super::*;
    use crate::chat::provider::{Models, collect};
    use crate::config::Settings;

    /// What the stand-in does with each call, by the call's number (from 0).
    type Script = Arc<dyn Fn(usize, Value, HeaderMap) -> Response + Send + Sync>;

    struct StandIn {
        base: String,
        calls: Arc<AtomicUsize>,
        bodies: Arc<std::sync::Mutex<Vec<Value>>>,
    }

    async fn stand_in(path: &'static str, script: Script) -> StandIn {
        #[derive(Clone)]
        struct Shared {
            script: Script,
            calls: Arc<AtomicUsize>,
            bodies: Arc<std::sync::Mutex<Vec<Value>>>,
        }
        async fn handle(State(shared): State<Shared>, headers: HeaderMap, axum::Json(body): axum::Json<Value>) -> Response {
            let call = shared.calls.fetch_add(1, Ordering::SeqCst);
            shared.bodies.lock().unwrap().push(body.clone());
            (shared.script)(call, body, headers)
        }
        let shared = Shared { script, calls: Arc::default(), bodies: Arc::default() };
        let (calls, bodies) = (shared.calls.clone(), shared.bodies.clone());
        let app = axum::Router::new().route(path, post(handle)).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        StandIn { base, calls, bodies }
    }

    /// A streamed body: each line after a short pause, then (if `stall`) nothing, forever.
    fn streamed(lines: Vec<String>, stall: bool) -> Body {
        let chunks = stream::iter(lines).then(|line| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<_, std::io::Error>(bytes::Bytes::from(line))
        });
        if stall { Body::from_stream(chunks.chain(stream::pending())) } else { Body::from_stream(chunks) }
    }

    fn ollama_lines(pieces: &[&str]) -> Vec<String> {
        let mut lines: Vec<String> = pieces
            .iter()
            .map(|piece| format!("{}\n", json!({"message": {"role": "assistant", "content": piece}, "done": false})))
            .collect();
        lines.push(format!("{}\n", json!({"message": {"role": "assistant", "content": ""}, "done": true})));
        lines
    }

    fn openai_lines(pieces: &[&str]) -> Vec<String> {
        let mut lines: Vec<String> =
            pieces.iter().map(|piece| format!("data: {}\n\n", json!({"choices": [{"index": 0, "delta": {"content": piece}}]}))).collect();
        lines.push(format!("data: {}\n\n", json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})));
        lines.push("data: [DONE]\n\n".to_owned());
        lines
    }

    fn ok(body: Body) -> Response {
        (StatusCode::OK, body).into_response()
    }

    fn question() -> Vec<Message> {
        vec![
            Message { role: Role::System, content: "evidence".to_owned() },
            Message { role: Role::User, content: "What feeds gold.revenue?".to_owned() },
        ]
    }

    fn remote(wire: Wire, base: &str, key: Option<&str>, timeout_ms: u64, retries: u32) -> Remote {
        Remote::new(wire, Some(base), key.map(|key| SecretString::from(key.to_owned())), Duration::from_millis(timeout_ms), retries)
    }

    #[tokio::test]
    async fn ollama_answers_stream_piece_by_piece_and_every_call_names_its_model() {
        let server = stand_in("/api/chat", Arc::new(|_, _, _| ok(streamed(ollama_lines(&["raw.orders ", "feeds ", "it."]), false)))).await;
        let provider = remote(Wire::Ollama, &server.base, None, 5000, 0);
        let mut text = provider.generate("llama3.1", &question(), Task::Title("")).await.unwrap();
        let mut pieces = Vec::new();
        while let Some(piece) = text.next().await {
            pieces.push(piece.unwrap());
        }
        assert_eq!(pieces, ["raw.orders ", "feeds ", "it."]);
        let body = server.bodies.lock().unwrap()[0].clone();
        assert_eq!(body["model"], "llama3.1");
        assert_eq!(body["stream"], true);
        assert_eq!(
            body["messages"],
            json!([{"role": "system", "content": "evidence"}, {"role": "user", "content": "What feeds gold.revenue?"}])
        );
    }

    #[tokio::test]
    async fn openai_compatible_answers_stream_with_the_key_and_stop_at_done() {
        let script: Script = Arc::new(|_, _, headers: HeaderMap| {
            let sent = headers.get("authorization").and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned();
            if sent != "Bearer sk-test" {
                // As careless providers do: the key, echoed in the error.
                let message = format!("Incorrect API key provided: {}", sent.trim_start_matches("Bearer "));
                return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": {"message": message}}))).into_response();
            }
            ok(streamed(openai_lines(&["It is ", "fed by ", "raw.orders."]), false))
        });
        let server = stand_in("/v1/chat/completions", script).await;
        let base = format!("{}/v1", server.base);
        let text =
            remote(Wire::OpenAi, &base, Some("sk-test"), 5000, 0).generate("gpt-4o-mini", &question(), Task::Title("")).await.unwrap();
        assert_eq!(collect(text).await.unwrap(), "It is fed by raw.orders.");
        assert_eq!(server.bodies.lock().unwrap()[0]["model"], "gpt-4o-mini");

        // A wrong key is a 503 naming the provider and the fix, never the key.
        let error = match remote(Wire::OpenAi, &base, Some("sk-wrong"), 5000, 2).generate("gpt-4o-mini", &question(), Task::Title("")).await
        {
            Err(error) => error,
            Ok(_) => panic!("a wrong key answered"),
        };
        assert!(matches!(error, LlmError::Status { status: 401, .. }), "{error:?}");
        assert_eq!(server.calls.load(Ordering::SeqCst), 2, "a 401 is not retried");
        let body = error.into_api_error().body();
        assert_eq!(body.component.as_deref(), Some("llm"));
        assert_eq!(body.hint.as_deref(), Some("check LLM_API_KEY"));
        let answered = serde_json::to_string(&body).unwrap();
        assert!(answered.contains("Incorrect API key provided: [redacted]"), "{answered}");
        assert!(!answered.contains("sk-wrong"), "{answered}");
    }

    #[tokio::test]
    async fn a_base_url_without_the_api_path_is_told_apart_from_an_unknown_model() {
        let server = stand_in("/v1/chat/completions", Arc::new(|_, _, _| ok(streamed(openai_lines(&["hi"]), false)))).await;
        let error =
            remote(Wire::OpenAi, &server.base, None, 5000, 2).generate("gpt-4o-mini", &question(), Task::Title("")).await.err().unwrap();
        assert!(matches!(error, LlmError::Status { status: 404, .. }), "{error:?}");
        assert_eq!(server.calls.load(Ordering::SeqCst), 0, "the stand-in only serves /v1/chat/completions");
        let body = error.into_api_error().body();
        assert_eq!(body.error, "llm_unavailable");
        assert!(body.hint.unwrap().contains("LLM_BASE_URL"));

        // OpenAI's own words for a model it lacks.
        let missing: Script = Arc::new(|_, _, _| {
            let error = json!({"error": {"message": "The model `gpt-9` does not exist", "code": "model_not_found"}});
            (StatusCode::NOT_FOUND, axum::Json(error)).into_response()
        });
        let server = stand_in("/v1/chat/completions", missing).await;
        let base = format!("{}/v1", server.base);
        let error = remote(Wire::OpenAi, &base, None, 5000, 2).generate("gpt-9", &question(), Task::Title("")).await.err().unwrap();
        assert!(matches!(&error, LlmError::UnknownModel { model, .. } if model == "gpt-9"), "{error:?}");
    }

    #[tokio::test]
    async fn a_429_waits_as_retry_after_says_and_a_500_is_retried() {
        let script: Script = Arc::new(|call, _, _| match call {
            0 => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], axum::Json(json!({"error": "slow down"}))).into_response(),
            1 => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
            _ => ok(streamed(ollama_lines(&["fine"]), false)),
        });
        let server = stand_in("/api/chat", script).await;
        let started = Instant::now();
        let text = remote(Wire::Ollama, &server.base, None, 5000, 2).generate("llama3.1", &question(), Task::Title("")).await.unwrap();
        assert_eq!(collect(text).await.unwrap(), "fine");
        assert_eq!(server.calls.load(Ordering::SeqCst), 3);
        assert!(started.elapsed() >= Duration::from_millis(950), "Retry-After: 1 was honoured ({:?})", started.elapsed());

        // Out of retries: the last status, as a 503 for the client.
        let always: Script = Arc::new(|_, _, _| (StatusCode::SERVICE_UNAVAILABLE, "overloaded").into_response());
        let server = stand_in("/api/chat", always).await;
        let error =
            remote(Wire::Ollama, &server.base, None, 5000, 1).generate("llama3.1", &question(), Task::Title("")).await.err().unwrap();
        assert!(matches!(&error, LlmError::Status { status: 503, detail, .. } if detail == "overloaded"), "{error:?}");
        assert_eq!(server.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_slow_or_absent_provider_becomes_a_503_with_its_address_and_a_hint() {
        let slow: Script =
            Arc::new(|_, _, _| ok(streamed(vec!["{\"message\":{\"content\":\"first\"},\"done\":false}\n".to_owned()], true)));
        let server = stand_in("/api/chat", slow).await;
        let mut text = remote(Wire::Ollama, &server.base, None, 300, 0).generate("llama3.1", &question(), Task::Title("")).await.unwrap();
        assert_eq!(text.next().await.unwrap().unwrap(), "first");
        let stalled = text.next().await.unwrap().unwrap_err();
        assert!(matches!(stalled, LlmError::Timeout { .. }), "{stalled:?}");
        assert!(text.next().await.is_none(), "nothing after an error");
        let body = stalled.into_api_error().body();
        assert_eq!((body.error.as_str(), body.component.as_deref()), ("llm_timeout", Some("llm")));
        assert!(body.detail.contains(&server.base), "{}", body.detail);

        // Nobody listening.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let error = remote(Wire::Ollama, &format!("http://{closed}"), None, 2000, 2)
            .generate("llama3.1", &question(), Task::Title(""))
            .await
            .err()
            .unwrap();
        assert!(matches!(error, LlmError::Unreachable { .. }), "{error:?}");
        let body = error.into_api_error().body();
        assert_eq!(body.error, "llm_unavailable");
        assert!(body.hint.unwrap().contains(&format!("http://{closed}")));
    }

    #[tokio::test]
    async fn a_wrong_model_falls_back_down_the_chain_and_the_answer_names_the_model_used() {
        let script: Script = Arc::new(|_, body: Value, _| {
            if body["model"] == "llama3.1" {
                ok(streamed(ollama_lines(&["from the fallback"]), false))
            } else {
                (
                    StatusCode::NOT_FOUND,
                    axum::Json(json!({"error": format!("model \"{}\" not found, try pulling it first", body["model"].as_str().unwrap())})),
                )
                    .into_response()
            }
        });
        let server = stand_in("/api/chat", script).await;
        let settings = Settings::from_args([
            "--llm-provider",
            "ollama",
            "--llm-base-url",
            &server.base,
            "--llm-model",
            "qwen-missing",
            "--llm-fallback-models",
            "llama3.1",
        ])
        .unwrap();
        let models = Models::from_settings(&settings.chat);
        let (model, text) = models.generate("qwen-missing", &question(), Task::Title("")).await.unwrap();
        assert_eq!(model, "llama3.1");
        assert_eq!(collect(text).await.unwrap(), "from the fallback");
        let asked: Vec<Value> = server.bodies.lock().unwrap().iter().map(|body| body["model"].clone()).collect();
        assert_eq!(asked, [json!("qwen-missing"), json!("llama3.1")]);

        // Without a fallback, the unknown model is the answer.
        let settings =
            Settings::from_args(["--llm-provider", "ollama", "--llm-base-url", &server.base, "--llm-model", "qwen-missing"]).unwrap();
        let error = Models::from_settings(&settings.chat).generate("qwen-missing", &question(), Task::Title("")).await.err().unwrap();
        let body = error.into_api_error().body();
        assert_eq!(body.error, "llm_unknown_model");
        assert!(body.hint.unwrap().contains("qwen-missing"));
    }
}
