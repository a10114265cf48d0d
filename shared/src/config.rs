//! Settings shared by every host, read from the environment.
//!
//! Each setting is one environment variable (and, on the node, the matching `--flag`); the table in
//! `docs/configuration.md` lists them all. A value that does not parse stops the process at start-up
//! with a message naming the variable, rather than running with a surprise default.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;
use secrecy::{ExposeSecret, SecretString};

/// Settings every host understands. The node flattens these into its command line; a Lambda
/// function reads them with [`Settings::from_env`].
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Where state lives: `sqlite` (one embedded file) or `dynamodb` (a table; the endpoint comes from
    /// the standard AWS settings, e.g. `AWS_ENDPOINT_URL_DYNAMODB`).
    #[arg(long, env = "TRIBUTARY_STORE", default_value = "sqlite")]
    pub store: crate::store::Backend,

    /// DynamoDB table name (with `TRIBUTARY_STORE=dynamodb`).
    #[arg(long, env = "TRIBUTARY_TABLE", default_value = "tributary")]
    pub table: String,

    /// Create the DynamoDB table (with its index and TTL) at start-up if it is missing: for local
    /// runs against a DynamoDB-compatible server; in AWS the stack creates it.
    #[arg(long, env = "TRIBUTARY_CREATE_TABLE", default_value_t = false, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub create_table: bool,

    /// SQLite database file of the embedded store (created with its folder if missing).
    #[arg(long = "db", env = "TRIBUTARY_DB", default_value = "data/tributary.db")]
    pub db_path: PathBuf,

    /// Origins allowed for CORS and WebSocket upgrades: a comma-separated list, or `*` for any.
    #[arg(
        long,
        env = "ALLOWED_ORIGINS",
        default_value = "http://localhost:3000,http://127.0.0.1:3000,http://localhost:5173,http://127.0.0.1:5173"
    )]
    pub allowed_origins: AllowedOrigins,

    /// WebSocket connections allowed from one client IP; the next is refused with 503.
    #[arg(long, env = "WEBSOCKET_MAX_CONNECTIONS_PER_IP", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub websocket_max_connections_per_ip: u32,

    /// WebSocket connections allowed in all; past it the oldest idle connection is evicted.
    #[arg(long, env = "WEBSOCKET_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub websocket_max_connections: u32,

    /// Seconds between two `stats_update` broadcasts.
    #[arg(long, env = "STATS_INTERVAL_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub stats_interval_seconds: u64,

    /// Store-derived stats (graph counts, trend baseline) are reused for this long (milliseconds), so
    /// a flood of stats requests costs the store at most one query set per window. `0`: never reused.
    #[arg(long, env = "STATS_CACHE_MS", default_value_t = 250)]
    pub stats_cache_ms: u64,

    /// Trends compare with the newest stats snapshot at least this old (hours).
    #[arg(long, env = "STATS_TREND_WINDOW_HOURS", default_value_t = 24)]
    pub stats_trend_window_hours: u32,

    /// A new stats snapshot is stored when the newest one is older than this (minutes).
    #[arg(long, env = "STATS_SNAPSHOT_INTERVAL_MINUTES", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub stats_snapshot_interval_minutes: u32,

    /// Token required by admin routes (`Authorization: Bearer` or `X-API-Key`). Unset: admin
    /// routes are open to loopback clients only.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub admin_token: Option<SecretString>,

    /// Log output: `text` for people, `json` for log pipelines.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// WebSocket URL given to frontends by `/api/v1/config/websocket`. Unset: derived from the
    /// request's host.
    #[arg(long, env = "PUBLIC_WEBSOCKET_URL")]
    pub public_websocket_url: Option<String>,

    /// Largest request body accepted, in bytes (413 past it).
    #[arg(long, env = "HTTP_BODY_LIMIT_BYTES", default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..))]
    pub http_body_limit_bytes: u64,

    /// Largest request body on the ingestion routes (`/api/v1/files/upload`, `/api/v1/ingest`), all
    /// files together, in bytes (413 past it).
    #[arg(long, env = "INGEST_MAX_REQUEST_BYTES", default_value_t = crate::lineage::limits::MAX_UPLOAD_BYTES as u64, value_parser = clap::value_parser!(u64).range(1024..))]
    pub ingest_max_request_bytes: u64,

    /// Largest single file an ingestion accepts, in bytes (413 past it).
    #[arg(long, env = "INGEST_MAX_FILE_BYTES", default_value_t = crate::lineage::limits::MAX_FILE_BYTES as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub ingest_max_file_bytes: u64,

    /// Seconds a request may take before it is abandoned and answered with 503 (`timeout`).
    #[arg(long, env = "HTTP_REQUEST_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub http_request_timeout_seconds: u64,

    /// Take the client IP from `X-Forwarded-For` (only behind a proxy you trust).
    #[arg(long, env = "TRUST_FORWARDED_FOR", default_value_t = false, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub trust_forwarded_for: bool,

    /// Activity events waiting in memory before new ones spill to the spill file.
    #[arg(long, env = "ACTIVITY_QUEUE_CAPACITY", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub activity_queue_capacity: u32,

    /// Most activity events written in one store batch.
    #[arg(long, env = "ACTIVITY_BATCH_SIZE", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub activity_batch_size: u32,

    /// Seconds a recorded WebSocket connection counts as live (API Gateway closes connections after
    /// two hours; the store's TTL removes the record later).
    #[arg(long, env = "WEBSOCKET_CONNECTION_TTL_SECONDS", default_value_t = 7200, value_parser = clap::value_parser!(u64).range(60..))]
    pub websocket_connection_ttl_seconds: u64,

    /// Where the `@connections` API lives, for hosts that do not hold the sockets: the WebSocket
    /// API's `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`, or a socket node's
    /// `http://host:port`.
    #[arg(long, env = "WEBSOCKET_CALLBACK_URL")]
    pub websocket_callback_url: Option<String>,

    /// The credential of the `@connections` API. On a socket node: what callers of its `@connections`
    /// API must present (`Authorization: Bearer` or `X-API-Key`), besides the admin token; with
    /// neither set, that API refuses every caller. On the functions: sent with every `@connections`
    /// call, for a node as `WEBSOCKET_CALLBACK_URL` (API Gateway's own API needs none: it is signed).
    #[arg(long, env = "CONNECTIONS_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub connections_token: Option<SecretString>,

    /// `@connections` posts in flight at once during a broadcast.
    #[arg(long, env = "BROADCAST_CONCURRENCY", default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub broadcast_concurrency: u32,

    /// Connections read per page when a broadcast lists them.
    #[arg(long, env = "CONNECTIONS_PAGE_SIZE", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connections_page_size: u32,

    /// Ticks one run of the scheduled stats function sends, `STATS_INTERVAL_SECONDS` apart. Unset: as
    /// many as fit the minute until the next run (12 at 5 s). A run stops earlier if its time runs out.
    #[arg(long, env = "STATS_TICKS", value_parser = clap::value_parser!(u32).range(1..=600))]
    pub stats_ticks: Option<u32>,

    /// Lambda functions a cloud restart cycles (comma-separated names or ARNs; the stack sets it).
    #[arg(long, env = "TRIBUTARY_FUNCTIONS", value_delimiter = ',')]
    pub functions: Vec<String>,

    /// Secrets Manager secret holding the admin token (the stack sets it, so the token never sits in
    /// plain text in the functions' configuration). Read once at start-up.
    #[arg(long, env = "ADMIN_TOKEN_SECRET_ARN")]
    pub admin_token_secret_arn: Option<String>,

    /// File activity events spill to when the queue is full or the store is down (JSON lines).
    /// Default: `activity-spill.jsonl` beside the database.
    #[arg(long, env = "ACTIVITY_SPILL_PATH")]
    pub activity_spill_path: Option<PathBuf>,

    #[command(flatten)]
    pub chat: ChatSettings,
}

