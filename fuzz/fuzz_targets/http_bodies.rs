//! Fuzz target `http_bodies`: arbitrary bytes as the body of a request to the real axum app (every
//! core route and the shared middleware, over a SQLite store in a temporary folder), sent in-process
//! with `tower::ServiceExt::oneshot`, as the node would pass it on from a socket.
//!
//! Input: the first byte picks the route (see [`ROUTES`]); the rest is the body: JSON for the chat
//! modes (the SSE stream included), the JSON ingest route, the activity route and the admin
//! broadcast; a `multipart/form-data` body (boundary `fuzz`) for the upload route; and, for the two
//! read routes that take text from users, the query string of a search and the node reference of a
//! lineage lookup. The store keeps what earlier inputs ingested, so chat, search and lineage inputs
//! meet a growing graph.
//!
//! Checked, besides "no panic" (libFuzzer aborts on any panic, even one the middleware would turn
//! into a 500): no answer is a 5xx (the store is local and the chat provider is the extractive one,
//! so no dependency can be down); every error has the contract's shape; a 200 has its route's shape:
//! an ingestion result whose files failed only for reasons of their own; a chat answer whose
//! `graph_data`, like a lineage answer, has every edge between two of its nodes (and a lineage
//! answer has its root among them); search results in score order; and an SSE stream of JSON frames
//! from `start` to `done` without an `error` frame.

#![no_main]

use axum::body::Body;
use http::{Method, Request, header};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower::ServiceExt;

/// How the fuzz input becomes the request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A JSON body, answered with JSON.
    Json,
    /// A JSON body, answered with Server-Sent Events.
    JsonStream,
    /// A JSON body with the admin token.
    AdminJson,
    /// A `multipart/form-data` body with boundary `fuzz`.
    Multipart,
    /// Appended to the path as a query string (bytes a URI cannot hold are percent-encoded).
    Query,
    /// Percent-encoded as the last path segment; anything after a `?` is the query string.
    Segment,
}

const ROUTES: [(Method, &str, Shape); 12] = [
    (Method::POST, "/api/chat/text", Shape::Json),
    (Method::POST, "/api/chat/semantic", Shape::Json),
    (Method::POST, "/api/chat/graph", Shape::Json),
    (Method::POST, "/api/chat/deep", Shape::Json),
    (Method::POST, "/api/chat/deep/stream", Shape::JsonStream),
    (Method::POST, "/api/chat/title", Shape::Json),
    (Method::POST, "/api/v1/ingest", Shape::Json),
    (Method::POST, "/api/v1/files/upload", Shape::Multipart),
    (Method::POST, "/api/v1/activity", Shape::Json),
    (Method::POST, "/admin/broadcast", Shape::AdminJson),
    (Method::GET, "/api/v1/search?", Shape::Query),
    (Method::GET, "/api/v1/lineage/", Shape::Segment),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let (method, path, shape) = &ROUTES[usize::from(selector) % ROUTES.len()];
    let Some(request) = request(method.clone(), path, *shape, body) else { return };
    let route = request.uri().to_string();

    let (status, content_type, answer) = tributary_fuzz::block_on(async {
        let response = tributary_fuzz::app().oneshot(request).await.expect("the router never fails");
        let status = response.status().as_u16();
        let content_type =
            response.headers().get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned();
        let answer = response.into_body().collect().await.expect("a readable response body").to_bytes();
        (status, content_type, answer)
    });

    assert!(status < 500, "{method} {route} answered {status}: {}", String::from_utf8_lossy(&answer));
    if status >= 400 {
        tributary_fuzz::assert_error_shape(&route, status, &answer);
        return;
    }
    match (*shape, *path) {
        (Shape::JsonStream, _) => check_stream(&route, &content_type, &answer),
        (_, "/api/v1/ingest" | "/api/v1/files/upload") => check_ingestion(&route, &answer),
        (_, path) if path.starts_with("/api/chat/") && path != "/api/chat/title" => {
            let answer = json(&route, &answer);
            assert!(answer["response"].is_string(), "{route}: no `response`: {answer}");
            if !answer["graph_data"].is_null() {
                check_subgraph(&route, &answer["graph_data"]);
            }
        }
        (Shape::Segment, _) => {
            let lineage = json(&route, &answer);
            check_subgraph(&route, &lineage);
            let root = lineage["root"]["id"].as_str().unwrap_or_else(|| panic!("{route}: no root id: {lineage}"));
            assert!(
                lineage["nodes"].as_array().is_some_and(|nodes| nodes.iter().any(|node| node["id"] == root)),
                "{route}: the root {root} is not among the nodes"
            );
        }
        (Shape::Query, _) => {
            // Definitions of what the query names come first (docs/api.md, Search), so scores fall
            // within each object's statements of one sort (definitions, or the others), not overall.
            let found = json(&route, &answer);
            let mut last: std::collections::HashMap<(String, bool), f64> = std::collections::HashMap::new();
            for result in found["results"].as_array().unwrap_or_else(|| panic!("{route}: no `results`: {found}")) {
                let score = result["score"].as_f64().unwrap_or_else(|| panic!("{route}: a result without a numeric score: {result}"));
                let object = result["object"].as_str().unwrap_or_default().to_owned();
                let defines = result["statement_kind"].as_str().is_some_and(|kind| kind.starts_with("CREATE"));
                if let Some(before) = last.insert((object, defines), score) {
                    assert!(before >= score, "{route}: results of one object out of order: {found}");
                }
            }
        }
        _ => {
            json(&route, &answer);
        }
    }
});

