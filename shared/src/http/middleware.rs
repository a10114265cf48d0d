//! The middleware every host applies, outermost first:
//!
//! 1. request id: kept from `x-request-id` when it is sane, else a new UUID; echoed in the response;
//! 2. tracing: one span per request, carrying the request id;
//! 3. [`after_response`]: runs work a route deferred until its answer is sent (restart);
//! 4. [`record_activity`]: every request becomes an activity event;
//! 5. [`error_envelope`]: every error leaves in the contract's shape;
//! 6. panic catching (500, component `http`), CORS, the request timeout (503), the URL and header
//!    limits (414, 431) and the body limit (413).

use std::any::Any;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use http_body::Frame;
use tower::{Layer, ServiceExt};
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use super::AppState;
use crate::activity::ActivityEvent;
use crate::error::{ApiError, REQUEST_ID, RenderedError};
use crate::restart::AfterResponse;

const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps `router` in the shared middleware.
pub fn apply(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    let settings = &state.settings;
    router
        .layer(from_fn_with_state(
            BodyLimits {
                general: usize::try_from(settings.http_body_limit_bytes).unwrap_or(usize::MAX),
                upload: usize::try_from(settings.ingest_max_request_bytes).unwrap_or(usize::MAX),
            },
            limit_body,
        ))
        .layer(from_fn(limit_request_head))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, settings.request_timeout()))
        .layer(from_fn_with_state(cors(state), cors_for_browsers))
        .layer(from_fn(preflight_no_content))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn(error_envelope))
        .layer(from_fn_with_state(state.clone(), record_activity))
        .layer(from_fn(after_response))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let request_id = request.headers().get(&REQUEST_ID_HEADER).and_then(|value| value.to_str().ok()).unwrap_or_default();
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID_HEADER))
        .layer(SetRequestIdLayer::new(REQUEST_ID_HEADER, SaneRequestId))
        .layer(from_fn(drop_insane_request_id))
}

/// A client's `x-request-id` is kept only if it is short and plain; otherwise we assign one.
async fn drop_insane_request_id(mut request: Request, next: Next) -> Response {
    let sane = request.headers().get(&REQUEST_ID_HEADER).and_then(|value| value.to_str().ok()).is_some_and(|id| {
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-_.:".contains(&byte))
    });
    if !sane {
        request.headers_mut().remove(&REQUEST_ID_HEADER);
    }
    next.run(request).await
}

#[derive(Clone, Copy)]
struct SaneRequestId;

impl MakeRequestId for SaneRequestId {
    fn make_request_id<B>(&mut self, _request: &http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).ok().map(RequestId::new)
    }
}

fn cors(state: &AppState) -> CorsLayer {
    let origins = state.settings.allowed_origins.clone();
    let allow = AllowOrigin::predicate(move |origin, parts| {
        let host = parts.headers.get(header::HOST).and_then(|value| value.to_str().ok());
        origin.to_str().is_ok_and(|origin| origins.allows(origin, host))
    });
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, HeaderName::from_static("x-api-key"), REQUEST_ID_HEADER])
        .expose_headers([REQUEST_ID_HEADER, header::RETRY_AFTER])
        .max_age(Duration::from_secs(600))
}

/// CORS applies to requests that carry an `Origin` (browsers); the rest, a plain `OPTIONS` among
/// them, reach the routes untouched.
async fn cors_for_browsers(State(cors): State<CorsLayer>, request: Request, next: Next) -> Response {
    if request.headers().contains_key(header::ORIGIN) {
        match cors.layer(next).oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    } else {
        next.run(request).await
    }
}

/// Preflight answers carry no content, so they say 204 rather than 200.
async fn preflight_no_content(request: Request, next: Next) -> Response {
    let is_options = request.method() == Method::OPTIONS;
    let mut response = next.run(request).await;
    if is_options && response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
        .unwrap_or_else(|| "unknown panic".to_owned());
    ApiError::internal("http", anyhow::anyhow!("handler panicked: {message}")).into_response()
}

/// The longest request target (path and query) a route reads: no route needs more, and API Gateway
/// refuses longer ones too.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Request headers accepted in number; browsers send about 20.
pub const MAX_HEADERS: usize = 100;
/// Request header bytes accepted (names and values); browsers send 1-2 KiB. hyper itself refuses
/// a head over about 400 KiB before it reaches the routes.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses a request target over [`MAX_URI_BYTES`] (414) and headers over [`MAX_HEADERS`] or
/// [`MAX_HEADER_BYTES`] (431), in the contract's shape, before any route work.
async fn limit_request_head(request: Request, next: Next) -> Response {
    let target = request.uri().path_and_query().map_or(0, |target| target.as_str().len());
    if target > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request target is {target} bytes; at most {MAX_URI_BYTES} are accepted"),
        )
        .into_response();
    }
    let headers = request.headers();
    let bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request has {} headers of {bytes} bytes; at most {MAX_HEADERS} headers of {MAX_HEADER_BYTES} bytes are accepted",
                headers.len()
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// Paths whose bodies may reach `INGEST_MAX_REQUEST_BYTES` (uploads of SQL files); every other
/// route takes at most `HTTP_BODY_LIMIT_BYTES`.
pub const UPLOAD_PATHS: &[&str] = &["/api/v1/files/upload", "/api/v1/ingest"];

/// Paths that take far less than `HTTP_BODY_LIMIT_BYTES`, with their own limit: a body declared
/// larger is refused from its headers, before any of it is read.
pub const SMALL_BODY_PATHS: &[(&str, usize)] = &[("/api/v1/activity", crate::http::routes::activity::CLIENT_EVENT_MAX_BYTES)];