/// Which language model answers chat questions, and how chat builds its context.
#[derive(Debug, Clone, clap::Args)]
pub struct ChatSettings {
    /// Which provider answers: `extractive` (no network: answers composed from the knowledge base),
    /// `ollama` (its chat API) or `openai` (any OpenAI-compatible chat completions API).
    #[arg(long, env = "LLM_PROVIDER", default_value = "extractive")]
    pub llm_provider: crate::chat::ProviderKind,

    /// The provider's address. Default: `http://127.0.0.1:11434` for Ollama,
    /// `https://api.openai.com/v1` for OpenAI-compatible APIs.
    #[arg(long, env = "LLM_BASE_URL")]
    pub llm_base_url: Option<String>,

    /// Bearer token for the provider (OpenAI-compatible APIs). Never logged or answered.
    #[arg(long, env = "LLM_API_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub llm_api_key: Option<SecretString>,

    /// Secrets Manager secret holding the provider's key (the stack sets it, so the key never sits in
    /// plain text in the functions' configuration). Read once at start-up; it wins over `LLM_API_KEY`.
    #[arg(long, env = "LLM_API_KEY_SECRET_ARN")]
    pub llm_api_key_secret_arn: Option<String>,

    /// The model every mode uses unless overridden. Default: `extractive`, `llama3.1` (Ollama) or
    /// `gpt-4o-mini` (OpenAI-compatible).
    #[arg(long, env = "LLM_MODEL")]
    pub llm_model: Option<String>,

