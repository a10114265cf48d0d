//! A stand-in for the AWS Lambda API (the one AWS service this machine has no local server for):
//! the two calls a cloud restart makes, `GetFunctionConfiguration` and
//! `UpdateFunctionConfiguration`, on functions the test declares, with Lambda's revision check
//! (an update naming a stale `RevisionId` fails with `PreconditionFailedException`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

/// A function's variables and revision.
#[derive(Clone, Default)]
struct Function {
    variables: BTreeMap<String, String>,
    revision: u64,
}

type Functions = Arc<Mutex<HashMap<String, Function>>>;

/// A local Lambda API holding functions' environment variables.
pub struct LambdaStandIn {
    pub endpoint: String,
    functions: Functions,
    server: tokio::task::JoinHandle<()>,
}

impl LambdaStandIn {
    /// Serves `functions`, each with its environment.
    pub async fn start(functions: &[(&str, &[(&str, &str)])]) -> LambdaStandIn {
        let state: Functions = Arc::new(Mutex::new(
            functions
                .iter()
                .map(|(name, variables)| {
                    let variables = variables.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
                    (name.to_string(), Function { variables, revision: 1 })
                })
                .collect(),
        ));
        let app = Router::new().route("/2015-03-31/functions/{name}/configuration", get(read).put(update)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        LambdaStandIn { endpoint, functions: state, server }
    }

    /// A function's environment variables now.
    pub fn variables(&self, function: &str) -> BTreeMap<String, String> {
        self.functions.lock().unwrap().get(function).map(|function| function.variables.clone()).unwrap_or_default()
    }
}

impl Drop for LambdaStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn configuration(name: &str, function: &Function) -> Value {
    json!({
        "FunctionName": name,
        "Runtime": "provided.al2023",
        "RevisionId": function.revision.to_string(),
        "Environment": { "Variables": function.variables },
    })
}

fn not_found(name: &str) -> (StatusCode, [(&'static str, &'static str); 1], axum::Json<Value>) {
    (
        StatusCode::NOT_FOUND,
        [("x-amzn-errortype", "ResourceNotFoundException")],
        axum::Json(json!({ "Type": "User", "message": format!("Function not found: {name}") })),
    )
}

async fn read(State(functions): State<Functions>, Path(name): Path<String>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match functions.lock().unwrap().get(&name) {
        Some(function) => axum::Json(configuration(&name, function)).into_response(),
        None => not_found(&name).into_response(),
    }
}

async fn update(State(functions): State<Functions>, Path(name): Path<String>, body: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    let request: Value = serde_json::from_str(&body).unwrap_or_default();
    let mut functions = functions.lock().unwrap();
    let Some(function) = functions.get_mut(&name) else { return not_found(&name).into_response() };
    if let Some(revision) = request["RevisionId"].as_str()
        && revision != function.revision.to_string()
    {
        let body = json!({ "Type": "User", "message": "The Revision Id provided does not match the latest Revision Id." });
        return (StatusCode::PRECONDITION_FAILED, [("x-amzn-errortype", "PreconditionFailedException")], axum::Json(body)).into_response();
    }
    if let Some(new) = request["Environment"]["Variables"].as_object() {
        function.variables = new.iter().map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_owned())).collect();
    }
    function.revision += 1;
    axum::Json(configuration(&name, function)).into_response()
}
