//! `tributary-activity`: the activity log and its metrics, as a Lambda function behind the HTTP API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tributary_core::cloud::run_http_function(tributary_core::http::routes::activity::router()).await
}