    /// The model of text mode (default `LLM_MODEL`).
    #[arg(long, env = "LLM_MODEL_TEXT")]
    pub llm_model_text: Option<String>,

    /// The model of semantic mode (default `LLM_MODEL`).
    #[arg(long, env = "LLM_MODEL_SEMANTIC")]
    pub llm_model_semantic: Option<String>,

    /// The model of graph mode (default `LLM_MODEL`).
    #[arg(long, env = "LLM_MODEL_GRAPH")]
    pub llm_model_graph: Option<String>,

    /// The model of deep mode (default `LLM_MODEL`).
    #[arg(long, env = "LLM_MODEL_DEEP")]
    pub llm_model_deep: Option<String>,

    /// The model that writes titles (default `LLM_MODEL`).
    #[arg(long, env = "LLM_MODEL_TITLE")]
    pub llm_model_title: Option<String>,

    /// Models tried in order when a mode's model keeps failing or is unknown to the provider
    /// (comma-separated).
    #[arg(long, env = "LLM_FALLBACK_MODELS", value_delimiter = ',')]
    pub llm_fallback_models: Vec<String>,

    /// Seconds to wait for the provider's first piece of an answer, and between pieces, before it
    /// counts as down.
    #[arg(long, env = "LLM_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub llm_timeout_seconds: u64,

    /// Retries of a call answered 429 or 5xx, per model, with backoff honouring `Retry-After`.
    #[arg(long, env = "LLM_MAX_RETRIES", default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=10))]
    pub llm_max_retries: u32,

    /// Models a request may name in `model` (comma-separated). Default: every model configured above.
    #[arg(long, env = "LLM_ALLOWED_MODELS", value_delimiter = ',')]
    pub llm_allowed_models: Vec<String>,

    /// Characters of evidence deep mode may put in its context; the least relevant is dropped first.
    #[arg(long, env = "CHAT_CONTEXT_BUDGET_CHARS", default_value_t = 12_000, value_parser = clap::value_parser!(u32).range(500..=1_000_000))]
    pub chat_context_budget_chars: u32,

    /// Turns of a session's history kept and given to deep mode.
    #[arg(long, env = "CHAT_HISTORY_TURNS", default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=200))]
    pub chat_history_turns: u32,
}

/// Reads [`Settings`] from the environment alone (no command line), as a Lambda function does.
#[derive(Debug, Parser)]
#[command(no_binary_name = true)]
struct EnvOnly {
    #[command(flatten)]
    settings: Settings,
}

impl Settings {
    /// Settings from the environment, with a message naming the offending variable on error.
    pub fn from_env() -> Result<Self, clap::Error> {
        EnvOnly::try_parse_from(std::iter::empty::<String>()).map(|parsed| parsed.settings)
    }

