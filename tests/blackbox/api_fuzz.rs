//! The HTTP API against its own OpenAPI document, fuzzed: schemathesis (installed from
//! scripts/requirements.txt into .tools/venv) reads a fresh node's `/openapi.json` and sends
//! generated requests to every operation with every check it has: no 5xx; status codes, content
//! types, headers and bodies as documented (each server-sent event too); requests the document
//! allows are accepted and those it forbids are refused. The number of examples is bounded and the
//! seed fixed, so CI runs the same cases every time; `schemathesis.toml` beside this file holds
//! the settings and says why each exception is there.
//!
//! Then one focused test per problem the fuzzer found, so that each fix holds whatever cases a
//! future schemathesis generates.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{NodeOptions, TestNode};

const ADMIN_TOKEN: &str = "fuzz-admin-token";
/// Examples per operation and phase: about 30 s on two cores, and enough to find what it found.
const MAX_EXAMPLES: u32 = 100;
const SEED: u32 = 1;

/// The schemathesis CLI: on `PATH` (scripts/test puts .tools/venv/bin there), else in the
/// workspace's .tools/venv.
fn schemathesis() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|folder| folder.join("schemathesis"))
        .find(|candidate| candidate.is_file());
    let in_workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/schemathesis");
    on_path.or_else(|| in_workspace.is_file().then_some(in_workspace)).expect(
        "schemathesis is not installed: run ./scripts/test, or `source scripts/lib/tools.sh && ensure_tools` \
         (it installs scripts/requirements.txt into .tools/venv)",
    )
}