#[derive(Debug, Clone, Copy)]
struct BodyLimits {
    general: usize,
    upload: usize,
}

/// Refuses a body declared larger than the route's limit (413) and caps one that is not declared,
/// so extractors stop reading at the limit and answer 413 too.
async fn limit_body(State(limits): State<BodyLimits>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let limit = if UPLOAD_PATHS.contains(&path) {
        limits.upload
    } else {
        let small = SMALL_BODY_PATHS.iter().find(|(small, _)| *small == path).map(|(_, limit)| *limit);
        small.map_or(limits.general, |small| small.min(limits.general))
    };
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return ApiError::payload_too_large(format!("the request body is larger than the {limit} bytes this route accepts"))
            .into_response();
    }
    let (parts, body) = request.into_parts();
    next.run(Request::from_parts(parts, axum::body::Body::new(http_body_util::Limited::new(body, limit)))).await
}

/// Sets the request id for [`ApiError`] bodies, and rewrites any error response that is neither an
/// [`ApiError`] nor a route's own JSON (the router's 405, a body limit, a timeout) into the
/// contract's shape.
pub async fn error_envelope(request: Request, next: Next) -> Response {
    let request_id = request.headers().get(&REQUEST_ID_HEADER).and_then(|value| value.to_str().ok()).unwrap_or("unassigned").to_owned();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    REQUEST_ID
        .scope(request_id, async move {
            let response = next.run(request).await;
            let status = response.status();
            let is_error = status.is_client_error() || status.is_server_error();
            // A route's own JSON answer (a degraded health report, say) is left as it is.
            let is_json = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|content_type| content_type.starts_with("application/json"));
            if is_error && !is_json && response.extensions().get::<RenderedError>().is_none() {
                rewrite_error(response, &method, &path).await
            } else {
                response
            }
        })
        .await
}

async fn rewrite_error(response: Response, method: &Method, path: &str) -> Response {
    let (parts, body) = response.into_parts();
    let status = parts.status;
    // Plain-text 4xx bodies from axum's extractors explain the problem well; keep them, briefly.
    let is_text =
        parts.headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).is_some_and(|ct| ct.starts_with("text/plain"));
    let original = if status.is_client_error() && is_text {
        axum::body::to_bytes(body, 1024).await.ok().and_then(|bytes| String::from_utf8(bytes.to_vec()).ok()).filter(|text| !text.is_empty())
    } else {
        None
    };
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::not_found(format!("no route matches {method} {path}")),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(status, "method_not_allowed", format!("{method} is not allowed on {path}")),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large("the request body is larger than this route accepts"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::unsupported_media_type(original.unwrap_or_else(|| "unsupported content type".into()))
        }
        StatusCode::SERVICE_UNAVAILABLE => ApiError::unavailable("http", "timeout", "the request took too long and was abandoned")
            .with_hint("retry later, or narrow the request"),
        status if status.is_server_error() => ApiError::internal("http", anyhow::anyhow!("{status} from an inner layer")),
        status => {
            ApiError::new(status, "bad_request", original.unwrap_or_else(|| status.canonical_reason().unwrap_or("bad request").into()))
        }
    };
    let mut rewritten = error.into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().append(name.clone(), value.clone());
        }
    }
    rewritten
}

/// Records every request as an activity event, under its route template (not its raw path, so the
/// endpoint counters stay bounded).
pub async fn record_activity(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let endpoint = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_owned()).unwrap_or_else(|| "unmatched".to_owned());
    let request_id = request.headers().get(&REQUEST_ID_HEADER).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let response = next.run(request).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut event = ActivityEvent::http_request(method.as_str(), endpoint, response.status().as_u16(), latency_ms);
    if let Some(request_id) = request_id {
        event = event.with_metadata("request_id", request_id);
    }
    if let Some(rendered) = response.extensions().get::<RenderedError>() {
        event = event.with_metadata("error", rendered.code);
    }
    state.activity.record(event).await;
    response
}

/// Work a route wants done once its response is sent. Insert with [`defer_after_response`].
#[derive(Clone)]
struct AfterResponseHook(Arc<Mutex<Option<AfterResponse>>>);

/// Makes `hook` run once `response` has been handed to the client (or the client went away).
pub fn defer_after_response(response: &mut Response, hook: AfterResponse) {
    response.extensions_mut().insert(AfterResponseHook(Arc::new(Mutex::new(Some(hook)))));
}

/// Runs deferred work when the response body ends.
pub async fn after_response(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let hook = response.extensions_mut().remove::<AfterResponseHook>().and_then(|hook| hook.0.lock().ok().and_then(|mut slot| slot.take()));
    match hook {
        None => response,
        Some(hook) => {
            let (parts, body) = response.into_parts();
            Response::from_parts(parts, Body::new(NotifyOnEnd { inner: body, hook: Some(hook) }))
        }
    }
}

/// A body that runs a hook when it has been read to the end, or dropped.
struct NotifyOnEnd {
    inner: Body,
    hook: Option<AfterResponse>,
}

impl NotifyOnEnd {
    fn fire(&mut self) {
        if let Some(hook) = self.hook.take() {
            hook();
        }
    }
}

impl http_body::Body for NotifyOnEnd {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.fire();
        }
        polled
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for NotifyOnEnd {
    fn drop(&mut self) {
        self.fire();
    }
}