    /// Settings from flag-style arguments (`["--db", "x.db"]`), the environment filling the rest.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        EnvOnly::try_parse_from(args).map(|parsed| parsed.settings)
    }

    pub fn stats_interval(&self) -> Duration {
        Duration::from_secs(self.stats_interval_seconds)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.http_request_timeout_seconds)
    }

    /// Where activity spills: the configured path, or beside the database.
    pub fn spill_path(&self) -> PathBuf {
        self.activity_spill_path.clone().unwrap_or_else(|| {
            let folder = self.db_path.parent().map(PathBuf::from).unwrap_or_default();
            folder.join("activity-spill.jsonl")
        })
    }

    /// Ticks per run of the scheduled stats function: `STATS_TICKS`, or one schedule period's worth.
    pub fn stats_ticks_per_run(&self) -> u32 {
        self.stats_ticks.unwrap_or_else(|| (60 / self.stats_interval_seconds).max(1) as u32)
    }

    pub fn connection_ttl(&self) -> Duration {
        Duration::from_secs(self.websocket_connection_ttl_seconds)
    }

    /// The admin token, if one is configured (empty counts as none).
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_ref().map(|token| token.expose_secret()).filter(|token| !token.is_empty())
    }

    /// Why these settings look like a node behind a reverse proxy with no admin token, if they do:
    /// it trusts `X-Forwarded-For`, or gives frontends a WebSocket URL on a host that is not this
    /// machine. Admin routes then rest on requests looking local, which a proxy on the same host
    /// that adds no forwarding header defeats.
    pub fn proxied_without_admin_token(&self) -> Option<&'static str> {
        if self.admin_token().is_some() {
            return None;
        }
        if self.trust_forwarded_for {
            return Some("TRUST_FORWARDED_FOR is true");
        }
        let authority = self.public_websocket_url.as_deref()?.split_once("://")?.1.split(['/', '?', '#']).next()?;
        let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        (!is_loopback_host(host)).then_some("PUBLIC_WEBSOCKET_URL names a host that is not this machine")
    }

    /// The `@connections` credential, if one is configured (empty counts as none).
    pub fn connections_token(&self) -> Option<&str> {
        self.connections_token.as_ref().map(|token| token.expose_secret()).filter(|token| !token.is_empty())
    }
}

fn parse_secret(value: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(value.to_owned()))
}

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The origins a browser may call us from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// `*`: any origin.
    Any,
    /// Exact origins (`scheme://host[:port]`), normalised to lower case without a trailing slash.
    List(Vec<String>),
}

impl AllowedOrigins {
    /// Whether a browser at `origin` may call us. `host` is the request's `Host` header: a page the
    /// node serves itself (same origin) is allowed when that host is loopback, so the built-in
    /// dashboard works without configuration while DNS-rebinding pages stay out.
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = normalise_origin(origin);
        match self {
            AllowedOrigins::Any => true,
            AllowedOrigins::List(list) => list.contains(&origin) || host.is_some_and(|host| is_loopback_same_origin(&origin, host)),
        }
    }

    pub fn is_any(&self) -> bool {
        matches!(self, AllowedOrigins::Any)
    }

    /// The configured list (empty for `*`).
    pub fn list(&self) -> &[String] {
        match self {
            AllowedOrigins::Any => &[],
            AllowedOrigins::List(list) => list,
        }
    }
}

fn normalise_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

fn is_loopback_same_origin(origin: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    is_loopback_host(&host) && (origin == format!("http://{host}") || origin == format!("https://{host}"))
}

/// Whether a `Host` value names this machine: `localhost`, `127.x.y.z` or `[::1]`, with or without
/// a port.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(':') && port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    name.eq_ignore_ascii_case("localhost")
        || name.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl FromStr for AllowedOrigins {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let entries: Vec<&str> = value.split(',').map(str::trim).filter(|entry| !entry.is_empty()).collect();
        if entries.contains(&"*") {
            return Ok(AllowedOrigins::Any);
        }
        let mut list = Vec::with_capacity(entries.len());
        for entry in entries {
            let normalised = normalise_origin(entry);
            let Some((scheme, rest)) = normalised.split_once("://") else {
                return Err(format!("`{entry}` is not an origin: expected scheme://host[:port]"));
            };
            if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains('/') {
                return Err(format!("`{entry}` is not an origin: expected http(s)://host[:port] with no path"));
            }
            list.push(normalised);
        }
        Ok(AllowedOrigins::List(list))
    }
}

