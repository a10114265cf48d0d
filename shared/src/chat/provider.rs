//! The providers that turn evidence into an answer, behind one trait, and the models they answer
//! with: every call names its model, chosen per mode (a request may name one only from the
//! allow-list), with a chain of fallback models when one keeps failing.

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};

use super::Mode;
use super::evidence::Evidence;
use super::extractive;
use super::remote::{Remote, Wire};
use crate::config::ChatSettings;
use crate::error::{ApiError, FieldError};

/// Which provider answers (`LLM_PROVIDER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderKind {
    /// Answers composed from the knowledge base alone: no language model, no network.
    Extractive,
    /// Ollama's chat API.
    Ollama,
    /// Any OpenAI-compatible chat completions API (OpenAI, OpenRouter, Groq, vLLM, llama.cpp).
    Openai,
}

impl ProviderKind {
    /// The model a mode uses when nothing else is configured.
    fn default_model(self) -> &'static str {
        match self {
            ProviderKind::Extractive => "extractive",
            ProviderKind::Ollama => "llama3.1",
            ProviderKind::Openai => "gpt-4o-mini",
        }
    }
}

/// A message of a conversation with a language model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

/// What a call asks for, with what a provider that does not read prompts needs.
#[derive(Debug, Clone, Copy)]
pub enum Task<'a> {
    Answer(&'a Evidence),
    Title(&'a str),
}

/// An answer's text, in pieces, as the provider produces it.
pub type TextStream = BoxStream<'static, Result<String, LlmError>>;

/// Why a provider gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the language model at {address} cannot be reached: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("the language model at {address} did not answer within {seconds} s")]
    Timeout { address: String, seconds: u64 },
    #[error("the language model at {address} answered {status}: {detail}")]
    Status { address: String, status: u16, detail: String },
    #[error("the language model at {address} has no model {model:?}")]
    UnknownModel { address: String, model: String },
    #[error("the language model at {address} sent an answer that cannot be read: {reason}")]
    Malformed { address: String, reason: String },
}

impl LlmError {
    /// Whether another model of the same provider may do better (the provider itself answers).
    fn worth_a_fallback(&self) -> bool {
        matches!(self, LlmError::UnknownModel { .. } | LlmError::Status { .. } | LlmError::Timeout { .. } | LlmError::Malformed { .. })
    }

    /// The contract's answer: 503 naming the `llm` component, with what to do about it.
    pub fn into_api_error(self) -> ApiError {
        let (code, hint) = match &self {
            LlmError::Unreachable { address, .. } => (
                "llm_unavailable",
                format!("check that the provider at {address} is running and reachable (LLM_BASE_URL), or set LLM_PROVIDER=extractive"),
            ),
            LlmError::Timeout { .. } => (
                "llm_timeout",
                "the model may be loading or overloaded: try again, pick a smaller model, or raise LLM_TIMEOUT_SECONDS".to_owned(),
            ),
            LlmError::Status { status: 401 | 403, .. } => ("llm_unavailable", "check LLM_API_KEY".to_owned()),
            LlmError::Status { status: 404, .. } => (
                "llm_unavailable",
                "the provider has no chat API at this address: check LLM_BASE_URL (OpenAI-compatible APIs usually end in /v1)".to_owned(),
            ),
            LlmError::Status { .. } => {
                ("llm_unavailable", "the provider is failing or rate-limiting: try again later, or set LLM_FALLBACK_MODELS".to_owned())
            }
            LlmError::UnknownModel { model, .. } => {
                ("llm_unknown_model", format!("the provider has no model {model:?}: pull or deploy it, or change LLM_MODEL"))
            }
            LlmError::Malformed { .. } => ("llm_unavailable", "the provider's answer broke off; try again".to_owned()),
        };
        ApiError::unavailable("llm", code, self.to_string()).with_hint(hint)
    }
}

/// A source of answers.
#[async_trait]
pub trait LlmProvider: Send + Sync {
    /// `extractive`, `ollama`, `openai`.
    fn name(&self) -> &'static str;

    /// Starts answering with `model`; the text comes as a stream of pieces, in order. Language
    /// models read `messages`; the extractive provider reads the task.
    async fn generate(&self, model: &str, messages: &[Message], task: Task<'_>) -> Result<TextStream, LlmError>;
}

/// The extractive provider: see [`extractive`].
#[derive(Debug, Default)]
pub struct Extractive;

#[async_trait]
impl LlmProvider for Extractive {
    fn name(&self) -> &'static str {
        "extractive"
    }

