//! `tributary-ws`: the dashboard WebSocket on API Gateway (`$connect`, `$disconnect`, `$default`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tributary_core::cloud::run_websocket_function().await
}