impl fmt::Display for AllowedOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowedOrigins::Any => f.write_str("*"),
            AllowedOrigins::List(list) => f.write_str(&list.join(",")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_and_match_exactly() {
        let origins: AllowedOrigins = "https://Dash.example.com/, http://localhost:3000".parse().unwrap();
        assert!(origins.allows("https://dash.example.com", None));
        assert!(origins.allows("http://localhost:3000", None));
        assert!(!origins.allows("http://localhost:3001", None));
        assert!(!origins.allows("https://evil.example.com", None));
        assert!("*".parse::<AllowedOrigins>().unwrap().allows("https://anything.example", None));
        assert!("localhost:3000".parse::<AllowedOrigins>().is_err());
        assert!("http://a.example/path".parse::<AllowedOrigins>().is_err());
    }

    #[test]
    fn same_origin_is_allowed_only_on_loopback_hosts() {
        let origins: AllowedOrigins = "https://dash.example.com".parse().unwrap();
        assert!(origins.allows("http://127.0.0.1:8000", Some("127.0.0.1:8000")));
        assert!(origins.allows("http://localhost:8000", Some("localhost:8000")));
        assert!(origins.allows("http://[::1]:8000", Some("[::1]:8000")));
        // A rebinding page names its own host; it is not loopback by name, so it is refused.
        assert!(!origins.allows("http://rebind.example:8000", Some("rebind.example:8000")));
        assert!(!origins.allows("http://localhost:9999", Some("localhost:8000")));
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        use clap::CommandFactory;
        let command = EnvOnly::command();
        let default = |name: &str| {
            let argument = command.get_arguments().find(|argument| argument.get_id() == name).unwrap();
            argument.get_default_values().iter().map(|value| value.to_string_lossy().into_owned()).collect::<Vec<_>>().join(",")
        };
        assert_eq!(default("websocket_max_connections_per_ip"), "10");
        assert_eq!(default("stats_interval_seconds"), "5");
        assert_eq!(default("db_path"), "data/tributary.db");
        let settings = Settings::from_args(["--db", "/srv/t/store.db"]).unwrap();
        assert_eq!(settings.spill_path(), PathBuf::from("/srv/t/activity-spill.jsonl"));
    }

    #[test]
    fn a_stats_run_fills_the_minute_whatever_the_interval() {
        let ticks = |interval: &str| Settings::from_args(["--stats-interval-seconds", interval]).unwrap().stats_ticks_per_run();
        assert_eq!(ticks("5"), 12);
        assert_eq!(ticks("1"), 60);
        assert_eq!(ticks("7"), 8);
        assert_eq!(ticks("120"), 1);
        assert_eq!(Settings::from_args(["--stats-ticks", "2"]).unwrap().stats_ticks_per_run(), 2);
    }

    #[test]
    fn a_proxied_setup_without_an_admin_token_is_named() {
        let why = |args: &[&str]| Settings::from_args(args.iter().copied()).unwrap().proxied_without_admin_token();
        assert_eq!(why(&[]), None, "a node on this machine alone");
        assert_eq!(why(&["--public-websocket-url", "ws://localhost:8000/api/v1/ws/dashboard"]), None);
        assert_eq!(why(&["--public-websocket-url", "ws://127.0.0.1:8000/ws/dashboard"]), None);
        assert_eq!(why(&["--public-websocket-url", "ws://[::1]:8000/ws"]), None);
        assert_eq!(why(&["--trust-forwarded-for", "true"]), Some("TRUST_FORWARDED_FOR is true"));
        assert_eq!(
            why(&["--public-websocket-url", "wss://lineage.example.com/api/v1/ws/dashboard"]),
            Some("PUBLIC_WEBSOCKET_URL names a host that is not this machine")
        );
        assert_eq!(why(&["--trust-forwarded-for", "true", "--admin-token", "set"]), None, "the token closes the gap");
    }

    #[test]
    fn limits_of_zero_are_refused() {
        for flag in ["--websocket-max-connections", "--websocket-max-connections-per-ip", "--stats-interval-seconds"] {
            assert!(Settings::from_args([flag, "0"]).is_err(), "{flag} 0");
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let settings = EnvOnly::try_parse_from(["--admin-token", "hunter2-secret"]).unwrap().settings;
        assert_eq!(settings.admin_token(), Some("hunter2-secret"));
        assert!(!format!("{settings:?}").contains("hunter2-secret"));
    }
}