/// `METHOD /path` of every operation in an OpenAPI document.
fn operations(api: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (path, item) in api["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            found.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    found
}

/// Long lines cut (a generated body can be megabytes), so a failure's output stays readable.
fn abridged(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    text.lines()
        .map(|line| {
            if line.chars().count() > 2000 { format!("{}… (cut)", line.chars().take(2000).collect::<String>()) } else { line.to_owned() }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn every_operation_answers_as_the_openapi_document_says() {
    // The admin token lets the admin routes' requests through to their validation and their work.
    let node = TestNode::start_with(NodeOptions::default().env("ADMIN_TOKEN", ADMIN_TOKEN)).await;
    let work = tempfile::tempdir().unwrap();
    let junit = work.path().join("schemathesis-junit.xml");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("blackbox/schemathesis.toml");
    let mut command = Command::new(schemathesis());
    command
        // Hypothesis keeps nothing between runs (`--generation-database none`); whatever it writes
        // goes to the temporary folder.
        .current_dir(work.path())
        .arg("--config-file")
        .arg(&config)
        .arg("--no-color")
        .arg("run")
        .arg(node.url("/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
        .args(["--max-examples", &MAX_EXAMPLES.to_string(), "--seed", &SEED.to_string()])
        // One worker: with two, Hypothesis describes strategies by `ast.parse` from two threads at
        // once, which CPython 3.11 does not survive under load ("AST constructor recursion depth
        // mismatch", reported as an inconsistent-results runtime error). It costs no time here.
        .args(["--workers", "1", "--generation-database", "none", "--continue-on-failure"])
        .args(["--report", "junit", "--report-junit-path"])
        .arg(&junit);
    let started = Instant::now();
    let output = command.output().expect("running schemathesis");
    let took = started.elapsed();
    if !output.status.success() {
        let kept = work.keep();
        panic!(
            "schemathesis found problems ({}, after {took:.0?}):\n{:?}\n\n{}\n{}\n\nJUnit report and working folder: {}\nnode logs (last 50 lines):\n{}",
            output.status,
            command,
            abridged(&output.stdout),
            abridged(&output.stderr),
            kept.display(),
            node.logs().lines().rev().take(50).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n"),
        );
    }
    eprintln!("schemathesis passed in {took:.0?}");

    // Every operation was tested but the one left out on purpose (see schemathesis.toml).
    let api: Value = reqwest::get(node.url("/openapi.json")).await.unwrap().json().await.unwrap();
    let mut expected = operations(&api);
    assert!(expected.remove("POST /admin/restart"));
    let report = std::fs::read_to_string(&junit).unwrap();
    let tested: BTreeSet<String> = report
        .split("<testcase name=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|name| *name != "Stateful tests")
        .map(|name| name.replace("&amp;", "&"))
        .collect();
    assert_eq!(tested, expected, "the operations schemathesis tested");
}

async fn post_json(node: &TestNode, path: &str, body: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(node.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

// Found: serde takes a struct from a JSON array of its fields in order, so `["…"]` was answered as
// a question; and serde_json calls a number or `null` where an enum belongs a syntax error, so valid
// JSON got 400 `malformed_json`.
#[tokio::test]
async fn a_body_is_an_object_and_a_wrong_enum_is_a_wrong_shape() {
    let node = TestNode::start_with(NodeOptions::default().env("ADMIN_TOKEN", ADMIN_TOKEN)).await;
    for (path, body, field) in [
        ("/api/chat/text", r#"["what feeds gold.sales?"]"#, "body"),
        ("/api/v1/activity", r#"["page_view"]"#, "body"),
        ("/api/chat/graph", r#"{"query": "what feeds gold.sales?", "context": ["default"]}"#, "context"),
        ("/api/v1/ingest", r#"{"files": [["a.sql", "SELECT 1"]]}"#, "files[0]"),
        ("/admin/broadcast", r#"{"type": 1, "data": {}}"#, "type"),
        ("/admin/broadcast", r#"{"type": null, "data": {}}"#, "type"),
        ("/admin/broadcast", r#"[null, null]"#, "body"),
    ] {
        let (status, error) = post_json(&node, path, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "POST {path} {body}: {error}");
        assert_eq!(error["error"], "validation_error");
        assert_eq!(error["errors"][0]["field"], field, "POST {path} {body}: {error}");
    }
    // Malformed JSON is still a 400.
    let (status, error) = post_json(&node, "/admin/broadcast", r#"{"type": notification}"#).await;
    assert_eq!((status, error["error"].as_str()), (StatusCode::BAD_REQUEST, Some("malformed_json")));
}

// Found: an operator's `error` message with an object as its `message` was broadcast as is, though
// dashboards show it as text.
#[tokio::test]
async fn an_operator_error_message_is_text() {
    let node = TestNode::start_with(NodeOptions::default().env("ADMIN_TOKEN", ADMIN_TOKEN)).await;
    let error = |message: Value| {
        json!({"type": "error", "data": {"type": "maintenance", "severity": "info", "component": "store", "message": message}}).to_string()
    };
    let (status, body) = post_json(&node, "/admin/broadcast", &error(json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "data.message");
    let (status, body) = post_json(&node, "/admin/broadcast", &error(json!("back in five minutes"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

// Found: a post without data to an unknown connection was 410, though the data is required (as
// API Gateway's `Data` is): the request is checked before the connection is looked up.
#[tokio::test]
async fn a_post_to_a_connection_needs_data() {
    let node = TestNode::start_with(NodeOptions::default().env("CONNECTIONS_TOKEN", "credential")).await;
    let client = reqwest::Client::new();
    let empty = client.post(node.url("/@connections/no-such-connection")).header("x-api-key", "credential").send().await.unwrap();
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    assert_eq!(empty.headers()["x-amzn-errortype"], "BadRequestException");
    let body: Value = empty.json().await.unwrap();
    assert_eq!(body["error"], "bad_request");
    let unknown =
        client.post(node.url("/@connections/no-such-connection")).header("x-api-key", "credential").body("{}").send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::GONE);
}

/// The schema of parameter `name` of `method path`.
fn parameter<'a>(api: &'a Value, method: &str, path: &str, name: &str) -> &'a Value {
    let parameters = api["paths"][path][method]["parameters"].as_array().unwrap_or_else(|| panic!("{method} {path} has parameters"));
    &parameters.iter().find(|parameter| parameter["name"] == name).unwrap_or_else(|| panic!("{name} of {method} {path}"))["schema"]
}

// Found: the document said nothing of the bounds the routes enforce (so requests it allowed, such
// as `limit=0`, got 422): each bound is documented, and the route answers by it.
#[tokio::test]
async fn the_document_states_the_bounds_the_routes_enforce() {
    let node = TestNode::start().await;
    let api: Value = reqwest::get(node.url("/openapi.json")).await.unwrap().json().await.unwrap();
    for (path, name, min, max, rest) in [
        ("/api/v1/activity/recent", "limit", 1, 500, ""),
        ("/api/v1/metrics/events", "limit", 1, 1000, ""),
        ("/api/v1/files", "limit", 1, 1000, ""),
        ("/api/v1/search", "limit", 1, 100, "&q=orders"),
        ("/api/v1/lineage/{node}", "depth", 1, 20, ""),
        ("/api/v1/files/{file_id}/warnings", "limit", 1, 1000, ""),
    ] {
        let schema = parameter(&api, "get", path, name);
        assert_eq!((schema["minimum"].as_i64(), schema["maximum"].as_i64()), (Some(min), Some(max)), "{name} of {path}");
        let url = |value: i64| {
            node.url(&format!("{}?{name}={value}{rest}", path.replace("{node}", "raw.orders").replace("{file_id}", "no-such-file")))
        };
        for (value, valid) in [(min - 1, false), (min, true), (max, true), (max + 1, false)] {
            let status = reqwest::get(url(value)).await.unwrap().status();
            // The lineage of an unknown node (the warnings of an unknown file) is a 404: what counts is
            // that the bound is not refused.
            assert_eq!(status != StatusCode::UNPROCESSABLE_ENTITY, valid, "{name}={value} on {path}: {status}");
        }
    }
    let project = "^[A-Za-z0-9_.-]{1,64}$";
    for (path, name) in [
        ("/api/v1/files", "project_id"),
        ("/api/v1/search", "project_id"),
        ("/api/v1/lineage/{node}", "project_id"),
        ("/api/v1/files/{file_id}/warnings", "project_id"),
    ] {
        assert_eq!(parameter(&api, "get", path, name)["pattern"], project, "{name} of {path}");
    }
    assert_eq!(parameter(&api, "get", "/api/v1/files/{file_id}/warnings", "file_id")["pattern"], "^[A-Za-z0-9_.-]{1,128}$");
    assert_eq!(parameter(&api, "get", "/api/v1/files/{file_id}/warnings", "offset")["minimum"], 0);
    let schemas = &api["components"]["schemas"];
    assert_eq!(schemas["IngestBody"]["properties"]["project_id"]["pattern"], project);
    assert_eq!(schemas["UploadForm"]["properties"]["project_id"]["pattern"], project);
    assert_eq!(schemas["ChatContext"]["properties"]["project_id"]["pattern"], project);
    assert_eq!(schemas["IngestBody"]["properties"]["files"]["minItems"], 1);
    assert_eq!(schemas["IngestBody"]["properties"]["files"]["maxItems"], 500);
    assert_eq!(schemas["ClientEvent"]["properties"]["type"]["pattern"], "^[A-Za-z0-9_.:-]{1,64}$");
    assert_eq!(schemas["ChatRequest"]["properties"]["session_id"]["pattern"], "^[A-Za-z0-9_.:-]{1,128}$");
    assert_eq!(parameter(&api, "delete", "/api/chat/session/{id}", "id")["pattern"], "^[A-Za-z0-9_.:-]{1,128}$");
    assert_eq!(schemas["ChatRequest"]["properties"]["history"]["maxItems"], 50);

    // Every dialect name the document lists is one the route takes.
    let dialects = schemas["IngestBody"]["properties"]["dialect"]["enum"].as_array().unwrap();
    assert!(dialects.len() > 14, "{dialects:?}");
    for dialect in dialects {
        let body = json!({"dialect": dialect, "files": [{"filename": "a.sql", "content": "CREATE TABLE raw.orders (id INT);"}]});
        let response = reqwest::Client::new().post(node.url("/api/v1/ingest")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "dialect {dialect}");
    }
    // A file name is its last part, which may not be blank.
    let body = json!({"files": [{"filename": "models/", "content": "SELECT 1"}]});
    let response = reqwest::Client::new().post(node.url("/api/v1/ingest")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The pattern reads the whole last part (from the start or a separator to the end): not blank,
    // and no control characters in it.
    let filename = schemas["JsonFile"]["properties"]["filename"]["pattern"].as_str().unwrap();
    assert!(filename.starts_with(r"(?:^|[/\\])") && filename.ends_with(r"\u001f\u007f-\u009f/\\]*$"), "{filename}");
}

// Found: refusals the routes answer were missing from the document: 415 and 413 on the JSON
// routes, 400 (malformed JSON) on the broadcast, 400 on the WebSocket aliases.
#[tokio::test]
async fn every_refusal_a_route_answers_is_documented() {
    let node = TestNode::start().await;
    let api: Value = reqwest::get(node.url("/openapi.json")).await.unwrap().json().await.unwrap();
    let mut json_routes = 0;
    for (path, item) in api["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation["requestBody"]["content"]["application/json"].is_object() {
                json_routes += 1;
                for status in ["400", "413", "415", "422"] {
                    assert!(operation["responses"][status].is_object(), "{method} {path} does not document {status}");
                }
                // A request without a JSON content type is refused so, in the contract's shape.
                let response =
                    reqwest::Client::new().request(method.to_uppercase().parse().unwrap(), node.url(path)).body("{}").send().await.unwrap();
                assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{method} {path}");
            }
        }
    }
    assert_eq!(json_routes, 9, "the JSON routes: activity, ingest, broadcast and six chat routes");
    for path in ["/api/v1/ws/dashboard", "/admin/ws/dashboard", "/ws/dashboard"] {
        assert!(api["paths"][path]["get"]["responses"]["400"].is_object(), "GET {path} does not document 400");
        let response = reqwest::get(node.url(path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "a plain GET {path}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string() && body["request_id"].is_string(), "{body}");
    }
}

// Found: the stream's document described each event as a frame, where an event is
// `{data, event, id, retry}` and its `data` holds the frame as JSON (OpenAPI 3.2's reading of
// `text/event-stream`, which schemathesis checks event by event).
#[tokio::test]
async fn the_chat_stream_is_documented_event_by_event() {
    let node = TestNode::start().await;
    let api: Value = reqwest::get(node.url("/openapi.json")).await.unwrap().json().await.unwrap();
    let stream = &api["paths"]["/api/chat/deep/stream"]["post"]["responses"]["200"]["content"]["text/event-stream"]["schema"];
    assert_eq!(stream["$ref"], "#/components/schemas/StreamEvent");
    let data = &api["components"]["schemas"]["StreamEvent"]["properties"]["data"];
    assert_eq!(data["type"], "string");
    assert_eq!(data["contentMediaType"], "application/json");
    assert_eq!(data["contentSchema"]["$ref"], "#/components/schemas/StreamFrame");
    assert!(api["components"]["schemas"]["StreamFrame"]["oneOf"].is_array());

    let response = reqwest::Client::new()
        .post(node.url("/api/chat/deep/stream"))
        .json(&json!({"query": "what is in the database?"}))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    let frames: Vec<Value> =
        text.lines().filter_map(|line| line.strip_prefix("data: ")).map(|data| serde_json::from_str(data).unwrap()).collect();
    let kinds: Vec<&str> = frames.iter().map(|frame| frame["type"].as_str().unwrap()).collect();
    assert_eq!((kinds.first(), kinds.last()), (Some(&"start"), Some(&"done")), "{text}");
}
