//! The providers that turn evidence into an answer, behind one trait, and the models they answer
//! with: every call names its model, chosen per mode, and a request may name one only from the
//! allow-list.

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};

use super::Mode;
use super::evidence::Evidence;
use super::extractive;
use crate::config::ChatSettings;
use crate::error::{ApiError, FieldError};

/// Which provider answers (`LLM_PROVIDER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderKind {
    /// Answers composed from the knowledge base alone: no language model, no network.
    Extractive,
}

impl ProviderKind {
    /// The model a mode uses when nothing else is configured.
    fn default_model(self) -> &'static str {
        match self {
            ProviderKind::Extractive => "extractive",
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
}

impl LlmError {
    /// The contract's answer: 503 naming the `llm` component, with a hint.
    pub fn into_api_error(self) -> ApiError {
        match self {
            LlmError::Unreachable { ref address, .. } => ApiError::unavailable("llm", "llm_unavailable", self.to_string())
                .with_hint(format!("check that the provider at {address} is running, or set LLM_PROVIDER=extractive")),
        }
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
    allowed: Vec<String>,
}

impl Models {
    pub fn from_settings(settings: &ChatSettings) -> Self {
        let provider: Arc<dyn LlmProvider> = match settings.llm_provider {
            ProviderKind::Extractive => Arc::new(Extractive),
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
        let mut allowed: Vec<String> = if settings.llm_allowed_models.is_empty() {
            per_mode.iter().chain([&title, &base]).cloned().collect()
        } else {
            settings.llm_allowed_models.iter().map(|model| model.trim().to_owned()).filter(|model| !model.is_empty()).collect()
        };
        allowed.sort();
        allowed.dedup();
        Models { provider, per_mode, title, allowed }
    }

    pub fn provider(&self) -> &dyn LlmProvider {
        &*self.provider
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
