//! A stand-in for the AWS Lambda API (the one AWS service this machine has no local server for):
//! the two calls a cloud restart makes, `GetFunctionConfiguration` and
//! `UpdateFunctionConfiguration`, on functions the test declares.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

type Functions = Arc<Mutex<HashMap<String, BTreeMap<String, String>>>>;

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
                    (name.to_string(), variables.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect())
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
        self.functions.lock().unwrap().get(function).cloned().unwrap_or_default()
    }
}

impl Drop for LambdaStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn configuration(name: &str, variables: &BTreeMap<String, String>) -> Value {
    json!({ "FunctionName": name, "Runtime": "provided.al2023", "Environment": { "Variables": variables } })
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
        Some(variables) => axum::Json(configuration(&name, variables)).into_response(),
        None => not_found(&name).into_response(),
    }
}

async fn update(State(functions): State<Functions>, Path(name): Path<String>, body: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    let request: Value = serde_json::from_str(&body).unwrap_or_default();
    let mut functions = functions.lock().unwrap();
    let Some(variables) = functions.get_mut(&name) else { return not_found(&name).into_response() };
    if let Some(new) = request["Environment"]["Variables"].as_object() {
        *variables = new.iter().map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_owned())).collect();
    }
    axum::Json(configuration(&name, variables)).into_response()
}
