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

/// Every `pattern` string in a JSON document.
fn patterns(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("pattern", Value::String(pattern)) => found.push(pattern.clone()),
                    _ => patterns(value, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| patterns(item, found)),
        _ => {}
    }
}

/// The characters a regex character class written with `\t`, `\n`, `\r`, `\uXXXX`, plain
/// characters and `a-b` ranges stands for.
fn class_characters(class: &str) -> std::collections::BTreeSet<char> {
    let mut rest = class.chars().peekable();
    let next = |rest: &mut std::iter::Peekable<std::str::Chars>| -> Option<char> {
        match rest.next()? {
            '\\' => match rest.next()? {
                '\\' => Some('\\'),
                't' => Some('\t'),
                'n' => Some('\n'),
                'r' => Some('\r'),
                'u' => char::from_u32(u32::from_str_radix(&rest.by_ref().take(4).collect::<String>(), 16).ok()?),
                other => panic!("unexpected escape \\{other} in {class}"),
            },
            plain => Some(plain),
        }
    };
    let mut characters = std::collections::BTreeSet::new();
    while let Some(first) = next(&mut rest) {
        if rest.peek() == Some(&'-') {
            rest.next();
            let last = next(&mut rest).expect("a range's end");
            characters.extend(first..=last);
        } else {
            characters.insert(first);
        }
    }
    characters
}

// Found by schemathesis (tests/blackbox/api_fuzz.rs): `\S` in a pattern means different things to
// the fuzzer's generator, JSON Schema validators and Rust (U+0085 is whitespace to `str::trim` and
// not to ECMAScript), so "not blank" is spelled out as the characters `str::trim` removes.
#[test]
fn the_documents_not_blank_patterns_exclude_exactly_what_trim_removes() {
    let api = serde_json::to_value(super::openapi_document(super::all_routes())).unwrap();
    let mut found = Vec::new();
    patterns(&api, &mut found);
    let not_blank: Vec<&String> = found.iter().filter(|pattern| pattern.contains(r"\u3000")).collect();
    // `q`, `query`, `filename`, `content` and the upload's `files`.
    assert_eq!(not_blank.len(), 5, "{found:?}");
    let whitespace: std::collections::BTreeSet<char> = (0..=0x10ffff).filter_map(char::from_u32).filter(|c| c.is_whitespace()).collect();
    for pattern in not_blank {
        let start = pattern[..pattern.find(r"\u3000").unwrap()].rfind("[^").unwrap() + 2;
        let class = pattern[start..].split_once(']').unwrap().0;
        let mut excluded = class_characters(class);
        // The SQL text patterns also exclude NUL, everywhere; a file name's, the path separators
        // before its last part, and control characters anywhere in it.
        if pattern.starts_with(r"^[^\u0000]*") {
            assert!(excluded.remove(&'\0'), "{pattern}");
        }
        if pattern.ends_with(r"/\\]*$") {
            assert!(excluded.remove(&'/') && excluded.remove(&'\\'), "{pattern}");
            let controls: Vec<char> = (0..=0x10ffff).filter_map(char::from_u32).filter(|c| c.is_control() && !c.is_whitespace()).collect();
            for control in controls {
                assert!(excluded.remove(&control), "{pattern} lets {control:?} start a file name");
            }
        }
        assert_eq!(excluded, whitespace, "{pattern}");
    }
}