    async fn generate(&self, _model: &str, _messages: &[Message], task: Task<'_>) -> Result<TextStream, LlmError> {
        let text = match task {
            Task::Answer(evidence) => extractive::answer(evidence),
            Task::Title(question) => extractive::title(question),
        };
        // In pieces, a line at a time, as a streaming model would send them.
        let pieces: Vec<Result<String, LlmError>> = text.split_inclusive('\n').map(|line| Ok(line.to_owned())).collect();
        Ok(stream::iter(pieces).boxed())
    }
}

/// The configured provider and models.
#[derive(Clone)]
pub struct Models {
    provider: Arc<dyn LlmProvider>,
    per_mode: [String; 4],
    title: String,
    /// Tried in order after the chosen model fails.
    fallbacks: Vec<String>,
    allowed: Vec<String>,
}

impl Models {
    pub fn from_settings(settings: &ChatSettings) -> Self {
        let timeout = std::time::Duration::from_secs(settings.llm_timeout_seconds);
        let remote =
            |wire| Remote::new(wire, settings.llm_base_url.as_deref(), settings.llm_api_key.clone(), timeout, settings.llm_max_retries);
        let provider: Arc<dyn LlmProvider> = match settings.llm_provider {
            ProviderKind::Extractive => Arc::new(Extractive),
            ProviderKind::Ollama => Arc::new(remote(Wire::Ollama)),
            ProviderKind::Openai => Arc::new(remote(Wire::OpenAi)),
        };
        let base = settings.llm_model.clone().unwrap_or_else(|| settings.llm_provider.default_model().to_owned());
        let pick = |model: &Option<String>| model.clone().unwrap_or_else(|| base.clone());
        let per_mode = [
            pick(&settings.llm_model_text),
            pick(&settings.llm_model_semantic),
            pick(&settings.llm_model_graph),
            pick(&settings.llm_model_deep),
        ];
        let title = pick(&settings.llm_model_title);
        let fallbacks: Vec<String> =
            settings.llm_fallback_models.iter().map(|model| model.trim().to_owned()).filter(|model| !model.is_empty()).collect();
        let mut allowed: Vec<String> = if settings.llm_allowed_models.is_empty() {
            per_mode.iter().chain([&title, &base]).chain(&fallbacks).cloned().collect()
        } else {
            settings.llm_allowed_models.iter().map(|model| model.trim().to_owned()).filter(|model| !model.is_empty()).collect()
        };
        allowed.sort();
        allowed.dedup();
        Models { provider, per_mode, title, fallbacks, allowed }
    }

    /// Starts an answer with `model`, then each fallback model in turn while the provider fails in a
    /// way another model may not (an unknown model, errors left after retries, a timeout); the model
    /// that answers, and its text.
    pub async fn generate(&self, model: &str, messages: &[Message], task: Task<'_>) -> Result<(String, TextStream), LlmError> {
        let mut tried = vec![model];
        let mut outcome = self.provider.generate(model, messages, task).await;
        for fallback in &self.fallbacks {
            match &outcome {
                Err(error) if error.worth_a_fallback() && !tried.contains(&fallback.as_str()) => {
                    tracing::warn!(%error, provider = self.provider.name(), model = tried.last().copied().unwrap_or_default(), fallback, "falling back to another model");
                    tried.push(fallback);
                    outcome = self.provider.generate(fallback, messages, task).await;
                }
                _ => break,
            }
        }
        let answered = tried.last().copied().unwrap_or(model).to_owned();
        outcome.map(|text| (answered, text))
    }

    /// The model for `mode`: the one the request names (it must be allowed), else the mode's own.
    pub fn for_mode(&self, mode: Mode, requested: Option<&str>) -> Result<String, ApiError> {
        self.choose(requested, &self.per_mode[mode as usize])
    }

    /// The model that writes titles.
    pub fn for_title(&self, requested: Option<&str>) -> Result<String, ApiError> {
        self.choose(requested, &self.title)
    }

    /// The models a request may name.
    pub fn allowed(&self) -> &[String] {
        &self.allowed
    }

    fn choose(&self, requested: Option<&str>, default: &str) -> Result<String, ApiError> {
        match requested.map(str::trim).filter(|model| !model.is_empty()) {
            None => Ok(default.to_owned()),
            Some(model) if self.allowed.iter().any(|allowed| allowed == model) => Ok(model.to_owned()),
            Some(model) => {
                let detail = format!("unknown model {:?}; allowed: {}", super::evidence::abridged(model, 80), self.allowed.join(", "));
                Err(ApiError::bad_request("unknown_model", detail.clone()).with_field_errors(vec![FieldError::new("model", detail)]))
            }
        }
    }
}

/// Reads a whole answer.
pub async fn collect(mut text: TextStream) -> Result<String, LlmError> {
    let mut whole = String::new();
    while let Some(piece) = text.next().await {
        whole.push_str(&piece?);
    }
    Ok(whole)
}