/// The request for `body` on a route, or `None` when no URI can carry it.
fn request(method: Method, path: &str, shape: Shape, body: &[u8]) -> Option<Request<Body>> {
    let builder = Request::builder().method(method);
    let request = match shape {
        Shape::Json | Shape::JsonStream => {
            builder.uri(path).header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_vec()))
        }
        Shape::AdminJson => builder
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", tributary_fuzz::ADMIN_TOKEN))
            .body(Body::from(body.to_vec())),
        Shape::Multipart => {
            builder.uri(path).header(header::CONTENT_TYPE, "multipart/form-data; boundary=fuzz").body(Body::from(body.to_vec()))
        }
        Shape::Query => builder.uri(format!("{path}{}", encode(body, QUERY_SAFE))).body(Body::empty()),
        Shape::Segment => {
            let (node, query) = match body.iter().position(|&byte| byte == b'?') {
                Some(at) => (&body[..at], &body[at + 1..]),
                None => (body, &b""[..]),
            };
            builder.uri(format!("{path}{}?{}", encode(node, b""), encode(query, QUERY_SAFE))).body(Body::empty())
        }
    };
    request.ok()
}

/// Query-string bytes kept as they are, so the fuzzer can write parameters (`&`, `=`) and escapes.
const QUERY_SAFE: &[u8] = b"&=%+;,:@/!$'()*";

/// `bytes` with everything but unreserved characters and `keep` percent-encoded.
fn encode(bytes: &[u8], keep: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) || keep.contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn json(route: &str, body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|error| panic!("{route}: a 2xx body that is not JSON ({error})"))
}

/// An ingestion answered 200: each file processed, a duplicate, or failed for a reason of its own
/// (never the store's or the parser's).
fn check_ingestion(route: &str, body: &[u8]) {
    let result = json(route, body);
    let files = result["results"].as_array().unwrap_or_else(|| panic!("{route}: no `results`: {result}"));
    for file in files {
        match file["status"].as_str() {
            Some("processed" | "skipped_duplicate") => {}
            Some("failed") => {
                let error = file["error"].as_str().unwrap_or_default();
                assert!(
                    !error.contains("store") && !error.contains("parser failed"),
                    "{route}: a file failed for a reason not its own: {error}"
                );
            }
            other => panic!("{route}: a file with status {other:?}: {result}"),
        }
    }
}

/// A subgraph in an answer (a lineage walk, a chat answer's `graph_data`): every edge joins two of
/// its nodes, which the frontend draws it between.
fn check_subgraph(route: &str, graph: &Value) {
    let nodes = graph["nodes"].as_array().unwrap_or_else(|| panic!("{route}: no `nodes`: {graph}"));
    let ids: std::collections::BTreeSet<&str> = nodes.iter().filter_map(|node| node["id"].as_str()).collect();
    assert_eq!(ids.len(), nodes.len(), "{route}: nodes without an id, or twice: {graph}");
    for edge in graph["edges"].as_array().unwrap_or_else(|| panic!("{route}: no `edges`: {graph}")) {
        for end in ["source", "target"] {
            let id = edge[end].as_str().unwrap_or_default();
            assert!(ids.contains(id), "{route}: edge {} has its {end} {id:?} outside the nodes", edge["id"]);
        }
    }
}

/// A chat stream answered 200: `data:` frames of JSON, `start` first, `done` last, no `error`.
fn check_stream(route: &str, content_type: &str, body: &[u8]) {
    assert!(content_type.starts_with("text/event-stream"), "{route}: a stream of type {content_type:?}");
    let text = String::from_utf8_lossy(body);
    let frames: Vec<Value> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|data| {
            serde_json::from_str(data.trim_start()).unwrap_or_else(|error| panic!("{route}: a frame that is not JSON ({error}): {data}"))
        })
        .collect();
    let types: Vec<&str> = frames.iter().map(|frame| frame["type"].as_str().unwrap_or("?")).collect();
    assert_eq!(types.first(), Some(&"start"), "{route}: frames {types:?}");
    assert_eq!(types.last(), Some(&"done"), "{route}: frames {types:?}: {text}");
    assert!(!types.contains(&"error"), "{route}: an error frame: {text}");
}
