//! The shared middleware, driven in-process: failures no real route can be made to produce on
//! demand (a panic, a handler outliving the timeout) still leave in the contract's shape.

use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use utoipa_axum::router::OpenApiRouter;

use super::{AppState, into_app};
use crate::config::Settings;

async fn boom() -> &'static str {
    panic!("secret internals at src/lib.rs:42")
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "late"
}

async fn call(path: &str) -> (StatusCode, Value) {
    let folder = tempfile::tempdir().unwrap();
    let db = folder.path().join("t.db");
    let settings = Settings::from_args(["--db", db.to_str().unwrap(), "--http-request-timeout-seconds", "1"]).unwrap();
    let state = AppState::standalone(settings).await.unwrap();
    let routes = OpenApiRouter::new().route("/boom", get(boom)).route("/slow", get(slow));
    let response = into_app(routes, state).oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn a_panic_is_a_500_naming_the_component_and_hiding_the_cause() {
    let (status, body) = call("/boom").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"], "internal_error");
    assert_eq!(body["component"], "http");
    assert!(body["request_id"].as_str().is_some_and(|id| id.len() == 36));
    assert!(!body.to_string().contains("secret internals"), "{body}");
}

#[tokio::test]
async fn a_request_past_the_timeout_is_a_503_timeout() {
    let (status, body) = call("/slow").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "timeout");
    assert_eq!(body["component"], "http");
}
