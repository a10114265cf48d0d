//! `tributary-chat`: questions over the lineage knowledge base (four modes, titles, sessions), as a
//! Lambda function behind the HTTP API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tributary_core::cloud::run_http_function(tributary_core::http::routes::chat::router()).await
}
