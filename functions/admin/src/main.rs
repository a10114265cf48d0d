//! `tributary-admin`: health, stats, WebSocket configuration, restart and broadcast, as a Lambda function behind the HTTP API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tributary_core::cloud::run_http_function(
        tributary_core::http::routes::admin::router().merge(tributary_core::http::routes::stats::router()),
    )
    .await
}
