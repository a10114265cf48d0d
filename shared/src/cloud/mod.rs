//! The cloud host: what every Lambda function needs, so that each function's `main` is one call.
//!
//! * HTTP functions serve core routers through `lambda_http`, buffered behind the HTTP API
//!   ([`run_http_function`]) or streamed behind a function URL ([`run_streaming_http_function`]);
//! * `tributary-ws` handles API Gateway's WebSocket events ([`run_websocket_function`]);
//! * `tributary-stats` sends the scheduled stats ticks ([`run_stats_function`]).
//!
//! All of them build the same [`AppState`] from the environment: the store `TRIBUTARY_STORE` picks,
//! an **inline** activity recorder (a frozen environment runs no background task), the
//! [`ApiGatewayBroadcaster`], and the [`LambdaRestarter`]. Everything here also runs outside Lambda,
//! which is how the tests drive it.

pub mod broadcaster;
pub mod restart;
pub mod stats;
pub mod websocket;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::Response;
use lambda_runtime::{LambdaEvent, service_fn};
use secrecy::SecretString;
use utoipa_axum::router::OpenApiRouter;

pub use broadcaster::ApiGatewayBroadcaster;
pub use restart::LambdaRestarter;

use crate::activity::ActivityRecorder;
use crate::config::Settings;
use crate::http::extract::SourceIp;
use crate::http::{self, AppState};
use crate::restart::{RestartUnsupported, Restarter};
use crate::store::Stores;

/// The state and broadcaster of one function.
pub struct CloudHost {
    pub state: AppState,
    pub broadcaster: Arc<ApiGatewayBroadcaster>,
}

impl CloudHost {
    /// Builds everything from the environment.
    pub async fn from_env() -> anyhow::Result<Self> {
        let mut settings = Settings::from_env().context("reading the settings")?;
        crate::telemetry::init(settings.log_format);
        if let Some(arn) = settings.admin_token_secret_arn.clone() {
            settings.admin_token = Some(read_secret(&arn, "the admin token").await?);
        }
        if let Some(arn) = settings.chat.llm_api_key_secret_arn.clone() {
            settings.chat.llm_api_key = Some(read_secret(&arn, "the language model's key").await?);
        }
        let stores = Stores::open(&settings).await.context("opening the store")?;
        // Lambda's only writable folder is /tmp.
        let spill = match &settings.activity_spill_path {
            Some(path) => path.clone(),
            None if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() => "/tmp/activity-spill.jsonl".into(),
            None => settings.spill_path(),
        };
        let recorder = ActivityRecorder::inline(stores.activity.clone(), spill);
        let broadcaster = Arc::new(
            ApiGatewayBroadcaster::new(
                settings.websocket_callback_url.as_deref(),
                settings.connections_token(),
                stores.connections.clone(),
                settings.broadcast_concurrency as usize,
                settings.connections_page_size,
                settings.stats_interval_seconds,
            )
            .await,
        );
        let restarter: Arc<dyn Restarter> = if settings.functions.is_empty() {
            Arc::new(RestartUnsupported)
        } else {
            Arc::new(LambdaRestarter::new(settings.functions.clone(), broadcaster.clone()).await)
        };
        let state = AppState::new(settings, stores, recorder, broadcaster.clone(), restarter);
        Ok(CloudHost { state, broadcaster })
    }
}

/// Reads the string value of a Secrets Manager secret; `what` names it in errors.
async fn read_secret(arn: &str, what: &str) -> anyhow::Result<SecretString> {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let secret = aws_sdk_secretsmanager::Client::new(&config)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .with_context(|| format!("reading the secret holding {what} ({arn})"))?;
    let value = secret.secret_string().with_context(|| format!("the secret holding {what} has no string value"))?;
    Ok(SecretString::from(value.to_owned()))
}

/// Copies the caller's address from the Lambda request context, where the routes look for it.
async fn source_ip(mut request: Request, next: Next) -> Response {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    let ip = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.clone(),
        _ => None,
    };
    if let Some(ip) = ip.and_then(|ip| ip.parse().ok()) {
        request.extensions_mut().insert(SourceIp(ip));
    }
    next.run(request).await
}

/// Runs an HTTP function serving `routes` behind the HTTP API, each response buffered. Its
/// `/openapi.json` and `/docs` describe the whole HTTP API, whichever function answers them.
pub async fn run_http_function(routes: OpenApiRouter<AppState>) -> Result<(), lambda_http::Error> {
    lambda_http::run(http_function_app(routes).await?).await
}

/// Runs an HTTP function serving `routes` through Lambda response streaming, behind a function URL
/// in `RESPONSE_STREAM` mode: a body reaches the client as it is written, which is what makes
/// `POST /api/chat/deep/stream` stream on AWS (an HTTP API buffers every response).
pub async fn run_streaming_http_function(routes: OpenApiRouter<AppState>) -> Result<(), lambda_http::Error> {
    lambda_http::run_with_streaming_response(http_function_app(routes).await?).await
}

async fn http_function_app(routes: OpenApiRouter<AppState>) -> anyhow::Result<axum::Router> {
    let host = CloudHost::from_env().await?;
    let documented = http::openapi_document(http::all_routes());
    Ok(http::into_app_documenting(routes, documented, host.state).layer(from_fn(source_ip)))
}

/// Runs `tributary-ws`.
pub async fn run_websocket_function() -> Result<(), lambda_runtime::Error> {
    let host = Arc::new(CloudHost::from_env().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
        let host = host.clone();
        async move { Ok::<_, lambda_runtime::Error>(websocket::handle(&host.state, &host.broadcaster, event.payload).await) }
    }))
    .await
}

/// Runs `tributary-stats` (any event triggers a run; EventBridge sends a scheduled one each minute).
pub async fn run_stats_function() -> Result<(), lambda_runtime::Error> {
    let host = Arc::new(CloudHost::from_env().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let host = host.clone();
        async move {
            let deadline = deadline_of(&event.context);
            let run = stats::run(&host.state, &host.broadcaster, deadline).await;
            Ok::<_, lambda_runtime::Error>(serde_json::to_value(run)?)
        }
    }))
    .await
}

/// The invocation's deadline as an `Instant`. Lambda sends an epoch time in milliseconds; a value
/// that cannot be one (before 2001) is read as a duration, which is what local emulators send;
/// none at all means a minute.
fn deadline_of(context: &lambda_runtime::Context) -> tokio::time::Instant {
    const EPOCH_MS_2001: u64 = 978_307_200_000;
    let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let remaining = match context.deadline {
        0 => Duration::from_secs(60),
        relative if relative < EPOCH_MS_2001 => Duration::from_millis(relative),
        deadline => Duration::from_millis(deadline.saturating_sub(now_ms)),
    }
    .min(Duration::from_secs(15 * 60));
    tracing::debug!(remaining_ms = remaining.as_millis() as u64, "invocation deadline");
    tokio::time::Instant::now() + remaining
}
