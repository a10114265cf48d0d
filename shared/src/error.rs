//! The contract's error shape, and the error type every route returns.
//!
//! Every error response, whoever produced it (a route, an extractor, the router's 404/405, a body
//! limit, a timeout, a panic), carries the same JSON body:
//! `{"detail", "error", "request_id"}`, plus `"component"` on 5xx and `"errors"` on field problems.
//! Routes return [`ApiError`]; the [`crate::http::middleware::error_envelope`] layer rewrites whatever
//! else reaches the client into that shape. Bodies never carry stack traces or internals: the full
//! context (the error chain) goes to the logs, tied to the same request id.

use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::StoreError;

tokio::task_local! {
    /// The id of the request the current task is serving, set by the error-envelope middleware.
    pub static REQUEST_ID: String;
}

/// The request id of the request being served, or `"unassigned"` outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_else(|_| "unassigned".to_owned())
}

/// One problem with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// Path of the field, dotted (`context.project_id`), or `body` / `query` for the whole input.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Human-readable explanation.
    pub detail: String,
    /// Stable machine-readable code, e.g. `validation_error`, `not_found`, `store_unavailable`.
    pub error: String,
    /// The request id, also sent in the `x-request-id` header and written in the logs.
    pub request_id: String,
    /// What failed, on 5xx: `store`, `llm`, `broadcaster`, `http`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// Field problems, on 400/422.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// What the caller (or operator) can do about it, when we know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Marker left in the extensions of a response rendered from an [`ApiError`], so that the middleware
/// knows the body already has the contract's shape and the activity log can count the error code.
#[derive(Debug, Clone, Copy)]
pub struct RenderedError {
    pub code: &'static str,
}

/// `Retry-After` of a 503 that names no better time: a store or a peer is expected back within seconds.
pub const DEFAULT_RETRY_AFTER_SECONDS: &str = "5";

/// An error a route answers with: a status, a code and a detail for the client, and the cause for
/// the logs. Boxed, so `Result<T, ApiError>` stays small on the happy path.
pub struct ApiError(Box<Details>);

struct Details {
    status: StatusCode,
    code: &'static str,
    detail: String,
    component: Option<&'static str>,
    hint: Option<String>,
    errors: Vec<FieldError>,
    headers: Vec<(HeaderName, HeaderValue)>,
    source: Option<anyhow::Error>,
}

impl std::fmt::Debug for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.0.status)
            .field("code", &self.0.code)
            .field("detail", &self.0.detail)
            .field("component", &self.0.component)
            .field("source", &self.0.source)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.detail)
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source.as_ref().map(|source| source.as_ref() as &(dyn std::error::Error + 'static))
    }
}

impl ApiError {
    /// An error with any status; prefer the named constructors.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError(Box::new(Details {
            status,
            code,
            detail: detail.into(),
            component: None,
            hint: None,
            errors: Vec::new(),
            headers: Vec::new(),
            source: None,
        }))
    }

    /// 400: the request cannot be understood (malformed JSON, an unknown option).
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 422: the request is well-formed but some fields are invalid.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("invalid field `{}`: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        let mut error = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_error", detail);
        error.0.errors = errors;
        error
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 401: credentials are missing or wrong.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
            .with_header(http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    /// 403: the caller may not do this.
    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    /// 413.
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", detail)
    }

    /// 415.
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", detail)
    }

    /// 503: a component we depend on cannot serve right now.
    pub fn unavailable(component: &'static str, code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail).with_component(component)
    }

    /// 500: something of ours failed. The cause is logged, never sent.
    pub fn internal(component: &'static str, source: impl Into<anyhow::Error>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "an internal error occurred; see the logs for this request id")
            .with_component(component)
            .with_source(source)
    }

    pub fn with_component(mut self, component: &'static str) -> Self {
        self.0.component = Some(component);
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.0.hint = Some(hint.into());
        self
    }

    pub fn with_source(mut self, source: impl Into<anyhow::Error>) -> Self {
        self.0.source = Some(source.into());
        self
    }

    /// Adds field problems to a 400 (a 422 gets them from [`ApiError::validation`]).
    pub fn with_field_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.0.errors.extend(errors);
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.push((name, value));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    pub fn code(&self) -> &'static str {
        self.0.code
    }

    pub fn field_errors(&self) -> &[FieldError] {
        &self.0.errors
    }

    /// The body this error renders to, for the request being served.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            detail: self.0.detail.clone(),
            error: self.0.code.to_owned(),
            request_id: current_request_id(),
            component: self.0.component.map(str::to_owned),
            errors: self.0.errors.clone(),
            hint: self.0.hint.clone(),
        }
    }

    fn log(&self, request_id: &str) {
        let details = &self.0;
        let cause = details.source.as_ref().map(|source| format!("{source:#}"));
        if details.status.is_server_error() {
            tracing::error!(
                request_id,
                status = details.status.as_u16(),
                code = details.code,
                component = details.component,
                cause,
                "{}",
                details.detail
            );
        } else {
            tracing::debug!(request_id, status = details.status.as_u16(), code = details.code, "{}", details.detail);
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        self.log(&body.request_id);
        let details = *self.0;
        let mut response = (details.status, axum::Json(body)).into_response();
        for (name, value) in details.headers {
            response.headers_mut().append(name, value);
        }
        // Every 503 says when to come back (the API reference promises it); a site that knows better sets its own.
        if details.status == StatusCode::SERVICE_UNAVAILABLE && !response.headers().contains_key(http::header::RETRY_AFTER) {
            response.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from_static(DEFAULT_RETRY_AFTER_SECONDS));
        }
        response.extensions_mut().insert(RenderedError { code: details.code });
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => {
                ApiError::unavailable("store", "store_unavailable", "the store is unavailable right now; retry shortly").with_source(error)
            }
            StoreError::Corrupt(_) | StoreError::Internal(_) => ApiError::internal("store", error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn render(error: ApiError) -> (StatusCode, ErrorBody) {
        let response = REQUEST_ID.scope("req-1".to_owned(), async { error.into_response() }).await;
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn validation_errors_list_fields_and_carry_the_request_id() {
        let (status, body) = render(ApiError::validation(vec![FieldError::new("query", "must not be empty")])).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body.error, "validation_error");
        assert_eq!(body.request_id, "req-1");
        assert_eq!(body.errors, vec![FieldError::new("query", "must not be empty")]);
        assert_eq!(body.component, None);
    }

    #[tokio::test]
    async fn internal_errors_name_the_component_and_hide_the_cause() {
        let (status, body) = render(ApiError::internal("store", anyhow::anyhow!("disk I/O error at page 7"))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body.component.as_deref(), Some("store"));
        assert!(!body.detail.contains("page 7"), "the cause must not leak: {}", body.detail);
    }
}
